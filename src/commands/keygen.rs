//! `bugpack keygen`: an Ed25519 key pair for signing bundles.

use std::fs::{self, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};

use anyhow::{Context as _, Result};
use bugpack::error::usage;
use bugpack::sign::SigningKey;

use super::Status;
use crate::settings::Keygen;
use crate::terminal::{Style, Ui};

pub(crate) fn run(settings: &Keygen, ui: &Ui) -> Result<Status> {
    let private = &settings.output;
    let mut public = private.as_os_str().to_owned();
    public.push(".pub");
    let public = std::path::PathBuf::from(public);
    if !settings.force && (private.exists() || public.exists()) {
        return Err(usage(format!(
            "{} already exists; pass --force to replace it (its signatures will no longer verify with the new key)",
            private.display()
        )));
    }
    if let Some(dir) = private.parent().filter(|d| !d.as_os_str().is_empty())
        && !dir.exists()
    {
        fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
            .with_context(|| format!("cannot set permissions on {}", dir.display()))?;
    }
    let key = SigningKey::generate("bugpack").context("cannot generate a key")?;
    let pem = key.private_pem().context("cannot encode the key")?;
    // Created with mode 0600 from the first byte, never widened later.
    if settings.force {
        let _ = fs::remove_file(private);
    }
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(private)
        .with_context(|| format!("cannot create {}", private.display()))?;
    file.write_all(pem.as_bytes())
        .with_context(|| format!("cannot write {}", private.display()))?;
    let line = key.public_line().context("cannot encode the public key")?;
    tracing::info!("wrote {}", private.display());
    fs::write(&public, format!("{line}\n"))
        .with_context(|| format!("cannot write {}", public.display()))?;
    tracing::info!("wrote {}", public.display());
    let mut out = ui.report();
    writeln!(
        out,
        "{} {}",
        ui.paint(Style::Good, "wrote"),
        private.display()
    )?;
    writeln!(out, "  public  {}", public.display())?;
    writeln!(out, "  {}", key.fingerprint())?;
    writeln!(out, "{line}")?;
    Ok(Status::Success)
}
