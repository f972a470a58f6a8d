//! Logging through the binary: what `-v`, `-vv` and `-vvv` say about capture
//! and replay (the proxy inside a run's sandbox included), that `-q` leaves
//! a successful capture and replay silent, when the level labels are
//! coloured, and that no secret reaches a log line at any level.

use std::fs;

use crate::support::Sandbox;

/// A scenario directory with a web service, and a run step that fetches
/// `/hello` from it through whatever proxy the run is given, then exits 3.
fn proxied_scenario(sb: &Sandbox) -> String {
    sb.write(
        "web/scenario.yaml",
        "name: web\n\
         services: [{name: app, run: python3 -m http.server $PORT --bind 127.0.0.1, ready: {http: /}}]\n\
         run: curl -s -o /dev/null $BUGPACK_SERVICE_APP_URL/hello; exit 3\n\
         expect: {exit: 3}\n",
    );
    "web".to_owned()
}

/// Lines of `text` that start with `label`.
fn lines_with<'a>(text: &'a str, label: &str) -> Vec<&'a str> {
    text.lines().filter(|l| l.starts_with(label)).collect()
}

#[test]
fn verbose_capture_names_the_files_it_read_and_the_command_it_ran() {
    let sb = Sandbox::new();
    sb.write("app.ini", "level = debug\n");
    sb.write("logs/app.log", "started\nfailed\n");
    let capture = |verbose: &[&str]| {
        let _ = fs::remove_file(sb.path("bug.zip"));
        sb.bugpack()
            .args(verbose)
            .args(["capture", "-o", "bug.zip", "--config", "app.ini"])
            .args(["--log", "logs/app.log", "--"])
            .args([
                "sh",
                "-c",
                "echo broken >&2; exit 2",
                "sh",
                "--password",
                "pw-in-argv-77",
            ])
            .run()
            .success()
    };
    let out = capture(&["-v"]);
    let app_ini = sb.path("app.ini");
    let app_log = sb.path("logs/app.log");
    for needle in [
        format!(
            "info: read {} (14 bytes) as config/app.ini",
            app_ini.display()
        ),
        format!(
            "info: read the last 15 of 15 bytes of {} as logs/logs/app.log",
            app_log.display()
        ),
        // The command as run, its secret argument redacted.
        "info: running `sh -c 'echo broken >&2; exit 2' sh --password [REDACTED:cli-flag"
            .to_owned(),
        "info: the command exited with code 2 after".to_owned(),
        "info: wrote bug.zip\n".to_owned(),
        "info: wrote bug.zip.md\n".to_owned(),
    ] {
        assert!(
            out.stderr.contains(&needle),
            "no {needle:?} in\n{}",
            out.stderr
        );
    }
    assert!(!out.stderr.contains("pw-in-argv-77"), "{}", out.stderr);
    // Every line is one event with its level's label; -v shows no debug.
    for line in out.stderr.lines() {
        assert!(line.starts_with("info: "), "{line:?}\n{}", out.stderr);
    }
    // Without -v, none of it.
    let out = capture(&[]);
    assert!(
        lines_with(&out.stderr, "info:").is_empty(),
        "{}",
        out.stderr
    );
}

#[test]
fn verbose_replay_names_each_run_and_each_request_through_the_proxy() {
    let sb = Sandbox::new();
    let s = proxied_scenario(&sb);
    let out = sb
        .bugpack()
        .args([
            "-v", "replay", &s, "--yes", "--runs", "1", "--proxy", "cache",
        ])
        .run()
        .success();
    let info = lines_with(&out.stderr, "info: ");
    let has = |needle: &str| info.iter().any(|l| l.contains(needle));
    for needle in [
        "info: reading web/scenario.yaml",
        "[none/cache/cold #0] started (seed ",
        // From inside the sandbox: the supervisor's steps and the proxy.
        "[none/cache/cold #0] started service app on port ",
        " (pid ",
        "[none/cache/cold #0] service app ready after ",
        "[none/cache/cold #0] started run (pid ",
        "): sh -c 'curl -s -o /dev/null $BUGPACK_SERVICE_APP_URL/hello; exit 3'",
        "[none/cache/cold #0] reproduced (exit code 3) after ",
    ] {
        assert!(has(needle), "no {needle:?} in\n{}", out.stderr);
    }
    let proxy: Vec<&&str> = info
        .iter()
        .filter(|l| l.contains("[none/cache/cold #0] proxy: GET http://127.0.0.1:"))
        .collect();
    assert_eq!(proxy.len(), 1, "{}", out.stderr);
    assert!(proxy[0].ends_with("/hello -> 404 MISS"), "{}", proxy[0]);
    // The run's lines come in the order they happened: started, then the
    // request, then the outcome.
    let at = |needle: &str| out.stderr.find(needle).unwrap();
    assert!(
        at("#0] started (seed") < at("proxy: GET") && at("proxy: GET") < at("reproduced (exit")
    );
    assert!(
        lines_with(&out.stderr, "debug:").is_empty(),
        "{}",
        out.stderr
    );
}

#[test]
fn very_verbose_adds_the_decisions_behind_each_step() {
    let sb = Sandbox::new();
    let s = proxied_scenario(&sb);
    let out = sb
        .bugpack()
        .args([
            "-vv", "replay", &s, "--yes", "--runs", "1", "--proxy", "rfc",
        ])
        .run()
        .success();
    let debug = lines_with(&out.stderr, "debug: ");
    let has = |needle: &str| debug.iter().any(|l| l.contains(needle));
    for needle in [
        "[none/rfc/cold #0] waiting for service app: GET / on port ",
        "[none/rfc/cold #0] rlimits for every step: address space ",
        // The cache's decision and its RFC 9111 reason.
        "[none/rfc/cold #0] rfc: MISS http://127.0.0.1:",
        "; not stored: no freshness lifetime (no max-age, Expires, or Last-Modified",
        "[none/rfc/cold #0] proxy counters: ",
    ] {
        assert!(has(needle), "no {needle:?} in\n{}", out.stderr);
    }
    // -vv keeps what -v shows.
    assert!(
        out.stderr.contains("info: [none/rfc/cold #0] proxy: GET"),
        "{}",
        out.stderr
    );
    assert!(
        lines_with(&out.stderr, "trace:").is_empty(),
        "{}",
        out.stderr
    );
}

#[test]
fn quiet_leaves_a_successful_capture_and_replay_silent() {
    let sb = Sandbox::new();
    sb.write("app.ini", "level = debug\n");
    let out = sb
        .bugpack()
        .args(["-q", "capture", "-o", "bug.zip", "--config", "app.ini"])
        .args(["--", "sh", "-c", "exit 2"])
        .run()
        .success();
    assert_eq!((out.stdout.as_str(), out.stderr.as_str()), ("", ""));
    assert!(sb.path("bug.zip").is_file() && sb.path("bug.zip.md").is_file());
    // The same capture without -q says what it wrote.
    sb.bugpack()
        .args(["capture", "-o", "loud.zip", "--", "sh", "-c", "exit 2"])
        .run()
        .success()
        .stdout_has("wrote loud.zip");

    // Replay: no table, no warning (not even about namespaces), no bar;
    // the exit code answers, and --json still writes what it was asked.
    let s = proxied_scenario(&sb);
    let out = sb
        .bugpack()
        .args([
            "-q", "replay", &s, "--yes", "--runs", "1", "--proxy", "pass",
        ])
        .run()
        .success();
    assert_eq!((out.stdout.as_str(), out.stderr.as_str()), ("", ""));
    let out = sb
        .bugpack()
        .args(["-q", "replay", &s, "--yes", "--runs", "1", "--json", "-"])
        .run()
        .success();
    assert!(out.stderr.is_empty(), "{}", out.stderr);
    let report: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(report["verdict"], "reproduced");
    let out = sb
        .bugpack()
        .args(["-q", "replay", "bug.zip", "--yes", "--runs", "1"])
        .run()
        .success();
    assert_eq!((out.stdout.as_str(), out.stderr.as_str()), ("", ""));
    // Errors still print.
    sb.bugpack()
        .args(["-q", "replay", "missing-dir", "--yes"])
        .run()
        .code(2)
        .one_line_error();
}

/// Every other command's report or summary goes under `-q` too, while what
/// is asked for by name (a dry run's listing) still prints.
#[test]
fn quiet_silences_every_report_but_not_what_was_asked_for() {
    let sb = Sandbox::new();
    for args in [
        &["capture", "-o", "a.zip", "--no-run", "--", "true"][..],
        &["capture", "-o", "b.zip", "--no-run", "--", "false"],
        &["init"],
        &["diff", "a.zip", "b.zip"],
        &["diff", "a.zip", "--here"],
        &["issue", "a.zip"],
    ] {
        let out = sb.bugpack().arg("-q").args(args).run();
        assert!(
            out.code == Some(0) || out.code == Some(1),
            "{args:?}: {out:?}"
        );
        assert!(out.stderr.is_empty(), "{args:?}: {}", out.stderr);
        if args[0] == "issue" {
            assert!(
                out.stdout.contains("a.zip"),
                "{args:?}: the issue text is the answer"
            );
        } else {
            assert_eq!(out.stdout, "", "{args:?}");
        }
    }
    assert!(sb.path(".bugpack.yaml").is_file());
    // Without -q the same diff speaks.
    sb.bugpack()
        .args(["diff", "a.zip", "b.zip"])
        .run()
        .stdout_has("a: a.zip");
    sb.bugpack()
        .args(["-q", "capture", "-o", "c.zip", "--dry-run", "--", "true"])
        .run()
        .success()
        .stdout_has("nothing was written");
}

const GREEN_INFO: &str = "\x1b[1;32minfo:\x1b[0m ";

#[test]
fn level_labels_are_coloured_only_on_a_terminal_without_no_color() {
    let sb = Sandbox::new();
    sb.write("steps.md", "1. run it\n");
    let args = [
        "-v", "capture", "-o", "bug.zip", "--steps", "steps.md", "--no-run", "--", "true",
    ];
    let fresh = || {
        let _ = fs::remove_file(sb.path("bug.zip"));
    };
    // On a terminal, auto colours the label, and only the label.
    fresh();
    let out = sb.bugpack_on_pty(&args, &[], &[]);
    assert_eq!(out.code, 0, "{}", out.output);
    assert!(
        out.output.contains(&format!("{GREEN_INFO}wrote bug.zip")),
        "{:?}",
        out.output
    );
    // NO_COLOR (any non-empty value) and --color never keep it plain.
    for (extra, env) in [
        (&[][..], &[("NO_COLOR", "1")][..]),
        (&[][..], &[("NO_COLOR", "yes please")][..]),
        (&["--color", "never"][..], &[][..]),
    ] {
        fresh();
        let argv: Vec<&str> = extra.iter().chain(args.iter()).copied().collect();
        let out = sb.bugpack_on_pty(&argv, env, &[]);
        assert_eq!(out.code, 0, "{}", out.output);
        assert!(
            out.output.contains("info: wrote bug.zip"),
            "{:?}",
            out.output
        );
        assert!(
            !out.output.contains('\x1b'),
            "{extra:?} {env:?}: {:?}",
            out.output
        );
    }
    // An empty NO_COLOR does not count.
    fresh();
    let out = sb.bugpack_on_pty(&args, &[("NO_COLOR", "")], &[]);
    assert!(out.output.contains(GREEN_INFO), "{:?}", out.output);
    // Piped, auto is plain; --color always colours even past NO_COLOR.
    fresh();
    let out = sb.bugpack().args(args).run().success();
    assert!(out.stderr.contains("info: wrote bug.zip") && !out.stderr.contains('\x1b'));
    fresh();
    let out = sb
        .bugpack()
        .args(["--color", "always"])
        .args(args)
        .env("NO_COLOR", "1")
        .run()
        .success();
    assert!(
        out.stderr.contains(&format!("{GREEN_INFO}wrote bug.zip")),
        "{:?}",
        out.stderr
    );
}

/// On a terminal the progress bar and `-v` lines share stderr: each log
/// line starts on a line of its own, never after a piece of the bar.
#[test]
fn log_lines_lift_the_progress_bar_instead_of_breaking_it() {
    let sb = Sandbox::new();
    sb.write(
        "slow/scenario.yaml",
        "name: slow\nrun: sleep 0.4; exit 3\nexpect: {exit: 3}\n",
    );
    let out = sb.bugpack_on_pty(
        &[
            "-v", "replay", "slow", "--yes", "--runs", "4", "--jobs", "1",
        ],
        &[("NO_COLOR", "1")],
        &[],
    );
    assert_eq!(out.code, 0, "{}", out.output);
    assert!(
        out.output.contains("runs,"),
        "the bar never showed: {:?}",
        out.output
    );
    let plain = strip_csi(&out.output);
    let mut infos = 0;
    for piece in plain.split(['\r', '\n']) {
        if let Some(at) = piece.find("info:") {
            assert_eq!(
                at, 0,
                "a log line after something else: {piece:?}\n{plain:?}"
            );
            infos += 1;
        }
    }
    assert!(infos >= 8, "{plain:?}");
}

/// `text` without ANSI CSI sequences (`ESC [ ... final byte`).
fn strip_csi(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' && chars.peek() == Some(&'[') {
            chars.next();
            for c in chars.by_ref() {
                if ('@'..='~').contains(&c) {
                    break;
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

#[test]
fn no_secret_reaches_a_log_line_even_at_trace() {
    let sb = Sandbox::new();
    let env_secret = "envTokenValue-3131";
    let argv_secret = "cliApiKeyValue-4242";
    let url_password = "probePassValue-5353";
    sb.write("app.ini", "level = debug\n");
    let out = sb
        .bugpack()
        .env("DEPLOY_TOKEN", env_secret)
        .args(["-vvv", "capture", "-o", "bug.zip", "--config", "app.ini"])
        .args([
            "--probe",
            &format!("http://probe:{url_password}@127.0.0.1:9/status"),
        ])
        .args(["--", "sh", "-c", "exit 1", "sh", env_secret])
        .args(["--api-key", argv_secret])
        .run()
        .success();
    assert!(out.stderr.contains("debug: "), "{}", out.stderr);
    assert!(
        out.stderr.contains("info: probing http://"),
        "{}",
        out.stderr
    );
    for secret in [env_secret, argv_secret, url_password] {
        assert!(!out.stderr.contains(secret), "{secret} in\n{}", out.stderr);
        assert!(!out.stdout.contains(secret), "{secret} in\n{}", out.stdout);
    }

    // Replay: a run that puts secrets in what the proxy sees: credentials
    // and a token in the request's URL, an Authorization header, a cookie,
    // and the value of a secret-named variable from the scenario's env.
    let scenario_secret = "scenarioSecretValue-6464";
    sb.write(
        "leaky/scenario.yaml",
        format!(
            "name: leaky\n\
             env: {{API_TOKEN: {scenario_secret}}}\n\
             services: [{{name: app, run: python3 -m http.server $PORT --bind 127.0.0.1, ready: {{http: /}}}}]\n\
             run: python3 client.py --password cmdPassValue-7575; exit 3\n\
             expect: {{exit: 3}}\n"
        ),
    );
    sb.write(
        "leaky/client.py",
        r#"import os, socket
proxy = os.environ["http_proxy"].rsplit(":", 1)
port = os.environ["BUGPACK_SERVICE_APP_PORT"]
token = os.environ["API_TOKEN"]
for target, headers in [
    (f"http://alice:urlPassValue-8686@127.0.0.1:{port}/a?access_token=queryTokenValue-9797&page=2",
     "Authorization: Bearer headerTokenValue-1212\r\nCookie: session=cookieValue-2323\r\n"),
    (f"http://127.0.0.1:{port}/b/{token}", ""),
]:
    s = socket.create_connection((proxy[0].split("//")[1], int(proxy[1])))
    s.sendall(f"GET {target} HTTP/1.1\r\nHost: x\r\n{headers}Connection: close\r\n\r\n".encode())
    while s.recv(65536):
        pass
    s.close()
"#,
    );
    let out = sb
        .bugpack()
        .env("DEPLOY_TOKEN", env_secret)
        .args([
            "-vvv", "replay", "leaky", "--yes", "--runs", "1", "--proxy", "pass",
        ])
        .run()
        .success();
    // The requests were logged, without what they carried.
    assert!(
        out.stderr
            .contains("proxy: GET http://[REDACTED:url-credentials]@127.0.0.1:"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("/a?access_token=[REDACTED:query]&page=2 -> 404"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("debug: "), "{}", out.stderr);
    for secret in [
        scenario_secret,
        "cmdPassValue-7575",
        "urlPassValue-8686",
        "queryTokenValue-9797",
        "headerTokenValue-1212",
        "cookieValue-2323",
        env_secret,
    ] {
        assert!(!out.stderr.contains(secret), "{secret} in\n{}", out.stderr);
        assert!(!out.stdout.contains(secret), "{secret} in\n{}", out.stdout);
    }
}
