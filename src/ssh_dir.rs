//! `--make-ssh-dir`: the directory of the `ssh-config --multiplex` ControlPath
//! (`~/.ssh`), made before ssh needs it.
//!
//! ssh binds its control socket only after it has logged in, and it does not
//! create the directory: an account without `~/.ssh` (a CI container, a new
//! user under the system-wide block, an agent whose `UserKnownHostsFile` is
//! `/dev/null`, so ssh never makes `~/.ssh` itself) gets "unix_listener: cannot
//! bind to path" and exit 255. The ProxyCommand runs before that bind, and
//! before it relays a byte, so ssh cannot log in, let alone bind, before this
//! has run.

use std::ffi::{CStr, OsStr};
use std::fs::DirBuilder;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::PathBuf;

use crate::error::Error;

/// The control socket's directory under the home directory, as the
/// `--multiplex` block's ControlPath names it.
pub const SSH_DIR: &str = ".ssh";

/// Makes `~/.ssh` with mode 0700 if it is missing, as ssh does before it
/// first writes `known_hosts`. `~` is the passwd database's home directory,
/// as ssh expands it (not `$HOME`, which CI runners often point elsewhere).
///
/// An existing `~/.ssh` is used as it is, but not one that belongs to another
/// user: whoever owns it could put their own socket where ssh looks for the
/// shared connection, and take the sessions sent through it. That is ssh's
/// own rule for `~/.ssh/config` (owned by the user or root). A `~/.ssh` that
/// cannot be made (a read-only or missing home) is left to ssh, whose bind
/// error names the path.
pub fn ensure() -> Result<(), Error> {
    // SAFETY: getuid has no preconditions and cannot fail.
    let uid = unsafe { libc::getuid() };
    let Some(home) = home_dir(uid) else {
        log::debug!("no home directory for uid {uid}; not making {SSH_DIR}");
        return Ok(());
    };
    let dir = home.join(SSH_DIR);
    // mkdir first, not stat then mkdir: it creates nothing through a symlink
    // and leaves no gap between the check and the creation.
    match DirBuilder::new().mode(0o700).create(&dir) {
        Ok(()) => {
            log::info!("created {} for ssh's control socket", dir.display());
            return Ok(());
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => {
            log::debug!("cannot create {}: {e}", dir.display());
            return Ok(());
        }
    }
    match std::fs::metadata(&dir) {
        Ok(meta) if meta.uid() != uid && meta.uid() != 0 => Err(Error::ForeignSshDir {
            path: dir,
            owner: meta.uid(),
        }),
        _ => Ok(()),
    }
}

/// `uid`'s home directory from the passwd database, or else `$HOME`: a static
/// (musl) build reads only `/etc/passwd`, so an account from LDAP or sssd is
/// found through the variable ssh passes on.
fn home_dir(uid: libc::uid_t) -> Option<PathBuf> {
    passwd_home(uid).or_else(|| {
        std::env::var_os("HOME")
            .filter(|h| !h.is_empty())
            .map(PathBuf::from)
    })
}

fn passwd_home(uid: libc::uid_t) -> Option<PathBuf> {
    let mut buf = vec![0u8; 1024];
    loop {
        // SAFETY: an all-zero passwd is a valid value (integers and null pointers).
        let mut entry: libc::passwd = unsafe { std::mem::zeroed() };
        let mut found: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: every pointer is to a live local of the right type, and
        // `buf.len()` is the length of the buffer `entry`'s strings go into.
        let rc = unsafe {
            libc::getpwuid_r(
                uid,
                &mut entry,
                buf.as_mut_ptr().cast(),
                buf.len(),
                &mut found,
            )
        };
        if rc == libc::ERANGE && buf.len() < 1 << 20 {
            buf.resize(buf.len() * 2, 0);
            continue;
        }
        if rc != 0 || found.is_null() || entry.pw_dir.is_null() {
            return None;
        }
        // SAFETY: getpwuid_r succeeded, so pw_dir points to a NUL-terminated
        // string inside `buf`, which outlives this borrow.
        let dir = unsafe { CStr::from_ptr(entry.pw_dir) };
        let dir = OsStr::from_bytes(dir.to_bytes());
        return (!dir.is_empty()).then(|| PathBuf::from(dir));
    }
}
