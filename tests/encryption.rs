//! Issue 18, part 3: `capture --encrypt-to` seals the bundle to the
//! maintainer's keys (age recipients, SSH keys, `github:USER`); readers
//! decrypt with `--identity` (or the default keys) and apply every rule to
//! the inner bundle; a wrong key is exit 3 naming the recipients, and a
//! tampered ciphertext is rejected.

use std::fs;
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::capture::entries;
use crate::fetch::Server;
use crate::support::{Sandbox, contains};

/// What the report says in clear inside the bundle; none of it may be
/// readable from the encrypted file or the issue text beside it.
const TITLE: &str = "checkout hangs on the Zebulon warehouse";
const STEPS: &str = "open the Quokka dashboard and press pay";

fn ssh_key(sb: &Sandbox, name: &str, kind: &str) -> (PathBuf, String) {
    let path = sb.path(name);
    let mut args = vec!["-q", "-t", kind, "-N", "", "-C", name];
    if kind == "rsa" {
        args.extend(["-b", "2048"]);
    }
    args.push("-f");
    let ok = Command::new("ssh-keygen")
        .args(&args)
        .arg(&path)
        .status()
        .unwrap();
    assert!(ok.success());
    let public = fs::read_to_string(path.with_extension("pub")).unwrap();
    (path, public.trim().to_owned())
}

/// An age identity file and its recipient.
fn age_key(sb: &Sandbox, name: &str) -> (PathBuf, String) {
    use age::secrecy::ExposeSecret as _;
    let identity = age::x25519::Identity::generate();
    let recipient = identity.to_public().to_string();
    let path = sb.write(
        name,
        format!(
            "# public key: {recipient}\n{}\n",
            identity.to_string().expose_secret()
        ),
    );
    (path, recipient)
}

/// A scenario that reproduces at once, captured with `extra` flags.
fn capture(sb: &Sandbox, extra: &[&str]) -> crate::support::Outcome {
    sb.write(
        "repro/scenario.yaml",
        "name: crash\nrun: sh crash.sh\ntimeout: 5s\nexpect: {exit: 3}\n",
    );
    sb.write(
        "repro/crash.sh",
        "echo 'Zebulon stock is empty' >&2\nexit 3\n",
    );
    sb.write("steps.md", format!("{STEPS}\n"));
    sb.bugpack()
        .args(["capture", "-o", "bug.zip", "--scenario", "repro"])
        .args(["--title", TITLE, "--steps", "steps.md"])
        .args(extra)
        .run()
}

/// The outer bundle holds a manifest with no title and the ciphertext;
/// neither it nor the issue text says anything the bundle hides.
fn assert_sealed(sb: &Sandbox, recipients: &[&str]) {
    let bundle = sb.path("bug.zip");
    let names: Vec<String> = entries(&bundle).into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["bugpack.yaml", "bundle.zip.age"]);
    let outer = entries(&bundle)[0].1.clone();
    let outer = String::from_utf8(outer).unwrap();
    assert!(outer.contains("format: bugpack-encrypted/v1"), "{outer}");
    for field in ["title", "created", "files", "scenario"] {
        assert!(!outer.contains(&format!("{field}:")), "{field} in {outer}");
    }
    let issue = fs::read_to_string(sb.path("bug.zip.md")).unwrap();
    let raw = fs::read(&bundle).unwrap();
    for hidden in [TITLE, STEPS, "Zebulon", "crash.sh", "sh crash.sh"] {
        assert!(!contains(&raw, hidden), "{hidden:?} readable in the bundle");
        assert!(
            !issue.contains(hidden),
            "{hidden:?} in the issue text:\n{issue}"
        );
    }
    assert!(issue.contains("encrypted"), "{issue}");
    for r in recipients {
        assert!(outer.contains(r), "{r} not in {outer}");
        assert!(issue.contains(r), "{r} not in the issue text:\n{issue}");
    }
}

/// `ssh-keygen -l`'s SHA256 fingerprint of a public key.
fn fingerprint(public_key: &Path) -> String {
    let out = Command::new("ssh-keygen")
        .arg("-lf")
        .arg(public_key)
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    text.split_whitespace().nth(1).unwrap().to_owned()
}

#[test]
fn a_bundle_sealed_to_an_ssh_key_opens_only_with_it_and_replays() {
    let sb = Sandbox::new();
    let (key, public) = ssh_key(&sb, "maint", "ed25519");
    let (other, _) = ssh_key(&sb, "stranger", "ed25519");
    capture(&sb, &["--encrypt-to", &public])
        .success()
        .stdout_has("encrypted to ssh-ed25519 SHA256:");
    let fp = fingerprint(&key.with_extension("pub"));
    assert_sealed(&sb, &[&fp]);
    let key = key.display().to_string();
    sb.bugpack()
        .args(["inspect", "bug.zip", "--identity", &key])
        .run()
        .success()
        .stdout_has(TITLE)
        .stdout_has(&format!("encrypted to ssh-ed25519 {fp}"));
    sb.bugpack()
        .args(["verify", "bug.zip", "--identity", &key])
        .run()
        .success()
        .stdout_has("intact");
    sb.bugpack()
        .args(["issue", "bug.zip", "--identity", &key])
        .run()
        .success()
        .stdout_has(STEPS);
    sb.bugpack()
        .args([
            "replay",
            "bug.zip",
            "--identity",
            &key,
            "--yes",
            "--runs",
            "2",
        ])
        .run()
        .success()
        .stdout_has("2/2");
    // Signing now would rewrite the bundle decrypted: refused, the file
    // unchanged, whether or not this machine can decrypt it.
    let before = fs::read(sb.path("bug.zip")).unwrap();
    sb.bugpack().args(["keygen"]).run().success();
    sb.bugpack()
        .args(["sign", "bug.zip"])
        .run()
        .code(2)
        .one_line_error()
        .stderr_has("is encrypted, and signing it now would write it decrypted");
    assert_eq!(fs::read(sb.path("bug.zip")).unwrap(), before);
    // The default identity is the maintainer's ~/.ssh/id_ed25519.
    fs::create_dir_all(sb.home().join(".ssh")).unwrap();
    fs::copy(&key, sb.home().join(".ssh/id_ed25519")).unwrap();
    sb.bugpack()
        .args(["inspect", "bug.zip"])
        .run()
        .success()
        .stdout_has(TITLE);
    sb.bugpack()
        .args(["sign", "bug.zip"])
        .run()
        .code(2)
        .one_line_error()
        .stderr_has("sign when capturing");
    assert_eq!(fs::read(sb.path("bug.zip")).unwrap(), before);
    fs::remove_file(sb.home().join(".ssh/id_ed25519")).unwrap();
    // Another key, or none: exit 3, one line naming whom it is sealed to.
    for args in [
        vec!["inspect", "bug.zip", "--identity", other.to_str().unwrap()],
        vec!["inspect", "bug.zip"],
        vec![
            "replay",
            "bug.zip",
            "--yes",
            "--identity",
            other.to_str().unwrap(),
        ],
        vec!["verify", "bug.zip", "--identity", other.to_str().unwrap()],
        vec![
            "diff",
            "bug.zip",
            "--here",
            "--identity",
            other.to_str().unwrap(),
        ],
    ] {
        sb.bugpack()
            .args(&args)
            .run()
            .code(3)
            .one_line_error()
            .stderr_has(&format!("encrypted to ssh-ed25519 {fp}"))
            .stderr_has("--identity");
    }
    // Whatever ran, nothing decrypted is left behind.
    let left: Vec<String> = sb
        .listing()
        .into_iter()
        .filter(|p| p.starts_with("tmp/") && p.len() > 4)
        .collect();
    assert!(left.is_empty(), "left in TMPDIR: {left:?}");
}

#[test]
fn age_rsa_and_several_recipients_each_decrypt_and_a_signature_still_verifies() {
    let sb = Sandbox::new();
    let (age_identity, age_recipient) = age_key(&sb, "age.key");
    let (rsa, rsa_public) = ssh_key(&sb, "rsa", "rsa");
    let (ed, ed_public) = ssh_key(&sb, "ed", "ed25519");
    // A file of recipients, with a comment, beside one given inline.
    let list = sb.write(
        "keys.txt",
        format!("# the maintainers\n{rsa_public}\n\n{ed_public}\n"),
    );
    sb.bugpack().args(["keygen"]).run().success();
    capture(
        &sb,
        &[
            "--encrypt-to",
            &age_recipient,
            "--encrypt-to",
            list.to_str().unwrap(),
            "--sign",
        ],
    )
    .success();
    assert_sealed(
        &sb,
        &[&age_recipient, &fingerprint(&rsa.with_extension("pub"))],
    );
    for identity in [&age_identity, &rsa, &ed] {
        sb.bugpack()
            .args(["inspect", "bug.zip", "--identity"])
            .arg(identity)
            .run()
            .success()
            .stdout_has(TITLE)
            .stdout_has("signed by");
    }
    // The signature covers the inner manifest: it verifies against the
    // signer's key once the default identity has decrypted the bundle.
    fs::create_dir_all(sb.home().join(".ssh")).unwrap();
    fs::copy(&ed, sb.home().join(".ssh/id_ed25519")).unwrap();
    let signer = sb.home().join(".config/bugpack/id_ed25519.pub");
    sb.bugpack()
        .args(["verify", "bug.zip", "--key"])
        .arg(&signer)
        .run()
        .success()
        .stdout_has("trusted");
}

#[test]
fn github_user_keys_come_from_the_server_and_unusable_ones_are_skipped() {
    let sb = Sandbox::new();
    let (key, public) = ssh_key(&sb, "octo", "ed25519");
    let (_, ecdsa) = ssh_key(&sb, "octo-ecdsa", "ecdsa");
    let server = Server::routes(vec![
        (
            "/octocat.keys".to_owned(),
            format!("{ecdsa}\n{public}\n").into_bytes(),
        ),
        ("/nokeys.keys".to_owned(), format!("{ecdsa}\n").into_bytes()),
    ]);
    let base = server.url("");
    let run = |extra: &[&str]| {
        sb.bugpack()
            .env("BUGPACK_GITHUB_URL", &base)
            .args(["capture", "-o", "bug.zip", "--scenario", "repro"])
            .args(["--title", TITLE])
            .args(extra)
            .run()
    };
    sb.write(
        "repro/scenario.yaml",
        "name: crash\nrun: sh crash.sh\ntimeout: 5s\nexpect: {exit: 3}\n",
    );
    sb.write("repro/crash.sh", "exit 3\n");
    run(&["--encrypt-to", "github:octocat"])
        .success()
        .stderr_has("skipped 1 key age cannot encrypt to (ecdsa-sha2-nistp256)");
    assert_eq!(server.served(), 1);
    let fp = fingerprint(&key.with_extension("pub"));
    assert_sealed(&sb, &[&fp]);
    sb.bugpack()
        .args(["inspect", "bug.zip", "--identity"])
        .arg(&key)
        .run()
        .success()
        .stdout_has(TITLE);
    fs::remove_file(sb.path("bug.zip")).unwrap();
    // Nothing usable, no such user, a bad name: exit 2, no bundle written.
    for (who, code, says) in [
        (
            "github:nokeys",
            2,
            "publishes no ssh-ed25519 or ssh-rsa key",
        ),
        ("github:ghost", 4, "404"),
        ("github:../etc", 2, "not a GitHub user name"),
        (
            "ssh-dss AAAAB3NzaC1kc3M",
            2,
            "ssh-dss keys cannot be encrypted to",
        ),
        ("age1notakey", 2, "not an age recipient"),
        ("nosuchfile", 2, "no such file, and not a key"),
    ] {
        run(&["--encrypt-to", who])
            .code(code)
            .one_line_error()
            .stderr_has(says);
        assert!(!sb.path("bug.zip").exists(), "{who}: a bundle was written");
    }
}

/// The outer bundle rebuilt with its payload changed by `tamper`, and its
/// manifest's hash made to match when `rehash`.
fn rebuilt(bundle: &Path, tamper: impl Fn(&mut Vec<u8>), rehash: bool) -> Vec<u8> {
    use sha2::Digest as _;
    let mut archive = zip::ZipArchive::new(fs::File::open(bundle).unwrap()).unwrap();
    let mut manifest = String::new();
    archive
        .by_name("bugpack.yaml")
        .unwrap()
        .read_to_string(&mut manifest)
        .unwrap();
    let mut payload = Vec::new();
    archive
        .by_name("bundle.zip.age")
        .unwrap()
        .read_to_end(&mut payload)
        .unwrap();
    let old = hex::encode(sha2::Sha256::digest(&payload));
    let old_size = payload.len();
    tamper(&mut payload);
    if rehash {
        manifest = manifest
            .replace(&old, &hex::encode(sha2::Sha256::digest(&payload)))
            .replace(
                &format!("size: {old_size}\n"),
                &format!("size: {}\n", payload.len()),
            );
    }
    let mut out = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default().unix_permissions(0o644);
    out.start_file("bugpack.yaml", options).unwrap();
    out.write_all(manifest.as_bytes()).unwrap();
    out.start_file(
        "bundle.zip.age",
        options.compression_method(zip::CompressionMethod::Stored),
    )
    .unwrap();
    out.write_all(&payload).unwrap();
    out.finish().unwrap().into_inner()
}

#[test]
fn a_tampered_ciphertext_is_rejected_whether_or_not_its_hash_was_fixed() {
    let sb = Sandbox::new();
    let (key, public) = ssh_key(&sb, "maint", "ed25519");
    capture(&sb, &["--encrypt-to", &public]).success();
    let bundle = sb.path("bug.zip");
    let flip = |p: &mut Vec<u8>| {
        let at = p.len() - 40;
        p[at] ^= 0x01;
    };
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("flipped", rebuilt(&bundle, flip, false), "SHA-256"),
        (
            "flipped and rehashed",
            rebuilt(&bundle, flip, true),
            "does not decrypt",
        ),
        (
            "truncated and rehashed",
            rebuilt(&bundle, |p| p.truncate(p.len() - 100), true),
            "does not decrypt",
        ),
    ];
    for (what, bytes, says) in cases {
        fs::write(sb.path("bad.zip"), bytes).unwrap();
        sb.bugpack()
            .args(["verify", "bad.zip", "--identity"])
            .arg(&key)
            .run()
            .code(3)
            .one_line_error()
            .stderr_has(says)
            .stderr_lacks("panicked");
        let _ = what;
    }
    // The untouched rebuild still opens: the cases above fail for their change.
    fs::write(sb.path("same.zip"), rebuilt(&bundle, |_| {}, false)).unwrap();
    sb.bugpack()
        .args(["verify", "same.zip", "--identity"])
        .arg(&key)
        .run()
        .success();
}

#[test]
fn a_profile_encrypts_every_bundle_of_the_project() {
    let sb = Sandbox::new();
    let (key, public) = ssh_key(&sb, "maint", "ed25519");
    sb.write("keys/maintainers.pub", format!("{public}\n"));
    sb.write(".bugpack.yaml", "encrypt_to: [keys/maintainers.pub]\n");
    capture(&sb, &[]).success().stdout_has("encrypted to");
    assert_sealed(&sb, &[&fingerprint(&key.with_extension("pub"))]);
    // A dry run says so and writes nothing.
    fs::remove_file(sb.path("bug.zip")).unwrap();
    capture(&sb, &["--dry-run"])
        .success()
        .stdout_has("the bundle would be encrypted to ssh-ed25519 SHA256:");
    assert!(!sb.path("bug.zip").exists());
}
