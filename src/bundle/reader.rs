//! Opening a bundle from a stranger: every rule of DESIGN.md's "Rules for
//! readers" is checked by [`Bundle::open`] before a caller gets a value, and
//! before any byte is written anywhere.
//!
//! Decompression goes through the `zip` crate, but only after [`super::layout`]
//! has vetted the structure, and always through `Read::take` at the declared
//! size. [`Bundle::extract`] writes only into a fresh temporary directory,
//! re-hashing as it goes, and removes it on any failure. This module never
//! calls `ZipArchive::extract`.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use sha2::{Digest, Sha256};
use zip::ZipArchive;

use super::layout::{self, RawEntry, ScanError};
use super::{MANIFEST, Manifest, Rejection, SCENARIO_FILE, SIGNATURE, check_entry_place};
use crate::error::usage;
use crate::partial::Partial;
use crate::scenario::ScenarioFile;
use crate::yaml::MAX_YAML_BYTES;

/// The largest signature file a bundle may carry.
const MAX_SIGNATURE_BYTES: u64 = 64 << 10;
/// Entries smaller than this are not judged by their compression ratio:
/// a few kilobytes cannot be a bomb, and repetitive small files compress well.
const RATIO_FLOOR: u64 = 1 << 20;

/// Limits a reader applies before trusting a bundle (overridable by flags).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most bytes all entries may add up to, decompressed.
    pub max_total: u64,
    /// Most times larger an entry (or the whole bundle) may be decompressed.
    pub max_ratio: u32,
    /// Most entries.
    pub max_entries: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_total: 1 << 30,
            max_ratio: 200,
            max_entries: 10_000,
        }
    }
}

/// A bundle whose structure, manifest, listing and hashes have all been checked.
#[derive(Debug)]
pub struct Bundle {
    path: PathBuf,
    /// What messages call the bundle: its path, or the URL it came from.
    shown: String,
    zip: Entries,
    manifest: Manifest,
    manifest_bytes: Vec<u8>,
    signature: Option<Vec<u8>>,
    signer: Option<crate::sign::Signer>,
    scenario: Option<ScenarioFile>,
    file_size: u64,
    /// Entries a zip tool added that are not part of the bundle.
    ignored: Vec<String>,
    /// For an encrypted bundle: the recipients' fingerprints, and the
    /// private directory the inner bundle was decrypted into (removed with
    /// the bundle).
    encrypted_to: Option<Vec<String>>,
    decrypted: Option<tempfile::TempDir>,
}

impl Bundle {
    /// Opens and checks the bundle at `path`. A missing file is a usage error
    /// (exit 2), a broken rule a [`Rejection`] (exit 3), anything else exit 4.
    pub fn open(path: &Path, limits: &Limits) -> anyhow::Result<Self> {
        Self::open_as(path, &path.display().to_string(), limits)
    }

    /// [`Bundle::open`], naming the bundle `shown` in every message (the
    /// URL a downloaded bundle came from, rather than its cached path).
    pub fn open_as(path: &Path, shown: &str, limits: &Limits) -> anyhow::Result<Self> {
        tracing::info!("reading the bundle {shown}");
        let mut file = match File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(usage(format!(
                    "{shown}: no such file; check the bundle's path"
                )));
            }
            Err(e) => return Err(e).with_context(|| format!("cannot open {shown}")),
        };
        let meta = file
            .metadata()
            .with_context(|| format!("cannot read {shown}"))?;
        if meta.is_dir() {
            return Err(usage(format!(
                "{shown} is a directory, not a bundle (.zip)"
            )));
        }
        let mut bundle = Self::check(path, &mut file, limits).map_err(|e| match e {
            OpenError::Rejected(r) => anyhow::Error::new(r).context(format!("{shown} rejected")),
            OpenError::Io(e) => anyhow::Error::new(e).context(format!("cannot read {shown}")),
            OpenError::Other(e) => e,
        })?;
        shown.clone_into(&mut bundle.shown);
        if let Some(note) = bundle.ignored_note() {
            tracing::warn!("{shown}: {note}");
        }
        tracing::debug!(
            "{shown}: {} bytes, {} listed files; its layout, sizes, hashes and manifest pass every check",
            meta.len(),
            bundle.manifest.files.len()
        );
        Ok(bundle)
    }

    fn check(path: &Path, file: &mut File, limits: &Limits) -> Result<Self, OpenError> {
        Self::check_layer(path, file, limits, true)
    }

    /// The checks of one bundle; with `outer`, an encrypted bundle is
    /// decrypted and its inner bundle checked (which may not be encrypted
    /// again).
    fn check_layer(
        path: &Path,
        file: &mut File,
        limits: &Limits,
        outer: bool,
    ) -> Result<Self, OpenError> {
        let layout = layout::scan(file, limits.max_entries).map_err(|e| match e {
            ScanError::Rejected(r) => OpenError::Rejected(r),
            ScanError::Io(e) => OpenError::Io(e),
        })?;
        check_sizes(&layout.entries, layout.file_size, limits)?;
        for entry in layout.entries.iter().filter(|e| e.ignored.is_none()) {
            check_entry_place(&entry.name).map_err(|why| Rejection::UnsafePath {
                entry: entry.name.clone(),
                why,
            })?;
        }
        // Directory entries are never part of a bundle; macOS metadata is
        // only when the manifest lists it (a captured file named `._x`).
        let by_name: HashMap<String, usize> = layout
            .entries
            .iter()
            .enumerate()
            .filter(|(_, e)| e.ignored != Some(layout::DIRECTORY_ENTRY))
            .map(|(i, e)| (e.name.clone(), i))
            .collect();
        if !by_name.contains_key(MANIFEST) {
            return Err(Rejection::ManifestMissing.into());
        }
        let archive =
            ZipArchive::new(file.try_clone()?).map_err(|e| Rejection::NotZip(e.to_string()))?;
        if archive.len() != layout.entries.len() {
            return Err(Rejection::Inconsistent(
                "the zip library sees a different number of entries".into(),
            )
            .into());
        }
        let mut zip = Entries {
            archive,
            entries: layout.entries,
            by_name,
        };
        let manifest_bytes = zip.read_capped(MANIFEST, MAX_YAML_BYTES as u64)?;
        if let Some(sealed) = super::crypt::Outer::detect(&manifest_bytes)? {
            if !outer {
                return Err(Rejection::Inconsistent(
                    "an encrypted bundle inside an encrypted bundle".into(),
                )
                .into());
            }
            return Self::open_sealed(path, zip, &sealed, layout.file_size, limits);
        }
        let manifest = Manifest::parse(&manifest_bytes)?;
        let mut bundle = Self {
            path: path.to_path_buf(),
            shown: path.display().to_string(),
            zip,
            manifest,
            manifest_bytes,
            signature: None,
            signer: None,
            scenario: None,
            file_size: layout.file_size,
            ignored: Vec::new(),
            encrypted_to: None,
            decrypted: None,
        };
        bundle.ignored = bundle
            .zip
            .check_listing(&bundle.manifest.files, &[MANIFEST, SIGNATURE])?;
        if bundle.zip.by_name.contains_key(SIGNATURE) {
            let signature = bundle.zip.read_capped(SIGNATURE, MAX_SIGNATURE_BYTES)?;
            // A signature that does not verify over these manifest bytes is
            // a tampered or forged bundle, whoever the key belongs to.
            let (_, signer) = crate::sign::check(&bundle.manifest_bytes, &signature)
                .map_err(|e| Rejection::Signature(e.to_string()))?;
            bundle.signature = Some(signature);
            bundle.signer = Some(signer);
        }
        let listed: Vec<(String, u64, String)> = bundle
            .manifest
            .files
            .iter()
            .map(|f| (f.path.clone(), f.size, f.sha256.clone()))
            .collect();
        for (name, size, sha256) in &listed {
            bundle
                .zip
                .hash_entry(name, *size, sha256, &mut io::sink())?;
        }
        bundle.check_scenario()?;
        Ok(bundle)
    }

    /// An encrypted bundle: its payload is the only other entry and has the
    /// outer manifest's size and hash; it is decrypted into a private
    /// temporary directory (at most `--max-size` bytes) and the inner bundle
    /// passes every check there.
    fn open_sealed(
        path: &Path,
        mut zip: Entries,
        sealed: &super::crypt::Outer,
        file_size: u64,
        limits: &Limits,
    ) -> Result<Self, OpenError> {
        use super::crypt::PAYLOAD;
        // The outer manifest lists the payload as a bundle's lists its files;
        // what a zip tool added to the outer zip stays out of it.
        zip.check_listing(std::slice::from_ref(&sealed.payload), &[MANIFEST])?;
        let dir = tempfile::Builder::new()
            .prefix("bugpack-decrypted-")
            .tempdir()?;
        let ciphertext = dir.path().join("bundle.age");
        {
            let mut out = io::BufWriter::new(File::create(&ciphertext)?);
            zip.hash_entry(
                PAYLOAD,
                sealed.payload.size,
                &sealed.payload.sha256,
                &mut out,
            )?;
            out.flush()?;
        }
        let plain = dir.path().join("bundle.zip");
        super::crypt::decrypt(sealed, &ciphertext, &plain, limits.max_total).map_err(|e| {
            match e.downcast::<Rejection>() {
                Ok(r) => OpenError::Rejected(r),
                Err(e) => OpenError::Other(e),
            }
        })?;
        std::fs::remove_file(&ciphertext).ok();
        let mut file = File::open(&plain)?;
        let mut inner = Self::check_layer(&plain, &mut file, limits, false)?;
        if inner.manifest.id != sealed.id {
            return Err(Rejection::Inconsistent(format!(
                "the outer manifest names bundle {}, the encrypted one is {}",
                sealed.id, inner.manifest.id
            ))
            .into());
        }
        inner.path = path.to_path_buf();
        inner.file_size = file_size;
        inner.encrypted_to = Some(sealed.recipients.clone());
        inner.decrypted = Some(dir);
        Ok(inner)
    }

    /// For an encrypted bundle, the fingerprints of the keys it is encrypted to.
    pub fn encrypted_to(&self) -> Option<&[String]> {
        self.encrypted_to.as_deref()
    }

    fn check_scenario(&mut self) -> Result<(), OpenError> {
        let present = self.zip.by_name.contains_key(SCENARIO_FILE);
        let listed = self.manifest.scenario.as_ref().map(|s| s.name.clone());
        match (listed, present) {
            (None, false) => Ok(()),
            (None, true) => Err(Rejection::ScenarioUnlisted.into()),
            (Some(_), false) => Err(Rejection::ScenarioMissing.into()),
            (Some(listed), true) => {
                let bytes = self.zip.read_capped(SCENARIO_FILE, MAX_YAML_BYTES as u64)?;
                let file = ScenarioFile::parse(&bytes)
                    .and_then(|f| f.resolve().map(|_| f))
                    .map_err(|why| Rejection::Schema {
                        file: SCENARIO_FILE.to_owned(),
                        why: why.to_string(),
                    })?;
                if file.name != listed {
                    return Err(Rejection::ScenarioMismatch {
                        listed,
                        found: file.name,
                    }
                    .into());
                }
                self.scenario = Some(file);
                Ok(())
            }
        }
    }

    /// The bundle's path as given.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The checked manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The manifest's exact bytes, which a signature covers.
    pub fn manifest_bytes(&self) -> &[u8] {
        &self.manifest_bytes
    }

    /// The armored signature, when the bundle carries one: it verifies over
    /// the manifest, but whose key made it is the caller's question.
    pub fn signature(&self) -> Option<&[u8]> {
        self.signature.as_deref()
    }

    /// The key that made the signature, when the bundle carries one: not
    /// yet checked against any key the caller trusts.
    pub fn signer(&self) -> Option<&crate::sign::Signer> {
        self.signer.as_ref()
    }

    /// The bundle's scenario, checked against its schema.
    pub fn scenario(&self) -> Option<&ScenarioFile> {
        self.scenario.as_ref()
    }

    /// The zip's entries, in central-directory order.
    pub fn entries(&self) -> &[RawEntry] {
        &self.zip.entries
    }

    /// Entries a zip tool added (directory entries, macOS metadata) that the
    /// manifest does not list: not part of the bundle, never extracted.
    pub fn ignored(&self) -> &[String] {
        &self.ignored
    }

    /// "ignored 3 directory entries and 12 macOS metadata files that a zip
    /// tool added", or `None` when there were none.
    fn ignored_note(&self) -> Option<String> {
        let count = |kind: &str| {
            self.zip
                .entries
                .iter()
                .filter(|e| e.ignored == Some(kind) && self.ignored.contains(&e.name))
                .count()
        };
        let dirs = count(layout::DIRECTORY_ENTRY);
        let macos = count(layout::MACOS_METADATA);
        let mut parts = Vec::new();
        match dirs {
            0 => {}
            1 => parts.push("1 directory entry".to_owned()),
            n => parts.push(format!("{n} directory entries")),
        }
        match macos {
            0 => {}
            1 => parts.push("1 macOS metadata file".to_owned()),
            n => parts.push(format!("{n} macOS metadata files")),
        }
        (!parts.is_empty()).then(|| {
            format!(
                "ignored {} that a zip tool added; they are not part of the bundle",
                parts.join(" and ")
            )
        })
    }

    /// The bundle file's size in bytes.
    pub fn file_size(&self) -> u64 {
        self.file_size
    }

    /// Reads a listed entry of at most `max` bytes, re-checking its hash.
    pub fn read(&mut self, name: &str, max: u64) -> anyhow::Result<Vec<u8>> {
        let listed = self
            .manifest
            .file(name)
            .cloned()
            .ok_or_else(|| Rejection::Missing {
                entry: name.to_owned(),
            })?;
        if listed.size > max {
            anyhow::bail!(
                "{name} is {} bytes, more than the {max} bytes bugpack reads of it",
                listed.size
            );
        }
        let mut bytes = Vec::with_capacity(usize::try_from(listed.size).unwrap_or(0));
        self.zip
            .hash_entry(name, listed.size, &listed.sha256, &mut bytes)
            .map_err(|e| self.describe(e))?;
        Ok(bytes)
    }

    /// A listed YAML entry parsed with the untrusted-YAML rules, as JSON;
    /// `None` when the bundle has no such entry. One over
    /// [`MAX_YAML_BYTES`] or that does not parse rejects the bundle.
    pub fn read_yaml(&mut self, name: &str) -> anyhow::Result<Option<serde_json::Value>> {
        let Some(listed) = self.manifest.file(name).cloned() else {
            return Ok(None);
        };
        let rejected = |why, shown: &str| {
            anyhow::Error::new(Rejection::Yaml {
                file: name.to_owned(),
                why,
            })
            .context(format!("{shown} rejected"))
        };
        let max = u64::try_from(MAX_YAML_BYTES).unwrap_or(u64::MAX);
        if listed.size > max {
            let size = usize::try_from(listed.size).unwrap_or(usize::MAX);
            let why = crate::yaml::YamlError::TooLarge {
                size,
                max: MAX_YAML_BYTES,
            };
            return Err(rejected(why, &self.shown));
        }
        let bytes = self.read(name, max)?;
        crate::yaml::to_json(&bytes)
            .map(Some)
            .map_err(|why| rejected(why, &self.shown))
    }

    /// A listed YAML entry of type `T`, with the untrusted-YAML rules of
    /// [`Bundle::read_yaml`]; `None` when the bundle has no such entry. One
    /// that is not of the type's shape rejects the bundle too.
    pub fn read_typed<T: serde::de::DeserializeOwned>(
        &mut self,
        name: &str,
    ) -> anyhow::Result<Option<T>> {
        let Some(value) = self.read_yaml(name)? else {
            return Ok(None);
        };
        crate::yaml::from_json(value).map(Some).map_err(|why| {
            anyhow::Error::new(Rejection::Yaml {
                file: name.to_owned(),
                why,
            })
            .context(format!("{} rejected", self.shown))
        })
    }

    /// Extracts the listed entries for which `wanted` says yes into a fresh
    /// temporary directory, re-hashing each as it is written. On any failure
    /// the directory is removed. Files are 0644, or 0755 when the entry says so.
    /// The directory is a [`Partial`] in TMPDIR: what a killed bugpack left
    /// there is swept first.
    pub fn extract(&mut self, wanted: impl Fn(&str) -> bool) -> anyhow::Result<Partial> {
        let dir = Partial::fresh(&std::env::temp_dir(), crate::partial::EXTRACT_PREFIX)
            .context("cannot create a temporary directory to extract the bundle into")?;
        let listed: Vec<_> = self
            .manifest
            .files
            .iter()
            .filter(|f| wanted(&f.path))
            .cloned()
            .collect();
        let count = listed.len();
        for f in listed {
            let target = dir.path().join(&f.path);
            if let Some(parent) = target.parent() {
                fs::create_dir_all(parent)
                    .with_context(|| format!("cannot create {}", parent.display()))?;
            }
            let executable = self
                .zip
                .by_name
                .get(&f.path)
                .is_some_and(|&i| self.zip.entries[i].executable);
            let mut out = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(if executable { 0o755 } else { 0o644 })
                .open(&target)
                .with_context(|| format!("cannot create {}", target.display()))?;
            self.zip
                .hash_entry(&f.path, f.size, &f.sha256, &mut out)
                .map_err(|e| self.describe(e))?;
            tracing::trace!("extracted {} ({} bytes)", f.path, f.size);
        }
        tracing::debug!(
            "extracted {} of {}'s entries into {}",
            count,
            self.path.display(),
            dir.path().display()
        );
        Ok(dir)
    }

    /// The SHA-256 of the whole bundle file, as a user would compute it with `sha256sum`.
    pub fn file_sha256(&self) -> anyhow::Result<String> {
        sha256_file(&self.path)
    }

    fn describe(&self, e: OpenError) -> anyhow::Error {
        let shown = &self.shown;
        match e {
            OpenError::Rejected(r) => anyhow::Error::new(r).context(format!("{shown} rejected")),
            OpenError::Io(e) => anyhow::Error::new(e).context(format!("cannot read {shown}")),
            OpenError::Other(e) => e,
        }
    }
}

/// The zip's entries, vetted by [`layout::scan`], and the reads over them.
#[derive(Debug)]
struct Entries {
    archive: ZipArchive<File>,
    entries: Vec<RawEntry>,
    by_name: HashMap<String, usize>,
}

impl Entries {
    /// Streams entry `name` into `out`, checking its size and SHA-256 against
    /// the manifest; reads at most one byte past the declared size.
    /// Every entry but `own` (the manifest and signature) is in `files` or
    /// one a zip tool added, every file listed exists, once, with the size
    /// the zip declares. Returns the names of the entries a tool added.
    fn check_listing(
        &self,
        files: &[super::FileEntry],
        own: &[&str],
    ) -> Result<Vec<String>, Rejection> {
        let mut listed: HashMap<&str, u64> = HashMap::with_capacity(files.len());
        for f in files {
            if listed.insert(&f.path, f.size).is_some() {
                return Err(Rejection::ListedTwice {
                    entry: f.path.clone(),
                });
            }
            let Some(&index) = self.by_name.get(&f.path) else {
                return Err(Rejection::Missing {
                    entry: f.path.clone(),
                });
            };
            let actual = self.entries[index].size;
            if actual != f.size {
                return Err(Rejection::SizeMismatch {
                    entry: f.path.clone(),
                    listed: f.size,
                    actual,
                });
            }
        }
        let mut ignored = Vec::new();
        for entry in &self.entries {
            let name = entry.name.as_str();
            if own.contains(&name) || listed.contains_key(name) {
                continue;
            }
            if entry.ignored.is_none() {
                return Err(Rejection::Unlisted {
                    entry: entry.name.clone(),
                });
            }
            ignored.push(entry.name.clone());
        }
        Ok(ignored)
    }

    fn hash_entry(
        &mut self,
        name: &str,
        size: u64,
        sha256: &str,
        out: &mut dyn Write,
    ) -> Result<(), OpenError> {
        let index = self.index_of(name)?;
        let mut entry = self
            .archive
            .by_index(index)
            .map_err(|e| Rejection::Corrupt {
                entry: name.to_owned(),
                why: e.to_string(),
            })?;
        let mut hasher = Sha256::new();
        let mut limited = (&mut entry).take(size + 1);
        let mut buf = vec![0u8; 64 << 10];
        let mut total = 0u64;
        loop {
            let n = match limited.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(Rejection::Corrupt {
                        entry: name.to_owned(),
                        why: e.to_string(),
                    }
                    .into());
                }
            };
            total += n as u64;
            if total > size {
                return Err(Rejection::SizeMismatch {
                    entry: name.to_owned(),
                    listed: size,
                    actual: total,
                }
                .into());
            }
            hasher.update(&buf[..n]);
            out.write_all(&buf[..n])?;
        }
        if total != size {
            return Err(Rejection::SizeMismatch {
                entry: name.to_owned(),
                listed: size,
                actual: total,
            }
            .into());
        }
        if hex::encode(hasher.finalize()) != sha256 {
            return Err(Rejection::HashMismatch {
                entry: name.to_owned(),
            }
            .into());
        }
        Ok(())
    }

    /// Reads an entry that the manifest cannot list (the manifest itself, the
    /// signature) or that must be small, refusing more than `max` bytes.
    fn read_capped(&mut self, name: &str, max: u64) -> Result<Vec<u8>, OpenError> {
        let index = self.index_of(name)?;
        let declared = self.entries[index].size;
        if declared > max && name == SIGNATURE {
            return Err(Rejection::Unsupported {
                entry: name.to_owned(),
                why: format!("{declared} bytes, over the {max} bytes a signature may take"),
            }
            .into());
        }
        if declared > max {
            return Err(Rejection::Yaml {
                file: name.to_owned(),
                why: crate::yaml::YamlError::TooLarge {
                    size: usize::try_from(declared).unwrap_or(usize::MAX),
                    max: usize::try_from(max).unwrap_or(usize::MAX),
                },
            }
            .into());
        }
        let mut entry = self
            .archive
            .by_index(index)
            .map_err(|e| Rejection::Corrupt {
                entry: name.to_owned(),
                why: e.to_string(),
            })?;
        let mut bytes = Vec::with_capacity(usize::try_from(declared).unwrap_or(0));
        (&mut entry)
            .take(declared + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| Rejection::Corrupt {
                entry: name.to_owned(),
                why: e.to_string(),
            })?;
        if bytes.len() as u64 != declared {
            return Err(Rejection::Corrupt {
                entry: name.to_owned(),
                why: "its data does not match its declared size".into(),
            }
            .into());
        }
        Ok(bytes)
    }

    fn index_of(&self, name: &str) -> Result<usize, Rejection> {
        let index = *self.by_name.get(name).ok_or_else(|| Rejection::Missing {
            entry: name.to_owned(),
        })?;
        // The zip library indexes the same central directory; make sure.
        match self.archive.name_for_index(index) {
            Some(Ok(n)) if n == self.entries[index].zip_name() => Ok(index),
            _ => Err(Rejection::Inconsistent(format!(
                "the zip library disagrees about entry {name:?}"
            ))),
        }
    }
}

/// The SHA-256 of a file's bytes, streamed.
pub fn sha256_file(path: &Path) -> anyhow::Result<String> {
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let (_, digest) =
        sha256_stream(file).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(digest)
}

/// Size and hex SHA-256 of everything `reader` yields.
pub fn sha256_stream(mut reader: impl Read) -> io::Result<(u64, String)> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 << 10];
    let mut total = 0u64;
    loop {
        match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                hasher.update(&buf[..n]);
                total += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok((total, hex::encode(hasher.finalize())))
}

/// Total size and compression ratios, from the declared sizes, before any
/// decompression (the declared sizes are then enforced while reading).
fn check_sizes(entries: &[RawEntry], file_size: u64, limits: &Limits) -> Result<(), Rejection> {
    let mut total = 0u64;
    for entry in entries {
        total = total.saturating_add(entry.size);
        if total > limits.max_total {
            return Err(Rejection::TooLarge {
                total,
                max: limits.max_total,
            });
        }
        if entry.size >= RATIO_FLOOR && entry.ratio() > u64::from(limits.max_ratio) {
            return Err(Rejection::Ratio {
                entry: entry.name.clone(),
                ratio: entry.ratio(),
                max: limits.max_ratio,
            });
        }
    }
    let ratio = total / file_size.max(1);
    if total >= RATIO_FLOOR && ratio > u64::from(limits.max_ratio) {
        return Err(Rejection::TotalRatio {
            ratio,
            max: limits.max_ratio,
        });
    }
    Ok(())
}

/// Whether a set of entries passes the size and ratio limits; the writer
/// uses this to decide which entries must be stored rather than deflated.
pub(crate) fn ratio_offenders(entries: &[RawEntry], file_size: u64, max_ratio: u32) -> Vec<String> {
    let mut offenders: Vec<String> = entries
        .iter()
        .filter(|e| e.size >= RATIO_FLOOR && e.ratio() > u64::from(max_ratio))
        .map(|e| e.name.clone())
        .collect();
    let total: u64 = entries.iter().map(|e| e.size).sum();
    if offenders.is_empty()
        && total >= RATIO_FLOOR
        && total / file_size.max(1) > u64::from(max_ratio)
        && let Some(worst) = entries
            .iter()
            .filter(|e| e.method == layout::DEFLATED)
            .max_by_key(|e| e.ratio())
    {
        offenders.push(worst.name.clone());
    }
    offenders
}

#[derive(Debug)]
enum OpenError {
    Rejected(Rejection),
    Io(io::Error),
    /// A failure with its own message and kind (a bad `--identity`).
    Other(anyhow::Error),
}

impl From<Rejection> for OpenError {
    fn from(r: Rejection) -> Self {
        Self::Rejected(r)
    }
}

impl From<io::Error> for OpenError {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}
