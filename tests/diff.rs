//! `bugpack diff` through the binary: bundles captured here against this
//! machine and against each other, the groups and their order, secrets,
//! probes, and bundles the reader must refuse.

use std::fs;
use std::process::Command;

use bugpack::capture::system::PROXY_VARS;

use crate::json::JDiff;
use crate::support::zipper::{BundleSpec, Entry};
use crate::support::{Run, Sandbox};

/// A bugpack run with no proxy settings from the test's own environment.
fn bugpack(sb: &Sandbox) -> Run {
    let mut run = sb.bugpack();
    for var in PROXY_VARS {
        run = run.env_remove(var);
    }
    run.env("MY_API_TOKEN", "tok-5f0c7e1a9b3d2468")
}

fn git(sb: &Sandbox, args: &[&str]) {
    let out = Command::new("git")
        .args(args)
        .current_dir(sb.dir())
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.com")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.com")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A committed project with a profile naming a config file and a version
/// command, and a bundle of it captured as `a.zip`.
fn project_with_bundle() -> Sandbox {
    let sb = Sandbox::new();
    sb.write(
        ".bugpack.yaml",
        "config: [app.ini]\nversions: {greeter: echo greeter 1.0}\n",
    );
    sb.write("app.ini", "[pool]\nsize = 2\nname = dispatcher\n");
    sb.write(".gitignore", "*.zip\n*.zip.md\n");
    git(&sb, &["init", "-q", "-b", "main"]);
    git(&sb, &["add", "."]);
    git(&sb, &["commit", "-q", "-m", "first"]);
    bugpack(&sb)
        .args(["capture", "-o", "a.zip", "--no-run", "--", "./run.sh"])
        .run()
        .success();
    sb
}

fn diff_json(run: Run, code: i32) -> JDiff {
    let out = run.arg("--json").run().code(code);
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}\n{}", out.stdout))
}

#[test]
fn right_after_capture_the_bundle_matches_this_machine() {
    let sb = project_with_bundle();
    bugpack(&sb)
        .args(["diff", "a.zip", "--here"])
        .run()
        .success()
        .stdout_has("a: a.zip (sha256 ")
        .stdout_has("b: this machine")
        .stdout_has("not compared (redacted): MY_API_TOKEN")
        .stdout_has("no differences that matter")
        .stdout_lacks("tok-5f0c7e1a9b3d2468");
    let d = diff_json(bugpack(&sb).args(["diff", "a.zip", "--here"]), 0);
    assert!(d.same);
    assert_eq!(d.differences, 0);
    assert_eq!(d.b.kind, "here");
    assert_eq!(d.b.sha256, None);
    let env = d.groups.iter().find(|g| g.group == "env").unwrap();
    assert_eq!(env.not_compared, ["MY_API_TOKEN"]);
}

#[test]
fn this_machine_differs_in_proxy_versions_config_git_and_env() {
    let sb = project_with_bundle();
    sb.write(
        ".bugpack.yaml",
        "config: [app.ini]\nversions: {greeter: echo greeter 2.0}\n",
    );
    sb.write("app.ini", "[pool]\nsize = 8\nname = dispatcher\n");
    let here = || {
        bugpack(&sb)
            .env("https_proxy", "http://alice:pr0xy-passw0rd@proxy.corp:3128")
            .env("DISPATCH_DEBUG", "1")
            .args(["diff", "a.zip", "--here"])
    };
    let out = here().run().code(1);
    let text = &out.stdout;
    assert!(!text.contains("pr0xy-passw0rd") && !out.stderr.contains("pr0xy-passw0rd"));
    let at = |needle: &str| {
        text.find(needle)
            .unwrap_or_else(|| panic!("no {needle:?} in\n{text}"))
    };
    // Most telling first.
    let order = [
        at("proxy settings and probes"),
        at("tool versions"),
        at("configuration files"),
        at("\ngit\n"),
        at("environment variables"),
    ];
    assert!(order.is_sorted(), "{order:?}\n{text}");
    assert!(text.contains("  https_proxy  a: (none)\n"), "{text}");
    assert!(text.contains("b: http://[REDACTED:"), "{text}");
    assert!(text.contains("@proxy.corp:3128"), "{text}");
    assert!(text.contains("greeter  a: greeter 1.0\n"), "{text}");
    assert!(text.contains("b: greeter 2.0\n"), "{text}");
    assert!(
        text.contains("    --- a/config/app.ini\n    +++ b/config/app.ini\n"),
        "{text}"
    );
    assert!(text.contains("    -size = 2\n    +size = 8\n"), "{text}");
    assert!(text.contains("dirty        a: no\n"), "{text}");
    assert!(
        text.contains("b: 2 files: .bugpack.yaml, app.ini"),
        "{text}"
    );
    assert!(text.contains("DISPATCH_DEBUG  a: (none)\n"), "{text}");
    assert!(
        text.contains("6 differences (proxy 1, versions 1, config 1, git 2, env 1)"),
        "{text}"
    );

    let d = diff_json(here(), 1);
    assert!(!d.same);
    assert_eq!(d.differences, 6);
    let names: Vec<&str> = d.groups.iter().map(|g| g.group.as_str()).collect();
    assert_eq!(
        names,
        ["proxy", "versions", "config", "system", "git", "env"]
    );
    let config = &d.groups[2].changes[0];
    assert_eq!(config.key, "config/app.ini");
    assert_eq!(config.a.as_deref().map(str::len), Some(64), "a SHA-256");
    assert!(config.diff.as_deref().unwrap().contains("+size = 8\n"));
    let version = &d.groups[1].changes[0];
    assert_eq!(
        (
            version.key.as_str(),
            version.a.as_deref(),
            version.b.as_deref()
        ),
        ("greeter", Some("greeter 1.0"), Some("greeter 2.0"))
    );
    assert_eq!(version.diff, None);
}

#[test]
fn two_bundles_differ_in_their_commit_and_a_bundle_equals_itself() {
    let sb = project_with_bundle();
    sb.write("README", "more\n");
    git(&sb, &["add", "."]);
    git(&sb, &["commit", "-q", "-m", "second"]);
    bugpack(&sb)
        .args(["capture", "-o", "b.zip", "--no-run", "--", "./run.sh"])
        .run()
        .success();
    let d = diff_json(bugpack(&sb).args(["diff", "a.zip", "b.zip"]), 1);
    assert_eq!(d.differences, 1, "{d:?}");
    let git = d.groups.iter().find(|g| g.group == "git").unwrap();
    assert_eq!(git.changes[0].key, "head");
    assert_ne!(git.changes[0].a, git.changes[0].b);
    assert_eq!(d.a.kind, "bundle");
    assert_eq!(d.b.path.as_deref(), Some("b.zip"));
    let sha = crate::support::zipper::sha256(&fs::read(sb.path("b.zip")).unwrap());
    assert_eq!(d.b.sha256.as_deref(), Some(sha.as_str()));

    bugpack(&sb)
        .args(["diff", "a.zip", "a.zip"])
        .run()
        .success()
        .stdout_has("no differences that matter");
}

#[test]
fn probe_headers_show_a_cache_that_answered_on_one_side_only() {
    use std::io::{BufRead as _, BufReader, Write as _};
    // Two fetches per capture: the first capture sees the origin, the
    // second a cache in front of it.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        for (i, stream) in listener.incoming().take(4).enumerate() {
            let mut stream = stream.unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            while reader.read_line(&mut line).unwrap() > 2 {
                line.clear();
            }
            let cached = if i >= 2 {
                format!("Via: 1.1 corp-proxy (squid)\r\nX-Cache: HIT\r\nAge: {i}\r\n")
            } else {
                String::new()
            };
            write!(
                stream,
                "HTTP/1.1 200 OK\r\n{cached}Date: Thu, 01 Jan 2026 00:00:0{i} GMT\r\n\
                 Content-Length: 2\r\nConnection: close\r\n\r\nok"
            )
            .unwrap();
        }
    });
    let sb = Sandbox::new();
    let url = format!("http://127.0.0.1:{port}/status");
    for name in ["a.zip", "b.zip"] {
        bugpack(&sb)
            .args(["capture", "-o", name, "--probe", &url])
            .run()
            .success();
    }
    server.join().unwrap();
    let d = diff_json(bugpack(&sb).args(["diff", "a.zip", "b.zip"]), 1);
    let proxy = &d.groups[0];
    let keys: Vec<&str> = proxy.changes.iter().map(|c| c.key.as_str()).collect();
    let want: Vec<String> = [
        "1: age",
        "1: via",
        "1: x-cache",
        "2: age",
        "2: via",
        "2: x-cache",
    ]
    .iter()
    .map(|k| format!("{url} fetch {k}"))
    .collect();
    assert_eq!(
        keys, want,
        "dates differ on every fetch and are not a difference"
    );
    let via = &proxy.changes[1];
    assert_eq!(via.a, None);
    assert_eq!(via.b.as_deref(), Some("1.1 corp-proxy (squid)"));
    assert_eq!(d.differences, 6, "{d:?}");
}

#[test]
fn rejected_bundles_exit_3_and_bad_arguments_exit_2() {
    let sb = Sandbox::new();
    sb.write("good.zip", BundleSpec::valid().zip().bytes());
    let mut bad = BundleSpec::valid().zip();
    bad.entries.push(Entry::new("env/extra.yaml", "x: 1\n"));
    sb.write("bad.zip", bad.bytes());
    let aliased = BundleSpec::valid().with_file("env/system.yaml", "os: &o Debian\nkernel: *o\n");
    sb.write("aliased.zip", aliased.zip().bytes());
    let before = sb.listing();
    for args in [
        ["diff", "bad.zip", "good.zip"],
        ["diff", "good.zip", "bad.zip"],
        ["diff", "aliased.zip", "good.zip"],
    ] {
        sb.bugpack().args(args).run().code(3).one_line_error();
    }
    sb.bugpack()
        .args(["diff", "aliased.zip", "--here"])
        .run()
        .code(3)
        .one_line_error()
        .stderr_has("env/system.yaml")
        .stderr_has("anchor or alias");
    sb.bugpack()
        .args(["diff", "bad.zip", "--here"])
        .run()
        .code(3)
        .stderr_has("not listed");
    sb.bugpack()
        .args(["diff", "missing.zip", "--here"])
        .run()
        .code(2)
        .one_line_error();
    sb.bugpack().args(["diff", "good.zip"]).run().code(2);
    sb.bugpack()
        .args(["diff", "good.zip", "good.zip", "--here"])
        .run()
        .code(2);
    sb.bugpack()
        .args(["diff", "good.zip", "good.zip", "--profile", "p.yaml"])
        .run()
        .code(2);
    assert_eq!(sb.listing(), before, "nothing written");
}
