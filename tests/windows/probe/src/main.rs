//! `vers-tunnel-windows-probe`, run under wine64 by tests/ship/windows.rs:
//!
//! - no arguments: copies stdin to stdout, then says on stderr how many bytes
//!   it copied and how many roots the Windows certificate store added to
//!   webpki's: a Rust .exe built here starts under Wine 8.0 with the
//!   bcryptprimitives.dll shim (std seeds every HashMap from ProcessPrng) and
//!   moves bytes through pipes both ways;
//! - `verify LEAF.der NAME`: whether the roots the tunnel trusts on Windows
//!   (webpki's plus the store's, through its own src/tls/system_roots.rs)
//!   verify LEAF for NAME: prints `trusted`, or `untrusted: WHY` with status 1;
//! - `add-root CA.der`: the test's own change to the current user's ROOT
//!   store, as an administrator's would be (in a prefix of the test's own:
//!   deleting from Wine 8.0's ROOT store reports success and keeps it).

use std::collections::HashMap;
use std::io;
use std::process::ExitCode;

#[cfg(windows)]
#[path = "../../../../src/tls/system_roots.rs"]
mod system_roots;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match args[..] {
        [] => copy(),
        ["verify", leaf, name] => verify(leaf, name),
        #[cfg(windows)]
        ["add-root", ca] => store::add(ca),
        _ => Err("usage: probe [verify LEAF.der NAME | add-root CA.der]".into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            println!("{e}");
            ExitCode::from(1)
        }
    }
}

/// The roots the tunnel trusts here.
fn roots() -> rustls::RootCertStore {
    #[allow(unused_mut)]
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    #[cfg(windows)]
    system_roots::add(&mut roots);
    roots
}

fn copy() -> Result<(), String> {
    // RandomState's seed comes from ProcessPrng, the shim's one export.
    let mut counts: HashMap<&str, usize> = HashMap::new();
    counts.insert("built-in", webpki_roots::TLS_SERVER_ROOTS.len());
    counts.insert("all", roots().len());
    let copied = io::copy(&mut io::stdin().lock(), &mut io::stdout().lock())
        .map_err(|e| format!("probe: copying stdin to stdout: {e}"))?;
    eprintln!(
        "probe: copied {copied} bytes; {} built-in roots, {} from the Windows store",
        counts["built-in"],
        counts["all"] - counts["built-in"]
    );
    Ok(())
}

fn verify(leaf: &str, name: &str) -> Result<(), String> {
    use rustls::client::danger::ServerCertVerifier;
    use rustls::client::WebPkiServerVerifier;
    use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
    use std::sync::Arc;

    let leaf = std::fs::read(leaf).map_err(|e| format!("reading {leaf}: {e}"))?;
    let name = ServerName::try_from(name.to_string()).map_err(|e| e.to_string())?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots()), provider)
        .build()
        .map_err(|e| e.to_string())?;
    verifier
        .verify_server_cert(
            &CertificateDer::from(leaf),
            &[],
            &name,
            &[],
            UnixTime::now(),
        )
        .map_err(|e| format!("untrusted: {e}"))?;
    println!("trusted");
    Ok(())
}

/// The test's change to the current user's ROOT store.
#[cfg(windows)]
mod store {
    use windows_sys::Win32::Security::Cryptography::CertAddEncodedCertificateToSystemStoreW;

    pub fn add(ca: &str) -> Result<(), String> {
        let der = std::fs::read(ca).map_err(|e| format!("reading {ca}: {e}"))?;
        let root: Vec<u16> = "ROOT\0".encode_utf16().collect();
        // SAFETY: `root` is NUL-terminated UTF-16 and `der` is `len` bytes,
        // both alive for the call.
        let ok = unsafe {
            CertAddEncodedCertificateToSystemStoreW(root.as_ptr(), der.as_ptr(), der.len() as u32)
        };
        if ok == 0 {
            return Err(format!(
                "adding {ca} to ROOT: {}",
                std::io::Error::last_os_error()
            ));
        }
        Ok(())
    }
}
