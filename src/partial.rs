//! bugpack's private working directories, and the removal of those that
//! a killed bugpack left behind.
//!
//! Every command that writes stages its work in directories it removes
//! when it ends or is interrupted: the bundle writer beside its output
//! (capture, sign), capture's staging, replay's runs and extracted bundle in
//! TMPDIR. SIGKILL, an OOM kill or a power cut give it no chance: the
//! directory stays. So each one is named for what it is (a prefix plus
//! random characters, e.g. `.bug.zip.bugpack-partial-Xa9f2Q` beside the
//! output) and locked with `flock` by its process for as long as that
//! process lives; the kernel drops the lock however the process ends, and a
//! recycled process id cannot fake it. The next command that uses the same
//! prefix removes every such directory whose lock it can take ([`sweep`]).
//! It never touches a name without the prefix, a symlink, a directory
//! another user owns, or one whose lock is held, and never follows a
//! symlink inside the directories it removes.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

use tempfile::TempDir;

/// The prefix of a capture's staging directory in TMPDIR.
pub const STAGING_PREFIX: &str = "bugpack-capture-partial-";

/// The prefix of the directory in TMPDIR that holds a replay's runs (the
/// scenario's copies and whatever its processes wrote).
pub const RUNS_PREFIX: &str = "bugpack-replay-partial-";

/// The prefix of the directory in TMPDIR `diff --here` stages configs in.
pub const DIFF_PREFIX: &str = "bugpack-diff-partial-";

/// The prefix of a directory in TMPDIR a bundle is extracted into.
pub const EXTRACT_PREFIX: &str = "bugpack-bundle-partial-";

/// The prefix of the private directory a bundle named `name` is written
/// in, beside it, before it is renamed into place.
pub fn output_prefix(name: &str) -> String {
    format!(".{name}.bugpack-partial-")
}

/// The directory `output` is written in and its file name.
pub fn split_output(output: &Path) -> (PathBuf, String) {
    let dir = match output.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = output.file_name().map_or_else(
        || "bundle.zip".to_owned(),
        |n| n.to_string_lossy().into_owned(),
    );
    (dir, name)
}

/// A private directory, locked while this value lives, removed on drop.
#[derive(Debug)]
pub struct Partial {
    // Fields drop in order: the directory is removed before the lock goes.
    dir: TempDir,
    _lock: File,
}

impl Partial {
    /// Creates and locks `<parent>/<prefix>XXXXXX` (mode 0700).
    pub fn create(parent: &Path, prefix: &str) -> io::Result<Self> {
        // A sweep running at the same moment may lock and remove the new
        // directory before we lock it: then another name is tried.
        for _ in 0..8 {
            let dir = tempfile::Builder::new()
                .prefix(prefix)
                .rand_bytes(6)
                .tempdir_in(parent)?;
            match lock(dir.path()) {
                Ok(Some(lock)) if is_at(&lock, dir.path()) => {
                    return Ok(Self { dir, _lock: lock });
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Err(io::Error::other(format!(
            "another process keeps removing new directories in {}",
            parent.display()
        )))
    }

    /// Sweeps what killed processes left in `parent` under `prefix`, then
    /// creates and locks a new directory there ([`Partial::create`]).
    pub fn fresh(parent: &Path, prefix: &str) -> io::Result<Self> {
        sweep(parent, prefix);
        Self::create(parent, prefix)
    }

    /// Sweeps what killed writers of `output` left beside it, then creates
    /// and locks a private directory there ([`output_prefix`]), from which
    /// a finished file is renamed onto `output`.
    pub fn beside(output: &Path) -> io::Result<Self> {
        let (dir, name) = split_output(output);
        Self::fresh(&dir, &output_prefix(&name))
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// Writes `bytes` to `path` (mode 0644), creating its directory: through a
/// file in a locked private directory beside it ([`Partial::beside`]),
/// renamed into place, so a killed writer leaves a clearly named directory
/// that the next write to `path` sweeps, never a half-written `path`.
pub fn replace_file(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use anyhow::Context as _;
    use std::os::unix::fs::PermissionsExt as _;

    let cannot = || format!("cannot write {}", path.display());
    let (dir, _) = split_output(path);
    fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let staging = Partial::beside(path).with_context(cannot)?;
    let tmp = staging.path().join("file");
    fs::write(&tmp, bytes).with_context(cannot)?;
    fs::set_permissions(&tmp, fs::Permissions::from_mode(0o644)).with_context(cannot)?;
    fs::rename(&tmp, path).with_context(cannot)?;
    Ok(())
}

/// Removes every directory `<parent>/<prefix>*` of this user that no live
/// process holds, and returns their paths. Best effort: what cannot be
/// read, locked or removed is left as it is.
pub fn sweep(parent: &Path, prefix: &str) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(parent) else {
        return Vec::new();
    };
    let me = nix::unistd::Uid::effective().as_raw();
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        if !name
            .to_str()
            .is_some_and(|n| n.len() > prefix.len() && n.starts_with(prefix))
        {
            continue;
        }
        let path = entry.path();
        let Ok(meta) = fs::symlink_metadata(&path) else {
            continue;
        };
        if !meta.is_dir() || meta.uid() != me {
            continue;
        }
        // Held while removing: a capture that opened it meanwhile cannot
        // lock it, and tries another name.
        let Ok(Some(held)) = lock(&path) else {
            continue;
        };
        // `remove_dir_all` unlinks symlinks inside, never what they point to.
        if is_at(&held, &path) && fs::remove_dir_all(&path).is_ok() {
            tracing::info!(
                "removed {}, left by a bugpack that was killed",
                path.display()
            );
            removed.push(path);
        }
    }
    removed
}

/// Opens the directory at `path` (never through a symlink) and takes its
/// lock if no one holds it: `None` when someone does.
fn lock(path: &Path) -> io::Result<Option<File>> {
    let dir = OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_DIRECTORY | nix::libc::O_NOFOLLOW)
        .open(path)?;
    match dir.try_lock() {
        Ok(()) => Ok(Some(dir)),
        Err(fs::TryLockError::WouldBlock) => Ok(None),
        Err(fs::TryLockError::Error(e)) => Err(e),
    }
}

/// Whether the open directory `dir` is still the one at `path` (a sweep
/// may have removed it, and another been made under the same name).
fn is_at(dir: &File, path: &Path) -> bool {
    match (dir.metadata(), fs::symlink_metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sweep_removes_unlocked_leftovers_and_keeps_live_ones() {
        let root = tempfile::tempdir().unwrap();
        let live = Partial::create(root.path(), ".b.zip.bugpack-partial-").unwrap();
        let dead = root.path().join(".b.zip.bugpack-partial-dead00");
        fs::create_dir(&dead).unwrap();
        fs::write(dead.join("b.zip"), "half").unwrap();
        let foreign = root.path().join(".c.zip.bugpack-partial-dead00");
        fs::create_dir(&foreign).unwrap();
        let bare = root.path().join(".b.zip.bugpack-partial-");
        fs::create_dir(&bare).unwrap();
        let file = root.path().join(".b.zip.bugpack-partial-file00");
        fs::write(&file, "").unwrap();
        let removed = sweep(root.path(), ".b.zip.bugpack-partial-");
        assert_eq!(removed, [dead]);
        assert!(live.path().is_dir() && foreign.is_dir() && bare.is_dir() && file.is_file());
        let path = live.path().to_path_buf();
        drop(live);
        assert!(!path.exists());
    }

    #[test]
    fn a_symlink_with_the_prefix_is_not_followed() {
        let root = tempfile::tempdir().unwrap();
        let target = tempfile::tempdir().unwrap();
        fs::write(target.path().join("keep"), "x").unwrap();
        std::os::unix::fs::symlink(target.path(), root.path().join("p-link00")).unwrap();
        assert!(sweep(root.path(), "p-").is_empty());
        assert!(target.path().join("keep").exists());
    }
}
