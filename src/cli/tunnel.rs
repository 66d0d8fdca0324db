//! `vers-tunnel HOST[:PORT]`: the tunnel's own arguments.

use std::ffi::OsString;

use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser};

use super::{Config, ConnectArgs, VERSION_NAME};
use crate::proxy::ProxyEnv;
use crate::target::{HostPort, DEFAULT_PORT};

const AFTER_HELP: &str = "\
Use it as OpenSSH's ProxyCommand, in ~/.ssh/config:

    Host *.vm.vers.sh
        User root
        ProxyCommand vers-tunnel %h

`vers-tunnel ssh-config` prints such a block with this binary's full path.
`vers-tunnel forward LOCAL_PORT:HOST:PORT...` serves VMs' ports to local clients
that do not speak TLS (see `vers-tunnel forward --help`).

It opens TLS to HOST:443 with SNI = HOST, verifies the certificate (always), and relays
stdin to the server and the server to stdout until both sides are done.

Behind an HTTP proxy, it tunnels with CONNECT through --proxy, or else https_proxy,
HTTPS_PROXY, all_proxy or ALL_PROXY; NO_PROXY/no_proxy or --noproxy list hosts to reach directly.

Exit status: 0 clean end, 1 local I/O error, 2 usage, 3 resolve/connect failure (also
the proxy's, or its refusal), 4 TLS/certificate failure (also to an https:// proxy),
5 unclean end (possible truncation), 6 the edge closed before the service sent
anything (nothing listening on the VM's port), 128+N signal N (on Windows: Ctrl-C as
SIGINT 130, Ctrl-Break 149, closing the console as SIGHUP 129).

When it does not connect, `vers-tunnel doctor HOST[:PORT]` checks each step and says why.";

/// Raw command-line arguments of the tunnel (`vers-tunnel HOST[:PORT]`).
#[derive(Debug, Parser)]
#[command(
    name = VERSION_NAME,
    bin_name = VERSION_NAME,
    version,
    long_version = crate::version::long_version(),
    override_usage = "vers-tunnel [OPTIONS] <HOST[:PORT]>\n       vers-tunnel forward [OPTIONS] <[BIND_ADDR:]LOCAL_PORT:HOST:PORT>...\n       vers-tunnel doctor [OPTIONS] <HOST[:PORT]>\n       vers-tunnel ssh-config [--host PATTERN] [--path BIN] [--multiplex [--persist DURATION]] [--install | --uninstall]",
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

    #[command(flatten)]
    connect: ConnectArgs,

    /// First create ~/.ssh (mode 0700) if it is missing, for ssh's control socket
    /// (the `ssh-config --multiplex` block sets this)
    #[arg(long)]
    make_ssh_dir: bool,
}

/// The tunnel's [`Config`] from what clap matched at the top level.
pub(super) fn config(
    matches: &ArgMatches,
    ssl_cert_file: Option<OsString>,
    proxy_env: &ProxyEnv,
) -> Result<Config, clap::Error> {
    let args = Args::from_arg_matches(matches)?;
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
    let mut config = args
        .connect
        .into_config(args.target.host, port, ssl_cert_file, proxy_env)?;
    config.make_ssh_dir = args.make_ssh_dir;
    Ok(config)
}

/// The tunnel's arguments as clap sees them; [`super::command`] adds the subcommands.
pub(super) fn command() -> clap::Command {
    Args::command()
}
