//! What vers-tunnel does for ssh beyond the tunnel itself: the ssh_config
//! block (`ssh-config`), kept in the user's ssh config (`ssh-config
//! --install`), and the ControlPath directory (`--make-ssh-dir`).

pub mod config;
pub(crate) mod dir;
pub mod file;
