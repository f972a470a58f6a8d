//! `bugpack unmask BUNDLE_ID`: a text about a bundle (a maintainer's reply,
//! a log excerpt) read on stdin and written to stdout with the bundle's
//! pseudonyms back to the real values, from the map capture kept on this
//! machine. Nothing is sent anywhere; the map never leaves the machine.

use std::io::{Read as _, Write as _};

use anyhow::{Context as _, Result};
use bugpack::error::usage;
use bugpack::redact::pseudonym::Map;

use super::Status;
use crate::settings::Unmask;
use crate::terminal::Ui;

/// The most text read from stdin.
const MAX_INPUT: u64 = 64 << 20;

pub(crate) fn run(settings: &Unmask, _ui: &Ui) -> Result<Status> {
    let map = load(settings)?;
    let mut text = Vec::new();
    std::io::stdin()
        .lock()
        .take(MAX_INPUT)
        .read_to_end(&mut text)
        .context("cannot read stdin")?;
    let mut out = std::io::stdout().lock();
    out.write_all(&map.unmask(&text))
        .and_then(|()| out.flush())
        .context("cannot write to stdout")?;
    Ok(Status::Success)
}

/// The map whose bundle id is, or starts with, the id given.
fn load(settings: &Unmask) -> Result<Map> {
    let mut found = Vec::new();
    if let Ok(dir) = std::fs::read_dir(&settings.dir) {
        for entry in dir.flatten() {
            let name = entry.file_name();
            let Some(id) = name.to_str().and_then(|n| n.strip_suffix(".yaml")) else {
                continue;
            };
            if id.starts_with(&settings.id) {
                found.push(entry.path());
            }
        }
    }
    let path = match found.as_slice() {
        [one] => one.clone(),
        [] => {
            return Err(usage(format!(
                "no pseudonyms of bundle {} on this machine (looked in {}): unmask runs where the bundle was captured, as the user who captured it",
                settings.id,
                settings.dir.display()
            )));
        }
        _ => {
            return Err(usage(format!(
                "{} bundles have ids starting with {}: give more of the id",
                found.len(),
                settings.id
            )));
        }
    };
    Map::read(&path)
}
