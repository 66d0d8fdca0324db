//! `vers-tunnel forward`: its arguments, validated into a [`ForwardConfig`]
//! of one or more mappings (each parsed by [`crate::forward::mapping`]).

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser};

use super::{without_passwords, Config, ConnectArgs, VERSION_NAME};
use crate::forward::mapping::{self, Mapping};
use crate::proxy::ProxyEnv;

const FORWARD_AFTER_HELP: &str = "\
Each connection accepted on a local port gets its own verified TLS connection to
HOST:PORT through the edge (SNI = HOST), e.g.

    vers-tunnel forward 5432:{vmId}.vm.vers.sh:5432 6379:{vmId}.vm.vers.sh:6379
    psql -h 127.0.0.1 -p 5432 -U postgres

A mapping is [BIND_ADDR:]LOCAL_PORT:HOST:PORT, as ssh -L writes it (IPv6 addresses in
brackets); any number of them share one process, and --from FILE reads more, one a line
(# starts a comment). The two words LOCAL_PORT HOST:PORT are one mapping too.

Without BIND_ADDR it listens on 127.0.0.1 and ::1 only. Once listening it prints one line
per mapping saying where. A connection whose edge side fails or ends uncleanly is reset,
so a client never mistakes a truncated stream for a complete one; the listener keeps
serving. -v logs one line per finished connection: its mapping, client, duration, bytes
each way and how it ended.

Exit status: 1 local I/O error, 2 usage (including a port in use), 3 a HOST does not
resolve, 128+N signal N (on Windows: Ctrl-C as SIGINT 130, Ctrl-Break 149, closing the
console as SIGHUP 129).";

/// The word that selects this subcommand.
pub(super) const NAME: &str = crate::forward::SUBCOMMAND;

/// Raw arguments of `vers-tunnel forward`.
#[derive(Debug, Parser)]
#[command(
    name = NAME,
    version,
    long_version = crate::version::long_version(),
    display_name = VERSION_NAME,
    override_usage = "vers-tunnel forward [OPTIONS] <[BIND_ADDR:]LOCAL_PORT:HOST:PORT>...\n       vers-tunnel forward [OPTIONS] <[BIND_ADDR:]LOCAL_PORT> <HOST:PORT>\n       vers-tunnel forward [OPTIONS] --from FILE",
    about = "Listen on local ports and forward each connection over verified TLS to a VM's port",
    after_help = FORWARD_AFTER_HELP
)]
struct ForwardArgs {
    /// Where to listen and what to reach: [BIND_ADDR:]LOCAL_PORT:HOST:PORT, e.g. 5432:{vmId}.vm.vers.sh:5432 (LOCAL_PORT 0 picks a free port)
    #[arg(value_name = "MAPPING")]
    mappings: Vec<String>,

    /// Also read mappings from FILE, one a line (# starts a comment)
    #[arg(long, value_name = "FILE")]
    from: Option<PathBuf>,

    /// Most connections at once, for all mappings; more wait to be accepted [default: from the open-files limit]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    max_connections: Option<u32>,

    #[command(flatten)]
    connect: ConnectArgs,
}

/// `vers-tunnel forward`, validated.
#[derive(Debug, Clone)]
pub struct ForwardConfig {
    /// What to listen on and where each listener's connections go.
    pub(crate) mappings: Vec<ForwardMapping>,
    /// `--max-connections`, if given: for all mappings together.
    pub(crate) max_connections: Option<usize>,
    /// Number of `-v`.
    pub verbosity: u8,
}

/// One mapping of `vers-tunnel forward`, validated.
#[derive(Debug, Clone)]
pub(crate) struct ForwardMapping {
    /// The mapping as messages name it, and where it listens.
    pub(crate) mapping: Mapping,
    /// How each of its connections reaches the edge.
    pub(crate) connect: Config,
}

/// `forward`'s [`ForwardConfig`] from what clap matched for it, reading the
/// `--from` file if one is named; `args` is the whole command line, whose
/// passwords no error may repeat.
pub(super) fn config(
    matches: &ArgMatches,
    args: &[OsString],
    ssl_cert_file: Option<OsString>,
    proxy_env: &ProxyEnv,
) -> Result<ForwardConfig, clap::Error> {
    let parsed = ForwardArgs::from_arg_matches(matches)?;
    // The mappings' words are parsed here, not by clap: their errors may
    // repeat a password too.
    let invalid = |reason: String| {
        let err = clap::Error::raw(clap::error::ErrorKind::ValueValidation, reason + "\n");
        without_passwords(err, args)
    };
    let mut mappings = mapping::from_args(&parsed.mappings).map_err(invalid)?;
    if let Some(file) = &parsed.from {
        mappings.extend(mapping::read_file(file).map_err(invalid)?);
    }
    mapping::check_count(&mappings).map_err(invalid)?;
    let verbosity = parsed.connect.verbose;
    let mappings = mappings
        .into_iter()
        .map(|mapping| {
            let connect = parsed.connect.clone().into_config(
                mapping.host.clone(),
                mapping.port,
                ssl_cert_file.clone(),
                proxy_env,
            )?;
            Ok(ForwardMapping { mapping, connect })
        })
        .collect::<Result<_, clap::Error>>()?;
    Ok(ForwardConfig {
        mappings,
        max_connections: parsed.max_connections.map(|n| n as usize),
        verbosity,
    })
}

/// `vers-tunnel forward`'s clap definition.
pub(super) fn command() -> clap::Command {
    ForwardArgs::command()
}
