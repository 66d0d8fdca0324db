//! `vers-tunnel doctor HOST[:PORT]`: walks the layers a tunnel goes through
//! (this build's settings, DNS, TCP to each address, TLS, the service's first
//! bytes), each timed and bounded, and says which one fails and why, in the
//! tunnel's own words. It stops at the first failure the next step cannot
//! get past.
//!
//! The pieces are the tunnel's: [`crate::net::connect`] resolves and opens the
//! attempts, [`crate::tls`] builds the trust store and config, and
//! [`crate::error`] words every failure. `trust` keeps the chain the server
//! presented (read by [`crate::tls::x509`]), `session` drives TLS and listens for
//! the service, and `report` renders what was found; what the network sent is
//! shown through [`crate::text`].

pub(crate) mod json;
mod report;
mod session;
mod trust;

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::Token;

use crate::cli::{Config, DoctorConfig, Family};
use crate::error::{describe_io, Error, Phase};
use crate::net::connect;
use crate::net::poller::{Poller, ATTEMPT_BASE};
use crate::proxy::dial;
use crate::proxy::transport::Transport;
use crate::proxy::{Proxy, Route};
use crate::target::Host;
use crate::version;

pub use report::{colour_wanted, Report};

use report::Step;

use json::Value;
use report::duration;

/// The first argument that selects the doctor: `vers-tunnel doctor ...`.
pub(crate) const SUBCOMMAND: &str = "doctor";

/// Once one address has connected, how much longer the others get before
/// they are reported as not answering: the tunnel itself moves on after 250 ms.
const TCP_GRACE: Duration = Duration::from_secs(2);

/// Why the doctor stopped early: the exit status and the verdict.
struct Stop {
    exit: u8,
    verdict: String,
}

impl From<Error> for Stop {
    fn from(err: Error) -> Stop {
        Stop {
            exit: err.exit_code(),
            verdict: err.to_string(),
        }
    }
}

/// Runs every step against `doctor.connect`'s target and reports on them.
pub fn run(doctor: &DoctorConfig) -> Report {
    let config = &doctor.connect;
    let mut steps = Vec::new();
    let (exit, verdict) = match diagnose(doctor, &mut steps) {
        Ok(verdict) => {
            let warnings: Vec<&str> = steps
                .iter()
                .flat_map(|s: &Step| s.warnings.iter().map(String::as_str))
                .collect();
            match warnings[..] {
                [] => (0, verdict),
                _ => (0, format!("{verdict}; but: {}", warnings.join("; "))),
            }
        }
        Err(stop) => (stop.exit, stop.verdict),
    };
    Report {
        target: config.target(),
        steps,
        verdict,
        exit,
    }
}

/// The steps in order; the verdict when all pass.
fn diagnose(doctor: &DoctorConfig, steps: &mut Vec<Step>) -> Result<String, Stop> {
    let config = &doctor.connect;
    let deadline = Instant::now() + config.connect_timeout;
    let trust = check_config(doctor, steps)?;
    let mut poller = Poller::new()?;
    let addrs = check_dns(&mut poller, config, deadline, steps)?;
    let (sock, addr) = check_tcp(&mut poller, config, addrs, deadline, steps)?;
    let sock = match config.route.proxy() {
        None => Transport::tcp(sock),
        Some(proxy) => check_proxy(&mut poller, config, proxy, sock, deadline, steps)?,
    };
    let addr = connect::Hop::of(config).show(addr);
    let mut tls = session::handshake(&mut poller, config, trust, sock, addr, deadline, steps)?;
    tls.listen(&mut poller, config, doctor.wait, steps)
}

/// `config`: what this build is and what the options change.
fn check_config(doctor: &DoctorConfig, steps: &mut Vec<Step>) -> Result<trust::Trust, Stop> {
    let config = &doctor.connect;
    let started = Instant::now();
    let detail = format!(
        "vers-tunnel {} (rustls {}, {}), {} built-in roots",
        version::VERSION,
        version::RUSTLS_VERSION,
        crate::tls::CRYPTO_PROVIDER,
        version::builtin_roots()
    );
    let trust = trust::Trust::new(&config.cacerts);
    let mut step = Step::new("config", started.elapsed(), detail)
        .field("version", version::VERSION)
        .field("rustls", version::RUSTLS_VERSION)
        .field("crypto_provider", crate::tls::CRYPTO_PROVIDER)
        .field("built_for", version::TARGET)
        .field("builtin_roots", Value::Int(version::builtin_roots() as i64));
    let trust = match trust {
        Ok((trust, counts)) => {
            let mut files = Vec::new();
            for (path, count) in config.cacerts.iter().zip(counts) {
                let plural = if count == 1 { "" } else { "s" };
                step.lines.push(format!(
                    "CA file {}: {count} certificate{plural}",
                    path.display()
                ));
                files.push(Value::Object(vec![
                    ("path".into(), path.display().to_string().into()),
                    ("certificates".into(), Value::Int(count as i64)),
                ]));
            }
            step = step.field("ca_files", Value::Array(files));
            trust
        }
        Err(err) => {
            let stop = Stop::from(err);
            step.detail = stop.verdict.clone();
            steps.push(step.failed());
            return Err(stop);
        }
    };
    let redirected = (&config.connect_host, config.connect_port) != (&config.host, config.port);
    if redirected {
        step.lines.push(format!(
            "--connect-to: connecting to {}:{} for {}",
            config.connect_host,
            config.connect_port,
            config.target()
        ));
    }
    let connect_to = redirected.then(|| format!("{}:{}", config.connect_host, config.connect_port));
    let family = match config.family {
        Family::Any => "any",
        Family::V4 => "ipv4",
        Family::V6 => "ipv6",
    };
    if config.family != Family::Any {
        step.lines.push(format!("{family} addresses only"));
    }
    match &config.route {
        Route::Proxy(proxy) => step.lines.push(format!("proxy {proxy}")),
        Route::Exempt { proxy, by } => step.lines.push(format!(
            "proxy {proxy} not used: {} is in {by}",
            config.host
        )),
        Route::Direct => {}
    }
    let proxy = config.route.proxy().map(ToString::to_string);
    step.lines.push(format!(
        "connect timeout {}, service wait {}",
        duration(config.connect_timeout),
        duration(doctor.wait)
    ));
    steps.push(
        step.field("connect_to", connect_to)
            .field("proxy", proxy)
            .field("family", family)
            .field(
                "connect_timeout_ms",
                Value::Ms(report::ms(config.connect_timeout)),
            )
            .field("wait_ms", Value::Ms(report::ms(doctor.wait))),
    );
    Ok(trust)
}

/// `proxy`: the CONNECT exchange with the proxy (TLS with an `https://` one
/// first), the tunnel's own words for its failures.
fn check_proxy(
    poller: &mut Poller,
    config: &Config,
    proxy: &Proxy,
    sock: TcpStream,
    deadline: Instant,
    steps: &mut Vec<Step>,
) -> Result<Transport, Stop> {
    let started = Instant::now();
    match dial::open(poller, sock, proxy, config, deadline) {
        Ok(transport) => {
            let detail = format!(
                "{proxy} opened a tunnel to {}:{}",
                config.connect_host, config.connect_port
            );
            steps.push(
                Step::new("proxy", started.elapsed(), detail).field("proxy", proxy.to_string()),
            );
            Ok(transport)
        }
        Err(err) => {
            let stop = Stop::from(err);
            let step = Step::new("proxy", started.elapsed(), stop.verdict.clone())
                .field("proxy", proxy.to_string());
            steps.push(step.failed());
            Err(stop)
        }
    }
}

/// `dns`: every address of the first hop (the edge, or the proxy), in the
/// order the tunnel tries them.
fn check_dns(
    poller: &mut Poller,
    config: &Config,
    deadline: Instant,
    steps: &mut Vec<Step>,
) -> Result<Vec<SocketAddr>, Stop> {
    let started = Instant::now();
    let resolved = connect::resolve(poller, config, deadline);
    let took = started.elapsed();
    let host = connect::Hop::of(config).host;
    let name = match host {
        Host::Name(name) => Some(name.as_str()),
        Host::Ip(_) => None,
    };
    let addrs = match resolved {
        Ok(addrs) => connect::interleave(addrs),
        Err(err) => {
            let hint = match &err {
                Error::Resolve { .. } => {
                    Some("no address for this name: check it (the VM id) for typos")
                }
                Error::NoAddress { family, .. } if !family.is_empty() => {
                    Some("the name has addresses, but none of the family -4/-6 asks for")
                }
                _ => None,
            };
            let stop = Stop::from(err);
            let mut step = Step::new("dns", took, stop.verdict.clone()).field("name", name);
            step.lines.extend(hint.map(String::from));
            steps.push(step.failed());
            return Err(stop);
        }
    };
    let list = |v6: bool| {
        let ips: Vec<String> = addrs
            .iter()
            .filter(|a| a.is_ipv6() == v6)
            .map(|a| a.ip().to_string())
            .collect();
        ips
    };
    let (v6, v4) = (list(true), list(false));
    let shown = |ips: &[String]| match ips {
        [] => "none".to_string(),
        ips => ips.join(", "),
    };
    let detail = match name {
        Some(name) => format!("{name}: IPv6 {}; IPv4 {}", shown(&v6), shown(&v4)),
        None => format!("{host} is an IP address: nothing to look up"),
    };
    let mut step = Step::new("dns", took, detail)
        .field("name", name)
        .field("ipv6", v6.clone())
        .field("ipv4", v4.clone());
    if config.family == Family::Any && name.is_some() && v6.is_empty() {
        step.lines
            .push("no IPv6 address: the tunnel will use IPv4 only".into());
    }
    steps.push(step);
    Ok(addrs)
}

/// How one address has answered so far.
enum Outcome {
    Waiting,
    Connected(Duration),
    Failed(io::Error, Duration),
}

/// `tcp`: a connection to every address at once, each timed on its own; the
/// fastest goes on to TLS.
fn check_tcp(
    poller: &mut Poller,
    config: &Config,
    addrs: Vec<SocketAddr>,
    deadline: Instant,
    steps: &mut Vec<Step>,
) -> Result<(TcpStream, SocketAddr), Stop> {
    let started = Instant::now();
    let mut streams: Vec<Option<TcpStream>> = Vec::new();
    let mut outcomes: Vec<Outcome> = Vec::new();
    for (i, addr) in addrs.iter().enumerate() {
        match connect::start_attempt(poller.registry(), *addr, Token(ATTEMPT_BASE + i)) {
            Ok(stream) => {
                streams.push(Some(stream));
                outcomes.push(Outcome::Waiting);
            }
            Err(e) => {
                streams.push(None);
                outcomes.push(Outcome::Failed(e, started.elapsed()));
            }
        }
    }
    let mut fastest: Option<(usize, Duration)> = None;
    loop {
        let until = fastest.map_or(deadline, |(_, t)| (started + t + TCP_GRACE).min(deadline));
        let waiting = outcomes.iter().any(|o| matches!(o, Outcome::Waiting));
        if !waiting || Instant::now() >= until {
            break;
        }
        let ready: Vec<usize> = poller
            .wait(Some(until))?
            .iter()
            .filter_map(|e| e.token().0.checked_sub(ATTEMPT_BASE))
            .collect();
        for i in ready {
            let (Some(Outcome::Waiting), Some(Some(stream))) = (outcomes.get(i), streams.get(i))
            else {
                continue;
            };
            let took = started.elapsed();
            match connect::attempt_state(stream) {
                Ok(false) => {}
                Ok(true) => {
                    outcomes[i] = Outcome::Connected(took);
                    fastest.get_or_insert((i, took));
                }
                Err(e) => {
                    outcomes[i] = Outcome::Failed(e, took);
                    if let Some(mut stream) = streams[i].take() {
                        connect::deregister(poller.registry(), &mut stream);
                    }
                }
            }
        }
    }
    let took = started.elapsed();
    let hop = connect::Hop::of(config);
    let mut step = Step::new("tcp", took, String::new());
    let mut results = Vec::new();
    for (addr, outcome) in addrs.iter().zip(&outcomes) {
        let (ok, t, text) = match outcome {
            Outcome::Connected(t) => (true, *t, format!("connected in {}", duration(*t))),
            Outcome::Failed(e, t) => (false, *t, describe_io(e)),
            Outcome::Waiting => (
                false,
                took,
                format!(
                    "no answer within {} (black-holed or filtered?)",
                    duration(took)
                ),
            ),
        };
        let addr = hop.show(*addr);
        step.lines.push(format!("{addr}  {text}"));
        results.push(Value::Object(vec![
            ("address".into(), addr.to_string().into()),
            ("ok".into(), ok.into()),
            ("ms".into(), Value::Ms(report::ms(t))),
            ("detail".into(), text.into()),
        ]));
    }
    step = step.field("addresses", Value::Array(results));
    let connected = |v6: bool| {
        addrs
            .iter()
            .zip(&outcomes)
            .filter(|(a, o)| a.is_ipv6() == v6 && matches!(o, Outcome::Connected(_)))
            .count()
    };
    let count = connected(true) + connected(false);
    step.detail = format!("{count} of {} addresses connect", addrs.len());
    let winner = fastest.and_then(|(i, _)| Some((streams[i].take()?, addrs[i])));
    let Some((mut sock, addr)) = winner else {
        let timed_out = outcomes.iter().any(|o| matches!(o, Outcome::Waiting));
        let err = if timed_out {
            hop.timed_out(config, Phase::Connect)
        } else {
            let attempts = addrs
                .iter()
                .zip(outcomes)
                .filter_map(|(a, o)| match o {
                    Outcome::Failed(e, _) => Some((*a, e)),
                    _ => None,
                })
                .collect();
            hop.unreachable(config, attempts)
        };
        let stop = Stop::from(err);
        step.detail = stop.verdict.clone();
        steps.push(step.failed());
        return Err(stop);
    };
    for (this, v6, other) in [("IPv6", true, "IPv4"), ("IPv4", false, "IPv6")] {
        let has = addrs.iter().any(|a| a.is_ipv6() == v6);
        if has && connected(v6) == 0 {
            step.warnings.push(format!(
                "{this} does not connect from here but {other} does: the tunnel falls back to {other} after 250 ms"
            ));
        }
    }
    steps.push(step.field("fastest", hop.show(addr).to_string()));
    // The other attempts close when `streams` is dropped; their registrations go with them.
    connect::deregister(poller.registry(), &mut sock);
    connect::set_socket_options(&sock);
    Ok((sock, addr))
}
