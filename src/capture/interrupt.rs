//! Stopping a capture on Ctrl-C or SIGTERM, at any point, without leaving
//! anything behind.
//!
//! The capture registers what an interrupt must undo: the process tree of a
//! command it is running, and the temporary files and directories it has
//! made. A signal watcher (in the binary) calls [`Interrupt::abort`], which
//! stops the trees and removes the paths there and then, even while the
//! capture is blocked in a read or a network call; the watcher then exits.
//! Putting the bundle in place happens inside [`Interrupt::commit`]: an
//! interrupt either comes before it (nothing is written) or after it (the
//! capture is complete and finishes). While an editor runs on the terminal
//! an interrupt is only noted ([`Interrupt::defer`]): the editor owns Ctrl-C.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use super::tree::Tree;

/// How long an interrupted run gets between SIGTERM and SIGKILL.
const GRACE: Duration = Duration::from_millis(500);

/// The capture was interrupted: exit 4, nothing written.
#[derive(Debug, thiserror::Error)]
#[error("interrupted; nothing written")]
pub struct Interrupted;

/// What an interrupt must undo, shared between a capture and its watcher.
#[derive(Debug, Default)]
pub struct Interrupt {
    flag: AtomicBool,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    trees: Vec<Tree>,
    paths: Vec<PathBuf>,
    committed: bool,
    aborted: bool,
    deferred: bool,
}

impl Interrupt {
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether an interrupt arrived.
    pub fn is_set(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }

    /// `Err(Interrupted)` once an interrupt arrived.
    pub fn check(&self) -> Result<(), Interrupted> {
        if self.is_set() {
            Err(Interrupted)
        } else {
            Ok(())
        }
    }

    /// Notes an interrupt without acting on it (a test, or a watcher that
    /// leaves the work to the capture's own checks).
    pub fn set(&self) {
        self.flag.store(true, Ordering::SeqCst);
    }

    /// Called by the signal watcher: unless the bundle is already in place
    /// (or an editor has the terminal), stops every registered process tree
    /// and removes every registered path. Returns whether the capture is
    /// now aborted, in which case the caller says so and exits.
    pub fn abort(&self) -> bool {
        self.set();
        let mut state = self.lock();
        if state.committed || state.deferred {
            return false;
        }
        state.aborted = true;
        for tree in &state.trees {
            tree.stop(GRACE);
        }
        for path in &state.paths {
            remove(path);
        }
        true
    }

    /// Whether an interrupt has been acted on: then the watcher that called
    /// [`Interrupt::abort`] reports it and ends the process, and nobody
    /// else should say anything. Waits while the abort is cleaning up.
    pub fn aborted(&self) -> bool {
        self.lock().aborted
    }

    /// Makes something an interrupt must remove (`make` creates it and
    /// returns its path's owner), registering it in the same step, so
    /// that no interrupt can fall between the two.
    pub fn create<T>(
        &self,
        make: impl FnOnce() -> anyhow::Result<T>,
        path: impl Fn(&T) -> PathBuf,
    ) -> anyhow::Result<T> {
        let mut state = self.live()?;
        let made = make()?;
        state.paths.push(path(&made));
        Ok(made)
    }

    /// Starts a process tree (`spawn` returns it), registered in the same
    /// step; [`Interrupt::finished`] takes it off the list.
    pub fn spawn<T>(&self, spawn: impl FnOnce() -> anyhow::Result<(T, Tree)>) -> anyhow::Result<T> {
        let mut state = self.live()?;
        let (value, tree) = spawn()?;
        state.trees.push(tree);
        Ok(value)
    }

    /// The tree with this root has been stopped or has ended.
    pub fn finished(&self, tree: &Tree) {
        self.lock().trees.retain(|t| t != tree);
    }

    /// Runs `put_in_place` unless an interrupt came first; once it has
    /// succeeded, interrupts change nothing.
    pub fn commit<T>(&self, put_in_place: impl FnOnce() -> anyhow::Result<T>) -> anyhow::Result<T> {
        let mut state = self.live()?;
        let done = put_in_place()?;
        state.committed = true;
        Ok(done)
    }

    /// While `f` runs (an editor on the terminal), an interrupt is only
    /// noted; afterwards the capture stops if one came.
    pub fn defer<T>(&self, f: impl FnOnce() -> anyhow::Result<T>) -> anyhow::Result<T> {
        self.lock().deferred = true;
        let result = f();
        self.lock().deferred = false;
        let value = result?;
        self.check()?;
        Ok(value)
    }

    /// The state, locked, unless an interrupt came first: what `create`,
    /// `spawn` and `commit` do holds the lock, so no interrupt falls between
    /// this check and their registering what they did. (`abort` sets the
    /// flag before `aborted`, so the flag alone tells.)
    fn live(&self) -> Result<MutexGuard<'_, State>, Interrupted> {
        let state = self.lock();
        self.check()?;
        Ok(state)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain data behind: go on.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Removes a file or a directory tree, retrying briefly while a writer
/// still adds to it.
fn remove(path: &Path) {
    for _ in 0..20 {
        let result = if path.is_dir() {
            std::fs::remove_dir_all(path)
        } else {
            std::fs::remove_file(path)
        };
        match result {
            Ok(()) => return,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
            Err(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_interrupt_removes_what_was_registered_and_blocks_the_commit() {
        let dir = tempfile::tempdir().unwrap();
        let i = Interrupt::new();
        let made = i
            .create(
                || Ok(tempfile::tempdir_in(dir.path())?.keep()),
                Clone::clone,
            )
            .unwrap();
        std::fs::write(made.join("partial"), "x").unwrap();
        assert!(i.abort());
        assert!(!made.exists());
        assert!(i.commit(|| Ok(())).is_err());
        assert!(i.create(|| Ok(()), |()| PathBuf::new()).is_err());
    }

    #[test]
    fn after_the_commit_an_interrupt_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let i = Interrupt::new();
        let kept = dir.path().join("kept");
        std::fs::write(&kept, "x").unwrap();
        i.create(|| Ok(kept.clone()), Clone::clone).unwrap();
        i.commit(|| Ok(())).unwrap();
        assert!(!i.abort());
        assert!(kept.exists());
    }

    #[test]
    fn a_deferred_interrupt_stops_the_capture_afterwards() {
        let i = Interrupt::new();
        let result = i.defer(|| {
            assert!(!i.abort(), "the editor owns Ctrl-C");
            Ok(())
        });
        assert!(result.is_err());
    }
}
