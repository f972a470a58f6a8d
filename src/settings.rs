//! Each subcommand's flags resolved into a plain settings struct: defaults
//! filled, values parsed, conflicts rejected as usage errors (exit 2).
//!
//! Commands take only these structs, never clap's types. Resolution reads no
//! file except where a flag names one to be merged (the capture profile).

use std::path::PathBuf;

use anyhow::Result;
use bugpack::bundle::Limits;
use bugpack::error::usage;

use crate::cli;

/// `bugpack inspect`.
#[derive(Debug)]
pub(crate) struct Inspect {
    pub(crate) bundle: PathBuf,
    pub(crate) json: bool,
    pub(crate) limits: Limits,
}

impl Inspect {
    pub(crate) fn resolve(args: cli::InspectArgs) -> Result<Self> {
        Ok(Self {
            limits: limits(&args.limits)?,
            bundle: args.bundle,
            json: args.json,
        })
    }
}

/// Whom `bugpack verify` trusts.
#[derive(Debug, Clone)]
pub(crate) enum Trust {
    /// An OpenSSH public key line, or a file holding one.
    Key(String),
    AllowedSigners {
        file: PathBuf,
        identity: Option<String>,
    },
    GithubKeys(PathBuf),
}

/// `bugpack verify`.
#[derive(Debug)]
pub(crate) struct Verify {
    pub(crate) bundle: PathBuf,
    pub(crate) trust: Option<Trust>,
    pub(crate) require_signature: bool,
    pub(crate) json: bool,
    pub(crate) limits: Limits,
}

impl Verify {
    pub(crate) fn resolve(args: cli::VerifyArgs) -> Result<Self> {
        let trust = match (args.key, args.allowed_signers, args.github_keys) {
            (Some(key), None, None) => Some(Trust::Key(key)),
            (None, Some(file), None) => Some(Trust::AllowedSigners {
                file,
                identity: args.identity,
            }),
            (None, None, Some(file)) => Some(Trust::GithubKeys(file)),
            (None, None, None) => None,
            _ => {
                return Err(usage(
                    "give one of --key, --allowed-signers or --github-keys, not several",
                ));
            }
        };
        Ok(Self {
            limits: limits(&args.limits)?,
            bundle: args.bundle,
            trust,
            require_signature: args.require_signature,
            json: args.json,
        })
    }
}

/// Reader limits from their flags.
pub(crate) fn limits(args: &cli::LimitArgs) -> Result<Limits> {
    let max_total = parse_size(&args.max_size).ok_or_else(|| {
        usage(format!(
            "--max-size {:?}: use a size such as 1GiB or 500MB",
            args.max_size
        ))
    })?;
    if args.max_ratio == 0 || args.max_entries == 0 {
        return Err(usage("--max-ratio and --max-entries must be at least 1"));
    }
    Ok(Limits {
        max_total,
        max_ratio: args.max_ratio,
        max_entries: u64::from(args.max_entries),
    })
}

/// Parses `1GiB`, `500MB`, `64K`, `1048576`: binary units for `K`/`KiB`,
/// decimal ones for `KB`. Case-insensitive; spaces allowed before the unit.
pub(crate) fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let number: u64 = digits.parse().ok()?;
    let factor: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "kb" => 1_000,
        "m" | "mib" => 1 << 20,
        "mb" => 1_000_000,
        "g" | "gib" => 1 << 30,
        "gb" => 1_000_000_000,
        "t" | "tib" => 1 << 40,
        "tb" => 1_000_000_000_000,
        _ => return None,
    };
    number.checked_mul(factor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1GiB"), Some(1 << 30));
        assert_eq!(parse_size("500MB"), Some(500_000_000));
        assert_eq!(parse_size("64 k"), Some(65_536));
        assert_eq!(parse_size("1048576"), Some(1 << 20));
        assert_eq!(parse_size("1.5GiB"), None);
        assert_eq!(parse_size("lots"), None);
        assert_eq!(parse_size("99999999999999TiB"), None);
    }
}
