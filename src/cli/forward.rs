//! `vers-tunnel forward`: its arguments, validated into a [`ForwardConfig`].

use std::ffi::OsString;

use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser};

use super::{Config, ConnectArgs, VERSION_NAME};
use crate::proxy::ProxyEnv;
use crate::target::{HostPort, Listen};

const FORWARD_AFTER_HELP: &str = "\
Each connection accepted on the local port gets its own verified TLS connection to
HOST:PORT through the edge (SNI = HOST), e.g.

    vers-tunnel forward 5432 {vmId}.vm.vers.sh:5432
    psql -h 127.0.0.1 -p 5432 -U postgres

Without BIND_ADDR it listens on 127.0.0.1 and ::1 only. Once listening it prints one line
saying where. A connection whose edge side fails or ends uncleanly is reset, so a client
never mistakes a truncated stream for a complete one; the listener keeps serving.

Exit status: 1 local I/O error, 2 usage (including a port in use), 3 HOST does not
resolve, 128+N signal N.";

/// The word that selects this subcommand.
pub(super) const NAME: &str = crate::forward::SUBCOMMAND;

/// Raw arguments of `vers-tunnel forward`.
#[derive(Debug, Parser)]
#[command(
    name = NAME,
    version,
    long_version = crate::version::long_version(),
    display_name = VERSION_NAME,
    about = "Listen on a local port and forward each connection over verified TLS to a VM's port",
    after_help = FORWARD_AFTER_HELP
)]
struct ForwardArgs {
    /// Where to listen: LOCAL_PORT on the loopback, or BIND_ADDR:LOCAL_PORT (0 picks a free port)
    #[arg(value_name = "[BIND_ADDR:]LOCAL_PORT")]
    listen: Listen,

    /// The VM's port to reach, e.g. {vmId}.vm.vers.sh:5432 ([V6]:PORT for IPv6)
    #[arg(value_name = "HOST:PORT")]
    target: HostPort,

    /// Most connections at once; more wait to be accepted [default: from the open-files limit]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    max_connections: Option<u32>,

    #[command(flatten)]
    connect: ConnectArgs,
}

/// `vers-tunnel forward`, validated.
#[derive(Debug, Clone)]
pub struct ForwardConfig {
    pub(crate) listen: Listen,
    pub(crate) max_connections: Option<usize>,
    /// How each connection reaches the edge.
    pub connect: Config,
}

/// `forward`'s [`ForwardConfig`] from what clap matched for it.
pub(super) fn config(
    matches: &ArgMatches,
    ssl_cert_file: Option<OsString>,
    proxy_env: &ProxyEnv,
) -> Result<ForwardConfig, clap::Error> {
    let args = ForwardArgs::from_arg_matches(matches)?;
    let Some(port) = args.target.port else {
        return Err(clap::Error::raw(
            clap::error::ErrorKind::ValueValidation,
            format!(
                "the target needs the VM's port: HOST:PORT, e.g. {}:5432\n",
                args.target.host
            ),
        ));
    };
    Ok(ForwardConfig {
        listen: args.listen,
        max_connections: args.max_connections.map(|n| n as usize),
        connect: args
            .connect
            .into_config(args.target.host, port, ssl_cert_file, proxy_env)?,
    })
}

/// `vers-tunnel forward`'s clap definition.
pub(super) fn command() -> clap::Command {
    ForwardArgs::command()
}
