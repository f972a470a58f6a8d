//! Running the user's command once, the way they see it fail.
//!
//! The command runs with `duct` in its own process group, marked as one
//! [`Tree`], so that at the timeout (or on Ctrl-C) everything it started is
//! stopped, including grandchildren that left the group with `setsid`. Its
//! stdout and stderr go through pipes that a thread per stream drains at
//! once into a pair of rotating files, so the pipes never fill (the child
//! never blocks on us) and neither memory nor disk grows past twice the
//! tail kept, even for a command that prints gigabytes. This module never
//! interprets the output; it records what happened.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::fd::AsFd;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::Signal;
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

use super::files::{TAIL_CONTEXT, Tail};
use super::interrupt::{Interrupt, Interrupted};
use super::tree::{MARKER, Tree};

/// How long a hung tree gets between SIGTERM and SIGKILL.
const KILL_GRACE: Duration = Duration::from_secs(2);
/// How often the run is checked for exit, timeout and interruption.
const TICK: Duration = Duration::from_millis(10);

/// What to run and how. Its `Debug` leaves out the arguments, which may
/// hold secrets.
#[derive(Clone)]
pub struct Spec {
    /// The program and its arguments, run directly (no shell).
    pub argv: Vec<String>,
    pub cwd: PathBuf,
    pub timeout: Duration,
    /// How many bytes of the end of each stream to keep.
    pub tail_bytes: u64,
    /// The whole environment, when not bugpack's own.
    pub env: Option<BTreeMap<String, String>>,
    pub stdin: Stdin,
}

/// What the command reads on its standard input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stdin {
    /// Nothing (`/dev/null`).
    Null,
    /// A file (the input recorded by an earlier run).
    File(PathBuf),
    /// bugpack's own standard input when it is a file or a pipe (anything
    /// else, a terminal say, gives `/dev/null`), its first `cap` bytes
    /// copied to `record` on the way.
    Record { record: PathBuf, cap: u64 },
}

/// What a run took of bugpack's standard input (`Stdin::Record`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TakenInput {
    /// `file` or `pipe`.
    pub kind: InputKind,
    /// Bytes recorded.
    pub bytes: u64,
    /// The input went on past what was recorded (past the cap, or still
    /// open when the command ended).
    pub truncated: bool,
}

/// Where bugpack's standard input comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InputKind {
    File,
    Pipe,
}

impl InputKind {
    /// bugpack's standard input as a command could read it again: a
    /// regular file or a pipe; `None` for a terminal, `/dev/null` or a
    /// socket.
    pub fn of_stdin() -> Option<Self> {
        let meta = nix::sys::stat::fstat(io::stdin().as_fd()).ok()?;
        match nix::sys::stat::SFlag::from_bits_truncate(meta.st_mode)
            & nix::sys::stat::SFlag::S_IFMT
        {
            nix::sys::stat::SFlag::S_IFREG => Some(Self::File),
            nix::sys::stat::SFlag::S_IFIFO => Some(Self::Pipe),
            _ => None,
        }
    }
}

impl std::fmt::Debug for Spec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spec")
            .field("args", &self.argv.len())
            .field("cwd", &self.cwd)
            .field("timeout", &self.timeout)
            .field("tail_bytes", &self.tail_bytes)
            .field("env", &self.env.as_ref().map(BTreeMap::len))
            .field("stdin", &self.stdin)
            .finish()
    }
}

/// How the run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Ending {
    /// It exited by itself.
    Exited,
    /// A signal ended it.
    Signaled,
    /// It was still running at the timeout and was stopped: a hang.
    Hang,
}

/// What happened, as `observed/result.yaml` records it. No volatile values
/// beyond what the run itself decided (its duration).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Observed {
    /// The command as a shell line.
    pub command: String,
    pub ending: Ending,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<String>,
    pub duration_ms: u64,
    pub timeout_ms: u64,
    pub stdout_bytes: u64,
    pub stderr_bytes: u64,
    /// Whether the tails under `observed/` are cut (the streams were longer).
    pub stdout_truncated: bool,
    pub stderr_truncated: bool,
}

/// A finished observation: the record, and the output tails (not redacted).
#[derive(Debug)]
pub struct Observation {
    pub observed: Observed,
    pub stdout_tail: Tail,
    pub stderr_tail: Tail,
    /// What was recorded of bugpack's standard input (`Stdin::Record`).
    pub stdin: Option<TakenInput>,
}

/// Records the first `cap` bytes of bugpack's standard input, a regular
/// file, from where it stands, without moving it (the command reads it
/// after).
pub fn record_file_input(record: &Path, cap: u64) -> io::Result<TakenInput> {
    let fd = io::stdin().as_fd().try_clone_to_owned()?;
    let file = File::from(fd);
    let start =
        nix::unistd::lseek(&file, 0, nix::unistd::Whence::SeekCur).map_err(io::Error::from)?;
    let start = u64::try_from(start).unwrap_or(0);
    let len = file.metadata()?.len();
    let mut out = File::create(record)?;
    let mut buf = vec![0u8; 64 << 10];
    let mut at = start;
    let end = len.min(start.saturating_add(cap));
    while at < end {
        let want = usize::try_from(end - at)
            .unwrap_or(usize::MAX)
            .min(buf.len());
        let n = std::os::unix::fs::FileExt::read_at(&file, &mut buf[..want], at)?;
        if n == 0 {
            break;
        }
        out.write_all(&buf[..n])?;
        at += n as u64;
    }
    Ok(TakenInput {
        kind: InputKind::File,
        bytes: at - start,
        truncated: len > at,
    })
}

/// The command's standard input (`None`: `/dev/null`), the thread that
/// copies bugpack's own to it when that is a pipe, and what was recorded.
#[derive(Default)]
struct Input {
    file: Option<File>,
    teed: Option<Teed>,
    taken: Option<TakenInput>,
}

fn input(stdin: &Stdin, stop: &Arc<AtomicBool>) -> anyhow::Result<Input> {
    match stdin {
        Stdin::Null => Ok(Input::default()),
        Stdin::File(path) => {
            let f = File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
            Ok(Input {
                file: Some(f),
                ..Input::default()
            })
        }
        Stdin::Record { record, cap } => match InputKind::of_stdin() {
            None => Ok(Input::default()),
            Some(InputKind::File) => {
                let taken =
                    record_file_input(record, *cap).context("cannot record the standard input")?;
                let fd = io::stdin().as_fd().try_clone_to_owned()?;
                Ok(Input {
                    file: Some(File::from(fd)),
                    teed: None,
                    taken: Some(taken),
                })
            }
            Some(InputKind::Pipe) => {
                let (r, w) = os_pipe::pipe().context("cannot create a pipe")?;
                let out = File::create(record)
                    .with_context(|| format!("cannot create {}", record.display()))?;
                Ok(Input {
                    file: Some(File::from(std::os::fd::OwnedFd::from(r))),
                    teed: Some(tee(w, out, *cap, Arc::clone(stop))),
                    taken: None,
                })
            }
        },
    }
}

type Teed = thread::JoinHandle<TakenInput>;

/// Copies bugpack's standard input (a pipe) to `to`, the command's, and
/// its first `cap` bytes to `record`, until the input ends, the command
/// stops reading, or `stop` is set.
fn tee(to: os_pipe::PipeWriter, mut record: File, cap: u64, stop: Arc<AtomicBool>) -> Teed {
    thread::spawn(move || {
        let mut to = to;
        let mut taken = TakenInput {
            kind: InputKind::Pipe,
            bytes: 0,
            truncated: false,
        };
        let stdin = io::stdin();
        let fd = stdin.as_fd();
        let mut buf = vec![0u8; 64 << 10];
        loop {
            let ready = {
                let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
                matches!(poll(&mut fds, PollTimeout::from(50u16)), Ok(n) if n > 0)
            };
            if !ready {
                if stop.load(Ordering::SeqCst) {
                    taken.truncated = true;
                    break;
                }
                continue;
            }
            let n = match nix::unistd::read(fd, &mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => break,
            };
            let keep = usize::try_from(cap.saturating_sub(taken.bytes))
                .unwrap_or(usize::MAX)
                .min(n);
            if keep < n {
                taken.truncated = true;
            }
            if keep > 0 && record.write_all(&buf[..keep]).is_ok() {
                taken.bytes += keep as u64;
            }
            if to.write_all(&buf[..n]).is_err() {
                // The command closed its input: what it did not read stays unread.
                taken.truncated = true;
                break;
            }
        }
        taken
    })
}

/// Runs `spec`, staging output under `staging`. The run's tree is
/// registered with `interrupt` while it lives; once an interrupt arrives
/// the tree is stopped and [`Interrupted`] returned.
pub fn run(spec: &Spec, staging: &Path, interrupt: &Interrupt) -> anyhow::Result<Observation> {
    let shown = shell_line(&spec.argv);
    let (program, args) = spec
        .argv
        .split_first()
        .context("no command given after `--`")?;
    let (out_r, out_w) = os_pipe::pipe().context("cannot create a pipe")?;
    let (err_r, err_w) = os_pipe::pipe().context("cannot create a pipe")?;
    let out_sink = TailFiles::new(staging, "stdout", spec.tail_bytes)?;
    let err_sink = TailFiles::new(staging, "stderr", spec.tail_bytes)?;
    let stop = Arc::new(AtomicBool::new(false));
    let out_thread = drain(out_r, out_sink, Arc::clone(&stop));
    let err_thread = drain(err_r, err_sink, Arc::clone(&stop));
    let Input {
        file: in_file,
        teed,
        mut taken,
    } = match input(&spec.stdin, &stop) {
        Ok(i) => i,
        Err(e) => {
            give_up(&stop, out_thread, err_thread);
            return Err(e);
        }
    };

    let started = Instant::now();
    let token = Tree::new_token();
    let spawned = interrupt.spawn(|| {
        let mut expr = duct::cmd(program, args);
        if let Some(env) = &spec.env {
            expr = expr.full_env(env);
        }
        expr = match in_file {
            Some(f) => expr.stdin_file(f),
            None => expr.stdin_null(),
        };
        let handle = expr
            .dir(&spec.cwd)
            .env(MARKER, &token)
            .stdout_file(out_w)
            .stderr_file(err_w)
            .unchecked()
            .before_spawn(|cmd| {
                cmd.process_group(0);
                Ok(())
            })
            .start()
            .map_err(|e| spawn_error(program, e))?;
        let root = handle
            .pids()
            .first()
            .and_then(|&p| i32::try_from(p).ok())
            .map(Pid::from_raw)
            .context("the command started without a process id")?;
        let tree = Tree { root, token };
        Ok(((handle, tree.clone()), tree))
    });
    let (handle, tree) = match spawned {
        Ok(h) => h,
        Err(e) => {
            give_up(&stop, out_thread, err_thread);
            return Err(e);
        }
    };

    let mut ending = None;
    let status = loop {
        match handle.try_wait() {
            Ok(Some(output)) => break Some(output.status),
            Ok(None) => {}
            Err(e) => {
                tree.stop(Duration::ZERO);
                interrupt.finished(&tree);
                give_up(&stop, out_thread, err_thread);
                return Err(anyhow::Error::new(e).context(format!("cannot wait for `{shown}`")));
            }
        }
        if interrupt.is_set() {
            tree.stop(KILL_GRACE);
            let _ = handle.wait();
            interrupt.finished(&tree);
            give_up(&stop, out_thread, err_thread);
            return Err(Interrupted.into());
        }
        if started.elapsed() >= spec.timeout {
            ending = Some(Ending::Hang);
            tree.stop(KILL_GRACE);
            break handle.wait().ok().map(|o| o.status);
        }
        thread::sleep(TICK);
    };
    let duration = started.elapsed();
    // The command is over; stop anything it left behind, so that a
    // straggler holding the pipes open cannot keep us waiting.
    tree.stop(Duration::ZERO);
    interrupt.finished(&tree);
    stop.store(true, Ordering::SeqCst);
    let (stdout_tail, stdout_bytes) = join(out_thread)?;
    let (stderr_tail, stderr_bytes) = join(err_thread)?;
    if let Some(t) = teed {
        taken = t.join().ok();
    }

    let (exit_code, signal) = match status {
        Some(s) => {
            use std::os::unix::process::ExitStatusExt as _;
            (
                s.code(),
                s.signal()
                    .and_then(|n| Signal::try_from(n).ok())
                    .map(|sig| sig.as_str().to_owned()),
            )
        }
        None => (None, None),
    };
    let ending = ending.unwrap_or(if signal.is_some() {
        Ending::Signaled
    } else {
        Ending::Exited
    });
    Ok(Observation {
        observed: Observed {
            command: shown,
            ending,
            exit_code: if ending == Ending::Hang {
                None
            } else {
                exit_code
            },
            signal: if ending == Ending::Hang { None } else { signal },
            duration_ms: u64::try_from(duration.as_millis()).unwrap_or(u64::MAX),
            timeout_ms: u64::try_from(spec.timeout.as_millis()).unwrap_or(u64::MAX),
            stdout_bytes,
            stderr_bytes,
            stdout_truncated: stdout_tail.cut,
            stderr_truncated: stderr_tail.cut,
        },
        stdout_tail,
        stderr_tail,
        stdin: taken,
    })
}

/// Runs a short command through `sh -c` and returns the first line of its
/// output, or why there is none. For tool versions: bounded in time and
/// size, and stopped (with an error) by an interrupt.
pub fn first_line(
    command: &str,
    cwd: &Path,
    timeout: Duration,
    staging: &Path,
    interrupt: &Interrupt,
) -> Result<String, Interrupted> {
    let spec = Spec {
        argv: vec!["sh".into(), "-c".into(), command.into()],
        cwd: cwd.to_path_buf(),
        timeout,
        tail_bytes: 4096,
        env: None,
        stdin: Stdin::Null,
    };
    let dir = match tempfile::tempdir_in(staging) {
        Ok(d) => d,
        Err(e) => return Ok(format!("(not run: {e})")),
    };
    let o = match run(&spec, dir.path(), interrupt) {
        Err(e) if e.is::<Interrupted>() => return Err(Interrupted),
        Err(e) => return Ok(format!("(not run: {e:#})")),
        Ok(o) => o,
    };
    if o.observed.ending == Ending::Hang {
        return Ok(format!("(no answer within {}s)", timeout.as_secs()));
    }
    let text = if o
        .stdout_tail
        .kept()
        .iter()
        .any(|b| !b.is_ascii_whitespace())
    {
        o.stdout_tail.kept()
    } else {
        o.stderr_tail.kept()
    };
    let line = String::from_utf8_lossy(text)
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("")
        .chars()
        .take(200)
        .collect::<String>();
    Ok(match o.observed.exit_code {
        Some(0) => line,
        Some(code) if line.is_empty() => format!("(exit {code})"),
        Some(code) => format!("{line} (exit {code})"),
        None => format!("{line} (killed)"),
    })
}

/// The command as one shell-quoted line, for `run:` and for display.
pub fn shell_line(argv: &[String]) -> String {
    shlex::try_join(argv.iter().map(String::as_str)).unwrap_or_else(|_| argv.join(" "))
}

fn spawn_error(program: &str, e: io::Error) -> anyhow::Error {
    if e.kind() == io::ErrorKind::NotFound {
        crate::error::usage(format!(
            "cannot run `{program}`: no such command; check the command after `--`"
        ))
    } else if e.kind() == io::ErrorKind::PermissionDenied {
        crate::error::usage(format!(
            "cannot run `{program}`: permission denied; is it executable?"
        ))
    } else {
        anyhow::Error::new(e).context(format!("cannot run `{program}`"))
    }
}

type Drained = thread::JoinHandle<io::Result<(Tail, u64)>>;

/// Drains a pipe into `sink` until EOF, or until `stop` is set and nothing
/// more arrives (a grandchild may hold the pipe open forever).
fn drain(reader: os_pipe::PipeReader, mut sink: TailFiles, stop: Arc<AtomicBool>) -> Drained {
    thread::spawn(move || {
        let mut reader = reader;
        let mut buf = vec![0u8; 64 << 10];
        loop {
            let ready = {
                let mut fds = [PollFd::new(reader.as_fd(), PollFlags::POLLIN)];
                match poll(&mut fds, PollTimeout::from(50u16)) {
                    Ok(n) => n > 0,
                    Err(nix::errno::Errno::EINTR) => false,
                    Err(e) => return Err(io::Error::from(e)),
                }
            };
            if !ready {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                continue;
            }
            match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => sink.write_all(&buf[..n])?,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        sink.finish()
    })
}

/// Stops the readers of a run that will not be recorded.
fn give_up(stop: &AtomicBool, out: Drained, err: Drained) {
    stop.store(true, Ordering::SeqCst);
    let _ = join(out);
    let _ = join(err);
}

fn join(thread: Drained) -> anyhow::Result<(Tail, u64)> {
    thread
        .join()
        .map_err(|_| anyhow::anyhow!("the output reader thread failed"))?
        .context("cannot record the command's output")
}

/// Two files written in turn: when the current one holds `cap` bytes (the
/// tail kept and the context before it) the other is truncated and takes
/// over, so those bytes are always on disk and no more than `2 * cap` ever are.
struct TailFiles {
    files: [File; 2],
    paths: [PathBuf; 2],
    current: usize,
    in_current: u64,
    /// The tail kept.
    tail: u64,
    cap: u64,
    total: u64,
    rotated: bool,
}

impl TailFiles {
    fn new(dir: &Path, stem: &str, tail: u64) -> io::Result<Self> {
        let open = |i: usize| -> io::Result<(File, PathBuf)> {
            let path = dir.join(format!("{stem}.{i}"));
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .open(&path)?;
            Ok((file, path))
        };
        let (a, pa) = open(0)?;
        let (b, pb) = open(1)?;
        Ok(Self {
            files: [a, b],
            paths: [pa, pb],
            current: 0,
            in_current: 0,
            tail,
            cap: tail.saturating_add(TAIL_CONTEXT).max(1),
            total: 0,
            rotated: false,
        })
    }

    fn write_all(&mut self, mut data: &[u8]) -> io::Result<()> {
        self.total += data.len() as u64;
        while !data.is_empty() {
            if self.in_current >= self.cap {
                self.current = 1 - self.current;
                let f = &mut self.files[self.current];
                f.set_len(0)?;
                f.seek(SeekFrom::Start(0))?;
                self.in_current = 0;
                self.rotated = true;
            }
            let room = usize::try_from(self.cap - self.in_current).unwrap_or(usize::MAX);
            let n = room.min(data.len());
            self.files[self.current].write_all(&data[..n])?;
            self.in_current += n as u64;
            data = &data[n..];
        }
        Ok(())
    }

    /// The tail with its context (see [`Tail`]) and the total seen.
    fn finish(mut self) -> io::Result<(Tail, u64)> {
        let older = 1 - self.current;
        let mut window = Vec::new();
        if self.rotated {
            let f = &mut self.files[older];
            f.seek(SeekFrom::Start(0))?;
            f.read_to_end(&mut window)?;
        }
        let f = &mut self.files[self.current];
        f.seek(SeekFrom::Start(0))?;
        f.read_to_end(&mut window)?;
        let cap = usize::try_from(self.cap).unwrap_or(usize::MAX);
        if window.len() > cap {
            window.drain(..window.len() - cap);
        }
        for p in &self.paths {
            let _ = fs::remove_file(p);
        }
        let at_start = self.total <= window.len() as u64;
        let cut = if self.total > self.tail {
            window
                .len()
                .saturating_sub(usize::try_from(self.tail).unwrap_or(usize::MAX))
        } else {
            0
        };
        Ok((Tail::from_window(window, cut, at_start), self.total))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(script: &str, timeout_ms: u64) -> Spec {
        Spec {
            argv: vec!["sh".into(), "-c".into(), script.into()],
            cwd: std::env::temp_dir(),
            timeout: Duration::from_millis(timeout_ms),
            tail_bytes: 1024,
            env: None,
            stdin: Stdin::Null,
        }
    }

    #[test]
    fn exit_codes_and_output_are_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let o = run(
            &spec("echo out; echo err >&2; exit 3", 5000),
            dir.path(),
            &Interrupt::new(),
        )
        .unwrap();
        assert_eq!(o.observed.ending, Ending::Exited);
        assert_eq!(o.observed.exit_code, Some(3));
        assert_eq!(o.stdout_tail.kept(), b"out\n");
        assert_eq!(o.stderr_tail.kept(), b"err\n");
        assert!(!o.observed.stdout_truncated);
    }

    #[test]
    fn a_hang_is_stopped_with_its_whole_tree() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("grandchild.pid");
        let script = format!("sleep 300 & echo $! > {}; wait", marker.display());
        let o = run(&spec(&script, 300), dir.path(), &Interrupt::new()).unwrap();
        assert_eq!(o.observed.ending, Ending::Hang);
        let pid: i32 = fs::read_to_string(&marker).unwrap().trim().parse().unwrap();
        // The grandchild is gone (or a zombie about to be reaped by init).
        thread::sleep(Duration::from_millis(100));
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        assert!(stat.is_empty() || stat.contains(") Z "), "{stat}");
    }

    #[test]
    fn a_flood_of_output_keeps_only_the_tail() {
        let dir = tempfile::tempdir().unwrap();
        let o = run(
            &spec("yes line | head -c 5000000; echo END", 20_000),
            dir.path(),
            &Interrupt::new(),
        )
        .unwrap();
        assert_eq!(o.observed.stdout_bytes, 5_000_004);
        // The cut falls on a line boundary here: all 1024 bytes are kept.
        assert_eq!(o.stdout_tail.kept().len(), 1024);
        assert!(o.stdout_tail.kept().starts_with(b"line\n"));
        assert!(o.stdout_tail.kept().ends_with(b"line\nEND\n"));
        assert!(o.observed.stdout_truncated);
        // Nothing left in the staging directory.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn an_interrupt_stops_the_run_and_its_tree() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("child.pid");
        let script = format!("sleep 300 & echo $! > {}; wait", marker.display());
        let interrupt = Interrupt::new();
        let err = thread::scope(|s| {
            s.spawn(|| {
                while !marker.exists() {
                    thread::sleep(Duration::from_millis(10));
                }
                interrupt.set();
            });
            run(&spec(&script, 60_000), dir.path(), &interrupt).unwrap_err()
        });
        assert!(err.is::<Interrupted>(), "{err:#}");
        let pid: i32 = fs::read_to_string(&marker).unwrap().trim().parse().unwrap();
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        assert!(stat.is_empty() || stat.contains(") Z "), "{stat}");
    }

    #[test]
    fn a_missing_command_is_a_usage_error() {
        let dir = tempfile::tempdir().unwrap();
        let s = Spec {
            argv: vec!["definitely-not-a-command-xyz".into()],
            ..spec("", 1000)
        };
        let err = run(&s, dir.path(), &Interrupt::new()).unwrap_err();
        assert_eq!(
            crate::error::ErrorKind::of(&err),
            crate::error::ErrorKind::Usage
        );
    }

    #[test]
    fn first_line_of_a_version() {
        let dir = tempfile::tempdir().unwrap();
        let never = Interrupt::new();
        let line = first_line(
            "echo 'tool 1.2.3'; echo more",
            dir.path(),
            Duration::from_secs(5),
            dir.path(),
            &never,
        )
        .unwrap();
        assert_eq!(line, "tool 1.2.3");
        let slow = first_line(
            "sleep 10",
            dir.path(),
            Duration::from_millis(200),
            dir.path(),
            &never,
        )
        .unwrap();
        assert!(slow.contains("no answer"), "{slow}");
    }
}
