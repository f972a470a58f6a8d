//! The timing axis, applied from outside the sandbox while a run's `run`
//! step is going: `slow` (a SIGSTOP/SIGCONT duty cycle over the run's
//! processes), `jitter` (random short stops, from the run's seed), `load`
//! (a busy thread pinned to each CPU the replay may use). `cpu1` and
//! `trace` are set up inside the sandbox instead (see the supervisor's
//! plan). A driver always leaves the processes running when it stops:
//! nothing stays frozen, no busy thread outlives the run step.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::json;

use super::matrix::Timing;
use super::procfs;

/// `slow`: in each period, the processes are stopped for this share of it.
pub const SLOW_PERIOD: Duration = Duration::from_millis(20);
/// `slow`: the stopped share of each period.
pub const SLOW_STOPPED: Duration = Duration::from_millis(10);
/// `jitter`: how many of a run's pauses its detail lists, in order. The
/// list shows that a seed gives the same pauses; the count covers the rest.
pub const PAUSES_LISTED: usize = 32;

/// Which processes a driver acts on: a sandbox's, as the host sees them.
#[derive(Debug, Clone, Copy)]
pub struct Tree {
    /// The run's supervisor, whose descendants are the run's processes.
    pub root: u32,
}

impl Tree {
    pub fn processes(self) -> Vec<procfs::Proc> {
        procfs::descendants(self.root)
    }

    fn signal(self, signal: Signal) -> usize {
        let procs = self.processes();
        for p in &procs {
            let _ = kill(Pid::from_raw(p.pid), signal);
        }
        procs.len()
    }
}

/// A running timing condition; [`Driver::stop`] ends it.
#[derive(Debug)]
pub struct Driver {
    stop: Arc<AtomicBool>,
    threads: Vec<thread::JoinHandle<()>>,
    stops: Arc<AtomicU64>,
    stopped_us: Arc<AtomicU64>,
    /// `jitter`: the first [`PAUSES_LISTED`] pauses given, in ms.
    pauses: Arc<Mutex<Vec<u64>>>,
    /// `load`: the CPUs a busy thread was pinned to.
    busy_cpus: Vec<usize>,
    timing: Timing,
    tree: Tree,
    started: Instant,
    /// `chaos`, `noise` and `quota` ([`super::perturb`]).
    perturbation: Option<super::perturb::Perturbation>,
    /// Why a perturbation could not start.
    failed: Option<String>,
}

impl Driver {
    /// Starts `timing` on `tree`'s processes; `seed` drives `jitter`.
    pub fn start(timing: Timing, tree: Tree, seed: u64) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let stops = Arc::new(AtomicU64::new(0));
        let stopped_us = Arc::new(AtomicU64::new(0));
        let pauses = Arc::new(Mutex::new(Vec::new()));
        let mut busy_cpus = Vec::new();
        let mut threads = Vec::new();
        let mut perturbation = None;
        let mut failed = None;
        match timing {
            Timing::Chaos => {
                perturbation = Some(super::perturb::chaos(
                    tree,
                    seed,
                    &super::axes::allowed_cpus(),
                ));
            }
            Timing::Noise => {
                perturbation = Some(super::perturb::noise(seed, &super::axes::allowed_cpus()));
            }
            Timing::Quota(pct) => match super::perturb::quota(tree, pct) {
                Ok(p) => perturbation = Some(p),
                Err(why) => failed = Some(why),
            },
            Timing::Slow | Timing::Jitter => {
                let (stop, stops, stopped_us, pauses) = (
                    Arc::clone(&stop),
                    Arc::clone(&stops),
                    Arc::clone(&stopped_us),
                    Arc::clone(&pauses),
                );
                threads.push(thread::spawn(move || {
                    let mut rng = SplitMix(seed);
                    while !stop.load(Ordering::Relaxed) {
                        let (running, frozen) = if timing == Timing::Slow {
                            (SLOW_PERIOD.saturating_sub(SLOW_STOPPED), SLOW_STOPPED)
                        } else {
                            (
                                Duration::from_millis(5 + rng.below(45)),
                                Duration::from_millis(1 + rng.below(20)),
                            )
                        };
                        thread::sleep(running);
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        if tree.signal(Signal::SIGSTOP) > 0 {
                            stops.fetch_add(1, Ordering::Relaxed);
                            if timing == Timing::Jitter {
                                let mut listed =
                                    pauses.lock().unwrap_or_else(PoisonError::into_inner);
                                if listed.len() < PAUSES_LISTED {
                                    listed.push(
                                        u64::try_from(frozen.as_millis()).unwrap_or(u64::MAX),
                                    );
                                }
                            }
                            let t = Instant::now();
                            thread::sleep(frozen);
                            tree.signal(Signal::SIGCONT);
                            stopped_us.fetch_add(
                                u64::try_from(t.elapsed().as_micros()).unwrap_or(0),
                                Ordering::Relaxed,
                            );
                        }
                    }
                    tree.signal(Signal::SIGCONT);
                }));
            }
            Timing::Load => {
                // One thread pinned to each CPU: unpinned, the scheduler may
                // stack them on some CPUs and leave the run's alone.
                busy_cpus = super::axes::allowed_cpus();
                for &cpu in &busy_cpus {
                    let stop = Arc::clone(&stop);
                    threads.push(thread::spawn(move || {
                        let mut set = nix::sched::CpuSet::new();
                        if set.set(cpu).is_ok() {
                            let _ = nix::sched::sched_setaffinity(Pid::from_raw(0), &set);
                        }
                        let mut x = 1u64;
                        while !stop.load(Ordering::Relaxed) {
                            for _ in 0..10_000 {
                                x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                            }
                            std::hint::black_box(x);
                        }
                    }));
                }
            }
            Timing::None | Timing::Cpu1 | Timing::Trace | Timing::Delay => {}
        }
        Self {
            stop,
            threads,
            stops,
            stopped_us,
            pauses,
            busy_cpus,
            timing,
            tree,
            started: Instant::now(),
            perturbation,
            failed,
        }
    }

    /// Ends the condition (processes left running) and says what it did.
    pub fn stop(self) -> Option<serde_json::Value> {
        if let Some(p) = self.perturbation {
            return Some(p.stop());
        }
        if let Some(why) = self.failed {
            return Some(json!({ "error": why }));
        }
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            let _ = t.join();
        }
        // Whatever happened above, nothing stays frozen.
        if matches!(self.timing, Timing::Slow | Timing::Jitter) {
            self.tree.signal(Signal::SIGCONT);
        }
        let elapsed_us = u64::try_from(self.started.elapsed().as_micros())
            .unwrap_or(u64::MAX)
            .max(1);
        match self.timing {
            Timing::Slow | Timing::Jitter => {
                let stopped = self.stopped_us.load(Ordering::Relaxed);
                #[allow(clippy::cast_precision_loss)]
                let duty = stopped as f64 / elapsed_us as f64;
                let mut detail = json!({
                    "stops": self.stops.load(Ordering::Relaxed),
                    "stopped_ms": stopped / 1000,
                    "duty": (duty * 1000.0).round() / 1000.0,
                });
                if self.timing == Timing::Jitter {
                    let pauses = self.pauses.lock().unwrap_or_else(PoisonError::into_inner);
                    detail["pauses_ms"] = json!(*pauses);
                }
                Some(detail)
            }
            Timing::Load => Some(json!({
                "busy_threads": self.busy_cpus.len(),
                "cpus": self.busy_cpus,
            })),
            Timing::None
            | Timing::Cpu1
            | Timing::Trace
            | Timing::Chaos
            | Timing::Noise
            | Timing::Delay
            | Timing::Quota(_) => None,
        }
    }
}

/// A small seeded generator (splitmix64): reproducible choices from `--seed`.
#[derive(Debug, Clone)]
pub struct SplitMix(pub u64);

impl SplitMix {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_choices_repeat() {
        let a: Vec<u64> = (0..5)
            .map({
                let mut r = SplitMix(42);
                move |_| r.below(20)
            })
            .collect();
        let b: Vec<u64> = (0..5)
            .map({
                let mut r = SplitMix(42);
                move |_| r.below(20)
            })
            .collect();
        assert_eq!(a, b);
        assert!(a.iter().all(|&x| x < 20));
    }

    #[test]
    fn slow_stops_a_process_about_half_the_time_and_leaves_it_running() {
        // A shell whose child `sleep` is the process to throttle.
        let mut child = std::process::Command::new("sh")
            .args(["-c", "sleep 30; true"])
            .spawn()
            .unwrap();
        let tree = Tree { root: child.id() };
        while tree.processes().is_empty() {
            thread::sleep(Duration::from_millis(5));
        }
        let driver = Driver::start(Timing::Slow, tree, 1);
        thread::sleep(Duration::from_millis(400));
        let detail = driver.stop().unwrap();
        let duty = detail["duty"].as_f64().unwrap();
        assert!(detail["stops"].as_u64().unwrap() >= 5, "{detail}");
        assert!((0.2..0.8).contains(&duty), "{detail}");
        for p in tree.processes() {
            assert_ne!(procfs::read(p.pid).unwrap().state, 'T', "left stopped");
        }
        child.kill().unwrap();
        child.wait().unwrap();
    }
}
