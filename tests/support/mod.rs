//! The test harness: a per-test temporary directory, a fluent builder that
//! runs the `bugpack` binary in it, and a zip builder that can make any
//! bundle, including the hostile ones a reader must refuse.

#![allow(dead_code)]

pub mod bounded;
pub mod hostile;
pub mod pty;
pub mod reports;
pub mod zipper;

use std::ffi::OsString;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;

use tempfile::TempDir;

/// Tests that load the whole machine or depend on its timing (the timing
/// axis, the examples) take turns through this lock, so that none of them
/// measures another's load as its own condition.
pub static MACHINE: Mutex<()> = Mutex::new(());

/// Whether `needle` occurs anywhere in `haystack` (a bundle entry, raw zip
/// bytes, an issue text).
pub fn contains(haystack: &[u8], needle: impl AsRef<[u8]>) -> bool {
    let needle = needle.as_ref();
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// A test's sandbox: a working directory and a private TMPDIR, both
/// removed at the end, so a test can tell what a command left behind.
pub struct Sandbox {
    root: TempDir,
}

impl Sandbox {
    pub fn new() -> Self {
        let root = tempfile::Builder::new()
            .prefix("bugpack-test-")
            .tempdir()
            .expect("temp dir");
        fs::create_dir(root.path().join("work")).unwrap();
        fs::create_dir(root.path().join("tmp")).unwrap();
        fs::create_dir(root.path().join("home")).unwrap();
        Self { root }
    }

    /// The working directory commands run in.
    pub fn dir(&self) -> PathBuf {
        self.root.path().join("work")
    }

    /// The HOME commands see.
    pub fn home(&self) -> PathBuf {
        self.root.path().join("home")
    }

    /// The TMPDIR commands see.
    pub fn tmp(&self) -> PathBuf {
        self.root.path().join("tmp")
    }

    /// A path inside the working directory.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir().join(rel)
    }

    /// Writes a file (creating parents) inside the working directory.
    pub fn write(&self, rel: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.path(rel);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).unwrap();
        }
        fs::write(&path, contents).unwrap();
        path
    }

    /// Starts a `bugpack` invocation in this sandbox.
    pub fn bugpack(&self) -> Run {
        Run {
            dir: self.dir(),
            tmp: self.tmp(),
            home: self.home(),
            wrapper: Vec::new(),
            args: Vec::new(),
            env: Vec::new(),
            stdin: None,
        }
    }

    /// Every path under the working directory and TMPDIR, relative, sorted.
    pub fn listing(&self) -> Vec<String> {
        let mut out = Vec::new();
        walk(self.root.path(), self.root.path(), &mut out);
        out.sort();
        out
    }
}

fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
    for entry in fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let path = entry.path();
        out.push(path.strip_prefix(base).unwrap().display().to_string());
        if entry.file_type().unwrap().is_dir() {
            walk(base, &path, out);
        }
    }
}

/// A `bugpack` invocation being built.
#[must_use]
pub struct Run {
    dir: PathBuf,
    tmp: PathBuf,
    home: PathBuf,
    /// A command `bugpack` runs under (`taskset -c 0`), if any.
    wrapper: Vec<OsString>,
    args: Vec<OsString>,
    env: Vec<(OsString, Option<OsString>)>,
    stdin: Option<Vec<u8>>,
}

impl Run {
    /// Runs `bugpack` under this command, e.g. `["taskset", "-c", "0"]`.
    pub fn under<I, S>(mut self, wrapper: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.wrapper = wrapper.into_iter().map(Into::into).collect();
        self
    }

    pub fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.args.push(arg.into());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.env.push((key.into(), Some(value.into())));
        self
    }

    pub fn env_remove(mut self, key: impl Into<OsString>) -> Self {
        self.env.push((key.into(), None));
        self
    }

    /// Runs `bugpack` in `dir` instead of the sandbox's working directory.
    pub fn in_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dir = dir.into();
        self
    }

    pub fn stdin(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.stdin = Some(bytes.into());
        self
    }

    /// The command this invocation runs, with its pipes set up.
    fn command(&self) -> Command {
        let bin = OsString::from(env!("CARGO_BIN_EXE_bugpack"));
        let mut cmd = match self.wrapper.split_first() {
            Some((program, rest)) => {
                let mut c = Command::new(program);
                c.args(rest).arg(bin);
                c
            }
            None => Command::new(bin),
        };
        cmd.args(&self.args)
            .current_dir(&self.dir)
            .env("TMPDIR", &self.tmp)
            .env("HOME", &self.home)
            .env_remove("XDG_CONFIG_HOME")
            .env_remove("XDG_DATA_HOME")
            .env_remove("SOURCE_DATE_EPOCH")
            .env_remove("NO_COLOR")
            .env_remove("RUST_BACKTRACE")
            .stdin(if self.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (key, value) in &self.env {
            match value {
                Some(v) => cmd.env(key, v),
                None => cmd.env_remove(key),
            };
        }
        cmd
    }

    /// Starts the binary and hands it over running, its stdout and stderr
    /// piped (stdin as set, else null).
    pub fn spawn(self) -> std::process::Child {
        let mut child = self.command().spawn().expect("spawn bugpack");
        if let Some(bytes) = self.stdin {
            let mut stdin = child.stdin.take().unwrap();
            std::thread::spawn(move || {
                let _ = stdin.write_all(&bytes);
            });
        }
        child
    }

    /// Runs the binary to completion and captures what it said.
    pub fn run(self) -> Outcome {
        let mut child = self.command().spawn().expect("spawn bugpack");
        if let Some(bytes) = self.stdin {
            let mut stdin = child.stdin.take().unwrap();
            std::thread::spawn(move || {
                let _ = stdin.write_all(&bytes);
            });
        }
        let output = child.wait_with_output().expect("wait for bugpack");
        Outcome {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            args: self.args,
        }
    }
}

/// What a finished `bugpack` run said and how it exited.
#[derive(Debug)]
pub struct Outcome {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    args: Vec<OsString>,
}

impl Outcome {
    fn context(&self) -> String {
        format!(
            "bugpack {:?}\nexit: {:?}\n--- stdout\n{}--- stderr\n{}",
            self.args, self.code, self.stdout, self.stderr
        )
    }

    pub fn code(self, expected: i32) -> Self {
        assert_eq!(self.code, Some(expected), "{}", self.context());
        self
    }

    pub fn success(self) -> Self {
        self.code(0)
    }

    pub fn stdout_has(self, needle: &str) -> Self {
        assert!(
            self.stdout.contains(needle),
            "stdout lacks {needle:?}\n{}",
            self.context()
        );
        self
    }

    pub fn stdout_lacks(self, needle: &str) -> Self {
        assert!(
            !self.stdout.contains(needle),
            "stdout has {needle:?}\n{}",
            self.context()
        );
        self
    }

    pub fn stderr_has(self, needle: &str) -> Self {
        assert!(
            self.stderr.contains(needle),
            "stderr lacks {needle:?}\n{}",
            self.context()
        );
        self
    }

    pub fn stderr_lacks(self, needle: &str) -> Self {
        assert!(
            !self.stderr.contains(needle),
            "stderr has {needle:?}\n{}",
            self.context()
        );
        self
    }

    /// An error is one line, starting `error:`, never a panic or backtrace.
    pub fn one_line_error(self) -> Self {
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "not one line\n{}", self.context());
        assert!(lines[0].starts_with("error: "), "{}", self.context());
        assert!(!self.stderr.contains("panicked"), "{}", self.context());
        self
    }
}

/// Live processes (zombies aside) whose command line or environment holds
/// `marker`, as `pid: command line`: every process a test's scenario or
/// command starts carries the marker in one of the two, so this finds what
/// survived, wherever it went (a new session, a PID namespace of its own).
/// Environments this user may not read are skipped.
pub fn processes_holding(marker: &str) -> Vec<String> {
    let me = std::process::id().to_string();
    let mut found = Vec::new();
    for entry in fs::read_dir("/proc").unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.parse::<u32>().is_err() || name == me {
            continue;
        }
        let Ok(stat) = fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        if stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z'))
        {
            continue;
        }
        let cmdline = fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let environ = fs::read(entry.path().join("environ")).unwrap_or_default();
        let holds = |bytes: &[u8]| bytes.windows(marker.len()).any(|w| w == marker.as_bytes());
        if holds(&cmdline) || holds(&environ) {
            let cmd = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            found.push(format!("{name}: {}", cmd.trim_end()));
        }
    }
    found
}

/// A marker for the processes of one test: `base` (a number, so that
/// `sleep MARKER` works) followed by this test binary's pid, so that two
/// suites running side by side never see each other's processes.
pub fn marker(base: &str) -> String {
    format!("{base}{}", std::process::id())
}

/// When dropped, kills every process still holding its marker (see
/// [`processes_holding`]): a test that fails halfway must not leave its
/// scenario running. Check for survivors before it drops.
pub struct KillOnDrop<'a>(pub &'a str);

impl Drop for KillOnDrop<'_> {
    fn drop(&mut self) {
        for p in processes_holding(self.0) {
            if let Some(pid) = p.split(':').next().and_then(|p| p.parse().ok()) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
    }
}

/// The HTML tags a GitHub-flavoured Markdown renderer makes of `md`, with
/// GitHub's extensions on and raw HTML passed through (as GitHub passes
/// the tags it allows), so that any HTML a run smuggled in shows up.
pub fn rendered_tags(md: &str) -> (String, std::collections::BTreeMap<String, usize>) {
    use pulldown_cmark::{Options, Parser, html};
    let mut html_out = String::new();
    html::push_html(
        &mut html_out,
        Parser::new_ext(md, Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH),
    );
    let mut tags = std::collections::BTreeMap::new();
    for piece in html_out.split('<').skip(1) {
        let name: String = piece
            .trim_start_matches('/')
            .chars()
            .take_while(char::is_ascii_alphanumeric)
            .collect();
        if !piece.starts_with('/') {
            *tags.entry(name).or_insert(0) += 1;
        }
    }
    (html_out, tags)
}
