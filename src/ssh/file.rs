//! `ssh-config --install` / `--uninstall`: the vers-tunnel block in the user's own ssh
//! config (`~/.ssh/config`; `%USERPROFILE%\.ssh\config` on Windows), between two marker
//! lines at the top, where ssh takes the first value it finds for each option.
//!
//! install.sh calls the binary for this, so these are its rules on every platform:
//! re-running replaces the block in place and changes nothing when it is the same;
//! every byte outside the markers is kept (a missing final newline, CRLF line ends);
//! the file keeps its mode (and owner, as root); a symlinked config (a dotfiles
//! checkout) is edited where it points and stays a symlink. The new content is
//! written to a temporary file beside the real one and renamed over it, so an error
//! at any point leaves the user's file as it was.

use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};

use crate::error::describe_io;
use crate::text;

/// The line that opens the block.
pub const START_MARKER: &str = "# >>> vers-tunnel >>>";
/// The line that closes the block.
pub const END_MARKER: &str = "# <<< vers-tunnel <<<";

/// How many symlinks are followed to the real config, as the kernel's own limit.
const MAX_LINKS: usize = 40;

/// What an install or uninstall did, for its one line on stderr.
#[derive(Debug, PartialEq, Eq)]
pub enum Done {
    /// The block was put at the top of the file (created when missing).
    Added(PathBuf),
    /// The old block was replaced.
    Updated(PathBuf),
    /// The file already had this very block.
    Unchanged(PathBuf),
    /// The block was taken out.
    Removed(PathBuf),
    /// There was no block to take out.
    Absent(PathBuf),
}

impl fmt::Display for Done {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Done::Added(file) => write!(
                f,
                "added the vers-tunnel block at the top of {}",
                shown(file)
            ),
            Done::Updated(file) => write!(f, "updated the vers-tunnel block in {}", shown(file)),
            Done::Unchanged(file) => write!(
                f,
                "{} already has this vers-tunnel block; nothing changed",
                shown(file)
            ),
            Done::Removed(file) => write!(f, "removed the vers-tunnel block from {}", shown(file)),
            Done::Absent(file) => write!(f, "no vers-tunnel block in {}", shown(file)),
        }
    }
}

/// Why the ssh config was left as it was.
#[derive(Debug)]
pub enum Error {
    /// The variable naming the home directory is unset or empty.
    NoHome(&'static str),
    /// The home directory does not exist.
    MissingHome(PathBuf),
    /// Running as root with another user's home: the edit would leave
    /// root-owned files there.
    ForeignHome(PathBuf),
    /// The markers in the file do not form exactly one block.
    Markers {
        /// The config file.
        file: PathBuf,
        /// Line numbers of start markers.
        starts: Vec<usize>,
        /// Line numbers of end markers.
        ends: Vec<usize>,
    },
    /// A symlink chain that does not end (a loop).
    Links(PathBuf),
    /// A file-system operation failed.
    Io {
        /// What was being done, e.g. "cannot write".
        what: &'static str,
        /// On what.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
}

impl Error {
    /// The process exit status: a local failure, as install.sh's.
    pub fn exit_code(&self) -> u8 {
        crate::error::exit::LOCAL
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NoHome(var) => write!(f, "{var} is not set, so there is no ssh config to edit"),
            Error::MissingHome(home) => {
                write!(f, "the home directory {} does not exist", shown(home))
            }
            Error::ForeignHome(home) => write!(
                f,
                "running as root with the home directory {}, which belongs to another user; \
                 run it as that user, without sudo",
                shown(home)
            ),
            Error::Markers { file, starts, ends } => write!(
                f,
                "{} has vers-tunnel markers that do not form one block (start at line(s) {}, \
                 end at line(s) {}); fix them by hand, nothing was changed",
                shown(file),
                line_list(starts),
                line_list(ends)
            ),
            Error::Links(link) => write!(
                f,
                "cannot follow the symlink {}: more than {MAX_LINKS} links in a row",
                shown(link)
            ),
            Error::Io { what, path, source } => {
                write!(f, "{what} {}: {}", shown(path), describe_io(source))
            }
        }
    }
}

impl std::error::Error for Error {}

/// A path as messages show it: a newline in a file name must not split the line.
/// A path as messages show it: each component escaped, joined by the
/// platform's separator, so a Windows path keeps its single backslashes.
fn shown(path: &Path) -> String {
    let sep = std::path::MAIN_SEPARATOR_STR;
    let parts: Vec<String> = path
        .to_string_lossy()
        .split(sep)
        .map(text::escape)
        .collect();
    parts.join(sep)
}

fn line_list(lines: &[usize]) -> String {
    if lines.is_empty() {
        return "none".to_string();
    }
    let words: Vec<String> = lines.iter().map(usize::to_string).collect();
    words.join(" ")
}

/// Puts `rendered` (what `ssh-config` prints) into the user's ssh config as the
/// managed block, creating `~/.ssh` (mode 0700) and the file (0600) when missing.
/// `say` hears about what was created on the way.
pub fn install(rendered: &str, say: &mut dyn FnMut(String)) -> Result<Done, Error> {
    let home = home()?;
    let dir = home.join(".ssh");
    if !dir.is_dir() {
        make_private_dir(&dir).map_err(|source| Error::Io {
            what: "cannot create",
            path: dir.clone(),
            source,
        })?;
        let private = if cfg!(unix) { " (mode 0700)" } else { "" };
        say(format!("created {}{private}", shown(&dir)));
    }
    let file = real_file(&dir.join("config"))?;
    let old = read(&file)?;
    let new = with_block(old.as_deref().unwrap_or_default(), rendered)
        .map_err(|(starts, ends)| markers(&file, starts, ends))?;
    if old.as_deref() == Some(&new[..]) {
        return Ok(Done::Unchanged(file));
    }
    let had_block = old
        .as_deref()
        .is_some_and(|o| matches!(find_block(o), Ok(Some(_))));
    replace(&file, &new)?;
    Ok(if had_block {
        Done::Updated(file)
    } else {
        Done::Added(file)
    })
}

/// Takes the managed block out of the user's ssh config, leaving every other byte.
pub fn uninstall() -> Result<Done, Error> {
    let home = home()?;
    let file = real_file(&home.join(".ssh").join("config"))?;
    let Some(old) = read(&file)? else {
        return Ok(Done::Absent(file));
    };
    match without_block(&old).map_err(|(starts, ends)| markers(&file, starts, ends))? {
        None => Ok(Done::Absent(file)),
        Some(new) => {
            replace(&file, &new)?;
            Ok(Done::Removed(file))
        }
    }
}

fn markers(file: &Path, starts: Vec<usize>, ends: Vec<usize>) -> Error {
    Error::Markers {
        file: file.to_path_buf(),
        starts,
        ends,
    }
}

/// The line numbers of the start and end markers, when they are not one block.
type BadMarkers = (Vec<usize>, Vec<usize>);

/// The byte range of the block's lines, both markers and the end marker's line
/// end included; `None` when there are no markers. A marker line may end in
/// CRLF: an editor on Windows may have rewritten the file.
fn find_block(content: &[u8]) -> Result<Option<Range<usize>>, BadMarkers> {
    let (mut starts, mut ends) = (Vec::new(), Vec::new());
    let (mut start_at, mut end_at) = (0, 0);
    let mut offset = 0;
    for (index, line) in content.split_inclusive(|&b| b == b'\n').enumerate() {
        let bare = line.strip_suffix(b"\n").unwrap_or(line);
        let bare = bare.strip_suffix(b"\r").unwrap_or(bare);
        if bare == START_MARKER.as_bytes() {
            starts.push(index + 1);
            start_at = offset;
        } else if bare == END_MARKER.as_bytes() {
            ends.push(index + 1);
            end_at = offset + line.len();
        }
        offset += line.len();
    }
    match (&starts[..], &ends[..]) {
        ([], []) => Ok(None),
        ([s], [e]) if s < e => Ok(Some(start_at..end_at)),
        _ => Err((starts, ends)),
    }
}

/// `content` with the managed block for `rendered` at the top, or in place of
/// the old one. Lines end as the file's first line does (CRLF or LF).
fn with_block(content: &[u8], rendered: &str) -> Result<Vec<u8>, BadMarkers> {
    let crlf = content
        .split_inclusive(|&b| b == b'\n')
        .next()
        .is_some_and(|line| line.ends_with(b"\r\n"));
    let eol = if crlf { "\r\n" } else { "\n" };
    let mut block = String::new();
    for line in [
        START_MARKER,
        "# Managed by vers-tunnel: `vers-tunnel ssh-config --install` (or install.sh) updates it, --uninstall removes it.",
        "# It is at the top because ssh uses the first value it finds for each option.",
    ]
    .into_iter()
    .chain(rendered.lines())
    .chain([
        "# Back to every host, for the lines below this block.",
        "Host *",
        END_MARKER,
    ]) {
        block.push_str(line);
        block.push_str(eol);
    }
    let place = find_block(content)?.unwrap_or(0..0);
    let mut out = Vec::with_capacity(content.len() + block.len());
    out.extend_from_slice(&content[..place.start]);
    out.extend_from_slice(block.as_bytes());
    out.extend_from_slice(&content[place.end..]);
    Ok(out)
}

/// `content` without the managed block; `None` when it has none.
fn without_block(content: &[u8]) -> Result<Option<Vec<u8>>, BadMarkers> {
    Ok(find_block(content)?.map(|place| [&content[..place.start], &content[place.end..]].concat()))
}

/// The home directory ssh reads the user's config from: `$HOME` as install.sh
/// has always used it (`%USERPROFILE%` on Windows), refused as root when it is
/// another user's.
fn home() -> Result<PathBuf, Error> {
    let var = if cfg!(windows) { "USERPROFILE" } else { "HOME" };
    let home = std::env::var_os(var)
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
        .ok_or(Error::NoHome(var))?;
    let meta = fs::metadata(&home).map_err(|_| Error::MissingHome(home.clone()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        // SAFETY: geteuid has no preconditions and cannot fail.
        let euid = unsafe { libc::geteuid() };
        if euid == 0 && meta.uid() != 0 {
            return Err(Error::ForeignHome(home));
        }
    }
    #[cfg(not(unix))]
    let _ = meta;
    Ok(home)
}

/// `dir`, readable by its owner only (as ssh makes `~/.ssh`).
#[cfg(unix)]
fn make_private_dir(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new().mode(0o700).create(dir)
}

/// `dir`, with the access the user's profile folder passes on to it.
#[cfg(not(unix))]
fn make_private_dir(dir: &Path) -> io::Result<()> {
    fs::create_dir(dir)
}

/// The file a chain of symlinks at `path` ends at, which may not exist yet.
fn real_file(path: &Path) -> Result<PathBuf, Error> {
    let mut file = path.to_path_buf();
    for _ in 0..=MAX_LINKS {
        match fs::symlink_metadata(&file) {
            Ok(meta) if meta.file_type().is_symlink() => {}
            _ if file == path => return Ok(file),
            // Shown without the `..` of relative links when its directory exists.
            _ => return Ok(tidy(file)),
        }
        let link = fs::read_link(&file).map_err(|source| Error::Io {
            what: "cannot follow the symlink",
            path: file.clone(),
            source,
        })?;
        // A relative link is relative to the directory it is in.
        file = match file.parent() {
            Some(dir) => dir.join(link),
            None => link,
        };
    }
    Err(Error::Links(path.to_path_buf()))
}

/// `file` with its directory's path made absolute and free of `..` and links.
fn tidy(file: PathBuf) -> PathBuf {
    match (file.parent().map(fs::canonicalize), file.file_name()) {
        (Some(Ok(dir)), Some(name)) => dir.join(name),
        _ => file,
    }
}

/// The file's bytes; `None` when it does not exist.
fn read(file: &Path) -> Result<Option<Vec<u8>>, Error> {
    match fs::read(file) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(Error::Io {
            what: "cannot read",
            path: file.to_path_buf(),
            source,
        }),
    }
}

/// Gives `file` the bytes `content` through a new file in the same directory
/// and a rename, so a reader sees the old file or the new one, never a part.
/// The new file gets the old one's permissions (and owner and group, as root),
/// or mode 0600 when there was none: an ssh config may name private hosts.
fn replace(file: &Path, content: &[u8]) -> Result<(), Error> {
    let dir = match file.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let io_error = |what, path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Io { what, path, source }
    };
    let old = match fs::metadata(file) {
        Ok(meta) => Some(meta),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(source) => return Err(io_error("cannot read", file)(source)),
    };
    let (tmp, mut out) = temp_file(dir).map_err(io_error("cannot write in", dir))?;
    let written = (|| {
        out.write_all(content)?;
        if let Some(old) = &old {
            out.set_permissions(old.permissions())?;
            keep_owner(&out, old)?;
        }
        out.sync_all()?;
        drop(out);
        fs::rename(&tmp, file)
    })();
    if let Err(source) = written {
        let _ = fs::remove_file(&tmp);
        return Err(io_error("cannot write", file)(source));
    }
    Ok(())
}

/// A new file `.vers-tunnel.PID.N` in `dir`, readable by its owner only until
/// it gets the old file's mode.
fn temp_file(dir: &Path) -> io::Result<(PathBuf, fs::File)> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut n = 0;
    loop {
        let path = dir.join(format!(".vers-tunnel.{}.{n}", std::process::id()));
        match options.open(&path) {
            Ok(file) => return Ok((path, file)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && n < 100 => n += 1,
            Err(e) => return Err(e),
        }
    }
}

/// As root, the new file keeps the old one's owner and group (`cp -p`): root
/// editing another account's config must not take it over.
#[cfg(unix)]
fn keep_owner(file: &fs::File, old: &fs::Metadata) -> io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Ok(());
    }
    std::os::unix::fs::fchown(file, Some(old.uid()), Some(old.gid()))
}

#[cfg(not(unix))]
fn keep_owner(_: &fs::File, _: &fs::Metadata) -> io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const RENDERED: &str = "# vers-tunnel x\nHost *.vm.vers.sh\n    User root\n";

    fn block(eol: &str) -> String {
        let lines = [
            START_MARKER,
            "# Managed by vers-tunnel: `vers-tunnel ssh-config --install` (or install.sh) updates it, --uninstall removes it.",
            "# It is at the top because ssh uses the first value it finds for each option.",
            "# vers-tunnel x",
            "Host *.vm.vers.sh",
            "    User root",
            "# Back to every host, for the lines below this block.",
            "Host *",
            END_MARKER,
        ];
        lines.iter().map(|l| format!("{l}{eol}")).collect()
    }

    #[test]
    fn the_block_goes_on_top_and_every_other_byte_stays() {
        for user in [
            "",
            "Host foo\n    User bar\n",
            "Host foo\n    User bar",
            "\n\n",
            "Host a\n\u{0}\u{ff}bytes",
        ] {
            let added = with_block(user.as_bytes(), RENDERED).unwrap();
            assert_eq!(added, format!("{}{user}", block("\n")).as_bytes());
            let again = with_block(&added, RENDERED).unwrap();
            assert_eq!(again, added, "{user:?}: a re-run changes nothing");
            assert_eq!(without_block(&added).unwrap().unwrap(), user.as_bytes());
        }
    }

    #[test]
    fn a_block_is_replaced_where_it_is() {
        let before = format!("# mine\n{}Host foo\n", block("\n"));
        let newer = with_block(before.as_bytes(), "Host *.other\n").unwrap();
        let text = String::from_utf8(newer).unwrap();
        assert!(
            text.starts_with(&format!("# mine\n{START_MARKER}\n")),
            "{text}"
        );
        assert!(text.contains("\nHost *.other\n"), "{text}");
        assert!(!text.contains("vm.vers.sh"), "{text}");
        assert!(
            text.ends_with(&format!("{END_MARKER}\nHost foo\n")),
            "{text}"
        );
        assert_eq!(
            without_block(before.as_bytes()).unwrap().unwrap(),
            b"# mine\nHost foo\n"
        );
    }

    #[test]
    fn crlf_files_get_a_crlf_block_and_their_markers_are_found() {
        let user = "Host foo\r\n    User bar\r\n";
        let added = with_block(user.as_bytes(), RENDERED).unwrap();
        assert_eq!(added, format!("{}{user}", block("\r\n")).as_bytes());
        assert_eq!(with_block(&added, RENDERED).unwrap(), added);
        assert_eq!(without_block(&added).unwrap().unwrap(), user.as_bytes());
    }

    #[test]
    fn an_end_marker_without_a_newline_ends_the_block() {
        let user = format!("Host a\n{START_MARKER}\nold\n{END_MARKER}");
        let replaced = with_block(user.as_bytes(), RENDERED).unwrap();
        assert_eq!(replaced, format!("Host a\n{}", block("\n")).as_bytes());
        assert_eq!(
            without_block(user.as_bytes()).unwrap().unwrap(),
            b"Host a\n"
        );
    }

    #[test]
    fn markers_that_are_not_one_block_are_refused_with_their_lines() {
        let s = START_MARKER;
        let e = END_MARKER;
        for (content, starts, ends) in [
            (format!("a\nb\n{s}\nc\n"), vec![3], vec![]),
            (format!("{e}\n"), vec![], vec![1]),
            (format!("{e}\n{s}\n"), vec![2], vec![1]),
            (format!("{s}\n{s}\n{e}\n"), vec![1, 2], vec![3]),
            (format!("{s}\n{e}\n{s}\n{e}\n"), vec![1, 3], vec![2, 4]),
        ] {
            assert_eq!(
                with_block(content.as_bytes(), RENDERED),
                Err((starts.clone(), ends.clone()))
            );
            assert_eq!(without_block(content.as_bytes()), Err((starts, ends)));
        }
        // A marker is a whole line: quoted or indented, it is the user's text.
        let quoted = format!("# see {s}\n  {e}\n");
        assert_eq!(without_block(quoted.as_bytes()), Ok(None));
        let err = markers(Path::new("/h/.ssh/config"), vec![3], vec![]);
        assert_eq!(
            err.to_string(),
            "/h/.ssh/config has vers-tunnel markers that do not form one block (start at line(s) 3, \
             end at line(s) none); fix them by hand, nothing was changed"
        );
    }
}
