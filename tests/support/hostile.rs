//! The hostile-bundle corpus: every bundle here is one a stranger could
//! attach to an issue to attack whoever runs bugpack on it, made byte by
//! byte (no fixture is checked in). Each function builds one case; apart
//! from the fault it is named after, the bundle is valid, so a reader that
//! refuses it refuses it for that fault.

use std::fmt::Write as _;

use super::zipper::{
    BundleSpec, Entry, SCENARIO, Zip, central_record, deflate, end_record, extra_field,
    local_header, overlapping, sha256,
};

/// The script every case's scenario runs: proof of execution if it ever did.
pub const PAYLOAD: &[u8] = b"echo pwned > \"$HOME/../../pwned\"\n";

/// A valid bundle's files: issue, steps, scenario and its script.
fn base() -> Vec<(Vec<u8>, Vec<u8>)> {
    BundleSpec::valid()
        .files
        .into_iter()
        .map(|(p, d)| (p.into_bytes(), d))
        .collect()
}

/// A manifest listing `files`, each path JSON-quoted (valid YAML) so that
/// no name can break the manifest itself.
pub fn manifest_for(files: &[(Vec<u8>, Vec<u8>)]) -> String {
    let mut text = String::from(
        "format: bugpack/v1\nid: 0123456789abcdef0123456789abcdef\ncreated: 2026-11-22T10:00:00Z\n\
         title: hostile\nbugpack_version: 0.1.0\nscenario:\n  name: demo\nredactions: {}\nfiles:\n",
    );
    let mut sorted: Vec<_> = files.iter().collect();
    sorted.sort();
    for (path, data) in sorted {
        let path = serde_json::to_string(&String::from_utf8_lossy(path)).unwrap();
        writeln!(
            text,
            "- path: {path}\n  size: {}\n  sha256: {}",
            data.len(),
            sha256(data)
        )
        .unwrap();
    }
    text
}

/// The zip of `files` (in this order) after a manifest listing them.
fn zip_of(files: &[(Vec<u8>, Vec<u8>)]) -> Zip {
    let mut entries = vec![Entry::new("bugpack.yaml", manifest_for(files))];
    entries.extend(files.iter().map(|(p, d)| Entry::new(p, d.clone())));
    Zip {
        entries,
        ..Zip::default()
    }
}

/// A valid bundle plus one listed entry called `name`.
pub fn named(name: &[u8]) -> Vec<u8> {
    let mut files = base();
    files.push((name.to_vec(), PAYLOAD.to_vec()));
    zip_of(&files).bytes()
}

/// A valid bundle plus one listed entry with Unix mode `mode` (type and
/// permission bits).
pub fn with_mode(name: &str, data: &[u8], mode: u32) -> Vec<u8> {
    let mut files = base();
    files.push((name.as_bytes().to_vec(), data.to_vec()));
    let mut zip = zip_of(&files);
    zip.entries.last_mut().unwrap().mode = mode;
    zip.bytes()
}

/// A valid bundle whose manifest is `manifest` (listing nothing useful).
pub fn with_manifest(manifest: impl Into<Vec<u8>>) -> Vec<u8> {
    BundleSpec::valid()
        .zip_with_manifest(manifest.into())
        .bytes()
}

/// A valid bundle whose manifest is the valid one with `text` appended.
pub fn with_manifest_tail(text: &str) -> Vec<u8> {
    let spec = BundleSpec::valid();
    with_manifest(format!("{}{text}", spec.manifest()))
}

/// A valid bundle whose scenario file is `scenario`, correctly listed.
pub fn with_scenario(scenario: impl Into<Vec<u8>>) -> Vec<u8> {
    BundleSpec::valid()
        .with_file("scenario/scenario.yaml", scenario)
        .zip()
        .bytes()
}

// Traversal, in its many spellings.

pub fn dotdot_slash() -> Vec<u8> {
    named(b"../pwned.sh")
}

pub fn dotdot_backslash() -> Vec<u8> {
    named(b"..\\pwned.sh")
}

pub fn absolute() -> Vec<u8> {
    named(b"/etc/cron.d/pwned")
}

pub fn drive_backslash() -> Vec<u8> {
    named(b"C:\\Windows\\pwned.bat")
}

pub fn drive_slash() -> Vec<u8> {
    named(b"C:/Windows/pwned.bat")
}

pub fn unc_path() -> Vec<u8> {
    named(b"\\\\server\\share\\pwned.bat")
}

pub fn dot_then_dotdot() -> Vec<u8> {
    named(b"./../pwned.sh")
}

pub fn dotdot_inside() -> Vec<u8> {
    named(b"scenario/../../pwned.sh")
}

pub fn dotdot_last() -> Vec<u8> {
    named(b"scenario/..")
}

/// U+2215 DIVISION SLASH, which Windows' best-fit code pages turn into `/`.
pub fn division_slash() -> Vec<u8> {
    named("scenario/..\u{2215}..\u{2215}..\u{2215}pwned.sh".as_bytes())
}

/// U+FF0F FULLWIDTH SOLIDUS, likewise.
pub fn fullwidth_solidus() -> Vec<u8> {
    named("scenario/..\u{ff0f}..\u{ff0f}pwned.sh".as_bytes())
}

/// U+FF3C FULLWIDTH REVERSE SOLIDUS, which best-fit turns into `\`.
pub fn fullwidth_reverse_solidus() -> Vec<u8> {
    named("scenario/..\u{ff3c}..\u{ff3c}pwned.bat".as_bytes())
}

pub fn nul_in_name() -> Vec<u8> {
    named(b"scenario/run.sh\0/../../pwned.sh")
}

pub fn empty_name() -> Vec<u8> {
    named(b"")
}

/// `/` as an overlong UTF-8 sequence (C0 AF), which lax decoders accept.
pub fn overlong_slash() -> Vec<u8> {
    named(b"scenario/..\xc0\xaf..\xc0\xafpwned.sh")
}

pub fn invalid_utf8_name() -> Vec<u8> {
    named(b"scenario/\xff\xfe.sh")
}

/// A UTF-16 surrogate half encoded as UTF-8 (CESU-8, WTF-8).
pub fn surrogate_name() -> Vec<u8> {
    named(b"scenario/\xed\xa0\x80.sh")
}

pub fn too_deep() -> Vec<u8> {
    named(format!("logs/{}x.log", "d/".repeat(40)).as_bytes())
}

/// 20,000 directory levels in one name.
pub fn very_deep() -> Vec<u8> {
    named(format!("logs/{}x.log", "d/".repeat(20_000)).as_bytes())
}

pub fn long_component() -> Vec<u8> {
    named(format!("logs/{}.log", "x".repeat(300)).as_bytes())
}

// Entries that are not regular files.

pub fn symlink() -> Vec<u8> {
    with_mode("scenario/passwd", b"/etc/passwd", 0o120_777)
}

/// A symlink to a directory outside, then a file written through it.
pub fn symlink_then_file_through_it() -> Vec<u8> {
    let mut files = base();
    files.push((b"scenario/link".to_vec(), b"/tmp".to_vec()));
    files.push((b"scenario/link/pwned.sh".to_vec(), PAYLOAD.to_vec()));
    let mut zip = zip_of(&files);
    let n = zip.entries.len();
    zip.entries[n - 2].mode = 0o120_777;
    zip.bytes()
}

pub fn char_device() -> Vec<u8> {
    with_mode("scenario/null", b"", 0o020_666)
}

pub fn block_device() -> Vec<u8> {
    with_mode("scenario/sda", b"", 0o060_660)
}

pub fn fifo() -> Vec<u8> {
    with_mode("scenario/fifo", b"", 0o010_644)
}

pub fn socket() -> Vec<u8> {
    with_mode("scenario/sock", b"", 0o140_755)
}

pub fn directory_entry() -> Vec<u8> {
    with_mode("scenario/dir", b"", 0o040_755)
}

pub fn setuid_file() -> Vec<u8> {
    with_mode("scenario/su.sh", PAYLOAD, 0o104_755)
}

/// Zip has no hard links; the nearest thing is a second central record for
/// the same local header (and bytes) under another name.
pub fn hard_link() -> Vec<u8> {
    let files = base();
    let manifest = {
        let mut listed = files.clone();
        listed.push((b"scenario/copy.sh".to_vec(), files[3].1.clone()));
        manifest_for(&listed)
    };
    let mut out = Vec::new();
    let mut central = Vec::new();
    let mut count = 0;
    let mut script_offset = 0;
    let entries: Vec<(Vec<u8>, Vec<u8>)> =
        std::iter::once((b"bugpack.yaml".to_vec(), manifest.into_bytes()))
            .chain(files.clone())
            .collect();
    for (name, data) in &entries {
        let offset = u32::try_from(out.len()).unwrap();
        if name == b"scenario/run.sh" {
            script_offset = offset;
        }
        let crc = crc32fast::hash(data);
        let size = u32::try_from(data.len()).unwrap();
        out.extend(local_header(name, 0, 0, crc, size, size));
        out.extend(data);
        central.extend(central_record(
            name, 0, 0, crc, size, size, 0o100_644, offset,
        ));
        count += 1;
    }
    let data = &files[3].1;
    let size = u32::try_from(data.len()).unwrap();
    central.extend(central_record(
        b"scenario/copy.sh",
        0,
        0,
        crc32fast::hash(data),
        size,
        size,
        0o100_644,
        script_offset,
    ));
    count += 1;
    finish(out, &central, count)
}

fn finish(mut out: Vec<u8>, central: &[u8], count: usize) -> Vec<u8> {
    let cd_offset = out.len();
    out.extend(central);
    out.extend(end_record(count, central.len(), cd_offset));
    out
}

// Names that collide.

pub fn duplicate_names() -> Vec<u8> {
    let mut zip = BundleSpec::valid().zip();
    let mut evil = zip.entries[4].clone();
    evil.data = PAYLOAD.to_vec();
    zip.entries.push(evil);
    zip.bytes()
}

pub fn case_collision() -> Vec<u8> {
    named(b"scenario/RUN.sh")
}

/// U+212A KELVIN SIGN folds to `k` on case-insensitive file systems.
pub fn kelvin_sign_collision() -> Vec<u8> {
    let mut files = base();
    files.push((b"logs/k.log".to_vec(), b"one".to_vec()));
    files.push(("logs/\u{212a}.log".as_bytes().to_vec(), b"two".to_vec()));
    zip_of(&files).bytes()
}

pub fn file_and_directory() -> Vec<u8> {
    let mut files = base();
    files.push((b"logs/a".to_vec(), b"file".to_vec()));
    files.push((b"logs/a/b".to_vec(), b"under it".to_vec()));
    zip_of(&files).bytes()
}

/// The central directory names one thing, the local header another.
pub fn local_name_differs() -> Vec<u8> {
    let mut zip = BundleSpec::valid().zip();
    zip.entries[4].local_name = Some(b"../../pwned.sh".to_vec());
    zip.bytes()
}

// Bombs and sizes.

/// Two entries sharing bytes: the simplest non-recursive zip bomb.
pub fn overlapping_pair() -> Vec<u8> {
    let inner: &[u8] = b"inner data";
    let spec = BundleSpec {
        files: vec![
            ("logs/a.log".into(), Vec::new()),
            ("logs/b.log".into(), inner.to_vec()),
        ],
        title: "overlap".into(),
        scenario: None,
    };
    overlapping(
        spec.manifest().as_bytes(),
        &[("logs/a.log", b""), ("logs/b.log", inner)],
    )
}

/// David Fifield's non-recursive zip bomb: 200 entries whose deflate
/// streams each quote the local headers after them (as stored blocks), then
/// share one kernel of 10 MiB of zeros. To a lax reader every entry is
/// valid, and together they expand to 2 GB.
pub fn fifield_bomb() -> Vec<u8> {
    quoted_overlap_bomb(200, 10 << 20)
}

fn quoted_overlap_bomb(n: usize, kernel_bytes: usize) -> Vec<u8> {
    let kernel_plain = vec![0u8; kernel_bytes];
    let kernel = deflate(&kernel_plain);
    let kernel_crc = crc32fast::hash(&kernel_plain);
    let names: Vec<String> = (0..n).map(|i| format!("logs/{i:05}.log")).collect();
    let header_len = |i: usize| 30 + names[i].len();
    // Entry i decompresses to the local headers of entries i+1.. and then
    // the kernel; its compressed bytes are, for each of those headers, a
    // 5-byte stored-block header quoting it and the header itself, then
    // the kernel.
    let plain_len = |i: usize| (i + 1..n).map(header_len).sum::<usize>() + kernel_plain.len();
    let compressed_len =
        |i: usize| (i + 1..n).map(|j| 5 + header_len(j)).sum::<usize>() + kernel.len();
    let mut crcs = vec![0u32; n];
    let mut headers: Vec<Vec<u8>> = vec![Vec::new(); n];
    for i in (0..n).rev() {
        let mut hasher = crc32fast::Hasher::new();
        for header in &headers[i + 1..] {
            hasher.update(header);
        }
        hasher.combine(&crc32fast::Hasher::new_with_initial_len(
            kernel_crc,
            kernel_plain.len() as u64,
        ));
        crcs[i] = hasher.finalize();
        headers[i] = local_header(
            names[i].as_bytes(),
            8,
            0,
            crcs[i],
            u32::try_from(compressed_len(i)).unwrap(),
            u32::try_from(plain_len(i)).unwrap(),
        );
    }
    let mut manifest = manifest_for(&[]).replace("scenario:\n  name: demo\n", "scenario: null\n");
    for (i, name) in names.iter().enumerate() {
        writeln!(
            manifest,
            "- path: {name}\n  size: {}\n  sha256: {}",
            plain_len(i),
            "0".repeat(64)
        )
        .unwrap();
    }
    let manifest = manifest.into_bytes();
    let mut out = Vec::new();
    let mut central = Vec::new();
    let crc = crc32fast::hash(&manifest);
    let size = u32::try_from(manifest.len()).unwrap();
    out.extend(local_header(b"bugpack.yaml", 0, 0, crc, size, size));
    out.extend(&manifest);
    central.extend(central_record(
        b"bugpack.yaml",
        0,
        0,
        crc,
        size,
        size,
        0o100_644,
        0,
    ));
    for i in 0..n {
        let offset = u32::try_from(out.len()).unwrap();
        out.extend(&headers[i]);
        if i + 1 < n {
            let quoted = u16::try_from(header_len(i + 1)).unwrap();
            out.push(0); // BFINAL = 0, BTYPE = 00 (stored)
            out.extend(quoted.to_le_bytes());
            out.extend((!quoted).to_le_bytes());
        }
        central.extend(central_record(
            names[i].as_bytes(),
            8,
            0,
            crcs[i],
            u32::try_from(compressed_len(i)).unwrap(),
            u32::try_from(plain_len(i)).unwrap(),
            0o100_644,
            offset,
        ));
    }
    out.extend(&kernel);
    finish(out, &central, n + 1)
}

/// An entry that declares 1 GiB (central directory, local header and
/// manifest agree) over a few bytes of data.
pub fn declared_one_gib() -> Vec<u8> {
    let gib = 1u32 << 30;
    let spec = BundleSpec::valid();
    let manifest = format!(
        "{}- path: logs/huge.log\n  size: {gib}\n  sha256: {}\n",
        spec.manifest(),
        "0".repeat(64)
    );
    let mut zip = spec.zip_with_manifest(manifest.into_bytes());
    let mut huge = Entry::new("logs/huge.log", b"small".to_vec());
    huge.declared_size = Some(gib);
    zip.entries.push(huge);
    zip.bytes()
}

/// An entry that declares 1,000 bytes but whose deflate stream expands to
/// 256 MiB: a reader that trusts the stream instead of the declared size
/// fills the disk.
pub fn expands_past_its_size() -> Vec<u8> {
    let mut files = base();
    files.push((b"logs/zeros.log".to_vec(), vec![0u8; 1000]));
    let mut zip = zip_of(&files);
    let last = zip.entries.last_mut().unwrap();
    last.data = vec![0u8; 256 << 20];
    last.declared_size = Some(1000);
    zip.bytes()
}

/// `count` empty stored entries, their end record claiming `claimed`.
fn many_entries(count: usize, claimed: u16) -> Vec<u8> {
    let manifest = BundleSpec::valid().manifest().into_bytes();
    let mut out = Vec::new();
    let mut central = Vec::new();
    let crc = crc32fast::hash(&manifest);
    let size = u32::try_from(manifest.len()).unwrap();
    out.extend(local_header(b"bugpack.yaml", 0, 0, crc, size, size));
    out.extend(&manifest);
    central.extend(central_record(
        b"bugpack.yaml",
        0,
        0,
        crc,
        size,
        size,
        0o100_644,
        0,
    ));
    for i in 1..count {
        let name = format!("logs/{i}");
        let offset = u32::try_from(out.len()).unwrap();
        out.extend(local_header(name.as_bytes(), 0, 0, 0, 0, 0));
        central.extend(central_record(
            name.as_bytes(),
            0,
            0,
            0,
            0,
            0,
            0o100_644,
            offset,
        ));
    }
    let cd_offset = u32::try_from(out.len()).unwrap();
    let cd_size = u32::try_from(central.len()).unwrap();
    out.extend(central);
    out.extend(0x0605_4b50u32.to_le_bytes());
    out.extend([0u8; 4]);
    out.extend(claimed.to_le_bytes());
    out.extend(claimed.to_le_bytes());
    out.extend(cd_size.to_le_bytes());
    out.extend(cd_offset.to_le_bytes());
    out.extend([0u8; 2]);
    out
}

/// 100,000 tiny entries; the 16-bit count in the end record wraps.
pub fn hundred_thousand_entries() -> Vec<u8> {
    many_entries(100_000, u16::try_from(100_000 % 65_536).unwrap())
}

/// 65,541 entries whose wrapped count claims 5.
pub fn entry_count_wrapped_small() -> Vec<u8> {
    many_entries(65_541, 5)
}

/// The most entries a classic end record counts (65,535 means zip64).
pub fn max_classic_entries() -> Vec<u8> {
    many_entries(65_534, 65_534)
}

/// A zip64 end-of-central-directory locator before the end record.
pub fn zip64() -> Vec<u8> {
    let mut bytes = BundleSpec::valid().zip().bytes();
    let eocd = bytes.len() - 22;
    let mut locator = Vec::new();
    locator.extend(0x0706_4b50u32.to_le_bytes());
    locator.extend([0u8; 16]);
    // Where a zip64 writer puts it: right before the end record.
    bytes.splice(eocd..eocd, locator);
    bytes
}

pub fn trailing_bytes() -> Vec<u8> {
    let mut zip = BundleSpec::valid().zip();
    zip.suffix = b"#!/bin/sh\necho polyglot\n".to_vec();
    zip.bytes()
}

pub fn leading_bytes() -> Vec<u8> {
    let mut zip = BundleSpec::valid().zip();
    zip.prefix = b"#!/bin/sh\necho polyglot; exit 0\n".to_vec();
    zip.bytes()
}

pub fn encrypted() -> Vec<u8> {
    let mut zip = BundleSpec::valid().zip();
    zip.entries[4].flags = 1;
    zip.bytes()
}

pub fn data_descriptor() -> Vec<u8> {
    let mut zip = BundleSpec::valid().zip();
    zip.entries[4].flags = 1 << 3;
    zip.bytes()
}

pub fn unlisted_entry() -> Vec<u8> {
    let mut zip = BundleSpec::valid().zip();
    zip.entries.push(Entry::new("scenario/evil.sh", PAYLOAD));
    zip.bytes()
}

/// The manifest lists a traversal path (that no entry has).
pub fn listed_traversal() -> Vec<u8> {
    let spec = BundleSpec::valid();
    let manifest = format!(
        "{}- path: ../../pwned.sh\n  size: {}\n  sha256: {}\n",
        spec.manifest(),
        PAYLOAD.len(),
        sha256(PAYLOAD)
    );
    with_manifest(manifest)
}

// YAML.

/// The billion laughs: nine levels of ten aliases each.
pub fn billion_laughs() -> Vec<u8> {
    let mut text = String::from("a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for i in 1..10 {
        let refs = vec![format!("*a{}", i - 1); 10].join(", ");
        writeln!(text, "a{i}: &a{i} [{refs}]").unwrap();
    }
    with_manifest_tail(&text)
}

/// One anchor referenced thousands of times: small, and millions of nodes
/// once expanded, past `serde_yaml`'s own billion-laughs guard.
pub fn one_anchor_many_aliases() -> Vec<u8> {
    let big = vec!["x"; 2000].join(", ");
    let refs = vec!["*big"; 3000].join(", ");
    with_manifest_tail(&format!("big: &big [{big}]\nrefs: [{refs}]\n"))
}

pub fn deeply_nested_flow() -> Vec<u8> {
    with_manifest_tail(&format!("deep: {}\n", "[".repeat(100_000)))
}

/// Nested block mappings, well formed, 200 levels deep.
pub fn deeply_nested_block() -> Vec<u8> {
    let mut text = String::from("deep:\n");
    for level in 1..200 {
        writeln!(text, "{}k:", " ".repeat(level)).unwrap();
    }
    with_manifest_tail(&text)
}

/// A 100 MB manifest, stored.
pub fn manifest_100mb_stored() -> Vec<u8> {
    let mut zip = BundleSpec::valid().zip();
    let manifest = &mut zip.entries[0];
    manifest.data.extend(
        format!("# {}\n", "padding ".repeat(12))
            .repeat((100 << 20) / 100)
            .into_bytes(),
    );
    manifest.deflate = false;
    zip.bytes()
}

/// A 100 MB manifest, deflated, of text that does not compress past the
/// ratio limit (so only its size can refuse it).
pub fn manifest_100mb_deflated() -> Vec<u8> {
    let mut zip = BundleSpec::valid().zip();
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut text = Vec::with_capacity(100 << 20);
    while text.len() < 100 << 20 {
        text.extend_from_slice(b"# ");
        for _ in 0..60 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            text.push(b"abcdefghijklmnopqrstuvwxyz0123456789"[(state % 36) as usize]);
        }
        text.push(b'\n');
    }
    zip.entries[0].data.extend(text);
    zip.bytes()
}

pub fn manifest_invalid_utf8() -> Vec<u8> {
    let spec = BundleSpec::valid();
    let mut manifest = spec.manifest().into_bytes();
    let at = manifest.windows(5).position(|w| w == b"title").unwrap() + 7;
    manifest.splice(at..at, *b"\xff\xfe");
    with_manifest(manifest)
}

pub fn manifest_utf16() -> Vec<u8> {
    let text = BundleSpec::valid().manifest();
    let mut manifest = vec![0xff, 0xfe];
    for unit in text.encode_utf16() {
        manifest.extend(unit.to_le_bytes());
    }
    with_manifest(manifest)
}

pub fn manifest_two_documents() -> Vec<u8> {
    with_manifest_tail("---\nformat: bugpack/v1\n")
}

/// A language-specific tag, the way into `PyYAML`'s unsafe loader.
pub fn manifest_with_tags() -> Vec<u8> {
    let manifest = BundleSpec::valid().manifest().replace(
        "title: demo bug",
        "title: !!python/object/apply:os.system [\"id\"]",
    );
    with_manifest(manifest)
}

pub fn scenario_with_aliases() -> Vec<u8> {
    with_scenario(format!("{SCENARIO}env: &e {{A: '1'}}\nx: *e\n"))
}

pub fn scenario_deeply_nested() -> Vec<u8> {
    with_scenario(format!("{SCENARIO}env: {}\n", "{a: ".repeat(50_000)))
}

/// A 2 MiB scenario, listed with its true size and hash.
pub fn scenario_2mib() -> Vec<u8> {
    let mut text = SCENARIO.to_owned();
    text.push_str(&"# padding padding padding\n".repeat((2 << 20) / 26));
    with_scenario(text)
}

// Signatures.

/// A signature that verifies — over a different manifest.
pub fn signature_over_another_manifest() -> Vec<u8> {
    let spec = BundleSpec::valid();
    let key = bugpack::sign::SigningKey::generate("mallory@example.com").unwrap();
    let sig = key
        .sign(spec.manifest().replace("demo bug", "harmless").as_bytes())
        .unwrap();
    signed(&spec, sig)
}

pub fn signature_garbage() -> Vec<u8> {
    signed(
        &BundleSpec::valid(),
        b"-----BEGIN SSH SIGNATURE-----\nnot base64 at all\n-----END SSH SIGNATURE-----\n".to_vec(),
    )
}

/// A signature file past the 64 KiB bugpack reads of one, stored so that
/// no compression-ratio limit catches it first.
pub fn signature_huge() -> Vec<u8> {
    let mut zip = BundleSpec::valid().zip();
    let mut sig = Entry::new("bugpack.yaml.sig", vec![b'A'; 1 << 20]);
    sig.deflate = false;
    zip.entries.insert(1, sig);
    zip.bytes()
}

fn signed(spec: &BundleSpec, sig: Vec<u8>) -> Vec<u8> {
    let mut zip = spec.zip();
    zip.entries.insert(1, Entry::new("bugpack.yaml.sig", sig));
    zip.bytes()
}

// Parser ambiguities ("My ZIP isn't your ZIP", USENIX Security 2025): each
// makes two zip parsers see two different archives.

/// Where entry `index`'s central record starts, in a zip without a comment.
fn central_offset(bytes: &[u8], index: usize) -> usize {
    let le16 = |at: usize| usize::from(u16::from_le_bytes([bytes[at], bytes[at + 1]]));
    let eocd = bytes.len() - 22;
    let mut at = usize::try_from(u32::from_le_bytes(
        bytes[eocd + 16..eocd + 20].try_into().unwrap(),
    ))
    .unwrap();
    for _ in 0..index {
        at += 46 + le16(at + 28) + le16(at + 30) + le16(at + 32);
    }
    at
}

/// Where entry `index`'s local header starts.
fn local_offset(bytes: &[u8], index: usize) -> usize {
    let at = central_offset(bytes, index) + 42;
    usize::try_from(u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap())).unwrap()
}

/// The valid bundle with `field` of entry 4's local header (`steps.md`) patched.
fn local_patched(field: usize, value: &[u8]) -> Vec<u8> {
    let mut bytes = BundleSpec::valid().zip().bytes();
    let at = local_offset(&bytes, 4) + field;
    bytes[at..at + value.len()].copy_from_slice(value);
    bytes
}

/// A complete second end record as the archive comment: a parser that
/// scans back from the end stops at it and sees an empty archive.
pub fn two_end_records() -> Vec<u8> {
    let mut zip = BundleSpec::valid().zip();
    zip.comment = end_record(0, 0, 0);
    zip.bytes()
}

/// The end record's signature inside the comment.
pub fn end_record_in_comment() -> Vec<u8> {
    let mut zip = BundleSpec::valid().zip();
    zip.comment = [b"see ".as_slice(), b"PK\x05\x06", &[b'x'; 40]].concat();
    zip.bytes()
}

pub fn local_flags_differ() -> Vec<u8> {
    local_patched(6, &(1u16 << 11).to_le_bytes())
}

pub fn local_method_differs() -> Vec<u8> {
    local_patched(8, &0u16.to_le_bytes())
}

pub fn local_crc_differs() -> Vec<u8> {
    local_patched(14, &0xdead_beef_u32.to_le_bytes())
}

pub fn local_size_differs() -> Vec<u8> {
    local_patched(22, &1000u32.to_le_bytes())
}

/// A data descriptor whose size is not the central directory's.
pub fn descriptor_contradicts() -> Vec<u8> {
    let mut zip = BundleSpec::valid().zip();
    let entry = &mut zip.entries[4];
    let mut descriptor = entry.descriptor();
    descriptor[12] ^= 0x40;
    entry.descriptor = Some(descriptor);
    zip.bytes()
}

/// A Unicode-path extra field (0x7075): `version, CRC-32 of the header
/// name, UTF-8 name`.
fn unicode_path(header_name: &[u8], name: &[u8]) -> Vec<u8> {
    let mut data = vec![1];
    data.extend(crc32fast::hash(header_name).to_le_bytes());
    data.extend(name);
    extra_field(0x7075, &data)
}

/// Tools that honour the Unicode-path field extract `scenario/evil.sh`.
pub fn unicode_path_renames() -> Vec<u8> {
    let mut zip = BundleSpec::valid().zip();
    let entry = &mut zip.entries[4];
    entry.central_extra = unicode_path(&entry.name, b"scenario/evil.sh");
    zip.bytes()
}

pub fn unicode_path_renames_locally() -> Vec<u8> {
    let mut zip = BundleSpec::valid().zip();
    let entry = &mut zip.entries[4];
    entry.local_extra = unicode_path(&entry.name, b"scenario/evil.sh");
    zip.bytes()
}

/// A ZIP64 field listing a size the classic field contradicts.
pub fn zip64_field_contradicts() -> Vec<u8> {
    let mut zip = BundleSpec::valid().zip();
    let entry = &mut zip.entries[4];
    let size = entry.data.len() as u64;
    let csize = deflate(&entry.data).len() as u64;
    let data = [(size + 100).to_le_bytes(), csize.to_le_bytes()].concat();
    entry.central_extra = extra_field(0x0001, &data);
    zip.bytes()
}

/// A ZIP64 end record and locator before the classic end record, with the
/// entry counts of `zip64` (count, on this disk) and the classic record's
/// directory size and offset. [`zip64_end`] with the real count is honest.
pub fn zip64_end(count_delta: i64) -> Vec<u8> {
    let mut bytes = BundleSpec::valid().zip().bytes();
    let eocd = bytes.len() - 22;
    let le16 = |at: usize| u64::from(u16::from_le_bytes([bytes[at], bytes[at + 1]]));
    let le32 = |at: usize| u64::from(u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()));
    let count = le16(eocd + 10);
    let (cd_size, cd_offset) = (le32(eocd + 12), le32(eocd + 16));
    let mut record = Vec::new();
    record.extend(0x0606_4b50u32.to_le_bytes());
    record.extend(44u64.to_le_bytes());
    record.extend(45u16.to_le_bytes());
    record.extend(45u16.to_le_bytes());
    record.extend(0u32.to_le_bytes());
    record.extend(0u32.to_le_bytes());
    record.extend(count.to_le_bytes());
    record.extend(count.checked_add_signed(count_delta).unwrap().to_le_bytes());
    record.extend(cd_size.to_le_bytes());
    record.extend(cd_offset.to_le_bytes());
    record.extend(0x0706_4b50u32.to_le_bytes());
    record.extend(0u32.to_le_bytes());
    record.extend((eocd as u64).to_le_bytes());
    record.extend(1u32.to_le_bytes());
    bytes.splice(eocd..eocd, record);
    bytes
}

pub fn zip64_end_contradicts() -> Vec<u8> {
    zip64_end(1)
}

/// The end record counts one entry fewer than the directory holds.
pub fn count_too_small() -> Vec<u8> {
    let mut bytes = BundleSpec::valid().zip().bytes();
    let eocd = bytes.len() - 22;
    let count = u16::from_le_bytes([bytes[eocd + 10], bytes[eocd + 11]]) - 1;
    bytes[eocd + 8..eocd + 10].copy_from_slice(&count.to_le_bytes());
    bytes[eocd + 10..eocd + 12].copy_from_slice(&count.to_le_bytes());
    bytes
}

/// A non-ASCII name without the UTF-8 flag: CP437 to some tools.
pub fn non_ascii_name_unmarked() -> Vec<u8> {
    let mut bytes = named("scenario/caf\u{e9}.sh".as_bytes());
    let index = 5;
    let central = central_offset(&bytes, index) + 8;
    let local = local_offset(&bytes, index) + 6;
    for at in [central, local] {
        bytes[at..at + 2].copy_from_slice(&0u16.to_le_bytes());
    }
    bytes
}

/// A directory entry (trailing `/`) that carries bytes other tools may
/// extract as a file.
pub fn directory_entry_with_data() -> Vec<u8> {
    named(b"scenario/dir/")
}
