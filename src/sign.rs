//! Keys and signatures: OpenSSH SSHSIG over the exact bytes of
//! `bugpack.yaml`, namespace `bugpack`, so that `ssh-keygen -Y verify` and
//! `ssh-keygen -Y sign` interoperate with bugpack.
//!
//! The cryptography is `RustCrypto`'s `ssh-key`; this module only chooses
//! keys and trust. Ed25519 is the one key type: bugpack's own keys are
//! Ed25519 and so are most users' SSH keys today; RSA and ECDSA keys get a
//! clear error rather than a half-supported path. Passphrases come through
//! a caller's callback and are never logged; the module never prompts.

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
    AllowedSigners(Vec<AllowedSigner>, Option<String>),
}

/// One line of an `allowed_signers` file.
#[derive(Debug, Clone)]
pub struct AllowedSigner {
    pub principals: Vec<String>,
    pub namespaces: Option<Vec<String>>,
    pub key: PublicKey,
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

/// Checks the signature and that `trust` trusts its key.
pub fn verify(message: &[u8], armored: &[u8], trust: &Trust) -> Result<Signer, SignError> {
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
        Trust::AllowedSigners(lines, identity) => {
            let matching: Vec<&AllowedSigner> = lines
                .iter()
                .filter(|l| l.key.key_data() == key)
                .filter(|l| {
                    l.namespaces
                        .as_ref()
                        .is_none_or(|ns| ns.iter().any(|n| glob_match(n, NAMESPACE)))
                })
                .collect();
            if matching.is_empty() {
                return Err(SignError::Untrusted {
                    found: signer.fingerprint,
                    why: "is not in the allowed signers for namespace \"bugpack\"".into(),
                });
            }
            if let Some(id) = identity {
                if !matching
                    .iter()
                    .any(|l| l.principals.iter().any(|p| glob_match(p, id)))
                {
                    return Err(SignError::Untrusted {
                        found: signer.fingerprint,
                        why: format!("the allowed signers do not list for {id:?}"),
                    });
                }
                signer.identity = Some(id.clone());
            } else {
                let names: Vec<&str> = matching
                    .iter()
                    .flat_map(|l| l.principals.iter().map(String::as_str))
                    .collect();
                signer.identity = Some(names.join(","));
            }
        }
    }
    Ok(signer)
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
/// `principals [options] keytype base64 [comment]`. Certificate authorities
/// and expired entries are refused with the line number.
pub fn parse_allowed_signers(text: &str) -> Result<Vec<AllowedSigner>, String> {
    let mut out = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (principals, rest) = split_field(line);
        let rest = rest.trim_start();
        let (options, key_text) = if looks_like_key_type(rest) {
            ("", rest)
        } else {
            let (o, k) = split_field(rest);
            (o, k.trim_start())
        };
        let mut namespaces = None;
        for option in split_options(options) {
            let (name, value) = option.split_once('=').unwrap_or((option, ""));
            match name.to_ascii_lowercase().as_str() {
                "namespaces" => {
                    namespaces = Some(
                        value
                            .trim_matches('"')
                            .split(',')
                            .map(str::to_owned)
                            .collect(),
                    );
                }
                "cert-authority" => {
                    return Err(format!(
                        "line {}: cert-authority entries are not supported",
                        n + 1
                    ));
                }
                "valid-after" | "valid-before" => {}
                other if !other.is_empty() => {
                    return Err(format!("line {}: unknown option {other:?}", n + 1));
                }
                _ => {}
            }
        }
        let key = PublicKey::from_openssh(key_text)
            .map_err(|e| format!("line {}: not a public key ({e})", n + 1))?;
        out.push(AllowedSigner {
            principals: vec![principals.trim_matches('"').to_owned()],
            namespaces,
            key,
        });
    }
    Ok(out)
}

fn looks_like_key_type(text: &str) -> bool {
    text.starts_with("ssh-") || text.starts_with("ecdsa-") || text.starts_with("sk-")
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
        let key = PrivateKey::from_openssh(&text).map_err(|e| KeyError::Format {
            path: path.to_path_buf(),
            why: e.to_string(),
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
            "# comment\n\nalice@example.com {line}\n\"bob@example.com\" namespaces=\"git,bugpack\" {line}\ncarol@x namespaces=\"git\" {line}\n*@corp.example {line}\n"
        );
        let lines = parse_allowed_signers(&text).unwrap();
        assert_eq!(lines.len(), 4);
        assert_eq!(lines[1].principals, ["bob@example.com"]);
        assert_eq!(
            lines[1].namespaces.as_deref(),
            Some(&["git".to_owned(), "bugpack".to_owned()][..])
        );
        let sig = key.sign(b"m").unwrap();
        let ok = |id: &str| {
            verify(
                b"m",
                &sig,
                &Trust::AllowedSigners(lines.clone(), Some(id.into())),
            )
            .is_ok()
        };
        assert!(ok("alice@example.com"));
        assert!(ok("bob@example.com"));
        assert!(!ok("carol@x"), "carol's line is for git only");
        assert!(ok("dave@corp.example"));
        assert!(!ok("eve@example.com"));
        assert!(parse_allowed_signers(&format!("x cert-authority {line}")).is_err());
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
