//! `bugpack verify BUNDLE`: integrity (every entry's size and hash, no
//! missing or extra entry) and the signature, against a trusted key when
//! one is given.

use std::io::Write as _;

use anyhow::{Context as _, Result};
use bugpack::bundle::{Bundle, Rejection};
use bugpack::error::usage;
use bugpack::sign::{self, Signer, Trust};
use serde::Serialize;

use super::Status;
use crate::settings::{self, Verify};
use crate::terminal::{Style, Ui, human_size, printable};

/// `verify --json`'s output.
#[derive(Debug, Serialize)]
struct Verdict {
    bundle: String,
    sha256: String,
    intact: bool,
    entries: usize,
    bytes: u64,
    signature: SignatureJson,
}

#[derive(Debug, Serialize)]
struct SignatureJson {
    /// `unsigned`, `valid` (intact, no trusted key given) or `trusted`.
    state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    fingerprint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    identity: Option<String>,
}

pub(crate) fn run(settings: &Verify, ui: &Ui) -> Result<Status> {
    let bundle = Bundle::open(&settings.bundle, &settings.limits)?;
    let trust = settings.trust.as_ref().map(load_trust).transpose()?;
    let rejected = |why: String| {
        anyhow::Error::new(Rejection::Signature(why))
            .context(format!("{} rejected", settings.bundle.display()))
    };
    let (state, signer): (&'static str, Option<Signer>) = match (bundle.signature(), &trust) {
        (None, None) if !settings.require_signature => ("unsigned", None),
        (None, _) => {
            return Err(rejected(
                "the bundle is unsigned, and a signature was required (--require-signature or a trusted key)".into(),
            ));
        }
        // Bundle::open has checked the signature over the manifest.
        (Some(_), None) => ("valid", bundle.signer().cloned()),
        (Some(sig), Some(trust)) => {
            let signer = sign::verify(bundle.manifest_bytes(), sig, trust)
                .map_err(|e| rejected(e.to_string()))?;
            ("trusted", Some(signer))
        }
    };
    let entries = bundle.manifest().files.len() + 1 + usize::from(bundle.signature().is_some());
    let bytes: u64 = bundle.manifest().files.iter().map(|f| f.size).sum();
    let sha256 = bundle.file_sha256()?;
    if settings.json {
        let verdict = Verdict {
            bundle: settings.bundle.display().to_string(),
            sha256,
            intact: true,
            entries,
            bytes,
            signature: SignatureJson {
                state,
                fingerprint: signer.as_ref().map(|s| s.fingerprint.clone()),
                identity: signer.as_ref().and_then(|s| s.identity.clone()),
            },
        };
        let mut text = serde_json::to_vec_pretty(&verdict)?;
        text.push(b'\n');
        std::io::stdout().lock().write_all(&text)?;
        return Ok(Status::Success);
    }
    // Under -q the exit code is the answer, as with `grep -q`.
    let mut out = ui.report();
    let words = match (&signer, state) {
        (None, _) => "unsigned".to_owned(),
        (Some(s), "valid") => format!(
            "signed by {} (not checked against a trusted key: pass --key, --allowed-signers or --github-keys)",
            s.fingerprint
        ),
        (Some(s), _) => match &s.identity {
            Some(id) => format!("signed by {} ({}), trusted", printable(id), s.fingerprint),
            None => format!("signed by {}, trusted", s.fingerprint),
        },
    };
    writeln!(
        out,
        "{}: {}, {words}",
        printable(&settings.bundle.display().to_string()),
        ui.paint(Style::Good, "intact")
    )?;
    writeln!(
        out,
        "  {entries} entries, {}, every size and SHA-256 matches the manifest",
        human_size(bytes)
    )?;
    writeln!(out, "  sha256 {sha256}")?;
    if let Some(to) = bundle.encrypted_to() {
        writeln!(
            out,
            "  encrypted to {}; decrypted here, and the checks above are the inner bundle's",
            printable(&to.join(", "))
        )?;
    }
    Ok(Status::Success)
}

/// Reads the trusted keys a flag names. Files the user names are usage errors when bad.
fn load_trust(trust: &settings::Trust) -> Result<Trust> {
    let read = |path: &std::path::Path| {
        tracing::info!("reading the trusted keys in {}", path.display());
        std::fs::read_to_string(path)
            .map_err(|e| usage(format!("cannot read {}: {e}", path.display())))
    };
    Ok(match trust {
        settings::Trust::Key(key) => {
            let text = if std::path::Path::new(key).is_file() {
                read(std::path::Path::new(key))?
            } else {
                key.clone()
            };
            Trust::Keys(sign::parse_public_keys(&text).map_err(|e| usage(format!("--key: {e}")))?)
        }
        settings::Trust::GithubKeys(path) => {
            let text = read(path)?;
            Trust::Keys(
                sign::parse_public_keys(&text)
                    .map_err(|e| usage(format!("--github-keys {}: {e}", path.display())))?,
            )
        }
        settings::Trust::AllowedSigners { file, identity } => {
            let text = read(file)?;
            let signers = sign::parse_allowed_signers(&text)
                .map_err(|e| usage(format!("--allowed-signers {}: {e}", file.display())))
                .context("reading the allowed signers")?;
            for skipped in &signers.skipped {
                tracing::info!(
                    "{}: line {} skipped: {}",
                    file.display(),
                    skipped.line,
                    skipped.why
                );
            }
            Trust::AllowedSigners(signers, identity.clone())
        }
    })
}
