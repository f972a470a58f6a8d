//! Arbitrary bytes as a capture profile (`.bugpack.yaml`), through
//! [`profile::load`], the function `capture` calls.
//!
//! Oracles: no panic, and every refusal is a usage error (exit 2): a
//! profile is the user's own input, never a reason for exit 3 or 4.

#![no_main]

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use bugpack::capture::profile;
use bugpack::error::ErrorKind;
use libfuzzer_sys::fuzz_target;

fn workdir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        tempfile::Builder::new()
            .prefix("bugpack-fuzz-profile-")
            .tempdir()
            .expect("a temporary directory")
            .keep()
    })
}

fuzz_target!(|data: &[u8]| {
    let path = workdir().join(profile::FILE_NAME);
    fs::write(&path, data).expect("write the input");
    if let Err(err) = profile::load(&path) {
        assert_eq!(ErrorKind::of(&err), ErrorKind::Usage, "{err:#}");
    }
});
