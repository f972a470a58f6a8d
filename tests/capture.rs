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

/// Starts `bugpack` in the sandbox as the harness would, without waiting:
/// for tests that signal it while it works.
fn spawn(sb: &Sandbox, args: &[&str]) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_bugpack"))
        .args(args)
        .current_dir(sb.dir())
        .env("TMPDIR", sb.tmp())
        .env("HOME", sb.home())
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("SOURCE_DATE_EPOCH")
        .env_remove("NO_COLOR")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits until `ready` holds; a guard against a hung test, not a timing check.
fn wait_until(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_mins(2);
    while !ready() {
        assert!(
            std::time::Instant::now() < deadline,
            "gave up waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// Whether process `pid` (read from a pid file) has ended: gone, or a zombie.
fn ended(pid_file: &std::path::Path) -> bool {
    let pid = fs::read_to_string(pid_file).unwrap();
    let stat = fs::read_to_string(format!("/proc/{}/stat", pid.trim())).unwrap_or_default();
    stat.is_empty() || stat.contains(") Z ")
}

/// Sends `signal` to a spawned bugpack and checks the interrupted ending:
/// exit 4, the one line, and nothing left in the sandbox but `before`.
fn interrupt(
    sb: &Sandbox,
    child: std::process::Child,
    signal: nix::sys::signal::Signal,
    before: &[String],
) {
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap());
    nix::sys::signal::kill(pid, signal).unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert_eq!(stderr, "error: interrupted; nothing written\n");
    assert_eq!(
        sb.listing(),
        before,
        "an interrupted capture left files behind"
    );
}

#[test]
fn an_interrupt_while_the_command_runs_stops_its_whole_tree_and_writes_nothing() {
    let sb = Sandbox::new();
    let marks = tempfile::tempdir().unwrap();
    let pid_file = marks.path().join("daemon.pid");
    sb.write(
        "serve.sh",
        format!(
            // The daemon double-forks: its parent is gone, it left the group.
            "(setsid sleep 301 & echo $! > {0}.tmp && mv {0}.tmp {0})\necho serving\nsleep 300\n",
            pid_file.display()
        ),
    );
    let before = sb.listing();
    let child = spawn(
        &sb,
        &[
            "capture",
            "-o",
            "bug.zip",
            "--include",
            "serve.sh",
            "--",
            "sh",
            "serve.sh",
        ],
    );
    wait_until("the command to start its daemon", || pid_file.exists());
    interrupt(&sb, child, nix::sys::signal::Signal::SIGINT, &before);
    assert!(
        ended(&pid_file),
        "the setsid grandchild outlived the capture"
    );
}

#[test]
fn an_interrupt_while_gathering_writes_nothing() {
    // A probe to a server that accepts and never answers holds the capture
    // in a blocking read; SIGTERM must still end it at once.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let sb = Sandbox::new();
    let before = sb.listing();
    let url = format!("http://127.0.0.1:{port}/status");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_bugpack"));
    let child = {
        for var in ["http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"] {
            cmd.env_remove(var);
        }
        cmd.args(["capture", "-o", "bug.zip", "--probe", &url])
            .current_dir(sb.dir())
            .env("TMPDIR", sb.tmp())
            .env("HOME", sb.home())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (_held, _) = listener.accept().unwrap();
    interrupt(&sb, child, nix::sys::signal::Signal::SIGTERM, &before);
}

#[test]
fn an_interrupt_while_writing_leaves_no_partial_bundle() {
    let sb = Sandbox::new();
    let mut random = vec![0u8; 40 << 20];
    fs::File::open("/dev/urandom")
        .unwrap()
        .read_exact(&mut random)
        .unwrap();
    sb.write("a.bin", &random);
    random.reverse();
    sb.write("b.bin", &random);
    drop(random);
    let before = sb.listing();
    let child = spawn(
        &sb,
        &[
            "capture",
            "-o",
            "bug.zip",
            "--include",
            "a.bin",
            "--include",
            "b.bin",
        ],
    );
    // The bundle is written in a private directory beside the output:
    // once it appears, the writer is at work.
    wait_until("the writer to start", || {
        fs::read_dir(sb.dir())
            .unwrap()
            .flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with(".bug.zip."))
    });
    interrupt(&sb, child, nix::sys::signal::Signal::SIGINT, &before);
}

#[test]
fn a_hang_stops_grandchildren_that_left_the_process_group() {
    let sb = Sandbox::new();
    let marks = tempfile::tempdir().unwrap();
    let pid_file = marks.path().join("daemon.pid");
    sb.write(
        "h.sh",
        format!(
            // The daemon double-forks: its parent is gone, it left the group.
            "(setsid sleep 302 & echo $! > {0}.tmp && mv {0}.tmp {0})\nsleep 300\n",
            pid_file.display()
        ),
    );
    sb.bugpack()
        .args([
            "capture",
            "-o",
            "bug.zip",
            "--timeout",
            "2s",
            "--include",
            "h.sh",
            "--",
            "sh",
            "h.sh",
        ])
        .run()
        .success()
        .stdout_has("hung");
    assert!(ended(&pid_file), "`setsid sleep 302` survived the timeout");
    assert!(entry(&sb.path("bug.zip"), "scenario/scenario.yaml").contains("hang: true"));
}

#[test]
fn fifos_and_devices_are_refused_before_they_can_block() {
    let sb = Sandbox::new();
    let st = Command::new("mkfifo")
        .arg(sb.path("pipe"))
        .status()
        .unwrap();
    assert!(st.success());
    bad_capture(&sb, &["--log", "pipe"], 2, "FIFO");
    bad_capture(&sb, &["--config", "pipe"], 2, "FIFO");
    bad_capture(&sb, &["--include", "pipe"], 2, "FIFO");
    bad_capture(&sb, &["--log", "/dev/zero"], 2, "is a device");
}

#[test]
fn a_missing_output_directory_and_an_empty_title_are_usage_errors() {
    let sb = Sandbox::new();
    let before = sb.listing();
    sb.bugpack()
        .args(["capture", "-o", "no-such-dir/x.zip"])
        .run()
        .code(2)
        .one_line_error()
        .stderr_has("the directory no-such-dir does not exist")
        .stderr_lacks("partial");
    bad_capture(&sb, &["--title", ""], 2, "--title is empty");
    bad_capture(&sb, &["--title", "  "], 2, "--title is empty");
    assert_eq!(sb.listing(), before);
}

#[test]
fn bare_sign_uses_the_default_key() {
    let sb = Sandbox::new();
    let xdg = sb.home().join("xdg");
    sb.bugpack()
        .env("XDG_CONFIG_HOME", &xdg)
        .args(["keygen"])
        .run()
        .success();
    let out = sb
        .bugpack()
        .env("XDG_CONFIG_HOME", &xdg)
        .args(["capture", "--sign", "-o", "bug.zip", "--title", "signed"])
        .run()
        .success()
        .stdout_has("signed  SHA256:");
    assert!(names(&sb.path("bug.zip")).contains(&"bugpack.yaml.sig".to_owned()));
    let fingerprint = out
        .stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("signed  "))
        .unwrap()
        .to_owned();
    sb.bugpack()
        .args(["verify", "bug.zip", "--key"])
        .arg(xdg.join("bugpack/id_ed25519.pub"))
        .run()
        .success()
        .stdout_has(&fingerprint);
    // `--sign KEY` names the key; a missing one is a usage error.
    fs::remove_file(sb.path("bug.zip")).unwrap();
    fs::remove_file(sb.path("bug.zip.md")).unwrap();
    bad_capture(&sb, &["--sign", "no-such-key"], 2, "no-such-key");
}

#[test]
fn a_script_included_from_outside_the_directory_replays() {
    let sb = Sandbox::new();
    sb.write("../tools/x.sh", "echo 'disk on fire' >&2\nexit 3\n");
    let root = sb.dir().parent().unwrap().to_path_buf();
    sb.bugpack()
        .args([
            "capture",
            "-o",
            "bug.zip",
            "--include",
            "../tools/x.sh",
            "--",
            "sh",
            "../tools/x.sh",
        ])
        .run()
        .success()
        .stdout_has("exited 3");
    let bundle = sb.path("bug.zip");
    for (name, _) in entries(&bundle) {
        assert!(
            !name.contains(root.file_name().unwrap().to_str().unwrap()),
            "{name} holds a host path"
        );
    }
    let scenario = entry(&bundle, "scenario/scenario.yaml");
    assert!(scenario.contains("run: sh x.sh"), "{scenario}");
    assert_eq!(
        entry(&bundle, "scenario/x.sh"),
        "echo 'disk on fire' >&2\nexit 3\n"
    );
    let out = sb
        .bugpack()
        .args(["replay", "bug.zip", "--yes", "--runs", "1", "--json", "-"])
        .run()
        .success();
    let report: crate::support::reports::JReport = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(report.verdict, "reproduced");
    assert_eq!(report.cells[0].results[0].exit_code, Some(3));
}

#[test]
fn paths_keep_their_layout_relative_to_the_repository_and_never_the_host() {
    let sb = Sandbox::new();
    let root = sb.dir().parent().unwrap().to_path_buf();
    let st = Command::new("git")
        .args(["init", "-q"])
        .current_dir(&root)
        .status()
        .unwrap();
    assert!(st.success());
    sb.write("../tools/x.sh", "exit 5\n");
    sb.write("../conf/app.ini", "[a]\nb = 1\n");
    sb.write("input.txt", "data\n");
    let outside = tempfile::tempdir().unwrap();
    fs::create_dir_all(outside.path().join("etc/one")).unwrap();
    fs::create_dir_all(outside.path().join("etc/two")).unwrap();
    fs::write(outside.path().join("etc/one/app.ini"), "one = 1\n").unwrap();
    fs::write(outside.path().join("etc/two/app.ini"), "two = 2\n").unwrap();
    fs::create_dir_all(outside.path().join("var/log/app")).unwrap();
    fs::write(outside.path().join("var/log/app/web.log"), "GET /\n").unwrap();
    let input = sb.path("input.txt").display().to_string();
    let one = outside.path().join("etc/one/app.ini").display().to_string();
    let two = outside.path().join("etc/two/app.ini").display().to_string();
    let logs = format!("{}/var/log/*/web.log", outside.path().display());
    sb.bugpack()
        .args(["capture", "-o", "bug.zip", "--no-run"])
        .args(["--include", "../tools/x.sh", "--include", &input])
        .args([
            "--config",
            "../conf/app.ini",
            "--config",
            &one,
            "--config",
            &two,
        ])
        .args(["--log", &logs])
        .args(["--", "sh", "../tools/x.sh", &input])
        .run()
        .success();
    let bundle = sb.path("bug.zip");
    let listed = names(&bundle);
    for name in [
        "scenario/tools/x.sh",
        "scenario/input.txt",
        "config/conf/app.ini",
        "config/app.ini",
        "config/app-2.ini",
        "logs/app/web.log",
    ] {
        assert!(
            listed.iter().any(|n| n == name),
            "{name} missing from {listed:?}"
        );
    }
    for name in &listed {
        assert!(
            !name.contains("bugpack-test-") && !name.contains(".tmp"),
            "{name} holds a host path"
        );
    }
    assert_eq!(entry(&bundle, "config/app.ini"), "one = 1\n");
    assert_eq!(entry(&bundle, "config/app-2.ini"), "two = 2\n");
    let scenario = entry(&bundle, "scenario/scenario.yaml");
    assert!(
        scenario.contains("run: sh tools/x.sh input.txt"),
        "{scenario}"
    );
}

#[test]
fn an_included_path_the_command_hides_in_a_longer_argument_is_refused_before_running() {
    let sb = Sandbox::new();
    let marks = tempfile::tempdir().unwrap();
    let ran = marks.path().join("ran");
    sb.write("../tools/x.sh", format!("touch {}\n", ran.display()));
    bad_capture(
        &sb,
        &[
            "--include",
            "../tools/x.sh",
            "--",
            "sh",
            "-c",
            "sh ../tools/x.sh",
        ],
        2,
        "names ../tools/x.sh inside the argument",
    );
    assert!(!ran.exists(), "the command ran before the refusal");
}

#[test]
fn a_command_that_exits_0_gives_no_expectation_and_a_warning() {
    let sb = Sandbox::new();
    sb.bugpack()
        .args(["capture", "-o", "bug.zip", "--", "echo", "all good"])
        .run()
        .success()
        .stderr_has("warning: the command exited 0")
        .stderr_has("--expect-output REGEX");
    let scenario = entry(&sb.path("bug.zip"), "scenario/scenario.yaml");
    assert!(scenario.contains("run: echo 'all good'"), "{scenario}");
    // A key of its own line: the environment packed above it holds the
    // test runner's variables, which name this test, "expectation" and all.
    assert!(!scenario.contains("\nexpect:"), "{scenario}");
    // With an expectation given there is nothing to warn about.
    sb.bugpack()
        .args([
            "capture",
            "-o",
            "b2.zip",
            "--expect-output",
            "good",
            "--",
            "echo",
            "all good",
        ])
        .run()
        .success()
        .stderr_lacks("warning");
}

#[test]
fn bad_files_inside_directories_and_globs_are_skipped_with_a_warning() {
    use std::os::unix::ffi::OsStrExt as _;
    let sb = Sandbox::new();
    sb.write("conf/ok.ini", "a = 1\n");
    sb.write("conf/deep/er/nested.ini", "b = 2\n");
    sb.write("conf/blob.db", b"SQLite format 3\0\x01\x02".as_slice());
    sb.write("conf/big.ini", vec![b'x'; (1 << 20) + 1]);
    // U+2215 reads as `/` and some unzip tools make it one: no reader takes it.
    sb.write("conf/a\u{2215}b.ini", "c = 3\n");
    sb.write("logs/app.log", "started\nready\n");
    let mut random = vec![0u8; 100 << 10];
    fs::File::open("/dev/urandom")
        .unwrap()
        .read_exact(&mut random)
        .unwrap();
    random[500] = 0;
    sb.write("logs/core.log", &random);
    fs::write(
        sb.dir()
            .join("logs")
            .join(std::ffi::OsStr::from_bytes(b"bad-\xff.log")),
        "x\n",
    )
    .unwrap();
    let out = sb
        .bugpack()
        .args([
            "capture",
            "-o",
            "bug.zip",
            "--config",
            "conf",
            "--log",
            "logs/*.log",
        ])
        .run()
        .success();
    let warnings: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.starts_with("warning: skipped"))
        .collect();
    assert_eq!(warnings.len(), 5, "{}", out.stderr);
    for (file, why) in [
        ("conf/blob.db", "binary"),
        ("conf/a\u{2215}b.ini", "look-alike of `/`"),
        ("conf/big.ini", "over the 1048576 byte limit"),
        ("logs/core.log", "binary"),
        ("bad-\u{fffd}.log", "not UTF-8"),
    ] {
        assert!(
            warnings.iter().any(|w| w.contains(file) && w.contains(why)),
            "no warning for {file} ({why})\n{}",
            out.stderr
        );
    }
    let listed = names(&sb.path("bug.zip"));
    let packed: Vec<&String> = listed
        .iter()
        .filter(|n| n.starts_with("config/") || n.starts_with("logs/"))
        .collect();
    assert_eq!(
        packed,
        [
            "config/conf/deep/er/nested.ini",
            "config/conf/ok.ini",
            "logs/logs/app.log"
        ]
    );
    // The dry run lists what it would skip.
    sb.bugpack()
        .args([
            "capture",
            "--dry-run",
            "--config",
            "conf",
            "--log",
            "logs/*.log",
        ])
        .run()
        .success()
        .stdout_has("skipped ")
        .stdout_has("core.log: binary");
    // A binary log named on its own is skipped the same way.
    sb.bugpack()
        .args(["capture", "-o", "c.zip", "--log", "logs/core.log"])
        .run()
        .success()
        .stderr_has("core.log: binary");
    // A name no reader would take, named on its own: the user can rename it.
    sb.bugpack()
        .args(["capture", "-o", "d.zip", "--config", "conf/a\u{2215}b.ini"])
        .run()
        .code(2)
        .stderr_has("look-alike of `/`");
    assert!(!sb.path("d.zip").exists());
}

#[test]
fn an_unreadable_file_in_a_config_directory_is_skipped_but_named_alone_is_an_error() {
    use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
    let sb = Sandbox::new();
    sb.write("conf/ok.ini", "a = 1\n");
    let secret = sb.write("conf/locked.ini", "password = x\n");
    fs::set_permissions(&secret, fs::Permissions::from_mode(0o000)).unwrap();
    // Root reads anything: run bugpack as nobody then, in a sandbox nobody may use.
    let root = fs::metadata(&secret).unwrap().uid() == 0;
    let run = |args: &[&str]| {
        let mut cmd = if root {
            let mut c = Command::new("setpriv");
            c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
                .arg(env!("CARGO_BIN_EXE_bugpack"));
            c
        } else {
            Command::new(env!("CARGO_BIN_EXE_bugpack"))
        };
        cmd.args(args)
            .current_dir(sb.dir())
            .env("TMPDIR", sb.tmp())
            .env("HOME", sb.home())
            .output()
            .unwrap()
    };
    if root {
        let top = sb.dir().parent().unwrap().to_path_buf();
        for dir in [top.clone(), sb.dir(), sb.tmp(), sb.home(), sb.path("conf")] {
            fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).unwrap();
        }
    }
    let out = run(&["capture", "-o", "bug.zip", "--config", "conf"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("warning: skipped") && stderr.contains("locked.ini: permission denied"),
        "{stderr}"
    );
    let listed = names(&sb.path("bug.zip"));
    assert!(
        listed.contains(&"config/conf/ok.ini".to_owned()),
        "{listed:?}"
    );
    assert!(!listed.iter().any(|n| n.contains("locked")), "{listed:?}");
    let out = run(&["capture", "-o", "b2.zip", "--config", "conf/locked.ini"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.starts_with("error: --config conf/locked.ini: permission denied"),
        "{stderr}"
    );
    assert!(!sb.path("b2.zip").exists());
}

/// `env/system.yaml` as DESIGN.md describes it; an unknown (say, volatile)
/// field fails the test.
#[derive(Debug, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct SystemYaml {
    os: Option<String>,
    os_id: Option<String>,
    os_version: Option<String>,
    kernel: String,
    arch: String,
    cpu_model: Option<String>,
    cpu_count: u64,
    cpu_limit: Option<String>,
    memory_total_mib: u64,
    memory_limit_mib: Option<u64>,
    #[serde(default)]
    locale: std::collections::BTreeMap<String, String>,
    timezone: Option<String>,
    container: Option<String>,
    virtualization: Option<String>,
    #[serde(default)]
    proxy: std::collections::BTreeMap<String, String>,
    shell: Option<String>,
    #[serde(default)]
    tools: std::collections::BTreeMap<String, String>,
}

#[test]
fn system_yaml_describes_the_machine_and_nothing_that_changes() {
    let sb = Sandbox::new();
    sb.write(
        ".bugpack.yaml",
        "versions: {greeter: echo greeter 2.0, broken: exit 4}\n",
    );
    let capture = |out: &str| {
        sb.bugpack()
            .env("LANG", "C.UTF-8")
            .env("TZ", "Europe/Paris")
            .env("SHELL", "/bin/zsh")
            .env("https_proxy", "http://alice:pr0xyPassw0rd@proxy.corp:3128")
            .args(["capture", "-o", out])
            .run()
            .success();
        entry(&sb.path(out), "env/system.yaml")
    };
    let text = capture("a.zip");
    let system: SystemYaml = serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let uname = |flag: &str| {
        let out = Command::new("uname").arg(flag).output().unwrap();
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    assert_eq!(system.kernel, uname("-r"));
    assert_eq!(system.arch, uname("-m"));
    assert!(
        system.cpu_count >= 1 && system.memory_total_mib > 0,
        "{text}"
    );
    if std::path::Path::new("/etc/os-release").exists() {
        assert!(system.os.is_some() && system.os_id.is_some(), "{text}");
    }
    assert_eq!(system.locale["LANG"], "C.UTF-8");
    assert_eq!(system.timezone.as_deref(), Some("Europe/Paris"));
    assert_eq!(system.shell.as_deref(), Some("/bin/zsh"));
    assert_eq!(system.tools["greeter"], "greeter 2.0");
    assert_eq!(system.tools["broken"], "(exit 4)");
    let proxy = &system.proxy["https_proxy"];
    assert!(
        proxy.contains("proxy.corp:3128") && !proxy.contains("pr0xyPassw0rd"),
        "{proxy}"
    );
    // A second capture a moment later describes the same machine, byte for byte.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert_eq!(capture("b.zip"), text);
}

#[test]
fn env_deny_drops_variables_whole() {
    let sb = Sandbox::new();
    let out = sb
        .bugpack()
        .env("CORP_DB_HOST", "db17.corp.internal")
        .env("CORP_REGION", "north-7")
        .env("KEEP_ME", "visible")
        .args(["capture", "-o", "bug.zip", "--env-deny", "CORP_*"])
        .run()
        .success()
        .stdout_has("left out 2 environment variables");
    assert!(!out.stdout.contains("db17"));
    let vars = entry(&sb.path("bug.zip"), "env/vars.yaml");
    let vars: std::collections::BTreeMap<String, String> = serde_yaml::from_str(&vars).unwrap();
    assert_eq!(vars["KEEP_ME"], "visible");
    assert!(!vars.keys().any(|k| k.starts_with("CORP_")), "{vars:?}");
    let raw = fs::read(sb.path("bug.zip")).unwrap();
    assert!(!raw.windows(4).any(|w| w == b"db17"));
    bad_capture(&Sandbox::new(), &["--env-deny", "["], 2, "--env-deny");
}

#[test]
fn config_files_up_to_the_cap_are_packed_whole() {
    let sb = Sandbox::new();
    let edge = "k = v\n".repeat((1 << 20) / 6);
    let edge = format!("{edge}{}", "x".repeat((1 << 20) - edge.len()));
    assert_eq!(edge.len(), 1 << 20);
    sb.write("conf/a/b/c/edge.ini", &edge);
    sb.write("conf/over.ini", "y".repeat((1 << 20) + 1));
    sb.bugpack()
        .args(["capture", "-o", "bug.zip", "--config", "conf"])
        .run()
        .success()
        .stderr_has("conf/over.ini: 1048577 bytes, over the 1048576 byte limit");
    assert_eq!(
        entry(&sb.path("bug.zip"), "config/conf/a/b/c/edge.ini"),
        edge
    );
    assert!(
        !names(&sb.path("bug.zip"))
            .iter()
            .any(|n| n.contains("over.ini"))
    );
}

/// `git/repo.yaml`, read into its documented shape.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RepoYaml {
    head: Option<String>,
    branch: Option<String>,
    describe: Option<String>,
    remotes: Vec<serde_yaml::Value>,
    dirty: bool,
    #[serde(default)]
    staged: Vec<String>,
    #[serde(default)]
    unstaged: Vec<String>,
    #[serde(default)]
    untracked: Vec<String>,
    #[serde(default)]
    names_omitted: u64,
}

fn git(dir: &std::path::Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
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
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[test]
fn git_status_puts_staged_unstaged_and_untracked_names_apart() {
    let sb = Sandbox::new();
    git(&sb.dir(), &["init", "-q", "-b", "trunk"]);
    sb.write("staged.txt", "1\n");
    sb.write("unstaged.txt", "1\n");
    git(&sb.dir(), &["add", "."]);
    git(&sb.dir(), &["commit", "-q", "-m", "one"]);
    git(&sb.dir(), &["commit", "-q", "--allow-empty", "-m", "two"]);
    let head = git(&sb.dir(), &["rev-parse", "HEAD"]);
    sb.write("staged.txt", "2\n");
    git(&sb.dir(), &["add", "staged.txt"]);
    sb.write("unstaged.txt", "2\n");
    sb.write("new.txt", "new\n");
    sb.bugpack()
        .args(["capture", "-o", "bug.zip"])
        .run()
        .success();
    let text = entry(&sb.path("bug.zip"), "git/repo.yaml");
    let repo: RepoYaml = serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(repo.head.as_deref(), Some(head.as_str()));
    assert_eq!(repo.branch.as_deref(), Some("trunk"));
    assert!(repo.dirty);
    assert_eq!(repo.staged, ["staged.txt"]);
    assert_eq!(repo.unstaged, ["unstaged.txt"]);
    // The bundle itself lands in the work tree after the status is read.
    assert_eq!(repo.untracked, ["new.txt"]);
    assert!(repo.remotes.is_empty() && repo.describe.is_none() && repo.names_omitted == 0);
    let diff = entry(&sb.path("bug.zip"), "git/diff.patch");
    assert!(
        diff.contains("+2") && diff.contains("staged.txt") && diff.contains("unstaged.txt"),
        "{diff}"
    );
    assert!(!diff.contains("new.txt"), "{diff}");
}

#[test]
fn the_profile_is_found_here_then_at_the_repository_root_and_a_flag_overrides_both() {
    let sb = Sandbox::new();
    let root = sb.dir().parent().unwrap().to_path_buf();
    git(&root, &["init", "-q"]);
    // The profile was written for every machine: what this one lacks is
    // skipped with a warning, not an error.
    fs::write(
        root.join(".bugpack.yaml"),
        "title: from the root profile\nconfig: [rootconf.ini, missing.ini]\nlogs: ['nolog/*.log']\n",
    )
    .unwrap();
    fs::write(root.join("rootconf.ini"), "level = root\n").unwrap();
    let title = |sb: &Sandbox, extra: &[&str]| {
        let _ = fs::remove_file(sb.path("bug.zip"));
        sb.bugpack()
            .args(["-v", "capture", "-o", "bug.zip"])
            .args(extra)
            .run()
            .success()
            .stderr_has("using the profile");
        let manifest = entry(&sb.path("bug.zip"), "bugpack.yaml");
        manifest
            .lines()
            .find_map(|l| l.strip_prefix("title: "))
            .unwrap()
            .to_owned()
    };
    assert_eq!(title(&sb, &[]), "from the root profile");
    sb.bugpack()
        .args(["capture", "-o", "warned.zip"])
        .run()
        .success()
        .stderr_has("missing.ini: no such file or directory (named by the profile)")
        .stderr_has("nolog/*.log: matches no file (named by the profile)");
    // Named on the command line, the same paths are errors.
    bad_capture(
        &Sandbox::new(),
        &["--config", "missing.ini"],
        2,
        "no such file",
    );
    assert_eq!(
        entry(&sb.path("bug.zip"), "config/rootconf.ini"),
        "level = root\n"
    );
    sb.write(".bugpack.yaml", "title: from the cwd profile\n");
    assert_eq!(title(&sb, &[]), "from the cwd profile");
    sb.write("elsewhere/p.yaml", "title: from the flag\n");
    assert_eq!(
        title(&sb, &["--profile", "elsewhere/p.yaml"]),
        "from the flag"
    );
    // The command line still beats the profile.
    assert_eq!(title(&sb, &["--title", "typed"]), "typed");
}

#[test]
fn steps_come_from_stdin() {
    let sb = Sandbox::new();
    sb.bugpack()
        .args(["capture", "-o", "bug.zip", "--steps", "-"])
        .stdin("1. clicked save\n2. the spinner spun forever\n")
        .run()
        .success();
    let steps = entry(&sb.path("bug.zip"), "steps.md");
    assert_eq!(steps, "1. clicked save\n2. the spinner spun forever\n");
    assert!(entry(&sb.path("bug.zip"), "ISSUE.md").contains("2. the spinner spun forever"));
}

/// Runs a command with stdin, stdout and stderr on a pseudo-terminal.
const ON_A_TERMINAL: &str = r"
import os, pty, subprocess, sys
master, slave = pty.openpty()
child = subprocess.Popen(sys.argv[1:], stdin=slave, stdout=slave, stderr=slave)
os.close(slave)
said = b''
while True:
    try:
        chunk = os.read(master, 65536)
    except OSError:
        break
    if not chunk:
        break
    said += chunk
sys.stdout.buffer.write(said)
sys.exit(child.wait())
";

#[test]
fn on_a_terminal_without_steps_the_editor_opens_the_template() {
    let sb = Sandbox::new();
    let editor = sb.write(
        "../fake-editor.sh",
        "grep -q '### What I did' \"$1\" || exit 9\nprintf '\\n1. opened the editor\\n' >> \"$1\"\n",
    );
    let out = Command::new("python3")
        .args(["-c", ON_A_TERMINAL, env!("CARGO_BIN_EXE_bugpack")])
        .args(["capture", "-o", "bug.zip", "--title", "edited"])
        .current_dir(sb.dir())
        .env("TMPDIR", sb.tmp())
        .env("HOME", sb.home())
        .env_remove("VISUAL")
        .env("EDITOR", format!("sh {}", editor.display()))
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{said}");
    let steps = entry(&sb.path("bug.zip"), "steps.md");
    assert!(
        steps.contains("### What I did") && steps.contains("1. opened the editor"),
        "{steps}"
    );
    assert!(
        !steps.contains("<!--"),
        "guidance comments are removed\n{steps}"
    );
    // The editor's file is gone from TMPDIR.
    assert_eq!(fs::read_dir(sb.tmp()).unwrap().count(), 0);
}

#[test]
fn a_bundle_past_25_mb_warns_and_names_its_largest_entries() {
    let sb = Sandbox::new();
    let mut random = vec![0u8; 26_000_000];
    fs::File::open("/dev/urandom")
        .unwrap()
        .read_exact(&mut random)
        .unwrap();
    sb.write("dump.bin", &random);
    sb.bugpack()
        .args(["capture", "-o", "bug.zip", "--include", "dump.bin"])
        .run()
        .success()
        .stderr_has("over GitHub's 25 MB attachment limit; the largest entries: scenario/dump.bin");
    sb.bugpack()
        .args(["capture", "-o", "small.zip"])
        .run()
        .success()
        .stderr_lacks("25 MB");
}

#[test]
fn the_issue_text_has_an_environment_table_and_the_output_collapsed() {
    let sb = Sandbox::new();
    sb.write(
        "fail.sh",
        "for i in $(seq 1 40); do echo \"line $i\"; done\necho 'boom' >&2\nexit 2\n",
    );
    sb.bugpack()
        .args([
            "capture",
            "-o",
            "bug.zip",
            "--title",
            "Build | fails",
            "--include",
            "fail.sh",
        ])
        .args(["--", "sh", "fail.sh"])
        .run()
        .success();
    let issue = fs::read_to_string(sb.path("bug.zip.md")).unwrap();
    // The title is text: its `|` is escaped (and renders as itself).
    assert!(issue.starts_with("## Build \\| fails\n"), "{issue}");
    assert!(issue.contains("\n| | |\n|---|---|\n| "), "{issue}");
    assert!(issue.contains("\n| Kernel | "), "{issue}");
    assert!(
        issue.contains("`sh fail.sh` exited with code 2 after"),
        "{issue}"
    );
    let details = issue
        .split("<details><summary>Last lines of output</summary>")
        .nth(1)
        .and_then(|rest| rest.split("</details>").next())
        .unwrap_or_else(|| panic!("no <details> block\n{issue}"));
    assert!(
        details.contains("```text\n--- stderr (last 1 lines)\nboom\n"),
        "{details}"
    );
    assert!(
        details.contains("--- stdout (last 30 lines)\nline 11\n"),
        "{details}"
    );
    assert!(details.contains("line 40\n```"), "{details}");
    assert!(!details.contains("line 10\n"), "{details}");
    let sha = crate::support::zipper::sha256(&fs::read(sb.path("bug.zip")).unwrap());
    assert!(issue.contains(&format!("SHA-256 `{sha}`")), "{issue}");
    assert!(
        issue.contains("```sh\nbugpack verify bug.zip\nbugpack replay bug.zip\n```"),
        "{issue}"
    );
    // Inside the bundle the text cannot name its own hash, nor the id of
    // the manifest that lists it.
    let inside = entry(&sb.path("bug.zip"), "ISSUE.md");
    assert!(inside.contains("The attached bundle holds"), "{inside}");
    assert!(
        !inside.contains("SHA-256") && !inside.contains("id `"),
        "{inside}"
    );
    assert!(inside.contains("<details><summary>Last lines of output</summary>"));
}

#[test]
fn a_file_the_command_names_but_the_bundle_lacks_gets_a_note() {
    let sb = Sandbox::new();
    sb.write("run.sh", "exit 1\n");
    sb.bugpack()
        .args(["capture", "-o", "bug.zip", "--", "sh", "run.sh"])
        .run()
        .success()
        .stdout_has(
            "note    the command names run.sh, which is not in the bundle; add --include run.sh",
        );
    sb.bugpack()
        .args([
            "capture",
            "-o",
            "b2.zip",
            "--include",
            "run.sh",
            "--",
            "sh",
            "run.sh",
        ])
        .run()
        .success()
        .stdout_lacks("note");
}

#[test]
fn output_that_is_one_endless_line_is_left_out_and_said_so() {
    let sb = Sandbox::new();
    sb.bugpack()
        .args(["capture", "-o", "bug.zip", "--"])
        .args(["sh", "-c", "head -c 3000000 /dev/zero | tr '\\0' x; exit 1"])
        .run()
        .success();
    let bundle = sb.path("bug.zip");
    assert_eq!(
        entry(&bundle, "observed/stdout.log"),
        "[bugpack: left out the last line, longer than the tail kept and the context read before it]\n"
    );
    assert!(entry(&bundle, "observed/result.yaml").contains("stdout_bytes: 3000000"));
}
