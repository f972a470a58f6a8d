//! Each run's directory: its layout, and the keeper that makes the next
//! one and removes finished ones off the run's critical path.
//!
//! On the machine the benchmarks ran on, making a no-op run's directory
//! took about a tenth of the run and removing it longer than the run
//! itself. A job's [`Keeper`] therefore makes the next run's tree (the
//! scenario's files copied, handed to the sandbox user) while the current
//! run runs, under a spare name renamed to the run's when it starts. It
//! never leaves a directory behind: what it holds when dropped is removed.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread;

use anyhow::Context as _;

use super::Files;
use super::supervisor::OverlayPlan;

/// A run's directories.
#[derive(Debug)]
pub(super) struct RunDirs {
    pub(super) root: PathBuf,
    pub(super) work: PathBuf,
    pub(super) home: PathBuf,
    pub(super) tmp: PathBuf,
    pub(super) logs: PathBuf,
    /// The overlay the sandbox mounts on `work`, in a checkout.
    pub(super) overlay: Option<OverlayPlan>,
}

impl RunDirs {
    /// Where a run in `root` has its directories; nothing is made.
    fn at(root: &Path, files: &Files) -> Self {
        Self {
            root: root.to_path_buf(),
            work: root.join("work"),
            home: root.join("home"),
            tmp: root.join("tmp"),
            logs: root.join("logs"),
            // The sandbox mounts the checkout, read-only below, on `work`;
            // what the run writes lands in `upper`.
            overlay: match files {
                Files::Checkout {
                    tree,
                    overlay: true,
                    ..
                } => Some(OverlayPlan {
                    lower: tree.clone(),
                    upper: root.join("upper"),
                    scratch: root.join("overlay-work"),
                }),
                _ => None,
            },
        }
    }

    /// Makes a run's directories in `root`, with its files, handed to
    /// `run_as` when runs take another user.
    fn make(root: &Path, files: &Files, run_as: Option<(u32, u32)>) -> anyhow::Result<Self> {
        let dirs = Self::at(root, files);
        for d in [&dirs.root, &dirs.home, &dirs.tmp, &dirs.logs] {
            fs::create_dir_all(d).with_context(|| format!("cannot create {}", d.display()))?;
        }
        match (files, &dirs.overlay) {
            (Files::Scenario(files), _) => copy_tree(files, &dirs.work, false)?,
            (Files::Checkout { .. }, Some(overlay)) => {
                for d in [&dirs.work, &overlay.upper, &overlay.scratch] {
                    fs::create_dir_all(d)
                        .with_context(|| format!("cannot create {}", d.display()))?;
                }
            }
            (Files::Checkout { tree, .. }, None) => copy_tree(tree, &dirs.work, true)?,
        }
        // Every run writes these: made ahead with the rest, their inodes
        // are not allocated on the run's critical path.
        for name in PRECREATED_LOGS {
            let path = dirs.logs.join(name);
            fs::File::create(&path).with_context(|| format!("cannot create {}", path.display()))?;
        }
        if let Some((uid, gid)) = run_as {
            chown_tree(root, uid, gid)?;
        }
        Ok(dirs)
    }
}

/// The files in `logs` every run writes: the run step's output and the
/// sandbox's own stderr.
const PRECREATED_LOGS: [&str; 3] = ["run.out", "run.err", "sandbox.err"];

/// What a job's keeper thread is asked to do, in order.
enum Order {
    /// Make a run's directories under this name, to hand out later.
    Spare(PathBuf),
    /// Remove a finished run's directory.
    Remove(PathBuf),
}

/// A job's run directories, made one ahead and removed behind, on a thread
/// of the job's own.
pub(super) struct Keeper {
    orders: Option<mpsc::Sender<Order>>,
    /// Spares made, each with whether making it succeeded.
    spares: mpsc::Receiver<(PathBuf, bool)>,
    thread: Option<thread::JoinHandle<()>>,
    /// Where spares are made: the runs' root, and the job's number.
    root: PathBuf,
    job: usize,
    made: u64,
    /// A spare has been ordered and not yet taken.
    ordered: bool,
    files: Files,
    run_as: Option<(u32, u32)>,
}

impl std::fmt::Debug for Keeper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keeper")
            .field("root", &self.root)
            .field("job", &self.job)
            .finish_non_exhaustive()
    }
}

impl Keeper {
    /// A keeper for job `job`'s runs in `root`, which starts making the
    /// first run's directories at once.
    pub(super) fn start(
        root: &Path,
        job: usize,
        files: &Files,
        run_as: Option<(u32, u32)>,
    ) -> Self {
        let (orders, incoming) = mpsc::channel::<Order>();
        let (made, spares) = mpsc::channel();
        let thread_files = files.clone();
        let thread = thread::spawn(move || {
            for order in incoming {
                match order {
                    Order::Spare(dir) => {
                        let made_ok = RunDirs::make(&dir, &thread_files, run_as).is_ok();
                        if let Err(mpsc::SendError((dir, _))) = made.send((dir, made_ok)) {
                            let _ = fs::remove_dir_all(&dir);
                        }
                    }
                    Order::Remove(dir) => {
                        let _ = fs::remove_dir_all(&dir);
                    }
                }
            }
        });
        let mut keeper = Self {
            orders: Some(orders),
            spares,
            thread: Some(thread),
            root: root.to_path_buf(),
            job,
            made: 0,
            ordered: false,
            files: files.clone(),
            run_as,
        };
        keeper.order_spare();
        keeper
    }

    fn order_spare(&mut self) {
        self.made += 1;
        let dir = self
            .root
            .join(format!("job{}-spare{}", self.job, self.made));
        self.ordered = self
            .orders
            .as_ref()
            .is_some_and(|o| o.send(Order::Spare(dir)).is_ok());
    }

    /// A run's directories at `dir`: the spare made ahead, renamed, else
    /// made now (which says what failed, when making the spare did).
    /// Orders the next spare.
    pub(super) fn take(&mut self, dir: &Path) -> anyhow::Result<RunDirs> {
        let spare = if self.ordered {
            self.spares.recv().ok()
        } else {
            None
        };
        self.order_spare();
        if let Some((spare, made)) = spare {
            if made && fs::rename(&spare, dir).is_ok() {
                return Ok(RunDirs::at(dir, &self.files));
            }
            let _ = fs::remove_dir_all(&spare);
        }
        RunDirs::make(dir, &self.files, self.run_as)
    }

    /// Removes a finished run's directory, soon.
    pub(super) fn remove(&self, dir: PathBuf) {
        let unsent = match &self.orders {
            Some(orders) => orders.send(Order::Remove(dir)).err().map(|e| match e.0 {
                Order::Remove(dir) | Order::Spare(dir) => dir,
            }),
            None => Some(dir),
        };
        if let Some(dir) = unsent {
            let _ = fs::remove_dir_all(&dir);
        }
    }
}

impl Drop for Keeper {
    /// Waits until every directory handed over is removed, then removes
    /// the spare not taken.
    fn drop(&mut self) {
        drop(self.orders.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        for (spare, _) in self.spares.try_iter() {
            let _ = fs::remove_dir_all(&spare);
        }
    }
}

/// Copies a tree's directories and regular files, with their modes. A
/// checkout's symlinks (`symlinks`) are copied as symlinks; a scenario's
/// are left out, never followed out of it.
fn copy_tree(from: &Path, to: &Path, symlinks: bool) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    fs::create_dir_all(to).with_context(|| format!("cannot create {}", to.display()))?;
    for entry in fs::read_dir(from).with_context(|| format!("cannot read {}", from.display()))? {
        let entry = entry?;
        let kind = entry.file_type()?;
        let target = to.join(entry.file_name());
        if kind.is_dir() {
            copy_tree(&entry.path(), &target, symlinks)?;
        } else if kind.is_symlink() {
            if symlinks {
                let link = fs::read_link(entry.path())?;
                std::os::unix::fs::symlink(&link, &target)
                    .with_context(|| format!("cannot create {}", target.display()))?;
            }
        } else if kind.is_file() {
            fs::copy(entry.path(), &target)
                .with_context(|| format!("cannot copy {}", entry.path().display()))?;
            let mode = entry.metadata()?.permissions().mode();
            fs::set_permissions(&target, fs::Permissions::from_mode(mode))?;
        }
    }
    Ok(())
}

/// Hands `path` and everything below it to `uid:gid` (symlinks themselves, not their targets).
pub(crate) fn chown_tree(path: &Path, uid: u32, gid: u32) -> anyhow::Result<()> {
    std::os::unix::fs::lchown(path, Some(uid), Some(gid))
        .with_context(|| format!("cannot hand {} to the sandbox user", path.display()))?;
    if fs::symlink_metadata(path)?.is_dir() {
        for entry in fs::read_dir(path)? {
            chown_tree(&entry?.path(), uid, gid)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario(dir: &Path) -> Files {
        let files = dir.join("scenario");
        fs::create_dir_all(files.join("sub")).unwrap();
        fs::write(files.join("sub/data.txt"), "data\n").unwrap();
        Files::Scenario(files)
    }

    #[test]
    fn a_run_gets_the_spare_made_ahead_under_its_own_name_and_nothing_is_left() {
        let tmp = tempfile::tempdir().unwrap();
        let runs = tmp.path().join("runs");
        fs::create_dir(&runs).unwrap();
        let files = scenario(tmp.path());
        let mut keeper = Keeper::start(&runs, 0, &files, None);
        let first = keeper.take(&runs.join("cell0-run0")).unwrap();
        assert_eq!(
            fs::read_to_string(first.work.join("sub/data.txt")).unwrap(),
            "data\n"
        );
        for d in [&first.home, &first.tmp, &first.logs] {
            assert!(d.is_dir(), "{} is missing", d.display());
        }
        // The next spare is being made; a second run gets it renamed.
        let second = keeper.take(&runs.join("cell0-run1")).unwrap();
        assert!(second.work.join("sub/data.txt").is_file());
        keeper.remove(first.root.clone());
        drop(keeper);
        let left: Vec<_> = fs::read_dir(&runs)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, ["cell0-run1"], "only the run not removed is left");
    }

    #[test]
    fn a_spare_that_cannot_be_made_leaves_the_run_to_say_why() {
        let tmp = tempfile::tempdir().unwrap();
        let runs = tmp.path().join("runs");
        fs::create_dir(&runs).unwrap();
        let files = Files::Scenario(tmp.path().join("no such scenario"));
        let mut keeper = Keeper::start(&runs, 0, &files, None);
        let err = keeper.take(&runs.join("cell0-run0")).unwrap_err();
        assert!(
            format!("{err:#}").contains("no such scenario"),
            "the error names what is missing: {err:#}"
        );
        drop(keeper);
    }
}
