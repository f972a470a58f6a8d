//! The supervisor: the first process of a run's sandbox (PID 1 of its PID
//! namespace where namespaces are available).
//!
//! It reads a [`RunPlan`] on stdin, then runs the scenario's steps inside
//! the sandbox: `setup`, then `services` (readiness is checked from here,
//! since only processes inside the run's network namespace can reach its
//! loopback), then `run`. It reports what happens as JSON lines on stdout
//! ([`Event`]) for the replay engine outside, which owns the run's timeout,
//! hang diagnostics and the final kill. Every step's stdout and stderr go to
//! files in the run directory, never to a pipe that could fill. It never
//! decides an outcome; it reports facts.
//!
//! bugpack's own log lines from in here (the steps started, readiness, the
//! proxy's requests) travel on the same channel as [`Event::Log`], one whole
//! JSON line each, for the engine to print with the run's name: nothing
//! inside the sandbox writes to the user's terminal.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead as _, Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::{CommandExt as _, ExitStatusExt as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// What the supervisor runs; written by the engine, read on stdin.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunPlan {
    /// Where the scenario's files are (or the checkout's view).
    pub work_dir: PathBuf,
    /// Every step's working directory, when not `work_dir` (a directory
    /// inside a checkout).
    #[serde(default)]
    pub cwd: Option<PathBuf>,
    /// A checkout to mount on `work_dir`, copy-on-write, before any step.
    #[serde(default)]
    pub overlay: Option<OverlayPlan>,
    /// The run step's standard input (else `/dev/null`).
    #[serde(default)]
    pub stdin: Option<PathBuf>,
    /// Where step outputs go.
    pub log_dir: PathBuf,
    /// The complete environment of every step (services add `PORT`).
    pub env: BTreeMap<String, String>,
    /// Added for the `run` step only (the `delay` timing's library).
    #[serde(default)]
    pub run_env: BTreeMap<String, String>,
    pub setup: Vec<String>,
    pub services: Vec<ServicePlan>,
    pub run: String,
    /// Each setup step's limit.
    pub step_timeout_ms: u64,
    pub limits: Rlimits,
    /// Run the `run` step under `strace -f -o FILE`.
    #[serde(default)]
    pub strace: Option<PathBuf>,
    /// Pin every process of the run to this CPU.
    #[serde(default)]
    pub cpu: Option<usize>,
    /// Put bugpack's proxy in front of `setup` and `run`.
    #[serde(default)]
    pub proxy: Option<ProxyPlan>,
    /// Put a TCP fault proxy in front of every service.
    #[serde(default)]
    pub net_fault: Option<NetFaultPlan>,
    /// Make a CA for this run (for the proxy's HTTPS interception and the
    /// services' TLS terminators) and write its bundle, with the system's
    /// CAs, here.
    #[serde(default)]
    pub ca_bundle: Option<PathBuf>,
}

/// The network fault of a run's cell: one fault proxy per service, started
/// inside the sandbox once the services are ready, listening on each
/// service's `fault_port` and forwarding to its real port.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NetFaultPlan {
    /// A `--net-fault` value other than `none`.
    pub toxic: String,
    pub seed: u64,
    /// Where the proxies' summed counters go when the run step ends.
    pub stats_path: PathBuf,
}

/// The proxy of a run's cell: started inside the sandbox, so that it shares
/// the run's network, before `setup`; `setup` and `run` get `http_proxy`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProxyPlan {
    /// A `--proxy` value other than `none`.
    pub mode: String,
    pub seed: u64,
    /// Where a warm cell keeps its cache across runs.
    pub cache_dir: Option<PathBuf>,
    /// Where the proxy writes its counters, after every change.
    pub stats_path: PathBuf,
}

/// An overlay mount: `lower` (the checkout, never written) seen through
/// `upper` (the run's own changes), with `scratch` as overlayfs's work
/// directory. Mounted inside the run's mount namespace, it vanishes with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OverlayPlan {
    pub lower: PathBuf,
    pub upper: PathBuf,
    pub scratch: PathBuf,
}

impl OverlayPlan {
    /// Mounts the overlay on `target`. Needs `CAP_SYS_ADMIN` in the mount
    /// namespace's user namespace (the sandbox's, before it execs anything).
    pub fn mount(&self, target: &Path) -> io::Result<()> {
        let escape = |p: &Path| {
            p.display()
                .to_string()
                .replace('\\', "\\\\")
                .replace(',', "\\,")
                .replace(':', "\\:")
        };
        let options = format!(
            "lowerdir={},upperdir={},workdir={}",
            escape(&self.lower),
            escape(&self.upper),
            escape(&self.scratch)
        );
        nix::mount::mount(
            Some("overlay"),
            target,
            Some("overlay"),
            nix::mount::MsFlags::MS_NODEV | nix::mount::MsFlags::MS_NOSUID,
            Some(options.as_str()),
        )
        .map_err(|e| {
            io::Error::other(format!(
                "cannot mount the checkout's overlay on {}: {e}",
                target.display()
            ))
        })
    }
}

/// A service to start and wait for.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServicePlan {
    pub name: String,
    pub run: String,
    /// The service's own port (its `PORT`).
    pub port: u16,
    /// With a network fault, the port of the fault proxy in front of it,
    /// which clients are given instead.
    #[serde(default)]
    pub fault_port: Option<u16>,
    /// With `tls: true`, the port of its TLS terminator.
    #[serde(default)]
    pub tls_port: Option<u16>,
    pub ready: ReadyPlan,
    pub ready_timeout_ms: u64,
}

/// How to tell a service is up.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReadyPlan {
    Tcp,
    Http(String),
    Log(String),
}

/// Resource limits for every step (0 = leave as is).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rlimits {
    pub address_space: u64,
    pub open_files: u64,
    pub processes: u64,
    pub file_size: u64,
}

impl std::fmt::Display for Rlimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let show = |n: u64, bytes: bool| {
            if n == 0 {
                "as inherited".to_owned()
            } else if bytes {
                format!("{} MiB", n >> 20)
            } else {
                n.to_string()
            }
        };
        write!(
            f,
            "address space {}, open files {}, processes {}, file size {}",
            show(self.address_space, true),
            show(self.open_files, false),
            show(self.processes, false),
            show(self.file_size, true)
        )
    }
}

impl Rlimits {
    /// The address-space limit a run gets unless told otherwise: half the
    /// machine's memory, and at least 4 GiB so that runtimes that reserve
    /// large arenas up front (JVMs, Go) still start.
    pub fn default_address_space() -> u64 {
        const FLOOR: u64 = 4 << 30;
        let total = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|text| {
                let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
                let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
                kib.checked_mul(1024)
            })
            .unwrap_or(0);
        (total / 2).max(FLOOR)
    }
}

/// What the supervisor tells the engine, one JSON object per line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum Event {
    /// A setup step failed (nonzero exit, signal, time limit): an error, not a reproduction.
    SetupFailed { index: usize, why: String },
    /// A service was ready.
    Ready { name: String, port: u16 },
    /// A service did not become ready.
    ServiceFailed { name: String, why: String },
    /// The judged step started; `pid` as the sandbox sees it.
    RunStarted { pid: u32 },
    /// The judged step ended by itself.
    RunExited {
        exit_code: Option<i32>,
        signal: Option<i32>,
        duration_ms: u64,
    },
    /// Something in the sandbox itself went wrong.
    Error { why: String },
    /// From a slot: the run's supervisor, PID 1 of its PID namespace, as
    /// the host sees it.
    Root { pid: u32 },
    /// From a slot: the run's supervisor has exited, so every process of
    /// the run is gone; the slot waits for the next plan.
    Ended,
    /// One of bugpack's own log lines (the supervisor's, the proxy's),
    /// already scrubbed of secrets, for the engine to print.
    Log { level: LogLevel, message: String },
}

/// The level of a relayed log line, as `tracing` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

impl From<tracing::Level> for LogLevel {
    fn from(level: tracing::Level) -> Self {
        match level {
            tracing::Level::ERROR => Self::Error,
            tracing::Level::WARN => Self::Warn,
            tracing::Level::INFO => Self::Info,
            tracing::Level::DEBUG => Self::Debug,
            tracing::Level::TRACE => Self::Trace,
        }
    }
}

/// The most bytes of log lines one sandbox sends; a run that makes its proxy
/// log more (millions of requests under `-v`) has the rest left out, and
/// says so, rather than outgrow what the engine reads.
const LOG_BUDGET: u64 = 8 << 20;

/// Writes `event` as one JSON line on stdout, the channel to the engine.
/// Each line is written whole under stdout's lock, so log lines from the
/// proxy's thread never split an event.
pub(crate) fn send(event: &Event) -> io::Result<()> {
    let mut line = serde_json::to_vec(event).map_err(io::Error::other)?;
    line.push(b'\n');
    let mut out = io::stdout().lock();
    out.write_all(&line)?;
    out.flush()
}

/// Sends one of bugpack's own log lines from inside the sandbox to the
/// engine. It is scrubbed here with what the sandbox knows (the run's
/// environment; the engine scrubs again with the maintainer's). Best
/// effort: a closed channel only loses the line.
pub fn relay_log(level: LogLevel, message: &str) {
    static SENT: AtomicU64 = AtomicU64::new(0);
    let message = crate::redact::logs::scrub(message);
    let size = message.len() as u64 + 48;
    let before = SENT.fetch_add(size, Ordering::Relaxed);
    if before + size > LOG_BUDGET {
        if before <= LOG_BUDGET {
            let _ = send(&Event::Log {
                level: LogLevel::Warn,
                message: format!(
                    "the rest of this run's log lines are left out (past {} MiB)",
                    LOG_BUDGET >> 20
                ),
            });
        }
        return;
    }
    let _ = send(&Event::Log { level, message });
}

/// Prints a log line relayed from the sandbox of run `label`, at its level
/// (an error inside a run is the run's problem, reported with its result:
/// here it is a warning, so `-q` stays quiet).
pub fn print_relayed(label: &str, level: LogLevel, message: &str) {
    match level {
        LogLevel::Error | LogLevel::Warn => tracing::warn!("[{label}] {message}"),
        LogLevel::Info => tracing::info!("[{label}] {message}"),
        LogLevel::Debug => tracing::debug!("[{label}] {message}"),
        LogLevel::Trace => tracing::trace!("[{label}] {message}"),
    }
}

/// Runs the supervisor: reads the plan from stdin, reports on stdout.
/// As PID 1 of the run's namespace, returns when the run step has exited or
/// a step failed, and its exit takes whatever is left with it. Without a
/// namespace it never returns: its exit would hand the run's leftovers to
/// init, out of the engine's reach, so it waits for the engine to stop them
/// and it together.
pub fn main() -> io::Result<()> {
    let result = read_plan().and_then(|plan| supervise(&plan));
    if std::process::id() == 1 {
        return result;
    }
    if let Err(e) = result {
        let _ = send(&Event::Error { why: e.to_string() });
    }
    loop {
        thread::park();
    }
}

/// The plan, from stdin, for a supervisor started on its own.
fn read_plan() -> io::Result<RunPlan> {
    let mut text = String::new();
    io::stdin()
        .lock()
        .take(MAX_PLAN)
        .read_to_string(&mut text)?;
    serde_json::from_str(&text).map_err(io::Error::other)
}

/// The largest plan a supervisor or a slot reads.
pub const MAX_PLAN: u64 = 16 << 20;

/// Supervises `plan`'s run as PID 1 of the namespace a slot has just
/// forked it into: `plan` was read by the slot, so nothing is read here.
pub fn main_with(plan: &RunPlan) -> io::Result<()> {
    supervise(plan)
}

fn supervise(plan: &RunPlan) -> io::Result<()> {
    // If the engine dies, the sandbox dies with it.
    let _ = nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL);
    // Without a PID namespace, orphans of the run are adopted here, so the
    // engine can still find and stop them as our descendants.
    let _ = nix::sys::prctl::set_child_subreaper(true);
    crate::redact::logs::install_env(plan.env.clone().into_iter().collect());
    // Set here, before any step or thread, so that every step inherits them.
    if let Err(e) = apply_limits(plan.limits) {
        send(&Event::Error {
            why: format!("cannot set the rlimits {}: {e}", plan.limits),
        })?;
        return Ok(());
    }
    if let Some(overlay) = &plan.overlay {
        if let Err(e) = overlay.mount(&plan.work_dir) {
            send(&Event::Error { why: e.to_string() })?;
            return Ok(());
        }
        tracing::debug!(
            "mounted the checkout copy-on-write on {}",
            plan.work_dir.display()
        );
    }
    if let Some(cpu) = plan.cpu {
        if let Err(why) = pin_to_cpu(cpu) {
            send(&Event::Error {
                why: format!("cannot pin the run to CPU {cpu}: {why}"),
            })?;
            return Ok(());
        }
        tracing::debug!("pinned the run to CPU {cpu}");
    }
    tracing::debug!("rlimits for every step: {}", plan.limits);
    let authority = match &plan.ca_bundle {
        None => None,
        Some(path) => match make_authority(path) {
            Ok(a) => Some(a),
            Err(why) => {
                return send(&Event::Error {
                    why: format!("cannot make the replay's CA: {why}"),
                });
            }
        },
    };
    let mut proxy = None;
    let proxy_env = match &plan.proxy {
        None => Vec::new(),
        Some(p) => match start_proxy(p, authority.clone()) {
            Ok(running) => {
                let url = running.url.clone();
                tracing::debug!(
                    "proxy ({}) listening on {url}; setup and run get http_proxy and https_proxy",
                    p.mode
                );
                proxy = Some(running);
                vec![
                    ("http_proxy", url.clone()),
                    ("HTTP_PROXY", url.clone()),
                    ("https_proxy", url.clone()),
                    ("HTTPS_PROXY", url),
                ]
            }
            Err(why) => {
                return send(&Event::Error {
                    why: format!("cannot start the {} proxy: {why}", p.mode),
                });
            }
        },
    };
    let proxied: Vec<(&str, &str)> = proxy_env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut reaper = Reaper::default();
    for (index, step) in plan.setup.iter().enumerate() {
        let name = format!("setup-{index}");
        let mut child = match spawn(plan, &name, step, &proxied) {
            Ok(c) => c,
            Err(e) => {
                return send(&Event::SetupFailed {
                    index,
                    why: format!("cannot start: {e}"),
                });
            }
        };
        reaper.track(child.id());
        tracing::info!(
            "started setup[{index}] (pid {}): sh -c {}",
            child.id(),
            quoted(step)
        );
        let limit = Duration::from_millis(plan.step_timeout_ms);
        match wait_timeout(&mut child, limit, &mut reaper)? {
            Some(status) if status.success() => {}
            Some(status) => {
                return send(&Event::SetupFailed {
                    index,
                    why: describe(status),
                });
            }
            None => {
                let _ = child.kill();
                return send(&Event::SetupFailed {
                    index,
                    why: format!("still running after {}", fmt_ms(plan.step_timeout_ms)),
                });
            }
        }
    }
    let mut services = Vec::new();
    for service in &plan.services {
        let name = format!("service-{}", service.name);
        let port = service.port.to_string();
        let mut child = match spawn(plan, &name, &service.run, &[("PORT", port.as_str())]) {
            Ok(c) => c,
            Err(e) => {
                return send(&Event::ServiceFailed {
                    name: service.name.clone(),
                    why: format!("cannot start: {e}"),
                });
            }
        };
        reaper.track(child.id());
        tracing::info!(
            "started service {} on port {port} (pid {}): sh -c {}",
            service.name,
            child.id(),
            quoted(&service.run)
        );
        match wait_ready(plan, service, &mut child, &mut reaper) {
            Ok(()) => send(&Event::Ready {
                name: service.name.clone(),
                port: service.port,
            })?,
            Err(why) => {
                return send(&Event::ServiceFailed {
                    name: service.name.clone(),
                    why,
                });
            }
        }
        services.push(child);
    }
    let mut terminators = Vec::new();
    for service in &plan.services {
        let (Some(port), Some(authority)) = (service.tls_port, &authority) else {
            continue;
        };
        match crate::proxy::tls::Terminator::start(
            SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
            SocketAddr::from((Ipv4Addr::LOCALHOST, service.port)),
            authority,
        ) {
            Ok(t) => {
                tracing::info!(
                    "service {}: TLS on port {port}, with a certificate from the replay's CA",
                    service.name
                );
                terminators.push(t);
            }
            Err(why) => {
                return send(&Event::Error {
                    why: format!("cannot serve service {} over TLS: {why}", service.name),
                });
            }
        }
    }
    let faults = match &plan.net_fault {
        None => Vec::new(),
        Some(n) => match start_fault_proxies(n, &plan.services) {
            Ok(f) => f,
            Err(why) => {
                return send(&Event::Error {
                    why: format!("cannot start the {} fault proxy: {why}", n.toxic),
                });
            }
        },
    };
    let started = Instant::now();
    let run = match spawn(plan, "run", &plan.run, &proxied) {
        Ok(c) => c,
        Err(e) => {
            return send(&Event::Error {
                why: format!("cannot start the run step: {e}"),
            });
        }
    };
    reaper.track(run.id());
    if let Some(trace) = &plan.strace {
        tracing::info!(
            "started run (pid {}) under strace -f -o {}: sh -c {}",
            run.id(),
            trace.display(),
            quoted(&plan.run)
        );
    } else {
        tracing::info!(
            "started run (pid {}): sh -c {}",
            run.id(),
            quoted(&plan.run)
        );
    }
    send(&Event::RunStarted { pid: run.id() })?;
    // Block until the run step ends, reaping whatever else ends meanwhile
    // (services, orphans): as PID 1 that is our job, and it costs no polling.
    let run_pid = nix::unistd::Pid::from_raw(i32::try_from(run.id()).map_err(io::Error::other)?);
    let (exit_code, signal) = loop {
        use nix::sys::wait::{WaitStatus, waitpid};
        match waitpid(None, None) {
            Ok(WaitStatus::Exited(pid, code)) if pid == run_pid => break (Some(code), None),
            Ok(WaitStatus::Signaled(pid, sig, _)) if pid == run_pid => {
                break (None, Some(sig as i32));
            }
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(io::Error::from(e)),
        }
    };
    let duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    tracing::debug!(
        "run step {} after {duration_ms} ms",
        match (exit_code, signal) {
            (Some(code), _) => format!("exited with code {code}"),
            (None, Some(sig)) => format!("was killed by signal {sig}"),
            _ => "ended".to_owned(),
        }
    );
    // The engine reads the proxy's counters once it hears the run ended:
    // let the proxy write its last snapshot first.
    if let Some(p) = proxy {
        p.stop();
    }
    if let Some(n) = &plan.net_fault {
        let mut total = crate::netfault::Stats::default();
        for f in faults {
            total.add(&f.shutdown());
        }
        if let Err(e) = serde_json::to_vec(&total)
            .map_err(io::Error::other)
            .and_then(|json| std::fs::write(&n.stats_path, json))
        {
            tracing::warn!("cannot write the fault proxy's counters: {e}");
        }
    }
    send(&Event::RunExited {
        exit_code,
        signal,
        duration_ms,
    })?;
    drop(services);
    drop(terminators);
    Ok(())
}

/// The run's CA, its bundle written where the steps' variables say.
fn make_authority(path: &Path) -> Result<std::sync::Arc<crate::proxy::tls::Authority>, String> {
    let authority = crate::proxy::tls::Authority::new()?;
    authority
        .write_bundle(path)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    tracing::debug!(
        "made the replay's CA; its certificate and the system's CAs are in {}",
        path.display()
    );
    Ok(std::sync::Arc::new(authority))
}

/// The proxy of a run, serving on a thread of the supervisor.
struct RunningProxy {
    url: String,
    stop: tokio::sync::oneshot::Sender<()>,
    done: mpsc::Receiver<()>,
}

impl RunningProxy {
    /// Asks the proxy to stop and waits (a little) for its final counters.
    fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.done.recv_timeout(Duration::from_secs(1));
    }
}

/// Starts the proxy on a thread of this process.
fn start_proxy(
    plan: &ProxyPlan,
    tls: Option<std::sync::Arc<crate::proxy::tls::Authority>>,
) -> Result<RunningProxy, String> {
    let mode: crate::proxy::Mode = plan
        .mode
        .parse()
        .map_err(|e: crate::proxy::ModeError| e.to_string())?;
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(|e| e.to_string())?;
    let port = listener.local_addr().map_err(|e| e.to_string())?.port();
    let config = crate::proxy::Config {
        mode,
        seed: plan.seed,
        cache_dir: plan.cache_dir.clone(),
        tls,
    };
    let stats = plan.stats_path.clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (finished, done) = mpsc::channel();
    thread::Builder::new()
        .name("proxy".into())
        .spawn(move || {
            let until = async {
                let _ = stopped.await;
            };
            if let Err(e) = crate::proxy::serve_until(listener, config, Some(&stats), until) {
                tracing::error!("the proxy stopped: {e}");
            }
            let _ = finished.send(());
        })
        .map_err(|e| e.to_string())?;
    Ok(RunningProxy {
        url: format!("http://127.0.0.1:{port}"),
        stop,
        done,
    })
}

/// Starts a fault proxy in front of each service that has a `fault_port`.
fn start_fault_proxies(
    plan: &NetFaultPlan,
    services: &[ServicePlan],
) -> Result<Vec<crate::netfault::FaultProxy>, String> {
    let toxic: crate::netfault::Toxic = plan
        .toxic
        .parse()
        .map_err(|e: crate::netfault::ToxicError| e.to_string())?;
    let mut proxies = Vec::new();
    for (i, service) in services.iter().enumerate() {
        let Some(port) = service.fault_port else {
            continue;
        };
        // In front of the TLS terminator when there is one: the fault acts
        // on the encrypted stream, as a network hop would.
        let upstream = service.tls_port.unwrap_or(service.port);
        let proxy = crate::netfault::FaultProxy::start(
            SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
            SocketAddr::from((Ipv4Addr::LOCALHOST, upstream)),
            toxic,
            plan.seed ^ (i as u64),
        )
        .map_err(|e| format!("port {port}: {e}"))?;
        tracing::info!(
            "service {}: clients reach it through {toxic} on port {port}",
            service.name
        );
        proxies.push(proxy);
    }
    Ok(proxies)
}

/// Starts `sh -c command` as step `name`, output to `<log_dir>/<name>.out|.err`.
fn spawn(plan: &RunPlan, name: &str, command: &str, extra: &[(&str, &str)]) -> io::Result<Child> {
    let out = log_file(&plan.log_dir, &format!("{name}.out"))?;
    let err = log_file(&plan.log_dir, &format!("{name}.err"))?;
    let program = |name: &str| on_path(name, plan.env.get("PATH").map(String::as_str));
    let mut cmd = if let (Some(trace), "run") = (&plan.strace, name) {
        let mut c = Command::new(program("strace"));
        c.arg0("strace");
        c.arg("-f")
            .arg("-o")
            .arg(trace)
            .args(["--", "sh", "-c", command]);
        c
    } else {
        let mut c = Command::new(program("sh"));
        c.arg0("sh").args(["-c", command]);
        c
    };
    let stdin = match (&plan.stdin, name) {
        (Some(path), "run") => Stdio::from(File::open(path)?),
        _ => Stdio::null(),
    };
    cmd.current_dir(plan.cwd.as_ref().unwrap_or(&plan.work_dir))
        .env_clear()
        .envs(&plan.env)
        .envs(plan.run_env.iter().filter(|_| name == "run"))
        .envs(extra.iter().copied())
        .stdin(stdin)
        .stdout(out)
        .stderr(err);
    // The rlimits are the supervisor's own, inherited: with no hook to run
    // between fork and exec, the standard library spawns with vfork, which
    // costs a fraction of a fork of this process.
    cmd.spawn()
}

/// Where `name` is on the step's `PATH`, as `execvp` would find it; `name`
/// itself if it is nowhere there. Found here because the standard library
/// spawns a program it must look up on a changed `PATH` with a fork of
/// this process, and a path it is given with vfork, which is much cheaper.
fn on_path(name: &str, path: Option<&str>) -> PathBuf {
    use std::os::unix::fs::PermissionsExt as _;
    path.unwrap_or("/usr/bin:/bin")
        .split(':')
        .map(|dir| Path::new(if dir.is_empty() { "." } else { dir }).join(name))
        .find(|candidate| {
            std::fs::metadata(candidate)
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
        .unwrap_or_else(|| PathBuf::from(name))
}

fn log_file(dir: &Path, name: &str) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(name))
}

fn apply_limits(limits: Rlimits) -> io::Result<()> {
    use nix::sys::resource::{Resource, setrlimit};
    for (resource, value) in [
        (Resource::RLIMIT_AS, limits.address_space),
        (Resource::RLIMIT_NOFILE, limits.open_files),
        (Resource::RLIMIT_NPROC, limits.processes),
        (Resource::RLIMIT_FSIZE, limits.file_size),
    ] {
        if value > 0 {
            setrlimit(resource, value, value).map_err(io::Error::from)?;
        }
    }
    Ok(())
}

fn pin_to_cpu(cpu: usize) -> nix::Result<()> {
    let mut set = nix::sched::CpuSet::new();
    set.set(cpu)?;
    nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set)
}

/// Waits for a step with a limit, reaping orphans meanwhile.
fn wait_timeout(
    child: &mut Child,
    limit: Duration,
    reaper: &mut Reaper,
) -> io::Result<Option<ExitStatus>> {
    let deadline = Instant::now() + limit;
    // Short pauses first: most steps of a quick scenario end within a
    // millisecond or two, and a fixed 5 ms poll was half of replay's
    // per-run overhead (benches/replay.rs).
    let mut pause = super::Backoff::starting_at(Duration::from_micros(100));
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        if Instant::now() >= deadline {
            return Ok(None);
        }
        reaper.reap();
        thread::sleep(
            pause
                .next()
                .min(deadline.saturating_duration_since(Instant::now())),
        );
    }
}

/// Waits until `service` is ready, or says why it never was.
fn wait_ready(
    plan: &RunPlan,
    service: &ServicePlan,
    child: &mut Child,
    reaper: &mut Reaper,
) -> Result<(), String> {
    let started = Instant::now();
    let deadline = started + Duration::from_millis(service.ready_timeout_ms);
    let log = match &service.ready {
        ReadyPlan::Log(re) => Some(regex::bytes::Regex::new(re).map_err(|e| e.to_string())?),
        _ => None,
    };
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, service.port));
    let how = match &service.ready {
        ReadyPlan::Tcp => format!("a TCP connect to port {}", service.port),
        ReadyPlan::Http(path) => format!("GET {path} on port {} below 500", service.port),
        ReadyPlan::Log(re) => format!("a line matching /{re}/ in its output"),
    };
    tracing::debug!(
        "waiting for service {}: {how}, polled every 20 ms for up to {}",
        service.name,
        fmt_ms(service.ready_timeout_ms)
    );
    let mut polls = 0u32;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("{} before it was ready", describe(status)));
        }
        polls += 1;
        let answer = match &service.ready {
            ReadyPlan::Tcp => TcpStream::connect_timeout(&addr, Duration::from_millis(200))
                .map(drop)
                .map_err(|e| e.to_string()),
            ReadyPlan::Http(path) => http_ready(service.port, path),
            ReadyPlan::Log(_) => {
                let seen = log.as_ref().is_some_and(|re| {
                    ["out", "err"].iter().any(|ext| {
                        std::fs::read(plan.log_dir.join(format!("service-{}.{ext}", service.name)))
                            .is_ok_and(|bytes| re.is_match(&bytes))
                    })
                });
                if seen {
                    Ok(())
                } else {
                    Err("no line matches yet".to_owned())
                }
            }
        };
        match answer {
            Ok(()) => {
                tracing::info!(
                    "service {} ready after {} ms ({polls} poll{})",
                    service.name,
                    started.elapsed().as_millis(),
                    if polls == 1 { "" } else { "s" }
                );
                return Ok(());
            }
            Err(why) => tracing::trace!("service {} not ready: {why}", service.name),
        }
        if Instant::now() >= deadline {
            tracing::debug!(
                "service {} never became ready ({polls} polls)",
                service.name
            );
            return Err(format!(
                "not ready within {}",
                fmt_ms(service.ready_timeout_ms)
            ));
        }
        reaper.reap();
        thread::sleep(Duration::from_millis(20));
    }
}

/// A GET of `path` answers with a status below 500; else why not.
fn http_ready(port: u16, path: &str) -> Result<(), String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_millis(500)))
        .http_status_as_error(false)
        .proxy(None)
        .build()
        .into();
    match agent.get(format!("http://127.0.0.1:{port}{path}")).call() {
        Ok(r) if r.status().as_u16() < 500 => Ok(()),
        Ok(r) => Err(format!("status {}", r.status().as_u16())),
        Err(e) => Err(e.to_string()),
    }
}

/// A step's command as `sh -c` receives it, quoted for a log line.
fn quoted(command: &str) -> String {
    shlex::try_quote(command).map_or_else(|_| format!("{command:?}"), std::borrow::Cow::into_owned)
}

/// A free loopback port, for services (asked of the kernel, then released).
pub fn free_port() -> io::Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(listener.local_addr()?.port())
}

fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with code {code}"),
        (None, Some(sig)) => format!(
            "was killed by {}",
            nix::sys::signal::Signal::try_from(sig)
                .map_or_else(|_| format!("signal {sig}"), |s| s.as_str().to_owned())
        ),
        _ => "ended".to_owned(),
    }
}

fn fmt_ms(ms: u64) -> String {
    humantime::format_duration(Duration::from_millis(ms)).to_string()
}

/// As PID 1 (or a subreaper), collects the orphans that end up as our
/// children, leaving alone the steps we wait for ourselves.
#[derive(Debug, Default)]
struct Reaper {
    tracked: Vec<u32>,
}

impl Reaper {
    fn track(&mut self, pid: u32) {
        self.tracked.push(pid);
    }

    fn reap(&mut self) {
        use nix::sys::wait::{WaitPidFlag, waitpid};
        for pid in orphan_zombies() {
            if self.tracked.iter().any(|&t| i64::from(t) == i64::from(pid)) {
                continue;
            }
            let _ = waitpid(nix::unistd::Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG));
        }
    }
}

/// Zombie children of this process that it adopted (not spawned by `Command`).
fn orphan_zombies() -> Vec<i32> {
    let me = std::process::id();
    let Ok(children) = std::fs::read_to_string(format!("/proc/{me}/task/{me}/children")) else {
        return Vec::new();
    };
    children
        .split_whitespace()
        .filter_map(|p| p.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|s| s.rsplit_once(") ").map(|(_, rest)| rest.starts_with('Z')))
                .unwrap_or(false)
        })
        .collect()
}

/// Reads events from a sandbox's stdout, one per line, at most 64 MiB of
/// them; malformed lines (the sandbox is not trusted to be well-behaved)
/// become `Error` events. Reads until the end of the output, or until
/// `on_event` returns false: `true` then, and `reader` is left just after
/// that event's line, to read the next run's events from.
pub fn read_events(reader: &mut impl io::BufRead, mut on_event: impl FnMut(Event) -> bool) -> bool {
    for line in reader.take(64 << 20).split(b'\n') {
        let Ok(line) = line else { break };
        if line.is_empty() {
            continue;
        }
        let line = &line[..line.len().min(64 << 10)];
        let event = serde_json::from_slice(line).unwrap_or_else(|e| Event::Error {
            why: format!("unreadable message from the sandbox: {e}"),
        });
        if !on_event(event) {
            return true;
        }
    }
    false
}
