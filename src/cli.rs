//! The command line as clap sees it: derive structs only.
//!
//! Nothing here touches the disk or validates beyond what clap does; turning
//! these values into settings is `settings.rs`'s job.

use std::path::PathBuf;

use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};

/// Turn a bug report into something a maintainer can run.
///
/// `bugpack capture` packs configuration, environment, logs, steps and a
/// runnable scenario into one signed, redacted zip bundle. `bugpack replay`
/// verifies it and runs the scenario in isolation, many times, under a matrix
/// of timing, proxy and cache conditions.
#[derive(Debug, Parser)]
#[command(
    name = "bugpack",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) global: GlobalArgs,

    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Args)]
#[command(next_help_heading = "Global options")]
pub(crate) struct GlobalArgs {
    /// Say more about what bugpack does (repeat for more detail)
    #[arg(short, long, action = ArgAction::Count, global = true)]
    pub(crate) verbose: u8,

    /// Print only errors (and what --json asks for)
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub(crate) quiet: bool,

    /// When to use colour (honours `NO_COLOR`)
    #[arg(long, value_name = "WHEN", default_value = "auto", global = true)]
    pub(crate) color: ColorChoice,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Capture a bug report into a bundle
    Capture(CaptureArgs),
    /// Summarise a bundle: title, environment, scenario, files, redactions
    Inspect(InspectArgs),
    /// Check a bundle's integrity and signature
    Verify(VerifyArgs),
    /// Run a bundle's scenario (or a scenario directory) many times, in isolation
    Replay(ReplayArgs),
    /// Show the differences that matter between two environments
    Diff(DiffArgs),
    /// Make an Ed25519 key pair for signing bundles
    Keygen(KeygenArgs),
    /// Sign a bundle's manifest
    Sign(SignArgs),
    /// Print the GitHub issue text for a bundle
    Issue(IssueArgs),
    /// Put the real values back for a bundle's pseudonyms: reads stdin, writes stdout
    Unmask(UnmaskArgs),
    /// Run the replay's HTTP proxy in the foreground, logging every request
    Proxy(ProxyArgs),
    /// Write a capture profile (and with --github a GitHub issue form), or a starter scenario
    Init(InitArgs),
    /// Work with replay reports: merge the reports of a sharded replay
    #[command(subcommand)]
    Report(ReportCommand),
    /// Write CI configuration that runs a replay in shards (GitHub Actions, Kubernetes)
    #[command(subcommand)]
    Ci(CiCommand),
    /// Print a shell completion script (bash, zsh, fish, powershell)
    Completions(CompletionsArgs),
    /// Print the manual page (roff), or write one per command with --dir
    Man(ManArgs),
    /// (internal) Keep a job slot's namespaces and run each plan it is sent in fresh ones
    #[command(name = "__sandbox", hide = true)]
    Sandbox(SandboxArgs),
    /// (internal) Supervise a run's steps inside its sandbox
    #[command(name = "__supervise", hide = true)]
    Supervise,
}

#[derive(Debug, Args)]
pub(crate) struct SandboxArgs {
    #[arg(long)]
    pub(crate) net: String,
    #[arg(long)]
    pub(crate) probe: bool,
    /// With --probe: also mount an overlay of DIR/lower on DIR/merged
    #[arg(long, value_name = "DIR", requires = "probe")]
    pub(crate) overlay: Option<PathBuf>,
}

/// Limits a reader applies to a bundle before trusting anything in it.
#[derive(Debug, Clone, Args)]
pub(crate) struct LimitArgs {
    /// Reject bundles whose entries add up to more than this (e.g. 1GiB, 500MB)
    #[arg(long, value_name = "SIZE", default_value = "1GiB")]
    pub(crate) max_size: String,

    /// Reject entries compressed more than this many times (a zip bomb)
    #[arg(long, value_name = "RATIO", default_value_t = 200)]
    pub(crate) max_ratio: u32,

    /// Reject bundles with more entries than this
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pub(crate) max_entries: u32,
}

/// The keys readers decrypt an encrypted bundle with.
#[derive(Debug, Args)]
pub(crate) struct IdentityArgs {
    /// A private key that decrypts an encrypted bundle: an age identity
    /// file, or an unprotected ssh-ed25519 or ssh-rsa key (repeatable)
    /// [default: `~/.ssh/id_ed25519`, `~/.ssh/id_rsa` and bugpack's own key]
    #[arg(long = "identity", value_name = "FILE")]
    pub(crate) identity: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct CaptureArgs {
    /// Where to write the bundle [default: bugpack-<UTC yyyymmdd-hhmmss>.zip]
    #[arg(short, long, value_name = "FILE")]
    pub(crate) output: Option<PathBuf>,

    /// A one-line title for the report
    #[arg(long, value_name = "TEXT")]
    pub(crate) title: Option<String>,

    /// What you did, expected and saw, from FILE or `-` for stdin
    #[arg(long, value_name = "FILE|-")]
    pub(crate) steps: Option<PathBuf>,

    /// Pack this scenario directory (with its scenario.yaml) as the runnable scenario
    #[arg(long, value_name = "DIR")]
    pub(crate) scenario: Option<PathBuf>,

    /// A configuration file or directory to include, redacted (repeatable)
    #[arg(long = "config", value_name = "PATH")]
    pub(crate) configs: Vec<PathBuf>,

    /// A log file or glob whose tail to include, redacted (repeatable)
    #[arg(long = "log", value_name = "PATH")]
    pub(crate) logs: Vec<String>,

    /// How much of the end of each log to keep (e.g. 1MiB, 200KB)
    #[arg(long, value_name = "SIZE")]
    pub(crate) log_bytes: Option<String>,

    /// A file or directory the scenario needs, packed beside it (repeatable)
    #[arg(long = "include", value_name = "PATH")]
    pub(crate) includes: Vec<PathBuf>,

    /// Leave out environment variables whose names match (glob, repeatable)
    #[arg(long = "env-deny", value_name = "PATTERN")]
    pub(crate) env_deny: Vec<String>,

    /// An extra redaction rule: a regular expression (repeatable)
    #[arg(long = "redact", value_name = "REGEX")]
    pub(crate) redact: Vec<String>,

    /// A word to replace with a pseudonym everywhere in the bundle, e.g. a
    /// customer or project name (repeatable)
    #[arg(long = "obfuscate", value_name = "WORD")]
    pub(crate) obfuscate: Vec<String>,

    /// Keep the user name, host names, home directory and addresses as
    /// they are instead of replacing them with pseudonyms
    #[arg(long)]
    pub(crate) no_pseudonyms: bool,

    /// Encrypt the bundle to this key: an age recipient (age1...), an SSH
    /// public key (ssh-ed25519, ssh-rsa), a file of them, or github:USER
    /// (repeatable)
    #[arg(long = "encrypt-to", value_name = "RECIPIENT")]
    pub(crate) encrypt_to: Vec<String>,

    /// Fetch URL twice and record what the intermediaries say (repeatable)
    #[arg(long = "probe", value_name = "URL")]
    pub(crate) probes: Vec<String>,

    /// The capture profile [default: .bugpack.yaml here or at the repository root]
    #[arg(long, value_name = "FILE")]
    pub(crate) profile: Option<PathBuf>,

    /// Sign the bundle, with KEY or with bugpack's default key
    // clap's shape for a flag whose value is optional: absent, bare, or KEY.
    #[allow(clippy::option_option)]
    #[arg(long, value_name = "KEY", num_args = 0..=1)]
    pub(crate) sign: Option<Option<PathBuf>>,

    /// How long COMMAND may run before it counts as a hang [default: 60s]
    #[arg(long, value_name = "DUR")]
    pub(crate) timeout: Option<String>,

    /// The bug is a hang: the scenario reproduces when the run times out
    #[arg(long)]
    pub(crate) expect_hang: bool,

    /// The scenario reproduces when the run exits with CODE (or any nonzero code)
    #[arg(long, value_name = "CODE|nonzero")]
    pub(crate) expect_exit: Option<String>,

    /// The scenario reproduces when the run's output matches REGEX
    #[arg(long, value_name = "REGEX")]
    pub(crate) expect_output: Option<String>,

    /// Record COMMAND as the scenario without running it
    #[arg(long)]
    pub(crate) no_run: bool,

    /// Show what would be shared, with every redaction, and write nothing
    #[arg(long)]
    pub(crate) dry_run: bool,

    /// Run COMMAND a second time under strace and list the files it read
    /// outside the project (they are not packed)
    #[arg(long)]
    pub(crate) trace_files: bool,

    /// The command that shows the bug
    #[arg(last = true, value_name = "COMMAND")]
    pub(crate) command: Vec<String>,
}

#[derive(Debug, Args)]
pub(crate) struct InspectArgs {
    /// The bundle to inspect: a file, or an https:// URL
    pub(crate) bundle: PathBuf,

    /// With a URL: the SHA-256 the bundle must have (`sha256sum`'s hex); a
    /// cached copy is then used without downloading
    #[arg(long, value_name = "HEX")]
    pub(crate) sha256: Option<String>,

    /// Print the manifest as JSON
    #[arg(long)]
    pub(crate) json: bool,

    #[command(flatten)]
    pub(crate) limits: LimitArgs,

    #[command(flatten)]
    pub(crate) identities: IdentityArgs,
}

#[derive(Debug, Args)]
pub(crate) struct VerifyArgs {
    /// The bundle to verify: a file, or an https:// URL
    pub(crate) bundle: PathBuf,

    /// With a URL: the SHA-256 the bundle must have (`sha256sum`'s hex); a
    /// cached copy is then used without downloading
    #[arg(long, value_name = "HEX")]
    pub(crate) sha256: Option<String>,

    /// Trust this public key (an OpenSSH public key line, or a file holding one)
    #[arg(long, value_name = "PUBKEY", conflicts_with_all = ["allowed_signers", "github_keys"])]
    pub(crate) key: Option<String>,

    /// Trust the signers in this OpenSSH `allowed_signers` file
    #[arg(long, value_name = "FILE", conflicts_with = "github_keys")]
    pub(crate) allowed_signers: Option<PathBuf>,

    /// With --allowed-signers: the identity (principal) the signature must
    /// belong to. Without it: a private key FILE (an age identity, or an
    /// unprotected ssh-ed25519 or ssh-rsa key) that decrypts an encrypted bundle
    #[arg(long, value_name = "NAME|FILE")]
    pub(crate) identity: Option<String>,

    /// Trust the keys in a <https://github.com/USER.keys> file
    #[arg(long, value_name = "FILE")]
    pub(crate) github_keys: Option<PathBuf>,

    /// Reject a bundle that carries no signature
    #[arg(long)]
    pub(crate) require_signature: bool,

    /// Print the result as JSON
    #[arg(long)]
    pub(crate) json: bool,

    #[command(flatten)]
    pub(crate) limits: LimitArgs,
}

/// The matrix a replay runs and how long each run may take: the same
/// flags for `replay` and for the `ci` generators that write replays.
#[derive(Debug, Args)]
pub(crate) struct MatrixArgs {
    /// Runs per cell of the matrix [default: 3]
    #[arg(long, value_name = "N")]
    pub(crate) runs: Option<u32>,

    /// Per-run time limit, overriding the scenario's (e.g. 10s, 1m)
    #[arg(long, value_name = "DUR")]
    pub(crate) timeout: Option<String>,

    /// Timing conditions: none, slow, jitter, cpu1, load, trace, chaos, noise,
    /// quota[:PCT], delay
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub(crate) timing: Vec<String>,

    /// Proxy conditions: none, pass, cache, rfc, slow[:MS], flaky[:P], and the
    /// HTTP faults status:CODE[:P], truncate:BYTES, drop-header:NAME, stale:SECS
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub(crate) proxy: Vec<String>,

    /// Cache conditions: cold,warm
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub(crate) cache: Vec<String>,

    /// Network faults between clients and each service: none,
    /// latency:MS[:JITTER], bandwidth:KBPS, slow-close:MS, blackhole:MS,
    /// reset:BYTES, slice:BYTES
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub(crate) net_fault: Vec<String>,
}

#[derive(Debug, Args)]
pub(crate) struct ReplayArgs {
    /// A bundle (.zip, or an https:// URL) or a scenario directory
    #[arg(value_name = "BUNDLE_OR_SCENARIO_DIR")]
    pub(crate) source: PathBuf,

    /// With a URL: the SHA-256 the bundle must have (`sha256sum`'s hex); a
    /// cached copy is then used without downloading
    #[arg(long, value_name = "HEX")]
    pub(crate) sha256: Option<String>,

    #[command(flatten)]
    pub(crate) matrix: MatrixArgs,

    /// Runs at once [default: number of CPUs]
    #[arg(long, value_name = "N")]
    pub(crate) jobs: Option<u32>,

    /// Stop at the first reproduction
    #[arg(long)]
    pub(crate) until_repro: bool,

    /// Keep running the matrix until N runs or a duration (10m) are spent,
    /// giving more runs to the cells likelier to reproduce
    #[arg(long, value_name = "DUR|N")]
    pub(crate) budget: Option<String>,

    /// Run only one shard of the matrix: INDEX/COUNT, INDEX counting from 1
    ///
    /// 1/4, 2/4, 3/4 and 4/4 together run every run of the matrix exactly once,
    /// each with the seed it has in the whole replay (give them all the same
    /// --seed). INDEX counts from 1 as Jest, Playwright, Vitest and nextest
    /// count (0/4 is refused). A warm cell is never split. Merge the
    /// shards' --json reports with `bugpack report merge`. Not with
    /// --until-repro: shards cannot stop each other.
    #[allow(clippy::doc_markdown)] // help text, not rustdoc
    #[arg(long, value_name = "INDEX/COUNT")]
    pub(crate) shard: Option<String>,

    /// Succeed only when the bug reproduces in no run (for CI regression tests)
    #[arg(long)]
    pub(crate) expect_fixed: bool,

    /// Seed for every random choice, so that a replay can be repeated
    #[arg(long, value_name = "N")]
    pub(crate) seed: Option<u64>,

    /// Keep each run's directory and print its path
    #[arg(long)]
    pub(crate) keep: bool,

    /// The network a run sees [default: loopback where it can be made]
    #[arg(long, value_name = "MODE")]
    pub(crate) net: Option<NetMode>,

    /// Run the scenario without asking (required without a terminal)
    #[arg(short = 'y', long)]
    pub(crate) yes: bool,

    /// Write the report as JSON to FILE, or `-` for stdout
    #[arg(long, value_name = "FILE|-")]
    pub(crate) json: Option<PathBuf>,

    /// Write the report as Markdown to FILE, or `-` for stdout
    #[arg(long, value_name = "FILE|-")]
    pub(crate) markdown: Option<PathBuf>,

    /// Run a captured command in a checkout of DIR, a clone of the user's
    /// project: the bundle's commit, its uncommitted changes and untracked
    /// files, in a copy-on-write view per run (DIR is never changed)
    /// [default: the repository around the current directory, when it has
    /// the bundle's commit]
    #[arg(long, value_name = "DIR", conflicts_with = "no_repo")]
    pub(crate) repo: Option<PathBuf>,

    /// Replay the scenario alone, not in the repository around the current directory
    #[arg(long)]
    pub(crate) no_repo: bool,

    /// Address-space limit of every process of a run (e.g. 4GiB, or `none`)
    /// [default: half the machine's RAM, at least 4GiB]
    #[arg(long, value_name = "SIZE")]
    pub(crate) limit_memory: Option<String>,

    /// Open-file limit of every process of a run
    #[arg(long, value_name = "N", default_value_t = 4096)]
    pub(crate) limit_files: u64,

    /// Process limit of the sandbox user (where not root)
    #[arg(long, value_name = "N", default_value_t = 4096)]
    pub(crate) limit_procs: u64,

    /// Largest file a run may write
    #[arg(long, value_name = "SIZE", default_value = "1GiB")]
    pub(crate) limit_file_size: String,

    #[command(flatten)]
    pub(crate) limits: LimitArgs,

    #[command(flatten)]
    pub(crate) identities: IdentityArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum NetMode {
    /// No network at all
    None,
    /// Only a loopback interface of the run's own
    Loopback,
    /// The host's network
    Host,
}

#[derive(Debug, Args)]
pub(crate) struct DiffArgs {
    /// The first bundle: a file, or an https:// URL
    pub(crate) a: PathBuf,

    /// The second bundle: a file, or an https:// URL
    #[arg(required_unless_present = "here", conflicts_with = "here")]
    pub(crate) b: Option<PathBuf>,

    /// Compare with this machine instead of a second bundle
    #[arg(long)]
    pub(crate) here: bool,

    /// With --here: the capture profile naming versions, configs and probes
    /// [default: .bugpack.yaml here or at the repository root]
    #[arg(long, value_name = "FILE")]
    pub(crate) profile: Option<PathBuf>,

    /// Print the differences as JSON
    #[arg(long)]
    pub(crate) json: bool,

    #[command(flatten)]
    pub(crate) limits: LimitArgs,

    #[command(flatten)]
    pub(crate) identities: IdentityArgs,
}

#[derive(Debug, Args)]
pub(crate) struct KeygenArgs {
    /// Where to write the private key (the public key goes to PATH.pub)
    #[arg(short, long, value_name = "PATH")]
    pub(crate) output: Option<PathBuf>,

    /// Overwrite an existing key
    #[arg(long)]
    pub(crate) force: bool,
}

#[derive(Debug, Args)]
pub(crate) struct SignArgs {
    /// The bundle to sign (rewritten in place)
    pub(crate) bundle: PathBuf,

    // `help` rather than a doc comment: rustdoc lints would put backticks
    // into the path, and clap prints them.
    #[arg(
        long,
        value_name = "PRIVKEY",
        help = "The private key [default: bugpack's key, else ~/.ssh/id_ed25519]"
    )]
    pub(crate) key: Option<PathBuf>,

    #[command(flatten)]
    pub(crate) limits: LimitArgs,
}

#[derive(Debug, Args)]
pub(crate) struct IssueArgs {
    /// The bundle
    pub(crate) bundle: PathBuf,

    #[command(flatten)]
    pub(crate) limits: LimitArgs,

    #[command(flatten)]
    pub(crate) identities: IdentityArgs,
}

#[derive(Debug, Args)]
pub(crate) struct ProxyArgs {
    /// What the proxy does: none or pass (forward untouched), cache (store
    /// every 200 GET and serve it forever: the misconfigured cache), rfc (an
    /// RFC 9111 shared cache), slow[:MS] (add latency), flaky[:P] (reset a
    /// share of connections), status:CODE[:P] (answer CODE in place of the
    /// origin), truncate:BYTES (cut bodies short), drop-header:NAME (remove
    /// a response header), stale:SECS (serve stored copies for SECS seconds
    /// whatever their headers say)
    #[arg(long, value_name = "MODE")]
    pub(crate) mode: String,

    /// The address to listen on
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    pub(crate) listen: String,

    /// Where to write one line per request: a file, or `-` for stdout
    #[arg(long, value_name = "FILE|-", default_value = "-")]
    pub(crate) log: PathBuf,

    /// Log JSON lines instead of text
    #[arg(long)]
    pub(crate) json: bool,

    /// Seed for slow's jitter and flaky's resets
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub(crate) seed: u64,
}

#[derive(Debug, Args)]
pub(crate) struct UnmaskArgs {
    /// The bundle's id (`bugpack inspect` shows it; a unique prefix of 8 or
    /// more characters will do), or the bundle file itself
    #[arg(value_name = "BUNDLE_ID")]
    pub(crate) bundle: String,
}

#[derive(Debug, Args)]
pub(crate) struct InitArgs {
    #[arg(
        long,
        help = "Also write a GitHub issue form (.github/ISSUE_TEMPLATE/bug_report.yml)"
    )]
    pub(crate) github: bool,

    /// Write a runnable starter scenario of KIND into DIR instead of a profile
    /// (KIND: http-poll, deadlock, subprocess, race, timeout)
    #[arg(
        long,
        num_args = 2,
        value_names = ["KIND", "DIR"],
        conflicts_with = "github"
    )]
    pub(crate) scenario: Option<Vec<String>>,

    /// Overwrite existing files without asking
    #[arg(long)]
    pub(crate) force: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum ReportCommand {
    /// Merge the JSON reports of a sharded replay into one report
    ///
    /// The reports must come from one replay: the same bundle (SHA-256) or
    /// scenario directory (digest of its files), matrix, runs, timeout, seed
    /// and bugpack version, and no shard twice. Missing shards are allowed
    /// with a warning, and the merged report names them. A file may also be
    /// a log holding reports between `-----BEGIN BUGPACK REPORT-----` and
    /// `-----END BUGPACK REPORT-----` lines (`bugpack ci k8s` pods print
    /// theirs so). Exits as replay does: 0 reproduced, 1 not reproduced.
    Merge(MergeArgs),
}

#[derive(Debug, Args)]
pub(crate) struct MergeArgs {
    /// The shards' JSON reports (or logs holding them)
    #[arg(value_name = "FILE", required = true)]
    pub(crate) files: Vec<PathBuf>,

    /// Write the merged report as JSON to FILE, or `-` for stdout
    #[arg(long, value_name = "FILE|-")]
    pub(crate) json: Option<PathBuf>,

    /// Write the merged report as Markdown to FILE, or `-` for stdout
    #[arg(long, value_name = "FILE|-")]
    pub(crate) markdown: Option<PathBuf>,

    /// Succeed only when the bug reproduced in no run, no run errored and no shard is missing
    #[arg(long)]
    pub(crate) expect_fixed: bool,
}

#[allow(clippy::doc_markdown)] // help text, not rustdoc
#[derive(Debug, Subcommand)]
pub(crate) enum CiCommand {
    /// Write a GitHub Actions workflow that replays a bundle in N shards
    ///
    /// A build job installs bugpack once (`cargo install --locked --git
    /// SOURCE`); a matrix job replays each shard (`--shard INDEX/N`, with the
    /// workflow run's id as the shared seed unless --seed is given) and uploads
    /// its JSON report; a final job merges them with `bugpack report merge`
    /// and posts the Markdown to the job summary.
    Github(GithubArgs),
    /// Write a Kubernetes Indexed Job (and the bundle's ConfigMap) that replays a bundle in N shards
    ///
    /// Each pod runs shard $JOB_COMPLETION_INDEX+1 of N and prints its JSON report
    /// between marker lines; merge them with `bugpack report merge` on the
    /// pods' logs (see the README).
    K8s(K8sArgs),
}

/// What every generated configuration replays, and how.
#[allow(clippy::doc_markdown)] // help text, not rustdoc
#[derive(Debug, Args)]
pub(crate) struct CiReplayArgs {
    /// The bundle to replay (checked now; its SHA-256 is pinned when fetched from --bundle-url)
    pub(crate) bundle: Option<PathBuf>,

    /// How many shards to split the replay into (with --on-issue: of each
    /// bundle, default 1)
    #[arg(long, value_name = "N")]
    pub(crate) shards: Option<u32>,

    #[command(flatten)]
    pub(crate) matrix: MatrixArgs,

    /// Runs at once within each shard [default: the machine's CPUs]
    #[arg(long, value_name = "N")]
    pub(crate) jobs: Option<u32>,

    /// The seed every shard shares [github default: the workflow run's id; k8s default: chosen now]
    #[arg(long, value_name = "N")]
    pub(crate) seed: Option<u64>,

    /// Fetch the bundle from URL (checked against its SHA-256) instead of the repository or a ConfigMap
    #[arg(long, value_name = "URL")]
    pub(crate) bundle_url: Option<String>,

    /// The git repository to install bugpack from with `cargo install --locked --git`
    /// [default: the `repository` in bugpack's Cargo.toml; required when it names none]
    #[arg(long, value_name = "URL")]
    pub(crate) bugpack_source: Option<String>,

    /// A tag, branch or commit of --bugpack-source to install [default: its default branch]
    #[arg(long, value_name = "REV")]
    pub(crate) bugpack_rev: Option<String>,

    /// Overwrite the output file if it exists
    #[arg(long)]
    pub(crate) force: bool,

    #[command(flatten)]
    pub(crate) limits: LimitArgs,
}

#[derive(Debug, Args)]
pub(crate) struct GithubArgs {
    #[command(flatten)]
    pub(crate) replay: CiReplayArgs,

    /// Where to write the workflow, or `-` for stdout [default: .github/workflows/bugpack-replay.yml at the repository root]
    #[arg(short, long, value_name = "FILE|-")]
    pub(crate) output: Option<PathBuf>,

    /// The runner label of every job
    #[arg(long, value_name = "LABEL", default_value = "ubuntu-latest")]
    pub(crate) runs_on: String,

    /// The merge job succeeds only when the bug reproduced nowhere (a regression check)
    #[arg(long)]
    pub(crate) expect_fixed: bool,

    /// Instead: a workflow that, when an issue is opened, edited or labelled,
    /// replays every bundle attached to it (the matrix flags apply) and
    /// comments the results, replacing its own earlier comment; --shards N
    /// splits each bundle's replay [default output:
    /// .github/workflows/bugpack-issues.yml]
    #[arg(long, conflicts_with_all = ["bundle", "seed", "bundle_url", "expect_fixed"])]
    pub(crate) on_issue: bool,
}

#[allow(clippy::doc_markdown)] // help text, not rustdoc
#[derive(Debug, Args)]
pub(crate) struct K8sArgs {
    #[command(flatten)]
    pub(crate) replay: CiReplayArgs,

    /// Where to write the manifests, or `-` for stdout
    #[arg(
        short,
        long,
        value_name = "FILE|-",
        default_value = "bugpack-replay.k8s.yaml"
    )]
    pub(crate) output: PathBuf,

    /// The Job's name (the ConfigMap is NAME-bundle)
    #[arg(long, value_name = "NAME", default_value = "bugpack-replay")]
    pub(crate) name: String,

    /// The pods' image: with bugpack on PATH, or cargo to build it at start, plus whatever the scenario runs
    #[arg(long, value_name = "IMAGE", default_value = "rust:1-bookworm")]
    pub(crate) image: String,
}

#[derive(Debug, Args)]
pub(crate) struct CompletionsArgs {
    /// The shell to complete for
    #[arg(value_name = "SHELL")]
    pub(crate) shell: CompletionShell,
}

/// The shells `bugpack completions` writes for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum CompletionShell {
    Bash,
    Zsh,
    Fish,
    Powershell,
}

#[derive(Debug, Args)]
pub(crate) struct ManArgs {
    /// Write bugpack.1 and one bugpack-COMMAND.1 per command into DIR
    #[arg(long, value_name = "DIR")]
    pub(crate) dir: Option<PathBuf>,
}
