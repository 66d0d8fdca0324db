//! The command line: one clap command (the tunnel's arguments, and a
//! subcommand per other mode), turned into a validated [`Mode`].

use std::ffi::OsString;
use std::ops::Range;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Arg, ArgAction, ArgMatches, FromArgMatches};

use crate::proxy::{self, ProxyEnv, Route};
use crate::ssh;
use crate::target::{ConnectTo, Host};
use crate::text;

mod doctor;
mod forward;
mod tunnel;

pub use doctor::DoctorConfig;
pub use forward::ForwardConfig;
pub(crate) use forward::ForwardMapping;

/// The name `-V` and `--version` print before the version: every subcommand
/// answers them as the top level does (clap would say `vers-tunnel-forward`).
pub(crate) const VERSION_NAME: &str = "vers-tunnel";

/// `vers-tunnel help [SUBCOMMAND]`: another spelling of `--help`. No VM is
/// named so (VM hosts are `{vmId}.vm.vers.sh`), and a name that only starts
/// with it (`help.example`) is still a host.
const HELP: &str = "help";

/// What the command line asks for, validated: the one value `main` dispatches on.
#[derive(Debug)]
pub enum Mode {
    /// `vers-tunnel HOST[:PORT]`: the tunnel over stdin and stdout.
    Tunnel(Config),
    /// `vers-tunnel forward`.
    Forward(ForwardConfig),
    /// `vers-tunnel doctor`.
    Doctor(DoctorConfig),
    /// `vers-tunnel ssh-config`.
    SshConfig(ssh::config::Options),
}

/// The whole command line as clap sees it: the tunnel's arguments, and one
/// subcommand per other mode. A first argument that names a subcommand selects
/// it; anything else is the tunnel's (so a subcommand's name is never read as
/// a host, and no tunnel option may come before a subcommand).
pub fn command() -> clap::Command {
    tunnel::command()
        .subcommand(forward::command())
        .subcommand(doctor::command())
        .subcommand(ssh::config::command().name(ssh::config::SUBCOMMAND))
        .subcommand(help_command())
        .args_conflicts_with_subcommands(true)
        .subcommand_negates_reqs(true)
        .disable_help_subcommand(true)
}

/// `help [SUBCOMMAND]`: every word after `help` is a topic, so that a wrong one
/// gets our message rather than clap's.
fn help_command() -> clap::Command {
    clap::Command::new(HELP)
        .about("Print this help, or a subcommand's (the same as SUBCOMMAND --help)")
        .disable_help_flag(true)
        .disable_version_flag(true)
        .arg(
            Arg::new("topics")
                .value_name("SUBCOMMAND")
                .num_args(0..)
                .trailing_var_arg(true)
                .allow_hyphen_values(true)
                .value_parser(clap::value_parser!(OsString)),
        )
}

/// Parses `args` (starting with the program name) into the [`Mode`] they ask for.
///
/// `ssl_cert_file` is the value of `SSL_CERT_FILE`, and `proxy_env` the proxy
/// variables', passed in so tests need not touch the environment. `--help`,
/// `--version` and `help` come back as the error clap prints them with
/// (`use_stderr()` is false); no error repeats a control character or a password.
pub fn parse<I, T>(
    args: I,
    ssl_cert_file: Option<OsString>,
    proxy_env: &ProxyEnv,
) -> Result<Mode, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    let matches = matches(&args)?;
    Ok(match matches.subcommand() {
        None => Mode::Tunnel(tunnel::config(&matches, ssl_cert_file, proxy_env)?),
        Some((forward::NAME, sub)) => {
            Mode::Forward(forward::config(sub, &args, ssl_cert_file, proxy_env)?)
        }
        Some((doctor::NAME, sub)) => Mode::Doctor(doctor::config(sub, ssl_cert_file, proxy_env)?),
        Some((ssh::config::SUBCOMMAND, sub)) => Mode::SshConfig(ssh::config::options(
            ssh::config::Args::from_arg_matches(sub)?,
        )?),
        // `help`, the one subcommand left.
        Some((_, sub)) => return Err(help(sub)),
    })
}

/// `args` as clap matches them, refusing control characters first; no error
/// repeats a password.
fn matches(args: &[OsString]) -> Result<ArgMatches, clap::Error> {
    reject_control_characters(args)?;
    command()
        .try_get_matches_from(args)
        .map_err(|err| without_passwords(one_too_many(err), args))
}

/// A word after HOST (or after a tunnel option) that no argument takes: clap
/// says it is a subcommand that "cannot be used with" HOST, since a subcommand
/// is only looked for first; to the user it is one argument too many.
fn one_too_many(err: clap::Error) -> clap::Error {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    match (err.kind(), err.get(ContextKind::InvalidSubcommand)) {
        (ErrorKind::ArgumentConflict, Some(ContextValue::String(word))) => clap::Error::raw(
            ErrorKind::UnknownArgument,
            format!("unexpected argument '{word}' found\n"),
        ),
        _ => err,
    }
}

/// What `help [SUBCOMMAND]` prints: exactly `--help` or `SUBCOMMAND --help`,
/// or one line saying what help there is.
fn help(sub: &ArgMatches) -> clap::Error {
    let topics: Vec<OsString> = sub
        .get_many::<OsString>("topics")
        .map_or_else(Vec::new, |topics| topics.cloned().collect());
    let names: Vec<String> = command()
        .get_subcommands()
        .map(|sub| sub.get_name().to_string())
        .filter(|name| name != HELP)
        .collect();
    let request = match topics.as_slice() {
        [] => vec!["--help".into()],
        [topic] if names.iter().any(|name| topic == name.as_str()) => {
            vec![topic.clone(), "--help".into()]
        }
        _ => {
            let asked: Vec<String> = topics.iter().map(|t| shown(&t.to_string_lossy())).collect();
            return clap::Error::raw(
                clap::error::ErrorKind::InvalidSubcommand,
                format!(
                    "no help for '{}': try help alone, or help with one of {}\n",
                    asked.join(" "),
                    names.join(", ")
                ),
            );
        }
    };
    // The program's name is VERSION_NAME whatever argv[0] says (`bin_name`).
    let args: Vec<OsString> = std::iter::once(VERSION_NAME.into())
        .chain(request)
        .collect();
    match matches(&args) {
        Err(help) => help,
        // `--help` always ends the parse with the help as its "error".
        Ok(_) => command().error(clap::error::ErrorKind::DisplayHelp, ""),
    }
}

/// The options of every mode that connects to the edge (the tunnel, and the
/// subcommands that reach a VM the same way), flattened into each mode's args.
#[derive(Debug, Clone, clap::Args)]
struct ConnectArgs {
    /// Also trust the CA certificates in this PEM file (repeatable; SSL_CERT_FILE is read too)
    #[arg(long, value_name = "FILE")]
    cacert: Vec<PathBuf>,

    /// Connect to CONNECT_HOST:CONNECT_PORT instead, keeping SNI and verification for HOST:PORT
    #[arg(long, value_name = "HOST:PORT:CONNECT_HOST:CONNECT_PORT")]
    connect_to: Vec<ConnectTo>,

    /// Give up if resolving, connecting and the TLS handshake take longer than SECS
    #[arg(long, value_name = "SECS", default_value = "15", value_parser = parse_timeout)]
    connect_timeout: Duration,

    /// Use IPv4 addresses only
    #[arg(short = '4', long = "ipv4", conflicts_with = "ipv6")]
    ipv4: bool,

    /// Use IPv6 addresses only
    #[arg(short = '6', long = "ipv6")]
    ipv6: bool,

    /// Log connection details to stderr (-vv for more); RUST_LOG overrides
    #[arg(short, long, action = ArgAction::Count)]
    verbose: u8,

    /// Tunnel through this HTTP(S) proxy ([http|https://][USER:PASSWORD@]HOST[:PORT]); '' for none
    #[arg(long, value_name = "URL")]
    proxy: Option<String>,

    /// Reach hosts in this comma-separated list without the proxy (overrides NO_PROXY; '*' for all)
    #[arg(long, value_name = "LIST")]
    noproxy: Option<String>,

    /// Also trust the CA certificates in this PEM file for an https:// proxy (repeatable)
    #[arg(long, value_name = "FILE")]
    proxy_cacert: Vec<PathBuf>,
}

impl ConnectArgs {
    /// The validated [`Config`] for reaching `host:port` with these options.
    ///
    /// `ssl_cert_file` is the value of `SSL_CERT_FILE`, and `proxy_env` the
    /// proxy variables', passed in so tests need not touch the environment.
    /// The error is a proxy URL (from `--proxy` or the environment) that is
    /// not usable.
    fn into_config(
        self,
        host: Host,
        port: u16,
        ssl_cert_file: Option<OsString>,
        proxy_env: &ProxyEnv,
    ) -> Result<Config, clap::Error> {
        let route = proxy::route(
            self.proxy.as_deref(),
            self.noproxy.as_deref(),
            proxy_env,
            &host,
        )
        .map_err(|reason| {
            clap::Error::raw(clap::error::ErrorKind::ValueValidation, reason + "\n")
        })?;
        let (connect_host, connect_port) = self
            .connect_to
            .iter()
            .find_map(|rule| rule.apply(&host, port))
            .unwrap_or_else(|| (host.clone(), port));
        let mut cacerts = self.cacert;
        cacerts.extend(ssl_cert_file.filter(|v| !v.is_empty()).map(PathBuf::from));
        let family = match (self.ipv4, self.ipv6) {
            (true, _) => Family::V4,
            (_, true) => Family::V6,
            _ => Family::Any,
        };
        Ok(Config {
            host,
            port,
            connect_host,
            connect_port,
            cacerts,
            connect_timeout: self.connect_timeout,
            family,
            verbosity: self.verbose,
            route,
            proxy_cacerts: self.proxy_cacert,
            make_ssh_dir: false,
        })
    }
}

/// Which address families may be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Family {
    /// IPv6 and IPv4, raced.
    Any,
    /// `-4`.
    V4,
    /// `-6`.
    V6,
}

/// Everything a tunnel needs, validated.
#[derive(Debug, Clone)]
pub struct Config {
    /// The name the certificate is verified for and SNI carries.
    pub host: Host,
    /// The port named by the user (443 by default).
    pub port: u16,
    /// Where to open TCP, after `--connect-to`.
    pub(crate) connect_host: Host,
    /// The TCP port, after `--connect-to`.
    pub(crate) connect_port: u16,
    /// Extra PEM trust anchors, `--cacert` then `SSL_CERT_FILE`.
    pub cacerts: Vec<PathBuf>,
    /// Bound on resolve + TCP + TLS handshake.
    pub connect_timeout: Duration,
    /// `-4` / `-6`.
    pub(crate) family: Family,
    /// Number of `-v`.
    pub verbosity: u8,
    /// Straight to the connect host, or through which proxy.
    pub(crate) route: Route,
    /// Extra PEM trust anchors for an `https://` proxy, on top of `cacerts`.
    pub(crate) proxy_cacerts: Vec<PathBuf>,
    /// `--make-ssh-dir` (the tunnel only): make `~/.ssh` before connecting.
    pub(crate) make_ssh_dir: bool,
}

impl Config {
    /// `host:port` as the user named it, for messages.
    pub(crate) fn target(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// `err` with every password in `args` (see [`proxy::redact_password`])
/// replaced by `***`: clap repeats an argument it rejects, and so do the
/// value parsers, in part (`port 'hunter2@p' is not a number`).
fn without_passwords(err: clap::Error, args: &[OsString]) -> clap::Error {
    let secrets: Vec<(&str, String, Range<usize>)> = args
        .iter()
        .skip(1)
        .filter_map(|arg| arg.to_str())
        .filter_map(|arg| proxy::redact_password(arg).map(|(shown, at)| (arg, shown, at)))
        .collect();
    if secrets.is_empty() || !err.use_stderr() {
        return err;
    }
    let rendered = err.render().to_string();
    let mut message = rendered
        .strip_prefix("error: ")
        .unwrap_or(&rendered)
        .to_string();
    for (arg, shown, _) in &secrets {
        message = message.replace(arg, shown);
    }
    // A piece of an argument (they are quoted) that holds some of a password.
    let pieces: Vec<String> = message
        .split('\'')
        .map(|piece| {
            secrets
                .iter()
                .find_map(|(arg, _, password)| redact_piece(piece, arg, password))
                .unwrap_or_else(|| piece.to_string())
        })
        .collect();
    clap::Error::raw(err.kind(), pieces.join("'"))
}

/// `piece` with `***` for what it holds of `arg[password]`, if it is a piece of `arg` that does.
fn redact_piece(piece: &str, arg: &str, password: &Range<usize>) -> Option<String> {
    if piece.is_empty() {
        return None;
    }
    arg.match_indices(piece).find_map(|(start, _)| {
        let end = start + piece.len();
        (start < password.end && password.start < end).then(|| {
            let from = password.start.max(start) - start;
            let to = password.end.min(end) - start;
            format!("{}***{}", &piece[..from], &piece[to..])
        })
    })
}

/// No host, port, rule, URL or file name here needs a control character (or
/// a bidi or other format character, [`text::needs_escape`]), and clap would
/// echo one raw: a newline would split the one-line error and an escape
/// sequence would reach the user's terminal. The argument is shown escaped,
/// without its password if it holds one.
fn reject_control_characters(args: &[OsString]) -> Result<(), clap::Error> {
    for arg in args.iter().skip(1) {
        let arg = arg.to_string_lossy();
        if let Some(c) = arg.chars().find(|&c| text::needs_escape(c)) {
            return Err(clap::Error::raw(
                clap::error::ErrorKind::InvalidValue,
                format!(
                    "argument \"{}\" contains a control character (U+{:04X}), which no host, port or file name here may\n",
                    shown(&arg),
                    c as u32
                ),
            ));
        }
    }
    Ok(())
}

/// An argument as an error may repeat it: escaped, and without a password.
fn shown(arg: &str) -> String {
    let redacted = proxy::redact_password(arg).map_or_else(|| arg.to_string(), |(r, _)| r);
    text::escape(&redacted)
}

fn parse_timeout(s: &str) -> Result<Duration, String> {
    let secs: f64 = s
        .parse()
        .map_err(|_| format!("'{s}' is not a number of seconds"))?;
    if !(secs > 0.0 && secs <= 86_400.0) {
        return Err("the timeout must be more than 0 and at most 86400 seconds".into());
    }
    Ok(Duration::from_secs_f64(secs))
}

/// The one-line form of a clap error: its first paragraph joined into one
/// line, without clap's "error: ".
pub fn one_line(err: &clap::Error) -> String {
    let rendered = err.render().to_string();
    let paragraph: Vec<&str> = rendered
        .lines()
        .take_while(|line| !line.trim().is_empty())
        .map(str::trim)
        .collect();
    let line = paragraph.join(" ");
    line.strip_prefix("error: ").unwrap_or(&line).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tunnel's config for `argv`, which must ask for the tunnel.
    fn tunnel(argv: &[&str], ssl_cert_file: Option<OsString>, env: &ProxyEnv) -> Config {
        match parse(argv, ssl_cert_file, env).unwrap() {
            Mode::Tunnel(config) => config,
            other => panic!("{argv:?} is not the tunnel: {other:?}"),
        }
    }

    fn parse_ok(args: &[&str]) -> Config {
        let mut argv = vec!["vers-tunnel"];
        argv.extend_from_slice(args);
        tunnel(&argv, None, &ProxyEnv::default())
    }

    fn parse_err(args: &[&str]) -> String {
        let mut argv = vec!["vers-tunnel"];
        argv.extend_from_slice(args);
        one_line(&parse(argv, None, &ProxyEnv::default()).unwrap_err())
    }

    #[test]
    fn defaults_to_port_443_and_both_families() {
        let c = parse_ok(&["x.vm.vers.sh"]);
        assert_eq!(c.port, 443);
        assert_eq!(c.connect_port, 443);
        assert_eq!(c.connect_host, c.host);
        assert_eq!(c.family, Family::Any);
        assert_eq!(c.connect_timeout, Duration::from_secs(15));
    }

    #[test]
    fn connect_to_keeps_the_verified_name() {
        let c = parse_ok(&[
            "--connect-to",
            "x.vm.vers.sh:443:127.0.0.1:9999",
            "x.vm.vers.sh",
        ]);
        assert_eq!(c.host, Host::Name("x.vm.vers.sh".into()));
        assert_eq!(c.connect_host, Host::Ip([127, 0, 0, 1].into()));
        assert_eq!(c.connect_port, 9999);
        assert_eq!(c.target(), "x.vm.vers.sh:443");
    }

    #[test]
    fn port_flag_and_host_port_must_agree() {
        assert_eq!(parse_ok(&["-p", "22", "h.sh"]).port, 22);
        assert_eq!(parse_ok(&["-p", "22", "h.sh:22"]).port, 22);
        assert!(parse_err(&["-p", "22", "h.sh:23"]).contains("port given twice"));
    }

    #[test]
    fn ssl_cert_file_is_added_after_cacert() {
        let argv = ["vers-tunnel", "--cacert", "a.pem", "h.sh"];
        let no_proxy = ProxyEnv::default();
        let c = tunnel(&argv, Some("b.pem".into()), &no_proxy);
        assert_eq!(c.cacerts, [PathBuf::from("a.pem"), PathBuf::from("b.pem")]);
        let c = tunnel(&argv, Some("".into()), &no_proxy);
        assert_eq!(c.cacerts, [PathBuf::from("a.pem")]);
    }

    #[test]
    fn doctor_takes_the_connecting_options_json_and_wait() {
        let doctor = |argv: &[&str], ssl_cert_file| {
            let mut args = vec!["vers-tunnel", "doctor"];
            args.extend_from_slice(argv);
            parse(args, ssl_cert_file, &ProxyEnv::default()).map(|mode| match mode {
                Mode::Doctor(config) => config,
                other => panic!("{argv:?} is not the doctor: {other:?}"),
            })
        };
        let d = doctor(
            &[
                "--json",
                "--wait",
                "1.5",
                "-4",
                "--connect-to",
                "::127.0.0.1:8443",
                "h.sh:22",
            ],
            Some("b.pem".into()),
        )
        .unwrap();
        assert!(d.json);
        assert_eq!(d.wait, Duration::from_millis(1500));
        assert_eq!(d.connect.target(), "h.sh:22");
        assert_eq!(d.connect.connect_port, 8443);
        assert_eq!(d.connect.family, Family::V4);
        assert_eq!(d.connect.cacerts, [PathBuf::from("b.pem")]);
        let d = doctor(&["h.sh"], None).unwrap();
        assert_eq!(
            (d.connect.port, d.json, d.wait),
            (443, false, Duration::from_secs(4))
        );
        let err = one_line(&doctor(&["--wait", "0", "h.sh"], None).unwrap_err());
        assert!(err.contains("more than 0"), "{err}");
    }

    #[test]
    fn the_proxy_is_chosen_for_host_as_named_and_keeps_the_connect_to_target() {
        let env = ProxyEnv::from_pairs(&[("HTTPS_PROXY", "http://u:pw@p.corp:3128")]);
        let argv = [
            "vers-tunnel",
            "--connect-to",
            "x.vm.vers.sh:443:127.0.0.1:9999",
            "x.vm.vers.sh",
        ];
        let c = tunnel(&argv, None, &env);
        let proxy = c.route.proxy().unwrap();
        assert_eq!(
            proxy.to_string(),
            "http://u:***@p.corp:3128 (from HTTPS_PROXY)"
        );
        assert_eq!(
            (c.connect_host.to_string(), c.connect_port),
            ("127.0.0.1".into(), 9999)
        );
        // NO_PROXY is matched against HOST, not the --connect-to target.
        let env = ProxyEnv::from_pairs(&[("HTTPS_PROXY", "p.corp"), ("NO_PROXY", "127.0.0.1")]);
        assert!(tunnel(&argv, None, &env).route.proxy().is_some());
        let env = ProxyEnv::from_pairs(&[("HTTPS_PROXY", "p.corp"), ("NO_PROXY", "vers.sh")]);
        assert!(tunnel(&argv, None, &env).route.proxy().is_none());
    }

    #[test]
    fn bad_proxy_urls_are_usage_errors_without_the_password() {
        let msg = parse_err(&["--proxy", "socks5://u:hunter2@p", "h.sh"]);
        assert!(
            msg.contains("--proxy: socks5:// proxies are not supported"),
            "{msg}"
        );
        assert!(!msg.contains("hunter2"), "{msg}");
        let env = ProxyEnv::from_pairs(&[("ALL_PROXY", "gopher://u:hunter2@p")]);
        let err = parse(["vers-tunnel", "h.sh"], None, &env).unwrap_err();
        let msg = one_line(&err);
        assert!(msg.contains("ALL_PROXY: unsupported proxy scheme"), "{msg}");
        assert!(!msg.contains("hunter2"), "{msg}");
    }

    #[test]
    fn a_subcommand_is_its_word_first_and_anything_else_is_the_tunnels() {
        let env = ProxyEnv::default();
        let mode = |argv: &[&str]| parse(argv, None, &env);
        assert!(matches!(
            mode(&["vers-tunnel", "forward", "0", "h.sh:22"]),
            Ok(Mode::Forward(_))
        ));
        assert!(matches!(
            mode(&["vers-tunnel", "doctor", "h.sh"]),
            Ok(Mode::Doctor(_))
        ));
        assert!(matches!(
            mode(&["vers-tunnel", "ssh-config"]),
            Ok(Mode::SshConfig(_))
        ));
        // After an option the word is HOST, even one named like a subcommand.
        let c = tunnel(&["vers-tunnel", "-4", "doctor"], None, &env);
        assert_eq!(c.host, Host::Name("doctor".into()));
        for (argv, extra) in [
            (&["vers-tunnel", "h.sh", "forward"][..], "forward"),
            (&["vers-tunnel", "doctr", "h.sh"], "h.sh"),
            (&["vers-tunnel", "-v", "forward", "0", "h.sh:22"], "0"),
        ] {
            let msg = one_line(&mode(argv).unwrap_err());
            assert_eq!(
                msg,
                format!("unexpected argument '{extra}' found"),
                "{argv:?}"
            );
        }
    }

    #[test]
    fn usage_errors_are_one_line() {
        for (args, reason) in [
            (&["h.sh:"][..], "port after ':' is empty"),
            (&["-4", "-6", "h.sh"], "cannot be used with"),
            (&["--connect-timeout", "0", "h.sh"], "more than 0"),
            (&["--connect-timeout", "soon", "h.sh"], "not a number"),
            (&[], "required"),
            (&["h.sh:1\n2"], "control character (U+000A)"),
            (&["\u{1b}[31mh.sh"], "\"\\u{1b}[31mh.sh\""),
            (&["\u{202e}hs.x"], "\"\\u{202e}hs.x\""),
        ] {
            let msg = parse_err(args);
            assert!(msg.contains(reason), "{args:?}: {msg}");
            assert!(!msg.contains('\n'));
        }
    }
}
