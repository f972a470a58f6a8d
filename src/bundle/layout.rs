//! The zip's structure, read from raw bytes and checked before any entry is
//! decompressed.
//!
//! The `zip` crate merges duplicate names, tolerates bytes before the first
//! entry and after the end record, and never notices entries that share
//! bytes. This module reads the end record, every central-directory record and
//! every local header itself, and accepts only the shape bugpack's writer
//! makes: one disk, no zip64, no encryption, no data descriptors, no extra
//! fields or comments, stored or deflated regular files, laid end to end from
//! offset 0 up to the central directory, which ends at the end record, which
//! ends the file. It must never decompress anything or follow any name.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};

use super::{Rejection, check_entry_path};

const EOCD_SIG: u32 = 0x0605_4b50;
const CDH_SIG: u32 = 0x0201_4b50;
const LFH_SIG: u32 = 0x0403_4b50;
const ZIP64_LOCATOR_SIG: u32 = 0x0706_4b50;
const EOCD_LEN: u64 = 22;
const EOCD_BYTES: usize = 22;
const CDH_LEN: usize = 46;
const LFH_LEN: u64 = 30;
const LFH_BYTES: usize = 30;

/// Compression methods bugpack writes.
pub const STORED: u16 = 0;
/// Deflate.
pub const DEFLATED: u16 = 8;

/// General-purpose flag bits a bundle may set: deflate options (1, 2) and
/// UTF-8 names (11). Encryption (0, 6, 13), data descriptors (3) and the rest
/// are refused.
const ALLOWED_FLAGS: u16 = (1 << 1) | (1 << 2) | (1 << 11);

const S_IFMT: u32 = 0o170_000;
const S_IFREG: u32 = 0o100_000;
const UNIX_HOST: u16 = 3;
const DOS_DIRECTORY: u32 = 0x10;

/// One entry as the central directory and its local header describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawEntry {
    /// The entry's name, checked by [`check_entry_path`].
    pub name: String,
    /// [`STORED`] or [`DEFLATED`].
    pub method: u16,
    pub crc32: u32,
    /// Bytes in the archive.
    pub compressed_size: u64,
    /// Bytes once decompressed, as declared.
    pub size: u64,
    /// Where the local header starts.
    pub header_offset: u64,
    /// Whether the entry carries the executable permission (0755, not 0644).
    pub executable: bool,
}

impl RawEntry {
    /// How many times larger the entry is decompressed than stored.
    pub fn ratio(&self) -> u64 {
        self.size / self.compressed_size.max(1)
    }
}

/// The checked structure of a zip file: its entries in central-directory order.
#[derive(Debug, Clone)]
pub struct Layout {
    pub entries: Vec<RawEntry>,
    /// Size of the whole file.
    pub file_size: u64,
}

/// Reads and checks the structure of `file`. `max_entries` bounds the work
/// before anything is allocated per entry.
pub fn scan(file: &mut File, max_entries: u64) -> Result<Layout, ScanError> {
    let file_size = file.seek(SeekFrom::End(0))?;
    if file_size == 0 {
        return Err(Rejection::Empty.into());
    }
    if file_size < EOCD_LEN {
        return Err(Rejection::NotZip("too short to hold a zip end record".into()).into());
    }
    let eocd_pos = file_size - EOCD_LEN;
    let eocd = read_at(file, eocd_pos, EOCD_BYTES)?;
    if u32_at(&eocd, 0) != EOCD_SIG || u16_at(&eocd, 20) != 0 {
        return Err(explain_missing_eocd(file, file_size)?.into());
    }
    let disk = u16_at(&eocd, 4);
    let cd_disk = u16_at(&eocd, 6);
    let on_disk = u16_at(&eocd, 8);
    let total = u16_at(&eocd, 10);
    let cd_size = u64::from(u32_at(&eocd, 12));
    let cd_offset = u64::from(u32_at(&eocd, 16));
    if total == 0xFFFF || cd_size == 0xFFFF_FFFF || cd_offset == 0xFFFF_FFFF {
        return Err(Rejection::Zip64.into());
    }
    if eocd_pos >= 20 {
        let locator = read_at(file, eocd_pos - 20, 4)?;
        if u32_at(&locator, 0) == ZIP64_LOCATOR_SIG {
            return Err(Rejection::Zip64.into());
        }
    }
    if disk != 0 || cd_disk != 0 || on_disk != total {
        return Err(Rejection::Inconsistent("a multi-disk archive".into()).into());
    }
    if cd_offset.checked_add(cd_size) != Some(eocd_pos) {
        return Err(Rejection::Inconsistent(format!(
            "the central directory ({cd_size} bytes at {cd_offset}) does not end at the end record ({eocd_pos})"
        ))
        .into());
    }
    let count = u64::from(total);
    if count > max_entries {
        return Err(Rejection::TooManyEntries {
            count,
            max: max_entries,
        }
        .into());
    }
    // Each record takes 46 bytes plus a bounded name: a count the directory
    // cannot hold, or a directory too big for its count, is a lie, caught
    // before it sizes an allocation.
    let most = count * (CDH_LEN + super::MAX_PATH_BYTES) as u64;
    if count * CDH_LEN as u64 > cd_size || cd_size > most {
        return Err(Rejection::Inconsistent(format!(
            "{count} entries do not fit a {cd_size}-byte central directory"
        ))
        .into());
    }
    let cd_len = usize::try_from(cd_size)
        .map_err(|_| Rejection::Inconsistent("central directory too large".into()))?;
    let cd = read_at(file, cd_offset, cd_len)?;

    let mut entries = Vec::with_capacity(usize::from(total));
    let mut pos = 0usize;
    for _ in 0..total {
        let (entry, next) = parse_central_record(&cd, pos)?;
        entries.push(entry);
        pos = next;
    }
    if pos != cd.len() {
        return Err(Rejection::Inconsistent(format!(
            "{} bytes left in the central directory after {total} records",
            cd.len() - pos
        ))
        .into());
    }

    check_names(&entries)?;
    let mut spans = Vec::with_capacity(entries.len());
    for (index, entry) in entries.iter().enumerate() {
        let end = check_local_header(file, entry, cd_offset)?;
        spans.push((entry.header_offset, end, index));
    }
    check_contiguous(&mut spans, &entries, cd_offset)?;
    Ok(Layout { entries, file_size })
}

/// A structural rejection, or an I/O error reading the file.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error(transparent)]
    Rejected(#[from] Rejection),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

fn parse_central_record(cd: &[u8], pos: usize) -> Result<(RawEntry, usize), Rejection> {
    let fixed = cd
        .get(pos..pos + CDH_LEN)
        .ok_or_else(|| Rejection::Inconsistent("the central directory is truncated".into()))?;
    if u32_at(fixed, 0) != CDH_SIG {
        return Err(Rejection::Inconsistent(format!(
            "no central-directory record at offset {pos} of the directory"
        )));
    }
    let made_by = u16_at(fixed, 4);
    let flags = u16_at(fixed, 8);
    let method = u16_at(fixed, 10);
    let crc32 = u32_at(fixed, 16);
    let compressed_size = u64::from(u32_at(fixed, 20));
    let size = u64::from(u32_at(fixed, 24));
    let name_len = usize::from(u16_at(fixed, 28));
    let extra_len = usize::from(u16_at(fixed, 30));
    let comment_len = usize::from(u16_at(fixed, 32));
    let disk_start = u16_at(fixed, 34);
    let external = u32_at(fixed, 38);
    let header_offset = u64::from(u32_at(fixed, 42));
    let name_start = pos + CDH_LEN;
    let next = name_start + name_len + extra_len + comment_len;
    let raw_name = cd
        .get(name_start..name_start + name_len)
        .filter(|_| next <= cd.len())
        .ok_or_else(|| Rejection::Inconsistent("the central directory is truncated".into()))?;
    let name = String::from_utf8(raw_name.to_vec()).map_err(|_| Rejection::UnsafePath {
        entry: String::from_utf8_lossy(raw_name).into_owned(),
        why: "its name is not UTF-8",
    })?;
    let unsupported = |why: String| Rejection::Unsupported {
        entry: name.clone(),
        why,
    };
    if compressed_size == 0xFFFF_FFFF || size == 0xFFFF_FFFF || header_offset == 0xFFFF_FFFF {
        return Err(Rejection::Zip64);
    }
    if flags & 1 != 0 || flags & (1 << 6) != 0 || flags & (1 << 13) != 0 {
        return Err(unsupported("it is encrypted".into()));
    }
    if flags & !ALLOWED_FLAGS != 0 {
        return Err(unsupported(format!("unsupported zip flags {flags:#06x}")));
    }
    if method != STORED && method != DEFLATED {
        return Err(unsupported(format!(
            "unsupported compression method {method}"
        )));
    }
    if method == STORED && compressed_size != size {
        return Err(unsupported("a stored entry whose sizes differ".into()));
    }
    if extra_len != 0 || comment_len != 0 {
        return Err(unsupported(
            "extra fields or comments, which bugpack never writes".into(),
        ));
    }
    if disk_start != 0 {
        return Err(Rejection::Inconsistent("an entry on another disk".into()));
    }
    check_entry_path(&name).map_err(|why| Rejection::UnsafePath {
        entry: name.clone(),
        why,
    })?;
    if external & DOS_DIRECTORY != 0 {
        return Err(Rejection::NotRegular {
            entry: name,
            kind: "directory",
        });
    }
    let mut executable = false;
    if made_by >> 8 == UNIX_HOST {
        let mode = external >> 16;
        let kind = match mode & S_IFMT {
            0 | S_IFREG => None,
            0o120_000 => Some("symlink"),
            0o040_000 => Some("directory"),
            0o020_000 => Some("character device"),
            0o060_000 => Some("block device"),
            0o010_000 => Some("named pipe"),
            0o140_000 => Some("socket"),
            _ => Some("special file"),
        };
        if let Some(kind) = kind {
            return Err(Rejection::NotRegular { entry: name, kind });
        }
        match mode & 0o7777 {
            0 | 0o644 => {}
            0o755 => executable = true,
            other => {
                return Err(unsupported(format!(
                    "permissions {other:o} (bugpack writes 644 or 755)"
                )));
            }
        }
    }
    let entry = RawEntry {
        name,
        method,
        crc32,
        compressed_size,
        size,
        header_offset,
        executable,
    };
    Ok((entry, next))
}

/// Duplicate names, names equal but for case, and a file that is also a
/// directory prefix of another entry: each makes extraction ambiguous.
fn check_names(entries: &[RawEntry]) -> Result<(), Rejection> {
    let mut exact: HashSet<&str> = HashSet::with_capacity(entries.len());
    let mut folded: HashMap<String, &str> = HashMap::with_capacity(entries.len());
    for entry in entries {
        if !exact.insert(&entry.name) {
            return Err(Rejection::Duplicate {
                entry: entry.name.clone(),
            });
        }
        if let Some(other) = folded.insert(entry.name.to_lowercase(), &entry.name) {
            return Err(Rejection::CaseCollision {
                entry: entry.name.clone(),
                other: other.to_owned(),
            });
        }
    }
    for entry in entries {
        let mut prefix = entry.name.as_str();
        while let Some((parent, _)) = prefix.rsplit_once('/') {
            if folded.contains_key(&parent.to_lowercase()) {
                return Err(Rejection::FileDirCollision {
                    entry: parent.to_owned(),
                });
            }
            prefix = parent;
        }
    }
    Ok(())
}

/// Reads the entry's local header, checks it against the central record, and
/// returns where the entry's data ends.
fn check_local_header(file: &mut File, entry: &RawEntry, cd_offset: u64) -> Result<u64, ScanError> {
    let mismatch = |field| Rejection::HeaderMismatch {
        entry: entry.name.clone(),
        field,
    };
    if entry.header_offset + LFH_LEN > cd_offset {
        return Err(Rejection::Overlap {
            entry: entry.name.clone(),
            other: "the central directory".into(),
        }
        .into());
    }
    let header = read_at(file, entry.header_offset, LFH_BYTES)?;
    if u32_at(&header, 0) != LFH_SIG {
        return Err(mismatch("the local header's position").into());
    }
    if u16_at(&header, 6) & !ALLOWED_FLAGS != 0 {
        return Err(mismatch("flags").into());
    }
    if u16_at(&header, 8) != entry.method {
        return Err(mismatch("compression method").into());
    }
    if u32_at(&header, 14) != entry.crc32 {
        return Err(mismatch("CRC-32").into());
    }
    if u64::from(u32_at(&header, 18)) != entry.compressed_size {
        return Err(mismatch("compressed size").into());
    }
    if u64::from(u32_at(&header, 22)) != entry.size {
        return Err(mismatch("size").into());
    }
    let name_len = u64::from(u16_at(&header, 26));
    if u16_at(&header, 28) != 0 {
        return Err(mismatch("extra fields").into());
    }
    if name_len != entry.name.len() as u64 {
        return Err(mismatch("name").into());
    }
    let data_start = entry.header_offset + LFH_LEN + name_len;
    if data_start > cd_offset {
        return Err(mismatch("name").into());
    }
    let local_name = read_at(file, entry.header_offset + LFH_LEN, entry.name.len())?;
    if local_name != entry.name.as_bytes() {
        return Err(mismatch("name").into());
    }
    Ok(data_start + entry.compressed_size)
}

/// Entries must tile the bytes from 0 to the central directory exactly: no
/// prefix, no gaps where data could hide, no overlap (the non-recursive zip
/// bomb, where many entries point at the same compressed bytes).
fn check_contiguous(
    spans: &mut [(u64, u64, usize)],
    entries: &[RawEntry],
    cd_offset: u64,
) -> Result<(), Rejection> {
    spans.sort_unstable();
    let mut expected = 0u64;
    let mut previous: Option<usize> = None;
    for &(start, end, index) in spans.iter() {
        if start < expected {
            let other = previous.map_or_else(String::new, |p| entries[p].name.clone());
            return Err(Rejection::Overlap {
                entry: entries[index].name.clone(),
                other,
            });
        }
        if start > expected {
            return Err(match previous {
                None => Rejection::LeadingBytes(start),
                Some(p) => Rejection::Gap {
                    entry: entries[p].name.clone(),
                },
            });
        }
        expected = end;
        previous = Some(index);
    }
    match expected.cmp(&cd_offset) {
        std::cmp::Ordering::Equal => Ok(()),
        std::cmp::Ordering::Greater => Err(Rejection::Overlap {
            entry: previous.map_or_else(String::new, |p| entries[p].name.clone()),
            other: "the central directory".into(),
        }),
        std::cmp::Ordering::Less => Err(match previous {
            None => Rejection::LeadingBytes(cd_offset),
            Some(p) => Rejection::Gap {
                entry: entries[p].name.clone(),
            },
        }),
    }
}

/// Tells "trailing bytes after a zip" apart from "not a zip at all".
fn explain_missing_eocd(file: &mut File, file_size: u64) -> Result<Rejection, std::io::Error> {
    let window = file_size.min(EOCD_LEN + 0xFFFF + 4096);
    let tail = read_at(
        file,
        file_size - window,
        usize::try_from(window).unwrap_or(0),
    )?;
    let sig = EOCD_SIG.to_le_bytes();
    let Some(at) = tail.windows(4).rposition(|w| w == sig) else {
        return Ok(Rejection::NotZip(
            "no zip end record (truncated, or another kind of file)".into(),
        ));
    };
    let record_end = (file_size - window) + at as u64 + EOCD_LEN;
    if record_end > file_size {
        return Ok(Rejection::NotZip(
            "its end record is cut short (truncated)".into(),
        ));
    }
    let comment_len = u64::from(u16_at(&tail, at + 20));
    Ok(
        if record_end + comment_len == file_size && comment_len > 0 {
            Rejection::Unsupported {
                entry: "(archive)".into(),
                why: "a zip comment, which bugpack never writes".into(),
            }
        } else {
            Rejection::TrailingBytes(file_size - record_end)
        },
    )
}

fn read_at(file: &mut File, offset: u64, len: usize) -> std::io::Result<Vec<u8>> {
    file.seek(SeekFrom::Start(offset))?;
    let mut buf = vec![0; len];
    file.read_exact(&mut buf)?;
    Ok(buf)
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
