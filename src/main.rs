//! `vers-tunnel`: parse the command line into one [`Mode`], log, run it, exit
//! with the documented status.

use std::io::{self, Write};
use std::process::ExitCode;

use vers_tunnel::alloc::LineAligned;
use vers_tunnel::cli::{self, Mode};
use vers_tunnel::error::{describe_io, exit};
use vers_tunnel::proxy::ProxyEnv;
use vers_tunnel::ssh::{config as ssh_config, file as ssh_file};
use vers_tunnel::{doctor, forward};

// See src/alloc.rs; and Cargo.toml: musl's malloc costs a page fault per TLS
// record received, so the static build uses dlmalloc.
#[cfg(target_env = "musl")]
#[global_allocator]
static ALLOCATOR: LineAligned<dlmalloc::GlobalDlmalloc> = LineAligned(dlmalloc::GlobalDlmalloc);
#[cfg(not(target_env = "musl"))]
#[global_allocator]
static ALLOCATOR: LineAligned<std::alloc::System> = LineAligned(std::alloc::System);

fn main() -> ExitCode {
    // Release builds abort on panic; this keeps the shell's terminal usable.
    #[cfg(unix)]
    vers_tunnel::net::stdio::restore_flags_on_panic();
    // The environment is read here, at the edge; the core gets values.
    let ssl_cert_file = std::env::var_os("SSL_CERT_FILE");
    let proxy_env = ProxyEnv::from_lookup(|name| std::env::var_os(name));
    let mode = match cli::parse(std::env::args_os(), ssl_cert_file, &proxy_env) {
        Ok(mode) => mode,
        Err(err) => return usage(&err),
    };
    match mode {
        Mode::Tunnel(config) => {
            vers_tunnel::init_logging(config.verbosity);
            finish(vers_tunnel::run(&config))
        }
        Mode::Forward(config) => {
            vers_tunnel::init_logging(config.verbosity);
            finish(forward::run(&config))
        }
        Mode::Doctor(config) => {
            vers_tunnel::init_logging(config.connect.verbosity);
            let report = doctor::run(&config);
            let text = if config.json {
                report.to_json()
            } else {
                report.to_text(doctor::colour_wanted())
            };
            print(&text, ExitCode::from(report.exit))
        }
        Mode::SshConfig(options) => run_ssh_config(&options),
    }
}

/// `vers-tunnel ssh-config ...`: the block on stdout, or put in (or taken out
/// of) the user's ssh config with a line on stderr saying what changed; or
/// one line on stderr saying why not.
fn run_ssh_config(options: &ssh_config::Options) -> ExitCode {
    let say = |line: &dyn std::fmt::Display, status| {
        tell(line);
        ExitCode::from(status)
    };
    if options.action == ssh_config::Action::Uninstall {
        return match ssh_file::uninstall() {
            Ok(done) => say(&done, exit::OK),
            Err(err) => say(&err, err.exit_code()),
        };
    }
    let text = match ssh_config::render(options) {
        Ok(text) => text,
        Err(err) => return say(&err, err.exit_code()),
    };
    if options.action == ssh_config::Action::Print {
        return print(&text, ExitCode::SUCCESS);
    }
    match ssh_file::install(&text, &mut |line| tell(&line)) {
        Ok(done) => say(&done, exit::OK),
        Err(err) => say(&err, err.exit_code()),
    }
}

/// The exit status for how a run ended, after its one line (if it needs one).
fn finish(result: vers_tunnel::error::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            if err.is_quiet() {
                log::info!("{err}");
            } else {
                log::error!("{err}");
            }
            ExitCode::from(err.exit_code())
        }
    }
}

/// Writes a subcommand's output to stdout; `status` unless that fails.
fn print(text: &str, status: ExitCode) -> ExitCode {
    match io::stdout().lock().write_all(text.as_bytes()) {
        Ok(()) => status,
        // The reader took what it wanted (`| head`): not a failure.
        Err(err) if err.kind() == io::ErrorKind::BrokenPipe => status,
        Err(err) => {
            tell(&format_args!("stdout: {}", describe_io(&err)));
            ExitCode::from(exit::LOCAL)
        }
    }
}

/// --help and --version go to stdout with status 0; usage errors are one line.
fn usage(err: &clap::Error) -> ExitCode {
    if !err.use_stderr() {
        let _ = err.print();
        return ExitCode::SUCCESS;
    }
    tell(&format_args!("{} (see --help)", cli::one_line(err)));
    ExitCode::from(exit::USAGE)
}

/// One `vers-tunnel: ...` line on stderr. A full or closed stderr is not a
/// reason to stop half-way (`eprintln!` would panic): the status still says
/// how it went.
fn tell(line: &dyn std::fmt::Display) {
    let _ = writeln!(io::stderr(), "vers-tunnel: {line}");
}
