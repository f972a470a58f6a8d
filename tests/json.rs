//! `--json` outputs whose keys are a contract: `diff --json` and
//! `verify --json`, read into mirror types that refuse unknown fields, so
//! that a renamed or added key fails here first. (`replay --json` has its
//! mirror in `support::reports`.)

use std::fs;

use serde::Deserialize;

use crate::support::Sandbox;
use crate::support::zipper::{BundleSpec, sha256};

/// `bugpack diff --json`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JDiff {
    pub bugpack: String,
    pub a: JSide,
    pub b: JSide,
    pub same: bool,
    pub differences: usize,
    pub groups: Vec<JGroup>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JSide {
    pub kind: String,
    pub path: Option<String>,
    pub sha256: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JGroup {
    pub group: String,
    pub changes: Vec<JChange>,
    pub not_compared: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JChange {
    pub key: String,
    pub a: Option<String>,
    pub b: Option<String>,
    pub diff: Option<String>,
}

/// `bugpack verify --json`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JVerify {
    pub bundle: String,
    pub sha256: String,
    pub intact: bool,
    pub entries: usize,
    pub bytes: u64,
    pub signature: JSignature,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JSignature {
    pub state: String,
    #[serde(default)]
    pub fingerprint: Option<String>,
    #[serde(default)]
    pub identity: Option<String>,
}

#[test]
fn diff_json_has_every_key_and_group_even_when_nothing_differs() {
    let sb = Sandbox::new();
    sb.write("a.zip", BundleSpec::valid().zip().bytes());
    let out = sb
        .bugpack()
        .args(["diff", "a.zip", "a.zip", "--json"])
        .run()
        .success();
    let raw: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let d: JDiff = serde_json::from_value(raw.clone()).unwrap();
    assert_eq!(d.bugpack, env!("CARGO_PKG_VERSION"));
    assert!(d.same);
    assert_eq!(d.differences, 0);
    assert_eq!(
        d.groups
            .iter()
            .map(|g| g.group.as_str())
            .collect::<Vec<_>>(),
        ["proxy", "versions", "config", "system", "git", "env"]
    );
    assert!(d.groups.iter().all(|g| g.changes.is_empty()));
    let sha = sha256(&fs::read(sb.path("a.zip")).unwrap());
    assert_eq!(d.a.sha256.as_deref(), Some(sha.as_str()));
    assert_eq!(
        (d.a.kind.as_str(), d.a.path.as_deref()),
        ("bundle", Some("a.zip"))
    );
    // Absent values are present as null, so that every key is always there.
    assert!(raw["b"].as_object().unwrap().contains_key("path"));
}

#[test]
fn diff_json_changes_carry_key_a_b_and_diff() {
    let sb = Sandbox::new();
    let a = BundleSpec::valid()
        .with_file(
            "env/system.yaml",
            "os: Debian GNU/Linux 12 (bookworm)\ncpu_count: 8\n",
        )
        .with_file("config/app.ini", "size = 2\n");
    let b = BundleSpec::valid()
        .with_file(
            "env/system.yaml",
            "os: Debian GNU/Linux 12 (bookworm)\ncpu_count: 2\n",
        )
        .with_file("env/vars.yaml", "LANGUAGE_MODE: strict\n");
    sb.write("a.zip", a.zip().bytes());
    sb.write("b.zip", b.zip().bytes());
    let out = sb
        .bugpack()
        .args(["diff", "a.zip", "b.zip", "--json"])
        .run()
        .code(1);
    let d: JDiff = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(d.differences, 3);
    let config = &d.groups[2].changes[0];
    assert_eq!(config.key, "config/app.ini");
    assert_eq!(config.b, None);
    assert!(config.diff.as_deref().unwrap().contains("+++ /dev/null\n"));
    let cpu = &d.groups[3].changes[0];
    assert_eq!(
        (
            cpu.key.as_str(),
            cpu.a.as_deref(),
            cpu.b.as_deref(),
            cpu.diff.as_deref()
        ),
        ("cpu_count", Some("8"), Some("2"), None)
    );
    let var = &d.groups[5].changes[0];
    assert_eq!(
        (var.key.as_str(), var.a.as_deref(), var.b.as_deref()),
        ("LANGUAGE_MODE", None, Some("strict"))
    );
}

#[test]
fn verify_json_unsigned_valid_and_trusted() {
    let sb = Sandbox::new();
    sb.write("bug.zip", BundleSpec::valid().zip().bytes());
    let verify = |args: &[&str]| -> JVerify {
        let out = sb
            .bugpack()
            .args(["verify", "bug.zip", "--json"])
            .args(args)
            .run()
            .success();
        serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}\n{}", out.stdout))
    };
    let v = verify(&[]);
    assert_eq!(v.bundle, "bug.zip");
    assert!(v.intact);
    assert_eq!(v.sha256, sha256(&fs::read(sb.path("bug.zip")).unwrap()));
    assert_eq!(v.entries, 5, "the manifest and four files");
    let spec = BundleSpec::valid();
    let bytes: usize = spec.files.iter().map(|(_, d)| d.len()).sum();
    assert_eq!(v.bytes, bytes as u64);
    assert_eq!(v.signature.state, "unsigned");
    assert_eq!(v.signature.fingerprint, None);

    sb.bugpack().args(["keygen", "-o", "k"]).run().success();
    sb.bugpack()
        .args(["sign", "bug.zip", "--key", "k"])
        .run()
        .success();
    let v = verify(&[]);
    assert_eq!(v.signature.state, "valid");
    assert_eq!(v.entries, 6, "and now the signature");
    let fingerprint = v.signature.fingerprint.unwrap();
    assert!(fingerprint.starts_with("SHA256:"), "{fingerprint}");
    let v = verify(&["--key", "k.pub"]);
    assert_eq!(v.signature.state, "trusted");
    assert_eq!(
        v.signature.fingerprint.as_deref(),
        Some(fingerprint.as_str())
    );

    let public = fs::read_to_string(sb.path("k.pub")).unwrap();
    sb.write("allowed", format!("alice@example.com {public}"));
    let v = verify(&[
        "--allowed-signers",
        "allowed",
        "--identity",
        "alice@example.com",
    ]);
    assert_eq!(v.signature.state, "trusted");
    assert_eq!(v.signature.identity.as_deref(), Some("alice@example.com"));
}
