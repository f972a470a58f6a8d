//! Files the user names: configuration (`config/`), log tails (`logs/`) and
//! the files a scenario needs (`scenario/`).
//!
//! Every byte goes through the redactor and is staged, redacted, in a
//! temporary directory before the writer packs it; nothing unredacted is
//! ever handed to the writer. Logs are read from their end: a 10 GB log
//! costs the same as a 1 MB one. Paths keep their layout relative to the
//! current directory (absolute ones outside it keep their absolute layout).

use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Component, Path, PathBuf};

use anyhow::Context as _;

use crate::bundle::BundleWriter;
use crate::error::usage;
use crate::redact::Redactor;

/// The largest configuration file packed whole.
pub const MAX_CONFIG_FILE: u64 = 1 << 20;
/// The most configuration bytes packed in all.
pub const MAX_CONFIG_TOTAL: u64 = 32 << 20;
/// The largest file `--include` packs.
pub const MAX_INCLUDE_FILE: u64 = 64 << 20;
/// The default tail kept of each log.
pub const DEFAULT_LOG_BYTES: u64 = 1 << 20;

/// A file placed in the bundle, for the capture summary and `--dry-run`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placed {
    pub entry: String,
    pub source: PathBuf,
    /// Bytes of the source file.
    pub source_bytes: u64,
    /// Bytes kept (a log's tail).
    pub kept_bytes: u64,
    /// The redacted copy the writer packs.
    pub staged: PathBuf,
}

/// Stages redacted copies and adds them to a writer.
#[derive(Debug)]
pub struct Packer<'a> {
    pub cwd: &'a Path,
    pub staging: &'a Path,
    pub writer: &'a mut BundleWriter,
    pub redactor: &'a mut Redactor,
    pub placed: Vec<Placed>,
    pub skipped: Vec<String>,
    next_id: usize,
    config_total: u64,
}

impl<'a> Packer<'a> {
    pub fn new(
        cwd: &'a Path,
        staging: &'a Path,
        writer: &'a mut BundleWriter,
        redactor: &'a mut Redactor,
    ) -> Self {
        Self {
            cwd,
            staging,
            writer,
            redactor,
            placed: Vec::new(),
            skipped: Vec::new(),
            next_id: 0,
            config_total: 0,
        }
    }

    /// Packs configuration files and directories under `config/`.
    pub fn configs(&mut self, paths: &[PathBuf]) -> anyhow::Result<()> {
        for path in paths {
            let meta = metadata(path, "--config")?;
            if meta.is_dir() {
                for file in walk(path)? {
                    self.config_file(&file)?;
                }
            } else {
                self.config_file(path)?;
            }
        }
        Ok(())
    }

    fn config_file(&mut self, path: &Path) -> anyhow::Result<()> {
        let size = fs::metadata(path)
            .with_context(|| format!("cannot read {}", path.display()))?
            .len();
        if size > MAX_CONFIG_FILE {
            self.skip(format!(
                "{}: {} bytes, over the {} byte limit for a config file",
                path.display(),
                size,
                MAX_CONFIG_FILE
            ));
            return Ok(());
        }
        if self.config_total + size > MAX_CONFIG_TOTAL {
            self.skip(format!(
                "{}: the configuration files pass {} bytes in all",
                path.display(),
                MAX_CONFIG_TOTAL
            ));
            return Ok(());
        }
        self.config_total += size;
        let entry = format!("config/{}", self.layout(path)?);
        let bytes = read_capped(path, MAX_CONFIG_FILE)?;
        self.stage(&entry, path, &bytes, size, false)
    }

    /// Packs the last `tail` bytes of each log, each argument a path or a glob.
    pub fn logs(&mut self, patterns: &[String], tail: u64) -> anyhow::Result<()> {
        for pattern in patterns {
            for path in expand(pattern, self.cwd)? {
                let meta = metadata(&path, "--log")?;
                if meta.is_dir() {
                    return Err(usage(format!(
                        "--log {}: is a directory; pass a file or a glob such as {}/*.log",
                        path.display(),
                        path.display()
                    )));
                }
                let entry = format!("logs/{}", self.layout(&path)?);
                let bytes = read_tail(&path, tail)?;
                self.stage(&entry, &path, &bytes, meta.len(), false)?;
            }
        }
        Ok(())
    }

    /// Packs files and directories the scenario needs under `scenario/`.
    pub fn includes(&mut self, paths: &[PathBuf]) -> anyhow::Result<()> {
        for path in paths {
            let meta = metadata(path, "--include")?;
            let files = if meta.is_dir() {
                walk(path)?
            } else {
                vec![path.clone()]
            };
            for file in files {
                let meta = fs::metadata(&file)
                    .with_context(|| format!("cannot read {}", file.display()))?;
                if meta.len() > MAX_INCLUDE_FILE {
                    return Err(usage(format!(
                        "--include {}: {} bytes, over the {} byte limit; include something smaller",
                        file.display(),
                        meta.len(),
                        MAX_INCLUDE_FILE
                    )));
                }
                let entry = format!("scenario/{}", self.layout(&file)?);
                if entry == crate::bundle::SCENARIO_FILE {
                    return Err(usage(format!(
                        "--include {}: would replace the scenario's own scenario.yaml; use --scenario DIR to pack a scenario",
                        file.display()
                    )));
                }
                let bytes = read_capped(&file, MAX_INCLUDE_FILE)?;
                let executable = meta.permissions().mode() & 0o111 != 0;
                self.stage(&entry, &file, &bytes, meta.len(), executable)?;
            }
        }
        Ok(())
    }

    /// Packs a whole scenario directory under `scenario/`, its layout kept.
    pub fn scenario_dir(&mut self, dir: &Path) -> anyhow::Result<()> {
        for file in walk(dir)? {
            let rel = file
                .strip_prefix(dir)
                .map_err(|_| anyhow::anyhow!("{} is outside {}", file.display(), dir.display()))?;
            let rel = utf8_path(rel, &file)?;
            let meta =
                fs::metadata(&file).with_context(|| format!("cannot read {}", file.display()))?;
            if meta.len() > MAX_INCLUDE_FILE {
                return Err(usage(format!(
                    "{}: {} bytes, over the {} byte limit for a scenario file",
                    file.display(),
                    meta.len(),
                    MAX_INCLUDE_FILE
                )));
            }
            let bytes = read_capped(&file, MAX_INCLUDE_FILE)?;
            let executable = meta.permissions().mode() & 0o111 != 0;
            self.stage(
                &format!("scenario/{rel}"),
                &file,
                &bytes,
                meta.len(),
                executable,
            )?;
        }
        Ok(())
    }

    /// Redacts `bytes`, stages them, and adds the staged copy to the writer.
    pub fn stage(
        &mut self,
        entry: &str,
        source: &Path,
        bytes: &[u8],
        source_bytes: u64,
        executable: bool,
    ) -> anyhow::Result<()> {
        if self.placed.iter().any(|p| p.entry == entry) {
            self.skip(format!("{}: already packed as {entry}", source.display()));
            return Ok(());
        }
        let redacted = self.redactor.redact(entry, bytes);
        self.next_id += 1;
        let staged = self.staging.join(format!("f{:06}", self.next_id));
        fs::write(&staged, &redacted)
            .with_context(|| format!("cannot stage {}", staged.display()))?;
        self.writer.add_file(entry, &staged, executable)?;
        self.placed.push(Placed {
            entry: entry.to_owned(),
            source: source.to_path_buf(),
            source_bytes,
            kept_bytes: bytes.len() as u64,
            staged,
        });
        Ok(())
    }

    fn skip(&mut self, why: String) {
        tracing::warn!("skipped {why}");
        self.skipped.push(why);
    }

    /// The bundle-relative layout of `path`: relative to the current
    /// directory when inside it, else its absolute path without the root.
    fn layout(&self, path: &Path) -> anyhow::Result<String> {
        let absolute = if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.cwd.join(path)
        };
        let normal = normalize(&absolute);
        let cwd = normalize(self.cwd);
        let rel = normal
            .strip_prefix(&cwd)
            .unwrap_or_else(|_| normal.strip_prefix("/").unwrap_or(&normal));
        utf8_path(rel, path)
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

fn utf8_path(rel: &Path, original: &Path) -> anyhow::Result<String> {
    let text = rel.to_str().ok_or_else(|| {
        usage(format!(
            "{}: the file name is not UTF-8; rename it or leave it out",
            original.to_string_lossy()
        ))
    })?;
    let text = text.trim_start_matches('/').to_owned();
    if text.is_empty() {
        return Err(usage(format!("{}: names no file", original.display())));
    }
    Ok(text)
}

fn metadata(path: &Path, flag: &str) -> anyhow::Result<fs::Metadata> {
    fs::metadata(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => usage(format!(
            "{flag} {}: no such file or directory",
            path.display()
        )),
        std::io::ErrorKind::PermissionDenied => usage(format!(
            "{flag} {}: permission denied; pass a file you can read",
            path.display()
        )),
        _ => anyhow::Error::new(e).context(format!("cannot read {}", path.display())),
    })
}

/// Regular files under `dir`, sorted, not following symlinked directories.
fn walk(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = fs::read_dir(&d).with_context(|| format!("cannot read {}", d.display()))?;
        for entry in entries {
            let entry = entry.with_context(|| format!("cannot read {}", d.display()))?;
            let path = entry.path();
            let kind = entry
                .file_type()
                .with_context(|| format!("cannot read {}", path.display()))?;
            if kind.is_dir() {
                if entry.file_name() != ".git" {
                    stack.push(path);
                }
            } else if kind.is_file() || (kind.is_symlink() && path.is_file()) {
                if path.to_str().is_none() {
                    tracing::warn!("skipped {}: the name is not UTF-8", path.to_string_lossy());
                    continue;
                }
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// A path, or the files a glob matches (relative globs from `cwd`), sorted.
fn expand(pattern: &str, cwd: &Path) -> anyhow::Result<Vec<PathBuf>> {
    if !pattern.contains(['*', '?', '[']) {
        return Ok(vec![PathBuf::from(pattern)]);
    }
    let full = if Path::new(pattern).is_absolute() {
        pattern.to_owned()
    } else {
        format!("{}/{pattern}", cwd.display())
    };
    let paths =
        glob::glob(&full).map_err(|e| usage(format!("--log {pattern}: bad glob: {}", e.msg)))?;
    let mut out: Vec<PathBuf> = paths
        .filter_map(Result::ok)
        .filter(|p| p.is_file())
        .collect();
    if out.is_empty() {
        return Err(usage(format!("--log {pattern}: matches no file")));
    }
    out.sort();
    Ok(out)
}

fn read_capped(path: &Path, max: u64) -> anyhow::Result<Vec<u8>> {
    let file = File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut bytes = Vec::new();
    file.take(max)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read {}", path.display()))?;
    Ok(bytes)
}

/// The last `tail` bytes of a file, starting at a line boundary when the
/// file is longer. Only the tail is read.
pub fn read_tail(path: &Path, tail: u64) -> anyhow::Result<Vec<u8>> {
    let mut file = File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let len = file
        .seek(SeekFrom::End(0))
        .with_context(|| format!("cannot read {}", path.display()))?;
    let start = len.saturating_sub(tail);
    file.seek(SeekFrom::Start(start))
        .with_context(|| format!("cannot read {}", path.display()))?;
    let mut bytes = Vec::with_capacity(usize::try_from(len - start).unwrap_or(0));
    file.take(tail)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read {}", path.display()))?;
    if start > 0 {
        // Drop the partial first line, unless the tail is one long line.
        if let Some(nl) = bytes.iter().position(|&b| b == b'\n')
            && nl + 1 < bytes.len()
        {
            bytes.drain(..=nl);
        }
    }
    Ok(bytes)
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
            read_tail(&p, 1000).unwrap(),
            b"first line\nsecond line\nthird\n"
        );
        assert_eq!(read_tail(&p, 10).unwrap(), b"third\n");
        assert_eq!(read_tail(&p, 0).unwrap(), b"");
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
        assert!(tail.len() <= 4096);
        assert!(tail.ends_with(b"the end\n"));
    }

    #[test]
    fn normalize_is_lexical() {
        assert_eq!(normalize(Path::new("/a/./b/../c")), PathBuf::from("/a/c"));
    }
}
