//! Replay: running a scenario many times, in isolation, in parallel, over a
//! matrix of conditions, and judging every run.
//!
//! The engine prepares each run's directory and environment, starts its
//! sandbox ([`sandbox`]), follows the supervisor's events, enforces the
//! run's time limit, takes hang diagnostics ([`procfs`]) before killing, and
//! judges the outcome ([`outcome`]). It removes every run directory unless
//! asked to keep them, and stops everything on interruption, returning the
//! runs finished so far. It never prints: progress goes through [`Progress`],
//! and what it does through `tracing` (each run's start and outcome at info,
//! the details at debug), every line named by its run's [`run_label`].

pub mod axes;
pub mod budget;
mod delay;
/// The matrix is shared with the report layer: it lives at the top.
pub use crate::matrix;
pub mod outcome;
mod perturb;
pub mod procfs;
mod rundirs;
pub mod sandbox;
pub mod start;
pub mod supervisor;
pub mod timing;
pub mod user;
pub mod workspace;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, mpsc};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use nix::sys::signal::Signal;

use crate::partial::Partial;
use crate::report::{Axes, CellReport, FirstReproduction, IsolationInfo, Report, RunResult};
use crate::scenario::{Readiness, Scenario};
use crate::shard::Unit;
use matrix::{Cache, Cell};
use outcome::{Ending, Outcome};
use rundirs::{Keeper, RunDirs, chown_tree};
use sandbox::{Isolation, Net, Sandbox, Slot};
use supervisor::{Event, NetFaultPlan, ProxyPlan, ReadyPlan, Rlimits, RunPlan, ServicePlan};

/// How much of a step's output a report keeps.
const TAIL_BYTES: u64 = 4096;
/// The port of a run's first service when the run has a network namespace
/// of its own; below the kernel's ephemeral range, so nothing else takes it.
const FIRST_SERVICE_PORT: u16 = 20_000;
/// The port of the fault proxy in front of a run's first service, likewise.
const FIRST_FAULT_PORT: u16 = 21_000;
/// The port of the TLS terminator of a run's first service, likewise.
const FIRST_TLS_PORT: u16 = 22_000;
/// The longest a debugger may take to print one process's stacks; generous,
/// since a loaded machine makes gdb slow to attach.
const STACK_LIMIT: Duration = Duration::from_secs(8);
/// The longest runtimes get to print their stacks after SIGQUIT/SIGABRT.
const DUMP_GRACE: Duration = Duration::from_secs(3);
/// The PATH every step gets.
pub const BASE_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The pauses of a poll for a process's end: short first, so that a quick
/// end is seen at once, then doubling up to 5 ms, so that a long wait costs
/// little.
#[derive(Debug)]
pub(crate) struct Backoff(Duration);

impl Backoff {
    pub(crate) fn starting_at(first: Duration) -> Self {
        Self(first)
    }

    /// The next pause.
    pub(crate) fn next(&mut self) -> Duration {
        let pause = self.0;
        self.0 = (self.0 * 2).min(Duration::from_millis(5));
        pause
    }
}

/// Everything a replay needs, resolved.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The bundle or directory, as the user named it.
    pub source: String,
    pub bundle_sha256: Option<String>,
    pub scenario: Scenario,
    /// What each run's directory starts with.
    pub files: Files,
    /// What the bundle says about the user's side (for runs that could not
    /// start the command).
    pub known: start::Known,
    /// What the user saw, from the bundle.
    pub observed: Option<crate::report::ObservedRun>,
    /// The run step's standard input (the user's, recorded).
    pub stdin: Option<PathBuf>,
    /// For the report: the checkout the runs run in.
    pub checkout: Option<crate::report::CheckoutInfo>,
    /// For the report: how the runtime differs from the user's.
    pub runtime: Vec<crate::capture::runtime::Difference>,
    pub runs: u32,
    pub jobs: usize,
    /// The run step's limit (the scenario's, or `--timeout`).
    pub timeout: Duration,
    pub cells: Vec<Cell>,
    pub seed: u64,
    /// Run only this shard's part of the matrix ([`crate::shard`]).
    pub shard: Option<crate::shard::Shard>,
    /// The scenario directory's digest, when the source is a directory.
    pub scenario_sha256: Option<String>,
    pub until_repro: bool,
    /// Run until this is spent, spreading runs adaptively (`--budget`);
    /// `runs` is then unused.
    pub budget: Option<budget::Budget>,
    pub keep: bool,
    pub isolation: Isolation,
    pub limits: Rlimits,
    /// `LANG` and `TERM` passed through to runs.
    pub lang: String,
    pub term: String,
}

/// What each run's directory starts with.
#[derive(Debug, Clone)]
pub enum Files {
    /// The scenario's files, copied into each run's directory.
    Scenario(PathBuf),
    /// A checkout of the user's project (`--repo`), the command run from
    /// `cwd` (relative to its root) in a view of it of each run's own.
    Checkout {
        tree: PathBuf,
        cwd: String,
        /// A copy-on-write overlay per run; else a copy per run.
        overlay: bool,
    },
}

/// Hooks for showing progress; the engine calls them from worker threads.
pub trait Progress: Sync {
    fn start(&self, total: u64);
    fn finished(&self, cell: &Cell, result: &RunResult);
}

/// Progress that shows nothing.
#[derive(Debug, Clone, Copy)]
pub struct Silent;

impl Progress for Silent {
    fn start(&self, _total: u64) {}
    fn finished(&self, _cell: &Cell, _result: &RunResult) {}
}

/// The seed of run `index` of cell `cell`: a fixed function of the replay's
/// seed, so that any subset of runs (a shard) gets the same seeds.
pub fn run_seed(seed: u64, cell: usize, index: u32) -> u64 {
    let mut x = seed
        ^ (cell as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ u64::from(index).wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
    // splitmix64's finaliser.
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// Directories a warm cell's runs share.
#[derive(Debug, Default)]
struct Shared {
    home: Option<PathBuf>,
    proxy_cache: Option<PathBuf>,
}

/// The index of a warm cell's uncounted warm-up run.
const WARM_UP: u32 = u32::MAX;

/// Runs the plan. Returns the report of every run that finished, in order;
/// `interrupted` stops it early (the report says so).
pub fn replay(
    plan: &Plan,
    interrupted: &AtomicBool,
    progress: &dyn Progress,
) -> anyhow::Result<Report> {
    let started = Instant::now();
    let root = RunsRoot::create(plan.keep).context("cannot create a directory for the runs")?;
    tracing::debug!("the runs' directories go under {}", root.path().display());
    if plan.isolation.run_as.is_some() {
        // Runs take another uid; they must be able to reach their directories.
        fs::set_permissions(root.path(), fs::Permissions::from_mode(0o711))
            .context("cannot open the runs' directory to the sandbox user")?;
    }
    // What a worker picks up: one run of a cold cell, or all runs of a warm
    // cell (which share a home and a proxy cache, so they run in order);
    // with --shard, the units that shard runs.
    let warm: Vec<bool> = plan.cells.iter().map(|c| c.cache == Cache::Warm).collect();
    let all = crate::shard::units(&warm, plan.runs);
    let work = match plan.shard {
        Some(shard) => shard.units(&all, plan.runs),
        None => all,
    };
    let counted: u64 = work
        .iter()
        .map(|w| match w {
            Unit::Run { .. } => 1,
            Unit::Warm { .. } => u64::from(plan.runs),
        })
        .sum();
    let allocator = plan
        .budget
        .map(|b| Mutex::new(budget::Allocator::new(b, plan.cells.len(), plan.seed)));
    progress.start(match plan.budget {
        Some(budget::Budget::Runs(n)) => n,
        // Unknown: as many as fit in the time.
        Some(budget::Budget::Time(_)) => 0,
        None => counted,
    });
    let next = AtomicUsize::new(0);
    let next_unit = || -> Option<Unit> {
        match &allocator {
            Some(a) => {
                let (cell, index) = a.lock().ok()?.next_run()?;
                Some(Unit::Run { cell, index })
            }
            None => work.get(next.fetch_add(1, Ordering::SeqCst)).copied(),
        }
    };
    let found = AtomicBool::new(false);
    let results: Mutex<Vec<(usize, RunResult)>> = Mutex::new(Vec::new());
    let first: Mutex<Option<FirstReproduction>> = Mutex::new(None);
    let stop =
        || interrupted.load(Ordering::SeqCst) || (plan.until_repro && found.load(Ordering::SeqCst));
    let kept = std::sync::atomic::AtomicU32::new(0);
    let record = |cell: usize, mut result: RunResult| {
        if allocator.is_some()
            && result.outcome == Outcome::Reproduced
            && kept.fetch_add(1, Ordering::SeqCst) >= budget::KEPT_IN_FULL
        {
            result.stdout_tail = None;
            result.stderr_tail = None;
            result.diagnostics = None;
            result.diagnostics_omitted = None;
            result.diagnostics_cut_short = false;
        }
        progress.finished(&plan.cells[cell], &result);
        let Ok(mut all) = results.lock() else {
            return;
        };
        let reproduced = result.outcome == Outcome::Reproduced;
        let index = result.index;
        all.push((cell, result));
        if let Some(Ok(mut a)) = allocator.as_ref().map(Mutex::lock) {
            a.finished(cell, reproduced);
        }
        if reproduced {
            found.store(true, Ordering::SeqCst);
            if let Ok(mut first) = first.lock()
                && first.is_none()
            {
                *first = Some(FirstReproduction {
                    axes: plan.cells[cell].axes(),
                    index,
                    runs: u32::try_from(all.len()).unwrap_or(u32::MAX),
                    elapsed_ms: millis(started.elapsed()),
                });
            }
        }
    };
    std::thread::scope(|scope| {
        for job in 0..plan.jobs.max(1) {
            let root = root.path();
            let next_unit = &next_unit;
            let record = &record;
            let stop = &stop;
            scope.spawn(move || {
                // This job's sandbox and run directories, kept from run to
                // run; dropped, they leave nothing running or on disk.
                let mut kept = Job {
                    slot: Slot::new(root.join(format!("slot{job}.err"))),
                    dirs: Keeper::start(root, job, &plan.files, plan.isolation.run_as),
                };
                while !stop() {
                    let Some(item) = next_unit() else {
                        return;
                    };
                    match item {
                        Unit::Run { cell, index } => {
                            let shared = Shared::default();
                            match run_one(plan, root, cell, index, &shared, &mut kept, interrupted)
                            {
                                Some(result) => record(cell, result),
                                None => return,
                            }
                        }
                        Unit::Warm { cell } => {
                            let shared = match warm_dirs(plan, root, cell) {
                                Ok(s) => s,
                                Err(e) => {
                                    // Every run of the cell would have
                                    // needed them: each is an error.
                                    for index in 0..plan.runs {
                                        record(
                                            cell,
                                            prepare_failed(
                                                index,
                                                run_seed(plan.seed, cell, index),
                                                &e,
                                            ),
                                        );
                                    }
                                    continue;
                                }
                            };
                            for index in std::iter::once(WARM_UP).chain(0..plan.runs) {
                                if stop() {
                                    return;
                                }
                                match run_one(
                                    plan,
                                    root,
                                    cell,
                                    index,
                                    &shared,
                                    &mut kept,
                                    interrupted,
                                ) {
                                    Some(_) if index == WARM_UP => {}
                                    Some(result) => record(cell, result),
                                    None => return,
                                }
                            }
                        }
                    }
                }
            });
        }
    });
    if let RunsRoot::Kept(dir) = root {
        // The user asked to keep the runs: leave the directory in place.
        let kept = dir.keep();
        tracing::info!("kept the runs' directories in {}", kept.display());
    }
    let mut by_cell: BTreeMap<usize, Vec<RunResult>> = BTreeMap::new();
    for (cell, result) in results.into_inner().unwrap_or_default() {
        by_cell.entry(cell).or_default().push(result);
    }
    let cells: Vec<CellReport> = plan
        .cells
        .iter()
        .enumerate()
        .map(|(i, cell)| {
            let results = by_cell.remove(&i).unwrap_or_default();
            let note = crate::report::notes::cell_note(cell, &results);
            CellReport::from_results(cell.axes(), results, note)
        })
        .collect();
    let was_interrupted = interrupted.load(Ordering::SeqCst);
    let finished: u64 = cells.iter().map(|c| u64::from(c.runs)).sum();
    let reproduced: u64 = cells.iter().map(|c| u64::from(c.reproduced)).sum();
    let verdict = match plan.shard {
        // More shards than units of work: this one had nothing to run, which
        // is no error; its report still says which shard it was.
        Some(shard) if work.is_empty() && !was_interrupted => {
            tracing::warn!(
                "shard {shard} has no runs: the matrix has fewer units of work than shards"
            );
            crate::report::Verdict::NotReproduced
        }
        _ => Report::verdict_of(&cells),
    };
    let mut report = Report {
        bugpack: env!("CARGO_PKG_VERSION").to_owned(),
        source: plan.source.clone(),
        scenario: plan.scenario.name.clone(),
        verdict,
        bundle_sha256: plan.bundle_sha256.clone(),
        seed: plan.seed,
        scenario_sha256: plan.scenario_sha256.clone(),
        matrix: Some(crate::shard::MatrixInfo {
            cells: u32::try_from(plan.cells.len()).unwrap_or(u32::MAX),
            // A budget fixes no number of runs per cell.
            runs: if plan.budget.is_some() { 0 } else { plan.runs },
            total_runs: if plan.budget.is_some() {
                finished
            } else {
                u64::from(plan.runs) * plan.cells.len() as u64
            },
            timeout_ms: millis(plan.timeout),
        }),
        shard: plan.shard,
        merged: None,
        isolation: IsolationInfo {
            namespaces: plan.isolation.namespaces,
            net: plan.isolation.net.as_str().to_owned(),
            run_as: plan.isolation.run_as.map(|(u, g)| format!("{u}:{g}")),
        },
        interrupted: was_interrupted,
        duration_ms: millis(started.elapsed()),
        first_reproduction: first.into_inner().ok().flatten(),
        observed: plan.observed.clone(),
        checkout: plan.checkout.clone(),
        runtime: plan.runtime.clone(),
        budget: plan.budget.map(|b| crate::report::BudgetReport {
            limit: b.to_string(),
            runs: finished,
            allocation: "thompson".to_owned(),
            warm_up: budget::WARM_UP,
            kept_in_full: budget::KEPT_IN_FULL,
            rate_below: (reproduced == 0)
                .then(|| budget::zero_in(finished))
                .flatten(),
            fix_runs: cells
                .iter()
                .filter_map(|c| c.rate)
                .filter(|&r| r > 0.0)
                .reduce(f64::max)
                .and_then(|rate| budget::runs_to_show(rate, 10.0)),
        }),
        cells,
    };
    report.compare_with_observed();
    Ok(report)
}

/// The directory in TMPDIR that holds every run's directory.
enum RunsRoot {
    /// Removed at the end; left by a killed replay, swept by the next one
    /// ([`Partial`]).
    Swept(Partial),
    /// Kept at the end (`--keep`), under a name no sweep takes.
    Kept(tempfile::TempDir),
}

/// The prefix of the directory in TMPDIR that holds the runs of `--keep`.
const KEPT_PREFIX: &str = "bugpack-replay-kept-";

impl RunsRoot {
    fn create(keep: bool) -> std::io::Result<Self> {
        let tmp = std::env::temp_dir();
        if keep {
            let dir = tempfile::Builder::new()
                .prefix(KEPT_PREFIX)
                .tempdir_in(&tmp)?;
            Ok(Self::Kept(dir))
        } else {
            Partial::fresh(&tmp, crate::partial::RUNS_PREFIX).map(Self::Swept)
        }
    }

    fn path(&self) -> &Path {
        match self {
            Self::Swept(p) => p.path(),
            Self::Kept(d) => d.path(),
        }
    }
}

/// What a job keeps from run to run.
#[derive(Debug)]
struct Job {
    slot: Slot,
    dirs: Keeper,
}

/// A warm cell's shared home and proxy cache.
fn warm_dirs(plan: &Plan, root: &Path, cell: usize) -> anyhow::Result<Shared> {
    let home = root.join(format!("cell{cell}-home"));
    let cache = root.join(format!("cell{cell}-proxy-cache"));
    for d in [&home, &cache] {
        fs::create_dir_all(d).with_context(|| format!("cannot create {}", d.display()))?;
        if let Some((uid, gid)) = plan.isolation.run_as {
            chown_tree(d, uid, gid)?;
        }
    }
    Ok(Shared {
        home: Some(home),
        proxy_cache: (plan.cells[cell].proxy != "none").then_some(cache),
    })
}

/// One run: prepare, sandbox, follow, judge, clean up. `None` when
/// interrupted before it could finish (it is not counted). A run that cannot
/// be prepared (a full disk, say) is an `error` result; the replay goes on.
fn run_one(
    plan: &Plan,
    root: &Path,
    cell: usize,
    index: u32,
    shared: &Shared,
    job: &mut Job,
    interrupted: &AtomicBool,
) -> Option<RunResult> {
    let seed = run_seed(plan.seed, cell, index);
    let name = if index == WARM_UP {
        format!("cell{cell}-warmup")
    } else {
        format!("cell{cell}-run{index}")
    };
    let label = run_label(&plan.cells[cell], index);
    let dir = root.join(name);
    tracing::info!("[{label}] started (seed {seed})");
    tracing::debug!("[{label}] in {}", dir.display());
    let result = run_in(
        plan,
        &plan.cells[cell],
        &dir,
        index,
        seed,
        shared,
        job,
        interrupted,
        &label,
    );
    if !plan.keep {
        job.dirs.remove(dir.clone());
    }
    let mut result = match result {
        Ok(Some(r)) => r,
        Ok(None) => {
            tracing::info!("[{label}] stopped by the interrupt, not counted");
            return None;
        }
        Err(e) => prepare_failed(index, seed, &e),
    };
    if plan.keep && dir.exists() {
        result.dir = Some(dir.display().to_string());
    }
    tracing::info!("[{label}] {}", finished_words(&result));
    Some(result)
}

/// How log lines name a run: its cell's axes and its index, e.g.
/// `none/cache/cold #2` (`warm-up` for a warm cell's uncounted first run).
pub fn run_label(cell: &Cell, index: u32) -> String {
    let axes = cell.axes();
    if index == WARM_UP {
        format!("{axes} warm-up")
    } else {
        format!("{axes} #{index}")
    }
}

/// A finished run in a few words: `reproduced (hang) after 10004 ms`.
fn finished_words(r: &RunResult) -> String {
    match r.outcome {
        Outcome::Error => format!("error: {}", r.reason),
        Outcome::Passed => format!("passed in {} ms", r.duration_ms),
        Outcome::Reproduced => {
            let how = match (r.reason.as_str(), r.exit_code, &r.signal) {
                ("exit", Some(code), _) => format!("exit code {code}"),
                ("exit", None, Some(sig)) => format!("killed by {sig}"),
                (reason, _, _) => reason.to_owned(),
            };
            format!("reproduced ({how}) after {} ms", r.duration_ms)
        }
    }
}

/// The result of a run that could not be prepared.
fn prepare_failed(index: u32, seed: u64, e: &anyhow::Error) -> RunResult {
    RunResult::error(index, seed, format!("cannot prepare the run: {e:#}"))
}

#[allow(clippy::too_many_arguments)]
fn run_in(
    plan: &Plan,
    cell: &Cell,
    dir: &Path,
    index: u32,
    seed: u64,
    shared: &Shared,
    job: &mut Job,
    interrupted: &AtomicBool,
    label: &str,
) -> anyhow::Result<Option<RunResult>> {
    let base = |outcome, reason: String| RunResult {
        outcome,
        ..RunResult::error(index, seed, reason)
    };
    // A condition this machine cannot give is an error for its cell, never
    // a silent `none`.
    let setup = match axes::prepare(cell) {
        Ok(s) => s,
        Err(why) => return Ok(Some(base(Outcome::Error, why))),
    };
    let layout: RunDirs = job.dirs.take(dir)?;
    // In a checkout the command runs from the user's directory in it.
    let run_cwd = match &plan.files {
        Files::Checkout { cwd, .. } => layout.work.join(cwd),
        Files::Scenario(_) => layout.work.clone(),
    };
    // In a network namespace of its own every run has all ports to itself,
    // so a service keeps the same port, and its URLs stay the same, from run
    // to run (a warm proxy cache is keyed by URL). On the host's network
    // ports are asked of the kernel.
    let own_net = plan.isolation.namespaces && plan.isolation.net != Net::Host;
    let mut services = Vec::with_capacity(plan.scenario.services.len());
    let faulty = cell.net_fault != "none";
    for (i, s) in plan.scenario.services.iter().enumerate() {
        let port_for = |base: u16, what: &str| match u16::try_from(i) {
            Ok(i) if own_net => Ok(base + i),
            _ => supervisor::free_port()
                .with_context(|| format!("cannot find a free port for {what}")),
        };
        let port = port_for(FIRST_SERVICE_PORT, "a service")?;
        let fault_port = if faulty {
            Some(port_for(FIRST_FAULT_PORT, "a fault proxy")?)
        } else {
            None
        };
        let tls_port = if s.tls {
            Some(port_for(FIRST_TLS_PORT, "a TLS terminator")?)
        } else {
            None
        };
        services.push(ServicePlan {
            name: s.name.clone(),
            run: s.run.clone(),
            port,
            fault_port,
            tls_port,
            ready: match &s.ready {
                Readiness::Tcp => ReadyPlan::Tcp,
                Readiness::Http(p) => ReadyPlan::Http(p.clone()),
                Readiness::Log(re) => ReadyPlan::Log(re.as_str().to_owned()),
            },
            ready_timeout_ms: millis(s.ready_timeout),
        });
        tracing::debug!("[{label}] service {} gets port {port}", s.name);
    }
    let home = shared.home.clone().unwrap_or_else(|| layout.home.clone());
    // HTTPS through the proxy, and services over TLS, need the run's CA.
    let ca_bundle = (cell.proxy != "none" || services.iter().any(|s| s.tls_port.is_some()))
        .then(|| layout.root.join("ca-bundle.pem"));
    let mut env = environment(plan, &layout, &home, index, seed, &services);
    if let Some(path) = &ca_bundle {
        for name in crate::proxy::tls::CA_VARIABLES {
            env.insert(name.to_owned(), path.display().to_string());
        }
    }
    let stats_path = layout.logs.join("proxy-stats.json");
    let fault_stats_path = layout.logs.join("net-fault-stats.json");
    let strace_path = layout.logs.join("strace.txt");
    let delay_stats = layout.logs.join("delay-stats.txt");
    let run_env = if setup.delay {
        let theirs = env.get("LD_PRELOAD").map(String::as_str);
        match delay::install(&layout.root, &delay_stats, seed, theirs) {
            Ok(vars) => vars,
            Err(e) => {
                return Ok(Some(base(
                    Outcome::Error,
                    format!("timing=delay cannot write its library into the run directory: {e}"),
                )));
            }
        }
    } else {
        BTreeMap::new()
    };
    let run_plan = RunPlan {
        work_dir: layout.work.clone(),
        cwd: Some(run_cwd.clone()),
        overlay: layout.overlay.clone(),
        stdin: plan.stdin.clone(),
        log_dir: layout.logs.clone(),
        env,
        run_env,
        setup: plan.scenario.setup.clone(),
        services,
        run: plan.scenario.run.clone(),
        step_timeout_ms: millis(plan.timeout),
        limits: plan.limits,
        strace: setup.strace.then(|| strace_path.clone()),
        cpu: setup.cpu,
        proxy: (cell.proxy != "none").then(|| ProxyPlan {
            mode: cell.proxy.clone(),
            seed,
            cache_dir: shared.proxy_cache.clone(),
            stats_path: stats_path.clone(),
        }),
        ca_bundle,
        net_fault: faulty.then(|| NetFaultPlan {
            toxic: cell.net_fault.clone(),
            seed,
            stats_path: fault_stats_path.clone(),
        }),
    };
    let sandbox_err = layout.logs.join("sandbox.err");
    let mut sandbox = match Sandbox::start(
        &plan.isolation,
        &mut job.slot,
        &run_plan,
        &sandbox_err,
        label,
    ) {
        Ok(s) => s,
        Err(e) => return Ok(Some(base(Outcome::Error, format!("sandbox: {e:#}")))),
    };
    // Setup and readiness have their own limits inside the sandbox; this
    // bounds the whole phase in case the sandbox itself stalls.
    let ready_budget: Duration = plan.scenario.services.iter().map(|s| s.ready_timeout).sum();
    let setup_steps = u32::try_from(plan.scenario.setup.len()).unwrap_or(u32::MAX);
    let phase_deadline =
        Instant::now() + plan.timeout * (setup_steps + 1) + ready_budget + Duration::from_secs(10);
    let tick = Duration::from_millis(10);
    let mut run_started: Option<Instant> = None;
    let mut driver: Option<timing::Driver> = None;
    let early = |sandbox: &mut Sandbox, driver: &mut Option<timing::Driver>, r: RunResult| {
        if let Some(d) = driver.take() {
            d.stop();
        }
        sandbox.kill();
        Ok(Some(r))
    };
    let ending = loop {
        if interrupted.load(Ordering::SeqCst) {
            if let Some(d) = driver.take() {
                d.stop();
            }
            sandbox.kill();
            return Ok(None);
        }
        if let Some(t0) = run_started
            && t0.elapsed() >= plan.timeout
        {
            break Err(t0.elapsed());
        }
        if run_started.is_none() && Instant::now() >= phase_deadline {
            return early(
                &mut sandbox,
                &mut driver,
                base(
                    Outcome::Error,
                    "setup and services did not finish in time".into(),
                ),
            );
        }
        match sandbox.next_event(tick) {
            Ok(Event::RunStarted { .. }) => {
                run_started = Some(Instant::now());
                if cell.timing != matrix::Timing::None {
                    tracing::debug!("[{label}] timing {} applied to the run step", cell.timing);
                }
                driver = Some(timing::Driver::start(cell.timing, sandbox.tree(), seed));
            }
            Ok(Event::RunExited {
                exit_code,
                signal,
                duration_ms,
            }) => break Ok((exit_code, signal, duration_ms)),
            // Relayed, or read by the sandbox's reader itself.
            Ok(Event::Ready { .. } | Event::Log { .. } | Event::Root { .. } | Event::Ended) => {}
            Ok(Event::SetupFailed { index: step, why }) => {
                let mut r = base(Outcome::Error, format!("setup[{step}] {why}"));
                r.stderr_tail = Some(outcome::tail(
                    &layout.logs.join(format!("setup-{step}.err")),
                    TAIL_BYTES,
                ));
                return early(&mut sandbox, &mut driver, r);
            }
            Ok(Event::ServiceFailed { name, why }) => {
                let mut r = base(Outcome::Error, format!("service {name} {why}"));
                r.stderr_tail = Some(outcome::tail(
                    &layout.logs.join(format!("service-{name}.err")),
                    TAIL_BYTES,
                ));
                return early(&mut sandbox, &mut driver, r);
            }
            Ok(Event::Error { why }) => {
                return early(
                    &mut sandbox,
                    &mut driver,
                    base(Outcome::Error, format!("sandbox: {why}")),
                );
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let why = sandbox.last_words(&sandbox_err);
                return early(
                    &mut sandbox,
                    &mut driver,
                    base(Outcome::Error, format!("sandbox: {why}")),
                );
            }
        }
    };
    // The condition ends with the run step, before diagnostics: a process
    // frozen by `slow` would read as stopped, not as what it waits on.
    let timing_detail = driver.take().and_then(timing::Driver::stop);
    if let Some(detail) = &timing_detail {
        tracing::debug!("[{label}] timing {}: {detail}", cell.timing);
    }
    let (judged_ending, exit_code, signal, duration_ms, diagnostics) = match ending {
        Ok((code, signal, ms)) => {
            sandbox.wait_end(Duration::from_secs(5));
            (Ending::Exited { code, signal }, code, signal, ms, None)
        }
        Err(elapsed) => {
            tracing::debug!(
                "[{label}] still running at the {} ms limit: taking hang diagnostics, then stopping it",
                millis(plan.timeout)
            );
            let diagnostics = hang_diagnostics(&sandbox, interrupted);
            if diagnostics.cut_short {
                tracing::info!("[{label}] diagnostics cut short by the interrupt");
            }
            sandbox.kill();
            (Ending::Hang, None, None, millis(elapsed), Some(diagnostics))
        }
    };
    let stdout = layout.logs.join("run.out");
    let stderr = layout.logs.join("run.err");
    // A run that never got to the command says nothing about the bug.
    let failed_start = match judged_ending {
        Ending::Exited { code, signal: None } if code != Some(0) => start::check(
            &plan.known,
            code,
            &outcome::tail(&stderr, TAIL_BYTES),
            &run_cwd,
        ),
        _ => None,
    };
    let mut r = if let Some(f) = failed_start {
        let mut r = base(Outcome::Error, f.cause);
        r.hint = Some(f.hint);
        r
    } else {
        let judgement = outcome::judge(&plan.scenario.expect, judged_ending, &stdout, &stderr);
        let mut r = base(judgement.outcome, judgement.reason);
        r.matched = judgement.matched;
        r
    };
    r.exit_code = exit_code;
    r.signal = signal
        .map(|s| Signal::try_from(s).map_or_else(|_| s.to_string(), |s| s.as_str().to_owned()));
    r.duration_ms = duration_ms;
    if let Some(d) = diagnostics {
        r.diagnostics = Some(d.processes);
        r.diagnostics_omitted =
            (d.omitted > 0).then(|| u32::try_from(d.omitted).unwrap_or(u32::MAX));
        r.diagnostics_cut_short = d.cut_short;
    }
    r.axes_detail = axes::run_detail(
        cell,
        timing_detail,
        &stats_path,
        &fault_stats_path,
        setup.strace.then_some(strace_path.as_path()),
    );
    if setup.delay {
        r.axes_detail
            .insert("timing".to_owned(), delay::detail(&delay_stats, seed));
    }
    if let Some(stats) = r.axes_detail.get("proxy") {
        tracing::debug!("[{label}] proxy counters: {stats}");
    }
    if r.outcome != Outcome::Passed {
        r.stderr_tail = Some(outcome::tail(&stderr, TAIL_BYTES)).filter(|t| !t.is_empty());
        r.stdout_tail = Some(outcome::tail(&stdout, TAIL_BYTES)).filter(|t| !t.is_empty());
    }
    Ok(Some(r))
}

/// What [`hang_diagnostics`] gathered.
struct HangDiagnostics {
    processes: Vec<procfs::ProcessReport>,
    /// How many more processes there were.
    omitted: usize,
    /// An interrupt ended the gathering early: debuggers were killed, the
    /// runtimes' dumps not waited for.
    cut_short: bool,
}

/// At a hang: what every process does, then ask runtimes for their stacks
/// (SIGQUIT to JVMs, SIGABRT to all: Python's faulthandler and Go dump every
/// thread on it) and give them until they have exited, or [`DUMP_GRACE`], to
/// print. An interrupt cuts the debuggers and the wait short; what was
/// gathered by then is kept.
fn hang_diagnostics(sandbox: &Sandbox<'_>, interrupted: &AtomicBool) -> HangDiagnostics {
    sandbox.hold();
    let procs = sandbox.processes();
    let (mut processes, omitted) = procfs::diagnose(&procs, procfs::MAX_PROCESSES);
    let mut cut_short = procfs::add_stacks(&mut processes, 3, STACK_LIMIT, interrupted);
    // A debugger stopped at its time limit can leave its target stopped,
    // and a stopped process never acts on the signals below.
    sandbox.signal_all(Signal::SIGCONT);
    for p in &procs {
        if p.comm == "java" {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(p.pid), Signal::SIGQUIT);
        }
    }
    sandbox.signal_all(Signal::SIGABRT);
    let deadline = Instant::now() + DUMP_GRACE;
    while Instant::now() < deadline {
        let alive = procs
            .iter()
            .filter(|p| {
                procfs::read(p.pid)
                    .is_some_and(|now| now.start_ticks == p.start_ticks && now.state != 'Z')
            })
            .count();
        if alive == 0 {
            break;
        }
        if interrupted.load(Ordering::SeqCst) {
            cut_short = true;
            break;
        }
        // A debugger killed mid-attach can leave a SIGSTOP to land after ours.
        sandbox.signal_all(Signal::SIGCONT);
        std::thread::sleep(Duration::from_millis(20));
    }
    HangDiagnostics {
        processes,
        omitted,
        cut_short,
    }
}

/// The environment of every step: a minimal base, the scenario's `env`,
/// then bugpack's own variables, which the scenario cannot override.
fn environment(
    plan: &Plan,
    dirs: &RunDirs,
    home: &Path,
    index: u32,
    seed: u64,
    services: &[ServicePlan],
) -> BTreeMap<String, String> {
    let home = home.display().to_string();
    let mut env = BTreeMap::new();
    let mut set = |k: &str, v: String| {
        env.insert(k.to_owned(), v);
    };
    set("PATH", BASE_PATH.to_owned());
    set("LANG", plan.lang.clone());
    set("TERM", plan.term.clone());
    set("HOME", home.clone());
    set("TMPDIR", dirs.tmp.display().to_string());
    set("XDG_CONFIG_HOME", format!("{home}/.config"));
    set("XDG_CACHE_HOME", format!("{home}/.cache"));
    set("XDG_DATA_HOME", format!("{home}/.local/share"));
    set("XDG_STATE_HOME", format!("{home}/.local/state"));
    set("XDG_RUNTIME_DIR", dirs.tmp.display().to_string());
    for (k, v) in &plan.scenario.env {
        env.insert(k.clone(), v.clone());
    }
    env.insert("PYTHONFAULTHANDLER".into(), "1".into());
    env.insert("BUGPACK_RUN_DIR".into(), dirs.root.display().to_string());
    env.insert("BUGPACK_RUN_INDEX".into(), index.to_string());
    env.insert("BUGPACK_SEED".into(), seed.to_string());
    for s in services {
        let upper = s.name.to_ascii_uppercase();
        // Clients reach a service through its fault proxy when there is
        // one, else through its TLS terminator when there is one.
        let port = s.fault_port.or(s.tls_port).unwrap_or(s.port);
        let scheme = if s.tls_port.is_some() {
            "https"
        } else {
            "http"
        };
        env.insert(format!("BUGPACK_SERVICE_{upper}_PORT"), port.to_string());
        env.insert(
            format!("BUGPACK_SERVICE_{upper}_URL"),
            format!("{scheme}://127.0.0.1:{port}"),
        );
    }
    env
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl Cell {
    /// The cell's axes as the report names them.
    pub fn axes(&self) -> Axes {
        Axes {
            timing: self.timing.to_string(),
            proxy: self.proxy.clone(),
            cache: self.cache.to_string(),
            net_fault: self.net_fault.clone(),
        }
    }
}
