//! `replay --repo DIR`: a checkout of the user's project made from the
//! maintainer's clone: the bundle's HEAD commit, the user's uncommitted
//! changes (`git/diff.patch`) and untracked files (`git/untracked/`), for
//! every run to see through a view of its own.
//!
//! DIR is only ever read. The checkout is a fresh repository in replay's
//! temporary directory that borrows DIR's objects through
//! `objects/info/alternates` (git's own way of sharing an object store), so
//! checking out, writing an index and applying the patch touch nothing of
//! DIR: no worktree entry, no ref, no object, no lock, nothing a killed
//! replay could leave there. The checkout goes with replay's temporary
//! directory, on Ctrl-C too.

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use git2::build::CheckoutBuilder;
use git2::{ApplyLocation, ApplyOptions, Diff, Oid, Repository};

use crate::error::usage;

/// The maintainer's clone and the commit to check out of it.
#[derive(Debug)]
pub struct Source {
    /// The directory as given, or the root found around the current one.
    pub dir: PathBuf,
    /// The object store to borrow.
    objects: PathBuf,
    pub commit: Oid,
    /// Found around the current directory rather than named with `--repo`.
    pub found: bool,
}

/// What the checkout holds beyond the commit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Prepared {
    /// Files the patch changed.
    pub patched: u32,
    /// Untracked files added.
    pub untracked: u32,
    /// What was left out, one line each.
    pub notes: Vec<String>,
}

/// `--repo DIR`: the repository at DIR, which must have `commit`.
pub fn open(dir: &Path, commit: &str) -> anyhow::Result<Source> {
    let repo = Repository::open(dir).map_err(|e| {
        usage(format!(
            "--repo {}: not a git repository ({}); give a clone of the user's project",
            dir.display(),
            e.message()
        ))
    })?;
    let oid = Oid::from_str(commit).map_err(|_| {
        usage(format!(
            "the bundle's git/repo.yaml names no valid commit ({commit:?}); replay it without --repo"
        ))
    })?;
    if repo.find_commit(oid).is_err() {
        return Err(usage(format!(
            "--repo {}: it does not have commit {}, the user's HEAD; fetch the user's branch (git -C {} fetch --all), or ask the user for it",
            dir.display(),
            short(&oid),
            shlex::try_quote(&dir.display().to_string()).unwrap_or_default()
        )));
    }
    Ok(Source {
        dir: dir.to_path_buf(),
        objects: repo.commondir().join("objects"),
        commit: oid,
        found: false,
    })
}

/// The repository around `cwd`, when it has `commit`.
pub fn find_around(cwd: &Path, commit: &str) -> Option<Source> {
    let repo = Repository::discover(cwd).ok()?;
    let oid = Oid::from_str(commit).ok()?;
    repo.find_commit(oid).ok()?;
    Some(Source {
        dir: repo
            .workdir()
            .map_or_else(|| repo.path().to_path_buf(), Path::to_path_buf),
        objects: repo.commondir().join("objects"),
        commit: oid,
        found: true,
    })
}

/// The first 12 hex digits of a commit.
pub fn short(oid: &Oid) -> String {
    oid.to_string().chars().take(12).collect()
}

/// Makes the checkout in `dest` (which must not exist): the commit, the
/// patch applied, the untracked files from `untracked` (the extracted
/// `git/untracked/`) added, and the command's directory `cwd` made.
pub fn prepare(
    source: &Source,
    patch: &[u8],
    untracked: Option<&Path>,
    cwd: &str,
    dest: &Path,
) -> anyhow::Result<Prepared> {
    Repository::init(dest)
        .with_context(|| format!("cannot create a checkout in {}", dest.display()))?;
    let alternates = dest.join(".git/objects/info/alternates");
    fs::create_dir_all(alternates.parent().unwrap_or(dest))?;
    fs::write(&alternates, format!("{}\n", source.objects.display()))
        .with_context(|| format!("cannot write {}", alternates.display()))?;
    // Opened again, so that the alternates are read.
    let repo = Repository::open(dest)
        .with_context(|| format!("cannot open the checkout in {}", dest.display()))?;
    repo.set_head_detached(source.commit)
        .with_context(|| format!("cannot check out {}", short(&source.commit)))?;
    repo.checkout_head(Some(CheckoutBuilder::new().force()))
        .with_context(|| format!("cannot check out {}", short(&source.commit)))?;
    let mut done = Prepared::default();
    if !patch.iter().all(u8::is_ascii_whitespace) {
        apply(&repo, patch, &source.commit, &mut done)?;
    }
    if let Some(dir) = untracked.filter(|d| d.is_dir()) {
        done.untracked = copy_files(dir, dest)?;
    }
    let cwd_dir = dest.join(cwd);
    fs::create_dir_all(&cwd_dir).with_context(|| format!("cannot create {}", cwd_dir.display()))?;
    Ok(done)
}

/// Applies the user's patch to the checkout's files (not its index), or
/// says which files it does not apply to. Binary changes, whose content
/// the patch does not hold, are left out with a note.
fn apply(repo: &Repository, patch: &[u8], commit: &Oid, done: &mut Prepared) -> anyhow::Result<()> {
    let diff = Diff::from_buffer(patch).map_err(|e| {
        anyhow::anyhow!(
            "the user's uncommitted changes (git/diff.patch) cannot be read as a patch: {}; replay without --repo",
            e.message()
        )
    })?;
    let path_of = |i: usize| {
        diff.get_delta(i)
            .and_then(|d| {
                d.new_file()
                    .path()
                    .or_else(|| d.old_file().path())
                    .map(Path::to_path_buf)
            })
            .map_or_else(|| format!("change {i}"), |p| p.display().to_string())
    };
    let binary: Vec<usize> = (0..diff.deltas().len())
        .filter(|&i| diff.get_delta(i).is_some_and(|d| d.flags().is_binary()))
        .collect();
    for &i in &binary {
        done.notes.push(format!(
            "left out the user's change to {}: a binary change, whose content the patch does not hold",
            path_of(i)
        ));
    }
    let attempt = |only: Option<usize>, check: bool| {
        let mut opts = ApplyOptions::new();
        opts.check(check);
        let mut index = 0usize;
        let binary = binary.clone();
        opts.delta_callback(move |_| {
            let i = index;
            index += 1;
            !binary.contains(&i) && only.is_none_or(|o| o == i)
        });
        repo.apply(&diff, ApplyLocation::WorkDir, Some(&mut opts))
    };
    if let Err(whole) = attempt(None, true) {
        let failing: Vec<String> = (0..diff.deltas().len())
            .filter(|&i| attempt(Some(i), true).is_err())
            .map(path_of)
            .collect();
        anyhow::bail!(
            "the user's uncommitted changes (git/diff.patch) do not apply to {} at commit {} ({}); is the bundle's patch cut short or redacted there? Replay without --repo, or ask the user for the files",
            if failing.is_empty() {
                "the checkout".to_owned()
            } else {
                failing.join(", ")
            },
            short(commit),
            whole.message()
        );
    }
    attempt(None, false).map_err(|e| {
        anyhow::anyhow!(
            "cannot apply the user's uncommitted changes: {}",
            e.message()
        )
    })?;
    done.patched = u32::try_from(diff.deltas().len() - done.notes.len()).unwrap_or(u32::MAX);
    Ok(())
}

/// Copies the regular files under `from` to the same places under `to`,
/// keeping their executable bit. Returns how many.
fn copy_files(from: &Path, to: &Path) -> anyhow::Result<u32> {
    let mut count = 0;
    for entry in fs::read_dir(from).with_context(|| format!("cannot read {}", from.display()))? {
        let entry = entry?;
        let kind = entry.file_type()?;
        let target = to.join(entry.file_name());
        if kind.is_dir() {
            fs::create_dir_all(&target)
                .with_context(|| format!("cannot create {}", target.display()))?;
            count += copy_files(&entry.path(), &target)?;
        } else if kind.is_file() {
            if fs::symlink_metadata(&target).is_ok() {
                fs::remove_file(&target)
                    .with_context(|| format!("cannot replace {}", target.display()))?;
            }
            fs::copy(entry.path(), &target)
                .with_context(|| format!("cannot copy {}", entry.path().display()))?;
            count += 1;
        }
    }
    Ok(count)
}

/// The checkout of `source` made in `extracted` (the bundle's extracted
/// entries: `git/diff.patch`, `git/untracked/`), handed to the runs' user,
/// and how the runs will see it: an overlay each where the sandbox can
/// mount one (not with `--keep`, whose kept runs hold whole copies), else
/// a copy each.
pub fn setup(
    source: &Source,
    extracted: &Path,
    cwd: &str,
    isolation: &super::sandbox::Isolation,
    keep: bool,
) -> anyhow::Result<(super::Files, crate::report::CheckoutInfo)> {
    let tree = extracted.join("checkout");
    let patch = match fs::read(extracted.join("git/diff.patch")) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(anyhow::Error::new(e).context("cannot read git/diff.patch")),
    };
    tracing::info!(
        "checking out {} of {} in {}",
        short(&source.commit),
        source.dir.display(),
        tree.display()
    );
    let prepared = prepare(
        source,
        &patch,
        Some(&extracted.join("git/untracked")),
        cwd,
        &tree,
    )?;
    if let Some((uid, gid)) = isolation.run_as {
        // The runs' user must reach the checkout, and own it: overlayfs
        // copies a file up under its owner, which must exist in the run's
        // user namespace.
        fs::set_permissions(extracted, fs::Permissions::from_mode(0o711))
            .with_context(|| format!("cannot open {} to the sandbox user", extracted.display()))?;
        super::rundirs::chown_tree(&tree, uid, gid)?;
    }
    let (overlay, why_copy) = if keep {
        (
            false,
            Some("--keep: each kept run holds a whole copy".to_owned()),
        )
    } else {
        match isolation.overlay_works(&extracted.join("overlay-probe")) {
            Ok(()) => (true, None),
            Err(why) => {
                tracing::info!(
                    "each run gets a copy of the checkout: overlays cannot be mounted here ({why})"
                );
                (
                    false,
                    Some(format!("overlayfs cannot be mounted here: {why}")),
                )
            }
        }
    };
    let info = crate::report::CheckoutInfo {
        repo: source.dir.display().to_string(),
        found: source.found,
        commit: source.commit.to_string(),
        patched: prepared.patched,
        untracked: prepared.untracked,
        cwd: cwd.to_owned(),
        view: if overlay { "overlay" } else { "copy" }.to_owned(),
        why_copy,
        notes: prepared.notes,
    };
    Ok((
        super::Files::Checkout {
            tree,
            cwd: cwd.to_owned(),
            overlay,
        },
        info,
    ))
}
