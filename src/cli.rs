//! The command line: flags as the user writes them, turned into a validated [`Config`].

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgAction, CommandFactory, Parser};

use crate::target::{ConnectTo, Host, HostPort, DEFAULT_PORT};

const AFTER_HELP: &str = "\
Use it as OpenSSH's ProxyCommand, in ~/.ssh/config:

    Host *.vm.vers.sh
        ProxyCommand vers-tunnel %h

`vers-tunnel ssh-config` prints such a block with this binary's full path.

It opens TLS to HOST:443 with SNI = HOST, verifies the certificate (always), and relays
stdin to the server and the server to stdout until both sides are done.

Exit status: 0 clean end, 1 local I/O error, 2 usage, 3 resolve/connect failure,
4 TLS/certificate failure, 5 unclean end (possible truncation), 128+N signal N.";

/// Raw command-line arguments.
#[derive(Debug, Parser)]
#[command(
    name = "vers-tunnel",
    version,
    long_version = crate::version::long_version(),
    override_usage = "vers-tunnel [OPTIONS] <HOST[:PORT]>\n       vers-tunnel ssh-config [--host PATTERN] [--path BIN] [--multiplex [--persist DURATION]]",
    about = "Open TLS to a Vers VM's edge and relay stdin/stdout: an ssh ProxyCommand",
    after_help = AFTER_HELP
)]
struct Args {
    /// Host to reach, e.g. {vmId}.vm.vers.sh; PORT defaults to 443 ([V6]:PORT for IPv6)
    #[arg(value_name = "HOST[:PORT]")]
    target: HostPort,

    /// Port to connect to (default 443)
    #[arg(short, long, value_parser = clap::value_parser!(u16).range(1..))]
    port: Option<u16>,

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
}

/// Which address families may be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
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
    pub connect_host: Host,
    /// The TCP port, after `--connect-to`.
    pub connect_port: u16,
    /// Extra PEM trust anchors, `--cacert` then `SSL_CERT_FILE`.
    pub cacerts: Vec<PathBuf>,
    /// Bound on resolve + TCP + TLS handshake.
    pub connect_timeout: Duration,
    /// `-4` / `-6`.
    pub family: Family,
    /// Number of `-v`.
    pub verbosity: u8,
}

impl Config {
    /// `host:port` as the user named it, for messages.
    pub fn target(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// Parses `args` (including the program name) into a [`Config`].
///
/// `ssl_cert_file` is the value of `SSL_CERT_FILE`, passed in so tests need not
/// touch the environment.
pub fn parse<I, T>(args: I, ssl_cert_file: Option<OsString>) -> Result<Config, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    reject_control_characters(&args)?;
    let args = Args::try_parse_from(args)?;
    let port = match (args.target.port, args.port) {
        (Some(a), Some(b)) if a != b => {
            return Err(clap::Error::raw(
                clap::error::ErrorKind::ArgumentConflict,
                format!("port given twice: {a} in HOST:PORT and {b} in --port\n"),
            ));
        }
        (Some(p), _) | (None, Some(p)) => p,
        (None, None) => DEFAULT_PORT,
    };
    let host = args.target.host;
    let (connect_host, connect_port) = args
        .connect_to
        .iter()
        .find_map(|rule| rule.apply(&host, port))
        .unwrap_or_else(|| (host.clone(), port));
    let mut cacerts = args.cacert;
    cacerts.extend(ssl_cert_file.filter(|v| !v.is_empty()).map(PathBuf::from));
    let family = match (args.ipv4, args.ipv6) {
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
        connect_timeout: args.connect_timeout,
        family,
        verbosity: args.verbose,
    })
}

/// The tunnel's arguments as clap sees them, for the man page and shell
/// completions (`examples/gen_docs`); each subcommand module has its own.
pub fn command() -> clap::Command {
    Args::command()
}

/// No host, port, rule or file name here needs a control character, and
/// clap would echo one raw: a newline would split the one-line error and an
/// escape sequence would reach the user's terminal.
fn reject_control_characters(args: &[OsString]) -> Result<(), clap::Error> {
    for arg in args.iter().skip(1) {
        let text = arg.to_string_lossy();
        if let Some(c) = text.chars().find(|c| c.is_control()) {
            return Err(clap::Error::raw(
                clap::error::ErrorKind::InvalidValue,
                format!(
                    "argument \"{}\" contains a control character (U+{:04X}), which no host, port or file name here may\n",
                    text.escape_debug(),
                    c as u32
                ),
            ));
        }
    }
    Ok(())
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

    fn parse_ok(args: &[&str]) -> Config {
        let mut argv = vec!["vers-tunnel"];
        argv.extend_from_slice(args);
        parse(argv, None).unwrap()
    }

    fn parse_err(args: &[&str]) -> String {
        let mut argv = vec!["vers-tunnel"];
        argv.extend_from_slice(args);
        one_line(&parse(argv, None).unwrap_err())
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
        let c = parse(argv, Some("b.pem".into())).unwrap();
        assert_eq!(c.cacerts, [PathBuf::from("a.pem"), PathBuf::from("b.pem")]);
        let c = parse(argv, Some("".into())).unwrap();
        assert_eq!(c.cacerts, [PathBuf::from("a.pem")]);
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
        ] {
            let msg = parse_err(args);
            assert!(msg.contains(reason), "{args:?}: {msg}");
            assert!(!msg.contains('\n'));
        }
    }
}
