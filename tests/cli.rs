//! The command-line surface: help, version, exit codes for usage errors and
//! for what is not built yet, and quiet behaviour on a closed pipe.

use crate::support::Sandbox;
use crate::support::zipper::BundleSpec;

#[test]
fn help_lists_every_command() {
    let out = Sandbox::new().bugpack().arg("--help").run().success();
    for cmd in [
        "capture", "inspect", "verify", "replay", "diff", "keygen", "sign", "issue", "init",
    ] {
        assert!(
            out.stdout.contains(cmd),
            "--help lacks {cmd}\n{}",
            out.stdout
        );
    }
    for flag in ["--verbose", "--quiet", "--color"] {
        assert!(out.stdout.contains(flag), "--help lacks {flag}");
    }
}

#[test]
fn every_command_documents_its_flags() {
    let sb = Sandbox::new();
    let cases: &[(&str, &[&str])] = &[
        (
            "capture",
            &[
                "--output",
                "--title",
                "--steps",
                "--scenario",
                "--config",
                "--log",
                "--include",
                "--env-deny",
                "--redact",
                "--probe",
                "--profile",
                "--sign",
                "--timeout",
                "--expect-hang",
                "--expect-exit",
                "--expect-output",
                "--no-run",
                "--dry-run",
            ],
        ),
        ("inspect", &["--json"]),
        ("verify", &["--key", "--allowed-signers", "--identity"]),
        (
            "replay",
            &[
                "--runs",
                "--jobs",
                "--timeout",
                "--timing",
                "--proxy",
                "--cache",
                "--until-repro",
                "--expect-fixed",
                "--seed",
                "--keep",
                "--net",
                "--yes",
                "--json",
                "--markdown",
            ],
        ),
        ("diff", &["--here"]),
        ("keygen", &["--output"]),
        ("sign", &["--key"]),
        ("init", &["--github"]),
    ];
    for (cmd, flags) in cases {
        let out = sb.bugpack().args([cmd, &"--help"]).run().success();
        for flag in *flags {
            assert!(
                out.stdout.contains(flag),
                "{cmd} --help lacks {flag}\n{}",
                out.stdout
            );
        }
    }
}

/// Paths in help text read as a user types them (rustdoc-style backticks
/// once slipped into them: ``~/.`ssh/id_ed25519` ``).
#[test]
fn help_shows_paths_as_typed() {
    let sb = Sandbox::new();
    sb.bugpack()
        .args(["sign", "--help"])
        .run()
        .success()
        .stdout_has("else ~/.ssh/id_ed25519]");
    sb.bugpack()
        .args(["init", "--help"])
        .run()
        .success()
        .stdout_has("(.github/ISSUE_TEMPLATE/bug_report.yml)");
    for cmd in [
        "capture", "inspect", "verify", "replay", "diff", "keygen", "sign", "issue", "init",
    ] {
        let out = sb.bugpack().args([cmd, "--help"]).run().success();
        assert!(!out.stdout.contains(".`"), "{cmd} --help:\n{}", out.stdout);
    }
}

#[test]
fn version() {
    Sandbox::new()
        .bugpack()
        .arg("--version")
        .run()
        .success()
        .stdout_has(concat!("bugpack ", env!("CARGO_PKG_VERSION")));
}

#[test]
fn bad_flags_are_usage_errors() {
    let sb = Sandbox::new();
    sb.bugpack()
        .args(["inspect", "--bogus"])
        .run()
        .code(2)
        .one_line_error();
    sb.bugpack()
        .arg("frobnicate")
        .run()
        .code(2)
        .one_line_error();
    sb.bugpack()
        .args(["inspect", "x.zip", "--max-size", "lots"])
        .run()
        .code(2)
        .one_line_error();
    sb.bugpack()
        .args(["--color", "sometimes", "inspect", "x.zip"])
        .run()
        .code(2)
        .one_line_error();
}

/// clap spreads a usage error over four or five lines (message, tips,
/// usage, "for more information"); DESIGN.md wants one line saying what is
/// wrong and what to do.
#[test]
fn usage_errors_are_one_line_with_what_to_do() {
    let sb = Sandbox::new();
    let cases: &[(&[&str], &[&str])] = &[
        (
            &["capture", "--frob"],
            &[
                "error: unexpected argument '--frob' found",
                "try 'bugpack capture --help'",
            ],
        ),
        (
            &["inspct", "x.zip"],
            &[
                "unrecognized subcommand 'inspct'",
                "'inspect'",
                "try 'bugpack --help'",
            ],
        ),
        (
            &["inspect"],
            &["not provided: <BUNDLE>", "try 'bugpack inspect --help'"],
        ),
        (
            &["replay", "x.zip", "--net", "bogus"],
            &[
                "invalid value 'bogus' for '--net <MODE>'",
                "[possible values: none, loopback, host]",
                "try 'bugpack replay --help'",
            ],
        ),
        (
            &["verify", "x.zip", "--key", "k", "--allowed-signers", "f"],
            &["cannot be used with", "try 'bugpack verify --help'"],
        ),
        (
            &["-q", "-v", "inspect", "x.zip"],
            &["'--quiet' cannot be used with '--verbose"],
        ),
    ];
    for (args, needles) in cases {
        let mut out = sb.bugpack().args(*args).run().code(2).one_line_error();
        for needle in *needles {
            out = out.stderr_has(needle);
        }
        assert!(out.stdout.is_empty(), "{args:?}: {}", out.stdout);
        assert!(!out.stderr.contains("Usage:"), "{}", out.stderr);
    }
}

#[test]
fn help_and_version_are_left_as_clap_writes_them() {
    let sb = Sandbox::new();
    let out = sb
        .bugpack()
        .args(["inspect", "--help"])
        .run()
        .success()
        .stdout_has("Usage: bugpack inspect [OPTIONS] <BUNDLE>")
        .stdout_has("Options:");
    assert!(out.stdout.lines().count() > 5, "{}", out.stdout);
    assert!(out.stderr.is_empty(), "{}", out.stderr);
    let out = sb.bugpack().args(["sign", "-V"]).run().success();
    assert_eq!(
        out.stdout,
        concat!("bugpack-sign ", env!("CARGO_PKG_VERSION"), "\n")
    );
    // No subcommand: the help, on stderr, as a usage error.
    sb.bugpack()
        .run()
        .code(2)
        .stderr_has("Usage: bugpack [OPTIONS] <COMMAND>");
}

/// With `-v` the error's causes come one a line, each said once (the
/// joined one-line form would repeat them).
#[test]
fn verbose_errors_list_each_cause_once() {
    let sb = Sandbox::new();
    sb.write("bad.zip", b"not a zip at all, just text\n");
    let out = sb
        .bugpack()
        .args(["-v", "inspect", "bad.zip"])
        .run()
        .code(3);
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(
        lines,
        [
            "info: reading the bundle bad.zip",
            "error: bad.zip rejected",
            "  caused by: not a zip file: no zip end record (truncated, or another kind of file)"
        ],
        "{}",
        out.stderr
    );
    sb.bugpack()
        .args(["inspect", "bad.zip"])
        .run()
        .code(3)
        .one_line_error()
        .stderr_has("bad.zip rejected: not a zip file");
}

/// `-q`: reports are left out, errors still print, what `--json` asks for
/// is still written, and `verify -q` answers by its exit code alone.
#[test]
fn quiet_prints_only_errors_and_requested_json() {
    let sb = Sandbox::new();
    sb.write("ok.zip", BundleSpec::valid().zip().bytes());
    let mut bad = BundleSpec::valid().zip();
    bad.entries[2].data[0] ^= 1;
    sb.write("bad.zip", bad.bytes());

    for (args, says) in [
        (&["inspect", "ok.zip"][..], "demo bug"),
        (&["verify", "ok.zip"], "intact, unsigned"),
    ] {
        sb.bugpack().args(args).run().success().stdout_has(says);
        let out = sb.bugpack().arg("-q").args(args).run().success();
        assert_eq!(
            (out.stdout.as_str(), out.stderr.as_str()),
            ("", ""),
            "{args:?}"
        );
    }
    sb.bugpack()
        .args(["-q", "verify", "bad.zip"])
        .run()
        .code(3)
        .one_line_error()
        .stderr_has("does not match its SHA-256");
    let out = sb
        .bugpack()
        .args(["-q", "inspect", "ok.zip", "--json"])
        .run()
        .success();
    let manifest: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(manifest["title"], "demo bug");
    let out = sb
        .bugpack()
        .args(["--quiet", "verify", "ok.zip", "--json"])
        .run()
        .success();
    let verdict: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(verdict["signature"]["state"], "unsigned");

    let out = sb
        .bugpack()
        .args(["-q", "keygen", "-o", "k"])
        .run()
        .success();
    assert_eq!((out.stdout.as_str(), out.stderr.as_str()), ("", ""));
    assert!(sb.path("k").is_file() && sb.path("k.pub").is_file());
    let out = sb
        .bugpack()
        .args(["-q", "sign", "ok.zip", "--key", "k"])
        .run()
        .success();
    assert_eq!((out.stdout.as_str(), out.stderr.as_str()), ("", ""));
    sb.bugpack()
        .args(["verify", "ok.zip", "--key", "k.pub"])
        .run()
        .success()
        .stdout_has("trusted");
}

const RED_ERROR: &str = "\x1b[1;31merror:\x1b[0m ";

#[test]
fn color_flag_decides_the_error_prefix() {
    let sb = Sandbox::new();
    for args in [
        &["inspect", "missing.zip"][..],
        &["frobnicate"],
        &["inspect", "--bogus"],
    ] {
        // Not a terminal: plain under auto, coloured only when asked.
        let out = sb.bugpack().args(args).run();
        assert!(
            out.stderr.starts_with("error: "),
            "{args:?}: {:?}",
            out.stderr
        );
        let out = sb.bugpack().arg("--color=always").args(args).run();
        assert!(
            out.stderr.starts_with(RED_ERROR),
            "{args:?}: {:?}",
            out.stderr
        );
        let out = sb.bugpack().args(["--color", "always"]).args(args).run();
        assert!(
            out.stderr.starts_with(RED_ERROR),
            "{args:?}: {:?}",
            out.stderr
        );
        // An explicit --color always beats NO_COLOR (no-color.org).
        let out = sb
            .bugpack()
            .args(["--color", "always"])
            .args(args)
            .env("NO_COLOR", "1")
            .run();
        assert!(
            out.stderr.starts_with(RED_ERROR),
            "{args:?}: {:?}",
            out.stderr
        );
        let out = sb.bugpack().args(["--color", "never"]).args(args).run();
        assert!(!out.stderr.contains('\x1b'), "{args:?}: {:?}", out.stderr);
    }
}

#[test]
fn on_a_terminal_auto_colours_unless_no_color() {
    let sb = Sandbox::new();
    let out = sb.bugpack_on_pty(&["inspect", "missing.zip"], &[], &[]);
    assert_eq!(out.code, 2);
    assert!(out.output.starts_with(RED_ERROR), "{:?}", out.output);
    let out = sb.bugpack_on_pty(&["inspect", "missing.zip"], &[("NO_COLOR", "1")], &[]);
    assert_eq!(out.code, 2);
    assert!(out.output.starts_with("error: "), "{:?}", out.output);
    assert!(!out.output.contains('\x1b'), "{:?}", out.output);
    let out = sb.bugpack_on_pty(&["--color", "never", "inspect", "missing.zip"], &[], &[]);
    assert!(!out.output.contains('\x1b'), "{:?}", out.output);
    // Usage errors follow the same rule before the flags have parsed.
    let out = sb.bugpack_on_pty(&["frobnicate"], &[], &[]);
    assert!(out.output.starts_with(RED_ERROR), "{:?}", out.output);
    let out = sb.bugpack_on_pty(&["frobnicate"], &[("NO_COLOR", "1")], &[]);
    assert!(!out.output.contains('\x1b'), "{:?}", out.output);
}

/// A bundle big enough that its summary and its JSON overflow a pipe.
fn many_entries() -> Vec<u8> {
    let mut spec = BundleSpec::valid();
    for i in 0..4000 {
        spec = spec.with_file(
            &format!("logs/service-{i:05}/a-fairly-long-log-name.log"),
            format!("{i}\n"),
        );
    }
    spec.zip().bytes()
}

/// `bugpack inspect x | head` must not error: the reader closing the pipe
/// early is not bugpack's failure (exit 0, nothing on stderr).
#[test]
fn output_to_a_closed_pipe_is_not_an_error() {
    let sb = Sandbox::new();
    sb.write("many.zip", many_entries());
    let bin = env!("CARGO_BIN_EXE_bugpack");
    for args in ["inspect many.zip", "inspect --json many.zip"] {
        // bash, for PIPESTATUS: bugpack's own exit code, not head's.
        let out = std::process::Command::new("bash")
            .arg("-c")
            .arg(format!(
                "'{bin}' {args} 2>stderr.txt | head -c 10 >/dev/null; echo \"${{PIPESTATUS[0]}}\""
            ))
            .current_dir(sb.dir())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = std::fs::read_to_string(sb.path("stderr.txt")).unwrap();
        assert_eq!(stdout.trim(), "0", "{args}: exit {stdout}, stderr {stderr}");
        assert_eq!(stderr, "", "{args}");
        assert!(out.status.success());
    }
    // The output is over twice what a pipe holds (64 KiB), so the pipe
    // did close under bugpack while it was still writing.
    for args in [
        &["inspect", "many.zip"][..],
        &["inspect", "--json", "many.zip"],
    ] {
        let full = sb.bugpack().args(args).run().success();
        assert!(full.stdout.len() > 128 << 10, "{}", full.stdout.len());
    }
}

/// An output in a directory that does not exist is the user's mistake
/// (exit 2), said in their terms: no temporary file name in the message.
#[test]
fn a_missing_output_directory_is_a_usage_error() {
    let sb = Sandbox::new();
    let before = sb.listing();
    sb.bugpack()
        .args([
            "capture",
            "-o",
            "no/such/dir/bug.zip",
            "--no-run",
            "--",
            "true",
        ])
        .run()
        .code(2)
        .one_line_error()
        .stderr_has("no/such/dir/bug.zip")
        .stderr_has("does not exist")
        .stderr_lacks("partial");
    assert_eq!(sb.listing(), before);
}
