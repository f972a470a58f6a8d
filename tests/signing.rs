//! Signed bundles: keygen, sign, verify, and interoperation with the real
//! OpenSSH `ssh-keygen -Y` in both directions.

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::capture::entry;
use crate::support::Sandbox;
use crate::support::zipper::{BundleSpec, Entry};

/// Makes an OpenSSH key pair with the real ssh-keygen.
fn ssh_keygen(sb: &Sandbox, name: &str, kind: &str, passphrase: &str) -> std::path::PathBuf {
    let path = sb.path(name);
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", kind, "-N", passphrase, "-C", name, "-f"])
        .arg(&path)
        .output()
        .expect("ssh-keygen is installed");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    path
}

/// `ssh-keygen -Y sign -n NAMESPACE` over `message`; returns the armored signature.
fn ssh_sign(sb: &Sandbox, key: &Path, namespace: &str, message: &[u8]) -> Vec<u8> {
    let file = sb.path("to-sign");
    fs::write(&file, message).unwrap();
    let sig = sb.path("to-sign.sig");
    let _ = fs::remove_file(&sig);
    let out = Command::new("ssh-keygen")
        .args(["-Y", "sign", "-n", namespace, "-f"])
        .arg(key)
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    fs::read(sig).unwrap()
}

/// `ssh-keygen -Y verify` of `message` and `sig` for identity `id`.
fn ssh_verify(sb: &Sandbox, allowed: &Path, id: &str, message: &[u8], sig: &[u8]) -> bool {
    let sig_file = sb.path("check.sig");
    fs::write(&sig_file, sig).unwrap();
    let mut child = Command::new("ssh-keygen")
        .args(["-Y", "verify", "-n", "bugpack", "-I", id, "-f"])
        .arg(allowed)
        .arg("-s")
        .arg(&sig_file)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(message).unwrap();
    child.wait().unwrap().success()
}

/// A valid bundle carrying `sig` as its signature.
fn signed_bundle(spec: &BundleSpec, sig: &[u8]) -> Vec<u8> {
    let mut zip = spec.zip();
    zip.entries
        .insert(1, Entry::new("bugpack.yaml.sig", sig.to_vec()));
    zip.bytes()
}

fn allowed_signers(sb: &Sandbox, lines: &[(&str, &Path)]) -> std::path::PathBuf {
    let text: String = lines
        .iter()
        .map(|(id, key)| {
            let mut p = key.as_os_str().to_owned();
            p.push(".pub");
            format!("{id} {}", fs::read_to_string(p).unwrap())
        })
        .collect();
    sb.write("allowed_signers", text)
}

#[test]
fn keygen_writes_a_private_key_0600_and_refuses_to_overwrite() {
    let sb = Sandbox::new();
    let out = sb.bugpack().arg("keygen").run().success();
    let key = sb.home().join(".config/bugpack/id_ed25519");
    assert_eq!(
        fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let public = fs::read_to_string(sb.home().join(".config/bugpack/id_ed25519.pub")).unwrap();
    assert!(public.starts_with("ssh-ed25519 "), "{public}");
    assert!(out.stdout.contains("SHA256:"), "{}", out.stdout);
    assert!(out.stdout.contains(public.trim()));
    // ssh-keygen reads it and agrees on the fingerprint.
    let fp = Command::new("ssh-keygen")
        .arg("-lf")
        .arg(&key)
        .output()
        .unwrap();
    let fp = String::from_utf8_lossy(&fp.stdout);
    let fp = fp.split_whitespace().nth(1).unwrap();
    assert!(out.stdout.contains(fp), "{fp} vs {}", out.stdout);
    let before = fs::read(&key).unwrap();
    sb.bugpack()
        .arg("keygen")
        .run()
        .code(2)
        .one_line_error()
        .stderr_has("--force");
    assert_eq!(fs::read(&key).unwrap(), before, "the key was overwritten");
    sb.bugpack().args(["keygen", "--force"]).run().success();
    assert_ne!(fs::read(&key).unwrap(), before);
    sb.bugpack()
        .args(["keygen", "-o", "elsewhere/k"])
        .run()
        .success();
    assert!(sb.path("elsewhere/k.pub").is_file());
}

#[test]
fn a_bundle_signed_by_bugpack_verifies_with_ssh_keygen() {
    let sb = Sandbox::new();
    let key = ssh_keygen(&sb, "alice", "ed25519", "");
    sb.write("run.sh", "exit 1\n");
    sb.bugpack()
        .args(["capture", "-o", "bug.zip", "--include", "run.sh", "--sign"])
        .arg(&key)
        .args(["--no-run", "--", "sh", "run.sh"])
        .run()
        .success()
        .stdout_has("signed  SHA256:");
    let bundle = sb.path("bug.zip");
    let manifest = entry(&bundle, "bugpack.yaml");
    let sig = entry(&bundle, "bugpack.yaml.sig");
    let allowed = allowed_signers(&sb, &[("alice@example.com", &key)]);
    assert!(ssh_verify(
        &sb,
        &allowed,
        "alice@example.com",
        manifest.as_bytes(),
        sig.as_bytes()
    ));
    assert!(!ssh_verify(
        &sb,
        &allowed,
        "alice@example.com",
        b"another manifest",
        sig.as_bytes()
    ));
    let mut pub_path = key.as_os_str().to_owned();
    pub_path.push(".pub");
    sb.bugpack()
        .args(["verify", "bug.zip", "--key"])
        .arg(&pub_path)
        .run()
        .success()
        .stdout_has("trusted");
    sb.bugpack()
        .args([
            "verify",
            "bug.zip",
            "--allowed-signers",
            "allowed_signers",
            "--identity",
            "alice@example.com",
        ])
        .run()
        .success()
        .stdout_has("signed by alice@example.com");
    sb.bugpack()
        .args(["inspect", "bug.zip"])
        .run()
        .success()
        .stdout_has("signed by SHA256:");
}

#[test]
fn a_manifest_signed_by_ssh_keygen_verifies_with_bugpack() {
    let sb = Sandbox::new();
    let key = ssh_keygen(&sb, "bob", "ed25519", "");
    let spec = BundleSpec::valid();
    let sig = ssh_sign(&sb, &key, "bugpack", spec.manifest().as_bytes());
    sb.write("b.zip", signed_bundle(&spec, &sig));
    allowed_signers(&sb, &[("bob@example.com", &key)]);
    let out = sb
        .bugpack()
        .args(["verify", "b.zip", "--allowed-signers", "allowed_signers"])
        .run()
        .success();
    assert!(
        out.stdout.contains("signed by bob@example.com"),
        "{}",
        out.stdout
    );
    sb.bugpack()
        .args([
            "verify",
            "b.zip",
            "--allowed-signers",
            "allowed_signers",
            "--identity",
            "mallory@example.com",
        ])
        .run()
        .code(3)
        .one_line_error()
        .stderr_has("do not list");
    sb.bugpack()
        .args(["verify", "b.zip"])
        .run()
        .success()
        .stdout_has("not checked against a trusted key");
    let keys = format!(
        "{}{}",
        fs::read_to_string(sb.path("bob.pub")).unwrap(),
        fs::read_to_string(ssh_keygen(&sb, "other", "ed25519", "").with_extension("pub")).unwrap()
    );
    sb.write("bob.keys", keys);
    sb.bugpack()
        .args(["verify", "b.zip", "--github-keys", "bob.keys"])
        .run()
        .success();
}

#[test]
fn a_signature_for_another_namespace_is_rejected() {
    let sb = Sandbox::new();
    let key = ssh_keygen(&sb, "k", "ed25519", "");
    let spec = BundleSpec::valid();
    let sig = ssh_sign(&sb, &key, "git", spec.manifest().as_bytes());
    sb.write("b.zip", signed_bundle(&spec, &sig));
    sb.bugpack()
        .args(["verify", "b.zip"])
        .run()
        .code(3)
        .one_line_error()
        .stderr_has("namespace \"git\"");
    sb.bugpack()
        .args(["replay", "b.zip", "--yes"])
        .run()
        .code(3)
        .one_line_error()
        .stderr_has("namespace");
}

#[test]
fn tampering_and_wrong_keys_are_rejected() {
    let sb = Sandbox::new();
    let key = ssh_keygen(&sb, "k", "ed25519", "");
    let other = ssh_keygen(&sb, "other", "ed25519", "");
    let spec = BundleSpec::valid();
    let sig = ssh_sign(&sb, &key, "bugpack", spec.manifest().as_bytes());

    // One byte of the manifest changed (the title), listing still valid.
    let changed = spec
        .manifest()
        .replace("title: demo bug", "title: demo bog");
    let mut zip = spec.zip_with_manifest(changed.into_bytes());
    zip.entries
        .insert(1, Entry::new("bugpack.yaml.sig", sig.clone()));
    sb.write("manifest.zip", zip.bytes());
    sb.bugpack()
        .args(["verify", "manifest.zip"])
        .run()
        .code(3)
        .one_line_error()
        .stderr_has("does not match bugpack.yaml");

    // A file changed after signing: its hash no longer matches.
    let mut zip = spec.zip();
    zip.entries
        .insert(1, Entry::new("bugpack.yaml.sig", sig.clone()));
    let i = zip
        .entries
        .iter()
        .position(|e| e.name == b"steps.md")
        .unwrap();
    zip.entries[i].data[0] ^= 1;
    sb.write("file.zip", zip.bytes());
    sb.bugpack()
        .args(["verify", "file.zip"])
        .run()
        .code(3)
        .one_line_error()
        .stderr_has("SHA-256");

    // Signed by a key other than the trusted one.
    sb.write("good.zip", signed_bundle(&spec, &sig));
    sb.bugpack()
        .args(["verify", "good.zip", "--key"])
        .arg(other.with_extension("pub"))
        .run()
        .code(3)
        .one_line_error()
        .stderr_has("not a key you trust");
    let line = fs::read_to_string(key.with_extension("pub")).unwrap();
    sb.bugpack()
        .args(["verify", "good.zip", "--key", line.trim()])
        .run()
        .success();

    // A truncated signature.
    sb.write("short.zip", signed_bundle(&spec, &sig[..sig.len() / 2]));
    sb.bugpack()
        .args(["verify", "short.zip"])
        .run()
        .code(3)
        .one_line_error()
        .stderr_has("not an armored SSH signature");
}

#[test]
fn rsa_and_ecdsa_keys_get_a_clear_error() {
    let sb = Sandbox::new();
    sb.write("b.zip", BundleSpec::valid().zip().bytes());
    for kind in ["rsa", "ecdsa"] {
        let key = ssh_keygen(&sb, kind, kind, "");
        sb.bugpack()
            .args(["sign", "b.zip", "--key"])
            .arg(&key)
            .run()
            .code(2)
            .one_line_error()
            .stderr_has("keys are not supported: bugpack signs and verifies with Ed25519 keys");
        let spec = BundleSpec::valid();
        let sig = ssh_sign(&sb, &key, "bugpack", spec.manifest().as_bytes());
        sb.write(&format!("{kind}.zip"), signed_bundle(&spec, &sig));
        sb.bugpack()
            .args(["verify", &format!("{kind}.zip")])
            .run()
            .code(3)
            .one_line_error()
            .stderr_has("not supported");
    }
}

#[test]
fn sign_rewrites_the_bundle_and_keeps_the_manifest() {
    let sb = Sandbox::new();
    let key = ssh_keygen(&sb, "k", "ed25519", "");
    let spec = BundleSpec::valid();
    sb.write("b.zip", spec.zip().bytes());
    sb.bugpack()
        .args(["verify", "b.zip"])
        .run()
        .success()
        .stdout_has("unsigned");
    sb.bugpack()
        .args(["verify", "b.zip", "--require-signature"])
        .run()
        .code(3)
        .one_line_error();
    sb.bugpack()
        .args(["sign", "b.zip", "--key"])
        .arg(&key)
        .run()
        .success()
        .stdout_has("signed b.zip with SHA256:");
    assert_eq!(
        entry(&sb.path("b.zip"), "bugpack.yaml"),
        spec.manifest(),
        "the signed bytes are the original manifest"
    );
    let allowed = allowed_signers(&sb, &[("k@x", &key)]);
    let sig = entry(&sb.path("b.zip"), "bugpack.yaml.sig");
    assert!(ssh_verify(
        &sb,
        &allowed,
        "k@x",
        spec.manifest().as_bytes(),
        sig.as_bytes()
    ));
    // Re-signing with another key replaces the signature.
    let other = ssh_keygen(&sb, "o", "ed25519", "");
    sb.bugpack()
        .args(["sign", "b.zip", "--key"])
        .arg(&other)
        .run()
        .success();
    sb.bugpack()
        .args(["verify", "b.zip", "--key"])
        .arg(other.with_extension("pub"))
        .run()
        .success();
    // The default key is bugpack's own.
    sb.bugpack().arg("keygen").run().success();
    sb.bugpack().args(["sign", "b.zip"]).run().success();
    sb.bugpack()
        .args(["verify", "b.zip", "--key"])
        .arg(sb.home().join(".config/bugpack/id_ed25519.pub"))
        .run()
        .success();
    let left: Vec<_> = fs::read_dir(sb.dir())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(
        !left
            .iter()
            .any(|n| n.to_string_lossy().ends_with(".partial")),
        "{left:?}"
    );
}

#[test]
fn an_encrypted_key_without_a_terminal_is_a_clear_error() {
    let sb = Sandbox::new();
    let key = ssh_keygen(&sb, "locked", "ed25519", "correct horse");
    sb.write("b.zip", BundleSpec::valid().zip().bytes());
    let before = fs::read(sb.path("b.zip")).unwrap();
    sb.bugpack()
        .args(["sign", "b.zip", "--key"])
        .arg(&key)
        .run()
        .code(2)
        .one_line_error()
        .stderr_has("is encrypted and no passphrase was given");
    assert_eq!(fs::read(sb.path("b.zip")).unwrap(), before);
    sb.bugpack()
        .args(["sign", "b.zip"])
        .run()
        .code(2)
        .one_line_error()
        .stderr_has("bugpack keygen");
}
