//! The response store behind the `cache` and `rfc` modes: full URL → stored
//! response, in memory, and optionally persisted to a directory so a later
//! proxy process starts warm (replay's `--cache warm`).
//!
//! This module only stores; whether a response may be stored or served is the
//! caller's decision (the two modes differ exactly there). It must never hold
//! a body over [`MAX_CACHED_BODY`], let the bodies in
//! memory grow past [`MEMORY_BUDGET`], or trust a file in the cache
//! directory: a file that does not parse or does not match its key is a miss.
//!
//! Disk I/O is synchronous, on the serving thread: entries are small, the disk
//! is local, and a test proxy is better simple than fast at the tail.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::{self, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use http_cache_semantics::CachePolicy;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use super::MAX_CACHED_BODY;

/// The most body bytes kept in memory at once; the oldest entries go first.
/// With a cache directory they stay on disk and are read back on demand.
pub(crate) const MEMORY_BUDGET: usize = 64 * 1024 * 1024;

/// The file-name suffix of an entry in the cache directory; `clear` removes
/// only these, never anything else a caller keeps there.
const ENTRY_SUFFIX: &str = ".entry";

/// The most bytes an entry's metadata line may take (headers and policy).
const MAX_META: usize = 1024 * 1024;

/// One stored response.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub(crate) status: StatusCode,
    /// The origin's headers, hop-by-hop headers already removed.
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
    /// When this proxy received (or last revalidated) the response.
    pub(crate) stored_at: SystemTime,
    /// The RFC 9111 policy, in `rfc` mode; `cache` mode has none.
    pub(crate) policy: Option<CachePolicy>,
}

/// Why a cache file could not be used or written.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CacheError {
    #[error("cannot read cache entry {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("cannot write cache entry {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
    #[error("ignoring cache entry {path}: {reason}")]
    Corrupt { path: PathBuf, reason: String },
}

/// The response store, shared by every connection of one proxy.
#[derive(Debug)]
pub(crate) struct Cache {
    memory: Mutex<Memory>,
    dir: Option<PathBuf>,
}

#[derive(Debug, Default)]
struct Memory {
    entries: HashMap<String, (u64, Arc<Entry>)>,
    /// Insertion order: sequence number → key, for evicting the oldest.
    order: BTreeMap<u64, String>,
    next_seq: u64,
    bytes: usize,
}

impl Memory {
    fn insert(&mut self, key: String, entry: Arc<Entry>) {
        self.remove(&key);
        let seq = self.next_seq;
        self.next_seq += 1;
        self.bytes += entry.body.len();
        self.order.insert(seq, key.clone());
        self.entries.insert(key, (seq, entry));
        while self.bytes > MEMORY_BUDGET {
            let Some((_, oldest)) = self.order.pop_first() else {
                break;
            };
            if let Some((_, evicted)) = self.entries.remove(&oldest) {
                self.bytes -= evicted.body.len();
            }
        }
    }

    fn remove(&mut self, key: &str) {
        if let Some((seq, old)) = self.entries.remove(key) {
            self.order.remove(&seq);
            self.bytes -= old.body.len();
        }
    }
}

impl Cache {
    /// An empty in-memory cache, or one backed by `dir` (created if missing;
    /// entries already there are served).
    pub(crate) fn new(dir: Option<PathBuf>) -> io::Result<Self> {
        if let Some(dir) = &dir {
            fs::create_dir_all(dir)?;
        }
        Ok(Self {
            memory: Mutex::new(Memory::default()),
            dir,
        })
    }

    fn memory(&self) -> MutexGuard<'_, Memory> {
        // A panic elsewhere while holding the lock leaves a map that is still
        // consistent enough to serve from (every mutation is a few plain steps).
        self.memory
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The stored response for `key`, from memory or else from the directory.
    pub(crate) fn get(&self, key: &str) -> Option<Arc<Entry>> {
        if let Some((_, entry)) = self.memory().entries.get(key) {
            return Some(Arc::clone(entry));
        }
        let dir = self.dir.as_ref()?;
        match read_entry(&entry_path(dir, key), key) {
            Ok(Some(entry)) => {
                let entry = Arc::new(entry);
                self.memory().insert(key.to_owned(), Arc::clone(&entry));
                Some(entry)
            }
            Ok(None) => None,
            Err(err) => {
                tracing::warn!("{err}");
                None
            }
        }
    }

    /// Stores `entry` under `key`, replacing any earlier one. Bodies over
    /// [`MAX_CACHED_BODY`] are refused (the caller should not have buffered them).
    pub(crate) fn insert(&self, key: &str, entry: Entry) -> bool {
        if entry.body.len() > MAX_CACHED_BODY {
            return false;
        }
        if let Some(dir) = &self.dir
            && let Err(err) = write_entry(&entry_path(dir, key), key, &entry)
        {
            // Still serve it from memory: a warm run is a bonus, not a duty.
            tracing::warn!("{err}");
        }
        self.memory().insert(key.to_owned(), Arc::new(entry));
        true
    }

    /// Forgets `key` (an unsafe method went through to it, RFC 9111 §4.4).
    pub(crate) fn remove(&self, key: &str) {
        self.memory().remove(key);
        if let Some(dir) = &self.dir {
            let path = entry_path(dir, key);
            if let Err(err) = fs::remove_file(&path)
                && err.kind() != io::ErrorKind::NotFound
            {
                tracing::warn!("cannot remove cache entry {}: {err}", path.display());
            }
        }
    }

    /// Empties the cache, memory and directory alike.
    pub(crate) fn clear(&self) {
        *self.memory() = Memory::default();
        let Some(dir) = &self.dir else { return };
        let entries = match fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(err) => {
                tracing::warn!("cannot list cache directory {}: {err}", dir.display());
                return;
            }
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let ours = path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.ends_with(ENTRY_SUFFIX));
            if ours && let Err(err) = fs::remove_file(&path) {
                tracing::warn!("cannot remove cache entry {}: {err}", path.display());
            }
        }
    }
}

/// An entry's file: the SHA-256 of its key, so any URL makes a safe name.
fn entry_path(dir: &Path, key: &str) -> PathBuf {
    let digest = Sha256::digest(key.as_bytes());
    dir.join(format!("{}{ENTRY_SUFFIX}", hex::encode(digest)))
}

/// An entry's file is one line of JSON metadata, a newline, then the body.
#[derive(Serialize, Deserialize)]
struct Meta {
    key: String,
    status: u16,
    /// Names and raw values: values need not be UTF-8.
    headers: Vec<(String, Vec<u8>)>,
    stored_at_ms: u64,
    body_len: usize,
    policy: Option<CachePolicy>,
}

fn write_entry(path: &Path, key: &str, entry: &Entry) -> Result<(), CacheError> {
    let meta = Meta {
        key: key.to_owned(),
        status: entry.status.as_u16(),
        headers: entry
            .headers
            .iter()
            .map(|(n, v)| (n.as_str().to_owned(), v.as_bytes().to_vec()))
            .collect(),
        stored_at_ms: entry
            .stored_at
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        body_len: entry.body.len(),
        policy: entry.policy.clone(),
    };
    let write_err = |source| CacheError::Write {
        path: path.to_owned(),
        source,
    };
    let line = serde_json::to_vec(&meta).map_err(|e| write_err(io::Error::other(e)))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    // Temp file and rename: a reader (or a crash) never sees half an entry.
    let mut file = tempfile::NamedTempFile::new_in(dir).map_err(write_err)?;
    file.write_all(&line).map_err(write_err)?;
    file.write_all(b"\n").map_err(write_err)?;
    file.write_all(&entry.body).map_err(write_err)?;
    file.persist(path).map_err(|e| write_err(e.error))?;
    Ok(())
}

/// Reads the entry at `path`; `Ok(None)` when there is none.
fn read_entry(path: &Path, key: &str) -> Result<Option<Entry>, CacheError> {
    let file = match fs::File::open(path) {
        Ok(file) => file,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(CacheError::Read {
                path: path.to_owned(),
                source,
            });
        }
    };
    let corrupt = |reason: String| CacheError::Corrupt {
        path: path.to_owned(),
        reason,
    };
    let cap = MAX_META + 1 + MAX_CACHED_BODY;
    let mut raw = Vec::new();
    // `take` bounds what a tampered or huge file can make us read.
    file.take(cap as u64 + 1)
        .read_to_end(&mut raw)
        .map_err(|source| CacheError::Read {
            path: path.to_owned(),
            source,
        })?;
    if raw.len() > cap {
        return Err(corrupt("larger than any entry this proxy writes".into()));
    }
    let newline = raw
        .iter()
        .position(|&b| b == b'\n')
        .filter(|&n| n <= MAX_META)
        .ok_or_else(|| corrupt("no metadata line".into()))?;
    let meta: Meta = serde_json::from_slice(&raw[..newline])
        .map_err(|e| corrupt(format!("bad metadata: {e}")))?;
    if meta.key != key {
        return Err(corrupt(format!("holds {} instead", meta.key)));
    }
    let body = Bytes::from(raw).slice(newline + 1..);
    if body.len() != meta.body_len {
        return Err(corrupt(format!(
            "body is {} bytes, metadata says {}",
            body.len(),
            meta.body_len
        )));
    }
    let status =
        StatusCode::from_u16(meta.status).map_err(|e| corrupt(format!("bad status: {e}")))?;
    let mut headers = HeaderMap::with_capacity(meta.headers.len());
    for (name, value) in meta.headers {
        let name = HeaderName::try_from(name).map_err(|e| corrupt(format!("bad header: {e}")))?;
        let value =
            HeaderValue::try_from(value).map_err(|e| corrupt(format!("bad header: {e}")))?;
        headers.append(name, value);
    }
    Ok(Some(Entry {
        status,
        headers,
        body,
        stored_at: UNIX_EPOCH + Duration::from_millis(meta.stored_at_ms),
        policy: meta.policy,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(body: &'static [u8]) -> Entry {
        let mut headers = HeaderMap::new();
        headers.insert("content-type", HeaderValue::from_static("text/plain"));
        headers.append("x-multi", HeaderValue::from_static("a"));
        headers.append("x-multi", HeaderValue::from_bytes(b"b\xff").unwrap());
        Entry {
            status: StatusCode::OK,
            headers,
            body: Bytes::from_static(body),
            stored_at: SystemTime::now(),
            policy: None,
        }
    }

    #[test]
    fn directory_entries_survive_a_new_cache() {
        let dir = tempfile::tempdir().unwrap();
        let first = Cache::new(Some(dir.path().to_owned())).unwrap();
        assert!(first.insert("http://a/x", entry(b"hello")));
        let second = Cache::new(Some(dir.path().to_owned())).unwrap();
        let got = second.get("http://a/x").expect("persisted");
        assert_eq!(got.body, Bytes::from_static(b"hello"));
        assert_eq!(got.headers.get_all("x-multi").iter().count(), 2);
        assert!(second.get("http://a/y").is_none());
        second.clear();
        assert!(
            Cache::new(Some(dir.path().to_owned()))
                .unwrap()
                .get("http://a/x")
                .is_none()
        );
    }

    #[test]
    fn a_tampered_file_is_a_miss() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(Some(dir.path().to_owned())).unwrap();
        cache.insert("http://a/x", entry(b"hello"));
        // Another key's entry copied over this one must not be served for it.
        cache.insert("http://a/other", entry(b"other"));
        fs::copy(
            entry_path(dir.path(), "http://a/other"),
            entry_path(dir.path(), "http://a/x"),
        )
        .unwrap();
        let fresh = Cache::new(Some(dir.path().to_owned())).unwrap();
        assert!(fresh.get("http://a/x").is_none());
        fs::write(entry_path(dir.path(), "http://a/y"), b"garbage").unwrap();
        assert!(fresh.get("http://a/y").is_none());
    }

    #[test]
    fn memory_stays_within_budget() {
        let cache = Cache::new(None).unwrap();
        let big = Bytes::from(vec![0u8; MAX_CACHED_BODY]);
        for i in 0..10 {
            let mut e = entry(b"");
            e.body = big.clone();
            assert!(cache.insert(&format!("http://a/{i}"), e));
        }
        assert!(cache.memory().bytes <= MEMORY_BUDGET);
        assert!(cache.get("http://a/0").is_none(), "oldest evicted");
        assert!(cache.get("http://a/9").is_some(), "newest kept");
        let mut too_big = entry(b"");
        too_big.body = Bytes::from(vec![0u8; MAX_CACHED_BODY + 1]);
        assert!(!cache.insert("http://a/big", too_big));
    }
}
