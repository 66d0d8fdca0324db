//! Private `/etc` files for one command: a test decides what a name resolves
//! to (both families, any order, or only through its own nameserver) for the
//! program under test alone, whatever resolver it uses (glibc's NSS, musl's).

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

/// Runs `cmd` in its own mount namespace where `/etc/NAME` is `dir/NAME` for
/// each of `names` (bind mounts, for `cmd` alone): e.g. a `hosts` file, so the
/// test decides what a name resolves to (both families, any order), or a
/// `resolv.conf` naming the test's nameserver. Needs root, as CI and the
/// development machines have.
pub fn with_etc(cmd: &mut Command, dir: &Path, names: &[&str]) {
    let mounts: Vec<(CString, CString)> = names
        .iter()
        .map(|name| {
            let file = dir.join(name);
            (
                CString::new(file.as_os_str().as_bytes()).unwrap(),
                CString::new(format!("/etc/{name}")).unwrap(),
            )
        })
        .collect();
    // SAFETY: between fork and exec only async-signal-safe calls are made
    // (unshare, mount) on data prepared before the fork.
    unsafe {
        cmd.pre_exec(move || {
            if libc::unshare(libc::CLONE_NEWNS) != 0 {
                return Err(io::Error::last_os_error());
            }
            // Keep the bind mounts out of the parent's namespace.
            let private = libc::mount(
                c"none".as_ptr(),
                c"/".as_ptr(),
                std::ptr::null(),
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null(),
            );
            if private != 0 {
                return Err(io::Error::last_os_error());
            }
            for (file, target) in &mounts {
                let bind = libc::mount(
                    file.as_ptr(),
                    target.as_ptr(),
                    std::ptr::null(),
                    libc::MS_BIND,
                    std::ptr::null(),
                );
                if bind != 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
}
