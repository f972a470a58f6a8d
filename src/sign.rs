//! Keys and signatures: OpenSSH SSHSIG over the exact bytes of
//! `bugpack.yaml`, namespace `bugpack`, so that `ssh-keygen -Y verify` and
//! `ssh-keygen -Y sign` interoperate with bugpack.
//!
//! The cryptography is `RustCrypto`'s `ssh-key`; this module only chooses
//! keys and trust. Ed25519 is the one key type: bugpack's own keys are
//! Ed25519 and so are most users' SSH keys today; RSA and ECDSA keys get a
//! clear error rather than a half-supported path. Passphrases come through
//! a caller's callback and are never logged; the module never prompts.
//!
//! Trust in an `allowed_signers` file follows `ssh-keygen -Y verify` line
//! for line (principals, `namespaces`, `valid-after`, `valid-before`); it
//! must never trust a signature that OpenSSH would refuse.

use std::fmt;
use std::path::{Path, PathBuf};

use ssh_key::{Algorithm, HashAlg, LineEnding, PrivateKey, PublicKey, SshSig};

/// The SSHSIG namespace of bundle signatures.
pub const NAMESPACE: &str = "bugpack";

/// Why a signature or key was refused.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error("the signature is not an armored SSH signature: {0}")]
    Malformed(String),
    #[error("the signature is for namespace {0:?}, not \"bugpack\"")]
    Namespace(String),
    #[error(
        "the signature does not match bugpack.yaml (the manifest was changed, or the signature made for another one)"
    )]
    Invalid,
    #[error("the signature was made by {found}, which {why}")]
    Untrusted { found: String, why: String },
    #[error(
        "{0} keys are not supported: bugpack signs and verifies with Ed25519 keys (make one with `bugpack keygen`)"
    )]
    UnsupportedKey(String),
}

/// A checked signature: who made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signer {
    /// `SHA256:...`, as `ssh-keygen -l` prints it.
    pub fingerprint: String,
    /// The key, as an OpenSSH public key line.
    pub public_key: String,
    /// The principals that trust named, when it names any.
    pub identity: Option<String>,
}

/// Whom to trust.
#[derive(Debug, Clone)]
pub enum Trust {
    /// Exactly these keys (`--key`, `--github-keys`).
    Keys(Vec<PublicKey>),
    /// An OpenSSH `allowed_signers` file, optionally for one identity.
    AllowedSigners(AllowedSigners, Option<String>),
}

/// An OpenSSH `allowed_signers` file: the lines bugpack can use, and the
/// ones it had to pass over (with why), so that a refusal can say so.
#[derive(Debug, Clone, Default)]
pub struct AllowedSigners {
    pub lines: Vec<AllowedSigner>,
    pub skipped: Vec<SkippedLine>,
}

/// One usable line of an `allowed_signers` file.
#[derive(Debug, Clone)]
pub struct AllowedSigner {
    /// 1-based line number in the file.
    pub line: usize,
    /// The principals, an OpenSSH pattern list (`alice@x,*@corp.example`).
    pub principals: String,
    /// `namespaces="..."`: the pattern list of namespaces the key may sign for.
    pub namespaces: Option<String>,
    /// `valid-after`, in seconds since the epoch.
    pub valid_after: Option<i64>,
    /// `valid-before`, in seconds since the epoch.
    pub valid_before: Option<i64>,
    /// `cert-authority`: the key signs certificates, never bundles. Such a
    /// line trusts nothing here (bugpack does not accept certificate
    /// signatures), and a refusal names it.
    pub cert_authority: bool,
    pub key: PublicKey,
}

/// A line of an `allowed_signers` file that could not be read (OpenSSH
/// skips such lines too).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedLine {
    pub line: usize,
    pub why: String,
}

/// Parses and checks an armored signature against `message` and the key it
/// carries: is it intact and for our namespace? Says nothing about trust.
pub fn check(message: &[u8], armored: &[u8]) -> Result<(SshSig, Signer), SignError> {
    let sig = SshSig::from_pem(armored).map_err(|e| SignError::Malformed(e.to_string()))?;
    let key = PublicKey::from(sig.public_key().clone());
    if key.algorithm() != Algorithm::Ed25519 {
        return Err(SignError::UnsupportedKey(key.algorithm().to_string()));
    }
    if sig.namespace() != NAMESPACE {
        return Err(SignError::Namespace(
            sig.namespace().chars().take(40).collect(),
        ));
    }
    key.verify(NAMESPACE, message, &sig)
        .map_err(|_| SignError::Invalid)?;
    let signer = Signer {
        fingerprint: key.fingerprint(HashAlg::Sha256).to_string(),
        public_key: key.to_openssh().unwrap_or_default(),
        identity: None,
    };
    Ok((sig, signer))
}

/// Checks the signature and that `trust` trusts its key now.
pub fn verify(message: &[u8], armored: &[u8], trust: &Trust) -> Result<Signer, SignError> {
    verify_at(message, armored, trust, jiff::Timestamp::now().as_second())
}

/// [`verify`] at a given time (seconds since the epoch), which decides
/// `valid-after` and `valid-before`.
pub fn verify_at(
    message: &[u8],
    armored: &[u8],
    trust: &Trust,
    now: i64,
) -> Result<Signer, SignError> {
    let (sig, mut signer) = check(message, armored)?;
    let key = sig.public_key();
    match trust {
        Trust::Keys(keys) => {
            if !keys.iter().any(|k| k.key_data() == key) {
                return Err(SignError::Untrusted {
                    found: signer.fingerprint,
                    why: "is not a key you trust here".into(),
                });
            }
        }
        Trust::AllowedSigners(file, identity) => {
            let principals = file
                .trusting(key, identity.as_deref(), now)
                .map_err(|why| SignError::Untrusted {
                    found: signer.fingerprint.clone(),
                    why,
                })?;
            signer.identity = Some(identity.clone().unwrap_or(principals));
        }
    }
    Ok(signer)
}

impl AllowedSigners {
    /// The principals of the lines that trust `key` for namespace `bugpack`
    /// at `now` (for `identity` when given), as OpenSSH's `ssh-keygen -Y
    /// verify` decides: every line is tried, one that trusts is enough.
    /// Otherwise why not, naming the line that came closest.
    fn trusting(
        &self,
        key: &ssh_key::public::KeyData,
        identity: Option<&str>,
        now: i64,
    ) -> Result<String, String> {
        let mut trusted: Vec<&str> = Vec::new();
        // Why a line holding this very key did not trust it beats why a
        // cert-authority line could not.
        let mut closest: Option<String> = None;
        let mut ca_line: Option<String> = None;
        let mut note = |why: String| {
            closest.get_or_insert(why);
        };
        for l in &self.lines {
            if identity.is_some_and(|id| !glob_match(&l.principals, id)) {
                continue;
            }
            if l.cert_authority {
                ca_line.get_or_insert(format!(
                    "line {} is a cert-authority entry, which bugpack does not support: bundles are signed with plain keys, not certificates; list the signer's own key instead",
                    l.line
                ));
                continue;
            }
            if l.key.key_data() != key {
                continue;
            }
            if let Some(after) = l.valid_after.filter(|&t| t > now) {
                note(format!(
                    "line {} trusts it only from {} (valid-after), not yet",
                    l.line,
                    show_time(after)
                ));
                continue;
            }
            if let Some(before) = l.valid_before.filter(|&t| t < now) {
                note(format!(
                    "line {} trusted it only until {} (valid-before): the key has expired",
                    l.line,
                    show_time(before)
                ));
                continue;
            }
            if let Some(ns) = l
                .namespaces
                .as_deref()
                .filter(|ns| !glob_match(ns, NAMESPACE))
            {
                note(format!(
                    "line {} trusts it only for namespaces {:?}, not \"bugpack\"",
                    l.line,
                    printable_option(ns)
                ));
                continue;
            }
            trusted.push(&l.principals);
        }
        if !trusted.is_empty() {
            return Ok(trusted.join(","));
        }
        let mut why = closest.or(ca_line).unwrap_or_else(|| match identity {
            Some(id) => format!("the allowed signers do not list for {id:?}"),
            None => "is not in the allowed signers".to_owned(),
        });
        if let Some(s) = self.skipped.first() {
            why.push_str(&format!(
                "; line {} was skipped: {}{}",
                s.line,
                s.why,
                match self.skipped.len() {
                    1 => String::new(),
                    n => format!(" (and {} more lines)", n - 1),
                }
            ));
        }
        Err(why)
    }
}

/// An option value from a file, bounded for an error message.
fn printable_option(text: &str) -> String {
    text.chars().take(80).collect()
}

/// `2020-01-01 00:00:00 UTC`.
fn show_time(seconds: i64) -> String {
    jiff::Timestamp::from_second(seconds).map_or_else(
        |_| seconds.to_string(),
        |t| t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string(),
    )
}

/// OpenSSH's pattern matching for principals and namespaces: `*` and `?`,
/// and a comma list of patterns, any of which may match (`!` negates).
fn glob_match(patterns: &str, text: &str) -> bool {
    let mut matched = false;
    for pattern in patterns.split(',') {
        let (negate, pattern) = match pattern.strip_prefix('!') {
            Some(p) => (true, p),
            None => (false, pattern),
        };
        if wildcard(pattern.as_bytes(), text.as_bytes()) {
            if negate {
                return false;
            }
            matched = true;
        }
    }
    matched
}

fn wildcard(p: &[u8], t: &[u8]) -> bool {
    match (p.first(), t.first()) {
        (None, None) => true,
        (Some(b'*'), _) => wildcard(&p[1..], t) || (!t.is_empty() && wildcard(p, &t[1..])),
        (Some(b'?'), Some(_)) => wildcard(&p[1..], &t[1..]),
        (Some(a), Some(b)) if a == b => wildcard(&p[1..], &t[1..]),
        _ => false,
    }
}

/// Parses an `allowed_signers` file (`ssh-keygen(1)`, "ALLOWED SIGNERS"):
/// `principals [options] keytype base64 [comment]`, local times in the
/// system's time zone. Lines that cannot be read are skipped with why, as
/// OpenSSH does; a file with no usable line at all is an error.
pub fn parse_allowed_signers(text: &str) -> Result<AllowedSigners, String> {
    parse_allowed_signers_in(text, &jiff::tz::TimeZone::system())
}

/// [`parse_allowed_signers`] with local times read in `tz`.
pub fn parse_allowed_signers_in(
    text: &str,
    tz: &jiff::tz::TimeZone,
) -> Result<AllowedSigners, String> {
    let mut out = AllowedSigners::default();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim_start_matches([' ', '\t']);
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        match parse_allowed_signer(n + 1, line, tz) {
            Ok(signer) => out.lines.push(signer),
            Err(why) => out.skipped.push(SkippedLine { line: n + 1, why }),
        }
    }
    if out.lines.is_empty() {
        return Err(match out.skipped.first() {
            Some(s) => format!("no usable line; line {}: {}", s.line, s.why),
            None => "no allowed signer in it".to_owned(),
        });
    }
    Ok(out)
}

fn parse_allowed_signer(
    line_no: usize,
    line: &str,
    tz: &jiff::tz::TimeZone,
) -> Result<AllowedSigner, String> {
    let (principals, rest) = split_field(line);
    let principals = principals.trim_matches('"').to_owned();
    let rest = rest.trim_start();
    if principals.is_empty() || rest.is_empty() {
        return Err("not `principals [options] key`".into());
    }
    // As OpenSSH: what follows the principals is a key, or else options and then a key.
    let (options, key_text) = if PublicKey::from_openssh(rest.trim_end()).is_ok() {
        ("", rest.trim_end())
    } else {
        let (o, k) = split_field(rest);
        (o, k.trim())
    };
    let mut signer = AllowedSigner {
        line: line_no,
        principals,
        namespaces: None,
        valid_after: None,
        valid_before: None,
        cert_authority: false,
        key: PublicKey::from_openssh(key_text).map_err(|e| format!("not a public key ({e})"))?,
    };
    for option in split_options(options) {
        let (name, value) = match option.split_once('=') {
            Some((name, value)) => (name, Some(value)),
            None => (option, None),
        };
        let quoted = || {
            value
                .and_then(|v| v.strip_prefix('"'))
                .and_then(|v| v.strip_suffix('"'))
                .ok_or_else(|| format!("option {name}= needs a quoted value"))
        };
        let twice = || format!("{name} appears twice");
        match (name.to_ascii_lowercase().as_str(), value) {
            ("cert-authority", None) => signer.cert_authority = true,
            ("namespaces", Some(_)) => {
                if signer.namespaces.is_some() {
                    return Err(twice());
                }
                signer.namespaces = Some(quoted()?.to_owned());
            }
            ("valid-after", Some(_)) => {
                if signer.valid_after.is_some() {
                    return Err(twice());
                }
                signer.valid_after = Some(parse_ssh_time(quoted()?, tz).ok_or_else(|| {
                    format!(
                        "invalid valid-after time {:?}",
                        quoted().unwrap_or_default()
                    )
                })?);
            }
            ("valid-before", Some(_)) => {
                if signer.valid_before.is_some() {
                    return Err(twice());
                }
                signer.valid_before = Some(parse_ssh_time(quoted()?, tz).ok_or_else(|| {
                    format!(
                        "invalid valid-before time {:?}",
                        quoted().unwrap_or_default()
                    )
                })?);
            }
            _ => {
                return Err(format!("unsupported option {:?}", printable_option(option)));
            }
        }
    }
    if let (Some(after), Some(before)) = (signer.valid_after, signer.valid_before)
        && before <= after
    {
        return Err("valid-before is not after valid-after".into());
    }
    Ok(signer)
}

/// OpenSSH's absolute times (`parse_absolute_time`): `YYYYMMDD`,
/// `YYYYMMDDHHMM` or `YYYYMMDDHHMMSS`, in UTC with a `Z` or `UTC` suffix and
/// otherwise local time. Like OpenSSH, which fills `tm_isdst = 0` before
/// `mktime`, a local time is read as the zone's standard time, also in
/// summer. Returns seconds since the epoch; times before 1970 are invalid.
pub fn parse_ssh_time(text: &str, tz: &jiff::tz::TimeZone) -> Option<i64> {
    let upper = text.to_ascii_uppercase();
    let (digits, utc) = if let Some(d) = upper.strip_suffix("UTC").filter(|d| !d.is_empty()) {
        (d, true)
    } else if let Some(d) = upper.strip_suffix('Z').filter(|d| !d.is_empty()) {
        (d, true)
    } else {
        (upper.as_str(), false)
    };
    if !matches!(digits.len(), 8 | 12 | 14) || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let num = |range: std::ops::Range<usize>| -> Option<i16> {
        digits.get(range).map_or(Some(0), |s| s.parse().ok())
    };
    let dt = jiff::civil::DateTime::new(
        num(0..4)?,
        i8::try_from(num(4..6)?).ok()?,
        i8::try_from(num(6..8)?).ok()?,
        i8::try_from(num(8..10)?).ok()?,
        i8::try_from(num(10..12)?).ok()?,
        i8::try_from(num(12..14)?).ok()?,
        0,
    )
    .ok()?;
    let seconds = if utc {
        jiff::tz::Offset::UTC.to_timestamp(dt).ok()?.as_second()
    } else {
        let guess = tz.to_timestamp(dt).ok()?;
        let info = tz.to_offset_info(guess);
        let offset = if info.dst().is_dst() {
            tz.preceding(guess)
                .find(|t| !t.dst().is_dst())
                .map_or(info.offset(), |t| t.offset())
        } else {
            info.offset()
        };
        offset.to_timestamp(dt).ok()?.as_second()
    };
    (seconds > 0).then_some(seconds)
}

/// Splits at the first whitespace outside double quotes.
fn split_field(text: &str) -> (&str, &str) {
    let mut quoted = false;
    for (i, c) in text.char_indices() {
        match c {
            '"' => quoted = !quoted,
            c if c.is_whitespace() && !quoted => return (&text[..i], &text[i..]),
            _ => {}
        }
    }
    (text, "")
}

/// Splits `a,b="x,y",c` at commas outside quotes.
fn split_options(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut quoted = false;
    let mut start = 0;
    for (i, c) in text.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => {
                out.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if start < text.len() {
        out.push(&text[start..]);
    }
    out
}

/// Parses OpenSSH public key lines (a `--key` argument, a `.pub` file, or a
/// `https://github.com/USER.keys` file); blank and `#` lines are skipped.
pub fn parse_public_keys(text: &str) -> Result<Vec<PublicKey>, String> {
    let mut keys = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        keys.push(
            PublicKey::from_openssh(line)
                .map_err(|e| format!("line {}: not a public key ({e})", n + 1))?,
        );
    }
    if keys.is_empty() {
        return Err("no public key in it".into());
    }
    Ok(keys)
}

/// A private key ready to sign.
pub struct SigningKey {
    key: PrivateKey,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SigningKey({})", self.fingerprint())
    }
}

/// Why a private key could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not an OpenSSH private key ({why})")]
    Format { path: PathBuf, why: String },
    #[error("{path} is encrypted and no passphrase was given{hint}")]
    NeedsPassphrase { path: PathBuf, hint: &'static str },
    #[error("wrong passphrase for {path}")]
    WrongPassphrase { path: PathBuf },
    #[error(transparent)]
    Unsupported(#[from] SignError),
}

impl SigningKey {
    /// A new Ed25519 key.
    pub fn generate(comment: &str) -> Result<Self, ssh_key::Error> {
        let mut key = PrivateKey::random(&mut ssh_key::rand_core::OsRng, Algorithm::Ed25519)?;
        key.set_comment(comment);
        Ok(Self { key })
    }

    /// Loads an OpenSSH private key; `passphrase` is asked only when the
    /// key is encrypted (it returns `None` when no one can be asked).
    pub fn load(
        path: &Path,
        passphrase: impl FnOnce() -> Option<String>,
    ) -> Result<Self, KeyError> {
        let text = std::fs::read_to_string(path).map_err(|source| KeyError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let key = PrivateKey::from_openssh(&text).map_err(|e| {
            // ssh-key cannot read every key it would refuse anyway (one
            // ECDSA key in 256 has a short scalar), so name the algorithm
            // the key declares before calling it malformed.
            match declared_algorithm(&text) {
                Some(name) if name != Algorithm::Ed25519.as_str() => {
                    KeyError::from(SignError::UnsupportedKey(name))
                }
                _ => KeyError::Format {
                    path: path.to_path_buf(),
                    why: e.to_string(),
                },
            }
        })?;
        if key.algorithm() != Algorithm::Ed25519 {
            return Err(SignError::UnsupportedKey(key.algorithm().to_string()).into());
        }
        let key = if key.is_encrypted() {
            let Some(pass) = passphrase() else {
                return Err(KeyError::NeedsPassphrase {
                    path: path.to_path_buf(),
                    hint: "; run on a terminal to be asked for it",
                });
            };
            key.decrypt(pass.as_bytes())
                .map_err(|_| KeyError::WrongPassphrase {
                    path: path.to_path_buf(),
                })?
        } else {
            key
        };
        Ok(Self { key })
    }

    /// Signs `message` (the manifest's bytes): an armored SSHSIG, SHA-512.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, ssh_key::Error> {
        let sig = self.key.sign(NAMESPACE, HashAlg::Sha512, message)?;
        Ok(sig.to_pem(LineEnding::LF)?.into_bytes())
    }

    /// `SHA256:...` of the public key.
    pub fn fingerprint(&self) -> String {
        self.key.fingerprint(HashAlg::Sha256).to_string()
    }

    /// The public key line.
    pub fn public_line(&self) -> Result<String, ssh_key::Error> {
        self.key.public_key().to_openssh()
    }

    /// The private key in OpenSSH format (to be written with mode 0600),
    /// wiped from memory when dropped.
    pub fn private_pem(&self) -> Result<zeroize::Zeroizing<String>, ssh_key::Error> {
        self.key.to_openssh(LineEnding::LF)
    }
}

/// The algorithm an OpenSSH private key file names in its clear envelope
/// (`openssh-key-v1`, cipher, KDF, KDF options, key count, then the first
/// public key, whose first field is the algorithm), without reading the key.
fn declared_algorithm(text: &str) -> Option<String> {
    use base64::Engine as _;
    fn field<'a>(bytes: &mut &'a [u8]) -> Option<&'a [u8]> {
        let (len, rest) = bytes.split_first_chunk::<4>()?;
        let len = usize::try_from(u32::from_be_bytes(*len)).ok()?;
        let (value, rest) = (rest.get(..len)?, rest.get(len..)?);
        *bytes = rest;
        Some(value)
    }
    let body: String = text
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN OPENSSH PRIVATE KEY-----"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .collect();
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(body.trim())
        .ok()?;
    let mut rest = decoded.strip_prefix(b"openssh-key-v1\0")?;
    for _ in 0..3 {
        field(&mut rest)?;
    }
    rest = rest.get(4..)?;
    let mut public = field(&mut rest)?;
    let name = field(&mut public)?;
    std::str::from_utf8(name).ok().map(str::to_owned)
}

/// bugpack's own key: `$XDG_CONFIG_HOME/bugpack/id_ed25519`, else
/// `~/.config/bugpack/id_ed25519`.
pub fn default_key_path() -> Option<PathBuf> {
    let config = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(config.join("bugpack").join("id_ed25519"))
}

/// The key `sign` uses without `--key`: bugpack's own, else `~/.ssh/id_ed25519`.
pub fn find_signing_key() -> Option<PathBuf> {
    default_key_path().filter(|p| p.is_file()).or_else(|| {
        std::env::var_os("HOME")
            .map(|h| PathBuf::from(h).join(".ssh").join("id_ed25519"))
            .filter(|p| p.is_file())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_then_check_and_tamper() {
        let key = SigningKey::generate("test").unwrap();
        let sig = key.sign(b"format: bugpack/v1\n").unwrap();
        let (_, signer) = check(b"format: bugpack/v1\n", &sig).unwrap();
        assert_eq!(signer.fingerprint, key.fingerprint());
        assert!(matches!(
            check(b"format: bugpack/v2\n", &sig),
            Err(SignError::Invalid)
        ));
        assert!(matches!(
            check(b"x", &sig[..sig.len() / 2]),
            Err(SignError::Malformed(_))
        ));
    }

    #[test]
    fn trust_by_key() {
        let key = SigningKey::generate("a").unwrap();
        let other = SigningKey::generate("b").unwrap();
        let sig = key.sign(b"m").unwrap();
        let trusted = parse_public_keys(&key.public_line().unwrap()).unwrap();
        assert!(verify(b"m", &sig, &Trust::Keys(trusted)).is_ok());
        let wrong = parse_public_keys(&other.public_line().unwrap()).unwrap();
        assert!(matches!(
            verify(b"m", &sig, &Trust::Keys(wrong)),
            Err(SignError::Untrusted { .. })
        ));
    }

    #[test]
    fn allowed_signers_lines() {
        let key = SigningKey::generate("a").unwrap();
        let line = key.public_line().unwrap();
        let text = format!(
            "# comment\n\nalice@example.com {line}\n\"bob@example.com\" namespaces=\"git,bugpack\" {line}\ncarol@x namespaces=\"git\" {line}\n*@corp.example {line}\nneg@x namespaces=\"*,!bugpack\" {line}\n"
        );
        let file = parse_allowed_signers(&text).unwrap();
        assert_eq!(file.lines.len(), 5);
        assert_eq!(file.lines[1].principals, "bob@example.com");
        assert_eq!(file.lines[1].line, 4);
        assert_eq!(file.lines[1].namespaces.as_deref(), Some("git,bugpack"));
        let sig = key.sign(b"m").unwrap();
        let ok = |id: &str| {
            verify(
                b"m",
                &sig,
                &Trust::AllowedSigners(file.clone(), Some(id.into())),
            )
            .is_ok()
        };
        assert!(ok("alice@example.com"));
        assert!(ok("bob@example.com"));
        assert!(!ok("carol@x"), "carol's line is for git only");
        assert!(ok("dave@corp.example"));
        assert!(!ok("eve@example.com"));
        assert!(!ok("neg@x"), "a negated namespace excludes bugpack");
    }

    #[test]
    fn allowed_signers_times_and_bad_lines() {
        let key = SigningKey::generate("a").unwrap();
        let line = key.public_line().unwrap();
        let sig = key.sign(b"m").unwrap();
        let utc = jiff::tz::TimeZone::UTC;
        let at = |text: &str, now: i64| {
            let file = parse_allowed_signers_in(text, &utc).unwrap();
            verify_at(b"m", &sig, &Trust::AllowedSigners(file, None), now)
        };
        // 2020-01-01T00:00:00Z is 1577836800.
        let expiring = format!("a@x valid-before=\"20200101\" {line}");
        assert!(at(&expiring, 1_577_836_799).is_ok());
        let err = at(&expiring, 1_577_836_801).unwrap_err().to_string();
        assert!(err.contains("line 1") && err.contains("expired"), "{err}");
        let starting = format!("a@x valid-after=\"202001010000Z\" {line}");
        assert!(at(&starting, 1_577_836_799).is_err());
        assert!(at(&starting, 1_577_836_800).is_ok());
        // A cert-authority line never trusts a bundle, and says why.
        let ca = format!("a@x cert-authority {line}");
        let err = at(&ca, 1).unwrap_err().to_string();
        assert!(err.contains("cert-authority"), "{err}");
        // A bad line is skipped (as OpenSSH does) and named when trust fails.
        let text = format!("a@x valid-before=20200101 {line}\nb@y {line}\n");
        let file = parse_allowed_signers_in(&text, &utc).unwrap();
        assert_eq!(file.skipped[0].line, 1);
        assert!(file.skipped[0].why.contains("quoted"));
        assert!(parse_allowed_signers_in("only garbage here\n", &utc).is_err());
        assert!(
            parse_allowed_signers_in(
                &format!("a@x valid-after=\"20210101\",valid-before=\"20200101\" {line}"),
                &utc
            )
            .is_err()
        );
    }

    #[test]
    fn ssh_times() {
        let utc = jiff::tz::TimeZone::UTC;
        assert_eq!(parse_ssh_time("20200101", &utc), Some(1_577_836_800));
        assert_eq!(parse_ssh_time("202001010130Z", &utc), Some(1_577_842_200));
        assert_eq!(
            parse_ssh_time("20200101013005utc", &utc),
            Some(1_577_842_205)
        );
        for bad in ["2020011", "2020-01-01", "20201301", "19600101", "Z", ""] {
            assert_eq!(parse_ssh_time(bad, &utc), None, "{bad}");
        }
        // Local time, read as standard time even in summer (OpenSSH's mktime
        // with tm_isdst = 0): Berlin is UTC+1 in standard time.
        let berlin = jiff::tz::TimeZone::posix("CET-1CEST,M3.5.0,M10.5.0/3").unwrap();
        assert_eq!(
            parse_ssh_time("20200101", &berlin),
            Some(1_577_836_800 - 3600)
        );
        // 2020-07-01T00:00 read as UTC+1 (not CEST's +2).
        assert_eq!(
            parse_ssh_time("20200701", &berlin),
            Some(1_593_561_600 - 3600)
        );
    }

    #[test]
    fn globs() {
        assert!(glob_match("*@example.com", "a@example.com"));
        assert!(glob_match("a?c", "abc"));
        assert!(!glob_match("a?c", "ac"));
        assert!(glob_match("git,bugpack", "bugpack"));
        assert!(!glob_match("*,!bugpack", "bugpack"));
    }
}
