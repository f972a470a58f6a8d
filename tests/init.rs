//! `bugpack init` through the binary: the profile (schema line, validity,
//! loaded by capture), the GitHub issue form (checked against GitHub's
//! published schema), overwriting rules on and off a terminal, and the
//! starter scenarios, each replayed as it comes.

use std::fs;
use std::path::Path;
use std::process::Command;

use crate::support::Sandbox;
use crate::support::reports::JReport;

const FORM: &str = ".github/ISSUE_TEMPLATE/bug_report.yml";

/// Runs `check-jsonschema` with `args`; a missing tool fails the test with
/// a message saying how to install it (CI installs it in `.ci/run`).
pub fn check_jsonschema(args: &[&str], dir: &Path) -> std::process::Output {
    match Command::new("check-jsonschema")
        .args(args)
        .current_dir(dir)
        .output()
    {
        Ok(out) => out,
        Err(e) => panic!(
            "cannot run check-jsonschema ({e}); install it with `pip install check-jsonschema` \
             (.ci/run does) — this test does not skip without it"
        ),
    }
}

/// The `$id` of the profile schema in this repository.
fn schema_id() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/profile.schema.json");
    let schema: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(path).unwrap()).unwrap();
    schema["$id"].as_str().unwrap().to_owned()
}

/// Runs bugpack on a terminal (a pty made by Python's `pty` module), typing
/// `answers`; returns the exit code and everything the terminal showed.
fn on_terminal(sb: &Sandbox, args: &[&str], answers: &str) -> (i32, String) {
    const DRIVER: &str = r#"
import os, pty, sys
binary, answers, args = sys.argv[1], sys.argv[2].encode(), sys.argv[3:]
pid, fd = pty.fork()
if pid == 0:
    os.execv(binary, [binary] + args)
os.write(fd, answers)
seen = b""
while True:
    try:
        chunk = os.read(fd, 4096)
    except OSError:
        break
    if not chunk:
        break
    seen += chunk
_, status = os.waitpid(pid, 0)
sys.stdout.write(seen.decode(errors="replace"))
sys.exit(os.waitstatus_to_exitcode(status))
"#;
    let out = Command::new("python3")
        .args(["-c", DRIVER, env!("CARGO_BIN_EXE_bugpack"), answers])
        .args(args)
        .current_dir(sb.dir())
        .env("TMPDIR", sb.tmp())
        .env("HOME", sb.home())
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn the_profile_names_its_schema_validates_and_capture_loads_it() {
    let sb = Sandbox::new();
    // A Python project: init records python's version.
    sb.write("pyproject.toml", "[project]\nname = \"demo\"\n");
    sb.bugpack()
        .arg("init")
        .run()
        .success()
        .stdout_has("wrote .bugpack.yaml")
        .stdout_has("bugpack capture --dry-run");
    let text = fs::read_to_string(sb.path(".bugpack.yaml")).unwrap();
    assert_eq!(
        text.lines().next().unwrap(),
        format!("# yaml-language-server: $schema={}", schema_id())
    );
    assert!(
        text.lines().filter(|l| l.starts_with('#')).count() > 20,
        "commented\n{text}"
    );
    let value: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    assert_eq!(
        value["versions"]["python"].as_str(),
        Some("python3 --version")
    );
    assert!(!sb.path(FORM).exists(), "no issue form without --github");

    // An independent validator agrees with bugpack's schema.
    let schema = Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/profile.schema.json");
    let check = check_jsonschema(
        &["--schemafile", schema.to_str().unwrap(), ".bugpack.yaml"],
        &sb.dir(),
    );
    assert!(
        check.status.success(),
        "{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );

    // capture --profile loads it: the version command it names runs.
    sb.bugpack()
        .args([
            "capture",
            "--profile",
            ".bugpack.yaml",
            "-o",
            "bug.zip",
            "--no-run",
            "--",
            "true",
        ])
        .run()
        .success();
    let system = crate::capture::entry(&sb.path("bug.zip"), "env/system.yaml");
    assert!(system.contains("python: Python 3."), "{system}");
}

#[test]
fn github_writes_an_issue_form_that_github_s_schema_accepts() {
    let sb = Sandbox::new();
    sb.bugpack()
        .args(["init", "--github"])
        .run()
        .success()
        .stdout_has("wrote .bugpack.yaml")
        .stdout_has(&format!("wrote {FORM}"));
    let text = fs::read_to_string(sb.path(FORM)).unwrap();
    let form: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    let body = form["body"].as_sequence().unwrap();
    let field = |id: &str| {
        body.iter()
            .find(|f| f["id"].as_str() == Some(id))
            .unwrap_or_else(|| panic!("no field {id}\n{text}"))
    };
    let intro = body[0]["attributes"]["value"].as_str().unwrap();
    assert!(intro.contains("bugpack capture -o bug.zip"), "{intro}");
    assert_eq!(field("command")["type"].as_str(), Some("input"));
    assert!(
        field("command")["attributes"]["label"]
            .as_str()
            .unwrap()
            .contains("bugpack capture")
    );
    assert_eq!(
        field("steps")["validations"]["required"].as_bool(),
        Some(true)
    );
    let bundle = field("bundle")["attributes"]["description"]
        .as_str()
        .unwrap();
    assert!(
        bundle.contains("attach") && bundle.contains("bug.zip"),
        "{bundle}"
    );

    let check = check_jsonschema(
        &["--builtin-schema", "vendor.github-issue-forms", FORM],
        &sb.dir(),
    );
    assert!(
        check.status.success(),
        "GitHub's issue-forms schema rejects the form:\n{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
    // And the check is real: a form without its body fails it.
    sb.write("broken.yml", "name: x\ndescription: y\n");
    let broken = check_jsonschema(
        &[
            "--builtin-schema",
            "vendor.github-issue-forms",
            "broken.yml",
        ],
        &sb.dir(),
    );
    assert!(!broken.status.success());
}

#[test]
fn without_a_terminal_existing_files_need_force() {
    let sb = Sandbox::new();
    sb.write(".bugpack.yaml", "title: mine\n");
    let before = sb.listing();
    sb.bugpack()
        .args(["init", "--github"])
        .run()
        .code(2)
        .one_line_error()
        .stderr_has(".bugpack.yaml already exists")
        .stderr_has("--force");
    assert_eq!(
        sb.listing(),
        before,
        "nothing written, not even the new form"
    );
    assert_eq!(
        fs::read_to_string(sb.path(".bugpack.yaml")).unwrap(),
        "title: mine\n"
    );
    sb.bugpack()
        .args(["init", "--github", "--force"])
        .run()
        .success();
    assert!(
        fs::read_to_string(sb.path(".bugpack.yaml"))
            .unwrap()
            .starts_with("# yaml-language-server: $schema=")
    );
    assert!(sb.path(FORM).is_file());
}

#[test]
fn on_a_terminal_it_asks_before_overwriting() {
    let sb = Sandbox::new();
    sb.write(".bugpack.yaml", "title: mine\n");
    let (code, screen) = on_terminal(&sb, &["init", "--github"], "n\n");
    assert_eq!(code, 0, "{screen}");
    assert!(
        screen.contains(".bugpack.yaml exists. Overwrite it? [y/N]"),
        "{screen}"
    );
    assert!(screen.contains("kept  .bugpack.yaml"), "{screen}");
    assert_eq!(
        fs::read_to_string(sb.path(".bugpack.yaml")).unwrap(),
        "title: mine\n",
        "declined, so kept"
    );
    assert!(
        sb.path(FORM).is_file(),
        "the new form is written all the same"
    );

    let (code, screen) = on_terminal(&sb, &["init", "--github"], "y\nn\n");
    assert_eq!(code, 0, "{screen}");
    assert!(
        screen.contains(&format!("{FORM} exists. Overwrite it?")),
        "{screen}"
    );
    assert!(
        fs::read_to_string(sb.path(".bugpack.yaml"))
            .unwrap()
            .starts_with("# yaml-language-server:"),
        "{screen}"
    );
}

#[test]
fn unknown_starter_kinds_and_clashes_are_usage_errors() {
    let sb = Sandbox::new();
    sb.bugpack()
        .args(["init", "--scenario", "nope", "repro"])
        .run()
        .code(2)
        .one_line_error()
        .stderr_has("http-poll, deadlock, subprocess, race, timeout");
    assert!(!sb.path("repro").exists());
    sb.bugpack()
        .args(["init", "--scenario", "race"])
        .run()
        .code(2);
    sb.bugpack()
        .args(["init", "--scenario", "race", "r", "--github"])
        .run()
        .code(2);
    sb.write("repro/scenario.yaml", "name: mine\nrun: 'true'\n");
    sb.bugpack()
        .args(["init", "--scenario", "race", "repro"])
        .run()
        .code(2)
        .one_line_error()
        .stderr_has("--force");
    assert_eq!(
        fs::read_to_string(sb.path("repro/scenario.yaml")).unwrap(),
        "name: mine\nrun: 'true'\n"
    );
    assert!(!sb.path("repro/counter.py").exists(), "nothing written");
    sb.write("file", "x");
    sb.bugpack()
        .args(["init", "--scenario", "race", "file"])
        .run()
        .code(2)
        .one_line_error()
        .stderr_has("not a directory");
}

/// Copies starter `kind` out and replays it as is; checks the outcome is
/// the one its README promises ("Run as is: reproduces" or "passes").
fn starter_runs_as_its_readme_says(kind: &str) -> crate::support::Sandbox {
    let sb = Sandbox::new();
    sb.bugpack()
        .args(["init", "--scenario", kind, "repro"])
        .run()
        .success()
        .stdout_has("wrote repro/scenario.yaml")
        .stdout_has("bugpack replay repro");
    let readme = fs::read_to_string(sb.path("repro/README.md")).unwrap();
    let promise = readme
        .lines()
        .find_map(|l| l.strip_prefix("Run as is: "))
        .unwrap_or_else(|| panic!("{kind}/README.md says nothing about a run as is"));
    let (verdict, code) = if promise.starts_with("reproduces") {
        ("reproduced", 0)
    } else if promise.starts_with("passes") {
        ("not-reproduced", 1)
    } else {
        panic!("{kind}/README.md: {promise:?}")
    };
    let out = sb
        .bugpack()
        .args(["replay", "repro", "--yes", "--runs", "1", "--json", "-"])
        .run()
        .code(code);
    let report: JReport = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}\n{}\n{}", out.stdout, out.stderr));
    assert_eq!(report.verdict, verdict, "{kind}: {}", out.stdout);
    assert_eq!(report.scenario, kind);
    let errors: u32 = report.cells.iter().map(|c| c.errors).sum();
    assert_eq!(errors, 0, "{kind}: {}", out.stdout);
    sb
}

#[test]
fn starter_deadlock_runs_as_is() {
    starter_runs_as_its_readme_says("deadlock");
}

#[test]
fn starter_subprocess_runs_as_is() {
    starter_runs_as_its_readme_says("subprocess");
}

#[test]
fn starter_race_runs_as_is() {
    starter_runs_as_its_readme_says("race");
}

#[test]
fn starter_timeout_runs_as_is() {
    starter_runs_as_its_readme_says("timeout");
}

#[test]
fn starter_http_poll_runs_as_is_and_reproduces_behind_a_caching_proxy() {
    let sb = starter_runs_as_its_readme_says("http-poll");
    let out = sb
        .bugpack()
        .args([
            "replay", "repro", "--yes", "--runs", "1", "--proxy", "cache", "--json", "-",
        ])
        .run()
        .code(0);
    let report: JReport = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(report.verdict, "reproduced", "{}", out.stdout);
    assert_eq!(report.cells[0].results[0].reason, "hang");
}
