//! `vers-tunnel HOST[:PORT]`, `vers-tunnel ssh-config` and `vers-tunnel doctor`:
//! parse, log, run, exit with the documented status.

use std::ffi::OsString;
use std::io::{self, Write};
use std::process::ExitCode;

use vers_tunnel::alloc::LineAligned;
use vers_tunnel::error::{describe_io, exit};
use vers_tunnel::proxy::ProxyEnv;
use vers_tunnel::ssh::config as ssh_config;
use vers_tunnel::{cli, doctor, forward};

// See src/alloc.rs; and Cargo.toml: musl's malloc costs a page fault per TLS
// record received, so the static build uses dlmalloc.
#[cfg(target_env = "musl")]
#[global_allocator]
static ALLOCATOR: LineAligned<dlmalloc::GlobalDlmalloc> = LineAligned(dlmalloc::GlobalDlmalloc);
#[cfg(not(target_env = "musl"))]
#[global_allocator]
static ALLOCATOR: LineAligned<std::alloc::System> = LineAligned(std::alloc::System);

/// The words after `vers-tunnel` that select a subcommand.
const SUBCOMMANDS: [&str; 3] = [
    forward::SUBCOMMAND,
    doctor::SUBCOMMAND,
    ssh_config::SUBCOMMAND,
];

fn main() -> ExitCode {
    // Release builds abort on panic; this keeps the shell's terminal usable.
    vers_tunnel::net::stdio::restore_flags_on_panic();
    let mut args: Vec<OsString> = std::env::args_os().collect();
    if args.get(1).is_some_and(|a| a == cli::HELP) {
        match cli::help_request(&args[2..], &SUBCOMMANDS) {
            Ok(request) => {
                args.truncate(1);
                args.extend(request);
            }
            Err(err) => return usage(&err),
        }
    }
    let ssl_cert_file = std::env::var_os("SSL_CERT_FILE");
    if args.get(1).is_some_and(|a| a == ssh_config::SUBCOMMAND) {
        return print_ssh_config(&args[1..]);
    }
    // The environment is read here, at the edge; the core gets values.
    let proxy_env = ProxyEnv::from_lookup(|name| std::env::var_os(name));
    if args.get(1).is_some_and(|a| a == doctor::SUBCOMMAND) {
        return run_doctor(&args[1..], ssl_cert_file, &proxy_env);
    }
    if args.get(1).is_some_and(|a| a == forward::SUBCOMMAND) {
        return match cli::parse_forward(&args[1..], ssl_cert_file, &proxy_env) {
            Ok(config) => {
                vers_tunnel::init_logging(config.connect.verbosity);
                finish(forward::run(&config))
            }
            Err(err) => usage(&err),
        };
    }
    match cli::parse(args, ssl_cert_file, &proxy_env) {
        Ok(config) => {
            vers_tunnel::init_logging(config.verbosity);
            finish(vers_tunnel::run(&config))
        }
        Err(err) => usage(&err),
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

/// `vers-tunnel ssh-config ...`: the block on stdout, or one line on stderr.
fn print_ssh_config(args: &[OsString]) -> ExitCode {
    let options = match ssh_config::parse(args) {
        Ok(options) => options,
        Err(err) => return usage(&err),
    };
    let text = match ssh_config::render(&options) {
        Ok(text) => text,
        Err(err) => {
            eprintln!("vers-tunnel: {err}");
            return ExitCode::from(err.exit_code());
        }
    };
    print(&text, ExitCode::SUCCESS)
}

/// `vers-tunnel doctor ...`: the report on stdout, its verdict as the status.
fn run_doctor(
    args: &[OsString],
    ssl_cert_file: Option<OsString>,
    proxy_env: &ProxyEnv,
) -> ExitCode {
    let config = match cli::parse_doctor(args, ssl_cert_file, proxy_env) {
        Ok(config) => config,
        Err(err) => return usage(&err),
    };
    vers_tunnel::init_logging(config.connect.verbosity);
    let report = doctor::run(&config);
    let text = if config.json {
        report.to_json()
    } else {
        report.to_text(doctor::colour_wanted())
    };
    print(&text, ExitCode::from(report.exit))
}

/// Writes a subcommand's output to stdout; `status` unless that fails.
fn print(text: &str, status: ExitCode) -> ExitCode {
    match io::stdout().lock().write_all(text.as_bytes()) {
        Ok(()) => status,
        // The reader took what it wanted (`| head`): not a failure.
        Err(err) if err.kind() == io::ErrorKind::BrokenPipe => status,
        Err(err) => {
            eprintln!("vers-tunnel: stdout: {}", describe_io(&err));
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
    eprintln!("vers-tunnel: {} (see --help)", cli::one_line(err));
    ExitCode::from(exit::USAGE)
}
