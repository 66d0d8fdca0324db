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

use std::ffi::OsStr;
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
/// first writes `known_hosts`. `~` is the home directory as ssh expands it:
/// the passwd entry's, not `$HOME` (see [`home_dir`]).
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

/// `uid`'s home directory in `/etc/passwd`, or else `$HOME`. ssh asks the
/// passwd database, and `$HOME` may differ from it (CI runners point it
/// elsewhere), so the file comes first; an account only a directory service
/// knows (LDAP, macOS's Open Directory) is found through the variable ssh
/// passes on, which a login sets from the same database. The file is read
/// rather than asked through `getpwuid_r`, whose static (musl) copy costs the
/// binary 4 KiB and reads the same file.
fn home_dir(uid: u32) -> Option<PathBuf> {
    let passwd = std::fs::read("/etc/passwd").unwrap_or_default();
    passwd_home(&passwd, uid)
        .or_else(|| std::env::var_os("HOME").map(PathBuf::from))
        .filter(|home| home.is_absolute())
}

/// The home directory (sixth field) of the first `passwd(5)` line for `uid`.
fn passwd_home(passwd: &[u8], uid: u32) -> Option<PathBuf> {
    let uid = uid.to_string();
    passwd.split(|&b| b == b'\n').find_map(|line| {
        let mut fields = line.split(|&b| b == b':');
        if fields.nth(2)? != uid.as_bytes() {
            return None;
        }
        // gid and gecos, then the home directory.
        let home = fields.nth(2)?;
        Some(PathBuf::from(OsStr::from_bytes(home)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_home_directory_is_the_sixth_field_of_the_uid_s_line() {
        let passwd = b"root:x:0:0:root:/root:/bin/bash\n\
            daemon:x:1:1::/usr/sbin:/usr/sbin/nologin\n\
            ci:x:1001:1001:A CI job, 10:/home/ci:/bin/sh\n\
            ci2:x:1001:1001::/home/second:/bin/sh\n\
            short:x:1002\n";
        let home = |uid| passwd_home(passwd, uid);
        assert_eq!(home(0), Some(PathBuf::from("/root")));
        assert_eq!(
            home(1001),
            Some(PathBuf::from("/home/ci")),
            "the first line wins"
        );
        assert_eq!(home(1002), None, "a line cut short");
        assert_eq!(home(100), None, "no line");
        assert_eq!(home(10), None, "a number in another field");
    }
}
