//! Reading `/proc` for a run's processes: the tree, and at a hang, what each
//! process is doing and waiting on.
//!
//! Everything here is best effort: `/proc/PID/task/*/stack` is root-only,
//! `wchan` can read `0`, `syscall` needs ptrace access, and processes vanish
//! between two reads. Whatever a file says is used; nothing depends on it.
//! This module never signals or changes a process.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// The most processes a hang report describes; a fork bomb's thousands are
/// counted, not listed.
pub const MAX_PROCESSES: usize = 100;
/// The most threads of one process whose kernel stacks are kept.
pub const MAX_THREAD_STACKS: usize = 64;

/// One process, from `/proc/PID/stat`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proc {
    pub pid: i32,
    pub ppid: i32,
    pub state: char,
    pub comm: String,
    pub threads: u64,
    /// Start time in clock ticks after boot.
    pub start_ticks: u64,
}

impl Proc {
    /// Dead, waiting only to be reaped. A thread-group leader that has
    /// exited while other threads run also reads `Z`, with a thread count
    /// above one: that process is alive.
    pub fn is_dead(&self) -> bool {
        matches!(self.state, 'Z' | 'X') && self.threads <= 1
    }
}

/// The children of `pid`, of all its threads, from
/// `/proc/PID/task/*/children` (empty where the kernel does not offer it).
pub fn children(pid: u32) -> Vec<i32> {
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    let mut out: Vec<i32> = tasks
        .filter_map(Result::ok)
        .filter_map(|t| fs::read_to_string(t.path().join("children")).ok())
        .flat_map(|text| {
            text.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<i32>>()
        })
        .collect();
    out.sort_unstable();
    out
}

/// Reads one process; `None` if it is gone or unreadable.
pub fn read(pid: i32) -> Option<Proc> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(pid, &stat)
}

fn parse_stat(pid: i32, stat: &str) -> Option<Proc> {
    // The command name is in parentheses and may itself hold spaces and
    // parentheses: split at the last `)`.
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat.get(open + 1..close)?.to_owned();
    let rest: Vec<&str> = stat.get(close + 2..)?.split_whitespace().collect();
    Some(Proc {
        pid,
        state: rest.first()?.chars().next()?,
        ppid: rest.get(1)?.parse().ok()?,
        threads: rest.get(17)?.parse().ok()?,
        start_ticks: rest.get(19)?.parse().ok()?,
        comm,
    })
}

/// Every process on the host.
pub fn all() -> Vec<Proc> {
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(read)
        .collect()
}

/// Every process below `root` (not `root` itself), parents first.
pub fn descendants(root: u32) -> Vec<Proc> {
    let Ok(root) = i32::try_from(root) else {
        return Vec::new();
    };
    descendants_in(&all(), root).into_iter().cloned().collect()
}

/// Every process of the snapshot `procs` below `root` (not `root` itself),
/// parents first; each once, whatever reused pids make of the parent links.
pub fn descendants_in(procs: &[Proc], root: i32) -> Vec<&Proc> {
    let mut children: HashMap<i32, Vec<&Proc>> = HashMap::new();
    for p in procs {
        children.entry(p.ppid).or_default().push(p);
    }
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    let mut queue = vec![root];
    while let Some(pid) = queue.pop() {
        if let Some(kids) = children.get(&pid) {
            for &kid in kids {
                if seen.insert(kid.pid) {
                    out.push(kid);
                    queue.push(kid.pid);
                }
            }
        }
    }
    out
}

pub use crate::run::ProcessReport;

/// Describes the processes of `procs` at this moment, at most `max` of them
/// (live ones before zombies, in the order given); returns the reports and
/// how many processes were left out.
pub fn diagnose(procs: &[Proc], max: usize) -> (Vec<ProcessReport>, usize) {
    let now_ticks = uptime_ticks();
    let hz = clock_ticks();
    // Every process counts as a pipe holder, even those not described.
    let pipes = pipe_holders(procs);
    let mut picked: Vec<usize> = (0..procs.len())
        .filter(|&i| procs[i].state != 'Z')
        .collect();
    picked.extend((0..procs.len()).filter(|&i| procs[i].state == 'Z'));
    picked.truncate(max);
    picked.sort_unstable();
    let omitted = procs.len() - picked.len();
    let mut out = Vec::with_capacity(picked.len());
    for p in picked.into_iter().map(|i| &procs[i]) {
        let cmdline = fs::read(format!("/proc/{}/cmdline", p.pid))
            .map(|b| {
                b.split(|&c| c == 0)
                    .filter(|a| !a.is_empty())
                    .map(|a| String::from_utf8_lossy(a).into_owned())
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default();
        let command = if cmdline.is_empty() {
            format!("[{}]", p.comm)
        } else {
            cmdline.chars().take(300).collect()
        };
        let wchan = fs::read_to_string(format!("/proc/{}/wchan", p.pid))
            .ok()
            .map(|w| w.trim().to_owned())
            .filter(|w| !w.is_empty() && w != "0");
        let elapsed_ms = now_ticks.zip(hz).map_or(0, |(now, hz)| {
            now.saturating_sub(p.start_ticks) * 1000 / hz.max(1)
        });
        let mut threads_waiting = BTreeMap::new();
        let mut waiting_on = None;
        let mut kernel_stacks = BTreeMap::new();
        for tid in task_ids(p.pid) {
            if kernel_stacks.len() < MAX_THREAD_STACKS
                && let Some(stack) = kernel_stack(p.pid, tid)
            {
                kernel_stacks.insert(tid, stack);
            }
            let Some(blocked) = blocked_in(p.pid, tid, &pipes) else {
                continue;
            };
            if p.threads > 1 {
                *threads_waiting.entry(blocked.kind).or_insert(0) += 1;
            }
            if tid == p.pid {
                waiting_on = Some(blocked.text);
            }
        }
        out.push(ProcessReport {
            pid: p.pid,
            ns_pid: ns_pid(p.pid),
            ppid: p.ppid,
            state: state_name(p.state),
            command,
            wchan,
            elapsed_ms,
            threads: p.threads,
            waiting_on,
            threads_waiting,
            kernel_stacks,
            stacks: None,
        });
    }
    (out, omitted)
}

/// The thread ids of `pid`, in order.
pub(super) fn task_ids(pid: i32) -> Vec<i32> {
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    let mut tids: Vec<i32> = tasks
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect();
    tids.sort_unstable();
    tids
}

/// A thread's kernel stack as `fn < caller < ...`, when readable (root only).
fn kernel_stack(pid: i32, tid: i32) -> Option<String> {
    let text = fs::read_to_string(format!("/proc/{pid}/task/{tid}/stack")).ok()?;
    let stack = text
        .lines()
        .take(12)
        .map(|l| l.split_whitespace().last().unwrap_or(l))
        .collect::<Vec<_>>()
        .join(" < ");
    (!stack.is_empty()).then_some(stack)
}

/// Adds thread stacks from py-spy (Python) or gdb (anything else), when
/// installed, to at most `max` sleeping processes, each within `limit`.
/// Once `stop` is set (an interrupt) the debuggers still running are
/// killed and what they had not printed is left out; returns whether that
/// happened.
pub fn add_stacks(
    reports: &mut [ProcessReport],
    max: usize,
    limit: Duration,
    stop: &AtomicBool,
) -> bool {
    let py_spy = which("py-spy");
    let gdb = which("gdb");
    if py_spy.is_none() && gdb.is_none() {
        return false;
    }
    // Only processes a tool can say something about count towards `max`.
    let picked: Vec<(usize, Vec<String>)> = reports
        .iter()
        .enumerate()
        .filter(|(_, r)| r.state.starts_with('S') || r.state.starts_with('D'))
        .filter_map(|(i, r)| {
            let pid = r.pid.to_string();
            let python = r.command.contains("python");
            let argv = match (&py_spy, &gdb) {
                (Some(spy), _) if python => {
                    vec![spy.clone(), "dump".into(), "--pid".into(), pid]
                }
                // Python's own faulthandler dump (on SIGABRT) names Python
                // frames, where gdb would only show the interpreter's C stack,
                // and a ptrace attach racing that signal can lose the dump.
                (None, _) if python => return None,
                (_, Some(gdb)) => vec![
                    gdb.clone(),
                    "-batch".into(),
                    "-nx".into(),
                    "-p".into(),
                    pid,
                    "-ex".into(),
                    "thread apply all bt 16".into(),
                ],
                _ => return None,
            };
            Some((i, argv))
        })
        .take(max)
        .collect();
    if picked.is_empty() {
        return false;
    }
    if stop.load(Ordering::SeqCst) {
        // Interrupted before a debugger could start.
        return true;
    }
    let mut cut_short = false;
    std::thread::scope(|scope| {
        let handles: Vec<_> = picked
            .iter()
            .map(|(i, argv)| (*i, scope.spawn(|| run_bounded(argv, limit, stop))))
            .collect();
        for (i, h) in handles {
            match h.join() {
                Ok(Stacks::Printed(text)) => reports[i].stacks = Some(text),
                Ok(Stacks::Stopped) => cut_short = true,
                _ => {}
            }
        }
    });
    cut_short
}

/// What one debugger run gave.
enum Stacks {
    Printed(String),
    /// Nothing worth keeping, or it could not run, or ran out of time.
    None,
    /// Killed by an interrupt.
    Stopped,
}

fn run_bounded(argv: &[String], limit: Duration, stop: &AtomicBool) -> Stacks {
    let Some((program, args)) = argv.split_first() else {
        return Stacks::None;
    };
    tracing::info!(
        "running `{}` for a hung process's stacks",
        shlex::try_join(argv.iter().map(String::as_str)).unwrap_or_else(|_| argv.join(" "))
    );
    // A process group of its own: a Ctrl-C at the terminal is bugpack's to
    // act on, not the debugger's (gdb stopped by one can leave its target
    // stopped), and a kill reaches whatever the debugger started.
    let Ok(handle) = duct::cmd(program, args)
        .before_spawn(|cmd| {
            std::os::unix::process::CommandExt::process_group(cmd, 0);
            Ok(())
        })
        .stdin_null()
        .stderr_null()
        .stdout_capture()
        .unchecked()
        .start()
    else {
        return Stacks::None;
    };
    let kill = || {
        for pid in handle.pids() {
            if let Ok(pid) = i32::try_from(pid) {
                let _ = nix::sys::signal::killpg(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
        let _ = handle.kill();
        // Reaped before bugpack goes on, so that none outlives it; bounded,
        // since a process stuck in the kernel takes its time to die.
        let until = std::time::Instant::now() + Duration::from_secs(1);
        while matches!(handle.try_wait(), Ok(None)) && std::time::Instant::now() < until {
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    let deadline = std::time::Instant::now() + limit;
    loop {
        if let Ok(Some(out)) = handle.try_wait() {
            let text = String::from_utf8_lossy(&out.stdout);
            let kept: String = text
                .lines()
                .filter(|l| {
                    l.starts_with('#')
                        || l.starts_with("Thread")
                        || l.starts_with("    ")
                        || l.starts_with("Process")
                })
                .collect::<Vec<_>>()
                .join("\n");
            let kept: String = kept.chars().take(16 << 10).collect();
            return if kept.is_empty() {
                Stacks::None
            } else {
                Stacks::Printed(kept)
            };
        }
        if stop.load(Ordering::SeqCst) {
            kill();
            return Stacks::Stopped;
        }
        if std::time::Instant::now() >= deadline {
            kill();
            return Stacks::None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn which(program: &str) -> Option<String> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
        .map(|p| p.to_string_lossy().into_owned())
}

/// The innermost pid from `NSpid:` in `/proc/PID/status`.
fn ns_pid(pid: i32) -> Option<i32> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("NSpid:"))?;
    let ids: Vec<i32> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    (ids.len() > 1).then(|| ids.last().copied()).flatten()
}

/// Which processes hold each pipe open, so a blocked writer can be told
/// who should be reading: `pipe:[123]` → [(pid, fd)].
fn pipe_holders(procs: &[Proc]) -> HashMap<String, Vec<(i32, String)>> {
    let mut map: HashMap<String, Vec<(i32, String)>> = HashMap::new();
    for p in procs {
        let Ok(fds) = fs::read_dir(format!("/proc/{}/fd", p.pid)) else {
            continue;
        };
        for fd in fds.filter_map(Result::ok) {
            if let Ok(target) = fs::read_link(fd.path()) {
                let target = target.to_string_lossy().into_owned();
                if target.starts_with("pipe:") {
                    map.entry(target)
                        .or_default()
                        .push((p.pid, fd.file_name().to_string_lossy().into_owned()));
                }
            }
        }
    }
    map
}

/// What a thread is blocked in: the full description, and its kind without
/// pids, inodes or file descriptors, to count threads by.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Blocked {
    text: String,
    kind: String,
}

/// What thread `tid` of `pid` is blocked in, from its `syscall` file.
fn blocked_in(pid: i32, tid: i32, pipes: &HashMap<String, Vec<(i32, String)>>) -> Option<Blocked> {
    let text = fs::read_to_string(format!("/proc/{pid}/task/{tid}/syscall")).ok()?;
    let mut parts = text.split_whitespace();
    let nr: i64 = parts.next()?.parse().ok()?;
    if nr < 0 {
        return None;
    }
    let args: Vec<u64> = parts
        .take(6)
        .filter_map(|a| u64::from_str_radix(a.trim_start_matches("0x"), 16).ok())
        .collect();
    let (name, kind) = syscall_name(nr)?;
    Some(match kind {
        Kind::Fd(verb) => {
            let fd = args.first().copied().unwrap_or(0);
            let target = fs::read_link(format!("/proc/{pid}/fd/{fd}"))
                .map_or_else(|_| format!("fd {fd}"), |t| t.to_string_lossy().into_owned());
            let mut text = format!("{verb} {target} (fd {fd})");
            if let Some(holders) = pipes.get(&target) {
                let others: Vec<String> = holders
                    .iter()
                    .filter(|(p, _)| *p != pid)
                    .map(|(p, f)| format!("pid {} fd {f}", ns_pid(*p).unwrap_or(*p)))
                    .collect();
                if others.is_empty() {
                    text.push_str(", no other process holds it");
                } else {
                    text.push_str(&format!(", also open in {}", others.join(", ")));
                }
            }
            Blocked {
                text,
                kind: format!("{verb} {}", target_kind(&target)),
            }
        }
        Kind::Plain(what) => Blocked {
            text: format!("{what} ({name})"),
            kind: what.to_owned(),
        },
    })
}

/// What a file descriptor's target is, without its inode: `pipe`,
/// `socket`, `anon_inode:[eventfd]`, `a file`.
fn target_kind(target: &str) -> String {
    match target.split_once(":[") {
        Some((kind @ ("pipe" | "socket"), _)) => kind.to_owned(),
        Some(_) => target.to_owned(),
        None if target.starts_with('/') => "a file".to_owned(),
        None => "a file descriptor".to_owned(),
    }
}

enum Kind {
    /// Blocked on the file descriptor in the first argument.
    Fd(&'static str),
    Plain(&'static str),
}

#[cfg(target_arch = "x86_64")]
fn syscall_name(nr: i64) -> Option<(&'static str, Kind)> {
    Some(match nr {
        0 | 19 => ("read", Kind::Fd("reading")),
        1 | 20 => ("write", Kind::Fd("writing")),
        7 | 23 | 270 | 271 => ("poll", Kind::Plain("polling file descriptors")),
        232 | 281 | 441 => ("epoll_wait", Kind::Plain("waiting in epoll")),
        34 => ("pause", Kind::Plain("paused")),
        35 | 230 => ("nanosleep", Kind::Plain("sleeping")),
        42 => ("connect", Kind::Fd("connecting")),
        43 | 288 => ("accept", Kind::Fd("accepting on")),
        44 | 46 => ("send", Kind::Fd("sending on")),
        45 | 47 => ("recv", Kind::Fd("receiving on")),
        61 | 247 => ("wait", Kind::Plain("waiting for a child process")),
        73 => ("flock", Kind::Plain("waiting for a file lock")),
        202 | 449 => (
            "futex",
            Kind::Plain("waiting on a futex (a lock or condition)"),
        ),
        257 => ("openat", Kind::Plain("opening a file (a FIFO?)")),
        _ => return None,
    })
}

#[cfg(target_arch = "aarch64")]
fn syscall_name(nr: i64) -> Option<(&'static str, Kind)> {
    Some(match nr {
        63 | 65 => ("read", Kind::Fd("reading")),
        64 | 66 => ("write", Kind::Fd("writing")),
        72 | 73 => ("poll", Kind::Plain("polling file descriptors")),
        22 => ("epoll_wait", Kind::Plain("waiting in epoll")),
        101 | 115 => ("nanosleep", Kind::Plain("sleeping")),
        203 => ("connect", Kind::Fd("connecting")),
        202 | 242 => ("accept", Kind::Fd("accepting on")),
        206 | 211 => ("send", Kind::Fd("sending on")),
        207 | 212 => ("recv", Kind::Fd("receiving on")),
        260 | 95 => ("wait", Kind::Plain("waiting for a child process")),
        32 => ("flock", Kind::Plain("waiting for a file lock")),
        98 => (
            "futex",
            Kind::Plain("waiting on a futex (a lock or condition)"),
        ),
        56 => ("openat", Kind::Plain("opening a file (a FIFO?)")),
        _ => return None,
    })
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn syscall_name(_nr: i64) -> Option<(&'static str, Kind)> {
    None
}

fn state_name(state: char) -> String {
    let name = match state {
        'R' => "running",
        'S' => "sleeping",
        'D' => "disk sleep",
        'T' => "stopped",
        't' => "tracing stop",
        'Z' => "zombie",
        'X' => "dead",
        'I' => "idle",
        _ => "unknown",
    };
    format!("{state} ({name})")
}

fn uptime_ticks() -> Option<u64> {
    let text = fs::read_to_string("/proc/uptime").ok()?;
    let secs: f64 = text.split_whitespace().next()?.parse().ok()?;
    let hz = clock_ticks()?;
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    Some((secs * hz as f64) as u64)
}

fn clock_ticks() -> Option<u64> {
    nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .and_then(|v| u64::try_from(v).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_with_odd_names_parse() {
        let stat = "42 (a (weird) name) S 1 42 42 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 3 0 12345 1000 10 18446744073709551615";
        let p = parse_stat(42, stat).unwrap();
        assert_eq!(p.comm, "a (weird) name");
        assert_eq!(p.state, 'S');
        assert_eq!(p.ppid, 1);
        assert_eq!(p.threads, 3);
        assert_eq!(p.start_ticks, 12345);
    }

    #[test]
    fn waits_are_counted_by_kind_without_inodes() {
        assert_eq!(target_kind("pipe:[123]"), "pipe");
        assert_eq!(target_kind("socket:[99]"), "socket");
        assert_eq!(target_kind("anon_inode:[eventfd]"), "anon_inode:[eventfd]");
        assert_eq!(target_kind("/tmp/fifo"), "a file");
        assert_eq!(target_kind("fd 7"), "a file descriptor");
    }

    #[test]
    fn the_process_cap_keeps_live_processes_first_and_counts_the_rest() {
        let me = read(i32::try_from(std::process::id()).unwrap()).unwrap();
        let zombie = Proc {
            state: 'Z',
            ..me.clone()
        };
        let procs = vec![zombie.clone(), me.clone(), zombie, me];
        let (reports, omitted) = diagnose(&procs, 2);
        assert_eq!(omitted, 2);
        assert_eq!(reports.len(), 2);
        assert!(reports.iter().all(|r| !r.state.starts_with('Z')));
    }

    #[test]
    fn a_pipe_writer_is_diagnosed_as_such() {
        use std::process::{Command, Stdio};
        // A child writes more than a pipe holds; nobody reads.
        let mut child = Command::new("sh")
            .args(["-c", "head -c 1000000 /dev/zero"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let pid = i32::try_from(child.id()).unwrap();
        let mut found = None;
        for _ in 0..100 {
            std::thread::sleep(Duration::from_millis(20));
            let procs: Vec<Proc> = descendants(child.id())
                .into_iter()
                .chain(read(pid))
                .collect();
            let (reports, _) = diagnose(&procs, MAX_PROCESSES);
            found = reports.into_iter().find(|r| {
                r.waiting_on
                    .as_deref()
                    .is_some_and(|w| w.starts_with("writing pipe:["))
            });
            if found.is_some() {
                break;
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        let report = found.expect("no process seen blocked writing a pipe");
        assert!(
            report.short().contains("writing pipe:["),
            "{}",
            report.short()
        );
        assert!(report.state.starts_with('S'));
    }
}
