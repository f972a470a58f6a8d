//! The sandbox a run lives in, from both sides.
//!
//! Inside ([`enter`], the hidden `bugpack __sandbox` command): unshare user,
//! PID and (unless `--net host`) network namespaces, map our own uid and gid
//! into the new user namespace, bring `lo` up for `--net loopback`, and start
//! the supervisor, which becomes PID 1 of the new PID namespace. When PID 1
//! dies the kernel kills every process left in the namespace, daemons and
//! `setsid` escapees included: that is how a run leaves nothing behind.
//!
//! Outside ([`Sandbox`]): start that process (as `nobody` when bugpack runs
//! as root, so a stranger's code never runs with root's file permissions),
//! hand it the plan, read its events, find its processes, and kill it. Where
//! namespaces cannot be made, the supervisor runs in its own process group as
//! a child subreaper instead, and [`Sandbox::kill`] stops its descendants.
//!
//! The sandbox gets bugpack's own verbosity (`-v`, `-q`) on its command line;
//! its log lines come back as events on its output and are printed here,
//! whole, with the run's name, by the thread that reads them: every line
//! is read until the sandbox closes its output, so none is lost.

use std::fs::File;
use std::io::{self, Write as _};
use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use nix::sched::{CloneFlags, unshare};
use nix::sys::signal::{Signal, kill};
use nix::unistd::{Gid, Pid, Uid};

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

/// A started sandbox, seen from outside.
#[derive(Debug)]
pub struct Sandbox {
    child: Child,
    namespaces: bool,
    events: mpsc::Receiver<Event>,
    reader: Option<thread::JoinHandle<()>>,
}

impl Sandbox {
    /// Starts a sandbox for `plan`; its own stderr goes to `stderr_file`,
    /// its log lines to ours, named `label`.
    pub fn start(
        iso: &Isolation,
        plan: &RunPlan,
        stderr_file: &Path,
        label: &str,
    ) -> anyhow::Result<Self> {
        let stderr = File::create(stderr_file)
            .with_context(|| format!("cannot create {}", stderr_file.display()))?;
        let mut cmd = iso.command(false);
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr);
        let mut child = cmd.spawn().context("cannot start the sandbox")?;
        tracing::debug!(
            "[{label}] started the sandbox (pid {}): {}",
            child.id(),
            std::iter::once(cmd.get_program())
                .chain(cmd.get_args())
                .map(|a| a.to_string_lossy())
                .collect::<Vec<_>>()
                .join(" ")
        );
        let text = serde_json::to_vec(plan)?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(&text)
                .context("cannot hand the plan to the sandbox")?;
        }
        let stdout = child.stdout.take().context("the sandbox has no stdout")?;
        let (tx, rx) = mpsc::channel();
        let label = label.to_owned();
        let reader = thread::spawn(move || {
            supervisor::read_events(stdout, |e| match e {
                Event::Log { level, message } => {
                    supervisor::print_relayed(&label, level, &message);
                }
                other => {
                    let _ = tx.send(other);
                }
            });
        });
        Ok(Self {
            child,
            namespaces: iso.namespaces,
            events: rx,
            reader: Some(reader),
        })
    }

    /// The next event, waiting at most `wait`. `Err(Disconnected)` once the
    /// sandbox has closed its output (it has ended).
    pub fn next_event(&self, wait: Duration) -> Result<Event, mpsc::RecvTimeoutError> {
        self.events.recv_timeout(wait)
    }

    /// The run's processes, as a handle a timing driver can keep.
    pub fn tree(&self) -> super::timing::Tree {
        super::timing::Tree {
            root: self.child.id(),
            namespaces: self.namespaces,
        }
    }

    /// The processes of the run (not the sandbox's own), as the host sees them.
    pub fn processes(&self) -> Vec<procfs::Proc> {
        let pid = self.child.id();
        let all = procfs::descendants(pid);
        if !self.namespaces {
            // The child is the supervisor itself; below it is the run.
            return all;
        }
        // Below `__sandbox` is the supervisor (PID 1 inside), then the run.
        all.into_iter()
            .filter(|p| i64::from(p.ppid) != i64::from(pid))
            .collect()
    }

    /// Freezes the supervisor, so that the end of the run step (say, killed
    /// by the SIGABRT that asks runtimes for their stacks) does not end the
    /// namespace before the other processes have finished printing.
    pub fn hold(&self) {
        if !self.namespaces {
            return;
        }
        if let Some(sup) = self.supervisor() {
            let _ = kill(Pid::from_raw(sup.pid), Signal::SIGSTOP);
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
        if self.namespaces && wait_for(&mut self.child, limit) {
            self.finish();
        } else {
            self.kill();
        }
    }

    /// Stops everything in the sandbox and waits until every process of
    /// the run is gone: when this returns, nothing the run started is
    /// still alive (only processes stuck in the kernel past [`GONE_LIMIT`]
    /// can outlast it). Idempotent.
    pub fn kill(&mut self) {
        if self.namespaces {
            self.kill_namespace();
        } else {
            self.kill_tree();
        }
        self.finish();
    }

    /// Kills the supervisor, PID 1 of the run's namespace, until
    /// `__sandbox` has exited. The kernel finishes PID 1's exit only once
    /// every other process in the namespace is gone, and `__sandbox` exits
    /// only once it has reaped the supervisor (or before it ever forked
    /// one), so its exit is the proof that the run is gone. `__sandbox`
    /// itself is never killed while it may still have a supervisor: that
    /// would leave the namespace dying on its own after we return.
    fn kill_namespace(&mut self) {
        let deadline = Instant::now() + GONE_LIMIT;
        let mut pause = Backoff::starting_at(Duration::from_micros(200));
        loop {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            // Found again each time: before `__sandbox` has forked there is
            // no supervisor yet, and one may appear in the next instant.
            if let Some(sup) = self.supervisor() {
                let _ = kill(Pid::from_raw(sup.pid), Signal::SIGKILL);
            }
            if Instant::now() >= deadline {
                break;
            }
            thread::sleep(pause.next());
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Without a PID namespace: freeze the supervisor, kill its
    /// descendants until none is alive, then kill it. The supervisor is a
    /// child subreaper that never exits by itself here, so every orphan of
    /// the run, `setsid` escapees included, is among its descendants.
    fn kill_tree(&mut self) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            // Stopped by an earlier call; or killed from inside the run
            // (it runs as the same user), whose orphans then went to init,
            // out of our reach: the price of running without namespaces.
            return;
        }
        let sup = self.child.id();
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
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The supervisor, `__sandbox`'s only child, under namespaces.
    fn supervisor(&self) -> Option<procfs::Proc> {
        let pid = self.child.id();
        procfs::descendants(pid)
            .into_iter()
            .find(|p| i64::from(p.ppid) == i64::from(pid))
    }

    fn finish(&mut self) {
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }
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

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The hidden `bugpack __sandbox` command: make the namespaces, then run
/// the supervisor as their first process. With `probe`, stop after the
/// namespaces are made.
pub fn enter(net: Net, probe: bool, overlay: Option<&Path>) -> io::Result<i32> {
    let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGKILL);
    let uid = Uid::effective();
    let gid = Gid::effective();
    // A mount namespace of its own, so that a checkout's overlay is the
    // run's alone and vanishes with it.
    let mut flags = CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWPID | CloneFlags::CLONE_NEWNS;
    if net != Net::Host {
        flags |= CloneFlags::CLONE_NEWNET;
    }
    unshare(flags).map_err(|e| io::Error::other(format!("unshare: {e}")))?;
    tracing::debug!(
        "made user and PID namespaces{}",
        if net == Net::Host {
            ", on the host's network"
        } else {
            " and a network namespace"
        }
    );
    std::fs::write("/proc/self/setgroups", "deny")?;
    std::fs::write("/proc/self/uid_map", format!("{uid} {uid} 1"))?;
    std::fs::write("/proc/self/gid_map", format!("{gid} {gid} 1"))?;
    tracing::debug!("mapped uid {uid} and gid {gid} into the user namespace");
    if net == Net::Loopback {
        loopback_up()?;
        tracing::debug!("brought up lo, the network's only interface");
    }
    if probe {
        if let Some(dir) = overlay {
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
        return Ok(0);
    }
    // The supervisor must be a child, to be PID 1 of the new namespace. This
    // process is single-threaded here, so it forks instead of exec'ing the
    // binary a second time.
    // SAFETY: no other thread exists, so the child inherits no held locks.
    // Both sides return from here to `main`, which exits with the code.
    #[allow(unsafe_code)]
    match unsafe { nix::unistd::fork() }.map_err(io::Error::from)? {
        nix::unistd::ForkResult::Child => match supervisor::main() {
            Ok(()) => Ok(0),
            Err(e) => {
                let _ = writeln!(io::stderr(), "supervisor: {e}");
                Ok(1)
            }
        },
        nix::unistd::ForkResult::Parent { child } => loop {
            use nix::sys::wait::{WaitStatus, waitpid};
            match waitpid(child, None) {
                Ok(WaitStatus::Exited(_, code)) => return Ok(code),
                Ok(WaitStatus::Signaled(..)) => return Ok(1),
                Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                Err(e) => return Err(io::Error::from(e)),
            }
        },
    }
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
