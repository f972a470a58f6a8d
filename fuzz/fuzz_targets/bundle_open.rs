//! Arbitrary bytes as a bundle, through [`Bundle::open`], the entry point
//! `inspect`, `verify` and `replay` share, then what those commands do with
//! a bundle that opened: check its signature, read every listed entry, and
//! extract it.
//!
//! Oracles: no panic; every refusal is a rejection (exit 3), never an I/O
//! error or anything else (exit 4) — the bytes are all there is; a bundle
//! that opens has only safe names, and extracts into its temporary directory
//! and nowhere else.

#![no_main]

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use bugpack::bundle::{Bundle, Limits, check_entry_path, check_entry_place};
use bugpack::error::ErrorKind;
use libfuzzer_sys::fuzz_target;

/// A directory for the input file and, through TMPDIR, for extraction.
fn workdir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("bugpack-fuzz-bundle-")
            .tempdir()
            .expect("a temporary directory")
            .keep();
        fs::create_dir(dir.join("tmp")).expect("tmp");
        // SAFETY: set once, before the first input, while no other thread
        // reads the environment (libFuzzer's own threads never do).
        unsafe { std::env::set_var("TMPDIR", dir.join("tmp")) };
        dir
    })
}

fuzz_target!(|data: &[u8]| {
    let dir = workdir();
    let path = dir.join("input.zip");
    fs::write(&path, data).expect("write the input");
    let mut bundle = match Bundle::open(&path, &Limits::default()) {
        Ok(bundle) => bundle,
        Err(err) => {
            assert_eq!(
                ErrorKind::of(&err),
                ErrorKind::Rejected,
                "refused with the wrong exit code: {err:#}"
            );
            return;
        }
    };
    for entry in bundle.entries() {
        assert_eq!(check_entry_path(&entry.name), Ok(()), "{:?}", entry.name);
        assert_eq!(check_entry_place(&entry.name), Ok(()), "{:?}", entry.name);
    }
    // A signature that opened is one that verified.
    assert_eq!(bundle.signature().is_some(), bundle.signer().is_some());
    let listed: Vec<(String, u64)> = bundle
        .manifest()
        .files
        .iter()
        .map(|f| (f.path.clone(), f.size))
        .collect();
    for (name, size) in &listed {
        let bytes = bundle.read(name, u64::MAX).expect("a listed entry reads");
        assert_eq!(bytes.len() as u64, *size);
    }
    let extracted = bundle.extract(|_| true).expect("an opened bundle extracts");
    let root = extracted.path().canonicalize().expect("extraction dir");
    assert!(root.starts_with(dir.join("tmp").canonicalize().expect("tmp")));
    for (name, size) in &listed {
        let file = root.join(name);
        let meta = fs::symlink_metadata(&file).expect("an extracted file");
        assert!(meta.file_type().is_file(), "{name} is not a regular file");
        assert_eq!(meta.len(), *size);
        assert!(file.canonicalize().expect("resolves").starts_with(&root));
    }
    drop(extracted);
    assert_eq!(
        fs::read_dir(dir.join("tmp")).expect("tmp").count(),
        0,
        "extraction left files behind"
    );
});
