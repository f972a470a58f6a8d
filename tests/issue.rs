//! `bugpack issue` through the binary: the text is the one capture wrote
//! beside the bundle, names the bundle's current SHA-256, and ties in with
//! `replay --markdown`'s closing line.

use std::fs;

use crate::support::Sandbox;
use crate::support::zipper::{BundleSpec, Entry, sha256};

#[test]
fn the_issue_text_is_capture_s_own_and_follows_the_bundle_s_hash() {
    let sb = Sandbox::new();
    sb.write("steps.md", "1. run fail.sh\n2. it says boom\n");
    sb.write(
        "fail.sh",
        "echo \"connecting with $SERVICE_TOKEN\"; echo boom >&2; exit 3\n",
    );
    sb.bugpack()
        .env("SERVICE_TOKEN", "s3cr3t-v4lue-0123456789")
        .args([
            "capture",
            "-o",
            "bug.zip",
            "--title",
            "fail.sh says boom",
            "--steps",
            "steps.md",
            "--include",
            "fail.sh",
            "--",
            "sh",
            "fail.sh",
        ])
        .run()
        .success();
    let written = fs::read_to_string(sb.path("bug.zip.md")).unwrap();
    let out = sb.bugpack().args(["issue", "bug.zip"]).run().success();
    assert_eq!(out.stdout, written, "the same text as capture's bug.zip.md");
    let sha = sha256(&fs::read(sb.path("bug.zip")).unwrap());
    assert!(
        out.stdout.contains(&format!("SHA-256 `{sha}`")),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("exited with code 3"), "{}", out.stdout);
    assert!(out.stdout.contains("1. run fail.sh"), "{}", out.stdout);
    assert!(!out.stdout.contains("s3cr3t-v4lue"), "{}", out.stdout);
    assert!(out.stdout.contains("[REDACTED:env:"), "{}", out.stdout);

    // Signing rewrites the bundle; the issue text follows its new hash.
    sb.bugpack().args(["keygen", "-o", "k"]).run().success();
    sb.bugpack()
        .args(["sign", "bug.zip", "--key", "k"])
        .run()
        .success();
    let signed = sha256(&fs::read(sb.path("bug.zip")).unwrap());
    assert_ne!(signed, sha);
    let out = sb.bugpack().args(["issue", "bug.zip"]).run().success();
    assert!(
        out.stdout.contains(&format!("SHA-256 `{signed}`")),
        "{}",
        out.stdout
    );

    // replay --markdown ends with the line that ties the result to that hash.
    let md = sb
        .bugpack()
        .args([
            "replay",
            "bug.zip",
            "--yes",
            "--runs",
            "1",
            "--markdown",
            "-",
        ])
        .run()
        .success();
    let last = md.stdout.trim_end().lines().last().unwrap();
    assert!(
        last.contains(&format!("bundle SHA-256 `{signed}`")),
        "{}",
        md.stdout
    );
}

#[test]
fn a_minimal_bundle_still_gets_its_text_and_bad_ones_are_refused() {
    let sb = Sandbox::new();
    sb.write("small.zip", BundleSpec::valid().zip().bytes());
    let sha = sha256(&fs::read(sb.path("small.zip")).unwrap());
    sb.bugpack()
        .args(["issue", "small.zip"])
        .run()
        .success()
        .stdout_has("## demo bug\n")
        .stdout_has("1. run it\n2. it fails")
        .stdout_has(&format!("SHA-256 `{sha}`"))
        .stdout_has("(`demo`: `sh run.sh`)")
        .stdout_has("bugpack replay small.zip");

    let mut bad = BundleSpec::valid().zip();
    bad.entries.push(Entry::new("steps2.md", "x"));
    sb.write("bad.zip", bad.bytes());
    let bomb = BundleSpec::valid().with_file(
        "observed/result.yaml",
        "command: &c x\nending: hang\nexit_code: *c\n",
    );
    sb.write("bomb.zip", bomb.zip().bytes());
    let before = sb.listing();
    sb.bugpack()
        .args(["issue", "bad.zip"])
        .run()
        .code(3)
        .one_line_error();
    sb.bugpack()
        .args(["issue", "bomb.zip"])
        .run()
        .code(3)
        .one_line_error()
        .stderr_has("observed/result.yaml");
    sb.bugpack()
        .args(["issue", "nope.zip"])
        .run()
        .code(2)
        .one_line_error();
    assert_eq!(sb.listing(), before);
}
