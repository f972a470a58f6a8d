//! `bugpack issue` through the binary: the text is the one capture wrote
//! beside the bundle, names the bundle's current SHA-256, and ties in with
//! `replay --markdown`'s closing line.

use std::fs;

use crate::support::zipper::{BundleSpec, Entry, sha256};
use crate::support::{Sandbox, rendered_tags};

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

/// What a stranger's bundle tries to put into an issue: closing bugpack's
/// `<details>` early and adding an image with a script, fences longer than
/// bugpack's, and a mention that would notify someone.
const EVIL: &str = "</details><img src=x onerror=alert(1)> ```` @someone";

/// `md` as GitHub would show it holds no HTML but bugpack's own layout,
/// one `<details>`, the output and the commands in their two code blocks,
/// and no mention outside code.
#[track_caller]
fn inert(md: &str) {
    let (html, tags) = rendered_tags(md);
    let layout = [
        "code", "details", "em", "h2", "h3", "li", "ol", "p", "pre", "sub", "summary", "table",
        "tbody", "td", "th", "thead", "tr", "ul",
    ];
    assert!(
        tags.keys().all(|t| layout.contains(&t.as_str())),
        "{tags:?}\n{md}\n{html}"
    );
    assert_eq!(tags.get("details"), Some(&1), "{md}\n{html}");
    assert_eq!(tags.get("pre"), Some(&2), "{md}\n{html}");
    // The output block holds the output whole, backticks and all.
    let output = html
        .split("<pre>")
        .nth(1)
        .and_then(|b| b.split("</pre>").next())
        .unwrap();
    assert!(
        output.contains("&lt;/details&gt;&lt;img src=x onerror=alert(1)&gt; ```` @someone"),
        "{md}\n{html}"
    );
    let mut outside = String::new();
    for piece in html.split("<code") {
        outside.push_str(piece.split_once("</code>").map_or(piece, |(_, rest)| rest));
    }
    assert!(!outside.contains("@someone"), "{md}\n{html}");
    assert!(html.contains("@\u{200b}someone"), "{md}\n{html}");
}

#[test]
fn a_hostile_bundle_s_text_stays_text_in_the_issue() {
    let sb = Sandbox::new();
    let yaml = |s: &str| serde_json::to_string(s).unwrap();
    let mut spec = BundleSpec::valid()
        .with_file(
            "steps.md",
            format!("### What I did\n1. {EVIL}\n````\n* <b>{EVIL}</b>\n"),
        )
        .with_file(
            "env/system.yaml",
            format!("os: {}\nlocale: {{LANG: {}}}\n", yaml(EVIL), yaml(EVIL)),
        )
        .with_file(
            "observed/result.yaml",
            format!(
                "command: {}\nending: signaled\nsignal: {}\nduration_ms: 5\n\
                 timeout_ms: 60000\nstdout_bytes: 60\nstderr_bytes: 0\n\
                 stdout_truncated: false\nstderr_truncated: false\n",
                yaml(EVIL),
                yaml(EVIL)
            ),
        )
        .with_file("observed/stdout.log", format!("{EVIL}\n"))
        .with_file("observed/stderr.log", "")
        .with_file(
            "scenario/scenario.yaml",
            format!("name: demo\nrun: {}\n", yaml(EVIL)),
        );
    spec.title = yaml(EVIL);
    sb.write("evil.zip", spec.zip().bytes());
    let out = sb.bugpack().args(["issue", "evil.zip"]).run().success();
    inert(&out.stdout);

    // Capture's own issue text, from a title, steps and output of the same kind.
    sb.write("steps.txt", format!("### What I did\n1. {EVIL}\n"));
    sb.write("evil.sh", format!("echo '{EVIL}'\nexit 1\n"));
    sb.bugpack()
        .args([
            "capture",
            "-o",
            "bug.zip",
            "--title",
            EVIL,
            "--steps",
            "steps.txt",
        ])
        .args(["--include", "evil.sh", "--", "sh", "evil.sh"])
        .run()
        .success();
    inert(&fs::read_to_string(sb.path("bug.zip.md")).unwrap());
}
