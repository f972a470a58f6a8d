//! The timing values that make rare interleavings common, applied from
//! outside the sandbox while a run's `run` step goes on:
//!
//! - `chaos`, in the spirit of rr's chaos mode but on every CPU and without
//!   hardware counters: every few milliseconds some of the run's threads
//!   move to a random set of CPUs (one to all), and now and then one is
//!   starved, `SCHED_IDLE` for a few milliseconds;
//! - `noise`, co-located stress as Shaker runs beside flaky tests: a random
//!   number of threads, each CPU-bound, memory-bound or `fsync`-bound,
//!   pinned to random CPUs;
//! - `quota:PCT`, the run's processes in a cgroup whose CPU limit is PCT %
//!   of one CPU: a container's throttling, where many production-only
//!   timeouts live.
//!
//! Every choice comes from the run's seed. Each leaves nothing behind when
//! it stops: affinities and policies restored, stress threads joined and
//! their files removed, the cgroup emptied and removed.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use nix::sched::{CpuSet, sched_setaffinity};
use nix::unistd::Pid;
use serde_json::{Value, json};

use super::timing::{SplitMix, Tree};

/// The threads of the tree's processes, as host thread ids.
fn threads(tree: Tree) -> Vec<i32> {
    tree.processes()
        .iter()
        .flat_map(|p| super::procfs::task_ids(p.pid))
        .collect()
}

fn cpu_set(cpus: &[usize]) -> CpuSet {
    let mut set = CpuSet::new();
    for &c in cpus {
        let _ = set.set(c);
    }
    set
}

/// Sets a thread's scheduling policy (`SCHED_IDLE` or `SCHED_OTHER`).
fn set_policy(tid: i32, policy: libc::c_int) -> bool {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: a plain system call on a thread id with a valid parameter
    // block; a thread that is gone makes it fail with ESRCH, nothing worse.
    #[allow(unsafe_code)]
    let rc = unsafe { libc::sched_setscheduler(tid, policy, &raw const param) };
    rc == 0
}

/// A running perturbation; [`Perturbation::stop`] ends it and says what it did.
#[derive(Debug)]
pub(super) struct Perturbation {
    stop: Arc<AtomicBool>,
    threads: Vec<thread::JoinHandle<Value>>,
    /// `quota`: the cgroup to empty and remove.
    cgroup: Option<Arc<Cgroup>>,
    detail: Value,
}

impl Perturbation {
    pub(super) fn stop(self) -> Value {
        self.stop.store(true, Ordering::Relaxed);
        let mut detail = self.detail;
        let mut parts = Vec::new();
        for t in self.threads {
            if let Ok(v) = t.join() {
                parts.push(v);
            }
        }
        if let Some(cgroup) = self.cgroup {
            for (k, v) in cgroup.counts() {
                detail[k] = v;
            }
        }
        // What a thread counted joins the detail (noise's threads count nothing).
        if let Some(d) = detail.as_object_mut() {
            for part in parts {
                if let Value::Object(counts) = part {
                    d.extend(counts);
                }
            }
        }
        detail
    }
}

/// `chaos`: moves and starves the run's threads until stopped.
pub(super) fn chaos(tree: Tree, seed: u64, cpus: &[usize]) -> Perturbation {
    let stop = Arc::new(AtomicBool::new(false));
    let handle = {
        let stop = Arc::clone(&stop);
        let cpus = cpus.to_vec();
        thread::spawn(move || {
            let mut rng = SplitMix(seed);
            let (mut moves, mut starved, mut refused) = (0_u64, 0_u64, 0_u64);
            let mut idle: Vec<(i32, Instant)> = Vec::new();
            let mut touched: Vec<i32> = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                thread::sleep(Duration::from_millis(1 + rng.below(5)));
                let now = Instant::now();
                idle.retain(|&(tid, until)| {
                    if now >= until {
                        set_policy(tid, libc::SCHED_OTHER);
                        false
                    } else {
                        true
                    }
                });
                let all = threads(tree);
                if all.is_empty() || cpus.is_empty() {
                    continue;
                }
                let n = 1 + rng.below(u64::try_from(all.len().div_ceil(2)).unwrap_or(1));
                for _ in 0..n {
                    let tid = all[usize::try_from(rng.below(all.len() as u64)).unwrap_or(0)];
                    // A random set of one to all of the CPUs.
                    let size = 1 + usize::try_from(rng.below(cpus.len() as u64)).unwrap_or(0);
                    let mut pool = cpus.clone();
                    let mut chosen = Vec::with_capacity(size);
                    for _ in 0..size {
                        let i = usize::try_from(rng.below(pool.len() as u64)).unwrap_or(0);
                        chosen.push(pool.swap_remove(i));
                    }
                    if sched_setaffinity(Pid::from_raw(tid), &cpu_set(&chosen)).is_ok() {
                        moves += 1;
                        if !touched.contains(&tid) {
                            touched.push(tid);
                        }
                    } else {
                        refused += 1;
                    }
                }
                if rng.below(4) == 0 {
                    let tid = all[usize::try_from(rng.below(all.len() as u64)).unwrap_or(0)];
                    if !idle.iter().any(|&(t, _)| t == tid) && set_policy(tid, libc::SCHED_IDLE) {
                        starved += 1;
                        idle.push((tid, now + Duration::from_millis(2 + rng.below(9))));
                    }
                }
            }
            for (tid, _) in idle {
                set_policy(tid, libc::SCHED_OTHER);
            }
            let all = cpu_set(&cpus);
            for tid in touched {
                let _ = sched_setaffinity(Pid::from_raw(tid), &all);
            }
            json!({"moves": moves, "starved": starved, "refused": refused})
        })
    };
    Perturbation {
        stop,
        threads: vec![handle],
        cgroup: None,
        detail: json!({"cpus": cpus}),
    }
}

/// What one `noise` thread does.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Cpu,
    Memory,
    Fsync,
}

/// `noise`: stress threads at a random intensity until stopped.
pub(super) fn noise(seed: u64, cpus: &[usize]) -> Perturbation {
    let stop = Arc::new(AtomicBool::new(false));
    let mut rng = SplitMix(seed);
    let count = 1 + usize::try_from(rng.below(2 * cpus.len().max(1) as u64)).unwrap_or(0);
    let mut kinds = Vec::new();
    let mut pinned = Vec::new();
    let mut threads = Vec::new();
    for i in 0..count {
        let kind = match rng.below(3) {
            0 => Kind::Cpu,
            1 => Kind::Memory,
            _ => Kind::Fsync,
        };
        let cpu = cpus
            .get(usize::try_from(rng.below(cpus.len().max(1) as u64)).unwrap_or(0))
            .copied();
        kinds.push(format!("{kind:?}").to_lowercase());
        pinned.push(cpu);
        let stop = Arc::clone(&stop);
        threads.push(thread::spawn(move || {
            if let Some(cpu) = cpu {
                let _ = sched_setaffinity(Pid::from_raw(0), &cpu_set(&[cpu]));
            }
            stress(kind, i, &stop);
            Value::Null
        }));
    }
    Perturbation {
        stop,
        threads,
        cgroup: None,
        detail: json!({"threads": count, "kinds": kinds, "cpus": pinned}),
    }
}

fn stress(kind: Kind, i: usize, stop: &AtomicBool) {
    match kind {
        Kind::Cpu => {
            let mut x = 1u64;
            while !stop.load(Ordering::Relaxed) {
                for _ in 0..10_000 {
                    x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                }
                std::hint::black_box(x);
            }
        }
        Kind::Memory => {
            // 32 MiB, past any cache: every pass is memory bandwidth.
            let mut buf = vec![0_u64; 4 << 20];
            let mut pass = 0_u64;
            while !stop.load(Ordering::Relaxed) {
                for chunk in buf.chunks_mut(4096) {
                    chunk[0] = chunk[0].wrapping_add(pass);
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                }
                pass += 1;
                std::hint::black_box(&buf);
            }
        }
        Kind::Fsync => {
            let Ok(mut file) = tempfile::Builder::new()
                .prefix(&format!("bugpack-noise-{i}-"))
                .tempfile()
            else {
                return;
            };
            let block = [0x5a_u8; 4096];
            while !stop.load(Ordering::Relaxed) {
                if file.write_all(&block).is_err() || file.as_file().sync_data().is_err() {
                    break;
                }
                if file.as_file().metadata().map_or(0, |m| m.len()) > 16 << 20 {
                    let _ = file.as_file().set_len(0);
                    let _ = std::io::Seek::rewind(&mut file);
                }
            }
            // The temporary file is removed as it drops.
        }
    }
}

/// Which cgroup hierarchy limits CPU here.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Hierarchy {
    /// cgroup v2: `cpu.max`.
    V2(PathBuf),
    /// cgroup v1's `cpu` controller: `cpu.cfs_quota_us`.
    V1(PathBuf),
}

fn hierarchy() -> Result<Hierarchy, String> {
    let v2 = Path::new("/sys/fs/cgroup");
    if fs::read_to_string(v2.join("cgroup.controllers"))
        .is_ok_and(|c| c.split_whitespace().any(|c| c == "cpu"))
    {
        return Ok(Hierarchy::V2(v2.to_path_buf()));
    }
    let v1 = Path::new("/sys/fs/cgroup/cpu");
    if v1.join("cpu.cfs_quota_us").is_file() {
        return Ok(Hierarchy::V1(v1.to_path_buf()));
    }
    Err("timing=quota needs a cgroup hierarchy with the cpu controller (cgroup v2 with cpu in /sys/fs/cgroup/cgroup.controllers, or v1's /sys/fs/cgroup/cpu), which this machine does not have".into())
}

/// A cgroup made for one run.
#[derive(Debug)]
struct Cgroup {
    dir: PathBuf,
    /// Where its processes go back to before it is removed.
    parent: PathBuf,
    v2: bool,
}

/// Numbers each cgroup this process makes, so that runs side by side differ.
static CGROUPS: AtomicU64 = AtomicU64::new(0);

impl Cgroup {
    fn create(pct: u16) -> Result<Self, String> {
        let hierarchy = hierarchy()?;
        let (root, v2) = match hierarchy {
            Hierarchy::V2(root) => (root, true),
            Hierarchy::V1(root) => (root, false),
        };
        let n = CGROUPS.fetch_add(1, Ordering::Relaxed);
        let dir = root.join(format!("bugpack-quota-{}-{n}", std::process::id()));
        fs::create_dir(&dir).map_err(|e| {
            format!(
                "timing=quota cannot make a cgroup in {} ({e}); it needs root, or a delegated cgroup",
                root.display()
            )
        })?;
        let cgroup = Self {
            dir,
            parent: root,
            v2,
        };
        let period = 100_000_u64;
        let quota = u64::from(pct) * period / 100;
        let written = if v2 {
            fs::write(cgroup.dir.join("cpu.max"), format!("{quota} {period}"))
        } else {
            fs::write(cgroup.dir.join("cpu.cfs_period_us"), period.to_string())
                .and_then(|()| fs::write(cgroup.dir.join("cpu.cfs_quota_us"), quota.to_string()))
        };
        written.map_err(|e| format!("timing=quota cannot set the cgroup's CPU limit: {e}"))?;
        Ok(cgroup)
    }

    fn add(&self, pid: u32) -> bool {
        fs::write(self.dir.join("cgroup.procs"), pid.to_string()).is_ok()
    }

    /// How much it throttled.
    fn counts(&self) -> Vec<(&'static str, Value)> {
        let stat = fs::read_to_string(self.dir.join("cpu.stat")).unwrap_or_default();
        let field = |name: &str| {
            stat.lines()
                .find_map(|l| l.strip_prefix(name)?.trim().parse::<u64>().ok())
                .unwrap_or(0)
        };
        let throttled_ms = if self.v2 {
            field("throttled_usec") / 1000
        } else {
            field("throttled_time") / 1_000_000
        };
        vec![
            ("periods", json!(field("nr_periods"))),
            ("throttled", json!(field("nr_throttled"))),
            ("throttled_ms", json!(throttled_ms)),
        ]
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        for _ in 0..50 {
            let procs = fs::read_to_string(self.dir.join("cgroup.procs")).unwrap_or_default();
            for pid in procs.lines() {
                let _ = fs::write(self.parent.join("cgroup.procs"), pid);
            }
            if fs::remove_dir(&self.dir).is_ok() {
                return;
            }
            thread::sleep(Duration::from_millis(10));
        }
        tracing::warn!("cannot remove the cgroup {}", self.dir.display());
    }
}

/// Checks that `quota` can be given here: makes and removes a cgroup, once
/// per process (every run's cell is checked, and the answer cannot change).
pub(super) fn quota_possible() -> Result<(), String> {
    static ANSWER: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    ANSWER.get_or_init(|| Cgroup::create(100).map(drop)).clone()
}

/// `quota:PCT`: moves the tree's processes into a cgroup of their own,
/// and keeps moving any that a process forked before it was moved; what
/// they start later is born in it.
pub(super) fn quota(tree: Tree, pct: u16) -> Result<Perturbation, String> {
    let cgroup = Arc::new(Cgroup::create(pct)?);
    let stop = Arc::new(AtomicBool::new(false));
    let mover = {
        let (cgroup, stop) = (Arc::clone(&cgroup), Arc::clone(&stop));
        thread::spawn(move || {
            let mut moved: Vec<i32> = Vec::new();
            loop {
                for p in tree.processes() {
                    if !moved.contains(&p.pid) && cgroup.add(u32::try_from(p.pid).unwrap_or(0)) {
                        moved.push(p.pid);
                    }
                }
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                thread::sleep(Duration::from_millis(5));
            }
            json!({"processes": moved.len()})
        })
    };
    let limit = if cgroup.v2 {
        "cpu.max"
    } else {
        "cpu.cfs_quota_us"
    };
    Ok(Perturbation {
        stop,
        threads: vec![mover],
        detail: json!({"percent": pct, "limit": limit}),
        cgroup: Some(cgroup),
    })
}
