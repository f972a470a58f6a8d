//! Zips made byte by byte, so that tests can build every bundle a stranger
//! could send: valid ones, and ones with traversal names, symlinks,
//! duplicates, mismatched headers, overlapping entries or trailing bytes.
//! No binary fixture is checked in; this code is how each one is made.

use std::io::Write as _;

use sha2::{Digest, Sha256};

/// One zip entry as written.
#[derive(Clone, Debug)]
pub struct Entry {
    pub name: Vec<u8>,
    pub data: Vec<u8>,
    pub deflate: bool,
    /// Full Unix `st_mode` (file type and permissions) for the central record.
    pub mode: u32,
    /// A different name for the local header than the central directory's.
    pub local_name: Option<Vec<u8>>,
    /// A declared uncompressed size other than the real one.
    pub declared_size: Option<u32>,
    /// Extra general-purpose flags.
    pub flags: u16,
    /// Extra fields of the central record and of the local header.
    pub central_extra: Vec<u8>,
    pub local_extra: Vec<u8>,
    /// Written with a data descriptor (flag 3, zeros in the local header):
    /// the descriptor's bytes, or `None` for none. [`Entry::descriptor`]
    /// makes the honest one.
    pub descriptor: Option<Vec<u8>>,
}

impl Entry {
    pub fn new(name: impl AsRef<[u8]>, data: impl Into<Vec<u8>>) -> Self {
        Self {
            name: name.as_ref().to_vec(),
            data: data.into(),
            deflate: true,
            mode: 0o100_644,
            local_name: None,
            declared_size: None,
            flags: 0,
            central_extra: Vec::new(),
            local_extra: Vec::new(),
            descriptor: None,
        }
    }

    /// The data descriptor a streaming writer appends: signature, CRC-32,
    /// compressed size and size.
    pub fn descriptor(&self) -> Vec<u8> {
        let csize = if self.deflate {
            deflate(&self.data).len()
        } else {
            self.data.len()
        };
        let mut d = Vec::new();
        u32le(&mut d, 0x0807_4b50);
        u32le(&mut d, crc32fast::hash(&self.data));
        u32le(&mut d, u32::try_from(csize).unwrap());
        u32le(&mut d, u32::try_from(self.data.len()).unwrap());
        d
    }
}

/// One extra field: id, length, data.
pub fn extra_field(id: u16, data: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    u16le(&mut f, id);
    u16le(&mut f, u16::try_from(data.len()).unwrap());
    f.extend_from_slice(data);
    f
}

/// Puts `extra` into a header whose extra-length field is at `len_at` and
/// whose extra field starts at `at`.
fn with_extra(header: &mut Vec<u8>, len_at: usize, at: usize, extra: &[u8]) {
    header[len_at..len_at + 2].copy_from_slice(&u16::try_from(extra.len()).unwrap().to_le_bytes());
    header.splice(at..at, extra.iter().copied());
}

/// A zip archive under construction.
#[derive(Clone, Debug, Default)]
pub struct Zip {
    pub entries: Vec<Entry>,
    /// Bytes before the first entry.
    pub prefix: Vec<u8>,
    /// Bytes after the end record.
    pub suffix: Vec<u8>,
    /// The archive comment, in the end record.
    pub comment: Vec<u8>,
}

pub fn deflate(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::new(6));
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

fn u16le(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn u32le(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

/// A local file header.
pub fn local_header(
    name: &[u8],
    method: u16,
    flags: u16,
    crc: u32,
    csize: u32,
    usize_: u32,
) -> Vec<u8> {
    let mut h = Vec::new();
    u32le(&mut h, 0x0403_4b50);
    u16le(&mut h, 20);
    u16le(&mut h, flags);
    u16le(&mut h, method);
    u16le(&mut h, 0);
    u16le(&mut h, 0x21);
    u32le(&mut h, crc);
    u32le(&mut h, csize);
    u32le(&mut h, usize_);
    u16le(&mut h, u16::try_from(name.len()).unwrap());
    u16le(&mut h, 0);
    h.extend_from_slice(name);
    h
}

/// A central directory record.
#[allow(clippy::too_many_arguments)]
pub fn central_record(
    name: &[u8],
    method: u16,
    flags: u16,
    crc: u32,
    csize: u32,
    usize_: u32,
    mode: u32,
    offset: u32,
) -> Vec<u8> {
    let mut c = Vec::new();
    u32le(&mut c, 0x0201_4b50);
    u16le(&mut c, (3 << 8) | 0x14);
    u16le(&mut c, 20);
    u16le(&mut c, flags);
    u16le(&mut c, method);
    u16le(&mut c, 0);
    u16le(&mut c, 0x21);
    u32le(&mut c, crc);
    u32le(&mut c, csize);
    u32le(&mut c, usize_);
    u16le(&mut c, u16::try_from(name.len()).unwrap());
    u16le(&mut c, 0);
    u16le(&mut c, 0);
    u16le(&mut c, 0);
    u16le(&mut c, 0);
    u32le(&mut c, mode << 16);
    u32le(&mut c, offset);
    c.extend_from_slice(name);
    c
}

pub fn end_record(count: usize, cd_size: usize, cd_offset: usize) -> Vec<u8> {
    let mut e = Vec::new();
    u32le(&mut e, 0x0605_4b50);
    u16le(&mut e, 0);
    u16le(&mut e, 0);
    u16le(&mut e, u16::try_from(count).unwrap());
    u16le(&mut e, u16::try_from(count).unwrap());
    u32le(&mut e, u32::try_from(cd_size).unwrap());
    u32le(&mut e, u32::try_from(cd_offset).unwrap());
    u16le(&mut e, 0);
    e
}

impl Zip {
    pub fn bytes(&self) -> Vec<u8> {
        let mut out = self.prefix.clone();
        let base = out.len();
        let mut central = Vec::new();
        for e in &self.entries {
            let offset = u32::try_from(out.len() - base).unwrap();
            let (method, payload) = if e.deflate {
                (8, deflate(&e.data))
            } else {
                (0, e.data.clone())
            };
            let crc = crc32fast::hash(&e.data);
            let csize = u32::try_from(payload.len()).unwrap();
            let usize_ = e
                .declared_size
                .unwrap_or_else(|| u32::try_from(e.data.len()).unwrap());
            let local_name = e.local_name.as_deref().unwrap_or(&e.name);
            // As Python's zipfile does: non-ASCII names are marked UTF-8.
            let mut flags = e.flags;
            if !e.name.is_ascii() {
                flags |= 1 << 11;
            }
            if e.descriptor.is_some() {
                flags |= 1 << 3;
            }
            let mut local = if e.descriptor.is_some() {
                local_header(local_name, method, flags, 0, 0, 0)
            } else {
                local_header(local_name, method, flags, crc, csize, usize_)
            };
            with_extra(&mut local, 28, 30 + local_name.len(), &e.local_extra);
            out.extend(local);
            out.extend(payload);
            if let Some(descriptor) = &e.descriptor {
                out.extend(descriptor);
            }
            let mut record =
                central_record(&e.name, method, flags, crc, csize, usize_, e.mode, offset);
            with_extra(&mut record, 30, 46 + e.name.len(), &e.central_extra);
            central.extend(record);
        }
        let cd_offset = out.len() - base;
        let cd_size = central.len();
        out.extend(central);
        let mut end = end_record(self.entries.len(), cd_size, cd_offset);
        end[20..22].copy_from_slice(&u16::try_from(self.comment.len()).unwrap().to_le_bytes());
        out.extend(end);
        out.extend(&self.comment);
        out.extend(&self.suffix);
        out
    }
}

/// The non-recursive zip bomb: entry `a` is stored and its data holds entry
/// `b`'s local header and data, so the two share bytes.
pub fn overlapping(manifest: &[u8], listed: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    let mut count = 0;
    let add = |out: &mut Vec<u8>, central: &mut Vec<u8>, name: &str, data: &[u8]| {
        let offset = u32::try_from(out.len()).unwrap();
        let crc = crc32fast::hash(data);
        let size = u32::try_from(data.len()).unwrap();
        out.extend(local_header(name.as_bytes(), 0, 0, crc, size, size));
        out.extend(data);
        central.extend(central_record(
            name.as_bytes(),
            0,
            0,
            crc,
            size,
            size,
            0o100_644,
            offset,
        ));
    };
    add(&mut out, &mut central, "bugpack.yaml", manifest);
    count += 1;
    let (inner_name, inner_data) = listed[1];
    let inner_crc = crc32fast::hash(inner_data);
    let inner_size = u32::try_from(inner_data.len()).unwrap();
    let mut outer_data = local_header(
        inner_name.as_bytes(),
        0,
        0,
        inner_crc,
        inner_size,
        inner_size,
    );
    let inner_offset_in_outer = 0;
    outer_data.extend(inner_data);
    let outer_offset = out.len();
    add(&mut out, &mut central, listed[0].0, &outer_data);
    count += 1;
    let header_len = 30 + listed[0].0.len();
    let inner_offset = u32::try_from(outer_offset + header_len + inner_offset_in_outer).unwrap();
    central.extend(central_record(
        inner_name.as_bytes(),
        0,
        0,
        inner_crc,
        inner_size,
        inner_size,
        0o100_644,
        inner_offset,
    ));
    count += 1;
    let cd_offset = out.len();
    let cd_size = central.len();
    out.extend(central);
    out.extend(end_record(count, cd_size, cd_offset));
    out
}

pub fn sha256(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// A bundle's files and manifest, from which a [`Zip`] is made.
#[derive(Clone, Debug)]
pub struct BundleSpec {
    pub files: Vec<(String, Vec<u8>)>,
    pub title: String,
    pub scenario: Option<String>,
}

pub const SCENARIO: &str = "name: demo\nrun: sh run.sh\ntimeout: 5s\nexpect: {exit: 3}\n";

/// A scenario whose description is folded YAML (it ends in a line break)
/// and whose run step is a script with terminal control sequences in it:
/// a window-title change (`ESC ] 0 ; pwned BEL`) and a screen clear
/// (`ESC [ 2 J`).
pub const HOSTILE_SCENARIO: &str = "name: demo\n\
description: >\n  polling UI hangs\n  behind a caching proxy\n\
run: \"printf '\\e]0;pwned\\a'\\necho '\\e[2J'\\nsh run.sh\\n\"\n\
timeout: 5s\nexpect: {exit: 3}\n";

/// The bundle title that goes with [`HOSTILE_SCENARIO`] (YAML, double-quoted).
pub const HOSTILE_TITLE: &str = "\"bug \\e]0;pwned\\a \\e[2J\"";

impl BundleSpec {
    /// A small bundle that every reader rule accepts.
    pub fn valid() -> Self {
        Self {
            files: vec![
                ("ISSUE.md".into(), b"# demo\n".to_vec()),
                ("steps.md".into(), b"1. run it\n2. it fails\n".to_vec()),
                (
                    "scenario/scenario.yaml".into(),
                    SCENARIO.as_bytes().to_vec(),
                ),
                ("scenario/run.sh".into(), b"echo boom; exit 3\n".to_vec()),
            ],
            title: "demo bug".into(),
            scenario: Some("demo".into()),
        }
    }

    pub fn with_file(mut self, path: &str, data: impl Into<Vec<u8>>) -> Self {
        self.files.retain(|(p, _)| p != path);
        self.files.push((path.to_owned(), data.into()));
        self.files.sort();
        self
    }

    /// The manifest text listing `files` as they are.
    pub fn manifest(&self) -> String {
        let mut files = self.files.clone();
        files.sort();
        let mut text = format!(
            "format: bugpack/v1\nid: {}\ncreated: 2026-11-22T10:00:00Z\ntitle: {}\nbugpack_version: 0.1.0\n",
            "0123456789abcdef0123456789abcdef", self.title
        );
        match &self.scenario {
            Some(name) => text.push_str(&format!("scenario:\n  name: {name}\n")),
            None => text.push_str("scenario: null\n"),
        }
        text.push_str("redactions: {}\nfiles:\n");
        for (path, data) in &files {
            text.push_str(&format!(
                "- path: {path}\n  size: {}\n  sha256: {}\n",
                data.len(),
                sha256(data)
            ));
        }
        text
    }

    /// The zip: manifest first, then the files in order.
    pub fn zip(&self) -> Zip {
        self.zip_with_manifest(self.manifest().into_bytes())
    }

    pub fn zip_with_manifest(&self, manifest: Vec<u8>) -> Zip {
        let mut entries = vec![Entry::new("bugpack.yaml", manifest)];
        let mut files = self.files.clone();
        files.sort();
        entries.extend(files.into_iter().map(|(p, d)| Entry::new(p, d)));
        Zip {
            entries,
            ..Zip::default()
        }
    }
}
