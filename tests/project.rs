//! A bug in a real project: a git repository whose user changed a module,
//! added an untracked one, set a variable the bug needs and runs it with a
//! venv's Python holding a package whose version the program checks.
//! Capture packs what a maintainer's checkout lacks; replay runs the command
//! in a fresh clone (`--repo`), which it never changes, and a replay that
//! cannot run the project says so as an error, never as a pass.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::capture::{entries, entry};
use crate::support::reports::JReport;
use crate::support::zipper::BundleSpec;
use crate::support::{KillOnDrop, Sandbox, marker, processes_holding};

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.com")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.com")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// The program: it fails (exit 3, "deadlock") only with the user's changed
/// `worker.py`, their untracked `newmod.py`, `APP_BATCH=3` and slowlib 1.2.0.
/// With `APP_SLEEP` set it sleeps that many seconds first.
const MAIN: &str = "import importlib.metadata, os, sys, time\n\
import worker, newmod\n\
if os.environ.get('APP_SLEEP'):\n    time.sleep(int(os.environ['APP_SLEEP']))\n\
version = importlib.metadata.version('slowlib')\n\
batch = int(os.environ.get('APP_BATCH', '1'))\n\
if worker.stuck(batch) and newmod.ENABLED and version == '1.2.0':\n    \
print(f'deadlock: batch {batch} with slowlib {version}', file=sys.stderr)\n    \
sys.exit(3)\n\
print('done')\n";

/// A project as the user has it, pushed to `origin.git`, and the venv
/// (outside the repository) whose Python runs it.
struct Project {
    sb: Sandbox,
    /// The user's clone, with their changes.
    user: PathBuf,
    venv: PathBuf,
    head: String,
}

impl Project {
    fn new() -> Self {
        let sb = Sandbox::new();
        // Replay's runs are `nobody`: let them reach the venv and the clone.
        let root = sb.dir().parent().unwrap().to_owned();
        fs::set_permissions(&root, fs::Permissions::from_mode(0o755)).unwrap();
        fs::set_permissions(sb.dir(), fs::Permissions::from_mode(0o755)).unwrap();
        let upstream = sb.path("upstream");
        fs::create_dir(&upstream).unwrap();
        git(&upstream, &["init", "-q", "-b", "main"]);
        sb.write("upstream/README.md", "# app\n");
        sb.write("upstream/.gitignore", "*.log\n");
        sb.write("upstream/app/main.py", MAIN);
        sb.write(
            "upstream/app/worker.py",
            "def stuck(batch):\n    return False\n",
        );
        git(&upstream, &["add", "."]);
        git(&upstream, &["commit", "-q", "-m", "app"]);
        git(
            &sb.dir(),
            &["clone", "-q", "--bare", "upstream", "origin.git"],
        );
        git(&sb.dir(), &["clone", "-q", "origin.git", "user"]);
        let user = sb.path("user");
        let head = git(&user, &["rev-parse", "HEAD"]);
        // The user's work: a changed module, a new one, an ignored log.
        sb.write(
            "user/app/worker.py",
            "def stuck(batch):\n    return batch >= 3\n",
        );
        sb.write("user/app/newmod.py", "ENABLED = True\n");
        sb.write("user/app/run.log", "ignored\n");
        let venv = sb.path("venv");
        // The system's Python: replay's runs are `nobody`, who may not reach
        // one under root's home (pyenv's).
        let st = Command::new("/usr/bin/python3")
            .args(["-m", "venv", "--without-pip"])
            .arg(&venv)
            .status()
            .unwrap();
        assert!(st.success(), "python3 -m venv");
        let site = fs::read_dir(venv.join("lib"))
            .unwrap()
            .flatten()
            .next()
            .unwrap()
            .path()
            .join("site-packages");
        install(&site, "1.2.0");
        Self {
            sb,
            user,
            venv,
            head,
        }
    }

    fn python(&self) -> String {
        self.venv.join("bin/python").display().to_string()
    }

    /// Captures the user's run (from `user/app`, `APP_BATCH=3`) into
    /// `bug.zip`, with `extra` flags and environment.
    fn capture(&self, extra: &[&str], env: &[(&str, &str)]) -> crate::support::Outcome {
        let mut run = self
            .sb
            .bugpack()
            .in_dir(self.user.join("app"))
            .args(["capture", "-o"])
            .arg(self.sb.path("bug.zip"))
            .args(["--title", "deadlock with batch 3"])
            .args(extra)
            .args(["--", &self.python(), "main.py"])
            .env("APP_BATCH", "3");
        for (k, v) in env {
            run = run.env(*k, *v);
        }
        run.run()
    }

    /// A maintainer's fresh clone of what was pushed, world-readable.
    fn maintainer_clone(&self, name: &str) -> PathBuf {
        git(&self.sb.dir(), &["clone", "-q", "origin.git", name]);
        self.sb.path(name)
    }

    fn bundle(&self) -> String {
        self.sb.path("bug.zip").display().to_string()
    }
}

/// Installs slowlib at `version` into `site` as an installer would: the
/// package and its `dist-info` with METADATA and RECORD.
fn install(site: &Path, version: &str) {
    for old in fs::read_dir(site).unwrap().flatten() {
        if old.file_name().to_string_lossy().starts_with("slowlib") {
            fs::remove_dir_all(old.path()).unwrap();
        }
    }
    fs::create_dir_all(site.join("slowlib")).unwrap();
    fs::write(site.join("slowlib/__init__.py"), "").unwrap();
    let info = site.join(format!("slowlib-{version}.dist-info"));
    fs::create_dir_all(&info).unwrap();
    fs::write(
        info.join("METADATA"),
        format!("Metadata-Version: 2.1\nName: slowlib\nVersion: {version}\n"),
    )
    .unwrap();
    fs::write(
        info.join("RECORD"),
        format!("slowlib/__init__.py,,\nslowlib-{version}.dist-info/METADATA,,\n"),
    )
    .unwrap();
    fs::write(info.join("top_level.txt"), "slowlib\n").unwrap();
}

/// Every path under `dir` (`.git` included) with its kind, mode and
/// contents or link target: two equal snapshots mean nothing changed.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (u32, Vec<u8>)> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, (u32, Vec<u8>)>) {
        for entry in fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            let meta = fs::symlink_metadata(&path).unwrap();
            let rel = path.strip_prefix(base).unwrap().to_owned();
            let data = if meta.file_type().is_symlink() {
                fs::read_link(&path)
                    .unwrap()
                    .into_os_string()
                    .into_encoded_bytes()
            } else if meta.is_file() {
                fs::read(&path).unwrap()
            } else {
                Vec::new()
            };
            out.insert(rel, (meta.mode(), data));
            if meta.is_dir() {
                walk(base, &path, out);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

fn assert_unchanged(dir: &Path, before: &BTreeMap<PathBuf, (u32, Vec<u8>)>) {
    let after = snapshot(dir);
    let changed: Vec<_> = before
        .keys()
        .chain(after.keys())
        .filter(|k| before.get(*k) != after.get(*k))
        .collect();
    assert!(changed.is_empty(), "replay changed the clone: {changed:?}");
}

/// Replays with `--yes --json` from `dir`, checks the exit code, returns
/// the report and what bugpack said.
fn replay(
    p: &Project,
    dir: &Path,
    args: &[&str],
    env: &[(&str, &str)],
    code: i32,
) -> (JReport, crate::support::Outcome) {
    let json = p.sb.path("report.json");
    let _ = fs::remove_file(&json);
    let mut run =
        p.sb.bugpack()
            .in_dir(dir)
            .args(["replay", &p.bundle(), "--yes", "--json"])
            .arg(&json)
            .args(args);
    for (k, v) in env {
        run = run.env(*k, *v);
    }
    let out = run.run().code(code);
    let text = fs::read_to_string(&json).unwrap_or_else(|e| panic!("{e}\n{out:?}"));
    let report = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    (report, out)
}

/// The mounts under `dir` this process can see.
fn mounts_under(dir: &Path) -> Vec<String> {
    let dir = dir.display().to_string();
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| l.contains(&dir))
        .map(str::to_owned)
        .collect()
}

#[test]
fn a_changed_checkout_captured_replays_in_a_fresh_clone_which_stays_unchanged() {
    let p = Project::new();
    let out = p.capture(&[], &[]).success();
    let context = format!("{out:?}");
    // What a maintainer's checkout lacks is in the bundle, and nothing ignored.
    let bundle = p.sb.path("bug.zip");
    let names: Vec<String> = entries(&bundle).into_iter().map(|e| e.0).collect();
    assert!(
        names.contains(&"git/untracked/app/newmod.py".to_owned()),
        "{names:?}\n{context}"
    );
    assert!(!names.iter().any(|n| n.contains("run.log")), "{names:?}");
    assert!(entry(&bundle, "git/diff.patch").contains("+    return batch >= 3"));
    let files = entry(&bundle, "git/files.txt");
    assert!(files.lines().any(|l| l == "app/main.py"), "{files}");
    let command: serde_yaml::Value =
        serde_yaml::from_str(&entry(&bundle, "env/command.yaml")).unwrap();
    assert_eq!(command["cwd"].as_str(), Some("app"), "{command:?}");
    assert_eq!(command["argv"][1].as_str(), Some("main.py"), "{command:?}");
    let scenario = entry(&bundle, "scenario/scenario.yaml");
    assert!(scenario.contains("APP_BATCH"), "{scenario}");
    let runtime = entry(&bundle, "env/runtime.yaml");
    assert!(runtime.contains("slowlib"), "{runtime}");
    assert!(runtime.contains("1.2.0"), "{runtime}");

    // The maintainer has only the pushed commit.
    let maint = p.maintainer_clone("maint");
    git(&maint, &["stash", "list"]);
    let before = snapshot(&maint);
    let (r, out) = replay(&p, &p.sb.dir(), &["--repo", "maint", "--runs", "2"], &[], 0);
    assert_eq!(r.verdict, "reproduced", "{out:?}");
    assert_eq!(r.cells[0].reproduced, 2, "{:?}", r.cells[0].results);
    let checkout = r.checkout.as_ref().expect("the report names the checkout");
    assert_eq!(checkout.commit, p.head);
    assert_eq!(
        (checkout.patched, checkout.untracked),
        (1, 1),
        "{checkout:?}"
    );
    assert_eq!(checkout.cwd, "app");
    let observed = r.observed.as_ref().expect("the observed run");
    assert_eq!(observed.exit_code, Some(3), "{observed:?}");
    assert!(
        observed
            .stderr_tail
            .as_deref()
            .is_some_and(|t| t.contains("deadlock")),
        "{observed:?}"
    );
    assert!(r.cells[0].unlike_observed.is_none(), "{:?}", r.cells[0]);
    assert!(out.stdout.contains("observed"), "{out:?}");
    assert_unchanged(&maint, &before);
    assert_eq!(git(&maint, &["worktree", "list"]).lines().count(), 1);
    assert_eq!(git(&maint, &["status", "--porcelain"]), "");
    assert!(mounts_under(&p.sb.dir()).is_empty());
    let tmp: Vec<_> = fs::read_dir(p.sb.tmp()).unwrap().flatten().collect();
    assert!(tmp.is_empty(), "left in TMPDIR: {tmp:?}");

    // From inside the clone, replay finds it by itself and says so.
    let (r, out) = replay(&p, &maint.join("app"), &["--runs", "1"], &[], 0);
    assert_eq!(r.verdict, "reproduced", "{out:?}");
    assert!(
        out.stderr.contains("note: replaying in a checkout of"),
        "{out:?}"
    );
    assert_unchanged(&maint, &before);

    // Where overlays cannot be used, each run gets a copy, and says so.
    let (r, _) = replay(
        &p,
        &p.sb.dir(),
        &["--repo", "maint", "--runs", "1"],
        &[("BUGPACK_SANDBOX", "process")],
        0,
    );
    let checkout = r.checkout.unwrap();
    assert_eq!(checkout.view, "copy", "{checkout:?}");
    assert!(checkout.why_copy.is_some(), "{checkout:?}");
    assert_unchanged(&maint, &before);

    // Without the checkout, the run cannot start the project: an error.
    let elsewhere = p.sb.path("elsewhere");
    fs::create_dir(&elsewhere).unwrap();
    let (r, out) = replay(&p, &elsewhere, &["--runs", "2"], &[], 4);
    assert_eq!(r.verdict, "error", "{out:?}");
    assert_eq!(r.cells[0].errors, 2, "{:?}", r.cells[0]);
    let line = out
        .stderr
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_else(|| panic!("{out:?}"));
    assert!(
        line.contains("could not open main.py, which is in the user's repository")
            && line.contains("--repo DIR"),
        "{out:?}"
    );
    let unlike = r.cells[0].unlike_observed.as_deref().unwrap_or_default();
    assert!(unlike.contains("observed exit 3"), "{unlike:?}");
    assert!(!out.stdout.contains("passed"), "{out:?}");
    // And --no-repo from inside the clone does the same.
    let (r, _) = replay(&p, &maint.join("app"), &["--no-repo"], &[], 4);
    assert_eq!(r.verdict, "error");
    assert!(r.checkout.is_none());
    assert_unchanged(&maint, &before);
}

#[test]
fn diff_here_and_the_report_show_a_package_at_another_version() {
    let p = Project::new();
    p.capture(&["--no-run", "--expect-exit", "3"], &[])
        .success();
    let maint = p.maintainer_clone("maint");
    let site = p.venv.join("lib");
    let site = fs::read_dir(site)
        .unwrap()
        .flatten()
        .next()
        .unwrap()
        .path()
        .join("site-packages");
    install(&site, "1.3.0");
    let out =
        p.sb.bugpack()
            .in_dir(&maint)
            .args(["diff", &p.bundle(), "--here"])
            .run()
            .code(1);
    assert!(
        out.stdout.contains("package slowlib  a: 1.2.0\n"),
        "{out:?}"
    );
    assert!(
        out.stdout
            .lines()
            .skip_while(|l| !l.contains("package slowlib"))
            .nth(1)
            .is_some_and(|l| l.trim() == "b: 1.3.0"),
        "{out:?}"
    );
    // The replay passes (the package moved on) and its header says why.
    let (r, out) = replay(&p, &maint, &["--runs", "1"], &[], 1);
    assert_eq!(r.verdict, "not-reproduced", "{out:?}");
    let slowlib = r
        .runtime
        .iter()
        .find(|d| d.key.contains("slowlib"))
        .unwrap_or_else(|| panic!("{:?}", r.runtime));
    assert_eq!(slowlib.user.as_deref(), Some("1.2.0"));
    assert_eq!(slowlib.here.as_deref(), Some("1.3.0"));
    assert!(
        out.stdout
            .lines()
            .any(|l| l.contains("slowlib") && l.contains("1.2.0") && l.contains("1.3.0")),
        "{out:?}"
    );
}

#[test]
fn a_commit_the_clone_lacks_is_a_usage_error_that_says_to_fetch() {
    let p = Project::new();
    p.capture(&["--no-run", "--expect-exit", "3"], &[])
        .success();
    // A clone of another history altogether.
    let other = p.sb.path("other");
    fs::create_dir(&other).unwrap();
    git(&other, &["init", "-q", "-b", "main"]);
    p.sb.write("other/x", "x\n");
    git(&other, &["add", "."]);
    git(&other, &["commit", "-q", "-m", "other"]);
    let before = snapshot(&other);
    let out =
        p.sb.bugpack()
            .args(["replay", &p.bundle(), "--yes", "--repo", "other"])
            .run()
            .code(2)
            .one_line_error()
            .stderr_has(&p.head[..12])
            .stderr_has("fetch");
    drop(out);
    assert_unchanged(&other, &before);
    // A directory that is no repository at all.
    p.sb.bugpack()
        .args(["replay", &p.bundle(), "--yes", "--repo", "upstream/app"])
        .run()
        .code(2)
        .one_line_error();
    p.sb.bugpack()
        .args(["replay", &p.bundle(), "--yes", "--repo", "nowhere"])
        .run()
        .code(2)
        .one_line_error();
}

#[test]
fn a_bundle_from_outside_git_with_repo_is_a_usage_error() {
    let sb = Sandbox::new();
    sb.write("plain/run.sh", "exit 3\n");
    sb.bugpack()
        .in_dir(sb.path("plain"))
        .args([
            "capture",
            "-o",
            "../bug.zip",
            "--title",
            "t",
            "--",
            "sh",
            "run.sh",
        ])
        .run()
        .success();
    fs::create_dir(sb.path("repo")).unwrap();
    git(&sb.path("repo"), &["init", "-q"]);
    sb.bugpack()
        .args(["replay", "bug.zip", "--yes", "--repo", "repo"])
        .run()
        .code(2)
        .one_line_error()
        .stderr_has("git");
}

#[test]
fn a_patch_that_does_not_apply_names_its_file() {
    let p = Project::new();
    p.capture(&["--no-run", "--expect-exit", "3"], &[])
        .success();
    // The maintainer's clone has the commit, but their working file differs
    // from it: the checkout is made from the commit, so it still applies.
    // A bundle whose patch is against other contents does not.
    let maint = p.maintainer_clone("maint");
    let bundle = p.sb.path("bug.zip");
    let manifest: serde_yaml::Value =
        serde_yaml::from_str(&entry(&bundle, "bugpack.yaml")).unwrap();
    let mut files: Vec<(String, Vec<u8>)> = entries(&bundle)
        .into_iter()
        .filter(|(n, _)| n != "bugpack.yaml" && n != "bugpack.yaml.sig")
        .collect();
    for (name, data) in &mut files {
        if name == "git/diff.patch" {
            let text = String::from_utf8(data.clone()).unwrap();
            assert!(text.contains("-    return False"), "{text}");
            *data = text
                .replace("-    return False", "-    return None")
                .into_bytes();
        }
    }
    let spec = BundleSpec {
        files,
        title: "t".into(),
        scenario: manifest["scenario"]["name"].as_str().map(str::to_owned),
    };
    fs::write(&bundle, spec.zip().bytes()).unwrap();
    let before = snapshot(&maint);
    p.sb.bugpack()
        .args(["replay", &p.bundle(), "--yes", "--repo", "maint"])
        .run()
        .code(4)
        .one_line_error()
        .stderr_has("app/worker.py");
    assert_unchanged(&maint, &before);
}

#[test]
fn ctrl_c_during_a_repo_replay_leaves_no_checkout_mount_or_process() {
    let p = Project::new();
    let mark = marker("7300");
    let _reap = KillOnDrop(&mark);
    p.capture(&["--no-run", "--expect-exit", "3"], &[("APP_SLEEP", &mark)])
        .success();
    let maint = p.maintainer_clone("maint");
    let before = snapshot(&maint);
    let child = Command::new(env!("CARGO_BIN_EXE_bugpack"))
        .args([
            "replay",
            &p.bundle(),
            "--yes",
            "--repo",
            "maint",
            "--runs",
            "2",
        ])
        .current_dir(p.sb.dir())
        .env("TMPDIR", p.sb.tmp())
        .env("HOME", p.sb.home())
        .env("BUGPACK_TEST_MARK", &mark)
        .env_remove("BUGPACK_SANDBOX")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_mins(2);
    while !processes_holding(&mark)
        .iter()
        .any(|l| l.contains("main.py"))
    {
        assert!(Instant::now() < deadline, "the run never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap()),
        Signal::SIGINT,
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    let left = processes_holding(&mark);
    assert!(left.is_empty(), "survived: {left:#?}");
    assert!(mounts_under(&p.sb.dir()).is_empty());
    let tmp: Vec<_> = fs::read_dir(p.sb.tmp()).unwrap().flatten().collect();
    assert!(tmp.is_empty(), "left in TMPDIR: {tmp:?}");
    assert_unchanged(&maint, &before);
    assert_eq!(git(&maint, &["worktree", "list"]).lines().count(), 1);
}

#[test]
fn trace_files_lists_a_config_outside_the_repository_without_packing_it() {
    let p = Project::new();
    let config = p.sb.home().join(".config/app/settings.toml");
    fs::create_dir_all(config.parent().unwrap()).unwrap();
    fs::write(&config, "mode = 'fast' # unique-setting-8124\n").unwrap();
    let main = p.user.join("app/main.py");
    let text = fs::read_to_string(&main).unwrap();
    fs::write(
        &main,
        format!(
            "import os\nopen(os.path.expanduser('~/.config/app/settings.toml')).read()\n{text}"
        ),
    )
    .unwrap();
    let out = p.capture(&["--trace-files"], &[]).success();
    assert!(
        out.stdout.contains(".config/app/settings.toml")
            || out.stderr.contains(".config/app/settings.toml"),
        "{out:?}"
    );
    let bundle = p.sb.path("bug.zip");
    let files = entry(&bundle, "env/files.yaml");
    assert!(files.contains(".config/app/settings.toml"), "{files}");
    for (name, data) in entries(&bundle) {
        assert!(
            !String::from_utf8_lossy(&data).contains("unique-setting-8124"),
            "{name} holds the config's contents"
        );
    }
    let issue = fs::read_to_string(p.sb.path("bug.zip.md")).unwrap();
    assert!(issue.contains(".config/app/settings.toml"), "{issue}");
    assert!(issue.contains("--config"), "{issue}");
}

#[test]
fn untracked_files_past_the_cap_are_left_out_and_said_so() {
    let p = Project::new();
    let big = vec![b'x'; 5 << 20];
    fs::write(p.user.join("app/huge.dat"), &big).unwrap();
    let out = p
        .capture(&["--no-run", "--expect-exit", "3"], &[])
        .success();
    let said = format!("{}{}", out.stdout, out.stderr);
    assert!(said.contains("huge.dat"), "{out:?}");
    let names: Vec<String> = entries(&p.sb.path("bug.zip"))
        .into_iter()
        .map(|e| e.0)
        .collect();
    assert!(!names.iter().any(|n| n.contains("huge.dat")), "{names:?}");
    assert!(names.contains(&"git/untracked/app/newmod.py".to_owned()));
}

#[test]
fn piped_standard_input_is_recorded_and_given_to_the_replay() {
    let sb = Sandbox::new();
    fs::set_permissions(
        sb.dir().parent().unwrap(),
        fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    fs::set_permissions(sb.dir(), fs::Permissions::from_mode(0o755)).unwrap();
    let repo = sb.path("repo");
    fs::create_dir(&repo).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    sb.write(
        "repo/count.sh",
        "n=$(grep -c poison)\n[ \"$n\" -gt 0 ] && { echo \"poison x$n\" >&2; exit 3; }\nexit 0\n",
    );
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-q", "-m", "c"]);
    sb.bugpack()
        .in_dir(&repo)
        .args([
            "capture",
            "-o",
            "../bug.zip",
            "--title",
            "t",
            "--",
            "sh",
            "count.sh",
        ])
        .stdin("ok\npoison\nok\n")
        .run()
        .success();
    let recorded = entry(&sb.path("bug.zip"), "env/stdin");
    assert_eq!(recorded, "ok\npoison\nok\n");
    let (r, out) = {
        let json = sb.path("r.json");
        let out = sb
            .bugpack()
            .in_dir(&repo)
            .args(["replay", "../bug.zip", "--yes", "--json", "../r.json"])
            .run()
            .code(0);
        let r: JReport = serde_json::from_str(&fs::read_to_string(json).unwrap()).unwrap();
        (r, out)
    };
    assert_eq!(r.verdict, "reproduced", "{out:?}");
}
