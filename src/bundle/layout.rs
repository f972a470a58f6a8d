//! The zip's structure, read from raw bytes and checked before any entry is
//! decompressed.
//!
//! The `zip` crate merges duplicate names, tolerates bytes before the first
//! entry and after the end record, and never notices entries that share
//! bytes. This module reads the end record, every central-directory record and
//! every local header itself. It accepts what honest zip tools write (Info-ZIP
//! `zip` with its extra fields, Python, Go, 7-Zip, bsdtar, `jar`, macOS
//! Archive Utility): extra fields, comments, data descriptors, ZIP64 records
//! that agree with the classic ones, directory entries and macOS metadata
//! (both marked [`RawEntry::ignored`]), any regular-file mode. It refuses every
//! shape that lets two zip parsers see two different archives ("My ZIP isn't
//! your ZIP", USENIX Security 2025): a second end record, or one hidden in the
//! comment; a local header, data descriptor, ZIP64 field or Unicode-path field
//! that disagrees with the central directory; a name whose encoding is
//! ambiguous; entries that do not tile the bytes from offset 0 to the central
//! directory, which must end where the end records start. It must never
//! decompress anything or follow any name.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};

use super::{Rejection, check_entry_path};

const EOCD_SIG: u32 = 0x0605_4b50;
const CDH_SIG: u32 = 0x0201_4b50;
const LFH_SIG: u32 = 0x0403_4b50;
const DESCRIPTOR_SIG: u32 = 0x0807_4b50;
const ZIP64_EOCD_SIG: u32 = 0x0606_4b50;
const ZIP64_LOCATOR_SIG: u32 = 0x0706_4b50;
/// Every record signature: none may hide in an archive comment.
const SIGNATURES: [u32; 6] = [
    EOCD_SIG,
    CDH_SIG,
    LFH_SIG,
    DESCRIPTOR_SIG,
    ZIP64_EOCD_SIG,
    ZIP64_LOCATOR_SIG,
];
const EOCD_LEN: u64 = 22;
const EOCD_BYTES: usize = 22;
const MAX_COMMENT: u64 = 0xFFFF;
const ZIP64_LOCATOR_LEN: u64 = 20;
const ZIP64_EOCD_BYTES: usize = 56;
const CDH_LEN: usize = 46;
const LFH_LEN: u64 = 30;
const LFH_BYTES: usize = 30;
/// The largest data descriptor: signature, CRC-32 and two 8-byte sizes.
const MAX_DESCRIPTOR: u64 = 24;

const EXTRA_ZIP64: u16 = 0x0001;
const EXTRA_STRONG_ENCRYPTION: u16 = 0x0017;
const EXTRA_UNICODE_PATH: u16 = 0x7075;
const EXTRA_AES: u16 = 0x9901;

/// Compression methods bugpack reads.
pub const STORED: u16 = 0;
/// Deflate.
pub const DEFLATED: u16 = 8;

const FLAG_ENCRYPTED: u16 = 1;
const FLAG_DESCRIPTOR: u16 = 1 << 3;
const FLAG_STRONG_ENCRYPTION: u16 = 1 << 6;
const FLAG_UTF8: u16 = 1 << 11;
const FLAG_MASKED_HEADER: u16 = 1 << 13;
/// General-purpose flag bits an entry may set: deflate options (1, 2), a
/// data descriptor (3) and UTF-8 names (11). Encryption (0, 6, 13) and the
/// rest are refused.
const ALLOWED_FLAGS: u16 = (1 << 1) | (1 << 2) | FLAG_DESCRIPTOR | FLAG_UTF8;

const MAX32: u64 = 0xFFFF_FFFF;
const MAX16: u64 = 0xFFFF;

const S_IFMT: u32 = 0o170_000;
const S_IFREG: u32 = 0o100_000;
const S_IFDIR: u32 = 0o040_000;
const UNIX_HOST: u16 = 3;
const DOS_DIRECTORY: u32 = 0x10;

/// Why an entry is not part of the bundle although it is in the zip.
pub const DIRECTORY_ENTRY: &str = "a directory entry";
/// What macOS Archive Utility adds beside each file (`__MACOSX/`, `._*`).
pub const MACOS_METADATA: &str = "macOS metadata";

/// One entry as the central directory and its local header describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawEntry {
    /// The entry's name, checked by [`check_entry_path`] (directory entries
    /// keep their trailing `/`).
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
    /// Whether the entry's mode has an execute bit (extracted 0755, not 0644).
    pub executable: bool,
    /// Set when a zip tool, not bugpack, added the entry: [`DIRECTORY_ENTRY`]
    /// or [`MACOS_METADATA`]. Readers ignore such an entry unless the
    /// manifest lists it (a directory entry it cannot list).
    pub ignored: Option<&'static str>,
    flags: u16,
    /// The name as the zip spells it: [`RawEntry::name`] but for a leading `./`.
    zip_name: String,
}

impl RawEntry {
    /// The name as the zip spells it, which the zip library reports.
    pub fn zip_name(&self) -> &str {
        &self.zip_name
    }

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
    let end = find_end(file, file_size)?;
    let count = end.total;
    if count > max_entries {
        return Err(Rejection::TooManyEntries {
            count,
            max: max_entries,
        }
        .into());
    }
    // Each record takes 46 bytes plus a bounded name, extra field and
    // comment: a count the directory cannot hold, or a directory too big for
    // its count, is a lie, caught before it sizes an allocation.
    let most = count.saturating_mul((CDH_LEN + super::MAX_PATH_BYTES + 2 * 0xFFFF) as u64);
    if count.saturating_mul(CDH_LEN as u64) > end.cd_size || end.cd_size > most {
        return Err(Rejection::Inconsistent(format!(
            "{count} entries do not fit a {}-byte central directory",
            end.cd_size
        ))
        .into());
    }
    let cd_len = usize::try_from(end.cd_size)
        .map_err(|_| Rejection::Inconsistent("central directory too large".into()))?;
    let cd = read_at(file, end.cd_offset, cd_len)?;

    let mut entries = Vec::with_capacity(usize::try_from(count).unwrap_or(0));
    let mut pos = 0usize;
    for _ in 0..count {
        let (entry, next) = parse_central_record(&cd, pos)?;
        entries.push(entry);
        pos = next;
    }
    if pos != cd.len() {
        return Err(Rejection::Inconsistent(format!(
            "{} bytes left in the central directory after {count} records",
            cd.len() - pos
        ))
        .into());
    }

    check_names(&entries)?;
    let mut spans = Vec::with_capacity(entries.len());
    for (index, entry) in entries.iter().enumerate() {
        let end = check_local_header(file, entry, end.cd_offset)?;
        spans.push((entry.header_offset, end, index));
    }
    check_contiguous(&mut spans, &entries, end.cd_offset)?;
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

/// What the end records say about the central directory.
struct End {
    total: u64,
    cd_size: u64,
    cd_offset: u64,
}

/// Finds the one end record that ends the file (after its comment), and the
/// ZIP64 end record when there is one, and checks that they agree and that
/// the central directory ends where they start.
fn find_end(file: &mut File, file_size: u64) -> Result<End, ScanError> {
    let window = file_size.min(EOCD_LEN + MAX_COMMENT);
    let base = file_size - window;
    let tail = read_at(file, base, usize::try_from(window).unwrap_or(0))?;
    let sig = EOCD_SIG.to_le_bytes();
    let candidates: Vec<usize> = tail
        .windows(4)
        .enumerate()
        .filter(|&(at, w)| {
            w == sig
                && at + EOCD_BYTES <= tail.len()
                && at + EOCD_BYTES + usize::from(u16_at(&tail, at + 20)) == tail.len()
        })
        .map(|(at, _)| at)
        .collect();
    let at = match candidates[..] {
        [] => return Err(explain_missing_eocd(&tail).into()),
        [at] => at,
        _ => {
            return Err(Rejection::Ambiguous(format!(
                "{} end-of-central-directory records",
                candidates.len()
            ))
            .into());
        }
    };
    let comment = &tail[at + EOCD_BYTES..];
    if let Some(found) = SIGNATURES.iter().find(|s| contains(comment, **s)) {
        return Err(Rejection::Ambiguous(format!(
            "the archive comment hides a zip record (signature {found:#010x})"
        ))
        .into());
    }
    let eocd = &tail[at..at + EOCD_BYTES];
    let eocd_pos = base + at as u64;
    let mut disk = u64::from(u16_at(eocd, 4));
    let mut cd_disk = u64::from(u16_at(eocd, 6));
    let mut on_disk = u64::from(u16_at(eocd, 8));
    let mut total = u64::from(u16_at(eocd, 10));
    let mut cd_size = u64::from(u32_at(eocd, 12));
    let mut cd_offset = u64::from(u32_at(eocd, 16));
    let mut dir_end = eocd_pos;

    let locator = if eocd_pos >= ZIP64_LOCATOR_LEN {
        Some(read_at(file, eocd_pos - ZIP64_LOCATOR_LEN, 20)?)
    } else {
        None
    };
    match locator {
        Some(locator) if u32_at(&locator, 0) == ZIP64_LOCATOR_SIG => {
            let record_at = u64_at(&locator, 8);
            if u32_at(&locator, 4) != 0 || u32_at(&locator, 16) > 1 {
                return Err(Rejection::Inconsistent("a multi-disk archive".into()).into());
            }
            let locator_at = eocd_pos - ZIP64_LOCATOR_LEN;
            if record_at.checked_add(ZIP64_EOCD_BYTES as u64) > Some(locator_at) {
                return Err(Rejection::Inconsistent(
                    "the ZIP64 end record is not before its locator".into(),
                )
                .into());
            }
            let record = read_at(file, record_at, ZIP64_EOCD_BYTES)?;
            if u32_at(&record, 0) != ZIP64_EOCD_SIG
                || record_at.checked_add(12 + u64_at(&record, 4)) != Some(locator_at)
            {
                return Err(Rejection::Inconsistent(
                    "the ZIP64 locator does not point at a ZIP64 end record that ends at it".into(),
                )
                .into());
            }
            let pairs = [
                (
                    "disk number",
                    &mut disk,
                    MAX16,
                    u64::from(u32_at(&record, 16)),
                ),
                (
                    "directory disk",
                    &mut cd_disk,
                    MAX16,
                    u64::from(u32_at(&record, 20)),
                ),
                (
                    "entries on this disk",
                    &mut on_disk,
                    MAX16,
                    u64_at(&record, 24),
                ),
                ("entry count", &mut total, MAX16, u64_at(&record, 32)),
                ("directory size", &mut cd_size, MAX32, u64_at(&record, 40)),
                (
                    "directory offset",
                    &mut cd_offset,
                    MAX32,
                    u64_at(&record, 48),
                ),
            ];
            for (what, classic, max, wide) in pairs {
                if *classic == max {
                    *classic = wide;
                } else if *classic != wide {
                    return Err(Rejection::Ambiguous(format!(
                        "the ZIP64 end record's {what} is {wide}, the classic one's {classic}"
                    ))
                    .into());
                }
            }
            dir_end = record_at;
        }
        _ => {
            if total == MAX16 || cd_size == MAX32 || cd_offset == MAX32 {
                return Err(Rejection::Inconsistent(
                    "the end record defers to a ZIP64 end record that is not there".into(),
                )
                .into());
            }
        }
    }
    if disk != 0 || cd_disk != 0 || on_disk != total {
        return Err(Rejection::Inconsistent("a multi-disk archive".into()).into());
    }
    if cd_offset.checked_add(cd_size) != Some(dir_end) {
        return Err(Rejection::Inconsistent(format!(
            "the central directory ({cd_size} bytes at {cd_offset}) does not end at the end record ({dir_end})"
        ))
        .into());
    }
    Ok(End {
        total,
        cd_size,
        cd_offset,
    })
}

/// One field of an extra-field block: its id and data.
type Extra<'a> = (u16, &'a [u8]);

/// Splits an extra-field block into its fields; `None` when they do not
/// tile it exactly (a truncated or padded block hides bytes).
fn parse_extras(block: &[u8]) -> Option<Vec<Extra<'_>>> {
    let mut fields = Vec::new();
    let mut rest = block;
    while !rest.is_empty() {
        if rest.len() < 4 {
            return None;
        }
        let id = u16_at(rest, 0);
        let len = usize::from(u16_at(rest, 2));
        let data = rest.get(4..4 + len)?;
        fields.push((id, data));
        rest = &rest[4 + len..];
    }
    Some(fields)
}

/// Checks what extra fields may change about an entry: encryption, and a
/// Unicode-path field, which some tools use as the name instead of the
/// header's, so it must say the same name.
fn check_extras(name: &str, raw_name: &[u8], extras: &[Extra<'_>]) -> Result<bool, Rejection> {
    let mut confirms_name = false;
    for &(id, data) in extras {
        match id {
            EXTRA_AES | EXTRA_STRONG_ENCRYPTION => {
                return Err(Rejection::Unsupported {
                    entry: name.to_owned(),
                    why: "it is encrypted".into(),
                });
            }
            EXTRA_UNICODE_PATH => {
                let Some(unicode) = data.get(5..) else {
                    return Err(Rejection::Inconsistent(format!(
                        "entry {name:?} has a truncated Unicode-path field"
                    )));
                };
                if unicode != raw_name {
                    return Err(Rejection::Ambiguous(format!(
                        "entry {name:?} has a Unicode-path field naming it {:?}",
                        String::from_utf8_lossy(unicode)
                    )));
                }
                confirms_name = true;
            }
            _ => {}
        }
    }
    Ok(confirms_name)
}

/// Replaces each classic field that says "see ZIP64" (all ones) with the
/// ZIP64 field's value, in the order the format gives them. A ZIP64 field
/// that also carries a value the classic field states must agree with it.
fn resolve_zip64(
    name: &str,
    extras: &[Extra<'_>],
    fields: &mut [(&'static str, &mut u64)],
) -> Result<bool, Rejection> {
    let Some(&(_, data)) = extras.iter().find(|(id, _)| *id == EXTRA_ZIP64) else {
        return Ok(false);
    };
    let deferred = fields.iter().filter(|(_, v)| **v == MAX32).count();
    let listed = data.len() / 8;
    // Conforming writers list only the deferred fields; some list all.
    let all = listed > deferred;
    let mut next = data.chunks_exact(8).map(|c| u64_at(c, 0));
    for (what, value) in fields.iter_mut() {
        if **value == MAX32 {
            **value = next.next().ok_or_else(|| {
                Rejection::Inconsistent(format!("entry {name:?}'s ZIP64 field lacks its {what}"))
            })?;
        } else if all
            && let Some(wide) = next.next()
            && wide != **value
            && wide != 0
        {
            return Err(Rejection::Ambiguous(format!(
                "entry {name:?}'s ZIP64 field gives its {what} as {wide}, the classic field as {}",
                **value
            )));
        }
    }
    Ok(true)
}

fn is_macos_metadata(name: &str) -> bool {
    name.starts_with("__MACOSX/") || name.rsplit('/').next().is_some_and(|b| b.starts_with("._"))
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
    let mut compressed_size = u64::from(u32_at(fixed, 20));
    let mut size = u64::from(u32_at(fixed, 24));
    let name_len = usize::from(u16_at(fixed, 28));
    let extra_len = usize::from(u16_at(fixed, 30));
    let comment_len = usize::from(u16_at(fixed, 32));
    let disk_start = u16_at(fixed, 34);
    let external = u32_at(fixed, 38);
    let mut header_offset = u64::from(u32_at(fixed, 42));
    let name_start = pos + CDH_LEN;
    let extra_start = name_start + name_len;
    let next = extra_start + extra_len + comment_len;
    if next > cd.len() {
        return Err(Rejection::Inconsistent(
            "the central directory is truncated".into(),
        ));
    }
    let raw_name = &cd[name_start..extra_start];
    if name_len > super::MAX_PATH_BYTES {
        let start: String = String::from_utf8_lossy(&raw_name[..64]).into_owned();
        return Err(Rejection::UnsafePath {
            entry: format!("{start}…"),
            why: "the name is too long",
        });
    }
    let zip_name = String::from_utf8(raw_name.to_vec()).map_err(|_| Rejection::UnsafePath {
        entry: String::from_utf8_lossy(raw_name).into_owned(),
        why: "its name is not UTF-8",
    })?;
    // `bsdtar -cf b.zip .` names entries `./x`, which every tool extracts as `x`.
    let name = match zip_name.strip_prefix("./") {
        Some(rest) if !rest.is_empty() => rest.to_owned(),
        _ => zip_name.clone(),
    };
    let unsupported = |why: String| Rejection::Unsupported {
        entry: name.clone(),
        why,
    };
    if flags & (FLAG_ENCRYPTED | FLAG_STRONG_ENCRYPTION | FLAG_MASKED_HEADER) != 0 {
        return Err(unsupported("it is encrypted".into()));
    }
    if flags & !ALLOWED_FLAGS != 0 {
        return Err(unsupported(format!("unsupported zip flags {flags:#06x}")));
    }
    let extras = parse_extras(&cd[extra_start..extra_start + extra_len]).ok_or_else(|| {
        Rejection::Inconsistent(format!("entry {name:?} has a malformed extra field"))
    })?;
    let confirmed = check_extras(&name, raw_name, &extras)?;
    if !name.is_ascii() && flags & FLAG_UTF8 == 0 && !confirmed {
        // Without the flag the name is CP437 to some tools and UTF-8 to others.
        return Err(Rejection::Ambiguous(format!(
            "entry {name:?} has a non-ASCII name not marked UTF-8"
        )));
    }
    let mut disk = u64::from(disk_start);
    let mut fields = [
        ("size", &mut size),
        ("compressed size", &mut compressed_size),
        ("offset", &mut header_offset),
    ];
    resolve_zip64(&name, &extras, &mut fields)?;
    if disk == MAX16 {
        disk = 0;
    }
    if compressed_size == MAX32 || size == MAX32 || header_offset == MAX32 {
        return Err(Rejection::Inconsistent(format!(
            "entry {name:?} defers to a ZIP64 field that is not there"
        )));
    }
    if method != STORED && method != DEFLATED {
        return Err(unsupported(format!(
            "unsupported compression method {method}"
        )));
    }
    if method == STORED && compressed_size != size {
        return Err(unsupported("a stored entry whose sizes differ".into()));
    }
    if disk != 0 {
        return Err(Rejection::Inconsistent("an entry on another disk".into()));
    }
    let unix_mode = (made_by >> 8 == UNIX_HOST).then_some(external >> 16);
    let kind = match unix_mode.map_or(0, |m| m & S_IFMT) {
        0 | S_IFREG => None,
        S_IFDIR => Some("directory"),
        0o120_000 => Some("symlink"),
        0o020_000 => Some("character device"),
        0o060_000 => Some("block device"),
        0o010_000 => Some("named pipe"),
        0o140_000 => Some("socket"),
        _ => Some("special file"),
    };
    let mut executable = false;
    let ignored = if let Some(dir) = name.strip_suffix('/') {
        if dir != "." {
            check_entry_path(dir).map_err(|why| Rejection::UnsafePath {
                entry: name.clone(),
                why,
            })?;
        }
        if kind.is_some_and(|k| k != "directory") {
            return Err(Rejection::NotRegular {
                entry: name,
                kind: kind.unwrap_or("special file"),
            });
        }
        // Empty, stored or deflated (two bytes): no room to hide data in.
        if size != 0 || compressed_size > 2 || (method == STORED && compressed_size != 0) {
            return Err(unsupported("a directory entry that holds data".into()));
        }
        Some(DIRECTORY_ENTRY)
    } else {
        check_entry_path(&name).map_err(|why| Rejection::UnsafePath {
            entry: name.clone(),
            why,
        })?;
        if external & DOS_DIRECTORY != 0 && unix_mode.is_none_or(|m| m & S_IFMT != S_IFREG) {
            return Err(Rejection::NotRegular {
                entry: name,
                kind: "directory",
            });
        }
        if let Some(kind) = kind {
            return Err(Rejection::NotRegular { entry: name, kind });
        }
        executable = unix_mode.is_some_and(|m| m & 0o111 != 0);
        is_macos_metadata(&name).then_some(MACOS_METADATA)
    };
    let entry = RawEntry {
        name,
        method,
        crc32,
        compressed_size,
        size,
        header_offset,
        executable,
        ignored,
        flags,
        zip_name,
    };
    Ok((entry, next))
}

/// Duplicate names, names equal but for case, and a file that is also a
/// directory (a directory entry, or a prefix of another entry): each makes
/// extraction ambiguous.
fn check_names(entries: &[RawEntry]) -> Result<(), Rejection> {
    let mut exact: HashSet<&str> = HashSet::with_capacity(entries.len());
    let mut folded: HashMap<String, &str> = HashMap::with_capacity(entries.len());
    let mut files: HashSet<String> = HashSet::with_capacity(entries.len());
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
        if !entry.name.ends_with('/') {
            files.insert(entry.name.to_lowercase());
        }
    }
    for entry in entries {
        let mut prefix = entry.name.strip_suffix('/').unwrap_or(&entry.name);
        if entry.name.ends_with('/') && files.contains(&prefix.to_lowercase()) {
            return Err(Rejection::FileDirCollision {
                entry: prefix.to_owned(),
            });
        }
        while let Some((parent, _)) = prefix.rsplit_once('/') {
            if files.contains(&parent.to_lowercase()) {
                return Err(Rejection::FileDirCollision {
                    entry: parent.to_owned(),
                });
            }
            prefix = parent;
        }
    }
    Ok(())
}

/// Reads the entry's local header (and its data descriptor, when it has
/// one), checks them against the central record, and returns where the
/// entry ends.
fn check_local_header(file: &mut File, entry: &RawEntry, cd_offset: u64) -> Result<u64, ScanError> {
    let mismatch = |field| Rejection::HeaderMismatch {
        entry: entry.name.clone(),
        field,
    };
    let beyond = || Rejection::Overlap {
        entry: entry.name.clone(),
        other: "the central directory".into(),
    };
    if entry.header_offset + LFH_LEN > cd_offset {
        return Err(beyond().into());
    }
    let header = read_at(file, entry.header_offset, LFH_BYTES)?;
    if u32_at(&header, 0) != LFH_SIG {
        return Err(mismatch("the local header's position").into());
    }
    if u16_at(&header, 6) != entry.flags {
        return Err(mismatch("flags").into());
    }
    if u16_at(&header, 8) != entry.method {
        return Err(mismatch("compression method").into());
    }
    let name_len = u64::from(u16_at(&header, 26));
    let extra_len = u64::from(u16_at(&header, 28));
    if name_len != entry.zip_name.len() as u64 {
        return Err(mismatch("name").into());
    }
    let data_start = entry.header_offset + LFH_LEN + name_len + extra_len;
    if data_start > cd_offset {
        return Err(beyond().into());
    }
    let variable = read_at(
        file,
        entry.header_offset + LFH_LEN,
        usize::try_from(name_len + extra_len).unwrap_or(0),
    )?;
    let (local_name, extra) = variable.split_at(entry.zip_name.len());
    if local_name != entry.zip_name.as_bytes() {
        return Err(mismatch("name").into());
    }
    let extras = parse_extras(extra).ok_or_else(|| mismatch("a malformed extra field"))?;
    check_extras(&entry.name, local_name, &extras)?;
    let mut crc32 = u64::from(u32_at(&header, 14));
    let mut compressed_size = u64::from(u32_at(&header, 18));
    let mut size = u64::from(u32_at(&header, 22));
    let zip64 = resolve_zip64(
        &entry.name,
        &extras,
        &mut [
            ("size", &mut size),
            ("compressed size", &mut compressed_size),
        ],
    )?;
    let descriptor = entry.flags & FLAG_DESCRIPTOR != 0;
    // With a data descriptor the local header may leave these at zero; any
    // value it does give must be the central directory's.
    let agrees = |local: u64, central: u64| local == central || (descriptor && local == 0);
    if !agrees(crc32, u64::from(entry.crc32)) {
        return Err(mismatch("CRC-32").into());
    }
    if !agrees(compressed_size, entry.compressed_size) {
        return Err(mismatch("compressed size").into());
    }
    if !agrees(size, entry.size) {
        return Err(mismatch("size").into());
    }
    crc32 = u64::from(entry.crc32);
    compressed_size = entry.compressed_size;
    size = entry.size;
    let data_end = data_start
        .checked_add(compressed_size)
        .filter(|&end| end <= cd_offset)
        .ok_or_else(beyond)?;
    if !descriptor {
        return Ok(data_end);
    }
    let room = (cd_offset - data_end).min(MAX_DESCRIPTOR);
    let bytes = read_at(file, data_end, usize::try_from(room).unwrap_or(0))?;
    let wide = if zip64 { 8 } else { 4 };
    let matches = |at: usize| -> bool {
        let Some(b) = bytes.get(at..at + 4 + 2 * wide) else {
            return false;
        };
        let sizes = if wide == 8 {
            (u64_at(b, 4), u64_at(b, 12))
        } else {
            (u64::from(u32_at(b, 4)), u64::from(u32_at(b, 8)))
        };
        u64::from(u32_at(b, 0)) == crc32 && sizes == (compressed_size, size)
    };
    let len = if bytes.len() >= 4 && u32_at(&bytes, 0) == DESCRIPTOR_SIG && matches(4) {
        8 + 2 * wide
    } else if matches(0) {
        4 + 2 * wide
    } else {
        return Err(Rejection::Ambiguous(format!(
            "entry {:?}'s data descriptor disagrees with the central directory",
            entry.name
        ))
        .into());
    };
    Ok(data_end + len as u64)
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

/// Tells "trailing bytes after a zip" apart from "not a zip at all", from
/// the last bytes of the file.
fn explain_missing_eocd(tail: &[u8]) -> Rejection {
    let sig = EOCD_SIG.to_le_bytes();
    let Some(at) = tail.windows(4).rposition(|w| w == sig) else {
        return Rejection::NotZip("no zip end record (truncated, or another kind of file)".into());
    };
    if at + EOCD_BYTES > tail.len() {
        return Rejection::NotZip("its end record is cut short (truncated)".into());
    }
    let end = at + EOCD_BYTES + usize::from(u16_at(tail, at + 20));
    if end > tail.len() {
        return Rejection::NotZip("its archive comment is cut short (truncated)".into());
    }
    Rejection::TrailingBytes((tail.len() - end) as u64)
}

fn contains(haystack: &[u8], sig: u32) -> bool {
    let sig = sig.to_le_bytes();
    haystack.windows(4).any(|w| w == sig)
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

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(bytes)
}
