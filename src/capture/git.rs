//! `git/repo.yaml` and `git/diff.patch`: the repository around the current
//! directory, if there is one.
//!
//! Read with git2 (built without OpenSSL: nothing here touches a network).
//! Remote URLs lose their credentials through the redactor; the diff and
//! file names pass through it too. A directory outside any repository is
//! not an error: there is simply no git section.

use std::path::{Path, PathBuf};

use git2::{
    DescribeFormatOptions, DescribeOptions, DiffFormat, DiffOptions, Repository, Status,
    StatusOptions,
};
use serde::{Deserialize, Serialize};

use crate::redact::Redactor;

/// The largest diff kept; a bigger one is cut, and the cut is said.
pub const MAX_DIFF_BYTES: usize = 8 << 20;
/// At most this many names per status list.
const MAX_NAMES: usize = 1000;

/// What `git/repo.yaml` records.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepoInfo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head: Option<String>,
    /// The branch, or `null` with a detached HEAD.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub describe: Option<String>,
    #[serde(default)]
    pub remotes: Vec<Remote>,
    pub dirty: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub staged: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unstaged: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub untracked: Vec<String>,
    /// Names left out of the lists above because there were too many.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub names_omitted: u64,
}

#[allow(clippy::trivially_copy_pass_by_ref)]
fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// A remote with its URL stripped of credentials.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Remote {
    pub name: String,
    pub url: String,
}

/// The repository's state, the patch of uncommitted changes to tracked
/// files, and the files a maintainer's checkout of HEAD would lack.
#[derive(Debug, Clone)]
pub struct GitState {
    pub info: RepoInfo,
    pub diff: Vec<u8>,
    pub project: Project,
}

/// The repository's files: what replay judges a missing file by, and the
/// untracked ones capture packs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Project {
    /// The work tree's root.
    pub root: PathBuf,
    /// The paths in the index (HEAD's files and staged new ones), relative
    /// to the root, not redacted.
    pub tracked: Vec<String>,
    /// Untracked files that `.gitignore` does not hide, every one (untracked
    /// directories are walked), relative to the root, not redacted.
    pub untracked: Vec<String>,
}

/// The most names `git/files.txt` lists.
pub const MAX_TRACKED_NAMES: usize = 200_000;

/// Reads the repository containing `cwd`; `None` when there is none.
pub fn read(cwd: &Path, redactor: &mut Redactor) -> anyhow::Result<Option<GitState>> {
    let Some(repo) = discover(cwd) else {
        return Ok(None);
    };
    let info = repo_info(&repo, redactor)?;
    let diff = diff_against_head(&repo)?;
    let diff = redactor.redact("git/diff.patch", &diff);
    let project = project(&repo)?;
    Ok(Some(GitState {
        info,
        diff,
        project,
    }))
}

/// `git/files.txt`: the tracked names, one per line, redacted.
pub fn files_list(project: &Project, redactor: &mut Redactor) -> Vec<u8> {
    let mut out = String::new();
    for name in project.tracked.iter().take(MAX_TRACKED_NAMES) {
        out.push_str(&redactor.redact_str("git/files.txt", name));
        out.push('\n');
    }
    out.into_bytes()
}

/// The root of the work tree around `cwd`, when there is one.
pub fn root_of(cwd: &Path) -> Option<PathBuf> {
    Repository::discover(cwd)
        .ok()
        .filter(|r| !r.is_bare())
        .and_then(|r| r.workdir().map(Path::to_path_buf))
}

/// The index's paths and the untracked, non-ignored files.
fn project(repo: &Repository) -> anyhow::Result<Project> {
    let root = repo
        .workdir()
        .map_or_else(|| repo.path().to_path_buf(), Path::to_path_buf);
    let mut tracked: Vec<String> = repo
        .index()?
        .iter()
        .filter_map(|e| String::from_utf8(e.path).ok())
        .filter(|p| !p.contains('\n'))
        .collect();
    tracked.sort();
    tracked.dedup();
    let mut opts = StatusOptions::new();
    opts.include_untracked(true)
        .recurse_untracked_dirs(true)
        .include_ignored(false)
        .exclude_submodules(true);
    let mut untracked: Vec<String> = repo
        .statuses(Some(&mut opts))?
        .iter()
        .filter(|e| e.status().contains(Status::WT_NEW))
        .filter_map(|e| e.path().ok().map(str::to_owned))
        .filter(|p| !p.ends_with('/'))
        .collect();
    untracked.sort();
    Ok(Project {
        root,
        tracked,
        untracked,
    })
}

/// The state of the repository containing `cwd`, without the patch (which
/// `diff` does not compare); `None` when there is none.
pub fn read_info(cwd: &Path, redactor: &mut Redactor) -> anyhow::Result<Option<RepoInfo>> {
    discover(cwd)
        .map(|repo| repo_info(&repo, redactor))
        .transpose()
}

/// The non-bare repository containing `cwd`, if any (one that cannot be
/// read is warned about and skipped).
fn discover(cwd: &Path) -> Option<Repository> {
    let repo = match Repository::discover(cwd) {
        Ok(r) => r,
        Err(e) if e.code() == git2::ErrorCode::NotFound => return None,
        Err(e) => {
            tracing::warn!(
                "cannot read the git repository around {}: {}",
                cwd.display(),
                e.message()
            );
            return None;
        }
    };
    if repo.is_bare() {
        return None;
    }
    tracing::info!(
        "reading the git repository at {}",
        repo.workdir().unwrap_or_else(|| repo.path()).display()
    );
    Some(repo)
}

/// HEAD, branch, describe, remotes (credentials redacted) and status names.
fn repo_info(repo: &Repository, redactor: &mut Redactor) -> anyhow::Result<RepoInfo> {
    let origin = "git/repo.yaml";
    let mut info = RepoInfo::default();
    let head = repo.head().ok();
    info.head = head
        .as_ref()
        .and_then(|h| h.peel_to_commit().ok())
        .map(|c| c.id().to_string());
    info.branch = head
        .as_ref()
        .filter(|h| h.is_branch())
        .and_then(|h| h.shorthand().ok().map(str::to_owned));
    info.describe = repo
        .describe(DescribeOptions::new().describe_tags())
        .and_then(|d| d.format(Some(DescribeFormatOptions::new().abbreviated_size(12))))
        .ok();
    if let Ok(names) = repo.remotes() {
        for name in names.iter().filter_map(|n| n.ok().flatten()) {
            if let Ok(remote) = repo.find_remote(name) {
                let url = remote.url().unwrap_or_default();
                info.remotes.push(Remote {
                    name: redactor.redact_str(origin, name),
                    url: redactor.redact_url(origin, url),
                });
            }
        }
    }

    let mut opts = StatusOptions::new();
    opts.include_untracked(true)
        .recurse_untracked_dirs(false)
        .include_ignored(false)
        .exclude_submodules(true);
    let statuses = repo.statuses(Some(&mut opts))?;
    let mut omitted = 0u64;
    for entry in statuses.iter() {
        let Ok(path) = entry.path() else { continue };
        let s = entry.status();
        let lists: [(&mut Vec<String>, bool); 3] = [
            (
                &mut info.staged,
                s.intersects(
                    Status::INDEX_NEW
                        | Status::INDEX_MODIFIED
                        | Status::INDEX_DELETED
                        | Status::INDEX_RENAMED
                        | Status::INDEX_TYPECHANGE,
                ),
            ),
            (
                &mut info.unstaged,
                s.intersects(
                    Status::WT_MODIFIED
                        | Status::WT_DELETED
                        | Status::WT_RENAMED
                        | Status::WT_TYPECHANGE,
                ),
            ),
            (&mut info.untracked, s.contains(Status::WT_NEW)),
        ];
        for (list, member) in lists {
            if !member {
                continue;
            }
            if list.len() < MAX_NAMES {
                list.push(redactor.redact_str(origin, path));
            } else {
                omitted += 1;
            }
        }
    }
    info.names_omitted = omitted;
    info.dirty = !(info.staged.is_empty() && info.unstaged.is_empty() && info.untracked.is_empty());
    Ok(info)
}

/// Uncommitted changes to tracked files (staged and not), as a patch.
fn diff_against_head(repo: &Repository) -> anyhow::Result<Vec<u8>> {
    let tree = repo.head().ok().and_then(|h| h.peel_to_tree().ok());
    let mut opts = DiffOptions::new();
    opts.include_untracked(false).context_lines(3);
    let diff = repo.diff_tree_to_workdir_with_index(tree.as_ref(), Some(&mut opts))?;
    let mut out = Vec::new();
    let mut cut = false;
    diff.print(DiffFormat::Patch, |_, _, line| {
        if out.len() >= MAX_DIFF_BYTES {
            cut = true;
            return false;
        }
        if matches!(line.origin(), '+' | '-' | ' ') {
            out.push(line.origin() as u8);
        }
        out.extend_from_slice(line.content());
        true
    })
    .or_else(|e| if cut { Ok(()) } else { Err(e) })?;
    if cut {
        out.extend_from_slice(b"\n# bugpack: the diff was cut at 8 MiB\n");
    }
    Ok(out)
}
