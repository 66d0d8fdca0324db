//! Windows only: the roots of the Windows certificate store, added as extra
//! anchors beside the built-in webpki roots, as `--cacert` adds its file's.
//! Corporate networks that inspect TLS put their CA there (Group Policy, or an
//! administrator's `certutil -addstore Root`), where users expect it honoured.
//!
//! The store is the current user's `ROOT`, whose view includes the machine's
//! roots and those Group Policy distributes. Only what Windows itself trusts
//! for server authentication is taken (its enhanced key usage, as a property
//! or an extension, names it, or there is none); a certificate webpki cannot
//! use as an anchor is skipped, as rustls-native-certs does.

use std::ffi::CStr;
use std::ptr;

use rustls::pki_types::CertificateDer;
use rustls::RootCertStore;
use windows_sys::Win32::Foundation::{GetLastError, CRYPT_E_NOT_FOUND};
use windows_sys::Win32::Security::Cryptography::{
    CertCloseStore, CertEnumCertificatesInStore, CertGetEnhancedKeyUsage, CertOpenSystemStoreW,
    CERT_CONTEXT, CTL_USAGE,
};

/// The object identifier of TLS server authentication (RFC 5280, id-kp-serverAuth).
const SERVER_AUTH: &[u8] = b"1.3.6.1.5.5.7.3.1";

/// Adds the store's roots that Windows trusts for server authentication to
/// `roots`; how many. A store that cannot be opened adds none: the built-in
/// roots still apply.
pub(crate) fn add(roots: &mut RootCertStore) -> usize {
    let name: Vec<u16> = "ROOT\0".encode_utf16().collect();
    // SAFETY: `name` is a NUL-terminated UTF-16 string that outlives the
    // call; provider 0 is the default one.
    let store = unsafe { CertOpenSystemStoreW(0, name.as_ptr()) };
    if store.is_null() {
        log::debug!("the Windows certificate store ROOT did not open");
        return 0;
    }
    let mut added = 0;
    let mut cert: *const CERT_CONTEXT = ptr::null();
    loop {
        // SAFETY: `store` is open; `cert` is null or the context the previous
        // call returned, which this call frees.
        cert = unsafe { CertEnumCertificatesInStore(store, cert) };
        if cert.is_null() {
            break;
        }
        // SAFETY: a context the store returned stays valid until it is passed
        // back to the store; its encoding is `cbCertEncoded` bytes long.
        let der = unsafe {
            std::slice::from_raw_parts((*cert).pbCertEncoded, (*cert).cbCertEncoded as usize)
        };
        if for_server_auth(cert) && roots.add(CertificateDer::from(der.to_vec())).is_ok() {
            added += 1;
        }
    }
    // SAFETY: `store` is open and closed once; the enumeration has freed its
    // last context.
    unsafe { CertCloseStore(store, 0) };
    log::debug!("added {added} roots from the Windows certificate store");
    added
}

/// Whether Windows trusts `cert` for server authentication.
/// `CertGetEnhancedKeyUsage` gives no usages both for "every use" and for
/// "none"; the last error tells which (`CRYPT_E_NOT_FOUND`: every use).
fn for_server_auth(cert: *const CERT_CONTEXT) -> bool {
    // SAFETY: GetLastError has no preconditions.
    let every_use = || unsafe { GetLastError() } == CRYPT_E_NOT_FOUND as u32;
    let mut size = 0u32;
    // SAFETY: `cert` is a live context; a null buffer asks for the size only.
    if unsafe { CertGetEnhancedKeyUsage(cert, 0, ptr::null_mut(), &mut size) } == 0 {
        return every_use();
    }
    // u64s: the buffer holds a CTL_USAGE, which is pointer-aligned.
    let mut buffer = vec![0u64; (size as usize).div_ceil(8)];
    let usage = buffer.as_mut_ptr().cast::<CTL_USAGE>();
    // SAFETY: `buffer` is `size` bytes or more, aligned for CTL_USAGE.
    if unsafe { CertGetEnhancedKeyUsage(cert, 0, usage, &mut size) } == 0 {
        return false;
    }
    // SAFETY: the call filled it; its identifiers point into `buffer`.
    let usage = unsafe { &*usage };
    if usage.cUsageIdentifier == 0 {
        return every_use();
    }
    // SAFETY: `cUsageIdentifier` pointers to NUL-terminated strings, all in `buffer`.
    let ids = unsafe {
        std::slice::from_raw_parts(usage.rgpszUsageIdentifier, usage.cUsageIdentifier as usize)
    };
    ids.iter()
        // SAFETY: as above: each is a NUL-terminated string in `buffer`.
        .any(|&id| unsafe { CStr::from_ptr(id.cast()) }.to_bytes() == SERVER_AUTH)
}
