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
        bugpack::bundle::crypt::use_identities(args.identities.identity.clone());
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
        // `--identity` names the signer with --allowed-signers (as
        // ssh-keygen's -I does), else the key that decrypts the bundle.
        let identity = match (&args.allowed_signers, args.identity) {
            (None, Some(file)) => {
                bugpack::bundle::crypt::use_identities(vec![PathBuf::from(file)]);
                None
            }
            (_, identity) => identity,
        };
        let trust = match (args.key, args.allowed_signers, args.github_keys) {
            (Some(key), None, None) => Some(Trust::Key(key)),
            (None, Some(file), None) => Some(Trust::AllowedSigners { file, identity }),
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

/// `bugpack capture`, with the profile merged in.
#[derive(Debug)]
pub(crate) struct Capture {
    pub(crate) request: bugpack::capture::Request,
    pub(crate) output: PathBuf,
    pub(crate) steps: Option<PathBuf>,
    pub(crate) redact: Vec<bugpack::redact::ExtraRule>,
    pub(crate) sign: Option<SignKey>,
    pub(crate) dry_run: bool,
    pub(crate) profile: Option<PathBuf>,
    /// `--encrypt-to` and the profile's `encrypt_to:`, as given.
    pub(crate) encrypt_to: Vec<String>,
    /// Who the user is, to pseudonymise; empty with `--no-pseudonyms`
    /// (then only the `--obfuscate` words).
    pub(crate) pseudonyms: bugpack::redact::pseudonym::Identity,
}

/// Which key `capture --sign` signs with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SignKey {
    /// `--sign`: bugpack's own key, else `~/.ssh/id_ed25519`.
    Default,
    /// `--sign KEY`.
    Path(PathBuf),
}

/// The default per-command timeout of `capture -- COMMAND`.
const CAPTURE_TIMEOUT: std::time::Duration = std::time::Duration::from_mins(1);

impl Capture {
    pub(crate) fn resolve(args: cli::CaptureArgs) -> Result<Self> {
        use bugpack::capture::{files, profile};
        use bugpack::scenario::{ExitSpec, ExpectFile};

        let Found {
            cwd,
            loaded,
            profile: prof,
            base,
        } = Found::profile(args.profile.as_deref())?;
        // What the command line names must be there; what the profile
        // names may be missing on this machine (skipped with a warning).
        let from_profile = |items: &[String]| -> Vec<files::Named<PathBuf>> {
            items
                .iter()
                .map(|p| files::Named::profile(base.join(p)))
                .collect()
        };
        let mut configs: Vec<_> = args
            .configs
            .iter()
            .cloned()
            .map(files::Named::typed)
            .collect();
        configs.extend(from_profile(&prof.config));
        let mut logs: Vec<_> = args.logs.iter().cloned().map(files::Named::typed).collect();
        logs.extend(
            prof.logs
                .iter()
                .map(|p| files::Named::profile(base.join(p).to_string_lossy().into_owned())),
        );
        let mut includes: Vec<_> = args
            .includes
            .iter()
            .cloned()
            .map(files::Named::typed)
            .collect();
        includes.extend(from_profile(&prof.include));
        let log_bytes = match args.log_bytes.as_deref().or(prof.log_bytes.as_deref()) {
            Some(text) => parse_size(text).ok_or_else(|| {
                usage(format!(
                    "--log-bytes {text:?}: use a size such as 1MiB or 200KB"
                ))
            })?,
            None => files::DEFAULT_LOG_BYTES,
        };
        let timeout = match args.timeout.as_deref().or(prof.timeout.as_deref()) {
            Some(text) => bugpack::scenario::parse_duration("--timeout", text).map_err(|_| {
                usage(format!(
                    "--timeout {text:?}: use a duration such as 30s or 5m"
                ))
            })?,
            None => CAPTURE_TIMEOUT,
        };
        let mut probes = args.probes.clone();
        probes.extend(prof.probe.iter().cloned());
        for url in &probes {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                // The URL itself may carry credentials: name its scheme only.
                let scheme = url.split_once("://").map_or("no scheme", |(s, _)| s);
                return Err(usage(format!(
                    "--probe: give an http:// or https:// URL (this one has {})",
                    if scheme == "no scheme" {
                        scheme.to_owned()
                    } else {
                        format!("{scheme}://")
                    }
                )));
            }
        }
        let mut env_deny = args.env_deny.clone();
        env_deny.extend(prof.env_deny.iter().cloned());
        for (i, re) in args.redact.iter().enumerate() {
            // The pattern may spell out the secret it hides: not echoed.
            regex::bytes::Regex::new(re).map_err(|e| {
                usage(format!(
                    "--redact (number {} of {}): not a valid regular expression: {}",
                    i + 1,
                    args.redact.len(),
                    regex_why(&e)
                ))
            })?;
        }
        let mut redact: Vec<bugpack::redact::ExtraRule> = args
            .redact
            .iter()
            .map(|re| bugpack::redact::ExtraRule {
                name: "custom".to_owned(),
                regex: re.clone(),
            })
            .collect();
        redact.extend(prof.redact.iter().map(profile::RedactRule::to_extra));
        let scenario_dir = args
            .scenario
            .clone()
            .or_else(|| prof.scenario.as_ref().map(|s| base.join(s)));

        let exit = match args.expect_exit.as_deref() {
            None => None,
            Some("nonzero") => Some(ExitSpec::Nonzero),
            Some(code) => Some(ExitSpec::Code(code.parse().map_err(|_| {
                usage(format!(
                    "--expect-exit {code:?}: give an exit code from 0 to 255, or `nonzero`"
                ))
            })?)),
        };
        if let Some(re) = &args.expect_output {
            regex::Regex::new(re).map_err(|e| {
                usage(format!(
                    "--expect-output {re:?}: not a valid regular expression: {}",
                    regex_why(&e)
                ))
            })?;
        }
        let expect = ExpectFile {
            hang: args.expect_hang.then_some(true),
            exit,
            output: args.expect_output.clone(),
        };
        if args.command.is_empty()
            && (args.no_run || expect != ExpectFile::default())
            && scenario_dir.is_none()
        {
            return Err(usage(
                "--no-run and --expect-* describe a command: give it after `--`, e.g. bugpack capture -- make test",
            ));
        }

        if args.trace_files && args.command.is_empty() {
            return Err(usage(
                "--trace-files traces a command: give it after `--`, e.g. bugpack capture --trace-files -- make test",
            ));
        }
        if args.trace_files
            && !args.dry_run
            && !args.no_run
            && !bugpack::capture::trace::strace_available()
        {
            return Err(usage(
                "--trace-files needs strace, which is not on PATH; install it (apt-get install strace) or leave the flag out",
            ));
        }
        let created = created_time()?;
        let output = args.output.clone().unwrap_or_else(|| {
            let stamp: String = created.chars().filter(char::is_ascii_digit).collect();
            PathBuf::from(format!("bugpack-{}-{}.zip", &stamp[..8], &stamp[8..14]))
        });
        if output.is_dir() {
            return Err(usage(format!(
                "-o {}: is a directory; name a file such as bug.zip",
                output.display()
            )));
        }
        if let Some(dir) = output.parent().filter(|p| !p.as_os_str().is_empty())
            && !dir.is_dir()
        {
            return Err(usage(format!(
                "-o {}: the directory {} does not exist; create it or write elsewhere",
                output.display(),
                dir.display()
            )));
        }
        if let Some(title) = &args.title
            && title.trim().is_empty()
        {
            return Err(usage(
                "--title is empty; give a one-line title, or leave the flag out",
            ));
        }
        let env = process_env();
        let mut words: Vec<String> = args.obfuscate.clone();
        words.extend(prof.obfuscate.iter().cloned());
        if let Some(w) = words.iter().find(|w| w.trim().is_empty()) {
            return Err(usage(format!(
                "--obfuscate {w:?}: give a word to replace, such as a customer or host name"
            )));
        }
        let mut encrypt_to = args.encrypt_to.clone();
        // A file a profile names is relative to the profile.
        encrypt_to.extend(prof.encrypt_to.iter().map(|r| {
            if bugpack::bundle::crypt::names_keys_itself(r) {
                r.clone()
            } else {
                base.join(r).display().to_string()
            }
        }));
        let mut pseudonyms = if args.no_pseudonyms {
            bugpack::redact::pseudonym::Identity::default()
        } else {
            bugpack::redact::pseudonym::Identity::of_machine(&env, std::path::Path::new("/"))
        };
        pseudonyms.words = words;
        let request = bugpack::capture::Request {
            title: args.title.clone().or_else(|| prof.title.clone()),
            created,
            steps: None,
            scenario_dir,
            configs,
            logs,
            log_bytes,
            includes,
            env_deny,
            probes,
            versions: prof.versions.clone().into_iter().collect(),
            command: args.command.clone(),
            run: !args.no_run && !args.dry_run,
            timeout,
            expect,
            cwd,
            env,
            system_root: PathBuf::from("/"),
            stdin: args.steps.as_deref() != Some(std::path::Path::new("-")),
            trace_files: args.trace_files,
        };
        Ok(Self {
            request,
            output,
            steps: args.steps,
            redact,
            sign: args
                .sign
                .map(|key| key.map_or(SignKey::Default, SignKey::Path)),
            dry_run: args.dry_run,
            profile: loaded.map(|l| l.path),
            pseudonyms,
            encrypt_to,
        })
    }
}

/// The last line of a regex error, which says what is wrong.
fn regex_why(e: &regex::Error) -> String {
    e.to_string()
        .lines()
        .last()
        .unwrap_or_default()
        .trim()
        .to_owned()
}

/// `created`: `SOURCE_DATE_EPOCH` when set (reproducible builds), else now.
fn created_time() -> Result<String> {
    let when = match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(text) => {
            // RFC 3339 stops at year 9999.
            let secs: u64 = text
                .trim()
                .parse()
                .ok()
                .filter(|&s| s <= 253_402_300_799)
                .ok_or_else(|| {
                    usage(format!(
                        "SOURCE_DATE_EPOCH={text:?}: expected seconds since 1970"
                    ))
                })?;
            std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs)
        }
        Err(_) => std::time::SystemTime::now(),
    };
    Ok(humantime::format_rfc3339_seconds(when).to_string())
}

/// Where `bugpack replay` takes its scenario from.
#[derive(Debug, Clone)]
pub(crate) enum ReplaySource {
    Bundle(PathBuf),
    Directory(PathBuf),
}

/// Where a report goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Sink {
    Stdout,
    File(PathBuf),
}

impl Sink {
    fn from_arg(path: Option<PathBuf>) -> Option<Self> {
        path.map(|p| {
            if p.as_os_str() == "-" {
                Self::Stdout
            } else {
                Self::File(p)
            }
        })
    }
}

/// Where a replay of a captured command runs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RepoChoice {
    /// In the repository around the current directory, when it has the
    /// bundle's commit; else in the scenario's files alone.
    Auto,
    /// `--repo DIR`.
    Dir(PathBuf),
    /// `--no-repo`.
    Off,
}

/// `bugpack replay`.
#[derive(Debug)]
pub(crate) struct Replay {
    pub(crate) source: ReplaySource,
    /// What to call the source in the report (a downloaded bundle's URL,
    /// rather than its path in the cache).
    pub(crate) shown_as: Option<String>,
    pub(crate) repo: RepoChoice,
    pub(crate) runs: u32,
    pub(crate) jobs: usize,
    pub(crate) timeout: Option<std::time::Duration>,
    pub(crate) timing: Vec<bugpack::replay::matrix::Timing>,
    pub(crate) proxy: Vec<String>,
    pub(crate) cache: Vec<bugpack::replay::matrix::Cache>,
    pub(crate) net_fault: Vec<String>,
    pub(crate) until_repro: bool,
    pub(crate) budget: Option<bugpack::replay::budget::Budget>,
    pub(crate) expect_fixed: bool,
    pub(crate) seed: u64,
    pub(crate) shard: Option<bugpack::shard::Shard>,
    pub(crate) keep: bool,
    pub(crate) net: Option<bugpack::replay::sandbox::Net>,
    pub(crate) yes: bool,
    pub(crate) json: Option<Sink>,
    pub(crate) markdown: Option<Sink>,
    pub(crate) rlimits: bugpack::replay::supervisor::Rlimits,
    pub(crate) limits: Limits,
}

impl Replay {
    pub(crate) fn resolve(args: cli::ReplayArgs) -> Result<Self> {
        use bugpack::replay::sandbox::Net;

        bugpack::bundle::crypt::use_identities(args.identities.identity.clone());

        let source = if args.source.is_dir() {
            if !args.source.join("scenario.yaml").is_file() {
                return Err(usage(format!(
                    "{} has no scenario.yaml; give a bundle (.zip) or a scenario directory",
                    args.source.display()
                )));
            }
            ReplaySource::Directory(args.source.clone())
        } else if args.source.exists() {
            ReplaySource::Bundle(args.source.clone())
        } else {
            return Err(usage(format!(
                "{}: no such file or directory; give a bundle (.zip) or a scenario directory",
                args.source.display()
            )));
        };
        let repo = match (&args.repo, args.no_repo) {
            (Some(dir), _) => {
                if matches!(source, ReplaySource::Directory(_)) {
                    return Err(usage(format!(
                        "--repo runs a captured bundle's command in a checkout; {} is a scenario directory, which carries its own files: replay it without --repo",
                        args.source.display()
                    )));
                }
                if !dir.is_dir() {
                    return Err(usage(format!(
                        "--repo {}: no such directory; give a clone of the user's project",
                        dir.display()
                    )));
                }
                RepoChoice::Dir(dir.clone())
            }
            (None, true) => RepoChoice::Off,
            (None, false) => RepoChoice::Auto,
        };
        let Matrix {
            runs,
            timeout,
            timing,
            proxy,
            cache,
            net_fault,
        } = Matrix::resolve(&args.matrix)?;
        let timeout = timeout.map(|(_, d)| d);
        let jobs = match args.jobs {
            Some(0) => return Err(usage("--jobs must be at least 1")),
            Some(n) => usize::try_from(n).unwrap_or(usize::MAX),
            None => std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
        };
        let shard = args
            .shard
            .as_deref()
            .map(bugpack::shard::Shard::parse)
            .transpose()
            .map_err(usage)?;
        if shard.is_some() && args.until_repro {
            return Err(usage(
                "--until-repro cannot be used with --shard: shards run apart and cannot stop each other, \
                 and a merged report would count runs that stopped at different points; drop one of them",
            ));
        }
        let budget = args
            .budget
            .as_deref()
            .map(bugpack::replay::budget::Budget::parse)
            .transpose()
            .map_err(usage)?;
        if budget.is_some() && shard.is_some() {
            return Err(usage(
                "--budget cannot be used with --shard: a budget spreads its runs by what the others found, \
                 which shards cannot see; give each shard --runs instead",
            ));
        }
        if budget.is_some() && cache.contains(&bugpack::replay::matrix::Cache::Warm) {
            return Err(usage(
                "--budget cannot be used with --cache warm: a warm cell's runs share their state in order, \
                 and a budget hands runs out one at a time; use --runs for warm cells",
            ));
        }
        let net = match args.net {
            None => None,
            Some(cli::NetMode::None) => Some(Net::None),
            Some(cli::NetMode::Loopback) => Some(Net::Loopback),
            Some(cli::NetMode::Host) => Some(Net::Host),
        };
        let seed = args.seed.unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos().into())
                ^ (u64::from(std::process::id()) << 32)
        });
        let size = |flag: &str, text: &str| {
            parse_size(text)
                .ok_or_else(|| usage(format!("{flag} {text:?}: use a size such as 1GiB")))
        };
        let rlimits = bugpack::replay::supervisor::Rlimits {
            // 0 leaves the limit as bugpack's own.
            address_space: match args.limit_memory.as_deref().map(str::trim) {
                None => bugpack::replay::supervisor::Rlimits::default_address_space(),
                Some("none" | "unlimited") => 0,
                Some(t) => match size("--limit-memory", t)? {
                    0 => {
                        return Err(usage(
                            "--limit-memory 0: give a size, or `none` for no limit",
                        ));
                    }
                    n => n,
                },
            },
            open_files: args.limit_files,
            processes: args.limit_procs,
            file_size: size("--limit-file-size", &args.limit_file_size)?,
        };
        let json = Sink::from_arg(args.json);
        let markdown = Sink::from_arg(args.markdown);
        if json == Some(Sink::Stdout) && markdown == Some(Sink::Stdout) {
            return Err(usage(
                "--json - and --markdown - cannot both write to stdout; give one a file",
            ));
        }
        Ok(Self {
            limits: limits(&args.limits)?,
            source,
            shown_as: None,
            repo,
            runs,
            jobs,
            timeout,
            timing,
            proxy,
            cache,
            net_fault,
            until_repro: args.until_repro,
            budget,
            expect_fixed: args.expect_fixed,
            seed,
            shard,
            keep: args.keep,
            net,
            yes: args.yes,
            json,
            markdown,
            rlimits,
        })
    }
}

/// A replay's matrix and run time limit, every value checked: the same
/// for `replay` and for the `ci` generators that write replays.
#[derive(Debug)]
pub(crate) struct Matrix {
    pub(crate) runs: u32,
    /// `--timeout` as given (for a generated command line) and as a duration.
    pub(crate) timeout: Option<(String, std::time::Duration)>,
    pub(crate) timing: Vec<bugpack::replay::matrix::Timing>,
    pub(crate) proxy: Vec<String>,
    pub(crate) cache: Vec<bugpack::replay::matrix::Cache>,
    /// `none` or network faults, each normalised (`latency:5:0` reads `latency:5`).
    pub(crate) net_fault: Vec<String>,
}

impl Matrix {
    pub(crate) fn resolve(args: &cli::MatrixArgs) -> Result<Self> {
        let runs = args.runs.unwrap_or(3);
        if runs == 0 {
            return Err(usage("--runs must be at least 1"));
        }
        let timeout = args
            .timeout
            .as_deref()
            .map(|t| {
                let t = t.trim();
                bugpack::scenario::parse_duration("--timeout", t)
                    .map(|d| (t.to_owned(), d))
                    .map_err(|_| {
                        usage(format!("--timeout {t:?}: use a duration such as 10s or 2m"))
                    })
            })
            .transpose()?;
        let (timing, proxy, cache) = axes(&args.timing, &args.proxy, &args.cache)?;
        let net_fault = args
            .net_fault
            .iter()
            .map(|n| {
                let n = n.trim();
                if n == "none" {
                    return Ok(n.to_owned());
                }
                n.parse::<bugpack::netfault::Toxic>()
                    .map(|t| t.to_string())
                    .map_err(|e| usage(format!("--net-fault: {e}")))
            })
            .collect::<Result<_>>()?;
        Ok(Self {
            runs,
            timeout,
            timing,
            proxy,
            cache,
            net_fault,
        })
    }
}

/// The three axis lists, each value checked.
fn axes(
    timing: &[String],
    proxy: &[String],
    cache: &[String],
) -> Result<(
    Vec<bugpack::replay::matrix::Timing>,
    Vec<String>,
    Vec<bugpack::replay::matrix::Cache>,
)> {
    use bugpack::replay::matrix::{Cache, Timing};

    let timing = timing
        .iter()
        .map(|t| {
            Timing::parse(t.trim()).ok_or_else(|| {
                usage(format!(
                    "--timing {t:?}: choose from none, slow, jitter, cpu1, load, trace, chaos, noise, quota[:PCT] (PCT of one CPU, 1 to 1000), delay"
                ))
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let cache = cache
        .iter()
        .map(|c| {
            Cache::parse(c.trim())
                .ok_or_else(|| usage(format!("--cache {c:?}: choose cold or warm")))
        })
        .collect::<Result<Vec<_>>>()?;
    let proxy: Vec<String> = proxy
        .iter()
        .map(|p| {
            let p = p.trim();
            if p == "none" {
                return Ok(p.to_owned());
            }
            // Normalised through the mode's own text: `slow:300` reads `slow`.
            p.parse::<bugpack::proxy::Mode>()
                .map(|m| m.to_string())
                .map_err(|e| usage(format!("--proxy: {e}")))
        })
        .collect::<Result<_>>()?;
    Ok((timing, proxy, cache))
}

/// `bugpack keygen`.
#[derive(Debug)]
pub(crate) struct Keygen {
    pub(crate) output: PathBuf,
    pub(crate) force: bool,
}

impl Keygen {
    pub(crate) fn resolve(args: cli::KeygenArgs) -> Result<Self> {
        let output = match args.output {
            Some(p) => p,
            None => bugpack::sign::default_key_path().ok_or_else(|| {
                usage("neither XDG_CONFIG_HOME nor HOME is set; pass --output PATH")
            })?,
        };
        Ok(Self {
            output,
            force: args.force,
        })
    }
}

/// `bugpack sign`.
#[derive(Debug)]
pub(crate) struct Sign {
    pub(crate) bundle: PathBuf,
    pub(crate) key: Option<PathBuf>,
    pub(crate) limits: Limits,
}

impl Sign {
    pub(crate) fn resolve(args: cli::SignArgs) -> Result<Self> {
        Ok(Self {
            limits: limits(&args.limits)?,
            bundle: args.bundle,
            key: args.key,
        })
    }
}

/// `bugpack report merge`.
#[derive(Debug)]
pub(crate) struct Merge {
    pub(crate) files: Vec<PathBuf>,
    pub(crate) json: Option<Sink>,
    pub(crate) markdown: Option<Sink>,
    pub(crate) expect_fixed: bool,
}

impl Merge {
    pub(crate) fn resolve(args: cli::MergeArgs) -> Result<Self> {
        let json = Sink::from_arg(args.json);
        let markdown = Sink::from_arg(args.markdown);
        if json == Some(Sink::Stdout) && markdown == Some(Sink::Stdout) {
            return Err(usage(
                "--json - and --markdown - cannot both write to stdout; give one a file",
            ));
        }
        Ok(Self {
            files: args.files,
            json,
            markdown,
            expect_fixed: args.expect_fixed,
        })
    }
}

/// Where `ci` installs bugpack from by default: Cargo.toml's `repository`.
const BUGPACK_REPOSITORY: &str = env!("CARGO_PKG_REPOSITORY");

/// What `bugpack ci github` and `bugpack ci k8s` both replay.
#[derive(Debug)]
pub(crate) struct CiReplay {
    pub(crate) bundle: PathBuf,
    pub(crate) shards: u32,
    /// `replay`'s own flags for the matrix, checked, in `replay`'s spelling.
    pub(crate) replay_args: Vec<String>,
    /// Units of work in the matrix (a warm cell is one): more shards sit idle.
    pub(crate) units: u64,
    /// The matrix has a `trace` cell, which needs strace where it runs.
    pub(crate) strace: bool,
    pub(crate) seed: Option<u64>,
    pub(crate) bundle_url: Option<String>,
    pub(crate) source: String,
    pub(crate) rev: Option<String>,
    pub(crate) force: bool,
    pub(crate) limits: Limits,
}

/// `bugpack ci github`.
#[derive(Debug)]
pub(crate) struct CiGithub {
    pub(crate) replay: CiReplay,
    /// `None`: the default path at the repository root.
    pub(crate) output: Option<Sink>,
    pub(crate) runs_on: String,
    pub(crate) expect_fixed: bool,
    /// The issue workflow (`--on-issue`) instead of one bundle's.
    pub(crate) on_issue: bool,
}

/// `bugpack ci k8s`.
#[derive(Debug)]
pub(crate) struct CiK8s {
    pub(crate) replay: CiReplay,
    pub(crate) output: Sink,
    pub(crate) name: String,
    pub(crate) image: String,
}

impl CiReplay {
    /// `on_issue`: no bundle or shards yet (the issue brings the bundles).
    fn resolve(
        args: cli::CiReplayArgs,
        max_shards: u32,
        engine: &str,
        on_issue: bool,
    ) -> Result<Self> {
        use bugpack::ci::check_text;

        let (bundle, shards) = if on_issue {
            (PathBuf::new(), args.shards.unwrap_or(1))
        } else {
            let Some(bundle) = args.bundle.clone() else {
                return Err(usage("give the bundle (.zip) to replay, and --shards N"));
            };
            let Some(shards) = args.shards else {
                return Err(usage(
                    "--shards N: how many shards to split the replay into",
                ));
            };
            (bundle, shards)
        };
        if shards == 0 || shards > max_shards {
            return Err(usage(format!(
                "--shards {shards}: {engine} runs from 1 to {max_shards} shards"
            )));
        }
        let Matrix {
            runs,
            timeout,
            timing,
            proxy,
            cache,
            net_fault,
        } = Matrix::resolve(&args.matrix)?;
        if args.jobs == Some(0) {
            return Err(usage("--jobs must be at least 1"));
        }
        let cells = bugpack::replay::matrix::cells(&timing, &proxy, &cache, &net_fault);
        let warm: Vec<bool> = cells
            .iter()
            .map(|c| c.cache == bugpack::replay::matrix::Cache::Warm)
            .collect();
        // What the shards split: a warm cell is one unit, a cold cell's runs one each.
        let units = bugpack::shard::units(&warm, runs).len() as u64;
        let strace = timing.contains(&bugpack::replay::matrix::Timing::Trace);
        let mut replay_args = vec!["--runs".to_owned(), runs.to_string()];
        let join = |items: Vec<String>| items.join(",");
        if !timing.is_empty() {
            replay_args.push("--timing".into());
            replay_args.push(join(timing.iter().map(ToString::to_string).collect()));
        }
        if !proxy.is_empty() {
            replay_args.push("--proxy".into());
            replay_args.push(join(proxy));
        }
        if !cache.is_empty() {
            replay_args.push("--cache".into());
            replay_args.push(join(cache.iter().map(ToString::to_string).collect()));
        }
        if !net_fault.is_empty() {
            replay_args.push("--net-fault".into());
            replay_args.push(join(net_fault));
        }
        if let Some((t, _)) = timeout {
            replay_args.push("--timeout".into());
            replay_args.push(t);
        }
        if let Some(j) = args.jobs {
            replay_args.push("--jobs".into());
            replay_args.push(j.to_string());
        }
        if let Some(url) = &args.bundle_url {
            check_text("--bundle-url", url).map_err(|e| usage(e.to_string()))?;
            let rest = url
                .strip_prefix("https://")
                .or_else(|| url.strip_prefix("http://"));
            let host = rest.map(|r| r.split(['/', '?', '#']).next().unwrap_or_default());
            match host {
                None | Some("") => {
                    return Err(usage(format!(
                        "--bundle-url {url:?}: give an http:// or https:// URL"
                    )));
                }
                Some(h) if h.contains('@') => {
                    return Err(usage(
                        "--bundle-url: the URL carries credentials, which would be written into the generated file; use a URL that needs none",
                    ));
                }
                Some(_) => {}
            }
        }
        let source = match args.bugpack_source {
            Some(s) => s,
            None if !BUGPACK_REPOSITORY.is_empty() => BUGPACK_REPOSITORY.to_owned(),
            None => {
                return Err(usage(
                    "this bugpack was built without a repository URL to install from; pass --bugpack-source GIT_URL",
                ));
            }
        };
        check_text("--bugpack-source", &source).map_err(|e| usage(e.to_string()))?;
        if let Some(rev) = &args.bugpack_rev {
            check_text("--bugpack-rev", rev).map_err(|e| usage(e.to_string()))?;
        }
        if !on_issue && !bundle.is_file() {
            return Err(usage(format!(
                "{}: no such bundle; give the bundle (.zip) to replay",
                bundle.display()
            )));
        }
        Ok(Self {
            limits: limits(&args.limits)?,
            bundle,
            shards,
            replay_args,
            units,
            strace,
            seed: args.seed,
            bundle_url: args.bundle_url,
            source,
            rev: args.bugpack_rev,
            force: args.force,
        })
    }
}

impl CiGithub {
    pub(crate) fn resolve(args: cli::GithubArgs) -> Result<Self> {
        bugpack::ci::check_text("--runs-on", &args.runs_on).map_err(|e| usage(e.to_string()))?;
        Ok(Self {
            replay: CiReplay::resolve(
                args.replay,
                if args.on_issue {
                    bugpack::ci::GITHUB_MAX_SHARDS / bugpack::ci::ISSUE_MAX_BUNDLES
                } else {
                    bugpack::ci::GITHUB_MAX_SHARDS
                },
                &if args.on_issue {
                    format!(
                        "the issue workflow (up to {} bundles in one matrix of {} jobs)",
                        bugpack::ci::ISSUE_MAX_BUNDLES,
                        bugpack::ci::GITHUB_MAX_SHARDS
                    )
                } else {
                    "a GitHub Actions matrix".to_owned()
                },
                args.on_issue,
            )?,
            output: Sink::from_arg(args.output),
            runs_on: args.runs_on,
            expect_fixed: args.expect_fixed,
            on_issue: args.on_issue,
        })
    }
}

impl CiK8s {
    pub(crate) fn resolve(args: cli::K8sArgs) -> Result<Self> {
        bugpack::ci::check_k8s_name(&args.name).map_err(|e| usage(e.to_string()))?;
        bugpack::ci::check_text("--image", &args.image).map_err(|e| usage(e.to_string()))?;
        Ok(Self {
            replay: CiReplay::resolve(
                args.replay,
                bugpack::ci::K8S_MAX_SHARDS,
                "an Indexed Job",
                false,
            )?,
            output: Sink::from_arg(Some(args.output)).unwrap_or(Sink::Stdout),
            name: args.name,
            image: args.image,
        })
    }
}

/// What `bugpack diff` compares A with.
#[derive(Debug, Clone)]
pub(crate) enum DiffOther {
    Bundle(PathBuf),
    /// This machine, gathered with capture's own code; `profile` is the
    /// profile that named version commands, configuration files and probes.
    Here {
        request: Box<bugpack::diff::Here>,
        profile: Option<PathBuf>,
    },
}

/// `bugpack diff`.
#[derive(Debug)]
pub(crate) struct Diff {
    pub(crate) a: PathBuf,
    pub(crate) b: DiffOther,
    pub(crate) json: bool,
    pub(crate) limits: Limits,
}

impl Diff {
    pub(crate) fn resolve(args: cli::DiffArgs) -> Result<Self> {
        bugpack::bundle::crypt::use_identities(args.identities.identity.clone());
        let b = match (args.b, args.here) {
            (Some(_), false) if args.profile.is_some() => {
                return Err(usage(
                    "--profile names what --here gathers; it does nothing with a second bundle",
                ));
            }
            (Some(path), false) => DiffOther::Bundle(path),
            (None, true) => here(args.profile.as_deref())?,
            _ => {
                return Err(usage(
                    "give a second bundle or --here (this machine), not both",
                ));
            }
        };
        Ok(Self {
            limits: limits(&args.limits)?,
            a: args.a,
            b,
            json: args.json,
        })
    }
}

/// `diff --here`: what capture would gather here, from the same profile.
fn here(profile_path: Option<&std::path::Path>) -> Result<DiffOther> {
    let Found {
        cwd,
        loaded,
        profile: prof,
        base,
    } = Found::profile(profile_path)?;
    let redact = prof
        .redact
        .iter()
        .map(bugpack::capture::profile::RedactRule::to_extra)
        .collect();
    let env = process_env();
    let request = bugpack::diff::Here {
        versions: prof.versions.clone().into_iter().collect(),
        configs: prof.config.iter().map(|p| base.join(p)).collect(),
        probes: prof.probe.clone(),
        env_deny: prof.env_deny.clone(),
        redact,
        env,
        cwd,
        system_root: PathBuf::from("/"),
    };
    Ok(DiffOther::Here {
        request: Box::new(request),
        profile: loaded.map(|l| l.path),
    })
}

/// `bugpack issue`.
#[derive(Debug)]
pub(crate) struct Issue {
    pub(crate) bundle: PathBuf,
    pub(crate) limits: Limits,
}

impl Issue {
    pub(crate) fn resolve(args: cli::IssueArgs) -> Result<Self> {
        bugpack::bundle::crypt::use_identities(args.identities.identity.clone());
        Ok(Self {
            limits: limits(&args.limits)?,
            bundle: args.bundle,
        })
    }
}

/// `bugpack proxy`.
#[derive(Debug)]
pub(crate) struct ProxyServe {
    pub(crate) config: bugpack::proxy::Config,
    pub(crate) listen: std::net::SocketAddr,
    /// `None`: stdout.
    pub(crate) log: Option<PathBuf>,
    pub(crate) json: bool,
}

impl ProxyServe {
    pub(crate) fn resolve(args: &cli::ProxyArgs) -> Result<Self> {
        let mode = match args.mode.as_str() {
            // Standalone, "no proxy" is a proxy that changes nothing.
            "none" => bugpack::proxy::Mode::Pass,
            other => other
                .parse()
                .map_err(|e| usage(format!("--mode {other:?}: {e}")))?,
        };
        let listen = args.listen.parse().map_err(|_| {
            usage(format!(
                "--listen {:?}: give an address and port, such as 127.0.0.1:8080 or [::1]:3128",
                args.listen
            ))
        })?;
        let mut config = bugpack::proxy::Config::new(mode);
        config.seed = args.seed;
        Ok(Self {
            config,
            listen,
            log: (args.log != std::path::Path::new("-")).then(|| args.log.clone()),
            json: args.json,
        })
    }
}

/// `bugpack unmask`.
#[derive(Debug)]
pub(crate) struct Unmask {
    /// The bundle's id, or a prefix of it, in lowercase hex.
    pub(crate) id: String,
    /// Where the maps are.
    pub(crate) dir: PathBuf,
}

impl Unmask {
    pub(crate) fn resolve(args: &cli::UnmaskArgs) -> Result<Self> {
        let dir = bugpack::redact::pseudonym::map_dir()
            .ok_or_else(|| usage("cannot find your data directory: set HOME or XDG_DATA_HOME"))?;
        let arg = args.bundle.trim();
        let id = if std::path::Path::new(arg).is_file() {
            let bundle = bugpack::bundle::Bundle::open(
                std::path::Path::new(arg),
                &bugpack::bundle::Limits::default(),
            )?;
            bundle.manifest().id.clone()
        } else {
            arg.to_ascii_lowercase()
        };
        // The id names a file: only hex, so it can never name another path.
        if id.len() < 8 || id.len() > 32 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(usage(format!(
                "{arg:?} is not a bundle id: give the id `bugpack inspect` shows (32 hex digits, or a unique prefix of 8 or more), or the bundle file"
            )));
        }
        Ok(Self { id, dir })
    }
}

/// What `bugpack init` writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum InitTarget {
    /// `.bugpack.yaml` in the current directory, and with `github` the issue form.
    Profile { github: bool },
    /// A starter scenario of `kind` copied into `dir`.
    Scenario { kind: String, dir: PathBuf },
}

/// `bugpack init`.
#[derive(Debug)]
pub(crate) struct Init {
    pub(crate) target: InitTarget,
    pub(crate) force: bool,
}

impl Init {
    pub(crate) fn resolve(args: cli::InitArgs) -> Result<Self> {
        let target = match args.scenario {
            None => InitTarget::Profile {
                github: args.github,
            },
            Some(values) => {
                let [kind, dir] = <[String; 2]>::try_from(values)
                    .map_err(|_| usage("--scenario takes a KIND and a DIR"))?;
                if !bugpack::starter::KINDS.contains(&kind.as_str()) {
                    return Err(usage(format!(
                        "--scenario {kind:?}: choose one of {}",
                        bugpack::starter::KINDS.join(", ")
                    )));
                }
                InitTarget::Scenario {
                    kind,
                    dir: PathBuf::from(dir),
                }
            }
        };
        Ok(Self {
            target,
            force: args.force,
        })
    }
}

/// `bugpack completions`.
#[derive(Debug)]
pub(crate) struct Completions {
    pub(crate) shell: clap_complete::Shell,
}

impl Completions {
    pub(crate) fn resolve(args: &cli::CompletionsArgs) -> Self {
        let shell = match args.shell {
            cli::CompletionShell::Bash => clap_complete::Shell::Bash,
            cli::CompletionShell::Zsh => clap_complete::Shell::Zsh,
            cli::CompletionShell::Fish => clap_complete::Shell::Fish,
            cli::CompletionShell::Powershell => clap_complete::Shell::PowerShell,
        };
        Self { shell }
    }
}

/// `bugpack man`.
#[derive(Debug)]
pub(crate) struct Man {
    /// Where to write one page per command; stdout (one page) when `None`.
    pub(crate) dir: Option<PathBuf>,
}

impl Man {
    pub(crate) fn resolve(args: cli::ManArgs) -> Self {
        Self { dir: args.dir }
    }
}

/// The profile capture and `diff --here` use: `explicit`, else the one found
/// from the current directory, else none.
struct Found {
    cwd: PathBuf,
    loaded: Option<bugpack::capture::profile::Loaded>,
    profile: bugpack::capture::profile::Profile,
    /// What the profile's paths are relative to (the current directory without one).
    base: PathBuf,
}

impl Found {
    fn profile(explicit: Option<&std::path::Path>) -> Result<Self> {
        use bugpack::capture::profile;

        let cwd = std::env::current_dir()
            .map_err(|e| anyhow::anyhow!("cannot read the current directory: {e}"))?;
        let loaded = match explicit {
            Some(path) => Some(profile::load(path)?),
            None => profile::find(&cwd).map(|p| profile::load(&p)).transpose()?,
        };
        let (profile, base) = match &loaded {
            Some(l) => (l.profile.clone(), l.base.clone()),
            None => (profile::Profile::default(), cwd.clone()),
        };
        Ok(Self {
            cwd,
            loaded,
            profile,
            base,
        })
    }
}

/// This process's environment, names and values lossily as UTF-8.
fn process_env() -> std::collections::BTreeMap<String, String> {
    std::env::vars_os()
        .map(|(k, v)| {
            (
                k.to_string_lossy().into_owned(),
                v.to_string_lossy().into_owned(),
            )
        })
        .collect()
}
