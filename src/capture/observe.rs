//! Running the user's command once, the way they see it fail.
//!
//! The command runs with `duct` in its own process group, so that at the
//! timeout (or on Ctrl-C) the whole tree it started is stopped, not only its
//! first process. Its stdout and stderr go through pipes that a thread per
//! stream drains at once into a pair of rotating files, so the pipes never
//! fill (the child never blocks on us) and neither memory nor disk grows past
//! twice the tail kept, even for a command that prints gigabytes. This
//! module never interprets the output; it records what happened.

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
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

/// How long a process group gets between SIGTERM and SIGKILL.
const KILL_GRACE: Duration = Duration::from_secs(2);
/// How often the run is checked for exit, timeout and interruption.
const TICK: Duration = Duration::from_millis(10);

/// What to run and how.
#[derive(Debug, Clone)]
pub struct Spec {
    /// The program and its arguments, run directly (no shell).
    pub argv: Vec<String>,
    pub cwd: PathBuf,
    pub timeout: Duration,
    /// How many bytes of the end of each stream to keep.
    pub tail_bytes: u64,
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

/// A finished observation: the record, and the tails on disk (not redacted).
#[derive(Debug)]
pub struct Observation {
    pub observed: Observed,
    pub stdout_tail: Vec<u8>,
    pub stderr_tail: Vec<u8>,
}

/// Runs `spec`, staging output under `staging`. `interrupted` is polled: when
/// it turns true the process group is stopped and an error returned.
pub fn run(spec: &Spec, staging: &Path, interrupted: &AtomicBool) -> anyhow::Result<Observation> {
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

    let started = Instant::now();
    let handle = duct::cmd(program, args)
        .dir(&spec.cwd)
        .stdin_null()
        .stdout_file(out_w)
        .stderr_file(err_w)
        .unchecked()
        .before_spawn(|cmd| {
            cmd.process_group(0);
            Ok(())
        })
        .start();
    let handle = match handle {
        Ok(h) => h,
        Err(e) => {
            stop.store(true, Ordering::SeqCst);
            let _ = out_thread.join();
            let _ = err_thread.join();
            return Err(spawn_error(program, e));
        }
    };
    let pgid = handle
        .pids()
        .first()
        .and_then(|&p| i32::try_from(p).ok())
        .map(Pid::from_raw);

    let mut ending = None;
    let mut status = None;
    while status.is_none() {
        if let Some(output) = handle.try_wait().context("cannot wait for the command")? {
            status = Some(output.status);
            break;
        }
        if interrupted.load(Ordering::SeqCst) {
            stop_group(pgid, &handle);
            stop.store(true, Ordering::SeqCst);
            let _ = out_thread.join();
            let _ = err_thread.join();
            anyhow::bail!("interrupted; stopped `{shown}` and everything it started");
        }
        if started.elapsed() >= spec.timeout {
            ending = Some(Ending::Hang);
            stop_group(pgid, &handle);
            status = handle.wait().ok().map(|o| o.status);
            break;
        }
        thread::sleep(TICK);
    }
    let duration = started.elapsed();
    // The command is over; stop anything it left in its group, so that a
    // straggler holding the pipes open cannot keep us waiting.
    if let Some(pgid) = pgid {
        let _ = killpg(pgid, Signal::SIGKILL);
    }
    stop.store(true, Ordering::SeqCst);
    let (stdout_tail, stdout_bytes, stdout_truncated) = join(out_thread)?;
    let (stderr_tail, stderr_bytes, stderr_truncated) = join(err_thread)?;

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
            stdout_truncated,
            stderr_truncated,
        },
        stdout_tail,
        stderr_tail,
    })
}

/// Runs a short command through `sh -c` and returns the first line of its
/// output, or why there is none. For tool versions: bounded in time and size.
pub fn first_line(command: &str, cwd: &Path, timeout: Duration, staging: &Path) -> String {
    let spec = Spec {
        argv: vec!["sh".into(), "-c".into(), command.into()],
        cwd: cwd.to_path_buf(),
        timeout,
        tail_bytes: 4096,
    };
    let never = AtomicBool::new(false);
    let dir = match tempfile::tempdir_in(staging) {
        Ok(d) => d,
        Err(e) => return format!("(not run: {e})"),
    };
    match run(&spec, dir.path(), &never) {
        Err(e) => format!("(not run: {e:#})"),
        Ok(o) if o.observed.ending == Ending::Hang => {
            format!("(no answer within {}s)", timeout.as_secs())
        }
        Ok(o) => {
            let text = if o.stdout_tail.iter().any(|b| !b.is_ascii_whitespace()) {
                o.stdout_tail
            } else {
                o.stderr_tail
            };
            let line = String::from_utf8_lossy(&text)
                .lines()
                .map(str::trim)
                .find(|l| !l.is_empty())
                .unwrap_or("")
                .chars()
                .take(200)
                .collect::<String>();
            match o.observed.exit_code {
                Some(0) => line,
                Some(code) if line.is_empty() => format!("(exit {code})"),
                Some(code) => format!("{line} (exit {code})"),
                None => format!("{line} (killed)"),
            }
        }
    }
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

/// SIGTERM to the group, a grace period, then SIGKILL.
fn stop_group(pgid: Option<Pid>, handle: &duct::Handle) {
    let Some(pgid) = pgid else {
        let _ = handle.kill();
        return;
    };
    let _ = killpg(pgid, Signal::SIGCONT);
    let _ = killpg(pgid, Signal::SIGTERM);
    let deadline = Instant::now() + KILL_GRACE;
    while Instant::now() < deadline {
        if matches!(handle.try_wait(), Ok(Some(_))) {
            break;
        }
        thread::sleep(TICK);
    }
    let _ = killpg(pgid, Signal::SIGKILL);
}

type Drained = thread::JoinHandle<io::Result<(Vec<u8>, u64, bool)>>;

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

fn join(thread: Drained) -> anyhow::Result<(Vec<u8>, u64, bool)> {
    thread
        .join()
        .map_err(|_| anyhow::anyhow!("the output reader thread failed"))?
        .context("cannot record the command's output")
}

/// Two files written in turn: when the current one holds `cap` bytes the
/// other is truncated and takes over, so the last `cap` bytes are always on
/// disk and no more than `2 * cap` ever are.
struct TailFiles {
    files: [File; 2],
    paths: [PathBuf; 2],
    current: usize,
    in_current: u64,
    cap: u64,
    total: u64,
    rotated: bool,
}

impl TailFiles {
    fn new(dir: &Path, stem: &str, cap: u64) -> io::Result<Self> {
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
            cap: cap.max(1),
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

    /// The last `cap` bytes, the total seen, and whether the tail is cut.
    fn finish(mut self) -> io::Result<(Vec<u8>, u64, bool)> {
        let older = 1 - self.current;
        let mut tail = Vec::new();
        if self.rotated {
            let f = &mut self.files[older];
            f.seek(SeekFrom::Start(0))?;
            f.read_to_end(&mut tail)?;
        }
        let f = &mut self.files[self.current];
        f.seek(SeekFrom::Start(0))?;
        f.read_to_end(&mut tail)?;
        let cap = usize::try_from(self.cap).unwrap_or(usize::MAX);
        if tail.len() > cap {
            tail.drain(..tail.len() - cap);
        }
        for p in &self.paths {
            let _ = fs::remove_file(p);
        }
        let truncated = self.total > tail.len() as u64;
        Ok((tail, self.total, truncated))
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
        }
    }

    #[test]
    fn exit_codes_and_output_are_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let o = run(
            &spec("echo out; echo err >&2; exit 3", 5000),
            dir.path(),
            &AtomicBool::new(false),
        )
        .unwrap();
        assert_eq!(o.observed.ending, Ending::Exited);
        assert_eq!(o.observed.exit_code, Some(3));
        assert_eq!(o.stdout_tail, b"out\n");
        assert_eq!(o.stderr_tail, b"err\n");
        assert!(!o.observed.stdout_truncated);
    }

    #[test]
    fn a_hang_is_stopped_with_its_whole_tree() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("grandchild.pid");
        let script = format!("sleep 300 & echo $! > {}; wait", marker.display());
        let o = run(&spec(&script, 300), dir.path(), &AtomicBool::new(false)).unwrap();
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
            &AtomicBool::new(false),
        )
        .unwrap();
        assert_eq!(o.observed.stdout_bytes, 5_000_004);
        assert_eq!(o.stdout_tail.len(), 1024);
        assert!(o.stdout_tail.ends_with(b"line\nEND\n"));
        assert!(o.observed.stdout_truncated);
        // Nothing left in the staging directory.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_missing_command_is_a_usage_error() {
        let dir = tempfile::tempdir().unwrap();
        let s = Spec {
            argv: vec!["definitely-not-a-command-xyz".into()],
            ..spec("", 1000)
        };
        let err = run(&s, dir.path(), &AtomicBool::new(false)).unwrap_err();
        assert_eq!(
            crate::error::ErrorKind::of(&err),
            crate::error::ErrorKind::Usage
        );
    }

    #[test]
    fn first_line_of_a_version() {
        let dir = tempfile::tempdir().unwrap();
        let line = first_line(
            "echo 'tool 1.2.3'; echo more",
            dir.path(),
            Duration::from_secs(5),
            dir.path(),
        );
        assert_eq!(line, "tool 1.2.3");
        let slow = first_line(
            "sleep 10",
            dir.path(),
            Duration::from_millis(200),
            dir.path(),
        );
        assert!(slow.contains("no answer"), "{slow}");
    }
}
