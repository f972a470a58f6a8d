//! The sandbox a run lives in, from both sides.
//!
//! Inside ([`slot`], the hidden `bugpack __sandbox` command): a job slot
//! unshares a user namespace, mapping our own uid and gid into it, a mount
//! namespace with an empty `/dev/shm`, and (unless `--net host`) a network
//! namespace with `lo` up for `--net loopback`, and keeps them from run to
//! run. For each run it forks the supervisor straight into new PID and IPC
//! namespaces, as PID 1 of the new PID namespace, before the run's plan
//! arrives, so that this overlaps with the engine's own preparation. When
//! PID 1 dies the kernel kills every process left in the namespace,
//! daemons and `setsid` escapees included: that is how a run leaves
//! nothing behind.
//!
//! Outside ([`Slot`], [`Sandbox`]): start a slot's process (as `nobody`
//! when bugpack runs as root, so a stranger's code never runs with root's
//! file permissions), hand it each run's plan, read its events, find the
//! run's processes, and kill them. Where namespaces cannot be made, each
//! run's supervisor runs in its own process group as a child subreaper
//! instead, and [`Sandbox::kill`] stops its descendants.
//!
//! The sandbox gets bugpack's own verbosity (`-v`, `-q`) on its command line;
//! its log lines come back as events on its output and are printed here,
//! whole, with the run's name, by the thread that reads them: every line
//! of a run is read until the slot says the run has ended, so none is lost.

use std::fs::{self, File};
use std::io::{self, BufReader, Read as _, Write as _};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use nix::sched::{CloneFlags, unshare};
use nix::sys::signal::{Signal, kill};
use nix::unistd::{Gid, Pid, Uid};
use serde::{Deserialize, Serialize};

use super::supervisor::{self, Event, RunPlan};
use super::{Backoff, procfs};

/// The network a run sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Net {
    /// A network namespace with nothing in it, not even `lo`.
    None,
    /// A network namespace with only `lo`, up.
    Loopback,
    /// The host's network.
    Host,
}

impl Net {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Loopback => "loopback",
            Self::Host => "host",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "none" => Some(Self::None),
            "loopback" => Some(Self::Loopback),
            "host" => Some(Self::Host),
            _ => None,
        }
    }
}

/// How runs are isolated on this machine, decided once per replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Isolation {
    /// User and PID namespaces (and network ones unless `net` is host).
    pub namespaces: bool,
    pub net: Net,
    /// The uid and gid runs take when bugpack runs as root.
    pub run_as: Option<(u32, u32)>,
}

/// How long stopping a run may take before bugpack gives up on a process
/// that does not die (one stuck in the kernel, on a dead NFS server say).
const GONE_LIMIT: Duration = Duration::from_mins(1);

/// The uid and gid of `nobody`, which runs take when bugpack runs as root.
const NOBODY: (u32, u32) = (65_534, 65_534);

impl Isolation {
    /// Probes what the kernel allows. `asked` is the user's `--net`; without
    /// it, loopback where namespaces work and host otherwise. Returns the
    /// isolation and, when it is weaker than asked or hoped, a warning.
    pub fn detect(asked: Option<Net>) -> anyhow::Result<(Self, Option<String>)> {
        let run_as = Uid::effective().is_root().then_some(NOBODY);
        let want = asked.unwrap_or(Net::Loopback);
        let forced = std::env::var("BUGPACK_SANDBOX").is_ok_and(|v| v == "process");
        let probe = Self {
            namespaces: true,
            net: if want == Net::Host {
                Net::Host
            } else {
                Net::Loopback
            },
            run_as,
        };
        let probed = if forced {
            Err("BUGPACK_SANDBOX=process".to_owned())
        } else {
            probe.probe()
        };
        match probed {
            Ok(()) => Ok((Self { net: want, ..probe }, None)),
            Err(why) => {
                if matches!(asked, Some(Net::Loopback | Net::None)) {
                    anyhow::bail!(
                        "--net {} needs user and network namespaces, which this machine refuses ({why}); use --net host",
                        want.as_str()
                    );
                }
                Ok((
                    Self {
                        namespaces: false,
                        net: Net::Host,
                        run_as,
                    },
                    Some(format!(
                        "runs are not in their own namespaces ({why}): they share the host's network, \
                         and processes that leave their process group are found through bugpack instead"
                    )),
                ))
            }
        }
    }

    /// Whether a run's sandbox can mount a checkout copy-on-write (overlayfs
    /// in its user namespace, Linux 5.11 and later): tried on scratch
    /// directories under `dir`, which it removes. `Err` says why not.
    pub fn overlay_works(&self, dir: &Path) -> Result<(), String> {
        if !self.namespaces {
            return Err("runs are not in namespaces of their own".to_owned());
        }
        let made = (|| -> io::Result<()> {
            for d in ["lower", "upper", "work", "merged"] {
                std::fs::create_dir_all(dir.join(d))?;
            }
            std::fs::write(dir.join("lower/lower.txt"), "below\n")?;
            if let Some((uid, gid)) = self.run_as {
                for d in ["", "lower", "lower/lower.txt", "upper", "work", "merged"] {
                    std::os::unix::fs::lchown(dir.join(d), Some(uid), Some(gid))?;
                }
            }
            Ok(())
        })();
        let result = if let Err(e) = made {
            Err(format!("cannot prepare the probe: {e}"))
        } else {
            let mut cmd = self.command(true);
            cmd.arg("--overlay").arg(dir);
            run_probe(cmd)
        };
        let _ = std::fs::remove_dir_all(dir);
        result
    }

    /// Starts `bugpack __sandbox --probe`: namespaces made, loopback up, exit.
    fn probe(&self) -> Result<(), String> {
        run_probe(self.command(true))
    }
}

/// Runs a `__sandbox --probe` command: `Err` with its last line of stderr
/// when it fails.
fn run_probe(mut cmd: Command) -> Result<(), String> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let out = cmd.output().map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(())
    } else {
        let text = String::from_utf8_lossy(&out.stderr);
        Err(text
            .lines()
            .last()
            .unwrap_or("unknown reason")
            .trim()
            .to_owned())
    }
}

impl Isolation {
    fn command(&self, probe: bool) -> Command {
        let mut cmd = Command::new(self_exe());
        // A probe's output is not read: it keeps the default level, and its
        // error stays the one line `probe` reads.
        if let Some(flag) = verbosity_flag().filter(|_| !probe) {
            cmd.arg(flag);
        }
        if self.namespaces {
            cmd.arg("__sandbox").args(["--net", self.net.as_str()]);
            if probe {
                cmd.arg("--probe");
            }
        } else {
            cmd.arg("__supervise");
        }
        cmd.process_group(0);
        if let Some((uid, gid)) = self.run_as {
            cmd.uid(uid).gid(gid);
        }
        cmd
    }
}

/// The global flag that gives the sandbox this process's log level, so it
/// sends only the lines that will be printed.
fn verbosity_flag() -> Option<&'static str> {
    use tracing::level_filters::LevelFilter;
    match LevelFilter::current() {
        LevelFilter::TRACE => Some("-vvv"),
        LevelFilter::DEBUG => Some("-vv"),
        LevelFilter::INFO => Some("-v"),
        LevelFilter::WARN => None,
        _ => Some("-q"),
    }
}

/// The running bugpack binary, by a path that works whatever the
/// permissions of the directories it was installed in.
fn self_exe() -> &'static Path {
    Path::new("/proc/self/exe")
}

/// A job slot's sandbox, kept from run to run: one `bugpack __sandbox`
/// process that holds a user and a mount namespace and (unless `--net
/// host`) a network namespace with `lo` up, and makes each run a PID and
/// an IPC namespace of its own. Making those two is cheap; starting
/// bugpack again and making a network namespace is most of what a run
/// used to cost.
///
/// What could survive a run in the kept namespaces is checked before the
/// next one: a socket still open or in `TIME_WAIT` in the network namespace
/// makes the slot replace it with a fresh one, and a file left in
/// `/dev/shm` an empty `/dev/shm`. A process cannot survive (its PID
/// namespace is gone before the slot hears the run has ended), nor can a
/// System V IPC object (fresh for every run), nor a mount (a run's steps
/// have no capabilities in the slot's namespaces; a checkout's overlay is
/// mounted in a mount namespace of the run's own).
#[derive(Debug)]
pub struct Slot {
    /// Where the slot's own stderr goes (the runs' go to their own files).
    err_file: PathBuf,
    kept: Option<Kept>,
}

/// The running `__sandbox` of a [`Slot`].
#[derive(Debug)]
struct Kept {
    child: Child,
    input: ChildStdin,
    /// `None` while a run's reader has it.
    output: Option<BufReader<ChildStdout>>,
}

/// What a slot is sent for each run, as one JSON line.
#[derive(Debug, Serialize, Deserialize)]
struct SlotRequest {
    plan: RunPlan,
    /// The supervisor's stderr.
    stderr: PathBuf,
}

impl Slot {
    /// A slot with no process yet; its process, started with the first
    /// run, writes its stderr to `err_file`.
    pub fn new(err_file: PathBuf) -> Self {
        Self {
            err_file,
            kept: None,
        }
    }

    /// The slot's process, started if it is not running.
    fn process(&mut self, iso: &Isolation) -> anyhow::Result<&mut Kept> {
        if let Some(kept) = &mut self.kept
            && (kept.output.is_none() || !matches!(kept.child.try_wait(), Ok(None)))
        {
            self.stop();
        }
        if self.kept.is_none() {
            let mut child = iso.spawn(&self.err_file, "a job slot's sandbox")?;
            let input = child.stdin.take().context("the sandbox has no stdin")?;
            let output = child.stdout.take().context("the sandbox has no stdout")?;
            self.kept = Some(Kept {
                child,
                input,
                output: Some(BufReader::new(output)),
            });
        }
        self.kept.as_mut().context("the job slot has no sandbox")
    }

    /// Ends the slot's process: its stdin closed, it reaps its last run
    /// and exits; killed if it does not within a second. A run still in it
    /// dies by its parent-death signal.
    fn stop(&mut self) {
        if let Some(mut kept) = self.kept.take() {
            drop(kept.input);
            if !wait_for(&mut kept.child, Duration::from_secs(1)) {
                let _ = kept.child.kill();
                let _ = kept.child.wait();
            }
        }
    }

    /// The last line of the slot's own stderr: why it ended, if it said.
    fn last_words(&self) -> Option<String> {
        last_line(&fs::read_to_string(&self.err_file).ok()?)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Isolation {
    /// Starts a sandbox process (a job slot's, or a supervisor of its own)
    /// with its stdin and stdout piped and its stderr in `stderr_file`;
    /// `what` names it in the debug log.
    fn spawn(&self, stderr_file: &Path, what: &str) -> anyhow::Result<Child> {
        let stderr = File::create(stderr_file)
            .with_context(|| format!("cannot create {}", stderr_file.display()))?;
        let mut cmd = self.command(false);
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr);
        let child = cmd.spawn().context("cannot start the sandbox")?;
        tracing::debug!(
            "started {what} (pid {}): {}",
            child.id(),
            std::iter::once(cmd.get_program())
                .chain(cmd.get_args())
                .map(|a| a.to_string_lossy())
                .collect::<Vec<_>>()
                .join(" ")
        );
        Ok(child)
    }
}

/// The last line of `text` that is not blank, trimmed.
fn last_line(text: &str) -> Option<String> {
    text.lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(str::to_owned)
}

/// A started sandbox, seen from outside: a run in a job [`Slot`], or,
/// without namespaces, a supervisor process of its own.
#[derive(Debug)]
pub struct Sandbox<'s> {
    host: Host<'s>,
    events: mpsc::Receiver<Event>,
    /// Returns the slot's output once the run's `Ended` has been read, or
    /// `None` at the end of the output.
    reader: Option<thread::JoinHandle<Option<BufReader<ChildStdout>>>>,
    /// The supervisor: PID 1 of the run's PID namespace, or without
    /// namespaces a process of its own; 0 until the slot has said which.
    root: Arc<AtomicU32>,
}

#[derive(Debug)]
enum Host<'s> {
    Slot(&'s mut Slot),
    /// `bugpack __supervise`, in its own process group.
    Process(Child),
}

impl<'s> Sandbox<'s> {
    /// Starts a sandbox for `plan`, in `slot` where runs have namespaces;
    /// its own stderr goes to `stderr_file`, its log lines to ours, named
    /// `label`.
    pub fn start(
        iso: &Isolation,
        slot: &'s mut Slot,
        plan: &RunPlan,
        stderr_file: &Path,
        label: &str,
    ) -> anyhow::Result<Self> {
        let root = Arc::new(AtomicU32::new(0));
        let (tx, rx) = mpsc::channel();
        let (host, output, slot_pid) = if iso.namespaces {
            let kept = slot.process(iso)?;
            let mut line = serde_json::to_vec(&SlotRequest {
                plan: plan.clone(),
                stderr: stderr_file.to_owned(),
            })?;
            line.push(b'\n');
            let sent = kept
                .input
                .write_all(&line)
                .and_then(|()| kept.input.flush());
            let output = kept.output.take();
            let pid = kept.child.id();
            if let Err(e) = sent {
                slot.stop();
                let why = slot.last_words().unwrap_or_else(|| e.to_string());
                anyhow::bail!("cannot hand the plan to the sandbox: {why}");
            }
            let output = output.context("the job slot's sandbox has no output")?;
            (Host::Slot(slot), output, Some(pid))
        } else {
            let mut child = iso.spawn(stderr_file, &format!("[{label}] the sandbox"))?;
            if let Some(mut stdin) = child.stdin.take() {
                stdin
                    .write_all(&serde_json::to_vec(plan)?)
                    .context("cannot hand the plan to the sandbox")?;
            }
            let output = child.stdout.take().context("the sandbox has no stdout")?;
            root.store(child.id(), Ordering::SeqCst);
            (Host::Process(child), BufReader::new(output), None)
        };
        let label = label.to_owned();
        let run_root = Arc::clone(&root);
        let reader = thread::spawn(move || {
            let mut output = output;
            let ended = supervisor::read_events(&mut output, |e| match e {
                Event::Log { level, message } => {
                    supervisor::print_relayed(&label, level, &message);
                    true
                }
                Event::Root { pid } => {
                    // Only the slot's own child, and only the first word:
                    // this pid is what the engine signals.
                    let child_of_slot = slot_pid.is_some_and(|slot| {
                        procfs::read(i32::try_from(pid).unwrap_or(0))
                            .is_some_and(|p| i64::from(p.ppid) == i64::from(slot))
                    });
                    if child_of_slot {
                        let _ =
                            run_root.compare_exchange(0, pid, Ordering::SeqCst, Ordering::SeqCst);
                    }
                    true
                }
                // The end of this run's events.
                Event::Ended => slot_pid.is_none(),
                other => {
                    let _ = tx.send(other);
                    true
                }
            });
            ended.then_some(output)
        });
        Ok(Self {
            host,
            events: rx,
            reader: Some(reader),
            root,
        })
    }

    fn namespaces(&self) -> bool {
        matches!(self.host, Host::Slot(_))
    }

    /// The next event, waiting at most `wait`. `Err(Disconnected)` once the
    /// run has ended (every process of it gone, under namespaces) or the
    /// sandbox has closed its output.
    pub fn next_event(&self, wait: Duration) -> Result<Event, mpsc::RecvTimeoutError> {
        self.events.recv_timeout(wait)
    }

    /// Why the sandbox ended without a word: the last line of the run's
    /// `stderr_file`, else of the slot's own stderr.
    pub fn last_words(&self, stderr_file: &Path) -> String {
        last_line(&fs::read_to_string(stderr_file).unwrap_or_default())
            .or_else(|| match &self.host {
                Host::Slot(slot) => slot.last_words(),
                Host::Process(_) => None,
            })
            .unwrap_or_else(|| "it ended without a word".to_owned())
    }

    /// The run's processes, as a handle a timing driver can keep.
    pub fn tree(&self) -> super::timing::Tree {
        super::timing::Tree {
            root: self.root.load(Ordering::SeqCst),
        }
    }

    /// The processes of the run (not the sandbox's own), as the host sees them.
    pub fn processes(&self) -> Vec<procfs::Proc> {
        self.tree().processes()
    }

    /// Freezes the supervisor, so that the end of the run step (say, killed
    /// by the SIGABRT that asks runtimes for their stacks) does not end the
    /// namespace before the other processes have finished printing.
    pub fn hold(&self) {
        if let Some(sup) = self.supervisor() {
            let _ = kill(Pid::from_raw(sup), Signal::SIGSTOP);
        }
    }

    /// Sends `signal` to every process of the run.
    pub fn signal_all(&self, signal: Signal) {
        for p in self.processes() {
            let _ = kill(Pid::from_raw(p.pid), signal);
        }
    }

    /// Waits for a sandbox whose run step has ended: the supervisor returns,
    /// and as PID 1 its exit takes the rest of the run with it. Kills it if
    /// it does not end within `limit`.
    pub fn wait_end(&mut self, limit: Duration) {
        if self.namespaces() {
            let deadline = Instant::now() + limit;
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                match self.events.recv_timeout(left) {
                    Ok(_) => {}
                    Err(mpsc::RecvTimeoutError::Disconnected) => {
                        self.finish();
                        return;
                    }
                    Err(mpsc::RecvTimeoutError::Timeout) => break,
                }
            }
        }
        self.kill();
    }

    /// Stops everything in the sandbox and waits until every process of
    /// the run is gone: when this returns, nothing the run started is
    /// still alive (only processes stuck in the kernel past [`GONE_LIMIT`]
    /// can outlast it). Idempotent.
    pub fn kill(&mut self) {
        if self.reader.is_none() {
            return;
        }
        match &mut self.host {
            Host::Slot(_) => self.kill_namespace(),
            Host::Process(child) => kill_tree(child),
        }
        self.finish();
    }

    /// Kills the supervisor, PID 1 of the run's namespace, until the slot
    /// says the run has ended. The kernel finishes PID 1's exit only once
    /// every other process in the namespace is gone, and the slot says
    /// `Ended` only once it has seen the supervisor exit: that word is the
    /// proof that the run is gone. A slot that does not say it in time is
    /// killed, and the run with it.
    fn kill_namespace(&mut self) {
        let deadline = Instant::now() + GONE_LIMIT;
        let mut pause = Backoff::starting_at(Duration::from_micros(200));
        loop {
            if self
                .reader
                .as_ref()
                .is_none_or(thread::JoinHandle::is_finished)
            {
                return;
            }
            // Read again each time: until the slot has said which process
            // it is, there is none to kill, and it may say so any instant.
            if let Some(sup) = self.supervisor() {
                let _ = kill(Pid::from_raw(sup), Signal::SIGKILL);
            }
            if Instant::now() >= deadline {
                break;
            }
            thread::sleep(pause.next());
        }
        if let Host::Slot(slot) = &mut self.host
            && let Some(kept) = &mut slot.kept
        {
            let _ = kept.child.kill();
            let _ = kept.child.wait();
        }
    }

    /// The supervisor in a slot, once the slot has said which process it
    /// is (a supervisor of its own is stopped through its [`Child`]).
    fn supervisor(&self) -> Option<i32> {
        let root = self.root.load(Ordering::SeqCst);
        match self.host {
            Host::Slot(_) if root != 0 => i32::try_from(root).ok(),
            Host::Slot(_) | Host::Process(_) => None,
        }
    }

    /// Joins the reader; a slot whose run did not end with its `Ended`
    /// is stopped, to be started afresh for the next run.
    fn finish(&mut self) {
        let Some(reader) = self.reader.take() else {
            return;
        };
        let output = reader.join().ok().flatten();
        if let Host::Slot(slot) = &mut self.host {
            match (output, &mut slot.kept) {
                (Some(output), Some(kept)) => kept.output = Some(output),
                _ => slot.stop(),
            }
        }
    }
}

/// Without a PID namespace: freeze the supervisor, kill its descendants
/// until none is alive, then kill it. The supervisor is a child subreaper
/// that never exits by itself here, so every orphan of the run, `setsid`
/// escapees included, is among its descendants.
fn kill_tree(child: &mut Child) {
    if matches!(child.try_wait(), Ok(Some(_))) {
        // Stopped by an earlier call; or killed from inside the run
        // (it runs as the same user), whose orphans then went to init,
        // out of our reach: the price of running without namespaces.
        return;
    }
    let sup = child.id();
    if let Ok(raw) = i32::try_from(sup) {
        // A frozen supervisor starts no further step.
        let _ = kill(Pid::from_raw(raw), Signal::SIGSTOP);
    }
    let deadline = Instant::now() + GONE_LIMIT;
    let mut pause = Backoff::starting_at(Duration::from_micros(200));
    loop {
        let children = procfs::children(sup);
        let live: Vec<procfs::Proc> = procfs::descendants(sup)
            .into_iter()
            .filter(|p| !p.is_dead())
            .collect();
        if live.is_empty() {
            // Every live descendant has a live child of the supervisor
            // above it (an exiting process hands its children to the
            // supervisor before it turns zombie). The children read
            // before the scan were all dead during it; if no new one
            // was handed over meanwhile, none is alive now.
            if procfs::children(sup).iter().all(|c| children.contains(c)) {
                break;
            }
            continue;
        }
        if Instant::now() >= deadline {
            break;
        }
        // Freeze first, so that nothing forks between the two passes.
        for p in &live {
            let _ = kill(Pid::from_raw(p.pid), Signal::SIGSTOP);
        }
        for p in &live {
            let _ = kill(Pid::from_raw(p.pid), Signal::SIGKILL);
        }
        thread::sleep(pause.next());
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Waits up to `limit` for `child` to exit.
fn wait_for(child: &mut Child, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    let mut pause = Backoff::starting_at(Duration::from_micros(200));
    while Instant::now() < deadline {
        if matches!(child.try_wait(), Ok(Some(_))) {
            return true;
        }
        thread::sleep(pause.next());
    }
    false
}

impl Drop for Sandbox<'_> {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The namespaces a slot keeps from run to run: a user namespace with our
/// own uid and gid mapped, a mount namespace with an empty `/dev/shm` of
/// its own, and a network namespace (with `lo` up for `--net loopback`)
/// unless the run is on the host's network.
fn enter_slot_namespaces(net: Net) -> io::Result<()> {
    let uid = Uid::effective();
    let gid = Gid::effective();
    let mut flags = CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWNS;
    if net != Net::Host {
        flags |= CloneFlags::CLONE_NEWNET;
    }
    unshare(flags).map_err(|e| io::Error::other(format!("unshare: {e}")))?;
    std::fs::write("/proc/self/setgroups", "deny")?;
    std::fs::write("/proc/self/uid_map", format!("{uid} {uid} 1"))?;
    std::fs::write("/proc/self/gid_map", format!("{gid} {gid} 1"))?;
    tracing::debug!("made a user namespace with uid {uid} and gid {gid} mapped");
    fresh_shm()?;
    if net != Net::Host {
        fresh_network(net)?;
    }
    Ok(())
}

/// Mounts an empty tmpfs on `/dev/shm`, over whatever was there.
fn fresh_shm() -> io::Result<()> {
    use nix::mount::{MsFlags, mount};
    let shm = Path::new(SHM);
    if !shm.is_dir() {
        return Ok(());
    }
    mount(
        Some("tmpfs"),
        shm,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some("mode=1777"),
    )
    .map_err(|e| io::Error::other(format!("cannot mount a fresh /dev/shm: {e}")))
}

/// POSIX shared memory: a run's own, emptied between runs.
const SHM: &str = "/dev/shm";

/// Empties the slot's `/dev/shm` after a run that left something in it,
/// by mounting a fresh tmpfs over it (and detaching the old one, which
/// the kernel frees once nothing holds it: no process of the run does).
fn empty_shm() -> io::Result<()> {
    let left = match fs::read_dir(SHM) {
        Ok(mut entries) => entries.next().is_some(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if left {
        nix::mount::umount2(SHM, nix::mount::MntFlags::MNT_DETACH)
            .map_err(|e| io::Error::other(format!("cannot unmount /dev/shm: {e}")))?;
        fresh_shm()?;
        tracing::debug!("the last run left files in /dev/shm: mounted an empty one");
    }
    Ok(())
}

/// Brings up `lo` in a network namespace just made, for `--net loopback`.
fn fresh_network(net: Net) -> io::Result<()> {
    if net == Net::Loopback {
        loopback_up()?;
        tracing::debug!("made a network namespace with lo, its only interface, up");
    } else {
        tracing::debug!("made a network namespace with no interface up");
    }
    Ok(())
}

/// What every run gets afresh: a PID namespace (for the children of the
/// caller) and an IPC namespace, so that the run's System V objects vanish
/// with it. (A run with a checkout's overlay also gets a mount namespace of
/// its own, from its supervisor; `/dev/shm` is the slot's, emptied between
/// runs.)
fn enter_run_namespaces() -> io::Result<()> {
    unshare(CloneFlags::CLONE_NEWPID | CloneFlags::CLONE_NEWIPC)
        .map_err(|e| io::Error::other(format!("unshare: {e}")))
}

/// A mount namespace of the run's own, for the overlay of its checkout.
fn enter_overlay_namespace() -> io::Result<()> {
    unshare(CloneFlags::CLONE_NEWNS).map_err(|e| io::Error::other(format!("unshare: {e}")))
}

/// How many sockets the network namespace of this process holds, from
/// its `/proc/self/net/sockstat` and `sockstat6`: those in use (TCP, UDP,
/// raw and Unix alike), orphaned, and in `TIME_WAIT`. `None` if that cannot
/// be read. (Listing `/proc/self/net/tcp` instead walks the kernel's whole
/// connection table, shared by every namespace: milliseconds a read.)
fn sockets_left() -> Option<u64> {
    let mut count = 0;
    for table in ["sockstat", "sockstat6"] {
        let text = match read_small(&format!("/proc/self/net/{table}")) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound && table == "sockstat6" => continue,
            Err(_) => return None,
        };
        count += count_in_sockstat(&text)?;
    }
    Some(count)
}

/// A small `/proc` file, read with one buffer (`read_to_string` reads a
/// file of unknown size in reads of 32 bytes and up).
fn read_small(path: &str) -> io::Result<String> {
    let mut text = String::with_capacity(4096);
    File::open(path)?.read_to_string(&mut text)?;
    Ok(text)
}

/// The sum of the per-namespace counts in a `sockstat` table (`used`,
/// `inuse`, `orphan`, `tw`); `alloc` and `mem` are the whole machine's.
fn count_in_sockstat(text: &str) -> Option<u64> {
    let mut count = 0;
    for line in text.lines() {
        let (_, fields) = line.split_once(':')?;
        let words: Vec<&str> = fields.split_whitespace().collect();
        for pair in words.chunks(2) {
            if let [key, value] = pair
                && matches!(*key, "used" | "inuse" | "orphan" | "tw")
            {
                count += value.parse::<u64>().ok()?;
            }
        }
    }
    Some(count)
}

/// The hidden `bugpack __sandbox --probe`: make the namespaces a run gets,
/// as a slot and its supervisor make them, bring `lo` up, and exit; with
/// `overlay`, also mount an overlay of `DIR/lower` on `DIR/merged` and
/// check that a write through it stays above.
pub fn probe(net: Net, overlay: Option<&Path>) -> io::Result<i32> {
    enter_slot_namespaces(net)?;
    enter_run_namespaces()?;
    if let Some(dir) = overlay {
        enter_overlay_namespace()?;
        let plan = supervisor::OverlayPlan {
            lower: dir.join("lower"),
            upper: dir.join("upper"),
            scratch: dir.join("work"),
        };
        let merged = dir.join("merged");
        plan.mount(&merged)?;
        std::fs::write(merged.join("lower.txt"), "written through the overlay\n")?;
        if std::fs::read(dir.join("lower/lower.txt"))? != b"below\n" {
            return Err(io::Error::other(
                "the overlay wrote through to its lower directory",
            ));
        }
    }
    Ok(0)
}

/// The hidden `bugpack __sandbox`: a job slot. It makes the namespaces it
/// keeps, then reads one [`SlotRequest`] per line on stdin and runs each
/// under a supervisor of its own, PID 1 of fresh PID and IPC namespaces,
/// saying `Ended` on stdout once that supervisor has exited (and so every
/// process of the run); it exits at the end of its input.
///
/// Each supervisor is forked, with its namespaces, before its plan
/// arrives: while the engine prepares the next run, not after. It is
/// held, unreaped, until the next one has exited, so that the pid the
/// engine was told stays this run's until the engine has heard it ended.
pub fn slot(net: Net) -> io::Result<i32> {
    use nix::sys::wait::{Id, WaitPidFlag, waitid, waitpid};
    let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGKILL);
    enter_slot_namespaces(net)?;
    let mut input = io::stdin().lock();
    let mut previous: Option<Pid> = None;
    loop {
        if net != Net::Host {
            match sockets_left() {
                Some(0) => {}
                left => {
                    unshare(CloneFlags::CLONE_NEWNET)
                        .map_err(|e| io::Error::other(format!("unshare: {e}")))?;
                    fresh_network(net)?;
                    tracing::debug!(
                        "the last run left {} socket(s) in the network namespace: replaced it",
                        left.map_or_else(|| "unknown".to_owned(), |n| n.to_string())
                    );
                }
            }
        }
        empty_shm()?;
        let (plan_out, plan_in) =
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(io::Error::from)?;
        let child = match fork_supervisor() {
            Ok(None) => {
                drop(plan_in);
                std::process::exit(supervise_planned(File::from(plan_out)))
            }
            Ok(Some(child)) => {
                // Said before the plan, it is the next run's: this
                // supervisor is forked only after the last run's `Ended`.
                supervisor::send(&Event::Root {
                    pid: child.as_raw().unsigned_abs(),
                })?;
                Ok(child)
            }
            Err(e) => Err(format!("cannot make the run's PID namespace: {e}")),
        };
        drop(plan_out);
        let mut line = Vec::new();
        let read = io::BufRead::read_until(
            &mut (&mut input).take(supervisor::MAX_PLAN),
            b'\n',
            &mut line,
        );
        let run = matches!(read, Ok(n) if n > 0);
        let mut plan_in = File::from(plan_in);
        if run && child.is_ok() {
            // A supervisor that cannot take it has died, which the engine
            // hears as a run without events.
            let _ = plan_in.write_all(&line);
        }
        // Closed, the pipe ends the plan; with nothing in it, the
        // supervisor exits without a run.
        drop(plan_in);
        match &child {
            Ok(child) => {
                loop {
                    match waitid(Id::Pid(*child), WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT) {
                        Err(nix::errno::Errno::EINTR) => {}
                        Ok(_) => break,
                        Err(e) => return Err(io::Error::from(e)),
                    }
                }
                if let Some(pid) = previous.replace(*child) {
                    let _ = waitpid(pid, None);
                }
            }
            Err(why) if run => {
                refuse(why.clone());
            }
            Err(_) => {}
        }
        if !run {
            if let Ok(child) = child {
                let _ = waitpid(child, None);
            }
            return read.map(|_| 0);
        }
        supervisor::send(&Event::Ended)?;
    }
}

/// Forks the next run's supervisor straight into new PID and IPC
/// namespaces, where it is PID 1: `fork` with namespace flags, which the
/// C library has no call for. Returns `None` in the child, as `fork` does.
#[allow(unsafe_code)]
fn fork_supervisor() -> io::Result<Option<Pid>> {
    use nix::libc;
    let flags = libc::CLONE_NEWPID | libc::CLONE_NEWIPC | libc::SIGCHLD;
    // SAFETY: with no stack given, `clone` forks: the child goes on with a
    // copy of this stack. The slot is single-threaded, so the child holds
    // no lock another thread took, and what glibc's `fork` adds (fork
    // handlers, the thread list) has nothing to do for it; `raise` and
    // `gettid` ask the kernel for the thread's id. The child never comes
    // back to the slot's loop: it leaves by `exit`.
    let pid = unsafe { libc::syscall(libc::SYS_clone, libc::c_long::from(flags), 0, 0, 0, 0) };
    match pid {
        -1 => Err(io::Error::last_os_error()),
        0 => Ok(None),
        pid => i32::try_from(pid)
            .map(|pid| Some(Pid::from_raw(pid)))
            .map_err(io::Error::other),
    }
}

/// A slot's supervisor, PID 1 of its run's namespaces: it reads the run's
/// [`SlotRequest`] from `plan`, to its end (an empty one means there is no
/// run), sends its stderr to the run's file and supervises the run.
fn supervise_planned(plan: File) -> i32 {
    let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGKILL);
    // Room for a usual plan in one read.
    let mut line = Vec::with_capacity(64 << 10);
    if let Err(e) = plan.take(supervisor::MAX_PLAN).read_to_end(&mut line) {
        return refuse(format!("cannot read the plan: {e}"));
    }
    if line.is_empty() {
        return 0;
    }
    let request: SlotRequest = match serde_json::from_slice(&line) {
        Ok(request) => request,
        Err(e) => return refuse(format!("unreadable plan: {e}")),
    };
    match File::create(&request.stderr) {
        Ok(file) => {
            if let Err(e) = nix::unistd::dup2_stderr(&file) {
                return refuse(format!(
                    "cannot send stderr to {}: {e}",
                    request.stderr.display()
                ));
            }
        }
        Err(e) => return refuse(format!("cannot create {}: {e}", request.stderr.display())),
    }
    match File::open("/dev/null") {
        Ok(null) => {
            let _ = nix::unistd::dup2_stdin(&null);
        }
        Err(e) => return refuse(format!("cannot open /dev/null: {e}")),
    }
    if request.plan.overlay.is_some()
        && let Err(e) = enter_overlay_namespace()
    {
        return refuse(e.to_string());
    }
    match supervisor::main_with(&request.plan) {
        Ok(()) => 0,
        Err(e) => {
            let _ = writeln!(io::stderr(), "supervisor: {e}");
            1
        }
    }
}

/// Why a run cannot start, on stderr and to the engine, which makes it the
/// run's error; returns the exit code that says so.
fn refuse(why: String) -> i32 {
    let _ = writeln!(io::stderr(), "sandbox: {why}");
    let _ = supervisor::send(&Event::Error { why });
    1
}

/// `ip link set lo up`, without needing `ip`.
#[allow(unsafe_code)]
fn loopback_up() -> io::Result<()> {
    use nix::libc;
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, socket};
    use std::os::fd::AsRawFd as _;
    let sock = socket(
        AddressFamily::Inet,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(io::Error::from)?;
    let fd = sock.as_raw_fd();
    // SAFETY: `ifreq` is plain data, zeroed, with a NUL-terminated name; the
    // two ioctls read and write only that struct, through a live socket.
    unsafe {
        let mut req: libc::ifreq = std::mem::zeroed();
        for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
            *dst = libc::c_char::try_from(*src).unwrap_or(0);
        }
        if libc::ioctl(fd, libc::SIOCGIFFLAGS, &mut req) < 0 {
            return Err(io::Error::last_os_error());
        }
        req.ifr_ifru.ifru_flags |= libc::c_short::try_from(libc::IFF_UP).unwrap_or(1);
        if libc::ioctl(fd, libc::SIOCSIFFLAGS, &req) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}
