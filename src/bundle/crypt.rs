//! Encrypted bundles (`capture --encrypt-to`): still a `.zip`, as GitHub
//! accepts no other attachment, holding an outer manifest with only what a
//! reader needs to decrypt (format, id, the recipients' fingerprints, the
//! payload's size and SHA-256) and the inner bundle encrypted with age
//! (the `age` crate; no cryptography of bugpack's own). Readers decrypt with
//! the maintainer's identities into a private temporary directory, capped in
//! size, and then apply every reader rule to the inner bundle; a signature
//! covers the inner manifest, so it verifies after decryption.

use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

use super::Rejection;
use crate::error::usage;

/// The outer manifest's format.
pub const FORMAT: &str = "bugpack-encrypted/v1";
/// The entry holding the encrypted inner bundle.
pub const PAYLOAD: &str = "bundle.zip.age";
/// Where `github:USER` keys come from (`$BUGPACK_GITHUB_URL`, for tests).
pub const GITHUB_ENV: &str = "BUGPACK_GITHUB_URL";
/// The most recipients one bundle is encrypted to.
const MAX_RECIPIENTS: usize = 64;

/// The outer manifest of an encrypted bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Outer {
    pub format: String,
    /// The inner bundle's id.
    pub id: String,
    /// Each recipient's public fingerprint: `ssh-ed25519 SHA256:...` or `age1...`.
    pub recipients: Vec<String>,
    pub payload: super::FileEntry,
}

impl Outer {
    /// The outer manifest, when `bytes` is one; `None` for any other
    /// manifest (the ordinary reader judges it).
    pub fn detect(bytes: &[u8]) -> Result<Option<Self>, Rejection> {
        let Ok(value) = crate::yaml::to_json(bytes) else {
            return Ok(None);
        };
        if value.get("format").and_then(serde_json::Value::as_str) != Some(FORMAT) {
            return Ok(None);
        }
        let bad = |why: String| Rejection::Schema {
            file: super::MANIFEST.to_owned(),
            why,
        };
        let outer: Self = serde_json::from_value(value).map_err(|e| bad(e.to_string()))?;
        let hex = |s: &str, n: usize| {
            s.len() == n && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        };
        if !hex(&outer.id, 32) {
            return Err(bad("id is not 32 lower-case hex digits".to_owned()));
        }
        if outer.recipients.is_empty()
            || outer.recipients.len() > MAX_RECIPIENTS
            || outer
                .recipients
                .iter()
                .any(|r| r.is_empty() || r.len() > 200 || r.chars().any(char::is_control))
        {
            return Err(bad(format!(
                "recipients must be 1 to {MAX_RECIPIENTS} fingerprints"
            )));
        }
        if outer.payload.path != PAYLOAD || !hex(&outer.payload.sha256, 64) {
            return Err(bad(format!("the payload must be {PAYLOAD} with a SHA-256")));
        }
        Ok(Some(outer))
    }
}

/// One `--encrypt-to` key.
pub struct Recipient {
    key: Key,
    /// What the outer manifest and the issue text name it by.
    pub fingerprint: String,
}

enum Key {
    Age(age::x25519::Recipient),
    Ssh(age::ssh::Recipient),
}

impl std::fmt::Debug for Recipient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.fingerprint)
    }
}

impl Recipient {
    fn as_dyn(&self) -> &dyn age::Recipient {
        match &self.key {
            Key::Age(k) => k,
            Key::Ssh(k) => k,
        }
    }

    /// An `age1...` recipient or an `ssh-ed25519`/`ssh-rsa` public key line.
    fn parse(line: &str) -> Result<Self, String> {
        let line = line.trim();
        if line.starts_with("age1") {
            let key: age::x25519::Recipient = line
                .parse()
                .map_err(|e| format!("not an age recipient ({e})"))?;
            return Ok(Self {
                fingerprint: key.to_string(),
                key: Key::Age(key),
            });
        }
        let algorithm = line.split_whitespace().next().unwrap_or_default();
        if algorithm != "ssh-ed25519" && algorithm != "ssh-rsa" {
            return Err(format!(
                "{} keys cannot be encrypted to (age takes ssh-ed25519 and ssh-rsa)",
                if algorithm.is_empty() {
                    "empty"
                } else {
                    algorithm
                }
            ));
        }
        let key: age::ssh::Recipient = line
            .parse()
            .map_err(|e| format!("not an SSH public key ({e:?})"))?;
        let fingerprint = ssh_key::PublicKey::from_openssh(line).map_or_else(
            |_| algorithm.to_owned(),
            |k| format!("{algorithm} {}", k.fingerprint(ssh_key::HashAlg::Sha256)),
        );
        Ok(Self {
            key: Key::Ssh(key),
            fingerprint,
        })
    }
}

/// Whether an `--encrypt-to` value is a key itself (`age1…`, `ssh-…`) or
/// `github:USER`, rather than the path of a file of keys.
pub fn names_keys_itself(spec: &str) -> bool {
    let spec = spec.trim();
    spec.starts_with("age1") || spec.starts_with("ssh-") || spec.starts_with("github:")
}

/// The keys one `--encrypt-to` value names: an age recipient, an SSH
/// public key, a file of them (one per line, `#` comments), or
/// `github:USER` (the keys GitHub publishes at `https://github.com/USER.keys`).
/// A value that names none is a usage error.
pub fn recipients(spec: &str) -> anyhow::Result<Vec<Recipient>> {
    let spec = spec.trim();
    let hint = "give an age recipient (age1...), an SSH public key (ssh-ed25519 or ssh-rsa), a file of them, or github:USER";
    if let Some(user) = spec.strip_prefix("github:") {
        return github(user);
    }
    if spec.starts_with("age1") || spec.starts_with("ssh-") {
        return Recipient::parse(spec)
            .map(|r| vec![r])
            .map_err(|why| usage(format!("--encrypt-to {}: {why}; {hint}", short(spec))));
    }
    let path = Path::new(spec);
    if !path.is_file() {
        return Err(usage(format!(
            "--encrypt-to {spec:?}: no such file, and not a key; {hint}"
        )));
    }
    let mut text = String::new();
    File::open(path)
        .and_then(|f| f.take(1 << 20).read_to_string(&mut text))
        .map_err(|e| usage(format!("--encrypt-to {}: {e}", path.display())))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        out.push(Recipient::parse(line).map_err(|why| {
            usage(format!(
                "--encrypt-to {} line {}: {why}",
                path.display(),
                i + 1
            ))
        })?);
    }
    if out.is_empty() {
        return Err(usage(format!(
            "--encrypt-to {}: the file holds no key; {hint}",
            path.display()
        )));
    }
    Ok(out)
}

/// A key shown in a message: its type and the start of its body.
fn short(key: &str) -> String {
    key.chars().take(24).collect::<String>() + if key.chars().count() > 24 { "…" } else { "" }
}

/// The ed25519 and RSA keys GitHub publishes for `user`; others (ECDSA,
/// security keys) are skipped with a note.
fn github(user: &str) -> anyhow::Result<Vec<Recipient>> {
    if user.is_empty()
        || user.len() > 39
        || !user.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        return Err(usage(format!(
            "--encrypt-to github:{user}: not a GitHub user name"
        )));
    }
    let base = std::env::var(GITHUB_ENV)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "https://github.com".to_owned());
    let url = format!("{}/{user}.keys", base.trim_end_matches('/'));
    crate::fetch::check_url(&url)?;
    let agent = crate::fetch::api_agent(std::time::Duration::from_secs(30));
    let mut response = agent
        .get(&url)
        .call()
        .with_context(|| format!("cannot fetch the keys of github:{user} from {url}"))?;
    let status = response.status();
    if !status.is_success() {
        anyhow::bail!(
            "cannot fetch the keys of github:{user}: {url} answered {status}; check the user name"
        );
    }
    let text = response
        .body_mut()
        .with_config()
        .limit(1 << 20)
        .read_to_string()
        .with_context(|| format!("cannot read the keys of github:{user}"))?;
    let mut out = Vec::new();
    let mut skipped = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        match Recipient::parse(line) {
            Ok(r) => out.push(r),
            Err(_) => skipped.push(line.split_whitespace().next().unwrap_or("?").to_owned()),
        }
    }
    if out.is_empty() {
        return Err(usage(format!(
            "--encrypt-to github:{user}: GitHub publishes no ssh-ed25519 or ssh-rsa key for {user}{}; ask them for an age recipient",
            if skipped.is_empty() {
                String::new()
            } else {
                format!(" (only {})", skipped.join(", "))
            }
        )));
    }
    if !skipped.is_empty() {
        tracing::warn!(
            "github:{user}: skipped {} key{} age cannot encrypt to ({})",
            skipped.len(),
            if skipped.len() == 1 { "" } else { "s" },
            skipped.join(", ")
        );
    }
    Ok(out)
}

/// Encrypts the bundle at `inner` to `recipients` and writes the outer
/// bundle to `out`; `id` is the inner bundle's id.
pub fn encrypt(inner: &Path, out: &Path, recipients: &[Recipient], id: &str) -> anyhow::Result<()> {
    use zip::write::SimpleFileOptions;
    use zip::{CompressionMethod, DateTime, ZipWriter};

    let encryptor = age::Encryptor::with_recipients(recipients.iter().map(Recipient::as_dyn))
        .map_err(|e| anyhow::anyhow!("cannot encrypt the bundle: {e}"))?;
    let payload_path = out.with_extension("payload");
    {
        let file = File::create(&payload_path)
            .with_context(|| format!("cannot write {}", payload_path.display()))?;
        let mut writer = encryptor
            .wrap_output(io::BufWriter::new(file))
            .context("cannot encrypt the bundle")?;
        let mut input =
            File::open(inner).with_context(|| format!("cannot read {}", inner.display()))?;
        io::copy(&mut input, &mut writer).context("cannot encrypt the bundle")?;
        writer
            .finish()
            .and_then(|mut w| w.flush())
            .context("cannot encrypt the bundle")?;
    }
    let (size, sha256) = super::sha256_stream(File::open(&payload_path)?)?;
    let mut fingerprints: Vec<String> = recipients.iter().map(|r| r.fingerprint.clone()).collect();
    fingerprints.dedup();
    let outer = Outer {
        format: FORMAT.to_owned(),
        id: id.to_owned(),
        recipients: fingerprints,
        payload: super::FileEntry {
            path: PAYLOAD.to_owned(),
            size,
            sha256,
        },
    };
    let manifest = serde_yaml::to_string(&outer)?;
    let file = File::create(out).with_context(|| format!("cannot write {}", out.display()))?;
    let mut zip = ZipWriter::new(io::BufWriter::new(file));
    let base = SimpleFileOptions::default()
        .last_modified_time(DateTime::default())
        .large_file(size >= u64::from(u32::MAX))
        .unix_permissions(0o644);
    zip.start_file(
        super::MANIFEST,
        base.compression_method(CompressionMethod::Deflated),
    )?;
    zip.write_all(manifest.as_bytes())?;
    // Ciphertext does not compress.
    zip.start_file(PAYLOAD, base.compression_method(CompressionMethod::Stored))?;
    io::copy(&mut File::open(&payload_path)?, &mut zip)?;
    zip.finish()?.flush()?;
    std::fs::remove_file(&payload_path).ok();
    Ok(())
}

static CHOSEN: OnceLock<Vec<PathBuf>> = OnceLock::new();

type Identities = Vec<Box<dyn age::Identity>>;

/// The identities readers decrypt with (`--identity FILE`, repeatable);
/// without any, the defaults of [`default_identities`].
pub fn use_identities(paths: Vec<PathBuf>) {
    if !paths.is_empty() {
        let _ = CHOSEN.set(paths);
    }
}

/// `~/.ssh/id_ed25519`, `~/.ssh/id_rsa` and bugpack's own key.
pub fn default_identities() -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Some(home) = std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        let ssh = PathBuf::from(home).join(".ssh");
        out.push(ssh.join("id_ed25519"));
        out.push(ssh.join("id_rsa"));
    }
    out.extend(crate::sign::default_key_path());
    out
}

/// The identities to try, with the names of the files they came from.
/// A file named by `--identity` that cannot be used is a usage error; a
/// default one is skipped.
fn load_identities() -> anyhow::Result<(Identities, Vec<String>)> {
    let (paths, chosen) = match CHOSEN.get() {
        Some(p) => (p.clone(), true),
        None => (default_identities(), false),
    };
    let mut identities: Vec<Box<dyn age::Identity>> = Vec::new();
    let mut tried = Vec::new();
    for path in paths {
        match load_identity(&path) {
            Ok(mut found) => {
                tried.push(path.display().to_string());
                identities.append(&mut found);
            }
            Err(why) if chosen => {
                return Err(usage(format!("--identity {}: {why}", path.display())));
            }
            Err(why) => tracing::debug!("{}: {why}; not tried", path.display()),
        }
    }
    Ok((identities, tried))
}

fn load_identity(path: &Path) -> Result<Identities, String> {
    let mut text = String::new();
    File::open(path)
        .and_then(|f| f.take(1 << 20).read_to_string(&mut text))
        .map_err(|e| e.to_string())?;
    if text.contains("AGE-SECRET-KEY-") {
        return age::IdentityFile::from_buffer(BufReader::new(text.as_bytes()))
            .and_then(|f| f.into_identities().map_err(io::Error::other))
            .map_err(|e| format!("not an age identity file ({e})"));
    }
    let identity = age::ssh::Identity::from_buffer(
        BufReader::new(text.as_bytes()),
        Some(path.display().to_string()),
    )
    .map_err(|_| {
        "not a private key age can use (an age identity, or an unencrypted ssh-ed25519 or ssh-rsa key)"
            .to_owned()
    })?;
    match identity {
        age::ssh::Identity::Unencrypted(_) => Ok(vec![Box::new(identity)]),
        age::ssh::Identity::Encrypted(_) => Err(
            "the key is passphrase-protected, which bugpack cannot unlock; give an unprotected copy, or an age identity"
                .to_owned(),
        ),
        age::ssh::Identity::Unsupported(_) => {
            Err("age cannot decrypt with this kind of key (only ssh-ed25519 and ssh-rsa)".to_owned())
        }
    }
}

/// Decrypts the verified ciphertext at `ciphertext` into `plain`, writing
/// at most `max` bytes. No matching identity, a ciphertext that does not
/// authenticate, or a plaintext over `max` is a [`Rejection`].
pub(super) fn decrypt(
    outer: &Outer,
    ciphertext: &Path,
    plain: &Path,
    max: u64,
) -> anyhow::Result<()> {
    let (identities, tried) = load_identities()?;
    let to = outer.recipients.join(", ");
    let input = BufReader::new(File::open(ciphertext)?);
    let decryptor = age::Decryptor::new_buffered(input).map_err(|e| Rejection::Corrupt {
        entry: PAYLOAD.to_owned(),
        why: format!("not an age file ({e})"),
    })?;
    let reader = decryptor
        .decrypt(identities.iter().map(|i| i.as_ref() as &dyn age::Identity))
        .map_err(|e| match e {
            age::DecryptError::NoMatchingKeys => Rejection::Encrypted(format!(
                "it is encrypted to {to}, and none of the identities tried ({}) is one of them; pass --identity FILE with the private key of one",
                if tried.is_empty() {
                    "none found: no ~/.ssh/id_ed25519, ~/.ssh/id_rsa or bugpack key".to_owned()
                } else {
                    tried.join(", ")
                }
            )),
            other => Rejection::Corrupt {
                entry: PAYLOAD.to_owned(),
                why: format!("does not decrypt ({other}): tampered or truncated"),
            },
        })?;
    let mut out = io::BufWriter::new(
        File::create(plain).with_context(|| format!("cannot write {}", plain.display()))?,
    );
    let mut limited = reader.take(max + 1);
    let copied = io::copy(&mut limited, &mut out).map_err(|e| Rejection::Corrupt {
        entry: PAYLOAD.to_owned(),
        why: format!("does not decrypt ({e}): tampered or truncated"),
    })?;
    if copied > max {
        return Err(Rejection::TooLarge { total: copied, max }.into());
    }
    out.flush()?;
    Ok(())
}
