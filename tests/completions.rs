//! `bugpack completions` and `bugpack man` through the binary: the scripts
//! are produced for every shell, bash accepts its script and completes
//! with it, and the manual page is roff that `groff` renders without a warning.

use std::process::Command;

use crate::support::Sandbox;

const COMMANDS: [&str; 11] = [
    "capture",
    "inspect",
    "verify",
    "replay",
    "diff",
    "keygen",
    "sign",
    "issue",
    "init",
    "completions",
    "man",
];

/// Sources the bash script and asks it to complete `words` (the last one
/// being completed); returns the candidates, one per line.
fn bash_complete(script: &std::path::Path, words: &[&str]) -> String {
    let line = words.join(" ");
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let program = format!(
        "source '{}'\nCOMP_WORDS=({})\nCOMP_CWORD={}\nCOMP_LINE='{line}'\nCOMP_POINT=${{#COMP_LINE}}\n\
         _bugpack bugpack '{}' '{}'\nprintf '%s\\n' \"${{COMPREPLY[@]}}\"\n",
        script.display(),
        quoted.join(" "),
        words.len() - 1,
        words[words.len() - 1],
        words[words.len() - 2],
    );
    let out = Command::new("bash")
        .args(["--norc", "-c", &program])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn bash_accepts_the_script_and_completes_commands_and_flags() {
    let sb = Sandbox::new();
    let out = sb.bugpack().args(["completions", "bash"]).run().success();
    let script = sb.write("bugpack.bash", &out.stdout);
    let check = Command::new("bash")
        .arg("-n")
        .arg(&script)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "bash -n: {}",
        String::from_utf8_lossy(&check.stderr)
    );
    assert_eq!(bash_complete(&script, &["bugpack", "di"]), "diff\n");
    assert_eq!(
        bash_complete(&script, &["bugpack", "i"]),
        "inspect\nissue\ninit\n"
    );
    assert_eq!(
        bash_complete(&script, &["bugpack", "replay", "x.zip", "--pro"]),
        "--proxy\n"
    );
    let all = bash_complete(&script, &["bugpack", ""]);
    for cmd in COMMANDS {
        assert!(all.lines().any(|l| l == cmd), "{cmd} not offered:\n{all}");
    }
    assert!(!all.contains("__"), "internal commands offered:\n{all}");
}

#[test]
fn every_shell_gets_a_script_naming_every_command() {
    let sb = Sandbox::new();
    for (shell, marker) in [
        ("bash", "complete -F _bugpack"),
        ("zsh", "#compdef bugpack"),
        ("fish", "complete -c bugpack"),
        ("powershell", "Register-ArgumentCompleter"),
    ] {
        let out = sb.bugpack().args(["completions", shell]).run().success();
        assert!(out.stdout.contains(marker), "{shell} lacks {marker:?}");
        for cmd in COMMANDS {
            assert!(out.stdout.contains(cmd), "{shell} script lacks {cmd}");
        }
        assert!(
            !out.stdout.contains("__sandbox"),
            "{shell} offers __sandbox"
        );
    }
    sb.bugpack()
        .args(["completions", "tcsh"])
        .run()
        .code(2)
        .stderr_has("bash");
}

#[test]
fn the_manual_page_renders_and_one_page_per_command_goes_to_dir() {
    let sb = Sandbox::new();
    let out = sb.bugpack().arg("man").run().success();
    assert!(out.stdout.contains(".TH bugpack 1"), "{}", out.stdout);
    let page = sb.write("bugpack.1", &out.stdout);
    let rendered = Command::new("groff")
        .args(["-man", "-ww", "-Tutf8", "-P-cbou"])
        .arg(&page)
        .output()
        .unwrap_or_else(|e| panic!("cannot run groff ({e}); install groff-base (.ci/run does)"));
    let text = String::from_utf8_lossy(&rendered.stdout);
    let warnings = String::from_utf8_lossy(&rendered.stderr);
    assert!(
        rendered.status.success() && warnings.is_empty(),
        "{warnings}"
    );
    for section in ["NAME", "SYNOPSIS", "OPTIONS", "SUBCOMMANDS"] {
        assert!(text.contains(section), "no {section}:\n{text}");
    }
    for cmd in COMMANDS {
        assert!(
            text.contains(&format!("bugpack-{cmd}(1)")),
            "no {cmd}:\n{text}"
        );
    }
    assert!(!text.contains("__sandbox"));

    std::fs::create_dir(sb.path("man1")).unwrap();
    sb.bugpack()
        .args(["man", "--dir", "man1"])
        .run()
        .success()
        .stdout_has("man1");
    let mut pages: Vec<String> = std::fs::read_dir(sb.path("man1"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    pages.sort();
    for cmd in COMMANDS {
        assert!(pages.contains(&format!("bugpack-{cmd}.1")), "{pages:?}");
    }
    assert!(pages.contains(&"bugpack.1".to_owned()));
    assert!(pages.iter().all(|p| !p.contains("__")), "{pages:?}");
    let replay = std::fs::read_to_string(sb.path("man1/bugpack-replay.1")).unwrap();
    assert!(replay.contains("\\-\\-expect\\-fixed"), "{replay}");
    sb.bugpack()
        .args(["man", "--dir", "missing"])
        .run()
        .code(2)
        .one_line_error();
}

#[test]
fn output_to_a_closed_pipe_is_not_an_error() {
    let sb = Sandbox::new();
    sb.write(
        "ok.zip",
        crate::support::zipper::BundleSpec::valid().zip().bytes(),
    );
    for args in [
        &["completions", "bash"][..],
        &["completions", "powershell"],
        &["man"],
        &["issue", "ok.zip"],
        &["diff", "ok.zip", "ok.zip", "--json"],
        &["diff", "ok.zip", "ok.zip"],
    ] {
        // The reading end is closed before bugpack writes a byte.
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = Command::new(env!("CARGO_BIN_EXE_bugpack"))
            .args(args)
            .current_dir(sb.dir())
            .stdout(writer)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.is_empty(),
            "bugpack {args:?} to a closed pipe: {stderr}"
        );
        assert_eq!(out.status.code(), Some(0), "bugpack {args:?}");
    }
}
