//! `vers-tunnel-windows-probe`: copies stdin to stdout, then says on stderr
//! how many bytes it copied and how many roots the Windows certificate store
//! added to webpki's. Run under wine64 by tests/windows/run-probe.sh, it
//! shows that a Rust .exe built here starts under Wine 8.0 with the
//! bcryptprimitives.dll shim (std seeds every HashMap from ProcessPrng),
//! moves bytes through pipes both ways, and reads the system store through
//! the tunnel's own src/tls/system_roots.rs.

use std::collections::HashMap;
use std::io;
use std::process::ExitCode;

#[cfg(windows)]
#[path = "../../../../src/tls/system_roots.rs"]
mod system_roots;

fn main() -> ExitCode {
    // RandomState's seed comes from ProcessPrng, the shim's one export.
    let mut seeded: HashMap<&str, usize> = HashMap::new();
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let built_in = roots.len();
    #[cfg(windows)]
    seeded.insert("system", system_roots::add(&mut roots));
    seeded.insert("built-in", built_in);
    let copied = match io::copy(&mut io::stdin().lock(), &mut io::stdout().lock()) {
        Ok(n) => n,
        Err(e) => {
            eprintln!("probe: copying stdin to stdout: {e}");
            return ExitCode::from(1);
        }
    };
    eprintln!(
        "probe: copied {copied} bytes; {} built-in roots, {} from the Windows store",
        seeded["built-in"],
        seeded.get("system").copied().unwrap_or(0)
    );
    ExitCode::SUCCESS
}
