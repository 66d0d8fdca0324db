//! `vers-tunnel doctor`: its arguments, validated into a [`DoctorConfig`].

use std::ffi::OsString;
use std::time::Duration;

use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser};

use super::{parse_timeout, Config, ConnectArgs, VERSION_NAME};
use crate::proxy::ProxyEnv;
use crate::target::{HostPort, DEFAULT_PORT};

const DOCTOR_AFTER_HELP: &str = "\
Steps: config (this build, CA files, --connect-to, the proxy), dns (every address), tcp
(each address on its own), proxy (its CONNECT, when a proxy applies), tls (version,
cipher, certificate chain, trust, expiry), service (its first bytes: on port 443, the
SSH route, after an SSH identification line; on any other port nothing is sent). It
stops at the first step that fails.

Exit status: 0 every step passed, 1 the report could not be written, 2 usage or an
unusable CA file, 3 the name does not resolve or no TCP connection, 4 TLS or certificate
failure, 5 the service spoke but the session then broke at the TLS layer (as the
tunnel's 5), 6 TLS completed but nothing on the VM accepted the connection, 128+N
signal N (on Windows: Ctrl-C as SIGINT 130, Ctrl-Break 149, closing the console as
SIGHUP 129).";

/// The word that selects this subcommand.
pub(super) const NAME: &str = crate::doctor::SUBCOMMAND;

/// Raw command-line arguments of `vers-tunnel doctor HOST[:PORT]`.
#[derive(Debug, Parser)]
#[command(
    name = NAME,
    version,
    long_version = crate::version::long_version(),
    display_name = VERSION_NAME,
    about = "Check each step of reaching HOST[:PORT] through the edge, and say which fails and why",
    after_help = DOCTOR_AFTER_HELP
)]
struct DoctorArgs {
    /// Host to check, e.g. {vmId}.vm.vers.sh; PORT defaults to 443 ([V6]:PORT for IPv6)
    #[arg(value_name = "HOST[:PORT]")]
    target: HostPort,

    #[command(flatten)]
    connect: ConnectArgs,

    /// Print one JSON object instead of lines of text
    #[arg(long)]
    json: bool,

    /// Wait up to SECS for the service's first bytes
    #[arg(long, value_name = "SECS", default_value = "4", value_parser = parse_timeout)]
    wait: Duration,
}

/// What `vers-tunnel doctor` is to check, validated.
#[derive(Debug, Clone)]
pub struct DoctorConfig {
    /// The connection to check, with every connecting option.
    pub connect: Config,
    /// `--json`.
    pub json: bool,
    /// How long to wait for the service's first bytes.
    pub(crate) wait: Duration,
}

/// The doctor's [`DoctorConfig`] from what clap matched for it.
pub(super) fn config(
    matches: &ArgMatches,
    ssl_cert_file: Option<OsString>,
    proxy_env: &ProxyEnv,
) -> Result<DoctorConfig, clap::Error> {
    let args = DoctorArgs::from_arg_matches(matches)?;
    let port = args.target.port.unwrap_or(DEFAULT_PORT);
    Ok(DoctorConfig {
        connect: args
            .connect
            .into_config(args.target.host, port, ssl_cert_file, proxy_env)?,
        json: args.json,
        wait: args.wait,
    })
}

/// `vers-tunnel doctor`'s clap definition.
pub(super) fn command() -> clap::Command {
    DoctorArgs::command()
}
