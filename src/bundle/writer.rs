//! Writing bundles that every reader rule accepts, reproducibly.
//!
//! Entries are sorted by path after the manifest (always first) and its
//! signature; every entry has the DOS epoch as its time, mode 0644 or 0755,
//! no extra fields. The same inputs therefore give the same bytes. The zip
//! is written in a private directory beside the output and renamed into
//! place, so an interrupted capture or sign never leaves a partial bundle
//! at the output path, and a killed one leaves a directory named for what
//! it is, which the next write to that output removes ([`crate::partial`]).
//! An entry that would compress past the readers' ratio limit is stored
//! instead, so a bugpack bundle never looks like a zip bomb.

use std::collections::{BTreeMap, HashSet};
use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Seek, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use sha2::{Digest, Sha256};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipWriter};

use crate::partial::Partial;

use super::reader::{Limits, ratio_offenders, sha256_file, sha256_stream};
use super::{
    FORMAT, FileEntry, MANIFEST, Manifest, SIGNATURE, ScenarioRef, check_entry_path,
    check_entry_place, layout,
};

/// Where an entry's bytes come from.
#[derive(Debug, Clone)]
pub enum Content {
    /// Bytes already in memory (small generated files: YAML, Markdown).
    Bytes(Vec<u8>),
    /// A file on disk, streamed (staged copies, included files).
    File(PathBuf),
}

impl Content {
    fn open(&self) -> io::Result<Box<dyn Read + '_>> {
        Ok(match self {
            Self::Bytes(b) => Box::new(b.as_slice()),
            Self::File(p) => Box::new(File::open(p)?),
        })
    }

    fn describe(&self, name: &str) -> String {
        match self {
            Self::Bytes(_) => name.to_owned(),
            Self::File(p) => p.display().to_string(),
        }
    }
}

#[derive(Debug, Clone)]
struct Staged {
    content: Content,
    executable: bool,
}

/// Collects a bundle's entries and writes the bundle.
#[derive(Debug, Clone)]
pub struct BundleWriter {
    title: String,
    created: String,
    scenario: Option<String>,
    redactions: BTreeMap<String, u64>,
    entries: BTreeMap<String, Staged>,
}

/// Turns a manifest's bytes into an armored signature.
pub type Signer<'a> = &'a dyn Fn(&[u8]) -> anyhow::Result<Vec<u8>>;

/// What a write produced.
#[derive(Debug, Clone)]
pub struct Written {
    pub path: PathBuf,
    /// Size of the bundle file.
    pub size: u64,
    /// SHA-256 of the bundle file.
    pub sha256: String,
    pub manifest: Manifest,
}

impl BundleWriter {
    /// A bundle titled `title`, created at `created` (RFC 3339 UTC).
    pub fn new(title: impl Into<String>, created: impl Into<String>) -> Self {
        Self {
            title: title.into(),
            created: created.into(),
            scenario: None,
            redactions: BTreeMap::new(),
            entries: BTreeMap::new(),
        }
    }

    /// Names the scenario packed under `scenario/`.
    pub fn set_scenario(&mut self, name: impl Into<String>) {
        self.scenario = Some(name.into());
    }

    /// Records the redaction counts (per rule) for the manifest.
    pub fn set_redactions(&mut self, counts: BTreeMap<String, u64>) {
        self.redactions = counts;
    }

    /// Adds an entry from memory.
    pub fn add_bytes(&mut self, path: &str, bytes: impl Into<Vec<u8>>) -> anyhow::Result<()> {
        self.add(path, Content::Bytes(bytes.into()), false)
    }

    /// Adds an entry streamed from a file at write time.
    pub fn add_file(&mut self, path: &str, source: &Path, executable: bool) -> anyhow::Result<()> {
        self.add(path, Content::File(source.to_path_buf()), executable)
    }

    fn add(&mut self, path: &str, content: Content, executable: bool) -> anyhow::Result<()> {
        if path == MANIFEST || path == SIGNATURE {
            bail!("{path} is written by bugpack itself");
        }
        check_entry_path(path).map_err(|why| anyhow::anyhow!("cannot pack {path:?}: {why}"))?;
        check_entry_place(path).map_err(|why| anyhow::anyhow!("cannot pack {path:?}: {why}"))?;
        let folded = path.to_lowercase();
        if let Some(other) = self.entries.keys().find(|k| k.to_lowercase() == folded) {
            bail!("cannot pack {path:?}: it collides with {other:?}");
        }
        self.entries.insert(
            path.to_owned(),
            Staged {
                content,
                executable,
            },
        );
        Ok(())
    }

    /// Paths and sizes of the entries, for reports like "the largest entries".
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }

    /// The manifest these entries give (hashing every entry once).
    pub fn manifest(&self) -> anyhow::Result<Manifest> {
        let mut files = Vec::with_capacity(self.entries.len());
        for (path, staged) in &self.entries {
            let reader = staged
                .content
                .open()
                .with_context(|| format!("cannot read {}", staged.content.describe(path)))?;
            let (size, sha256) = sha256_stream(reader)
                .with_context(|| format!("cannot read {}", staged.content.describe(path)))?;
            files.push(FileEntry {
                path: path.clone(),
                size,
                sha256,
            });
        }
        let mut id = Sha256::new();
        id.update(self.created.as_bytes());
        for f in &files {
            id.update(format!("\n{} {} {}", f.path, f.size, f.sha256).as_bytes());
        }
        let id = hex::encode(id.finalize());
        Ok(Manifest {
            format: FORMAT.to_owned(),
            id: id[..32].to_owned(),
            created: self.created.clone(),
            title: self.title.clone(),
            bugpack_version: env!("CARGO_PKG_VERSION").to_owned(),
            scenario: self.scenario.clone().map(|name| ScenarioRef { name }),
            redactions: self.redactions.clone(),
            files,
        })
    }

    /// Writes the bundle to `output`; `sign`, when given, turns the manifest's
    /// bytes into an armored signature stored as `bugpack.yaml.sig`.
    pub fn write(&self, output: &Path, sign: Option<Signer<'_>>) -> anyhow::Result<Written> {
        let (manifest, raw) = self.raw(sign)?;
        let (size, sha256) = raw.write(output)?;
        Ok(Written {
            path: output.to_path_buf(),
            size,
            sha256,
            manifest,
        })
    }

    /// [`BundleWriter::write`] without the rename: writes the bundle at
    /// `path`, in a private directory the caller made (see
    /// [`crate::partial`]), to move it into place with other files.
    pub fn write_to(&self, path: &Path, sign: Option<Signer<'_>>) -> anyhow::Result<Written> {
        let (manifest, raw) = self.raw(sign)?;
        let (size, sha256) = raw.write_to(path)?;
        Ok(Written {
            path: path.to_path_buf(),
            size,
            sha256,
            manifest,
        })
    }

    /// The manifest and the bundle to lay down, signed by `sign` if given.
    fn raw(&self, sign: Option<Signer<'_>>) -> anyhow::Result<(Manifest, RawBundle)> {
        let manifest = self.manifest()?;
        let manifest_bytes = manifest
            .to_yaml()
            .context("cannot serialise the manifest")?;
        // The same checks a reader makes, so that we never write a bundle we would reject.
        super::Manifest::parse(&manifest_bytes)
            .map_err(|e| anyhow::anyhow!("bugpack made an invalid manifest: {e}"))?;
        let signature = sign.map(|f| f(&manifest_bytes)).transpose()?;
        let raw = RawBundle {
            manifest_bytes,
            signature,
            files: manifest
                .files
                .iter()
                .map(|f| {
                    let staged = &self.entries[&f.path];
                    RawFile {
                        path: f.path.clone(),
                        sha256: f.sha256.clone(),
                        content: staged.content.clone(),
                        executable: staged.executable,
                    }
                })
                .collect(),
        };
        Ok((manifest, raw))
    }
}

/// A bundle as bytes to lay down: a manifest's exact bytes, an optional
/// signature, and the listed files. [`BundleWriter`] makes one; re-signing
/// an existing bundle makes one from its verified entries.
#[derive(Debug, Clone)]
pub struct RawBundle {
    pub manifest_bytes: Vec<u8>,
    pub signature: Option<Vec<u8>>,
    pub files: Vec<RawFile>,
}

/// One listed file of a [`RawBundle`].
#[derive(Debug, Clone)]
pub struct RawFile {
    pub path: String,
    /// The SHA-256 the manifest lists; checked again as the bytes are written.
    pub sha256: String,
    pub content: Content,
    pub executable: bool,
}

impl RawBundle {
    /// Writes the zip atomically to `output`; returns its size and SHA-256.
    ///
    /// The zip is made in a private directory beside `output` ([`Partial`])
    /// and renamed into place: an interrupted write leaves nothing at
    /// `output`, and what a killed one left is removed by the next write to
    /// the same output.
    pub fn write(&self, output: &Path) -> anyhow::Result<(u64, String)> {
        let (dir, name) = crate::partial::split_output(output);
        if !dir.is_dir() {
            return Err(crate::error::usage(format!(
                "cannot write {}: the directory {} does not exist; create it or choose another path",
                output.display(),
                dir.display()
            )));
        }
        // The private directory is ours, not the user's: errors name the
        // directory and the output instead.
        let private = Partial::beside(output).map_err(|e| {
            anyhow::anyhow!(
                "cannot write {}: cannot create a directory in {} ({})",
                output.display(),
                dir.display(),
                std::io::Error::from(e.kind())
            )
        })?;
        let staged = private.path().join(name);
        let written = self.write_to(&staged)?;
        fs::rename(&staged, output)
            .with_context(|| format!("cannot write {}", output.display()))?;
        Ok(written)
    }

    /// Writes the zip at `path`, a new name in a directory no one else
    /// writes in (see [`RawBundle::write`]); returns its size and SHA-256.
    pub fn write_to(&self, path: &Path) -> anyhow::Result<(u64, String)> {
        let mut stored = HashSet::new();
        // At most one pass per entry: each pass stores at least one more.
        for _ in 0..=self.files.len() {
            let mut file = File::options()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .open(path)
                .with_context(|| format!("cannot write {}", path.display()))?;
            self.write_zip(&mut file, &stored)
                .with_context(|| format!("cannot write {}", path.display()))?;
            let scanned = layout::scan(&mut file, u64::MAX)
                .map_err(|e| anyhow::anyhow!("bugpack wrote a zip it cannot read back: {e}"))?;
            let offenders = ratio_offenders(
                &scanned.entries,
                scanned.file_size,
                Limits::default().max_ratio,
            );
            if !offenders.is_empty() {
                stored.extend(offenders);
                continue;
            }
            file.sync_all()
                .with_context(|| format!("cannot write {}", path.display()))?;
            fs::set_permissions(path, fs::Permissions::from_mode(0o644))
                .with_context(|| format!("cannot set permissions on {}", path.display()))?;
            let sha256 = sha256_file(path)?;
            return Ok((scanned.file_size, sha256));
        }
        bail!(
            "cannot lay out {} within the readers' compression limits",
            path.display()
        )
    }

    fn write_zip(&self, file: &mut File, stored: &HashSet<String>) -> anyhow::Result<()> {
        let mut zip = ZipWriter::new(BufWriter::new(file));
        let base = SimpleFileOptions::default()
            .last_modified_time(DateTime::default())
            .large_file(false);
        let deflated = base
            .compression_method(CompressionMethod::Deflated)
            .compression_level(Some(6));
        let plain = base.compression_method(CompressionMethod::Stored);
        let pick = |name: &str, executable: bool| {
            let opts = if stored.contains(name) {
                plain
            } else {
                deflated
            };
            opts.unix_permissions(if executable { 0o755 } else { 0o644 })
        };

        zip.start_file(MANIFEST, pick(MANIFEST, false))?;
        zip.write_all(&self.manifest_bytes)?;
        if let Some(sig) = &self.signature {
            zip.start_file(SIGNATURE, pick(SIGNATURE, false))?;
            zip.write_all(sig)?;
        }
        let mut files: Vec<&RawFile> = self.files.iter().collect();
        files.sort_by(|a, b| a.path.cmp(&b.path));
        for f in files {
            zip.start_file(f.path.as_str(), pick(&f.path, f.executable))?;
            let reader = f
                .content
                .open()
                .with_context(|| format!("cannot read {}", f.content.describe(&f.path)))?;
            let mut hashing = HashingReader::new(reader);
            io::copy(&mut hashing, &mut zip)
                .with_context(|| format!("cannot read {}", f.content.describe(&f.path)))?;
            if hashing.hex() != f.sha256 {
                bail!(
                    "{} changed while the bundle was being written; capture again",
                    f.content.describe(&f.path)
                );
            }
        }
        let mut out = zip.finish()?;
        out.flush()?;
        let file = out.into_inner().map_err(io::IntoInnerError::into_error)?;
        file.rewind()?;
        Ok(())
    }
}

/// Hashes what passes through it.
struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
}

impl<R: Read> HashingReader<R> {
    fn new(inner: R) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
        }
    }

    fn hex(self) -> String {
        hex::encode(self.hasher.finalize())
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle::{Bundle, Limits};

    const CREATED: &str = "2026-11-22T10:00:00Z";

    fn sample(dir: &Path) -> BundleWriter {
        let mut w = BundleWriter::new("demo", CREATED);
        w.add_bytes("steps.md", "1. run\n").unwrap();
        w.add_bytes("scenario/scenario.yaml", "name: demo\nrun: sh go.sh\n")
            .unwrap();
        let script = dir.join("go.sh");
        fs::write(&script, "echo hi\n").unwrap();
        w.add_file("scenario/go.sh", &script, true).unwrap();
        w.set_scenario("demo");
        w
    }

    #[test]
    fn what_it_writes_the_reader_accepts_and_extracts() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("b.zip");
        let written = sample(dir.path()).write(&out, None).unwrap();
        assert_eq!(written.size, fs::metadata(&out).unwrap().len());
        let mut bundle = Bundle::open(&out, &Limits::default()).unwrap();
        assert_eq!(bundle.manifest(), &written.manifest);
        assert_eq!(bundle.scenario().unwrap().run, "sh go.sh");
        let x = bundle.extract(|p| p.starts_with("scenario/")).unwrap();
        let script = x.path().join("scenario/go.sh");
        assert_eq!(fs::read_to_string(&script).unwrap(), "echo hi\n");
        assert_eq!(
            fs::metadata(&script).unwrap().permissions().mode() & 0o777,
            0o755
        );
        assert!(!x.path().join("steps.md").exists());
        // Nothing but the bundle beside the output: the temporary file is gone.
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }

    #[test]
    fn same_inputs_same_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.zip");
        let b = dir.path().join("b.zip");
        sample(dir.path()).write(&a, None).unwrap();
        sample(dir.path()).write(&b, None).unwrap();
        assert_eq!(fs::read(&a).unwrap(), fs::read(&b).unwrap());
    }

    #[test]
    fn the_manifest_comes_first_then_sorted_entries() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("b.zip");
        let sign = |m: &[u8]| Ok(format!("sig over {} bytes\n", m.len()).into_bytes());
        sample(dir.path()).write(&out, Some(&sign)).unwrap();
        let layout = layout::scan(&mut File::open(&out).unwrap(), 100).unwrap();
        let names: Vec<_> = layout.entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(
            names,
            [
                MANIFEST,
                SIGNATURE,
                "scenario/go.sh",
                "scenario/scenario.yaml",
                "steps.md"
            ]
        );
    }

    #[test]
    fn highly_compressible_entries_are_stored_not_bombs() {
        let dir = tempfile::tempdir().unwrap();
        let zeros = dir.path().join("zeros");
        fs::write(&zeros, vec![0u8; 3 << 20]).unwrap();
        let mut w = BundleWriter::new("zeros", CREATED);
        w.add_file("logs/zeros.log", &zeros, false).unwrap();
        let out = dir.path().join("z.zip");
        w.write(&out, None).unwrap();
        let layout = layout::scan(&mut File::open(&out).unwrap(), 100).unwrap();
        let entry = layout
            .entries
            .iter()
            .find(|e| e.name == "logs/zeros.log")
            .unwrap();
        assert_eq!(entry.method, layout::STORED);
        Bundle::open(&out, &Limits::default()).unwrap();
    }

    #[test]
    fn bad_paths_are_refused_at_add_time() {
        let mut w = BundleWriter::new("x", CREATED);
        assert!(w.add_bytes("../x", "").is_err());
        assert!(w.add_bytes("bugpack.yaml", "").is_err());
        assert!(w.add_bytes("random.txt", "").is_err());
        w.add_bytes("logs/a.log", "").unwrap();
        assert!(w.add_bytes("logs/A.log", "").is_err());
    }

    #[test]
    fn a_source_that_changes_midway_is_an_error_not_a_bad_bundle() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("live.log");
        fs::write(&src, "first\n").unwrap();
        let mut w = BundleWriter::new("x", CREATED);
        w.add_file("logs/live.log", &src, false).unwrap();
        let manifest = w.manifest().unwrap();
        fs::write(&src, "second\n").unwrap();
        let raw = RawBundle {
            manifest_bytes: manifest.to_yaml().unwrap(),
            signature: None,
            files: vec![RawFile {
                path: "logs/live.log".into(),
                sha256: manifest.files[0].sha256.clone(),
                content: Content::File(src),
                executable: false,
            }],
        };
        let out = dir.path().join("x.zip");
        let err = raw.write(&out).unwrap_err();
        assert!(format!("{err:#}").contains("changed while"), "{err:#}");
        assert!(!out.exists());
    }
}
