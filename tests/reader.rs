//! The rules for readers (DESIGN.md): every bad bundle is refused with exit
//! 3 and a one-line reason naming the entry, by every command that reads
//! bundles, and nothing is written anywhere.

use crate::support::Sandbox;
use crate::support::zipper::{BundleSpec, Entry, Zip, overlapping};

/// Commands that read a bundle, with the arguments that follow the path.
const READERS: &[&[&str]] = &[&["inspect"], &["inspect", "--json"], &["verify"]];

/// Runs every reader on `bytes` and checks the refusal.
fn refused(bytes: &[u8], needle: &str) {
    refused_with(bytes, needle, &[]);
}

fn refused_with(bytes: &[u8], needle: &str, extra: &[&str]) {
    let sb = Sandbox::new();
    sb.write("bad.zip", bytes);
    let before = sb.listing();
    for reader in READERS {
        let out = sb
            .bugpack()
            .arg(reader[0])
            .arg("bad.zip")
            .args(&reader[1..])
            .args(extra)
            .run()
            .code(3)
            .one_line_error()
            .stderr_has("bad.zip rejected")
            .stderr_has(needle);
        assert!(out.stdout.is_empty(), "{reader:?} printed {:?}", out.stdout);
        assert_eq!(sb.listing(), before, "{reader:?} left files behind");
    }
}

fn valid_bytes() -> Vec<u8> {
    BundleSpec::valid().zip().bytes()
}

#[test]
fn a_valid_bundle_is_accepted() {
    let sb = Sandbox::new();
    sb.write("ok.zip", valid_bytes());
    let before = sb.listing();
    sb.bugpack()
        .args(["verify", "ok.zip"])
        .run()
        .success()
        .stdout_has("intact, unsigned")
        .stdout_has("5 entries");
    sb.bugpack()
        .args(["inspect", "ok.zip"])
        .run()
        .success()
        .stdout_has("demo bug")
        .stdout_has("run      sh run.sh")
        .stdout_has("expect   exit 3")
        .stdout_has("scenario/run.sh");
    assert_eq!(sb.listing(), before);
}

#[test]
fn not_a_zip() {
    refused(b"this is a text file, not a bundle\n", "not a zip file");
}

#[test]
fn empty_file() {
    refused(b"", "empty");
}

#[test]
fn truncated_zip() {
    let bytes = valid_bytes();
    refused(&bytes[..bytes.len() / 2], "not a zip file");
    // Cut inside the end record too.
    refused(&bytes[..bytes.len() - 5], "truncated");
}

#[test]
fn manifest_missing() {
    let mut zip = BundleSpec::valid().zip();
    zip.entries.remove(0);
    refused(&zip.bytes(), "no bugpack.yaml manifest");
}

#[test]
fn manifest_not_first() {
    let mut zip = BundleSpec::valid().zip();
    zip.entries.swap(0, 1);
    refused(&zip.bytes(), "bugpack.yaml is not the first entry");
}

#[test]
fn manifest_not_yaml() {
    let zip = BundleSpec::valid().zip_with_manifest(b"format: [unclosed\n  - {\n".to_vec());
    refused(&zip.bytes(), "bugpack.yaml is not valid YAML");
}

#[test]
fn manifest_breaking_the_schema() {
    let spec = BundleSpec::valid();
    let manifest = spec.manifest().replace("title: demo bug\n", "");
    refused(
        &spec.zip_with_manifest(manifest.into_bytes()).bytes(),
        "breaks its schema",
    );
    let manifest = spec.manifest().replacen("sha256: ", "sha256: zz", 1);
    refused(
        &spec.zip_with_manifest(manifest.into_bytes()).bytes(),
        "/files/0/sha256",
    );
}

#[test]
fn unknown_format_version() {
    let spec = BundleSpec::valid();
    let manifest = spec.manifest().replace("bugpack/v1", "bugpack/v9");
    refused(
        &spec.zip_with_manifest(manifest.into_bytes()).bytes(),
        "unsupported format \"bugpack/v9\"",
    );
}

#[test]
fn manifest_with_anchors_and_aliases() {
    let spec = BundleSpec::valid();
    let manifest = format!("{}x: &a [1, 2]\ny: [*a, *a]\n", spec.manifest());
    refused(
        &spec.zip_with_manifest(manifest.into_bytes()).bytes(),
        "anchor or alias",
    );
}

/// Renames the scenario script's entry (keeping the manifest as it is).
fn with_entry_named(name: &[u8]) -> Vec<u8> {
    let mut zip = BundleSpec::valid().zip();
    let last = zip.entries.len() - 1;
    zip.entries[last].name = name.to_vec();
    zip.bytes()
}

#[test]
fn traversal_and_absolute_names() {
    refused(&with_entry_named(b"../x"), "\"../x\" has an unsafe path");
    refused(&with_entry_named(b"scenario/../../x"), "climbs out");
    refused(
        &with_entry_named(b"/abs"),
        "\"/abs\" has an unsafe path: it is absolute",
    );
    refused(&with_entry_named(b"C:\\x"), "backslash");
    refused(&with_entry_named(b"C:x"), "drive letter");
    refused(&with_entry_named(b"a\\..\\b"), "backslash");
    refused(&with_entry_named(b"scenario/\xff.sh"), "not UTF-8");
    refused(&with_entry_named(b"evil.sh"), "outside the bundle layout");
}

#[test]
fn symlink_entry() {
    let mut zip = BundleSpec::valid().zip();
    let i = zip
        .entries
        .iter()
        .position(|e| e.name == b"scenario/run.sh")
        .unwrap();
    zip.entries[i].mode = 0o120_777;
    zip.entries[i].data = b"/etc/passwd".to_vec();
    refused(&zip.bytes(), "\"scenario/run.sh\" is a symlink");
}

#[test]
fn device_and_directory_entries() {
    let mut zip = BundleSpec::valid().zip();
    zip.entries[2].mode = 0o020_644;
    refused(&zip.bytes(), "character device");
    let mut zip = BundleSpec::valid().zip();
    zip.entries[2].mode = 0o040_755;
    refused(&zip.bytes(), "directory");
}

#[test]
fn duplicate_names() {
    let mut zip = BundleSpec::valid().zip();
    let dup = zip.entries[1].clone();
    zip.entries.push(dup);
    refused(&zip.bytes(), "\"ISSUE.md\" appears more than once");
}

#[test]
fn case_colliding_names() {
    let mut zip = BundleSpec::valid().zip();
    zip.entries.push(Entry::new("Steps.md", "x"));
    refused(&zip.bytes(), "collide on a case-insensitive file system");
}

#[test]
fn entry_not_in_the_manifest() {
    let mut zip = BundleSpec::valid().zip();
    zip.entries.push(Entry::new("logs/extra.log", "sneaky"));
    refused(
        &zip.bytes(),
        "\"logs/extra.log\" is not listed in the manifest",
    );
}

#[test]
fn listed_entry_missing_from_the_zip() {
    let spec = BundleSpec::valid();
    let mut zip = spec.zip();
    zip.entries.retain(|e| e.name != b"steps.md");
    refused(
        &zip.bytes(),
        "\"steps.md\" is listed in the manifest but missing",
    );
}

#[test]
fn size_mismatch() {
    let spec = BundleSpec::valid();
    let manifest = spec.manifest();
    let mut zip = spec.zip_with_manifest(manifest.into_bytes());
    let i = zip
        .entries
        .iter()
        .position(|e| e.name == b"steps.md")
        .unwrap();
    zip.entries[i].data.extend_from_slice(b"3. one more line\n");
    refused(&zip.bytes(), "\"steps.md\" is");
    // The zip's declared size lies about the data instead.
    let mut zip = BundleSpec::valid().zip();
    let i = zip
        .entries
        .iter()
        .position(|e| e.name == b"steps.md")
        .unwrap();
    zip.entries[i].declared_size = Some(5);
    refused(&zip.bytes(), "steps.md");
}

#[test]
fn hash_mismatch() {
    let mut zip = BundleSpec::valid().zip();
    let i = zip
        .entries
        .iter()
        .position(|e| e.name == b"steps.md")
        .unwrap();
    let data = &mut zip.entries[i].data;
    data[0] ^= 0x20; // same size, different bytes
    refused(&zip.bytes(), "\"steps.md\" does not match its SHA-256");
}

#[test]
fn ratio_bomb() {
    let spec = BundleSpec::valid().with_file("logs/zeros.log", vec![0u8; 200 << 20]);
    refused(&spec.zip().bytes(), "\"logs/zeros.log\" expands");
}

#[test]
fn total_size_over_the_limit() {
    let noise: Vec<u8> = (0..(3u32 << 20))
        .map(|i| i.wrapping_mul(2_654_435_761).to_le_bytes()[1])
        .collect();
    let spec = BundleSpec::valid().with_file("logs/big.log", noise);
    refused_with(
        &spec.zip().bytes(),
        "over the limit of 2097152",
        &["--max-size", "2MiB"],
    );
}

#[test]
fn overlapping_entries() {
    let inner: &[u8] = b"inner data";
    let spec = BundleSpec {
        files: vec![
            ("logs/a.log".into(), Vec::new()),
            ("logs/b.log".into(), inner.to_vec()),
        ],
        title: "overlap".into(),
        scenario: None,
    };
    let bytes = overlapping(
        spec.manifest().as_bytes(),
        &[("logs/a.log", b""), ("logs/b.log", inner)],
    );
    refused(&bytes, "overlaps");
}

#[test]
fn central_and_local_names_differ() {
    let mut zip = BundleSpec::valid().zip();
    zip.entries[1].local_name = Some(b"../../evil".to_vec());
    refused(&zip.bytes(), "disagree on name");
}

#[test]
fn bytes_before_the_first_entry() {
    let mut zip = BundleSpec::valid().zip();
    zip.prefix = b"#!/bin/sh\necho polyglot\nexit 0\n".to_vec();
    refused(&zip.bytes(), "central directory");
}

#[test]
fn bytes_after_the_end_record() {
    let mut zip = BundleSpec::valid().zip();
    zip.suffix = b"appended payload".to_vec();
    refused(
        &zip.bytes(),
        "16 unexpected bytes after the zip's end record",
    );
}

#[test]
fn encrypted_entry() {
    let mut zip = BundleSpec::valid().zip();
    zip.entries[1].flags = 1;
    refused(&zip.bytes(), "encrypted");
}

#[test]
fn scenario_breaking_its_schema() {
    let spec =
        BundleSpec::valid().with_file("scenario/scenario.yaml", "name: demo\nrun: x\nbogus: 1\n");
    refused(
        &spec.zip().bytes(),
        "scenario/scenario.yaml breaks its schema",
    );
}

#[test]
fn scenario_name_differs_from_the_manifest() {
    let spec = BundleSpec::valid().with_file("scenario/scenario.yaml", "name: other\nrun: x\n");
    refused(&spec.zip().bytes(), "names \"other\"");
}

#[test]
fn too_many_entries() {
    let mut spec = BundleSpec::valid();
    for i in 0..50 {
        spec = spec.with_file(&format!("logs/{i}.log"), "x");
    }
    refused_with(
        &spec.zip().bytes(),
        "over the limit of 20",
        &["--max-entries", "20"],
    );
}

#[test]
fn a_directory_is_a_usage_error() {
    let sb = Sandbox::new();
    std::fs::create_dir(sb.path("dir.zip")).unwrap();
    sb.bugpack()
        .args(["inspect", "dir.zip"])
        .run()
        .code(2)
        .one_line_error()
        .stderr_has("is a directory");
    sb.bugpack()
        .args(["verify", "missing.zip"])
        .run()
        .code(2)
        .one_line_error()
        .stderr_has("no such file");
}

#[test]
fn a_hostile_title_cannot_drive_the_terminal() {
    let mut spec = BundleSpec::valid();
    spec.title = "\"bug \\e[2J\\e]0;pwned\\a\"".into();
    let sb = Sandbox::new();
    sb.write("t.zip", spec.zip().bytes());
    let out = sb.bugpack().args(["inspect", "t.zip"]).run().success();
    assert!(!out.stdout.contains('\x1b'), "{:?}", out.stdout);
    assert!(out.stdout.contains("\\u{1b}[2J"), "{:?}", out.stdout);
}

#[test]
fn unused_zip_struct_default_is_empty() {
    // The builder itself: an empty zip is just an end record, which readers
    // refuse for lack of a manifest.
    refused(&Zip::default().bytes(), "no bugpack.yaml manifest");
}
