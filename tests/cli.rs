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
    sb.bugpack().args(["inspect", "--bogus"]).run().code(2);
    sb.bugpack().arg("frobnicate").run().code(2);
    sb.bugpack()
        .args(["inspect", "x.zip", "--max-size", "lots"])
        .run()
        .code(2)
        .one_line_error();
    sb.bugpack()
        .args(["--color", "sometimes", "inspect", "x.zip"])
        .run()
        .code(2);
}

#[test]
fn inspect_output_to_a_closed_pipe_is_not_an_error() {
    let sb = Sandbox::new();
    sb.write("ok.zip", BundleSpec::valid().zip().bytes());
    let bin = env!("CARGO_BIN_EXE_bugpack");
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "'{bin}' inspect ok.zip | head -c 1 >/dev/null; echo \"${{PIPESTATUS[0]}}\""
        ))
        .current_dir(sb.dir())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("error"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
