//! The process tree of the command a capture runs, and stopping all of it.
//!
//! A process group is not enough: a grandchild that calls `setsid` leaves
//! the group, and one whose parent exits is re-parented away from the
//! tree. So every process the run starts carries a marker in its
//! environment (inherited through fork, exec and setsid), and bugpack makes
//! itself a child subreaper ([`become_subreaper`]) so that orphans of the
//! run are re-parented to bugpack rather than to init. A run's members are
//! then the descendants of its first process, and any descendant of bugpack
//! that carries the run's marker. Stopping is SIGTERM, a grace period, then
//! SIGKILL until no member is left; orphans bugpack adopted are reaped.
//!
//! This module reads `/proc` and signals only the members it finds.

use std::collections::HashSet;
use std::fs;
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitPidFlag, waitpid};
use nix::unistd::Pid;

use crate::replay::procfs::{self, Proc};

/// The environment variable that marks a run's processes.
pub const MARKER: &str = "BUGPACK_CAPTURE_RUN";

/// How often membership is checked while waiting for a tree to stop.
const TICK: Duration = Duration::from_millis(10);
/// At most this many SIGKILL rounds (a tree that forks as fast as it dies).
const KILL_ROUNDS: usize = 500;

/// Makes the current process a child subreaper: orphans of its descendants
/// come back to it instead of going to init, so a run cannot escape by
/// double-forking. Call it once, from the binary (it is process-wide).
pub fn become_subreaper() -> nix::Result<()> {
    nix::sys::prctl::set_child_subreaper(true)
}

/// One run's processes: its first process and the marker they carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tree {
    pub root: Pid,
    /// The marker's value for this run (`MARKER=token`).
    pub token: String,
}

impl Tree {
    /// A fresh marker value for a run about to start.
    pub fn new_token() -> String {
        format!("{}-{:016x}", std::process::id(), fastrand::u64(..))
    }

    /// The live (not zombie) members of the tree, right now: our descendants
    /// that are its root, below its root, or carry its marker.
    pub fn members(&self) -> Vec<Pid> {
        let procs = procfs::all();
        let me = i32::try_from(std::process::id()).unwrap_or(0);
        let root = self.root.as_raw();
        let below_root = below(&procs, root);
        let below_me = below(&procs, me);
        let marker = format!("{MARKER}={}", self.token);
        // Only our own descendants: once the root has been waited for, its
        // pid may belong to a stranger.
        procs
            .iter()
            .filter(|p| p.state != 'Z' && below_me.contains(&p.pid))
            .filter(|p| p.pid == root || below_root.contains(&p.pid) || carries(p.pid, &marker))
            .map(|p| Pid::from_raw(p.pid))
            .collect()
    }

    /// Stops every member: SIGCONT and SIGTERM, up to `grace` for them to
    /// go, then SIGKILL until none is left. Reaps the members it adopted.
    pub fn stop(&self, grace: Duration) {
        let members = self.members();
        if members.is_empty() {
            // Nothing alive to signal, fork or reap (zombies do not fork).
            return;
        }
        let mut seen = HashSet::new();
        for &pid in &members {
            seen.insert(pid);
            let _ = kill(pid, Signal::SIGCONT);
            let _ = kill(pid, Signal::SIGTERM);
        }
        let deadline = Instant::now() + grace;
        while !members.is_empty() && Instant::now() < deadline {
            self.reap(&seen);
            let now = self.members();
            if now.is_empty() {
                break;
            }
            seen.extend(now);
            thread::sleep(TICK);
        }
        for _ in 0..KILL_ROUNDS {
            let members = self.members();
            if members.is_empty() {
                break;
            }
            for pid in members {
                seen.insert(pid);
                let _ = kill(pid, Signal::SIGKILL);
            }
            thread::sleep(TICK);
            self.reap(&seen);
        }
        self.reap(&seen);
    }

    /// Collects the exit status of members that were re-parented to us and
    /// died: only pids seen as members, never the root (its owner waits
    /// for it), so nobody else's child is ever reaped here.
    fn reap(&self, seen: &HashSet<Pid>) {
        let me = i32::try_from(std::process::id()).unwrap_or(0);
        for p in procfs::all() {
            let pid = Pid::from_raw(p.pid);
            if p.ppid == me && p.state == 'Z' && pid != self.root && seen.contains(&pid) {
                let _ = waitpid(pid, Some(WaitPidFlag::WNOHANG));
            }
        }
    }
}

/// Every pid below `root`.
fn below(procs: &[Proc], root: i32) -> HashSet<i32> {
    procfs::descendants_in(procs, root)
        .into_iter()
        .map(|p| p.pid)
        .collect()
}

/// Whether `pid`'s environment holds `marker` (`NAME=value`).
fn carries(pid: i32, marker: &str) -> bool {
    fs::read(format!("/proc/{pid}/environ"))
        .is_ok_and(|env| env.split(|&b| b == 0).any(|kv| kv == marker.as_bytes()))
}
