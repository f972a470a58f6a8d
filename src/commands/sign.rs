//! `bugpack sign BUNDLE [--key PRIVKEY]`: add or replace the signature of a
//! verified bundle, rewriting it atomically with the same manifest bytes.

use std::io::{IsTerminal as _, Write as _};
use std::path::Path;

use anyhow::{Context as _, Result};
use bugpack::bundle::{Bundle, Content, RawBundle, RawFile};
use bugpack::error::usage;
use bugpack::sign::{self, KeyError, SigningKey};

use super::Status;
use crate::settings::Sign;
use crate::terminal::{Style, Ui};

pub(crate) fn run(settings: &Sign, ui: &Ui) -> Result<Status> {
    // Signing rewrites the bundle from its entries: an encrypted one would
    // come out decrypted. Its signature belongs inside, made at capture.
    let encrypted = || {
        bugpack::error::usage(format!(
            "{} is encrypted, and signing it now would write it decrypted: sign when capturing (bugpack capture --sign --encrypt-to ...)",
            settings.bundle.display()
        ))
    };
    let mut bundle = match Bundle::open(&settings.bundle, &settings.limits) {
        Ok(b) if b.encrypted_to().is_some() => return Err(encrypted()),
        Ok(b) => b,
        Err(e)
            if matches!(
                e.downcast_ref::<bugpack::bundle::Rejection>(),
                Some(bugpack::bundle::Rejection::Encrypted(_))
            ) =>
        {
            return Err(encrypted());
        }
        Err(e) => return Err(e),
    };
    let key = load_key(settings.key.as_deref())?;
    let signature = key.sign(bundle.manifest_bytes()).context("cannot sign")?;
    let dir = bundle.extract(|_| true)?;
    let executable: std::collections::HashSet<String> = bundle
        .entries()
        .iter()
        .filter(|e| e.executable)
        .map(|e| e.name.clone())
        .collect();
    let raw = RawBundle {
        manifest_bytes: bundle.manifest_bytes().to_vec(),
        signature: Some(signature),
        files: bundle
            .manifest()
            .files
            .iter()
            .map(|f| RawFile {
                path: f.path.clone(),
                sha256: f.sha256.clone(),
                content: Content::File(dir.path().join(&f.path)),
                executable: executable.contains(&f.path),
            })
            .collect(),
    };
    drop(bundle);
    let (size, sha256) = raw.write(&settings.bundle)?;
    tracing::info!("wrote {}", settings.bundle.display());
    let mut out = ui.report();
    writeln!(
        out,
        "{} {} with {}",
        ui.paint(Style::Good, "signed"),
        settings.bundle.display(),
        key.fingerprint()
    )?;
    writeln!(out, "  size    {}", crate::terminal::human_size(size))?;
    writeln!(out, "  sha256  {sha256}")?;
    Ok(Status::Success)
}

/// The signing key: `path`, or bugpack's own, or `~/.ssh/id_ed25519`.
/// Encrypted keys ask for their passphrase on a terminal.
pub(crate) fn load_key(path: Option<&Path>) -> Result<SigningKey> {
    let path = match path.filter(|p| !p.as_os_str().is_empty()) {
        Some(p) => p.to_path_buf(),
        None => sign::find_signing_key().ok_or_else(|| {
            usage("no signing key: make one with `bugpack keygen`, or pass --key PRIVKEY")
        })?,
    };
    tracing::info!("using the signing key {}", path.display());
    let ask = || {
        if std::io::stdin().is_terminal() && std::io::stderr().is_terminal() {
            rpassword::prompt_password(format!("Passphrase for {}: ", path.display())).ok()
        } else {
            None
        }
    };
    // Every way a key fails is about the key the user named: exit 2.
    SigningKey::load(&path, ask).map_err(|e: KeyError| usage(e.to_string()))
}
