//! The rules for readers (DESIGN.md): every bad bundle is refused with exit
//! 3 and a one-line reason naming the entry, by every command that reads
//! bundles, and nothing is written anywhere. Also what `inspect` shows of
//! a good bundle, and the fixed headers the writer promises readers.

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
fn manifest_not_first_is_accepted_as_zip_tools_reorder_entries() {
    let mut zip = BundleSpec::valid().zip();
    zip.entries.swap(0, 1);
    let sb = Sandbox::new();
    sb.write("ok.zip", zip.bytes());
    sb.bugpack().args(["verify", "ok.zip"]).run().success();
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

/// Prepends `prefix` to a zip as a real polyglot does (`cat sfx.sh x.zip`
/// then `zip -A`): every offset in the central directory and the end record
/// shifted by the prefix's length, so the zip is self-consistent and only
/// the leading bytes are wrong.
fn with_shifted_prefix(zip: &Zip, prefix: &[u8]) -> Vec<u8> {
    let bytes = zip.bytes();
    let shift = u32::try_from(prefix.len()).unwrap();
    let u32_at = |b: &[u8], at: usize| u32::from_le_bytes(b[at..at + 4].try_into().unwrap());
    let u16_at = |b: &[u8], at: usize| usize::from(u16::from_le_bytes([b[at], b[at + 1]]));
    let mut out = bytes.clone();
    let eocd = bytes.len() - 22;
    let cd_offset = u32_at(&bytes, eocd + 16) as usize;
    out[eocd + 16..eocd + 20].copy_from_slice(&(u32_at(&bytes, eocd + 16) + shift).to_le_bytes());
    let mut pos = cd_offset;
    for _ in 0..u16_at(&bytes, eocd + 10) {
        assert_eq!(u32_at(&bytes, pos), 0x0201_4b50);
        let offset = u32_at(&bytes, pos + 42) + shift;
        out[pos + 42..pos + 46].copy_from_slice(&offset.to_le_bytes());
        pos += 46 + u16_at(&bytes, pos + 28) + u16_at(&bytes, pos + 30) + u16_at(&bytes, pos + 32);
    }
    let mut shifted = prefix.to_vec();
    shifted.extend(out);
    shifted
}

#[test]
fn bytes_before_the_first_entry() {
    let prefix = b"#!/bin/sh\necho polyglot\nexit 0\n";
    let zip = BundleSpec::valid().zip();
    let shifted = with_shifted_prefix(&zip, prefix);
    // The shifted zip is a good zip to other tools: python's zipfile
    // reads every entry of it.
    let sb = Sandbox::new();
    sb.write("poly.zip", &shifted);
    let check = std::process::Command::new("python3")
        .args(["-c", "import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); assert z.testzip() is None; print(len(z.namelist()))"])
        .arg(sb.path("poly.zip"))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&check.stdout).trim(),
        "5",
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    refused(
        &shifted,
        &format!("{} unexpected bytes before the first entry", prefix.len()),
    );
    // Bytes glued on without shifting the offsets break the directory's
    // position instead; refused as well.
    let mut glued = BundleSpec::valid().zip();
    glued.prefix = prefix.to_vec();
    refused(&glued.bytes(), "central directory");
}

/// The default total-size limit (1 GiB) applies without any flag: an entry
/// that declares 1.5 GiB is refused from its header, before a byte of it is
/// inflated (the ratio limit raised so that it is not what refuses it).
#[test]
fn total_size_over_the_default_limit() {
    let mut zip = BundleSpec::valid().zip();
    let i = zip
        .entries
        .iter()
        .position(|e| e.name == b"steps.md")
        .unwrap();
    zip.entries[i].declared_size = Some(3 << 29);
    refused_with(
        &zip.bytes(),
        "bytes, over the limit of 1073741824 (raise it with --max-size",
        &["--max-ratio", "4000000000"],
    );
}

/// A manifest past the 1 MiB YAML cap is refused before it is parsed.
#[test]
fn manifest_over_one_mebibyte() {
    let spec = BundleSpec::valid();
    // Incompressible padding, so that the ratio limit is not what refuses it.
    let mut padding = String::new();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    while padding.len() < 1_100_000 {
        padding.push_str("# ");
        for _ in 0..76 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            padding.push(char::from(b'!' + u8::try_from(x % 90).unwrap()));
        }
        padding.push('\n');
    }
    let manifest = format!("{}{padding}", spec.manifest());
    let size = manifest.len();
    refused(
        &spec.zip_with_manifest(manifest.into_bytes()).bytes(),
        &format!("bugpack.yaml is {size} bytes, over the 1048576-byte limit for YAML files"),
    );
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
fn inspect_summarises_the_bundle() {
    let spec = BundleSpec::valid().with_file("logs/app.log", vec![b'x'; 3000]);
    let manifest = spec.manifest().replace(
        "redactions: {}\n",
        "redactions:\n  aws-access-key: 1\n  github-token: 2\n",
    );
    let sb = Sandbox::new();
    sb.write(
        "r.zip",
        spec.zip_with_manifest(manifest.into_bytes()).bytes(),
    );
    let out = sb.bugpack().args(["inspect", "r.zip"]).run().success();
    let lines: Vec<&str> = out.stdout.lines().collect();
    for expected in [
        "title     demo bug",
        "created   2026-11-22T10:00:00Z by bugpack 0.1.0",
        "id        0123456789abcdef0123456789abcdef",
        "signature unsigned",
        "scenario  demo",
        "  run      sh run.sh",
        "  timeout  5s",
        "  expect   exit 3",
        "files     5 files, 3.0 KiB",
        "redactions 3",
    ] {
        assert!(
            lines.contains(&expected),
            "no line {expected:?} in\n{}",
            out.stdout
        );
    }
    let squeezed = |line: &str| line.split_whitespace().collect::<Vec<_>>().join(" ");
    let rows: Vec<String> = lines.iter().map(|l| squeezed(l)).collect();
    for expected in [
        "ISSUE.md 7 B",
        "logs/app.log 2.9 KiB",
        "scenario/run.sh 18 B",
        "steps.md 22 B",
        "aws-access-key 1",
        "github-token 2",
    ] {
        assert!(
            rows.iter().any(|r| r == expected),
            "no row {expected:?} in\n{}",
            out.stdout
        );
    }
}

/// `inspect --json` is the manifest, field for field: read into a mirror of
/// the format that refuses unknown fields.
#[test]
fn inspect_json_is_the_manifest() {
    #[derive(Debug, serde::Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Manifest {
        format: String,
        id: String,
        created: String,
        title: String,
        bugpack_version: String,
        scenario: Option<Scenario>,
        redactions: std::collections::BTreeMap<String, u64>,
        files: Vec<File>,
    }
    #[derive(Debug, serde::Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Scenario {
        name: String,
    }
    #[derive(Debug, serde::Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct File {
        path: String,
        size: u64,
        sha256: String,
    }
    let spec = BundleSpec::valid();
    let sb = Sandbox::new();
    sb.write("ok.zip", spec.zip().bytes());
    let out = sb
        .bugpack()
        .args(["inspect", "ok.zip", "--json"])
        .run()
        .success();
    let json: Manifest = serde_json::from_str(&out.stdout).unwrap();
    let yaml: Manifest = serde_yaml::from_str(&spec.manifest()).unwrap();
    assert_eq!(json, yaml);
    assert_eq!(json.format, "bugpack/v1");
    assert_eq!(json.files.len(), 4);
    assert_eq!(json.files[1].path, "scenario/run.sh");
    assert_eq!(
        json.files[1].sha256,
        crate::support::zipper::sha256(b"echo boom; exit 3\n")
    );
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
fn inspect_shows_a_bundles_text_as_text_and_never_lets_it_act() {
    use crate::support::zipper::{HOSTILE_SCENARIO, HOSTILE_TITLE};
    let mut spec = BundleSpec::valid().with_file("scenario/scenario.yaml", HOSTILE_SCENARIO);
    spec.title = HOSTILE_TITLE.into();
    let sb = Sandbox::new();
    sb.write("t.zip", spec.zip().bytes());
    let out = sb.bugpack().args(["inspect", "t.zip"]).run().success();
    for c in ['\x1b', '\x07'] {
        assert!(
            !out.stdout.contains(c),
            "{c:?} reached the terminal: {:?}",
            out.stdout
        );
    }
    let lines: Vec<&str> = out.stdout.lines().collect();
    for want in [
        "title     bug \\u{1b}]0;pwned\\u{7} \\u{1b}[2J",
        // Folded text is one line, without its final line break as `\n`.
        "  description  polling UI hangs behind a caching proxy",
        // A script shows as lines, each under the first.
        "  run      printf '\\u{1b}]0;pwned\\u{7}'",
        "           echo '\\u{1b}[2J'",
        "           sh run.sh",
        "  timeout  5s",
    ] {
        assert!(lines.contains(&want), "{want:?} not shown:\n{}", out.stdout);
    }
    assert!(!out.stdout.contains("\\n"), "{}", out.stdout);
}

#[test]
fn unused_zip_struct_default_is_empty() {
    // The builder itself: an empty zip is just an end record, which readers
    // refuse for lack of a manifest.
    refused(&Zip::default().bytes(), "no bugpack.yaml manifest");
}

/// What the writer promises readers (DESIGN.md, "Rules for writers"): every
/// entry carries the same fixed timestamp (1980-01-01 00:00, DOS date 0x21)
/// and a fixed mode, whatever the inputs' mtimes or the clock say, so two
/// captures of the same inputs are byte-identical. Checked in the raw
/// headers, so that a timestamp taken from the clock fails at once rather
/// than only when two captures straddle a two-second tick.
#[test]
fn written_bundles_carry_fixed_timestamps_and_modes() {
    let sb = Sandbox::new();
    let script = sb.write("run.sh", "echo boom; exit 3\n");
    let capture = |out: &str| {
        sb.bugpack()
            .args(["capture", "-o", out, "--include", "run.sh", "--no-run"])
            .args(["--", "sh", "run.sh"])
            .env("SOURCE_DATE_EPOCH", "1700000000")
            .run()
            .success();
        std::fs::read(sb.path(out)).unwrap()
    };
    let set_mtime = |secs: u64| {
        let file = std::fs::File::options().write(true).open(&script).unwrap();
        file.set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs))
            .unwrap();
    };
    set_mtime(1_000_000_000);
    let a = capture("a.zip");
    set_mtime(1_900_000_000);
    let b = capture("b.zip");
    assert!(a == b, "two captures of the same inputs differ");

    let u16_at = |at: usize| u16::from_le_bytes([a[at], a[at + 1]]);
    let u32_at = |at: usize| u32::from_le_bytes(a[at..at + 4].try_into().unwrap());
    let eocd = a.len() - 22;
    let count = u16_at(eocd + 10);
    let mut pos = u32_at(eocd + 16) as usize;
    let mut names = Vec::new();
    for _ in 0..count {
        assert_eq!(u32_at(pos), 0x0201_4b50);
        let name_len = usize::from(u16_at(pos + 28));
        let name = String::from_utf8_lossy(&a[pos + 46..pos + 46 + name_len]).into_owned();
        assert_eq!(
            (u16_at(pos + 12), u16_at(pos + 14)),
            (0, 0x21),
            "{name}: central time"
        );
        let mode = u32_at(pos + 38) >> 16;
        assert!(
            matches!(mode, 0o100_644 | 0o100_755),
            "{name}: mode {mode:o}"
        );
        let local = u32_at(pos + 42) as usize;
        assert_eq!(
            (u16_at(local + 10), u16_at(local + 12)),
            (0, 0x21),
            "{name}: local time"
        );
        names.push(name);
        pos += 46 + name_len + usize::from(u16_at(pos + 30)) + usize::from(u16_at(pos + 32));
    }
    assert_eq!(names[0], "bugpack.yaml");
    let mut sorted = names[1..].to_vec();
    sorted.sort();
    assert_eq!(names[1..], sorted[..], "entries are not sorted");
    let out = sb
        .bugpack()
        .args(["inspect", "a.zip", "--json"])
        .run()
        .success();
    let manifest: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(manifest["created"], "2023-11-14T22:13:20Z");
}
