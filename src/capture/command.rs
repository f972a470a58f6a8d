//! `env/command.yaml`: the captured command exactly as it ran, so that a
//! maintainer can run it again in a checkout of the same project: its argv,
//! its working directory relative to the repository's root, and its
//! standard input when that was a file or a pipe. And the part of the
//! user's environment a program reads, which the captured scenario gives
//! every replay.
//!
//! Everything here comes from redacted sources: argv through the redactor,
//! the environment from `env/vars.yaml`'s redacted values. A variable whose
//! value was redacted is left out of the scenario (a placeholder is no use
//! to a program) and named as left out, never passed on.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::observe::TakenInput;

/// The entry that holds the command's recorded standard input.
pub const STDIN_ENTRY: &str = "env/stdin";
/// The most standard input recorded.
pub const MAX_STDIN: u64 = 4 << 20;

/// What `env/command.yaml` records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandRecord {
    /// The program and its arguments, redacted.
    pub argv: Vec<String>,
    /// The working directory relative to the repository's root (`.` at the
    /// root); absent outside a repository.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    /// The recorded standard input, in [`STDIN_ENTRY`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdin: Option<TakenInput>,
    /// Variables of the user's environment the scenario does not give the
    /// run, each `NAME (why)`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env_left_out: Vec<String>,
}

/// How [`CommandRecord::env_left_out`] marks a variable that held a secret.
pub const SECRET_LEFT_OUT: &str = " (a secret)";

/// Variables of a shell session, a terminal or a desktop: they say where
/// the user sat, not how the program behaves, and replay sets its own.
const SESSION_VARS: &[&str] = &[
    "_",
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "USERNAME",
    "SHELL",
    "PWD",
    "OLDPWD",
    "SHLVL",
    "TERM",
    "COLORTERM",
    "COLUMNS",
    "LINES",
    "DISPLAY",
    "WAYLAND_DISPLAY",
    "XAUTHORITY",
    "WINDOWID",
    "MAIL",
    "HOSTNAME",
    "HOST",
    "LS_COLORS",
    "LSCOLORS",
    "LESS",
    "LESSOPEN",
    "LESSCLOSE",
    "PAGER",
    "MANPAGER",
    "MANPATH",
    "INFOPATH",
    "EDITOR",
    "VISUAL",
    "PS1",
    "PS2",
    "PS4",
    "PROMPT_COMMAND",
    "HISTFILE",
    "HISTSIZE",
    "HISTFILESIZE",
    "HISTCONTROL",
    "INVOCATION_ID",
    "JOURNAL_STREAM",
    "MOTD_SHOWN",
    "TMUX",
    "TMUX_PANE",
    "STY",
    "WINDOW",
    "GPG_AGENT_INFO",
    "GPG_TTY",
    "SESSION_MANAGER",
    "DESKTOP_SESSION",
    "SYSTEMD_EXEC_PID",
    "TMPDIR",
];

/// Prefixes of session variables (see [`SESSION_VARS`]).
const SESSION_PREFIXES: &[&str] = &[
    "SSH_",
    "XDG_",
    "DBUS_",
    "GNOME_",
    "KDE_",
    "VTE_",
    "ITERM_",
    "KONSOLE_",
    "TERM_",
    "LC_TERMINAL",
    "SUDO_",
    "BUGPACK_",
    "VSCODE_",
];

/// The environment a program reads, from `env/vars.yaml`'s redacted
/// values: locale, time zone and the project's own settings, without
/// session variables, secrets or paths of the user's machine. Returns the
/// variables and those left out, `NAME (why)`.
pub fn program_env(vars: &BTreeMap<String, String>) -> (BTreeMap<String, String>, Vec<String>) {
    let mut kept = BTreeMap::new();
    let mut left_out = Vec::new();
    for (name, value) in vars {
        if SESSION_VARS.contains(&name.as_str())
            || SESSION_PREFIXES.iter().any(|p| name.starts_with(p))
        {
            continue;
        }
        if value.contains("[REDACTED:") {
            left_out.push(format!("{name}{SECRET_LEFT_OUT}"));
        } else if is_host_path(value) {
            left_out.push(format!("{name} (a path on the user's machine)"));
        } else {
            kept.insert(name.clone(), value.clone());
        }
    }
    (kept, left_out)
}

/// Whether `value` is an absolute path or a list of them (`/a:/b`), which
/// would point nowhere on another machine.
fn is_host_path(value: &str) -> bool {
    value.starts_with('/')
        || value.starts_with("~/")
        || value.contains(":/") && !value.contains("://")
}

/// `cwd` relative to `root` (`.` when they are the same); `None` when
/// `cwd` is not inside `root`. Both are compared as the system resolves them.
pub fn relative_cwd(cwd: &Path, root: &Path) -> Option<String> {
    let canon = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let rel = canon(cwd).strip_prefix(canon(root)).ok()?.to_path_buf();
    let text = rel.to_str()?.to_owned();
    Some(if text.is_empty() {
        ".".to_owned()
    } else {
        text
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_program_env_keeps_settings_and_leaves_out_the_rest() {
        let vars = BTreeMap::from([
            ("APP_BATCH".to_owned(), "3".to_owned()),
            ("TZ".to_owned(), "Europe/Paris".to_owned()),
            ("LANG".to_owned(), "fr_FR.UTF-8".to_owned()),
            ("PATH".to_owned(), "/usr/bin".to_owned()),
            ("SSH_TTY".to_owned(), "/dev/pts/1".to_owned()),
            ("API_TOKEN".to_owned(), "[REDACTED:env:1]".to_owned()),
            ("VIRTUAL_ENV".to_owned(), "/home/u/app/.venv".to_owned()),
            ("PYTHONPATH".to_owned(), "/opt/a:/opt/b".to_owned()),
            ("UPSTREAM".to_owned(), "http://example.com/x".to_owned()),
        ]);
        let (kept, left) = program_env(&vars);
        assert_eq!(
            kept.keys().collect::<Vec<_>>(),
            ["APP_BATCH", "LANG", "TZ", "UPSTREAM"]
        );
        assert_eq!(
            left,
            [
                "API_TOKEN (a secret)",
                "PYTHONPATH (a path on the user's machine)",
                "VIRTUAL_ENV (a path on the user's machine)"
            ]
        );
    }

    #[test]
    fn cwd_is_named_from_the_root() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("app/sub")).unwrap();
        assert_eq!(
            relative_cwd(&dir.path().join("app/sub"), dir.path()).as_deref(),
            Some("app/sub")
        );
        assert_eq!(relative_cwd(dir.path(), dir.path()).as_deref(), Some("."));
        assert_eq!(relative_cwd(Path::new("/"), dir.path()), None);
    }
}
