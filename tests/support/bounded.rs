//! Running `bugpack` under a watchdog and measuring its peak memory.
//!
//! A run that outlives its limit is killed (with its process group) and
//! fails the test. The peak resident set size comes from GNU time, which
//! forks bugpack from its own small image and reads `ru_maxrss` from
//! `wait4`. Measuring from the test process itself would not do: the kernel
//! seeds a child's `ru_maxrss` at `exec` with the peak of the image it
//! replaces, here the (large, multi-threaded) test binary.

use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::Duration;

use super::{Outcome, Run};

/// GNU time (Debian package `time`, installed by `.ci/run`).
const TIME: &str = "/usr/bin/time";

/// A finished run and the most memory it held at once.
#[derive(Debug)]
pub struct Bounded {
    pub outcome: Outcome,
    /// Peak resident set size, in KiB.
    pub peak_rss_kib: u64,
}

impl Run {
    /// Runs the binary like [`Run::run`], but kills it and panics if it
    /// takes longer than `limit`, and reports its peak memory.
    pub fn run_bounded(self, limit: Duration) -> Bounded {
        assert!(self.stdin.is_none(), "run_bounded gives the child no stdin");
        assert!(
            Path::new(TIME).exists(),
            "{TIME} is missing: install GNU time (apt-get install time)"
        );
        let report = tempfile::NamedTempFile::new().unwrap();
        let inner = self.command();
        let mut cmd = Command::new(TIME);
        cmd.args(["-f", "%M", "-o"])
            .arg(report.path())
            .arg(inner.get_program())
            .args(inner.get_args())
            .current_dir(inner.get_current_dir().unwrap())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        for (key, value) in inner.get_envs() {
            match value {
                Some(v) => cmd.env(key, v),
                None => cmd.env_remove(key),
            };
        }
        let child = cmd.spawn().expect("spawn bugpack under GNU time");
        let group = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap());
        let (done, finished) = std::sync::mpsc::channel();
        let waiter = thread::spawn(move || {
            let output = child.wait_with_output();
            let _ = done.send(());
            output
        });
        if finished.recv_timeout(limit).is_err() {
            let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
            let _ = waiter.join();
            panic!(
                "watchdog: bugpack {:?} still running after {limit:?}; killed",
                self.args
            );
        }
        let output = waiter.join().unwrap().expect("wait for bugpack");
        let measured = std::fs::read_to_string(report.path()).unwrap();
        // GNU time adds "Command exited with non-zero status N" (or
        // "terminated by signal N") before the figure.
        let peak_rss_kib = measured
            .lines()
            .last()
            .and_then(|line| line.trim().parse().ok())
            .unwrap_or_else(|| panic!("no peak RSS in GNU time's report: {measured:?}"));
        let signalled = measured.contains("terminated by signal");
        Bounded {
            outcome: Outcome {
                code: if signalled {
                    None
                } else {
                    output.status.code()
                },
                stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
                args: self.args,
            },
            peak_rss_kib,
        }
    }
}
