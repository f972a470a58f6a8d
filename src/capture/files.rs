//! Files the user names: configuration (`config/`), log tails (`logs/`) and
//! the files a scenario needs (`scenario/`).
//!
//! Every byte goes through the redactor and is staged, redacted, in a
//! temporary directory before the writer packs it; nothing unredacted is
//! ever handed to the writer. Logs are read from their end: a 10 GB log
//! costs the same as a 1 MB one.
//!
//! Entry names never hold a host's absolute path: a file is named by its
//! path relative to the current directory when inside it, else relative to
//! the root of the git repository around it, else relative to the directory
//! the user named it from (`--config /etc/app` gives `config/app/...`,
//! `--log /var/log/app.log` gives `logs/app.log`). Names that collide get
//! `-2`, `-3`... in the order given; names pass through the redactor too.
//!
//! A path named on the command line that cannot be packed is a usage error;
//! a bad file found inside a directory or by a glob (unreadable, binary,
//! a name that is not UTF-8, over the size cap) is skipped with a warning.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::{FileTypeExt as _, PermissionsExt as _};
use std::path::{Component, Path, PathBuf};

use anyhow::Context as _;

use crate::bundle::{BundleWriter, SCENARIO_FILE};
use crate::error::{ErrorKind, usage};
use crate::redact::Redactor;

/// The largest configuration file packed whole.
pub const MAX_CONFIG_FILE: u64 = 1 << 20;
/// The most configuration bytes packed in all.
pub const MAX_CONFIG_TOTAL: u64 = 32 << 20;
/// The largest file `--include` packs.
pub const MAX_INCLUDE_FILE: u64 = 64 << 20;
/// The largest untracked file packed.
pub const MAX_UNTRACKED_FILE: u64 = 4 << 20;
/// The most untracked bytes packed in all.
pub const MAX_UNTRACKED_TOTAL: u64 = 16 << 20;
/// The default tail kept of each log.
pub const DEFAULT_LOG_BYTES: u64 = 1 << 20;

/// A path (or glob) to pack, and whether the profile named it rather than
/// the command line (then one that cannot be packed is skipped with a
/// warning instead of failing the capture).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Named<T> {
    pub path: T,
    pub from_profile: bool,
}

impl<T> Named<T> {
    /// A path from the command line.
    pub fn typed(path: T) -> Self {
        Self {
            path,
            from_profile: false,
        }
    }

    /// A path from the profile.
    pub fn profile(path: T) -> Self {
        Self {
            path,
            from_profile: true,
        }
    }
}

/// A file placed in the bundle, for the capture summary and `--dry-run`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placed {
    pub entry: String,
    /// The source, absolute and normalised.
    pub source: PathBuf,
    /// Bytes of the source file.
    pub source_bytes: u64,
    /// Bytes kept (a log's tail).
    pub kept_bytes: u64,
    /// The redacted copy the writer packs.
    pub staged: PathBuf,
}

/// A file or directory given to `--include`, and where it sits under
/// `scenario/` (empty: the scenario's root).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Included {
    /// The path as the user gave it.
    pub given: PathBuf,
    pub source: PathBuf,
    pub place: String,
    pub is_dir: bool,
}

/// What [`Packer::untracked`] packed and what it left out (one line each,
/// scrubbed).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Untracked {
    pub packed: usize,
    pub bytes: u64,
    pub left_out: Vec<String>,
}

/// The directory of `name` (a path from `root`) that holds an environment
/// rather than the project's files: a virtualenv (it has `pyvenv.cfg`),
/// `node_modules`, a bytecode cache.
fn environment_dir(root: &Path, name: &str) -> Option<String> {
    let parts: Vec<&str> = name.split('/').collect();
    let dirs = &parts[..parts.len().saturating_sub(1)];
    for (i, part) in dirs.iter().enumerate() {
        let prefix = dirs[..=i].join("/");
        if matches!(*part, "node_modules" | "__pycache__")
            || root.join(&prefix).join("pyvenv.cfg").is_file()
        {
            return Some(prefix);
        }
    }
    None
}

/// Whether `path` is a bugpack bundle (a zip whose first entry is the manifest).
fn is_bundle(path: &Path) -> bool {
    let mut head = [0u8; 42];
    File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok_and(|()| head.starts_with(b"PK\x03\x04") && &head[30..42] == b"bugpack.yaml")
}

/// What a packed file holds.
enum Body<'b> {
    Whole(&'b [u8]),
    Tail(&'b Tail),
}

/// Stages redacted copies and adds them to a writer.
#[derive(Debug)]
pub struct Packer<'a> {
    cwd: PathBuf,
    git_root: Option<PathBuf>,
    staging: &'a Path,
    writer: &'a mut BundleWriter,
    redactor: &'a mut Redactor,
    pub placed: Vec<Placed>,
    /// Why each skipped file was skipped (one line each, scrubbed).
    pub skipped: Vec<String>,
    pub included: Vec<Included>,
    /// Entry names taken (lower-cased, as the writer compares them).
    claimed: HashSet<String>,
    next_id: usize,
    config_total: u64,
}

impl<'a> Packer<'a> {
    pub fn new(
        cwd: &Path,
        staging: &'a Path,
        writer: &'a mut BundleWriter,
        redactor: &'a mut Redactor,
    ) -> Self {
        let cwd = normalize(cwd);
        let git_root = git2::Repository::discover(&cwd)
            .ok()
            .and_then(|r| r.workdir().map(normalize));
        Self {
            cwd,
            git_root,
            staging,
            writer,
            redactor,
            placed: Vec::new(),
            skipped: Vec::new(),
            included: Vec::new(),
            claimed: HashSet::new(),
            next_id: 0,
            config_total: 0,
        }
    }

    /// Packs configuration files and directories under `config/`.
    pub fn configs(&mut self, paths: &[Named<PathBuf>]) -> anyhow::Result<()> {
        for named in paths {
            let done = self.config_arg(&named.path);
            self.tolerate(done, named.from_profile)?;
        }
        Ok(())
    }

    fn config_arg(&mut self, path: &Path) -> anyhow::Result<()> {
        let meta = explicit_metadata(path, "--config")?;
        let abs = self.absolute(path);
        let anchor = parent(&abs);
        if meta.is_dir() {
            let files = self.walk_or_usage(path, "--config")?;
            for file in files {
                self.config_file(&file, &anchor, None)?;
            }
            Ok(())
        } else {
            self.config_file(path, &anchor, Some("--config"))
        }
    }

    /// A path from the profile that cannot be packed is skipped with a
    /// warning, not fatal: the profile was written for every machine, and
    /// this one may lack the file.
    fn tolerate(&mut self, done: anyhow::Result<()>, from_profile: bool) -> anyhow::Result<()> {
        match done {
            Err(e) if from_profile && ErrorKind::of(&e) == ErrorKind::Usage => {
                let line = self
                    .redactor
                    .scrub(&format!("{e:#} (named by the profile)"));
                tracing::warn!("skipped {line}");
                self.skipped.push(line);
                Ok(())
            }
            other => other,
        }
    }

    /// One config file; `flag` when the user named it (errors are theirs to fix).
    fn config_file(
        &mut self,
        path: &Path,
        anchor: &Path,
        flag: Option<&str>,
    ) -> anyhow::Result<()> {
        let name = match self.name(path, anchor) {
            Ok(n) => n,
            Err(why) => return self.refuse_or_skip(flag, path, &why),
        };
        let size = match fs::metadata(path) {
            Ok(m) => m.len(),
            Err(e) => return self.refuse_or_skip(flag, path, &read_error(&e)),
        };
        if size > MAX_CONFIG_FILE {
            self.skip(
                path,
                &format!("{size} bytes, over the {MAX_CONFIG_FILE} byte limit for a config file"),
            );
            return Ok(());
        }
        if self.config_total + size > MAX_CONFIG_TOTAL {
            self.skip(
                path,
                &format!("the configuration files pass {MAX_CONFIG_TOTAL} bytes in all"),
            );
            return Ok(());
        }
        let bytes = match read_capped(path, MAX_CONFIG_FILE) {
            Ok(b) => b,
            Err(e) => return self.refuse_or_skip(flag, path, &read_error(&e)),
        };
        if is_binary(&bytes) {
            self.skip(
                path,
                "binary (it holds NUL bytes); bugpack packs text configuration",
            );
            return Ok(());
        }
        self.config_total += size;
        self.stage("config", &name, path, &Body::Whole(&bytes), size, false)
    }

    /// Packs the last `tail` bytes of each log, each argument a path or a glob.
    pub fn logs(&mut self, patterns: &[Named<String>], tail: u64) -> anyhow::Result<()> {
        for named in patterns {
            let done = self.log_arg(&named.path, tail);
            self.tolerate(done, named.from_profile)?;
        }
        Ok(())
    }

    fn log_arg(&mut self, pattern: &str, tail: u64) -> anyhow::Result<()> {
        if !is_glob(pattern) {
            let path = Path::new(pattern);
            let meta = explicit_metadata(path, "--log")?;
            if meta.is_dir() {
                return Err(usage(format!(
                    "--log {}: is a directory; pass a file or a glob such as {}/*.log",
                    path.display(),
                    path.display()
                )));
            }
            let anchor = parent(&self.absolute(path));
            return self.log_file(path, &anchor, tail, Some("--log"));
        }
        let (base, files, problems) = expand(pattern, &self.cwd)?;
        if files.is_empty() && problems.is_empty() {
            return Err(usage(format!("--log {pattern}: matches no file")));
        }
        for (path, why) in problems {
            self.skip(&path, &why);
        }
        for file in files {
            self.log_file(&file, &base, tail, None)?;
        }
        Ok(())
    }

    fn log_file(
        &mut self,
        path: &Path,
        anchor: &Path,
        tail: u64,
        flag: Option<&str>,
    ) -> anyhow::Result<()> {
        let name = match self.name(path, anchor) {
            Ok(n) => n,
            Err(why) => return self.refuse_or_skip(flag, path, &why),
        };
        let size = fs::metadata(path).map_or(0, |m| m.len());
        let read = File::open(path).and_then(|f| read_tail_of(f, tail));
        let tail = match read {
            Ok(t) => t,
            Err(e) => return self.refuse_or_skip(flag, path, &read_error(&e)),
        };
        if is_binary(tail.kept()) {
            self.skip(
                path,
                "binary (it holds NUL bytes); bugpack packs text logs, --include packs any file",
            );
            return Ok(());
        }
        self.stage("logs", &name, path, &Body::Tail(&tail), size, false)
    }

    /// Packs files and directories the scenario needs under `scenario/`.
    /// Those inside the current directory go first, so that they keep
    /// their own names (the scenario runs where the capture ran).
    pub fn includes(&mut self, paths: &[Named<PathBuf>]) -> anyhow::Result<()> {
        let (inside, outside): (Vec<&Named<PathBuf>>, Vec<&Named<PathBuf>>) = paths
            .iter()
            .partition(|n| self.absolute(&n.path).starts_with(&self.cwd));
        for named in inside.into_iter().chain(outside) {
            let done = self.include_arg(&named.path);
            self.tolerate(done, named.from_profile)?;
        }
        Ok(())
    }

    fn include_arg(&mut self, path: &Path) -> anyhow::Result<()> {
        let meta = explicit_metadata(path, "--include")?;
        let abs = self.absolute(path);
        let anchor = parent(&abs);
        let place = if abs == self.cwd {
            String::new()
        } else {
            self.name(path, &anchor)
                .map_err(|why| usage(format!("--include {}: {why}", path.display())))?
        };
        let files = if meta.is_dir() {
            self.walk_or_usage(path, "--include")?
        } else {
            vec![path.to_path_buf()]
        };
        self.included.push(Included {
            given: path.to_path_buf(),
            source: abs,
            place,
            is_dir: meta.is_dir(),
        });
        for file in files {
            let meta = fs::metadata(&file)
                .map_err(|e| usage(format!("--include {}: {}", file.display(), read_error(&e))))?;
            if meta.len() > MAX_INCLUDE_FILE {
                return Err(usage(format!(
                    "--include {}: {} bytes, over the {} byte limit; include something smaller",
                    file.display(),
                    meta.len(),
                    MAX_INCLUDE_FILE
                )));
            }
            let name = self
                .name(&file, &anchor)
                .map_err(|why| usage(format!("--include {}: {why}", file.display())))?;
            if format!("scenario/{name}") == SCENARIO_FILE {
                return Err(usage(format!(
                    "--include {}: would replace the scenario's own scenario.yaml; use --scenario DIR to pack a scenario",
                    file.display()
                )));
            }
            let bytes = read_capped(&file, MAX_INCLUDE_FILE)
                .map_err(|e| usage(format!("--include {}: {}", file.display(), read_error(&e))))?;
            let executable = meta.permissions().mode() & 0o111 != 0;
            self.stage(
                "scenario",
                &name,
                &file,
                &Body::Whole(&bytes),
                meta.len(),
                executable,
            )?;
        }

        Ok(())
    }

    /// Packs a whole scenario directory under `scenario/`, its layout kept.
    pub fn scenario_dir(&mut self, dir: &Path) -> anyhow::Result<()> {
        for file in self.walk_or_usage(dir, "--scenario")? {
            let rel = file
                .strip_prefix(dir)
                .map_err(|_| anyhow::anyhow!("{} is outside {}", file.display(), dir.display()))?;
            let rel = rel
                .to_str()
                .filter(|r| !r.is_empty())
                .ok_or_else(|| usage(format!("{}: the name is not UTF-8", file.display())))?
                .to_owned();
            let meta = fs::metadata(&file)
                .map_err(|e| usage(format!("{}: {}", file.display(), read_error(&e))))?;
            if meta.len() > MAX_INCLUDE_FILE {
                return Err(usage(format!(
                    "{}: {} bytes, over the {} byte limit for a scenario file",
                    file.display(),
                    meta.len(),
                    MAX_INCLUDE_FILE
                )));
            }
            let bytes = read_capped(&file, MAX_INCLUDE_FILE)
                .map_err(|e| usage(format!("{}: {}", file.display(), read_error(&e))))?;
            let executable = meta.permissions().mode() & 0o111 != 0;
            self.stage(
                "scenario",
                &rel,
                &file,
                &Body::Whole(&bytes),
                meta.len(),
                executable,
            )?;
        }
        Ok(())
    }

    /// Packs the repository's untracked files under `git/untracked/`, by
    /// their path from the root, so that replay can add them to a checkout:
    /// at most [`MAX_UNTRACKED_FILE`] each and [`MAX_UNTRACKED_TOTAL`] in
    /// all, binary ones too (redaction still applies to their bytes).
    /// Virtualenvs, `node_modules`, bytecode caches, symlinks and bugpack's
    /// own bundles are left out, and said so.
    pub fn untracked(&mut self, root: &Path, names: &[String]) -> anyhow::Result<Untracked> {
        let mut done = Untracked::default();
        let mut envs: HashSet<String> = HashSet::new();
        let mut over_cap = Vec::new();
        let mut budget = MAX_UNTRACKED_TOTAL;
        for name in names {
            let path = root.join(name);
            if let Some(env) = environment_dir(root, name) {
                if envs.insert(env.clone()) {
                    done.left_out.push(format!(
                        "{env}: an environment directory (its packages are in env/runtime.yaml)"
                    ));
                }
                continue;
            }
            let Ok(meta) = fs::symlink_metadata(&path) else {
                continue;
            };
            if meta.file_type().is_symlink() {
                done.left_out.push(format!("{name}: a symlink"));
                continue;
            }
            if !meta.is_file()
                || Path::new(&name)
                    .extension()
                    .is_some_and(|e| e.eq_ignore_ascii_case("pyc"))
                || name.contains(".bugpack-partial-")
            {
                continue;
            }
            if is_bundle(&path)
                || (name.ends_with(".zip.md") && is_bundle(&path.with_extension("")))
            {
                continue;
            }
            if meta.len() > MAX_UNTRACKED_FILE.min(budget) {
                over_cap.push(name.clone());
                continue;
            }
            if let Err(why) = crate::bundle::check_entry_path(name) {
                done.left_out
                    .push(format!("{name}: its name cannot go into a bundle: {why}"));
                continue;
            }
            if self
                .claimed
                .contains(&format!("git/untracked/{name}").to_lowercase())
            {
                done.left_out.push(format!(
                    "{name}: another file has the same name but for case"
                ));
                continue;
            }
            let bytes = match read_capped(&path, MAX_UNTRACKED_FILE) {
                Ok(b) => b,
                Err(e) => {
                    done.left_out.push(format!("{name}: {}", read_error(&e)));
                    continue;
                }
            };
            budget -= bytes.len() as u64;
            done.bytes += bytes.len() as u64;
            done.packed += 1;
            let executable = meta.permissions().mode() & 0o111 != 0;
            self.stage(
                "git/untracked",
                name,
                &path,
                &Body::Whole(&bytes),
                meta.len(),
                executable,
            )?;
        }
        if !over_cap.is_empty() {
            let shown: Vec<&str> = over_cap.iter().take(5).map(String::as_str).collect();
            done.left_out.push(format!(
                "{} untracked file{} past the cap of {} MiB each and {} MiB in all ({}{}): commit them, or --include the ones the bug needs",
                over_cap.len(),
                if over_cap.len() == 1 { "" } else { "s" },
                MAX_UNTRACKED_FILE >> 20,
                MAX_UNTRACKED_TOTAL >> 20,
                shown.join(", "),
                if over_cap.len() > shown.len() { ", ..." } else { "" }
            ));
        }
        for line in &mut done.left_out {
            *line = self.redactor.scrub(line);
        }
        Ok(done)
    }

    /// Redacts the name and the body, stages the body, and adds it to the
    /// writer under `top/name` (or `name-2`... when another source has it).
    fn stage(
        &mut self,
        top: &str,
        name: &str,
        source: &Path,
        body: &Body<'_>,
        source_bytes: u64,
        executable: bool,
    ) -> anyhow::Result<()> {
        let source = self.absolute(source);
        let name = self.redactor.redact_str("(entry names)", name);
        let Some(entry) = self.claim(top, &name, &source) else {
            // The same file named twice (a flag and the profile): packed once.
            return Ok(());
        };
        let (redacted, kept) = match body {
            Body::Whole(bytes) => (self.redactor.redact(&entry, bytes), bytes.len()),
            Body::Tail(tail) => (tail.redact(self.redactor, &entry), tail.kept().len()),
        };
        match body {
            Body::Whole(_) => tracing::info!(
                "read {} ({source_bytes} bytes) as {entry}",
                self.redactor.scrub(&source.to_string_lossy())
            ),
            Body::Tail(_) => tracing::info!(
                "read the last {kept} of {source_bytes} bytes of {} as {entry}",
                self.redactor.scrub(&source.to_string_lossy())
            ),
        }
        self.next_id += 1;
        let staged = self.staging.join(format!("f{:06}", self.next_id));
        fs::write(&staged, &redacted)
            .with_context(|| format!("cannot stage {}", staged.display()))?;
        self.writer.add_file(&entry, &staged, executable)?;
        self.placed.push(Placed {
            entry,
            source,
            source_bytes,
            kept_bytes: kept as u64,
            staged,
        });
        Ok(())
    }

    /// `top/name`, or the first free `top/stem-N.ext`; `None` when `source`
    /// already has a name.
    fn claim(&mut self, top: &str, name: &str, source: &Path) -> Option<String> {
        if self
            .placed
            .iter()
            .any(|p| p.source == source && p.entry.starts_with(top))
        {
            return None;
        }
        let (dir, file) = match name.rsplit_once('/') {
            Some((d, f)) => (format!("{d}/"), f),
            None => (String::new(), name),
        };
        let (stem, ext) = match file.rsplit_once('.') {
            Some((s, e)) if !s.is_empty() => (s, format!(".{e}")),
            _ => (file, String::new()),
        };
        let mut n = 1;
        loop {
            let entry = if n == 1 {
                format!("{top}/{name}")
            } else {
                format!("{top}/{dir}{stem}-{n}{ext}")
            };
            if self.claimed.insert(entry.to_lowercase()) {
                return Some(entry);
            }
            n += 1;
        }
    }

    /// A usage error when the user named `path` (`flag`), else a skip.
    fn refuse_or_skip(&mut self, flag: Option<&str>, path: &Path, why: &str) -> anyhow::Result<()> {
        if let Some(flag) = flag {
            return Err(usage(format!("{flag} {}: {why}", path.to_string_lossy())));
        }
        self.skip(path, why);
        Ok(())
    }

    fn skip(&mut self, path: &Path, why: &str) {
        let line = self
            .redactor
            .scrub(&format!("{}: {why}", path.to_string_lossy()));
        tracing::warn!("skipped {line}");
        self.skipped.push(line);
    }

    fn absolute(&self, path: &Path) -> PathBuf {
        normalize(&self.cwd.join(path))
    }

    /// The bundle-relative name of `path` (see the module's doc): relative
    /// to the current directory, the git root, or `anchor`.
    fn name(&self, path: &Path, anchor: &Path) -> Result<String, String> {
        let abs = self.absolute(path);
        let rel = abs
            .strip_prefix(&self.cwd)
            .ok()
            .or_else(|| {
                self.git_root
                    .as_deref()
                    .and_then(|root| abs.strip_prefix(root).ok())
            })
            .or_else(|| abs.strip_prefix(anchor).ok())
            .filter(|r| !r.as_os_str().is_empty())
            .or_else(|| abs.file_name().map(Path::new))
            .ok_or_else(|| "names no file".to_owned())?;
        let name = rel
            .to_str()
            .ok_or_else(|| "the file name is not UTF-8; rename it or leave it out".to_owned())?;
        // The rules every bundle reader applies (no look-alike separators,
        // no control characters...): a name they would refuse is caught
        // here, where one file can be skipped, not when the bundle is written.
        crate::bundle::check_entry_path(name).map_err(|why| {
            format!("its name cannot go into a bundle: {why}; rename it or leave it out")
        })?;
        Ok(name.to_owned())
    }

    /// The files under a directory the user named; the directory itself
    /// must be readable, a bad file inside it is skipped.
    fn walk_or_usage(&mut self, dir: &Path, flag: &str) -> anyhow::Result<Vec<PathBuf>> {
        fs::read_dir(dir)
            .map_err(|e| usage(format!("{flag} {}: {}", dir.display(), read_error(&e))))?;
        let (files, problems) = walk(dir);
        for (path, why) in problems {
            self.skip(&path, &why);
        }
        Ok(files)
    }
}

/// Removes `.` and resolves `..` lexically (no symlinks followed).
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// Normalises `path` against `cwd`: what `--include ../x` means.
pub fn resolve(cwd: &Path, path: &Path) -> PathBuf {
    normalize(&cwd.join(path))
}

fn parent(abs: &Path) -> PathBuf {
    abs.parent()
        .map_or_else(|| PathBuf::from("/"), Path::to_path_buf)
}

/// A path the user named: it must exist, be readable, and be a regular
/// file or a directory (a FIFO would block the capture forever).
fn explicit_metadata(path: &Path, flag: &str) -> anyhow::Result<fs::Metadata> {
    let meta = fs::metadata(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => usage(format!(
            "{flag} {}: no such file or directory",
            path.display()
        )),
        std::io::ErrorKind::PermissionDenied => usage(format!(
            "{flag} {}: permission denied; pass a file you can read",
            path.display()
        )),
        _ => usage(format!("{flag} {}: {}", path.display(), read_error(&e))),
    })?;
    if !(meta.is_file() || meta.is_dir()) {
        let what = if flag == "--log" {
            "a regular file or a glob"
        } else {
            "a regular file or a directory"
        };
        return Err(usage(format!(
            "{flag} {}: {}; pass {what}",
            path.display(),
            kind_of(meta.file_type())
        )));
    }
    if meta.is_file()
        && let Err(e) = File::open(path)
    {
        return Err(usage(format!(
            "{flag} {}: {}",
            path.display(),
            read_error(&e)
        )));
    }
    Ok(meta)
}

fn kind_of(t: fs::FileType) -> &'static str {
    if t.is_fifo() {
        "is a FIFO (named pipe)"
    } else if t.is_socket() {
        "is a socket"
    } else if t.is_block_device() || t.is_char_device() {
        "is a device"
    } else {
        "is not a regular file"
    }
}

fn read_error(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::PermissionDenied => "permission denied".to_owned(),
        std::io::ErrorKind::NotFound => "no such file".to_owned(),
        _ => format!("cannot read it ({e})"),
    }
}

/// Text with a NUL byte is not text.
fn is_binary(bytes: &[u8]) -> bool {
    bytes.contains(&0)
}

fn is_glob(pattern: &str) -> bool {
    pattern.contains(['*', '?', '['])
}

type Problems = Vec<(PathBuf, String)>;

/// Regular files under `dir`, sorted, not following symlinked directories;
/// and the entries that could not be taken, with why.
fn walk(dir: &Path) -> (Vec<PathBuf>, Problems) {
    let mut out = Vec::new();
    let mut problems = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = match fs::read_dir(&d) {
            Ok(e) => e,
            Err(e) => {
                problems.push((d, read_error(&e)));
                continue;
            }
        };
        for entry in entries {
            let entry = match entry {
                Ok(e) => e,
                Err(e) => {
                    problems.push((d.clone(), read_error(&e)));
                    continue;
                }
            };
            let path = entry.path();
            let Ok(kind) = entry.file_type() else {
                problems.push((path, "cannot read its type".to_owned()));
                continue;
            };
            if kind.is_dir() {
                if entry.file_name() != ".git" {
                    stack.push(path);
                }
                continue;
            }
            let regular = kind.is_file() || (kind.is_symlink() && path.is_file());
            if kind.is_symlink() && !path.exists() {
                continue;
            }
            if path.to_str().is_none() {
                problems.push((path, "the name is not UTF-8".to_owned()));
            } else if regular {
                out.push(path);
            } else if !kind.is_symlink() {
                problems.push((path, kind_of(kind).to_owned()));
            }
        }
    }
    out.sort();
    problems.sort();
    (out, problems)
}

/// The files a glob matches (relative globs from `cwd`), sorted; the
/// directory before its first wildcard (where names start); and what
/// matched but cannot be taken. `**` matches any number of directories.
fn expand(pattern: &str, cwd: &Path) -> anyhow::Result<(PathBuf, Vec<PathBuf>, Problems)> {
    let full = normalize(&cwd.join(pattern));
    let mut base = PathBuf::new();
    let mut rest = Vec::new();
    for c in full.components() {
        let text = c.as_os_str().to_string_lossy();
        if rest.is_empty() && !is_glob(&text) {
            base.push(c);
        } else {
            rest.push(text.into_owned());
        }
    }
    let patterns = rest
        .iter()
        .map(|p| {
            if p == "**" {
                Ok(None)
            } else {
                glob::Pattern::new(p)
                    .map(Some)
                    .map_err(|e| usage(format!("--log {pattern}: bad glob: {}", e.msg)))
            }
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut files = Vec::new();
    let mut problems = Vec::new();
    descend(&base, &patterns, &mut files, &mut problems);
    files.sort();
    files.dedup();
    problems.sort();
    problems.dedup();
    Ok((base, files, problems))
}

fn descend(
    dir: &Path,
    patterns: &[Option<glob::Pattern>],
    files: &mut Vec<PathBuf>,
    problems: &mut Problems,
) {
    let Some((first, rest)) = patterns.split_first() else {
        return;
    };
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            if e.kind() != std::io::ErrorKind::NotFound {
                problems.push((dir.to_path_buf(), read_error(&e)));
            }
            return;
        }
    };
    let options = glob::MatchOptions {
        case_sensitive: true,
        require_literal_separator: true,
        require_literal_leading_dot: true,
    };
    let mut entries: Vec<_> = entries.filter_map(Result::ok).collect();
    entries.sort_by_key(fs::DirEntry::file_name);
    let Some(pattern) = first else {
        // `**`: this directory, and every directory below it.
        descend(dir, rest, files, problems);
        for entry in entries {
            let name = entry.file_name();
            if entry.file_type().is_ok_and(|t| t.is_dir())
                && !name.to_string_lossy().starts_with('.')
            {
                descend(&entry.path(), patterns, files, problems);
            }
        }
        return;
    };
    for entry in entries {
        let name = entry.file_name();
        let lossy = name.to_string_lossy();
        if !pattern.matches_with(&lossy, options) {
            continue;
        }
        let path = entry.path();
        if name.to_str().is_none() {
            problems.push((path, "the name is not UTF-8".to_owned()));
            continue;
        }
        let Ok(meta) = fs::metadata(&path) else {
            continue;
        };
        if !rest.is_empty() {
            if meta.is_dir() {
                descend(&path, rest, files, problems);
            }
        } else if meta.is_file() {
            files.push(path);
        } else if !meta.is_dir() {
            problems.push((path, kind_of(meta.file_type()).to_owned()));
        }
    }
}

fn read_capped(path: &Path, max: u64) -> std::io::Result<Vec<u8>> {
    let file = File::open(path)?;
    let mut bytes = Vec::new();
    file.take(max).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// How much is read before a tail's cut, so that the redaction rules see
/// the whole line the cut splits (a key name before it, the value after)
/// and a private key block whose header the cut would leave out.
pub const TAIL_CONTEXT: u64 = 64 << 10;

/// The end of a file or stream, ready for redaction: `bytes` start at a
/// line boundary (or at the very start of the source), and only the part
/// from `keep_from` goes into the bundle; what comes before is context the
/// rules see but nobody keeps.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tail {
    pub bytes: Vec<u8>,
    pub keep_from: usize,
    /// The source was longer than what is kept.
    pub cut: bool,
    /// The tail was all one line whose start lies beyond the context read:
    /// it is left out, since no rule could see it whole.
    pub left_out: bool,
}

impl Tail {
    /// A tail from `window`, the last bytes of a source, whose nominal cut
    /// (the last `tail` bytes) starts at `cut`; `at_start` when the window
    /// holds the source from its first byte. The kept part starts at the
    /// first line boundary after the cut; a tail that is all one line is
    /// kept from the cut when its line starts inside the window (the rules
    /// see all of it), and left out when it does not.
    pub fn from_window(window: Vec<u8>, cut: usize, at_start: bool) -> Self {
        let cut = cut.min(window.len());
        if cut == 0 && at_start {
            return Self {
                bytes: window,
                keep_from: 0,
                cut: false,
                left_out: false,
            };
        }
        let len = window.len();
        let line_start = if at_start {
            Some(0)
        } else {
            window[..cut]
                .iter()
                .position(|&b| b == b'\n')
                .map(|i| i + 1)
        };
        let mut left_out = false;
        let keep_from = if cut > 0 && window[cut - 1] == b'\n' {
            cut
        } else {
            match window[cut..].iter().position(|&b| b == b'\n') {
                Some(i) if cut + i + 1 < len => cut + i + 1,
                _ if line_start.is_some() => cut,
                _ => {
                    left_out = cut < len;
                    len
                }
            }
        };
        let base = line_start.unwrap_or(keep_from).min(keep_from);
        let mut bytes = window;
        bytes.drain(..base);
        Self {
            bytes,
            keep_from: keep_from - base,
            cut: true,
            left_out,
        }
    }

    /// The kept part, unredacted (for tool versions, never for a bundle).
    pub fn kept(&self) -> &[u8] {
        &self.bytes[self.keep_from.min(self.bytes.len())..]
    }

    /// The kept part, redacted with the context before it in view. A tail
    /// whose one line was too long to see whole says so instead.
    pub fn redact(&self, redactor: &mut Redactor, origin: &str) -> Vec<u8> {
        if self.left_out {
            return b"[bugpack: left out the last line, longer than the tail kept and the context read before it]\n".to_vec();
        }
        redactor.redact_from(origin, &self.bytes, self.keep_from)
    }
}

/// The last `tail` bytes of a file (see [`Tail`]). Only the end is read.
pub fn read_tail(path: &Path, tail: u64) -> anyhow::Result<Tail> {
    File::open(path)
        .and_then(|f| read_tail_of(f, tail))
        .with_context(|| format!("cannot read {}", path.display()))
}

fn read_tail_of(mut file: File, tail: u64) -> std::io::Result<Tail> {
    let len = file.seek(SeekFrom::End(0))?;
    let start = len.saturating_sub(tail.saturating_add(TAIL_CONTEXT));
    file.seek(SeekFrom::Start(start))?;
    let mut window = Vec::with_capacity(usize::try_from(len - start).unwrap_or(0));
    file.take(len - start).read_to_end(&mut window)?;
    let cut = usize::try_from((window.len() as u64).saturating_sub(tail)).unwrap_or(0);
    Ok(Tail::from_window(window, cut, start == 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tails_start_at_a_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.log");
        fs::write(&p, "first line\nsecond line\nthird\n").unwrap();
        assert_eq!(
            read_tail(&p, 1000).unwrap().kept(),
            b"first line\nsecond line\nthird\n"
        );
        let t = read_tail(&p, 10).unwrap();
        assert_eq!(t.kept(), b"third\n");
        // The rules see the line the cut splits.
        assert_eq!(t.bytes, b"first line\nsecond line\nthird\n");
        assert_eq!(read_tail(&p, 0).unwrap().kept(), b"");
    }

    #[test]
    fn a_window_starts_at_a_line_and_keeps_whole_lines() {
        // Mid-line window start: context begins after the first newline.
        let t = Tail::from_window(b"xx\nkey=secret\nnext\n".to_vec(), 6, false);
        assert_eq!(t.bytes, b"key=secret\nnext\n");
        assert_eq!(t.kept(), b"next\n");
        // One line longer than the tail, its start in view: cut mid-line.
        let t = Tail::from_window(b"a\nkey=secret-value-here".to_vec(), 8, false);
        assert_eq!(t.bytes, b"key=secret-value-here");
        assert_eq!(t.kept(), b"cret-value-here");
        // One line longer than tail and context: nothing kept.
        let t = Tail::from_window(b"key=secret-value-here".to_vec(), 8, false);
        assert!(t.kept().is_empty());
        let mut r = Redactor::new(&[], std::iter::empty()).unwrap();
        assert!(
            String::from_utf8(t.redact(&mut r, "t"))
                .unwrap()
                .contains("left out")
        );
        // A cut exactly at a line boundary keeps the line after it.
        let t = Tail::from_window(b"one\ntwo\n".to_vec(), 4, true);
        assert_eq!(t.kept(), b"two\n");
    }

    #[test]
    fn a_sparse_ten_gigabyte_log_reads_only_its_tail() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("huge.log");
        let f = File::create(&p).unwrap();
        f.set_len(10 << 30).unwrap();
        drop(f);
        let mut f = fs::OpenOptions::new().append(true).open(&p).unwrap();
        std::io::Write::write_all(&mut f, b"\nthe end\n").unwrap();
        let tail = read_tail(&p, 4096).unwrap();
        assert!(tail.bytes.len() as u64 <= 4096 + TAIL_CONTEXT);
        assert!(tail.kept().ends_with(b"the end\n"));
    }

    #[test]
    fn normalize_is_lexical() {
        assert_eq!(normalize(Path::new("/a/./b/../c")), PathBuf::from("/a/c"));
    }
}
