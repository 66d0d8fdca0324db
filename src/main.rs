//! `vers-tunnel HOST[:PORT]`: parse, log, run, exit with the documented status.

use std::process::ExitCode;

use vers_tunnel::cli;
use vers_tunnel::error::exit;

fn main() -> ExitCode {
    let config = match cli::parse(std::env::args_os(), std::env::var_os("SSL_CERT_FILE")) {
        Ok(config) => config,
        Err(err) if !err.use_stderr() => {
            // --help and --version: clap prints them to stdout.
            let _ = err.print();
            return ExitCode::SUCCESS;
        }
        Err(err) => {
            eprintln!("vers-tunnel: {} (see --help)", cli::one_line(&err));
            return ExitCode::from(exit::USAGE);
        }
    };
    vers_tunnel::init_logging(config.verbosity);
    match vers_tunnel::run(&config) {
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
