//! `vers-tunnel ssh-config`: the ssh_config block that sends `ssh root@{vmId}.vm.vers.sh`
//! through this binary, with its path written so that ssh and the shell read it back intact
//! (by each platform's rules, [`Platform`]), and with `--multiplex` the lines that let ssh
//! share one connection per VM. `--install` and `--uninstall` hand the block to
//! [`super::file`], which keeps it in the user's own ssh config.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use clap::{CommandFactory, Parser};

use crate::error::exit;
use crate::version::VERSION;

/// The first argument that selects this subcommand instead of a tunnel.
pub const SUBCOMMAND: &str = "ssh-config";

/// The hosts the block applies to unless `--host` says otherwise.
pub const DEFAULT_HOST: &str = "*.vm.vers.sh";

/// How long an idle shared connection stays up unless `--persist` says otherwise:
/// long enough to span a deploy's scp and ssh runs, short enough not to pin a VM
/// that is gone.
pub const DEFAULT_PERSIST: &str = "10m";

/// Where ssh keeps the shared connection's socket. `%C` is a 40-character hash
/// of the local host, remote host, port, user and ProxyJump, so one path serves
/// every VM and user. `~/.ssh` is the user's own directory: a socket in a
/// shared one (`/tmp`) could be planted by another user, and ssh would send
/// sessions through it (its client does not check who serves the socket).
/// ssh does not create the directory, so the block's ProxyCommand does
/// (`--make-ssh-dir`, [`crate::ssh::dir`]). ssh appends 17 bytes while creating
/// the socket, so with the home directory's length this must stay under the
/// socket path limit (108 bytes on Linux, 104 on macOS): the home directory may
/// be up to 39 bytes long (35 on macOS).
pub const CONTROL_PATH: &str = "~/.ssh/vers-%C";

const AFTER_HELP: &str = "\
Put the output in ~/.ssh/config above any `Host *` block, since ssh uses the first value
it finds for each option (--install, or `install.sh --ssh-config`, does this for you), or
in a file under /etc/ssh/ssh_config.d/ for every user of a machine:

    vers-tunnel ssh-config > /etc/ssh/ssh_config.d/vers-tunnel.conf

With --multiplex, ssh keeps each shared connection's socket in ~/.ssh; the ProxyCommand's
--make-ssh-dir creates that directory (mode 0700) for an account that has none yet.

Host-key checking is left on: the edge's TLS certificate proves you reached the Vers
edge, and only the VM's ssh host key proves you reached the VM.";

/// Raw `ssh-config` arguments: a subcommand of [`crate::cli::command`].
#[derive(Debug, Parser)]
#[command(
    name = "vers-tunnel ssh-config",
    bin_name = "vers-tunnel ssh-config",
    version,
    long_version = crate::version::long_version(),
    display_name = crate::cli::VERSION_NAME,
    about = "Print an ssh_config block that makes ssh reach Vers VMs through vers-tunnel, or keep it in your ssh config (--install)",
    after_help = AFTER_HELP
)]
pub(crate) struct Args {
    /// Host pattern(s) the block applies to, in ssh_config `Host` syntax [default: *.vm.vers.sh]
    #[arg(long, value_name = "PATTERN", value_parser = parse_pattern)]
    host: Option<String>,

    /// The vers-tunnel binary ssh should run [default: this binary's absolute path]
    #[arg(long, value_name = "BIN")]
    path: Option<PathBuf>,

    /// Share one connection per VM between ssh, scp and sftp runs (ControlMaster)
    #[arg(long)]
    multiplex: bool,

    /// With --multiplex: how long an idle shared connection stays open, in ssh's
    /// time format (30s, 10m, 1h30m) [default: 10m]
    #[arg(long, value_name = "DURATION", value_parser = parse_persist)]
    persist: Option<String>,

    /// Put the block at the top of your ~/.ssh/config (%USERPROFILE%\.ssh\config on
    /// Windows) between marker comments, or replace it there; nothing else in the file changes
    #[arg(long)]
    install: bool,

    /// Remove the block that --install put in your ssh config
    #[arg(long)]
    uninstall: bool,
}

/// What `ssh-config` does with the block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Print it on stdout.
    Print,
    /// Put it in the user's ssh config (`--install`).
    Install,
    /// Take it out of the user's ssh config (`--uninstall`).
    Uninstall,
}

/// The ssh whose rules the block follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Platform {
    /// OpenSSH on Linux and macOS: ssh runs the ProxyCommand with `$SHELL -c "exec ..."`,
    /// and shares connections (ControlMaster).
    Unix,
    /// Windows: Win32-OpenSSH spawns the ProxyCommand with no shell, quoting the line up
    /// to the first `.exe ` unless it starts with a quote; Git for Windows' ssh runs it
    /// with `sh -c`. Neither shares connections.
    Windows,
}

impl Platform {
    /// The platform this binary runs on.
    pub const THIS: Platform = if cfg!(windows) {
        Platform::Windows
    } else {
        Platform::Unix
    };
}

/// What to print, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// The `Host` line's patterns.
    pub host: String,
    /// The binary to name in `ProxyCommand`; `None` for this binary.
    pub path: Option<PathBuf>,
    /// With `--multiplex`: the `ControlPersist` time; `None` without it.
    pub persist: Option<String>,
    /// Print, install or uninstall.
    pub action: Action,
    /// Whose quoting rules the ProxyCommand follows.
    pub platform: Platform,
}

/// Why no block could be printed.
#[derive(Debug)]
pub enum Error {
    /// This binary's own path could not be found.
    OwnPath(io::Error),
    /// The path cannot be written on an ssh_config line.
    Unwritable {
        /// The path as found or given.
        path: PathBuf,
        /// What is wrong with it.
        reason: &'static str,
    },
}

impl Error {
    /// The process exit status for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::OwnPath(_) => exit::LOCAL,
            Error::Unwritable { .. } => exit::USAGE,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::OwnPath(e) => write!(
                f,
                "cannot find this program's own path ({}); name it with --path BIN",
                crate::error::describe_io(e)
            ),
            // Debug-quoted: the path may hold the very newline that is the problem.
            Error::Unwritable { path, reason } => write!(
                f,
                "cannot write {path:?} in an ssh_config ProxyCommand: {reason}"
            ),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::OwnPath(e) => Some(e),
            Error::Unwritable { .. } => None,
        }
    }
}

/// Parses `ssh-config`'s arguments alone (starting with `ssh-config` itself),
/// as `vers-tunnel ssh-config ...` does.
#[cfg(test)]
fn parse<I, T>(args: I) -> Result<Options, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let mut argv = vec![std::ffi::OsString::from(crate::cli::VERSION_NAME)];
    argv.extend(args.into_iter().map(Into::into));
    match crate::cli::parse(argv, None, &crate::proxy::ProxyEnv::default())? {
        crate::cli::Mode::SshConfig(options) => Ok(options),
        other => panic!("not ssh-config: {other:?}"),
    }
}

/// [`parse`] by `platform`'s rules.
#[cfg(test)]
fn parse_for<I, T>(args: I, platform: Platform) -> Result<Options, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    options_for(Args::try_parse_from(args)?, platform)
}

/// What the parsed arguments ask for, checked as a whole.
pub(crate) fn options(args: Args) -> Result<Options, clap::Error> {
    options_for(args, Platform::THIS)
}

/// [`options`] by `platform`'s rules.
fn options_for(args: Args, platform: Platform) -> Result<Options, clap::Error> {
    // Checked here rather than with clap's `requires` and `conflicts_with`,
    // whose machinery costs the static binary 4 KiB.
    let refuse = |kind, text: &str| Err(clap::Error::raw(kind, format!("{text}\n")));
    use clap::error::ErrorKind::{ArgumentConflict, MissingRequiredArgument};
    if args.persist.is_some() && !args.multiplex {
        return refuse(MissingRequiredArgument, "--persist needs --multiplex");
    }
    if args.multiplex && platform == Platform::Windows {
        return refuse(
            ArgumentConflict,
            "--multiplex is not available on Windows: Windows' OpenSSH has no connection sharing (ControlMaster)",
        );
    }
    let action = match (args.install, args.uninstall) {
        (false, false) => Action::Print,
        (true, false) => Action::Install,
        (false, true) if args.multiplex || args.path.is_some() || args.host.is_some() => {
            return refuse(
                ArgumentConflict,
                "--uninstall removes the block whatever it says: it takes no --host, --path or --multiplex",
            )
        }
        (false, true) => Action::Uninstall,
        (true, true) => return refuse(ArgumentConflict, "--install and --uninstall exclude each other"),
    };
    let persist = args
        .multiplex
        .then(|| args.persist.unwrap_or_else(|| DEFAULT_PERSIST.to_string()));
    Ok(Options {
        host: args.host.unwrap_or_else(|| DEFAULT_HOST.to_string()),
        path: args.path,
        persist,
        action,
        platform,
    })
}

/// The `ssh-config` arguments as clap sees them: a subcommand of [`crate::cli::command`].
pub(crate) fn command() -> clap::Command {
    Args::command()
}

/// The block for `options`, ending in a newline.
pub fn render(options: &Options) -> Result<String, Error> {
    let path = match &options.path {
        Some(path) => path.clone(),
        None => own_path()?,
    };
    let mut command = proxy_command_word(&path, options.platform)?;
    if options.persist.is_some() {
        command.push_str(" --make-ssh-dir");
    }
    let mut block = format!(
        "# vers-tunnel {VERSION}: ssh to Vers VMs through the edge (printed by `vers-tunnel ssh-config`)\n\
         Host {host}\n\
         \x20   User root\n\
         \x20   ProxyCommand {command} %h\n\
         \x20   ServerAliveInterval 30\n",
        host = options.host
    );
    if let Some(persist) = &options.persist {
        block.push_str(&format!(
            "\x20   # One connection per VM, shared by ssh, scp and sftp; `ssh -O exit HOST` closes it.\n\
             \x20   ControlMaster auto\n\
             \x20   ControlPath {CONTROL_PATH}\n\
             \x20   ControlPersist {persist}\n"
        ));
    }
    Ok(block)
}

/// This binary, as an absolute path without symlinks, so the block keeps working
/// whatever the current directory or PATH of the ssh that runs it.
#[cfg(not(windows))]
fn own_path() -> Result<PathBuf, Error> {
    std::env::current_exe()
        .and_then(|exe| exe.canonicalize())
        .map_err(Error::OwnPath)
}

/// This binary's full path as Windows names it (`GetModuleFileNameW`): not
/// canonicalized, which would give the `\\?\C:\...` form that neither ssh reads.
#[cfg(windows)]
fn own_path() -> Result<PathBuf, Error> {
    std::env::current_exe().map_err(Error::OwnPath)
}

/// `path` as the program of a ProxyCommand, by `platform`'s rules; every `%`
/// is doubled, since ssh first expands `%` tokens.
fn proxy_command_word(path: &Path, platform: Platform) -> Result<String, Error> {
    let unwritable = |reason| Error::Unwritable {
        path: path.to_path_buf(),
        reason,
    };
    let text = path
        .to_str()
        .ok_or_else(|| unwritable("it is not valid Unicode"))?;
    if text.is_empty() {
        return Err(unwritable("it is empty"));
    }
    if text.chars().any(char::is_control) {
        return Err(unwritable(
            "it contains a control character (a newline would end the line)",
        ));
    }
    let word = match platform {
        Platform::Unix => unix_word(text),
        Platform::Windows => windows_word(text).map_err(unwritable)?,
    };
    Ok(word.replace('%', "%%"))
}

/// ssh runs the line with `$SHELL -c "exec ..."`: a path with anything but
/// plainly safe characters is shell-quoted.
fn unix_word(text: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "/._-+,:@%".contains(c);
    if text.chars().all(plain) {
        text.to_string()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

/// On Windows one line must work for two readers: Win32-OpenSSH runs it with
/// no shell and takes a leading `"..."` as the program (unquoted, it would
/// quote up to the first `.exe `, wrong for a folder named `x.exe y`), and Git
/// for Windows' ssh runs it with `sh -c`, where backslashes outside quotes are
/// escapes. Inside double quotes both read a path the same, except where sh
/// still expands or escapes: those paths are refused.
fn windows_word(text: &str) -> Result<String, &'static str> {
    if text.contains(['$', '`', '"']) {
        return Err("Git for Windows' sh would expand its $, ` or \" even inside quotes; move vers-tunnel.exe to a folder without them");
    }
    if text.contains(r"\\") {
        return Err("Git for Windows' sh reads two backslashes in a row as one (a network path); copy vers-tunnel.exe to a local folder");
    }
    Ok(format!("\"{text}\""))
}

/// Accepts ssh's TIME FORMAT (sshd_config(5)): one or more `NUMBER[s|m|h|d|w]`
/// (either case; no unit is seconds), as ssh's own `convtime` reads it. Zero is
/// refused: ssh reads `ControlPersist 0` as "forever", which nobody means by it.
pub fn parse_persist(s: &str) -> Result<String, String> {
    const HINT: &str = "use ssh's time format, e.g. 30s, 10m or 1h30m";
    if s.is_empty() {
        return Err(format!("the duration is empty; {HINT}"));
    }
    // Escaped as every shown input is: a newline must not split the one-line error.
    let shown = crate::text::escape(s);
    let mut total: u64 = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        if digits == 0 {
            return Err(format!("'{shown}' is not a duration; {HINT}"));
        }
        let (number, tail) = rest.split_at(digits);
        let mut units = tail.chars();
        let (scale, tail) = match units.next().map(|c| c.to_ascii_lowercase()) {
            None => (1, ""),
            Some('s') => (1, units.as_str()),
            Some('m') => (60, units.as_str()),
            Some('h') => (3600, units.as_str()),
            Some('d') => (86_400, units.as_str()),
            Some('w') => (604_800, units.as_str()),
            Some(_) => return Err(format!("'{shown}' is not a duration; {HINT}")),
        };
        let seconds = number
            .parse::<u64>()
            .ok()
            .and_then(|n| n.checked_mul(scale))
            .and_then(|n| total.checked_add(n));
        total = match seconds {
            // ssh keeps the time in an int.
            Some(t) if t <= i32::MAX as u64 => t,
            _ => return Err(format!("'{shown}' is longer than ssh can keep (68 years)")),
        };
        rest = tail;
    }
    if total == 0 {
        return Err(format!(
            "'{shown}' is zero, which ssh reads as \"keep the connection forever\"; give a length of time"
        ));
    }
    Ok(s.to_string())
}

fn parse_pattern(s: &str) -> Result<String, String> {
    let pattern = s.trim();
    if pattern.is_empty() {
        return Err("the host pattern is empty".into());
    }
    if pattern.chars().any(char::is_control) {
        return Err("the host pattern contains a control character".into());
    }
    Ok(pattern.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn word(path: &str) -> String {
        proxy_command_word(Path::new(path), Platform::Unix).unwrap()
    }

    #[test]
    fn plain_paths_are_written_as_they_are() {
        assert_eq!(
            word("/usr/local/bin/vers-tunnel"),
            "/usr/local/bin/vers-tunnel"
        );
        assert_eq!(word("vers-tunnel"), "vers-tunnel");
    }

    #[test]
    fn other_paths_are_shell_quoted_and_percent_doubled() {
        assert_eq!(word("/opt/my tools/vt"), "'/opt/my tools/vt'");
        assert_eq!(word("/opt/it's/vt"), r"'/opt/it'\''s/vt'");
        assert_eq!(word("/opt/100%/vt"), "/opt/100%%/vt");
        assert_eq!(word("/opt/a b%h/vt"), "'/opt/a b%%h/vt'");
        assert_eq!(word("~/vt"), "'~/vt'");
        assert_eq!(word("/opt/$HOME/vt"), "'/opt/$HOME/vt'");
    }

    #[test]
    fn unwritable_paths_are_refused() {
        for path in ["", "/opt/a\nb", "/opt/a\tb"] {
            let err = proxy_command_word(Path::new(path), Platform::Unix).unwrap_err();
            assert_eq!(err.exit_code(), exit::USAGE, "{path:?}");
        }
    }

    // The Unix block; Windows quotes the path (the test below).
    #[cfg(unix)]
    #[test]
    fn default_block_matches_the_readme() {
        let options = parse(["ssh-config", "--path", "/usr/local/bin/vers-tunnel"]).unwrap();
        let text = render(&options).unwrap();
        let body: Vec<&str> = text.lines().skip(1).collect();
        assert_eq!(
            body,
            [
                "Host *.vm.vers.sh",
                "    User root",
                "    ProxyCommand /usr/local/bin/vers-tunnel %h",
                "    ServerAliveInterval 30",
            ]
        );
        assert!(text.starts_with(&format!("# vers-tunnel {VERSION}:")));
        assert!(!text.to_lowercase().contains("stricthostkeychecking"));
    }

    // Windows refuses --multiplex.
    #[cfg(unix)]
    #[test]
    fn multiplex_adds_control_lines_with_the_default_or_given_persist_time() {
        let path = ["--path", "/usr/local/bin/vers-tunnel"];
        let block = |extra: &[&str]| {
            let mut args = vec!["ssh-config"];
            args.extend_from_slice(&path);
            args.extend_from_slice(extra);
            render(&parse(args).unwrap()).unwrap()
        };
        let plain = block(&[]);
        assert!(!plain.contains("Control"), "{plain}");
        let shared = block(&["--multiplex"]);
        // The tunnel makes ~/.ssh, where ssh puts the socket, if it is missing.
        let with_dir = plain.replace(" %h\n", " --make-ssh-dir %h\n");
        assert_ne!(with_dir, plain);
        assert!(shared.starts_with(&with_dir), "{shared}");
        let added: Vec<&str> = shared[with_dir.len()..].lines().collect();
        assert!(added[0].starts_with("    # "), "{shared}");
        assert_eq!(
            added[1..],
            [
                "    ControlMaster auto",
                "    ControlPath ~/.ssh/vers-%C",
                "    ControlPersist 10m",
            ]
        );
        assert!(
            block(&["--multiplex", "--persist", "1h30m"]).ends_with("    ControlPersist 1h30m\n")
        );
        assert!(
            parse(["ssh-config", "--persist", "10m"]).is_err(),
            "--persist needs --multiplex"
        );
    }

    fn windows_word(path: &str) -> Result<String, Error> {
        proxy_command_word(Path::new(path), Platform::Windows)
    }

    /// The ProxyCommand line after ssh's own `%` expansion, for host `host`.
    #[cfg(unix)]
    fn expanded(word: &str, host: &str) -> String {
        format!("{word} %h")
            .replace("%%", "\u{0}")
            .replace("%h", host)
            .replace('\u{0}', "%")
    }

    /// The program Win32-OpenSSH runs for `line` (`build_commandline_string`
    /// and `CreateProcessW`): a line starting with `"` names the program up to
    /// the next `"`, taken literally.
    #[cfg(unix)]
    fn win32_program(line: &str) -> &str {
        let quoted = line.strip_prefix('"').expect("starts with a quote");
        &quoted[..quoted.find('"').expect("a closing quote")]
    }

    /// The words Git for Windows' ssh runs for `line` (`sh -c "exec LINE"`),
    /// as a POSIX sh reads them: this machine's /bin/sh.
    #[cfg(unix)]
    fn sh_words(line: &str) -> Vec<String> {
        let out = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(format!("exec printf '%s\\n' {line}"))
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect()
    }

    // Runs /bin/sh: on the Unix that tests the Windows rules.
    #[cfg(unix)]
    #[test]
    fn windows_paths_are_double_quoted_so_both_windows_ssh_clients_run_them() {
        for path in [
            r"C:\Users\me\bin\vers-tunnel.exe",
            r"C:\Program Files\Vers Tunnel\vers-tunnel.exe",
            r"C:\tools\x.exe y\vers-tunnel.exe",
            r"D:\it's 100%h\(x86) & more; now!\vers-tunnel.exe",
            r"C:\Users\Zoë\vers-tunnel.exe",
        ] {
            let word = windows_word(path).unwrap();
            assert!(word.starts_with('"') && word.ends_with('"'), "{word}");
            let line = expanded(&word, "vm1.vm.vers.sh");
            assert_eq!(win32_program(&line), path, "Win32-OpenSSH: {line}");
            assert_eq!(sh_words(&line), [path, "vm1.vm.vers.sh"], "sh -c: {line}");
        }
    }

    #[test]
    fn windows_paths_that_sh_would_change_are_refused() {
        for (path, why) in [
            (r"C:\$HOME\vers-tunnel.exe", "would expand"),
            (r"C:\a`b`\vers-tunnel.exe", "would expand"),
            (r"\\server\share\vers-tunnel.exe", "two backslashes"),
            (r"C:\a\\b\vers-tunnel.exe", "two backslashes"),
            ("C:\\a\nb\\vers-tunnel.exe", "control character"),
            ("", "empty"),
        ] {
            let err = windows_word(path).unwrap_err();
            assert_eq!(err.exit_code(), exit::USAGE, "{path:?}");
            assert!(err.to_string().contains(why), "{path:?}: {err}");
        }
    }

    #[test]
    fn the_windows_block_names_the_quoted_exe_and_refuses_multiplex() {
        let path = r"C:\Program Files\Vers\vers-tunnel.exe";
        let options = parse_for(["ssh-config", "--path", path], Platform::Windows).unwrap();
        let text = render(&options).unwrap();
        assert!(
            text.contains("\n    ProxyCommand \"C:\\Program Files\\Vers\\vers-tunnel.exe\" %h\n"),
            "{text}"
        );
        let unix = parse_for(["ssh-config", "--path", path], Platform::Unix).unwrap();
        assert!(
            render(&unix).unwrap().contains("ProxyCommand 'C:"),
            "Unix rules stay"
        );
        for args in [
            &["ssh-config", "--multiplex"][..],
            &["ssh-config", "--install", "--multiplex", "--persist", "1h"],
        ] {
            let err = parse_for(args, Platform::Windows).unwrap_err();
            assert_eq!(err.kind(), clap::error::ErrorKind::ArgumentConflict);
            assert_eq!(
                err.to_string(),
                "error: --multiplex is not available on Windows: Windows' OpenSSH has no \
                 connection sharing (ControlMaster)\n"
            );
            assert!(parse_for(args, Platform::Unix).is_ok());
        }
    }

    #[test]
    fn persist_takes_ssh_time_format_only() {
        for ok in [
            "600",
            "30s",
            "10m",
            "10M",
            "1h30m",
            "2d",
            "1W",
            "1h1h",
            "2147483647",
        ] {
            assert_eq!(parse_persist(ok).as_deref(), Ok(ok));
        }
        for (bad, why) in [
            ("", "empty"),
            ("0", "zero"),
            ("0m0s", "zero"),
            ("yes", "not a duration"),
            ("10x", "not a duration"),
            ("m", "not a duration"),
            ("1.5h", "not a duration"),
            ("-5", "not a duration"),
            (" 5m", "not a duration"),
            ("5m\n", "'5m\\n' is not"),
            ("2147483648", "longer than ssh can keep"),
            ("99999999999999999999w", "longer than ssh can keep"),
        ] {
            let err = parse_persist(bad).unwrap_err();
            assert!(err.contains(why), "{bad:?}: {err}");
            assert!(!err.contains('\n'), "{bad:?}: {err}");
        }
    }

    #[test]
    fn host_patterns_are_checked() {
        let options = parse(["ssh-config", "--host", " *.example.test other "]).unwrap();
        assert_eq!(options.host, "*.example.test other");
        assert!(parse(["ssh-config", "--host", " "]).is_err());
        assert!(parse(["ssh-config", "--host", "a\nb"]).is_err());
        assert!(parse(["ssh-config", "x.vm.vers.sh"]).is_err());
    }
}
