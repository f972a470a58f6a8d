//! Honest writers (issue 19): a bundle that another zip tool rewrote still
//! opens, verifies and replays. Each variant is made by the real tool where
//! it is installed (`.ci/run` installs Info-ZIP, 7-Zip, bsdtar and Go), from a
//! bundle that bugpack captured and `unzip` extracted, with every file made
//! private (0600, the scenario's script 0700). The shapes no tool
//! here writes (macOS Archive Utility's, ZIP64 end records, Unicode-path
//! fields that agree) are made by hand. The ambiguities that stay refused
//! are in `hostile.rs`.

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::Command;

use crate::support::Sandbox;
use crate::support::hostile;
use crate::support::zipper::{BundleSpec, extra_field};

/// A scenario whose script must keep its execute bit to run.
const SCENARIO: &str = "name: modes\nrun: ./run.sh\ntimeout: 10s\nexpect: {exit: 3}\n";

fn installed(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn sh(dir: &Path, script: &str) {
    let out = Command::new("sh")
        .args(["-c", script])
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Captures the scenario with bugpack, extracts it and makes every file
/// private (0600, the script 0700), as a user's tools may; returns the
/// extracted directory.
fn captured_and_extracted(sb: &Sandbox) -> std::path::PathBuf {
    sb.write("s/scenario.yaml", SCENARIO);
    let script = sb.write("s/run.sh", "#!/bin/sh\necho boom\nexit 3\n");
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    sb.bugpack()
        .args(["capture", "--no-run", "--scenario", "s", "-o", "b.zip"])
        .args(["--title", "modes"])
        .run()
        .success();
    let x = sb.path("x");
    fs::create_dir(&x).unwrap();
    sh(
        &x,
        "unzip -q ../b.zip && find . -type f -exec chmod 600 {} + && chmod 700 scenario/run.sh",
    );
    let mode = fs::metadata(x.join("bugpack.yaml"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    x
}

/// Python's zipfile, as a user re-zipping by hand would: directory entries
/// too, and the files' own (private) modes.
const PYTHON_ZIP: &str = r#"
import os, sys, zipfile
with zipfile.ZipFile(sys.argv[1], "w", zipfile.ZIP_DEFLATED) as z:
    for root, dirs, files in os.walk("."):
        if root != ".":
            z.write(root, os.path.relpath(root) + "/")
        for f in sorted(files):
            z.write(os.path.join(root, f), os.path.relpath(os.path.join(root, f)))
"#;

/// What macOS Archive Utility's "Compress" writes: directory entries, and an
/// `AppleDouble` file `__MACOSX/.../._name` beside every file.
const MACOS_ZIP: &str = r#"
import os, sys, zipfile
with zipfile.ZipFile(sys.argv[1], "w", zipfile.ZIP_DEFLATED) as z:
    for root, dirs, files in os.walk("."):
        rel = os.path.relpath(root)
        if rel != ".":
            z.writestr(zipfile.ZipInfo(rel + "/"), b"")
        for f in sorted(files):
            path = os.path.relpath(os.path.join(root, f))
            z.write(path, path)
            head, base = os.path.split(path)
            z.writestr("__MACOSX/" + (head + "/" if head else "") + "._" + base,
                       b"\x00\x05\x16\x07\x00\x02\x00\x00" + b"\x00" * 74)
"#;

/// Go's `archive/zip`, walking the tree as a Go tool would: directory
/// entries, the files' modes (`FileInfoHeader`), deflated through data
/// descriptors with extended timestamps, as Go always writes them.
const GO_ZIP: &str = r#"package main

import (
	"archive/zip"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

func main() {
	out, err := os.Create(os.Args[1])
	if err != nil {
		panic(err)
	}
	w := zip.NewWriter(out)
	err = filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || path == "." {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		h, err := zip.FileInfoHeader(info)
		if err != nil {
			return err
		}
		h.Name = filepath.ToSlash(path)
		if d.IsDir() {
			h.Name += "/"
			_, err = w.CreateHeader(h)
			return err
		}
		h.Method = zip.Deflate
		dst, err := w.CreateHeader(h)
		if err != nil {
			return err
		}
		src, err := os.Open(path)
		if err != nil {
			return err
		}
		defer src.Close()
		_, err = io.Copy(dst, src)
		return err
	})
	if err != nil {
		panic(err)
	}
	if err := w.Close(); err != nil {
		panic(err)
	}
	if err := out.Close(); err != nil {
		panic(err)
	}
}
"#;

/// Each writer: a name, the program it needs, and the shell command that
/// writes `$OUT` from the extracted bundle in the current directory.
const WRITERS: &[(&str, &str, &str)] = &[
    ("Info-ZIP zip -r", "zip", "zip -qr \"$OUT\" ."),
    ("Info-ZIP zip -r -D", "zip", "zip -qrD \"$OUT\" ."),
    ("Info-ZIP zip -fz (ZIP64)", "zip", "zip -qr -fz \"$OUT\" ."),
    (
        "Info-ZIP zip to a pipe (data descriptors)",
        "zip",
        "zip -qr - . | cat > \"$OUT\"",
    ),
    (
        "Info-ZIP zip -z (archive comment)",
        "zip",
        "echo from the user | zip -qrz \"$OUT\" .",
    ),
    (
        "Info-ZIP zip appending to an existing archive",
        "zip",
        "zip -q \"$OUT\" bugpack.yaml ISSUE.md && zip -qr \"$OUT\" .",
    ),
    (
        "Python zipfile",
        "python3",
        "python3 -c \"$PYTHON_ZIP\" \"$OUT\"",
    ),
    (
        "macOS Archive Utility's layout",
        "python3",
        "python3 -c \"$MACOS_ZIP\" \"$OUT\"",
    ),
    ("jar", "jar", "jar cfM \"$OUT\" ."),
    (
        "Go archive/zip",
        "go",
        "printf '%s' \"$GO_ZIP\" > ../writer.go && go run ../writer.go \"$OUT\"",
    ),
    ("7-Zip", "7z", "7z a -tzip -bd \"$OUT\" . >/dev/null"),
    (
        "bsdtar of .",
        "bsdtar",
        "bsdtar --format zip -cf \"$OUT\" .",
    ),
    (
        "bsdtar of *",
        "bsdtar",
        "bsdtar --format zip -cf \"$OUT\" *",
    ),
];

#[test]
fn bundles_rewritten_by_zip_tools_verify_and_replay() {
    let sb = Sandbox::new();
    let x = captured_and_extracted(&sb);
    let mut ran = Vec::new();
    for (index, (writer, program, command)) in WRITERS.iter().enumerate() {
        if !installed(program) {
            eprintln!("{writer}: skipped, {program} is not installed");
            continue;
        }
        let out = sb.path(&format!("rezipped-{index}.zip"));
        let status = Command::new("sh")
            .args(["-c", command])
            .current_dir(&x)
            .env("OUT", &out)
            .env("PYTHON_ZIP", PYTHON_ZIP)
            .env("MACOS_ZIP", MACOS_ZIP)
            .env("GO_ZIP", GO_ZIP)
            // Go's caches in the sandbox, not in the user's home.
            .env("GOCACHE", sb.path("go-cache"))
            .env("GOPATH", sb.path("go-path"))
            .env("GOFLAGS", "-modcacherw")
            .env("GO111MODULE", "off")
            .status()
            .unwrap();
        assert!(status.success(), "{writer} failed");
        let name = out.file_name().unwrap().to_str().unwrap().to_owned();
        let verified = sb.bugpack().args(["verify", &name]).run();
        assert_eq!(
            verified.code,
            Some(0),
            "{writer}: {}{}",
            verified.stdout,
            verified.stderr
        );
        assert!(
            verified.stdout.contains("intact"),
            "{writer}: {}",
            verified.stdout
        );
        if *program == "jar" {
            // jar records no Unix modes: the script comes out 0644, as
            // every entry without an execute bit does, and cannot run.
            ran.push(*writer);
            continue;
        }
        // The script was 0700 in the rewritten zip: extracted 0755, it runs.
        let replayed = sb
            .bugpack()
            .args(["replay", &name, "--yes", "--runs", "1"])
            .run();
        assert_eq!(
            replayed.code,
            Some(0),
            "{writer}: the bug did not reproduce\n{}{}",
            replayed.stdout,
            replayed.stderr
        );
        assert!(
            !replayed.stdout.contains("ermission denied"),
            "{writer}: {}",
            replayed.stdout
        );
        ran.push(*writer);
    }
    // Info-ZIP and Python are on every machine CI runs on.
    assert!(ran.contains(&"Info-ZIP zip -r"), "ran only {ran:?}");
    assert!(ran.contains(&"Python zipfile"), "ran only {ran:?}");
    eprintln!("accepted: {ran:?}");
}

#[test]
fn directory_entries_and_macos_metadata_are_ignored_with_a_note() {
    let sb = Sandbox::new();
    let x = captured_and_extracted(&sb);
    sh(&x, &format!("python3 -c '{MACOS_ZIP}' ../mac.zip"));
    sb.bugpack()
        .args(["verify", "mac.zip"])
        .run()
        .success()
        .stdout_has("intact")
        .stderr_has("mac.zip: ignored")
        .stderr_has("directory entries")
        .stderr_has("macOS metadata");
    sb.bugpack()
        .args(["inspect", "mac.zip"])
        .run()
        .success()
        .stdout_lacks("__MACOSX");
}

#[test]
fn any_regular_file_mode_is_accepted() {
    let sb = Sandbox::new();
    sb.write("setuid.zip", hostile::setuid_file());
    sb.bugpack().args(["verify", "setuid.zip"]).run().success();
    // Its scenario still runs (extraction writes 0755, never the set-user-ID bit).
    sb.bugpack()
        .args(["replay", "setuid.zip", "--yes", "--runs", "1"])
        .run()
        .success();
}

/// Shapes no installed tool writes but an honest one may: a ZIP64 end
/// record that agrees with the classic one, a data descriptor, extra fields
/// (a Unicode-path field naming the same file), a comment, the manifest
/// anywhere in the zip.
#[test]
fn honest_shapes_made_by_hand_are_accepted() {
    let sb = Sandbox::new();
    let mut cases: Vec<(&str, Vec<u8>)> = vec![("zip64 end record", hostile::zip64_end(0))];
    let mut zip = BundleSpec::valid().zip();
    for entry in &mut zip.entries {
        entry.descriptor = Some(entry.descriptor());
        let mut unicode = vec![1];
        unicode.extend(crc32fast::hash(&entry.name).to_le_bytes());
        unicode.extend(&entry.name);
        entry.central_extra = [
            extra_field(0x5455, &[3, 1, 2, 3, 4]),
            extra_field(0x7075, &unicode),
        ]
        .concat();
        entry.local_extra = extra_field(0x7875, &[1, 4, 0, 0, 0, 0, 4, 0, 0, 0, 0]);
    }
    zip.comment = b"re-zipped by hand".to_vec();
    zip.entries.rotate_left(2);
    cases.push((
        "descriptors, extra fields, a comment, manifest last",
        zip.bytes(),
    ));
    for (case, bytes) in cases {
        sb.write("case.zip", bytes);
        let out = sb.bugpack().args(["verify", "case.zip"]).run();
        assert_eq!(out.code, Some(0), "{case}: {}", out.stderr);
    }
}

/// DESIGN.md's signing flow with no bugpack on the signer's side:
/// `unzip -p`, `ssh-keygen -Y sign`, `zip -j`; and a second signature
/// replaces the first the same way.
#[test]
fn a_bundle_signed_with_ssh_keygen_and_zip_verifies() {
    let sb = Sandbox::new();
    captured_and_extracted(&sb);
    for name in ["alice", "bob"] {
        let out = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f", name])
            .current_dir(sb.dir())
            .output()
            .unwrap();
        assert!(out.status.success());
        let public = fs::read_to_string(sb.path(&format!("{name}.pub"))).unwrap();
        sb.write(
            &format!("{name}.signers"),
            format!("{name}@example.com {public}"),
        );
    }
    let sign = |key: &str| {
        sh(
            &sb.dir(),
            &format!(
                "rm -f bugpack.yaml bugpack.yaml.sig && unzip -p b.zip bugpack.yaml > bugpack.yaml \
                 && ssh-keygen -q -Y sign -f {key} -n bugpack bugpack.yaml && zip -qj b.zip bugpack.yaml.sig"
            ),
        );
    };
    sign("alice");
    sb.bugpack()
        .args(["verify", "b.zip", "--allowed-signers", "alice.signers"])
        .run()
        .success()
        .stdout_has("signed by alice@example.com");
    sign("bob");
    sb.bugpack()
        .args(["verify", "b.zip", "--allowed-signers", "alice.signers"])
        .run()
        .code(3)
        .one_line_error();
    sb.bugpack()
        .args(["verify", "b.zip", "--allowed-signers", "bob.signers"])
        .run()
        .success()
        .stdout_has("signed by bob@example.com");
}
