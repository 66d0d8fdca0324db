//! `vers-tunnel ssh-config`: the ssh_config block that sends `ssh root@{vmId}.vm.vers.sh`
//! through this binary, with its path written so that ssh and the shell read it back intact.

use std::ffi::OsString;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use clap::Parser;

use crate::error::exit;
use crate::version::VERSION;

/// The first argument that selects this subcommand instead of a tunnel.
pub const SUBCOMMAND: &str = "ssh-config";

/// The hosts the block applies to unless `--host` says otherwise.
pub const DEFAULT_HOST: &str = "*.vm.vers.sh";

const AFTER_HELP: &str = "\
Put the output in ~/.ssh/config above any `Host *` block, since ssh uses the first value
it finds for each option (`install.sh --ssh-config` does this for you), or in a file under
/etc/ssh/ssh_config.d/ for every user of a machine:

    vers-tunnel ssh-config > /etc/ssh/ssh_config.d/vers-tunnel.conf

Host-key checking is left on: the edge's TLS certificate proves you reached the Vers
edge, and only the VM's ssh host key proves you reached the VM.";

/// Raw `ssh-config` arguments.
#[derive(Debug, Parser)]
#[command(
    name = "vers-tunnel ssh-config",
    bin_name = "vers-tunnel ssh-config",
    about = "Print an ssh_config block that makes ssh reach Vers VMs through vers-tunnel",
    after_help = AFTER_HELP
)]
struct Args {
    /// Host pattern(s) the block applies to, in ssh_config `Host` syntax
    #[arg(long, value_name = "PATTERN", default_value = DEFAULT_HOST, value_parser = parse_pattern)]
    host: String,

    /// The vers-tunnel binary ssh should run [default: this binary's absolute path]
    #[arg(long, value_name = "BIN")]
    path: Option<PathBuf>,
}

/// What to print, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// The `Host` line's patterns.
    pub host: String,
    /// The binary to name in `ProxyCommand`; `None` for this binary.
    pub path: Option<PathBuf>,
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

/// Parses the arguments after the program name, starting with `ssh-config` itself.
pub fn parse<I, T>(args: I) -> Result<Options, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let args = Args::try_parse_from(args)?;
    Ok(Options {
        host: args.host,
        path: args.path,
    })
}

/// The block for `options`, ending in a newline.
pub fn render(options: &Options) -> Result<String, Error> {
    let path = match &options.path {
        Some(path) => path.clone(),
        None => own_path()?,
    };
    let command = proxy_command_word(&path)?;
    Ok(format!(
        "# vers-tunnel {VERSION}: ssh to Vers VMs through the edge (printed by `vers-tunnel ssh-config`)\n\
         Host {host}\n\
         \x20   User root\n\
         \x20   ProxyCommand {command} %h\n\
         \x20   ServerAliveInterval 30\n",
        host = options.host
    ))
}

/// This binary, as an absolute path without symlinks, so the block keeps working
/// whatever the current directory or PATH of the ssh that runs it.
fn own_path() -> Result<PathBuf, Error> {
    std::env::current_exe()
        .and_then(|exe| exe.canonicalize())
        .map_err(Error::OwnPath)
}

/// `path` as one word of a ProxyCommand. ssh first expands `%` tokens, then runs
/// the line with `$SHELL -c "exec ..."`: so the path is shell-quoted when it holds
/// anything but plainly safe characters, and every `%` is doubled.
fn proxy_command_word(path: &Path) -> Result<String, Error> {
    let unwritable = |reason| Error::Unwritable {
        path: path.to_path_buf(),
        reason,
    };
    let text = path
        .to_str()
        .ok_or_else(|| unwritable("it is not valid UTF-8"))?;
    if text.is_empty() {
        return Err(unwritable("it is empty"));
    }
    if text.chars().any(char::is_control) {
        return Err(unwritable(
            "it contains a control character (a newline would end the line)",
        ));
    }
    let plain = |c: char| c.is_ascii_alphanumeric() || "/._-+,:@%".contains(c);
    let word = if text.chars().all(plain) {
        text.to_string()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    };
    Ok(word.replace('%', "%%"))
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
        proxy_command_word(Path::new(path)).unwrap()
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
            let err = proxy_command_word(Path::new(path)).unwrap_err();
            assert_eq!(err.exit_code(), exit::USAGE, "{path:?}");
        }
    }

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

    #[test]
    fn host_patterns_are_checked() {
        let options = parse(["ssh-config", "--host", " *.example.test other "]).unwrap();
        assert_eq!(options.host, "*.example.test other");
        assert!(parse(["ssh-config", "--host", " "]).is_err());
        assert!(parse(["ssh-config", "--host", "a\nb"]).is_err());
        assert!(parse(["ssh-config", "x.vm.vers.sh"]).is_err());
    }
}
