//! The bundle format `bugpack/v1`: a zip whose first entry, `bugpack.yaml`,
//! lists every other entry with its size and SHA-256.
//!
//! Every safety rule for reading a bundle lives in this module, once:
//! [`layout`] checks the zip's structure from raw bytes, [`reader`] checks the
//! manifest, the listing and every hash before anything is extracted, and
//! extracts only into a fresh temporary directory. [`writer`] makes bundles
//! that pass those rules byte-for-byte reproducibly. Nothing here trusts the
//! `zip` crate with a decision about safety.

pub mod crypt;
pub mod layout;
pub mod manifest;
pub mod reader;
pub mod writer;

pub use manifest::{FileEntry, Manifest, ScenarioRef};
pub use reader::{Bundle, Limits, sha256_stream};
pub use writer::{BundleWriter, Content, RawBundle, RawFile, Written};

/// The manifest's entry name; always the first entry.
pub const MANIFEST: &str = "bugpack.yaml";
/// The detached SSH signature over the manifest's exact bytes.
pub const SIGNATURE: &str = "bugpack.yaml.sig";
/// The only format this version reads and writes.
pub const FORMAT: &str = "bugpack/v1";
/// The scenario's own file inside a bundle.
pub const SCENARIO_FILE: &str = "scenario/scenario.yaml";

/// Top-level files a bundle may hold besides the manifest and signature.
const TOP_FILES: &[&str] = &["ISSUE.md", "steps.md"];
/// Top-level directories a bundle may hold.
const TOP_DIRS: &[&str] = &["config", "env", "git", "logs", "observed", "scenario"];
/// Deepest path a bundle entry may have, in components.
pub const MAX_PATH_DEPTH: usize = 32;
/// Longest entry name, in bytes.
pub const MAX_PATH_BYTES: usize = 1024;

/// Why a bundle was rejected (exit 3). Each message names the entry at fault.
#[derive(Debug, thiserror::Error)]
pub enum Rejection {
    #[error("the file is empty, not a bundle")]
    Empty,
    #[error("not a zip file: {0}")]
    NotZip(String),
    #[error("{0} unexpected bytes after the zip's end record (a polyglot or appended file)")]
    TrailingBytes(u64),
    #[error("{0} unexpected bytes before the first entry")]
    LeadingBytes(u64),
    #[error("unexpected bytes between entries, after entry {entry:?}")]
    Gap { entry: String },
    #[error("entry {entry:?} overlaps entry {other:?} (a zip bomb)")]
    Overlap { entry: String, other: String },
    #[error("the zip's record counts or offsets disagree: {0}")]
    Inconsistent(String),
    #[error("{0}: two zip tools would read two different archives")]
    Ambiguous(String),
    #[error("entry {entry:?}: {why}")]
    Unsupported { entry: String, why: String },
    #[error("entry {entry:?} has an unsafe path: {why}")]
    UnsafePath { entry: String, why: &'static str },
    #[error("entry {entry:?} is a {kind}, not a regular file")]
    NotRegular { entry: String, kind: &'static str },
    #[error("entry {entry:?} appears more than once")]
    Duplicate { entry: String },
    #[error("entries {entry:?} and {other:?} collide on a case-insensitive file system")]
    CaseCollision { entry: String, other: String },
    #[error("entry {entry:?} is both a file and a directory")]
    FileDirCollision { entry: String },
    #[error("entry {entry:?}: the central directory and the local header disagree on {field}")]
    HeaderMismatch { entry: String, field: &'static str },
    #[error(
        "{count} entries, over the limit of {max} (raise it with --max-entries if you trust this bundle)"
    )]
    TooManyEntries { count: u64, max: u64 },
    #[error(
        "entries add up to {total} bytes, over the limit of {max} (raise it with --max-size if you trust this bundle)"
    )]
    TooLarge { total: u64, max: u64 },
    #[error(
        "entry {entry:?} expands {ratio}x, over the limit of {max}x (a zip bomb; raise it with --max-ratio if you trust this bundle)"
    )]
    Ratio { entry: String, ratio: u64, max: u32 },
    #[error(
        "the bundle expands {ratio}x overall, over the limit of {max}x (a zip bomb; raise it with --max-ratio if you trust this bundle)"
    )]
    TotalRatio { ratio: u64, max: u32 },
    #[error("no {MANIFEST} manifest")]
    ManifestMissing,
    #[error("{file} {why}")]
    Yaml {
        file: String,
        why: crate::yaml::YamlError,
    },
    #[error("{file} breaks its schema {why}")]
    Schema { file: String, why: String },
    #[error(
        "unsupported format {found:?}: this bugpack reads {FORMAT}; a newer bugpack may read it"
    )]
    UnsupportedFormat { found: String },
    #[error("entry {entry:?} is not listed in the manifest")]
    Unlisted { entry: String },
    #[error("entry {entry:?} is listed in the manifest but missing from the zip")]
    Missing { entry: String },
    #[error("entry {entry:?} is listed twice in the manifest")]
    ListedTwice { entry: String },
    #[error("entry {entry:?} is {actual} bytes, the manifest says {listed}")]
    SizeMismatch {
        entry: String,
        listed: u64,
        actual: u64,
    },
    #[error("entry {entry:?} does not match its SHA-256 in the manifest (changed after capture)")]
    HashMismatch { entry: String },
    #[error("entry {entry:?} is corrupt: {why}")]
    Corrupt { entry: String, why: String },
    #[error("the manifest names scenario {listed:?} but {SCENARIO_FILE} names {found:?}")]
    ScenarioMismatch { listed: String, found: String },
    #[error("the manifest names a scenario but the bundle has no {SCENARIO_FILE}")]
    ScenarioMissing,
    #[error("{SCENARIO_FILE} is present but the manifest names no scenario")]
    ScenarioUnlisted,
    #[error("bad signature: {0}")]
    Signature(String),
    #[error("{0}")]
    Download(String),
    #[error("{0}")]
    Encrypted(String),
}

/// Characters that stand in for `/`, `\`, `.` or `:`: Windows' "best fit"
/// conversion to a legacy code page turns several into the real thing (so
/// `scenario/..\u{2215}..\u{2215}x` unzips elsewhere as a traversal), and all of
/// them make a name read as a path it is not. bugpack never needs them.
const LOOKALIKES: &[char] = &[
    '\u{2215}', // DIVISION SLASH
    '\u{2044}', // FRACTION SLASH
    '\u{29f8}', // BIG SOLIDUS
    '\u{ff0f}', // FULLWIDTH SOLIDUS
    '\u{2216}', // SET MINUS
    '\u{29f5}', // REVERSE SOLIDUS OPERATOR
    '\u{29f9}', // BIG REVERSE SOLIDUS
    '\u{fe68}', // SMALL REVERSE SOLIDUS
    '\u{ff3c}', // FULLWIDTH REVERSE SOLIDUS
    '\u{2024}', // ONE DOT LEADER
    '\u{2025}', // TWO DOT LEADER
    '\u{ff0e}', // FULLWIDTH FULL STOP
    '\u{ff1a}', // FULLWIDTH COLON
];

/// Checks an entry name against the path rules of DESIGN.md: relative,
/// `/`-separated, no `..` or `.`, no backslash, no drive letter, no control
/// characters, no look-alikes of `/`, `\`, `.` or `:`, bounded depth and
/// length. Writers and readers share it.
pub fn check_entry_path(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("the name is empty");
    }
    if name.len() > MAX_PATH_BYTES {
        return Err("the name is too long");
    }
    if name.contains('\\') {
        return Err("it contains a backslash");
    }
    if name.chars().any(char::is_control) {
        return Err("it contains a control character");
    }
    if name.contains(LOOKALIKES) {
        return Err("it contains a look-alike of `/`, `\\`, `.` or `:`");
    }
    if name.starts_with('/') {
        return Err("it is absolute");
    }
    let bytes = name.as_bytes();
    if bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':' {
        return Err("it starts with a drive letter");
    }
    if name.ends_with('/') {
        return Err("it names a directory");
    }
    let mut depth = 0;
    for part in name.split('/') {
        depth += 1;
        match part {
            "" => return Err("it has an empty path component"),
            "." => return Err("it has a `.` component"),
            ".." => return Err("it climbs out with `..`"),
            _ if part.len() > 255 => return Err("a path component is too long"),
            _ => {}
        }
    }
    if depth > MAX_PATH_DEPTH {
        return Err("it nests too deep");
    }
    Ok(())
}

/// Checks that `name` belongs in a bundle's layout (DESIGN.md "The bundle").
pub fn check_entry_place(name: &str) -> Result<(), &'static str> {
    // An encrypted bundle's payload; in any other bundle the manifest
    // would have to list it, and does not.
    if name == MANIFEST || name == SIGNATURE || name == crypt::PAYLOAD || TOP_FILES.contains(&name)
    {
        return Ok(());
    }
    match name.split_once('/') {
        Some((top, _)) if TOP_DIRS.contains(&top) => Ok(()),
        _ => Err("it is outside the bundle layout"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsafe_spellings_are_refused() {
        for bad in [
            "",
            "../x",
            "a/../b",
            "a/..",
            "/abs",
            "C:\\x",
            "c:x",
            "a\\..\\b",
            "./a",
            "a//b",
            "a/",
            "a/./b",
            "nul\0byte",
            "new\nline",
            "scenario/..\u{2215}..\u{2215}x",
            "scenario/..\u{ff0f}x",
            "scenario/..\u{ff3c}x",
            "scenario/\u{2025}/x",
            "C\u{ff1a}x",
        ] {
            assert!(check_entry_path(bad).is_err(), "{bad:?} passed");
        }
        let deep = vec!["d"; MAX_PATH_DEPTH + 1].join("/");
        assert!(check_entry_path(&deep).is_err());
    }

    #[test]
    fn ordinary_paths_pass() {
        for good in [
            "bugpack.yaml",
            "config/app/settings.ini",
            "logs/app.log",
            "scenario/..hidden",
            "scenario/a..b",
            "logs/2026-11-22T10:00.log",
            "config/caf\u{e9}/\u{8a2d}\u{5b9a}.ini",
            "scenario/%2e%2e%2fx",
        ] {
            assert_eq!(check_entry_path(good), Ok(()), "{good:?}");
        }
    }

    #[test]
    fn layout_places() {
        assert!(check_entry_place("env/system.yaml").is_ok());
        assert!(check_entry_place("ISSUE.md").is_ok());
        assert!(check_entry_place("evil.sh").is_err());
        assert!(check_entry_place("bin/evil").is_err());
    }
}
