//! `bugpack verify BUNDLE`: integrity (every entry's size and hash, no
//! missing or extra entry) and, when asked, the signature.

use std::io::Write as _;

use anyhow::Result;
use bugpack::bundle::{Bundle, Rejection};
use bugpack::error::Unavailable;
use serde::Serialize;

use super::Status;
use crate::settings::Verify;
use crate::terminal::{Style, Ui, human_size, printable};

/// `verify --json`'s output.
#[derive(Debug, Serialize)]
struct Verdict<'a> {
    bundle: String,
    sha256: String,
    intact: bool,
    files: usize,
    bytes: u64,
    signature: Signature<'a>,
}

#[derive(Debug, Serialize)]
struct Signature<'a> {
    state: &'a str,
}

pub(crate) fn run(settings: &Verify, ui: &Ui) -> Result<Status> {
    let bundle = Bundle::open(&settings.bundle, &settings.limits)?;
    if settings.trust.is_some() {
        return Err(
            Unavailable("checking signatures (--key, --allowed-signers, --github-keys)").into(),
        );
    }
    let signed = bundle.signature().is_some();
    if settings.require_signature && !signed {
        return Err(anyhow::Error::new(Rejection::Signature(
            "the bundle is unsigned and --require-signature was given".into(),
        ))
        .context(format!("{} rejected", settings.bundle.display())));
    }
    let state = if signed {
        "signed, not checked"
    } else {
        "unsigned"
    };
    let files = bundle.manifest().files.len();
    let bytes: u64 = bundle.manifest().files.iter().map(|f| f.size).sum();
    let sha256 = bundle.file_sha256()?;
    let mut out = std::io::stdout().lock();
    if settings.json {
        let verdict = Verdict {
            bundle: settings.bundle.display().to_string(),
            sha256,
            intact: true,
            files,
            bytes,
            signature: Signature { state },
        };
        serde_json::to_writer_pretty(&mut out, &verdict)?;
        writeln!(out)?;
        return Ok(Status::Success);
    }
    writeln!(
        out,
        "{}: {}, {state}",
        printable(&settings.bundle.display().to_string()),
        ui.paint(Style::Good, "intact")
    )?;
    writeln!(
        out,
        "  {} entries, {}, every size and SHA-256 matches the manifest",
        files + 1,
        human_size(bytes)
    )?;
    writeln!(out, "  sha256 {sha256}")?;
    Ok(Status::Success)
}
