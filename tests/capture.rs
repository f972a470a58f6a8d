//! `bugpack capture` through the binary: what each section holds, the
//! scenario it makes, reproducibility, and bad input that must leave no
//! bundle behind.

use std::fs;
use std::io::Read as _;
use std::process::Command;

use crate::support::Sandbox;

/// Every entry of a bundle, decompressed, by name.
pub fn entries(path: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut zip = zip::ZipArchive::new(fs::File::open(path).unwrap()).unwrap();
    let mut out = Vec::new();
    for i in 0..zip.len() {
        let mut f = zip.by_index(i).unwrap();
        let mut data = Vec::new();
        f.read_to_end(&mut data).unwrap();
        out.push((f.name().unwrap().into_owned(), data));
    }
    out
}

pub fn entry(path: &std::path::Path, name: &str) -> String {
    let all = entries(path);
    let (_, data) = all.iter().find(|(n, _)| n == name).unwrap_or_else(|| {
        panic!(
            "no {name} in {}: {:?}",
            path.display(),
            all.iter().map(|e| &e.0).collect::<Vec<_>>()
        )
    });
    String::from_utf8_lossy(data).into_owned()
}

fn names(path: &std::path::Path) -> Vec<String> {
    entries(path).into_iter().map(|(n, _)| n).collect()
}

#[test]
fn a_no_run_capture_packs_steps_scenario_and_included_files() {
    let sb = Sandbox::new();
    sb.write("run.sh", "echo boom; exit 3\n");
    sb.write("steps.txt", "1. sh run.sh\n2. it says boom\n");
    sb.bugpack()
        .args([
            "capture",
            "-o",
            "bug.zip",
            "--title",
            "boom",
            "--steps",
            "steps.txt",
        ])
        .args(["--include", "run.sh", "--no-run", "--", "sh", "run.sh"])
        .run()
        .success()
        .stdout_has("wrote bug.zip")
        .stdout_has("sha256");
    let bundle = sb.path("bug.zip");
    let listed = names(&bundle);
    assert_eq!(listed[0], "bugpack.yaml");
    for name in [
        "ISSUE.md",
        "steps.md",
        "scenario/scenario.yaml",
        "scenario/run.sh",
        "env/system.yaml",
        "env/vars.yaml",
    ] {
        assert!(
            listed.iter().any(|n| n == name),
            "{name} missing from {listed:?}"
        );
    }
    let mut sorted = listed[1..].to_vec();
    sorted.sort();
    assert_eq!(
        sorted,
        listed[1..],
        "entries must be sorted after the manifest"
    );
    let scenario = entry(&bundle, "scenario/scenario.yaml");
    assert!(scenario.contains("run: sh run.sh"), "{scenario}");
    assert!(entry(&bundle, "steps.md").contains("it says boom"));
    sb.bugpack()
        .args(["verify", "bug.zip"])
        .run()
        .success()
        .stdout_has("intact, unsigned");
    sb.bugpack()
        .args(["inspect", "bug.zip"])
        .run()
        .success()
        .stdout_has("boom")
        .stdout_has("run      sh run.sh")
        .stdout_has("scenario/run.sh");
    let issue = fs::read_to_string(sb.path("bug.zip.md")).unwrap();
    let sha = crate::support::zipper::sha256(&fs::read(&bundle).unwrap());
    assert!(
        issue.contains(&sha),
        "the issue text names the bundle's SHA-256\n{issue}"
    );
    assert!(issue.contains("bugpack replay bug.zip"), "{issue}");
}

#[test]
fn same_inputs_and_source_date_epoch_give_identical_bundles() {
    let sb = Sandbox::new();
    sb.write("run.sh", "echo hi\n");
    sb.write("conf/app.ini", "[db]\nhost = localhost\n");
    for out in ["a.zip", "b.zip"] {
        sb.bugpack()
            .env("SOURCE_DATE_EPOCH", "1763805600")
            .args([
                "capture",
                "-o",
                out,
                "--title",
                "same",
                "--include",
                "run.sh",
            ])
            .args(["--config", "conf", "--no-run", "--", "sh", "run.sh"])
            .run()
            .success();
    }
    let a = fs::read(sb.path("a.zip")).unwrap();
    let b = fs::read(sb.path("b.zip")).unwrap();
    assert!(a == b, "two captures of the same inputs differ");
    assert!(entry(&sb.path("a.zip"), "bugpack.yaml").contains("created: 2025-11-22T10:00:00Z"));
}

#[test]
fn the_default_output_name_is_dated() {
    let sb = Sandbox::new();
    sb.bugpack()
        .env("SOURCE_DATE_EPOCH", "1763805600")
        .args(["capture", "--title", "dated"])
        .run()
        .success()
        .stdout_has("bugpack-20251122-100000.zip");
    assert!(sb.path("bugpack-20251122-100000.zip").is_file());
    assert!(sb.path("bugpack-20251122-100000.zip.md").is_file());
}

#[test]
fn a_failing_command_becomes_a_scenario_that_expects_its_exit_code() {
    let sb = Sandbox::new();
    sb.write(
        "fail.sh",
        "echo 'starting'; echo 'fatal: disk on fire' >&2; exit 7\n",
    );
    sb.bugpack()
        .args([
            "capture",
            "-o",
            "bug.zip",
            "--include",
            "fail.sh",
            "--",
            "sh",
            "fail.sh",
        ])
        .run()
        .success()
        .stdout_has("exited 7");
    let bundle = sb.path("bug.zip");
    let result = entry(&bundle, "observed/result.yaml");
    assert!(result.contains("ending: exited"), "{result}");
    assert!(result.contains("exit_code: 7"), "{result}");
    assert_eq!(entry(&bundle, "observed/stdout.log"), "starting\n");
    assert_eq!(
        entry(&bundle, "observed/stderr.log"),
        "fatal: disk on fire\n"
    );
    let scenario = entry(&bundle, "scenario/scenario.yaml");
    assert!(scenario.contains("exit: 7"), "{scenario}");
    let issue = entry(&bundle, "ISSUE.md");
    assert!(issue.contains("exited with code 7"), "{issue}");
    assert!(issue.contains("fatal: disk on fire"), "{issue}");
}

#[test]
fn a_hang_is_stopped_at_the_timeout_and_expected() {
    let sb = Sandbox::new();
    sb.write(
        "hang.sh",
        "echo waiting; sleep 300 & echo $! > sleeper.pid; wait\n",
    );
    let started = std::time::Instant::now();
    sb.bugpack()
        .args([
            "capture",
            "-o",
            "bug.zip",
            "--timeout",
            "1s",
            "--include",
            "hang.sh",
            "--",
            "sh",
            "hang.sh",
        ])
        .run()
        .success()
        .stdout_has("hung");
    assert!(started.elapsed().as_secs() < 30);
    let bundle = sb.path("bug.zip");
    assert!(entry(&bundle, "observed/result.yaml").contains("ending: hang"));
    assert!(entry(&bundle, "scenario/scenario.yaml").contains("hang: true"));
    // The sleep the script started was stopped with it.
    let pid = fs::read_to_string(sb.path("sleeper.pid")).unwrap();
    let stat = fs::read_to_string(format!("/proc/{}/stat", pid.trim())).unwrap_or_default();
    assert!(
        stat.is_empty() || stat.contains(") Z "),
        "the grandchild survived: {stat}"
    );
}

#[test]
fn user_expectations_override_what_was_seen() {
    let sb = Sandbox::new();
    sb.bugpack()
        .args([
            "capture",
            "-o",
            "bug.zip",
            "--expect-output",
            "PENDING forever",
            "--",
            "echo",
            "PENDING forever",
        ])
        .run()
        .success();
    let scenario = entry(&sb.path("bug.zip"), "scenario/scenario.yaml");
    assert!(scenario.contains("output: PENDING forever"), "{scenario}");
    assert!(!scenario.contains("exit:"), "{scenario}");
}

#[test]
fn a_scenario_directory_is_packed_whole() {
    let sb = Sandbox::new();
    sb.write(
        "repro/scenario.yaml",
        "name: poll\nrun: python3 client.py\ntimeout: 5s\nexpect: {hang: true}\n",
    );
    sb.write("repro/client.py", "print('hi')\n");
    sb.write("repro/data/fixture.json", "{}\n");
    sb.bugpack()
        .args(["capture", "-o", "bug.zip", "--scenario", "repro"])
        .run()
        .success();
    let bundle = sb.path("bug.zip");
    let listed = names(&bundle);
    for name in [
        "scenario/scenario.yaml",
        "scenario/client.py",
        "scenario/data/fixture.json",
    ] {
        assert!(
            listed.iter().any(|n| n == name),
            "{name} missing from {listed:?}"
        );
    }
    assert!(entry(&bundle, "bugpack.yaml").contains("name: poll"));
}

#[test]
fn logs_are_tails_read_from_the_end() {
    let sb = Sandbox::new();
    let mut log = String::with_capacity(50 << 20);
    let mut i = 0u64;
    while log.len() < 50 << 20 {
        log.push_str(&format!("{i:09} request handled in 3 ms\n"));
        i += 1;
    }
    log.push_str("LAST LINE\n");
    sb.write("logs/app.log", &log);
    sb.bugpack()
        .args([
            "capture",
            "-o",
            "bug.zip",
            "--log",
            "logs/*.log",
            "--log-bytes",
            "64KiB",
        ])
        .run()
        .success();
    let tail = entry(&sb.path("bug.zip"), "logs/logs/app.log");
    assert!(
        tail.len() <= 64 << 10 && tail.len() > 60 << 10,
        "{}",
        tail.len()
    );
    assert!(tail.ends_with("LAST LINE\n"));
    assert!(
        tail.starts_with(|c: char| c.is_ascii_digit()),
        "starts at a line boundary"
    );
}

#[test]
fn git_state_is_recorded_with_credentials_stripped() {
    let sb = Sandbox::new();
    let git = |args: &[&str]| {
        let st = Command::new("git")
            .args(args)
            .current_dir(sb.dir())
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@example.com")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@example.com")
            .output()
            .unwrap();
        assert!(
            st.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&st.stderr)
        );
    };
    git(&["init", "-q", "-b", "main"]);
    sb.write("src/lib.txt", "one\ntwo\n");
    git(&["add", "."]);
    git(&["commit", "-q", "-m", "first"]);
    git(&["tag", "v1.0"]);
    sb.write("src/lib.txt", "one\ntwo changed\n");
    sb.write("notes.txt", "untracked\n");
    git(&[
        "remote",
        "add",
        "origin",
        "https://x-access-token:ghp_R3alLookingT0kenValue1234567890abcd@github.com/acme/app.git",
    ]);
    sb.bugpack()
        .args(["capture", "-o", "bug.zip"])
        .run()
        .success();
    let bundle = sb.path("bug.zip");
    let repo = entry(&bundle, "git/repo.yaml");
    assert!(repo.contains("branch: main"), "{repo}");
    assert!(repo.contains("describe: v1.0"), "{repo}");
    assert!(repo.contains("dirty: true"), "{repo}");
    assert!(repo.contains("src/lib.txt"), "{repo}");
    assert!(repo.contains("notes.txt"), "{repo}");
    assert!(repo.contains("github.com/acme/app.git"), "{repo}");
    assert!(!repo.contains("ghp_R3alLookingT0ken"), "{repo}");
    let diff = entry(&bundle, "git/diff.patch");
    assert!(diff.contains("+two changed"), "{diff}");
    assert!(
        !diff.contains("untracked"),
        "untracked files are not in the diff\n{diff}"
    );
    let raw = fs::read(&bundle).unwrap();
    assert!(!raw.windows(10).any(|w| w == b"ghp_R3alLo"));
}

#[test]
fn dry_run_lists_entries_and_redactions_and_writes_nothing() {
    let sb = Sandbox::new();
    sb.write("app.env", "DB_PASSWORD=hunter2hunter2\nDEBUG=1\n");
    let before = sb.listing();
    let out = sb
        .bugpack()
        .args([
            "capture",
            "-o",
            "bug.zip",
            "--config",
            "app.env",
            "--dry-run",
            "--",
            "sh",
            "-c",
            "exit 1",
        ])
        .run()
        .success()
        .stdout_has("config/app.env")
        .stdout_has("[REDACTED:")
        .stdout_has("nothing was written")
        .stdout_lacks("hunter2hunter2");
    assert!(out.stdout.contains("config/app.env:1"), "{}", out.stdout);
    assert_eq!(sb.listing(), before, "--dry-run wrote something");
}

/// A bad input: exit `code`, a one-line error with `needle`, and nothing
/// written (no bundle, no issue text, no temporary file left).
fn bad_capture(sb: &Sandbox, args: &[&str], code: i32, needle: &str) {
    let before = sb.listing();
    sb.bugpack()
        .args(["capture", "-o", "bug.zip"])
        .args(args)
        .run()
        .code(code)
        .one_line_error()
        .stderr_has(needle);
    assert!(!sb.path("bug.zip").exists());
    assert_eq!(sb.listing(), before, "capture {args:?} left files behind");
}

#[test]
fn bad_input_leaves_no_bundle() {
    let sb = Sandbox::new();
    std::fs::create_dir(sb.path("somedir")).unwrap();
    sb.write(
        "bad-scenario/scenario.yaml",
        "name: x\nrun: y\nretries: 3\n",
    );
    sb.write("bad-profile.yaml", "logz: [x]\n");
    sb.write("big.bin", vec![b'x'; 10]);
    bad_capture(
        &sb,
        &["--config", "missing.ini"],
        2,
        "missing.ini: no such file",
    );
    bad_capture(&sb, &["--log", "missing.log"], 2, "missing.log");
    bad_capture(&sb, &["--log", "somedir"], 2, "is a directory");
    bad_capture(&sb, &["--log", "nothing/*.log"], 2, "matches no file");
    bad_capture(&sb, &["--include", "missing.txt"], 2, "missing.txt");
    bad_capture(
        &sb,
        &["--", "no-such-command-bugpack"],
        2,
        "no such command",
    );
    bad_capture(&sb, &["--scenario", "bad-scenario"], 2, "retries");
    bad_capture(&sb, &["--scenario", "somedir"], 2, "scenario.yaml");
    bad_capture(&sb, &["--profile", "bad-profile.yaml"], 2, "logz");
    bad_capture(&sb, &["--timeout", "soon", "--", "true"], 2, "--timeout");
    bad_capture(
        &sb,
        &["--expect-exit", "maybe", "--", "true"],
        2,
        "--expect-exit",
    );
    bad_capture(
        &sb,
        &["--expect-output", "(", "--", "true"],
        2,
        "--expect-output",
    );
    bad_capture(&sb, &["--redact", "(", "--", "true"], 2, "(");
    bad_capture(&sb, &["--no-run"], 2, "after `--`");
}

#[test]
fn a_command_that_prints_gigabytes_costs_a_tail() {
    let sb = Sandbox::new();
    sb.bugpack()
        .args(["capture", "-o", "bug.zip", "--timeout", "60s", "--"])
        .args([
            "sh",
            "-c",
            "head -c 1500000000 /dev/zero | tr '\\0' 'x'; echo; echo DONE; exit 1",
        ])
        .run()
        .success();
    let bundle = sb.path("bug.zip");
    let out = entry(&bundle, "observed/stdout.log");
    assert!(out.len() <= 1 << 20, "{}", out.len());
    assert!(out.ends_with("DONE\n"));
    let result = entry(&bundle, "observed/result.yaml");
    assert!(result.contains("stdout_bytes: 1500000006"), "{result}");
    assert!(result.contains("stdout_truncated: true"), "{result}");
}

#[test]
fn non_utf8_file_names_are_refused_clearly() {
    use std::os::unix::ffi::OsStrExt as _;
    let sb = Sandbox::new();
    let name = std::ffi::OsStr::from_bytes(b"conf-\xff.ini");
    fs::write(sb.dir().join(name), "a = 1\n").unwrap();
    let before = sb.listing();
    sb.bugpack()
        .args(["capture", "-o", "bug.zip"])
        .arg("--config")
        .arg(name)
        .run()
        .code(2)
        .one_line_error()
        .stderr_has("not UTF-8");
    assert_eq!(sb.listing(), before);
}

#[test]
fn probes_record_what_intermediaries_say() {
    use std::io::{BufRead as _, BufReader, Write as _};
    // A tiny origin that answers like a caching proxy would: a Via header,
    // and on the second request an Age and an X-Cache hit.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        for (i, stream) in listener.incoming().take(2).enumerate() {
            let mut stream = stream.unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            while reader.read_line(&mut line).unwrap() > 2 {
                line.clear();
            }
            let (age, cache) = if i == 0 { ("0", "MISS") } else { ("42", "HIT") };
            write!(
                stream,
                "HTTP/1.1 200 OK\r\nVia: 1.1 corp-proxy (squid)\r\nAge: {age}\r\nX-Cache: {cache}\r\n\
                 Cache-Control: max-age=600\r\nSet-Cookie: sid=do-not-record\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
            )
            .unwrap();
        }
    });
    let sb = Sandbox::new();
    let mut run = sb.bugpack();
    for var in [
        "http_proxy",
        "HTTP_PROXY",
        "https_proxy",
        "HTTPS_PROXY",
        "all_proxy",
        "ALL_PROXY",
    ] {
        run = run.env_remove(var);
    }
    run.args([
        "capture",
        "-o",
        "bug.zip",
        "--probe",
        &format!("http://127.0.0.1:{port}/status"),
    ])
    .run()
    .success();
    server.join().unwrap();
    let net = entry(&sb.path("bug.zip"), "env/network.yaml");
    assert!(
        net.contains(&format!("url: http://127.0.0.1:{port}/status")),
        "{net}"
    );
    assert!(net.contains("via: 1.1 corp-proxy (squid)"), "{net}");
    assert!(
        net.contains("x-cache: MISS") && net.contains("x-cache: HIT"),
        "{net}"
    );
    assert!(net.contains("age: '42'"), "{net}");
    assert!(net.contains("cache-control: max-age=600"), "{net}");
    assert!(
        !net.contains("do-not-record"),
        "only the revealing headers are kept\n{net}"
    );
    assert_eq!(net.matches("status: 200").count(), 2, "{net}");
}
