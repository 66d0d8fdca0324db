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
//!
//! Windows' OpenSSH shares no connections (`ssh-config` refuses
//! `--multiplex` there), so there is nothing to make and the flag does
//! nothing.

#[cfg(unix)]
use std::ffi::{CString, OsStr, OsString};
#[cfg(unix)]
use std::io;
#[cfg(unix)]
use std::os::unix::ffi::{OsStrExt, OsStringExt};
#[cfg(unix)]
use std::path::PathBuf;

use crate::error::Error;

/// The control socket's directory under the home directory, as the
/// `--multiplex` block's ControlPath names it.
#[cfg(unix)]
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
#[cfg(unix)]
pub fn ensure() -> Result<(), Error> {
    // SAFETY: getuid has no preconditions and cannot fail.
    let uid = unsafe { libc::getuid() };
    let Some(home) = home_dir(uid) else {
        return Ok(());
    };
    let mut dir = home.into_os_string().into_vec();
    dir.push(b'/');
    dir.extend_from_slice(SSH_DIR.as_bytes());
    let Ok(path) = CString::new(dir) else {
        return Ok(());
    };
    // libc's mkdir and stat, not std's DirBuilder and metadata: the same two
    // system calls in a third of the code, which keeps the static binary in
    // its budget. mkdir first, not stat then mkdir: it creates nothing
    // through a symlink and leaves no gap between the check and the creation;
    // stat follows a symlink (a dotfiles checkout) to the directory it names.
    // SAFETY: `path` is a NUL-terminated string that outlives the call.
    let made = unsafe { libc::mkdir(path.as_ptr(), 0o700) } == 0;
    if made || io::Error::last_os_error().raw_os_error() != Some(libc::EEXIST) {
        return Ok(());
    }
    // SAFETY: an all-zero stat is a valid value (integers only).
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: as for mkdir; `st` is a live stat for the result.
    let found = unsafe { libc::stat(path.as_ptr(), &mut st) } == 0;
    if found && st.st_uid != uid && st.st_uid != 0 {
        return Err(Error::ForeignSshDir {
            path: PathBuf::from(OsString::from_vec(path.into_bytes())),
            owner: st.st_uid,
        });
    }
    Ok(())
}

/// Nothing to make on Windows: no control socket.
#[cfg(not(unix))]
pub fn ensure() -> Result<(), Error> {
    Ok(())
}

/// `uid`'s home directory in `/etc/passwd`, or else `$HOME`. ssh asks the
/// passwd database, and `$HOME` may differ from it (CI runners point it
/// elsewhere), so the file comes first; an account only a directory service
/// knows (LDAP, macOS's Open Directory) is found through the variable ssh
/// passes on, which a login sets from the same database. The file is read
/// rather than asked through `getpwuid_r`, whose static (musl) copy costs the
/// binary 4 KiB and reads the same file.
#[cfg(unix)]
fn home_dir(uid: u32) -> Option<PathBuf> {
    let passwd = std::fs::read("/etc/passwd").unwrap_or_default();
    passwd_home(&passwd, uid).or_else(|| std::env::var_os("HOME").map(PathBuf::from))
}

/// The home directory (sixth field) of the first `passwd(5)` line for `uid`.
#[cfg(unix)]
fn passwd_home(passwd: &[u8], uid: u32) -> Option<PathBuf> {
    for line in passwd.split(|&b| b == b'\n') {
        let mut fields = line.split(|&b| b == b':');
        // The uid field as a number, in a loop that costs less code than
        // from_utf8 and parse.
        let number = fields.nth(2).filter(|f| !f.is_empty()).and_then(|f| {
            f.iter().try_fold(0u32, |n, &b| {
                let digit = char::from(b).to_digit(10)?;
                n.checked_mul(10)?.checked_add(digit)
            })
        });
        if number == Some(uid) {
            // gid and gecos, then the home directory.
            return fields
                .nth(2)
                .map(|home| PathBuf::from(OsStr::from_bytes(home)));
        }
    }
    None
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn the_home_directory_is_the_sixth_field_of_the_uid_s_line() {
        let passwd = b"root:x:0:0:root:/root:/bin/bash\n\
            daemon:x:1:1::/usr/sbin:/usr/sbin/nologin\n\
            ci:x:1001:1001:A CI job, 10:/home/ci:/bin/sh\n\
            ci2:x:1001:1001::/home/second:/bin/sh\n\
            short:x:1002\n\
            empty:x::0::/nowhere:/bin/sh\n";
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
        let no_root = &passwd[passwd.iter().position(|&b| b == b'\n').unwrap() + 1..];
        assert_eq!(
            passwd_home(no_root, 0),
            None,
            "an empty uid field is no uid"
        );
    }
}
