//! `bugpack diff`: the differences that matter between two environments,
//! each read from a bundle or gathered from this machine.
//!
//! A [`Snapshot`] is what a bundle's `env/`, `git/` and `config/` entries
//! say, or what capture's own sources (`crate::capture`) say about this
//! machine, redacted the same way. [`compare`] turns two snapshots into
//! [`Group`]s, most telling first: proxies and probe headers, tool versions,
//! configuration files, the machine, git, environment variables.
//!
//! Values from bundles are already redacted; values gathered here pass
//! through a [`Redactor`] before they become part of a snapshot, so nothing
//! this module returns holds a secret. Placeholders (`[REDACTED:rule:n]`)
//! are numbered per bundle, so two redacted values cannot be compared: such
//! keys are listed as not compared, never as equal or different.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::Context as _;
use regex::Regex;
use serde_json::Value;
use sha2::{Digest as _, Sha256};

use crate::bundle::{Bundle, BundleWriter, Rejection};
use crate::capture::command::CommandRecord;
use crate::capture::runtime::Runtime;
use crate::capture::{self, files, system::PROXY_VARS};
use crate::redact::{ExtraRule, Redactor};
use crate::replay::BASE_PATH;

/// The most configuration bytes read from one side to show line diffs;
/// past it, files are compared by their SHA-256 only.
const MAX_CONFIG_BYTES: u64 = files::MAX_CONFIG_TOTAL;
/// How long one file's line diff may take before it settles for a coarser one.
const DIFF_TIMEOUT: Duration = Duration::from_secs(2);

/// Response headers whose value changes on every fetch: compared by
/// presence (a cache adds `Age`), not by value.
const VOLATILE_HEADERS: &[&str] = &["date", "age", "expires", "last-modified", "etag"];

/// Variables that differ between any two sessions and say nothing about a
/// bug, and those shown in another group (proxies, locale, time zone, shell).
const QUIET_VARS: &[&str] = &[
    "_",
    "PWD",
    "OLDPWD",
    "SHLVL",
    "HOSTNAME",
    "HOST",
    "LOGNAME",
    "USER",
    "USERNAME",
    "MAIL",
    "SSH_CLIENT",
    "SSH_CONNECTION",
    "SSH_TTY",
    "SSH_AUTH_SOCK",
    "XDG_SESSION_ID",
    "XDG_RUNTIME_DIR",
    "DBUS_SESSION_BUS_ADDRESS",
    "WINDOWID",
    "TERM_SESSION_ID",
    "INVOCATION_ID",
    "JOURNAL_STREAM",
    "LS_COLORS",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "LANGUAGE",
    "TZ",
    "SHELL",
];

/// The order of `env/system.yaml`'s keys in the system group; others follow.
const SYSTEM_ORDER: &[&str] = &[
    "os",
    "os_id",
    "os_version",
    "kernel",
    "arch",
    "cpu_count",
    "cpu_limit",
    "cpu_model",
    "memory_limit_mib",
    "memory_total_mib",
    "container",
    "virtualization",
    "timezone",
    "locale",
    "shell",
];

/// A configuration file as one side has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigFile {
    pub sha256: String,
    /// The (redacted) contents, when small enough to diff.
    pub bytes: Option<Vec<u8>>,
}

/// One environment: a bundle's, or this machine's.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// `env/system.yaml` as a JSON value (`Null` when absent).
    pub system: Value,
    /// `env/network.yaml` as a JSON value (`Null` when absent).
    pub network: Value,
    /// `env/vars.yaml`.
    pub vars: BTreeMap<String, String>,
    /// `git/repo.yaml`, when there is a repository.
    pub git: Option<Value>,
    /// `config/...` entries by their path in the bundle.
    pub configs: BTreeMap<String, ConfigFile>,
    /// `env/runtime.yaml`: what ran the captured command.
    pub runtime: Option<Runtime>,
    /// `env/command.yaml`'s argv: the captured command.
    pub command: Option<Vec<String>>,
}

impl Snapshot {
    /// Reads a checked bundle's environment entries. An entry that is not
    /// safe YAML of the expected shape rejects the bundle (exit 3).
    pub fn from_bundle(bundle: &mut Bundle) -> anyhow::Result<Self> {
        let system = read_yaml(bundle, "env/system.yaml")?;
        let network = read_yaml(bundle, "env/network.yaml")?;
        let vars_value = read_yaml(bundle, "env/vars.yaml")?;
        let git = match read_yaml(bundle, "git/repo.yaml")? {
            Value::Null => None,
            v => Some(v),
        };
        let mut vars = BTreeMap::new();
        if let Value::Object(map) = vars_value {
            for (k, v) in map {
                vars.insert(k, scalar(&v));
            }
        }
        let listed: Vec<_> = bundle
            .manifest()
            .files
            .iter()
            .filter(|f| f.path.starts_with("config/"))
            .cloned()
            .collect();
        let total: u64 = listed.iter().map(|f| f.size).sum();
        let mut configs = BTreeMap::new();
        for f in listed {
            let bytes = if total <= MAX_CONFIG_BYTES {
                Some(bundle.read(&f.path, f.size)?)
            } else {
                None
            };
            configs.insert(
                f.path.clone(),
                ConfigFile {
                    sha256: f.sha256.clone(),
                    bytes,
                },
            );
        }
        let runtime = bundle.read_typed::<Runtime>("env/runtime.yaml")?;
        let command = bundle
            .read_typed::<CommandRecord>("env/command.yaml")?
            .map(|c| c.argv);
        Ok(Self {
            system,
            network,
            vars,
            git,
            configs,
            runtime,
            command,
        })
    }

    /// Gathers this machine's environment with capture's sources and
    /// redaction, writing nothing but a temporary staging directory.
    /// Returns the snapshot and notes on what could not be read.
    /// `redactor` is [`Here::redactor`]'s. With `command` (a bundle's
    /// captured argv), also what would run that command here.
    pub fn here(
        req: &Here,
        mut redactor: Redactor,
        command: Option<&[String]>,
    ) -> anyhow::Result<(Self, Vec<String>)> {
        // Redacted copies of this machine's configs: swept if a kill leaves them.
        let staging =
            crate::partial::Partial::fresh(&std::env::temp_dir(), crate::partial::DIFF_PREFIX)
                .context("cannot create a temporary directory")?;
        let sources = capture::system::Sources {
            root: &req.system_root,
            env: &req.env,
        };
        let system = capture::system::describe(
            &sources,
            &req.versions,
            &req.cwd,
            staging.path(),
            &mut redactor,
            // Nothing to undo on Ctrl-C: the default action ends `diff`.
            &capture::interrupt::Interrupt::new(),
        )?;
        let network = capture::network::describe(&req.env, &req.probes, &mut redactor);
        let deny = capture::vars::Deny::new(&req.env_deny)?;
        let (vars, _) = capture::vars::collect(&req.env, &deny, &mut redactor);
        let git = capture::git::read_info(&req.cwd, &mut redactor)?
            .map(serde_json::to_value)
            .transpose()?;

        let mut notes = Vec::new();
        let mut writer = BundleWriter::new("diff", "1970-01-01T00:00:00Z");
        let mut packer = files::Packer::new(&req.cwd, staging.path(), &mut writer, &mut redactor);
        // The profile named these: one that cannot be read is a note, as
        // it is a warning in a capture.
        let named: Vec<_> = req
            .configs
            .iter()
            .cloned()
            .map(files::Named::profile)
            .collect();
        if let Err(e) = packer.configs(&named) {
            notes.push(format!("{e:#}"));
        }
        notes.append(&mut packer.skipped);
        let placed = std::mem::take(&mut packer.placed);
        drop(packer);
        let mut configs = BTreeMap::new();
        for p in placed {
            let bytes = std::fs::read(&p.staged)
                .with_context(|| format!("cannot read {}", p.staged.display()))?;
            configs.insert(
                p.entry,
                ConfigFile {
                    sha256: hex::encode(Sha256::digest(&bytes)),
                    bytes: Some(bytes),
                },
            );
        }
        let runtime = command.and_then(|argv| {
            let path = req.env.get("PATH").map_or(BASE_PATH, String::as_str);
            let root = capture::git::root_of(&req.cwd);
            capture::runtime::here(argv, path, &req.cwd, root.as_deref(), staging.path(), None)
        });
        Ok((
            Self {
                system: serde_json::to_value(system)?,
                network: serde_json::to_value(network)?,
                vars,
                git,
                configs,
                runtime,
                command: command.map(<[String]>::to_vec),
            },
            notes,
        ))
    }
}

/// What to gather for [`Snapshot::here`], resolved from the profile.
#[derive(Debug, Clone)]
pub struct Here {
    pub cwd: PathBuf,
    pub env: BTreeMap<String, String>,
    /// Tool name and the command that prints its version.
    pub versions: Vec<(String, String)>,
    pub configs: Vec<PathBuf>,
    pub probes: Vec<String>,
    pub env_deny: Vec<String>,
    pub redact: Vec<ExtraRule>,
    /// Where `/etc`, `/proc` and `/sys` are read from.
    pub system_root: PathBuf,
}

impl Here {
    /// The built-in rules, the profile's and the secret-named variables of
    /// `env`: what the snapshot and this machine's log lines are scrubbed
    /// with; and pseudonyms, as capture makes them, so that names and
    /// addresses compare as a bundle holds them. With the map of the bundle
    /// compared (on the machine that captured it), the same ones.
    pub fn redactor(&self, known: &[crate::redact::pseudonym::Entry]) -> anyhow::Result<Redactor> {
        let mut identity =
            crate::redact::pseudonym::Identity::of_machine(&self.env, &self.system_root);
        identity.add_known(known);
        let mut redactor = Redactor::new(
            &self.redact,
            self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        )
        .map_err(|e| crate::error::usage(e.to_string()))?
        .with_pseudonyms(&identity);
        redactor.seed_pseudonyms(known);
        Ok(redactor)
    }
}

/// A group of differences; the order of [`GroupKind::ALL`] is the order shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupKind {
    Proxy,
    Versions,
    Config,
    System,
    Git,
    Env,
}

impl GroupKind {
    /// Every group, most telling first.
    pub const ALL: [Self; 6] = [
        Self::Proxy,
        Self::Versions,
        Self::Config,
        Self::System,
        Self::Git,
        Self::Env,
    ];

    /// The group's stable name (JSON `group`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Proxy => "proxy",
            Self::Versions => "versions",
            Self::Config => "config",
            Self::System => "system",
            Self::Git => "git",
            Self::Env => "env",
        }
    }

    /// A heading for people.
    pub fn title(self) -> &'static str {
        match self {
            Self::Proxy => "proxy settings and probes",
            Self::Versions => "tool versions",
            Self::Config => "configuration files",
            Self::System => "system",
            Self::Git => "git",
            Self::Env => "environment variables",
        }
    }
}

/// One key whose value differs. `None` means absent on that side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub key: String,
    pub a: Option<String>,
    pub b: Option<String>,
    /// For configuration files: a unified diff, or why there is none.
    pub diff: Option<String>,
}

/// The differences of one group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub kind: GroupKind,
    pub changes: Vec<Change>,
    /// Keys present on both sides whose values are redacted, so cannot be compared.
    pub not_compared: Vec<String>,
}

impl Group {
    fn new(kind: GroupKind) -> Self {
        Self {
            kind,
            changes: Vec::new(),
            not_compared: Vec::new(),
        }
    }

    /// Records `key` if its values differ.
    fn compare(&mut self, key: &str, a: Option<&str>, b: Option<&str>) {
        if let (Some(x), Some(y)) = (a, b) {
            let (ux, uy) = (unnumbered(x), unnumbered(y));
            if ux == uy {
                // Equal up to placeholders, which are numbered per bundle:
                // the secrets behind them may differ or not.
                if ux != x || uy != y {
                    self.not_compared.push(key.to_owned());
                }
                return;
            }
        }
        if a == b {
            return;
        }
        self.changes.push(Change {
            key: key.to_owned(),
            a: a.map(str::to_owned),
            b: b.map(str::to_owned),
            diff: None,
        });
    }

    /// [`Self::compare`] for each of `keys`, looked up in `a` and `b`.
    fn compare_maps<'k>(
        &mut self,
        keys: impl IntoIterator<Item = &'k String>,
        a: &BTreeMap<String, String>,
        b: &BTreeMap<String, String>,
    ) {
        for key in keys {
            self.compare(
                key,
                a.get(key).map(String::as_str),
                b.get(key).map(String::as_str),
            );
        }
    }
}

/// The differences between two snapshots: every group, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comparison {
    pub groups: Vec<Group>,
}

impl Comparison {
    /// How many keys differ in all.
    pub fn count(&self) -> usize {
        self.groups.iter().map(|g| g.changes.len()).sum()
    }
}

/// Compares `a` with `b`.
pub fn compare(a: &Snapshot, b: &Snapshot) -> Comparison {
    let groups = GroupKind::ALL
        .iter()
        .map(|&kind| {
            let mut group = Group::new(kind);
            match kind {
                GroupKind::Proxy => proxies(&mut group, a, b),
                GroupKind::Versions => {
                    let (ta, tb) = (section(&a.system, "tools"), section(&b.system, "tools"));
                    group.compare_maps(&union(&ta, &tb), &ta, &tb);
                    if let (Some(ra), Some(rb)) = (&a.runtime, &b.runtime) {
                        for d in capture::runtime::differences(ra, rb) {
                            group.compare(&d.key, d.user.as_deref(), d.here.as_deref());
                        }
                    }
                }
                GroupKind::Config => configs(&mut group, a, b),
                GroupKind::System => system(&mut group, a, b),
                GroupKind::Git => {
                    let (ga, gb) = (git_facts(a.git.as_ref()), git_facts(b.git.as_ref()));
                    let mut keys: Vec<_> = union(&ga, &gb).into_iter().collect();
                    keys.sort_by_key(|k| (git_rank(k), k.clone()));
                    group.compare_maps(&keys, &ga, &gb);
                }
                GroupKind::Env => {
                    let keep = |m: &BTreeMap<String, String>| -> BTreeMap<String, String> {
                        m.iter()
                            .filter(|(k, _)| {
                                !QUIET_VARS.contains(&k.as_str())
                                    && !PROXY_VARS.contains(&k.as_str())
                                    && !k.starts_with("LC_")
                            })
                            .map(|(k, v)| (k.clone(), v.clone()))
                            .collect()
                    };
                    let (va, vb) = (keep(&a.vars), keep(&b.vars));
                    group.compare_maps(&union(&va, &vb), &va, &vb);
                }
            }
            group
        })
        .collect();
    Comparison { groups }
}

fn proxies(group: &mut Group, a: &Snapshot, b: &Snapshot) {
    let settings = |s: &Snapshot| {
        let mut m = section(&s.system, "proxy");
        m.extend(section(&s.network, "proxy"));
        m
    };
    let (pa, pb) = (settings(a), settings(b));
    let mut keys: Vec<String> = union(&pa, &pb).into_iter().collect();
    keys.sort_by_key(|k| {
        (
            PROXY_VARS.iter().position(|v| v == k).unwrap_or(usize::MAX),
            k.clone(),
        )
    });
    group.compare_maps(&keys, &pa, &pb);

    let (qa, qb) = (probes(&a.network), probes(&b.network));
    let mut urls: Vec<&String> = qa.keys().collect();
    urls.extend(qb.keys().filter(|u| !qa.contains_key(*u)));
    for url in urls {
        match (qa.get(url), qb.get(url)) {
            (Some(x), Some(y)) => {
                for i in 0..x.len().max(y.len()) {
                    let empty = BTreeMap::new();
                    let fa = x.get(i).unwrap_or(&empty);
                    let fb = y.get(i).unwrap_or(&empty);
                    let mut names: Vec<String> = union(fa, fb).into_iter().collect();
                    names.sort_by_key(|n| (n != "status" && n != "error", n.clone()));
                    for name in names {
                        let key = format!("{url} fetch {}: {name}", i + 1);
                        let (va, vb) = (fa.get(&name), fb.get(&name));
                        // A volatile header (Date, Age) counts only by its presence.
                        if !VOLATILE_HEADERS.contains(&name.as_str())
                            || va.is_some() != vb.is_some()
                        {
                            group.compare(&key, va.map(String::as_str), vb.map(String::as_str));
                        }
                    }
                }
            }
            (x, y) => {
                let summary = |f: Option<&Vec<BTreeMap<String, String>>>| {
                    f.map(|fetches| {
                        let each: Vec<String> = fetches
                            .iter()
                            .map(|f| {
                                f.get("status")
                                    .or_else(|| f.get("error"))
                                    .cloned()
                                    .unwrap_or_else(|| "?".to_owned())
                            })
                            .collect();
                        format!("probed: {}", each.join(", "))
                    })
                };
                group.compare(url, summary(x).as_deref(), summary(y).as_deref());
            }
        }
    }
}

/// Probe URL to its fetches, each a map of `status`, `error` and header names.
fn probes(network: &Value) -> BTreeMap<String, Vec<BTreeMap<String, String>>> {
    let mut out = BTreeMap::new();
    let Some(list) = network.get("probes").and_then(Value::as_array) else {
        return out;
    };
    for probe in list {
        let Some(url) = probe.get("url").and_then(Value::as_str) else {
            continue;
        };
        let fetches = probe
            .get("attempts")
            .and_then(Value::as_array)
            .map(|attempts| {
                attempts
                    .iter()
                    .map(|attempt| {
                        let mut m = section(attempt, "headers");
                        for key in ["status", "error"] {
                            if let Some(v) = attempt.get(key).filter(|v| !v.is_null()) {
                                m.insert(key.to_owned(), scalar(v));
                            }
                        }
                        m
                    })
                    .collect()
            })
            .unwrap_or_default();
        out.insert(url.to_owned(), fetches);
    }
    out
}

fn configs(group: &mut Group, a: &Snapshot, b: &Snapshot) {
    for key in union(&a.configs, &b.configs) {
        let (fa, fb) = (a.configs.get(&key), b.configs.get(&key));
        if fa.map(|f| &f.sha256) == fb.map(|f| &f.sha256) {
            continue;
        }
        let diff = match (
            fa.map(|f| f.bytes.as_deref()),
            fb.map(|f| f.bytes.as_deref()),
        ) {
            (Some(None), _) | (_, Some(None)) => {
                "(not shown: the configuration files are too large to diff)".to_owned()
            }
            (x, y) => unified(&key, x.flatten(), y.flatten()),
        };
        group.changes.push(Change {
            key: key.clone(),
            a: fa.map(|f| f.sha256.clone()),
            b: fb.map(|f| f.sha256.clone()),
            diff: Some(diff),
        });
    }
}

/// A unified diff of a file's two versions (`None`: absent on that side).
fn unified(key: &str, a: Option<&[u8]>, b: Option<&[u8]>) -> String {
    let text = |bytes: Option<&[u8]>| match bytes {
        None => Some(String::new()),
        Some(b) => std::str::from_utf8(b).ok().map(str::to_owned),
    };
    let (Some(ta), Some(tb)) = (text(a), text(b)) else {
        return format!("Binary files a/{key} and b/{key} differ");
    };
    let header_a = if a.is_some() {
        format!("a/{key}")
    } else {
        "/dev/null".to_owned()
    };
    let header_b = if b.is_some() {
        format!("b/{key}")
    } else {
        "/dev/null".to_owned()
    };
    similar::TextDiff::configure()
        .timeout(DIFF_TIMEOUT)
        .diff_lines(&ta, &tb)
        .unified_diff()
        .context_radius(3)
        .header(&header_a, &header_b)
        .to_string()
}

fn system(group: &mut Group, a: &Snapshot, b: &Snapshot) {
    let flat = |v: &Value| {
        let mut m = BTreeMap::new();
        if let Value::Object(map) = v {
            for (k, v) in map {
                if k == "proxy" || k == "tools" {
                    continue;
                }
                flatten(k, v, &mut m);
            }
        }
        m
    };
    let (sa, sb) = (flat(&a.system), flat(&b.system));
    let both_os = sa.contains_key("os") && sb.contains_key("os");
    let mut keys: Vec<String> = union(&sa, &sb)
        .into_iter()
        .filter(|k| !(both_os && (k == "os_id" || k == "os_version")))
        .collect();
    keys.sort_by_key(|k| {
        let head = k.split('.').next().unwrap_or(k);
        (
            SYSTEM_ORDER
                .iter()
                .position(|o| *o == head)
                .unwrap_or(SYSTEM_ORDER.len()),
            k.clone(),
        )
    });
    group.compare_maps(&keys, &sa, &sb);
}

/// `git/repo.yaml` as the keys the git group compares.
fn git_facts(git: Option<&Value>) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    let Some(git) = git else {
        return m;
    };
    m.insert("repository".to_owned(), "yes".to_owned());
    for key in ["head", "branch", "describe"] {
        if let Some(v) = git.get(key).filter(|v| !v.is_null()) {
            m.insert(key.to_owned(), scalar(v));
        }
    }
    if let Some(v) = git.get("dirty") {
        m.insert(
            "dirty".to_owned(),
            if v.as_bool() == Some(true) {
                "yes"
            } else {
                "no"
            }
            .to_owned(),
        );
    }
    let names = |key: &str| -> Vec<String> {
        git.get(key)
            .and_then(Value::as_array)
            .map(|a| a.iter().map(scalar).collect())
            .unwrap_or_default()
    };
    let mut changed: Vec<String> = names("staged");
    changed.extend(names("unstaged"));
    changed.sort();
    changed.dedup();
    // Untracked names are left out: they are mostly build output and the
    // bundle itself; `dirty` still says whether there were any.
    if !changed.is_empty() {
        m.insert("uncommitted".to_owned(), name_list(&changed));
    }
    if let Some(remotes) = git.get("remotes").and_then(Value::as_array) {
        for r in remotes {
            if let (Some(name), Some(url)) = (r.get("name"), r.get("url")) {
                m.insert(format!("remote {}", scalar(name)), scalar(url));
            }
        }
    }
    m
}

fn git_rank(key: &str) -> usize {
    [
        "repository",
        "head",
        "describe",
        "branch",
        "dirty",
        "uncommitted",
    ]
    .iter()
    .position(|k| *k == key)
    .unwrap_or(6)
}

/// `3 files: a, b, c`, at most ten names.
fn name_list(names: &[String]) -> String {
    const SHOWN: usize = 10;
    let mut text = format!(
        "{} file{}: {}",
        names.len(),
        if names.len() == 1 { "" } else { "s" },
        names[..names.len().min(SHOWN)].join(", ")
    );
    if names.len() > SHOWN {
        text.push_str(", ...");
    }
    text
}

/// A mapping inside `value` (e.g. `system.tools`) as strings.
fn section(value: &Value, key: &str) -> BTreeMap<String, String> {
    value
        .get(key)
        .and_then(Value::as_object)
        .map(|m| m.iter().map(|(k, v)| (k.clone(), scalar(v))).collect())
        .unwrap_or_default()
}

/// Nested mappings as dotted keys, sequences as `key[i]`.
fn flatten(prefix: &str, value: &Value, out: &mut BTreeMap<String, String>) {
    match value {
        Value::Null => {}
        Value::Object(map) => {
            for (k, v) in map {
                flatten(&format!("{prefix}.{k}"), v, out);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                flatten(&format!("{prefix}[{i}]"), v, out);
            }
        }
        v => {
            out.insert(prefix.to_owned(), scalar(v));
        }
    }
}

/// A scalar as text; anything else as compact JSON.
fn scalar(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        v => v.to_string(),
    }
}

fn union<V>(a: &BTreeMap<String, V>, b: &BTreeMap<String, V>) -> BTreeSet<String> {
    a.keys().chain(b.keys()).cloned().collect()
}

/// `[REDACTED:rule:7]` → `[REDACTED:rule]`: placeholders numbered per bundle.
fn unnumbered(text: &str) -> std::borrow::Cow<'_, str> {
    static PLACEHOLDER: OnceLock<Option<Regex>> = OnceLock::new();
    match PLACEHOLDER
        .get_or_init(|| Regex::new(r"\[REDACTED:([A-Za-z0-9_.-]+):[0-9]+\]").ok())
        .as_ref()
    {
        Some(re) => re.replace_all(text, "[REDACTED:$1]"),
        None => std::borrow::Cow::Borrowed(text),
    }
}

/// A bundle entry as checked YAML; `Null` when the bundle has no such entry.
fn read_yaml(bundle: &mut Bundle, name: &str) -> anyhow::Result<Value> {
    match bundle.read_yaml(name)? {
        None => Ok(Value::Null),
        Some(value @ (Value::Null | Value::Object(_))) => Ok(value),
        Some(_) => Err(anyhow::Error::new(Rejection::Schema {
            file: name.to_owned(),
            why: "at the top level: expected a mapping".to_owned(),
        })
        .context(format!("{} rejected", bundle.path().display()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn snap(system: Value, network: Value, vars: &[(&str, &str)]) -> Snapshot {
        Snapshot {
            system,
            network,
            vars: vars
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            ..Snapshot::default()
        }
    }

    fn group(c: &Comparison, kind: GroupKind) -> &Group {
        c.groups.iter().find(|g| g.kind == kind).unwrap()
    }

    #[test]
    fn the_same_snapshot_has_no_differences() {
        let s = snap(
            json!({"os": "Debian 12", "kernel": "6.1", "tools": {"python": "3.11"}}),
            json!({"proxy": {"http_proxy": "http://p:3128"}}),
            &[("PATH", "/bin")],
        );
        let c = compare(&s, &s);
        assert_eq!(c.count(), 0);
        assert_eq!(
            c.groups.iter().map(|g| g.kind.as_str()).collect::<Vec<_>>(),
            ["proxy", "versions", "config", "system", "git", "env"]
        );
    }

    #[test]
    fn groups_hold_their_keys_in_order() {
        let a = snap(
            json!({"os": "Debian 12", "os_id": "debian", "kernel": "6.1", "cpu_count": 8,
                   "tools": {"python": "3.11"}, "proxy": {"https_proxy": "http://p:3128"}}),
            json!({"proxy": {"https_proxy": "http://p:3128"}}),
            &[
                ("DEBUG", "1"),
                ("PWD", "/a"),
                ("https_proxy", "http://p:3128"),
            ],
        );
        let b = snap(
            json!({"os": "Ubuntu 24.04", "os_id": "ubuntu", "kernel": "6.8", "cpu_count": 2,
                   "tools": {"python": "3.12"}}),
            json!({}),
            &[("PWD", "/b")],
        );
        let c = compare(&a, &b);
        let proxy = group(&c, GroupKind::Proxy);
        assert_eq!(proxy.changes[0].key, "https_proxy");
        assert_eq!(proxy.changes[0].b, None);
        assert_eq!(group(&c, GroupKind::Versions).changes[0].key, "python");
        let system: Vec<_> = group(&c, GroupKind::System)
            .changes
            .iter()
            .map(|ch| ch.key.as_str())
            .collect();
        assert_eq!(system, ["os", "kernel", "cpu_count"]);
        let env: Vec<_> = group(&c, GroupKind::Env)
            .changes
            .iter()
            .map(|ch| ch.key.as_str())
            .collect();
        assert_eq!(env, ["DEBUG"], "PWD and proxies stay out of env");
    }

    #[test]
    fn redacted_values_are_not_compared_but_their_plain_parts_are() {
        let a = snap(
            json!({}),
            json!({"proxy": {"http_proxy": "http://[REDACTED:url-credentials:1]@p:3128"}}),
            &[("API_TOKEN", "[REDACTED:env:1]")],
        );
        let b = snap(
            json!({}),
            json!({"proxy": {"http_proxy": "http://[REDACTED:url-credentials:4]@q:3128"}}),
            &[("API_TOKEN", "[REDACTED:env:3]")],
        );
        let c = compare(&a, &b);
        assert_eq!(group(&c, GroupKind::Env).changes, []);
        assert_eq!(group(&c, GroupKind::Env).not_compared, ["API_TOKEN"]);
        assert_eq!(
            group(&c, GroupKind::Proxy).changes.len(),
            1,
            "the host differs"
        );
    }

    #[test]
    fn probes_compare_revealing_headers_and_only_the_presence_of_volatile_ones() {
        let fetch = |age: Option<&str>, cache: &str, date: &str| {
            let mut h = json!({"x-cache": cache, "date": date});
            if let Some(a) = age {
                h["age"] = json!(a);
            }
            json!({"status": 200, "headers": h})
        };
        let a = snap(
            json!({}),
            json!({"probes": [{"url": "http://x/s", "attempts": [fetch(None, "MISS", "d1"), fetch(Some("3"), "HIT", "d2")]}]}),
            &[],
        );
        let b = snap(
            json!({}),
            json!({"probes": [{"url": "http://x/s", "attempts": [fetch(None, "MISS", "d3"), fetch(None, "MISS", "d4")]}]}),
            &[],
        );
        let c = compare(&a, &b);
        let keys: Vec<_> = group(&c, GroupKind::Proxy)
            .changes
            .iter()
            .map(|ch| ch.key.as_str())
            .collect();
        assert_eq!(
            keys,
            ["http://x/s fetch 2: age", "http://x/s fetch 2: x-cache"]
        );
    }

    #[test]
    fn config_files_get_a_unified_diff() {
        let file = |text: &str| ConfigFile {
            sha256: hex::encode(Sha256::digest(text.as_bytes())),
            bytes: Some(text.as_bytes().to_vec()),
        };
        let mut a = Snapshot::default();
        let mut b = Snapshot::default();
        a.configs.insert(
            "config/app.ini".into(),
            file("[pool]\nsize = 2\nname = x\n"),
        );
        b.configs.insert(
            "config/app.ini".into(),
            file("[pool]\nsize = 8\nname = x\n"),
        );
        a.configs.insert("config/same.ini".into(), file("k = v\n"));
        b.configs.insert("config/same.ini".into(), file("k = v\n"));
        a.configs
            .insert("config/only-a.ini".into(), file("x = 1\n"));
        let c = compare(&a, &b);
        let g = group(&c, GroupKind::Config);
        assert_eq!(g.changes.len(), 2);
        let app = g
            .changes
            .iter()
            .find(|ch| ch.key == "config/app.ini")
            .unwrap();
        let diff = app.diff.as_deref().unwrap();
        assert!(
            diff.starts_with("--- a/config/app.ini\n+++ b/config/app.ini\n"),
            "{diff}"
        );
        assert!(diff.contains("\n-size = 2\n+size = 8\n"), "{diff}");
        let only = g
            .changes
            .iter()
            .find(|ch| ch.key == "config/only-a.ini")
            .unwrap();
        assert_eq!(only.b, None);
        assert!(only.diff.as_deref().unwrap().contains("+++ /dev/null"));
    }

    #[test]
    fn git_compares_commit_and_dirty_state() {
        let mut a = Snapshot::default();
        let mut b = Snapshot::default();
        a.git = Some(
            json!({"head": "aaa", "branch": "main", "dirty": true, "unstaged": ["x.py"], "remotes": []}),
        );
        b.git = Some(json!({"head": "bbb", "branch": "main", "dirty": false, "remotes": []}));
        let c = compare(&a, &b);
        let keys: Vec<_> = group(&c, GroupKind::Git)
            .changes
            .iter()
            .map(|ch| (ch.key.as_str(), ch.a.as_deref(), ch.b.as_deref()))
            .collect();
        assert_eq!(
            keys,
            [
                ("head", Some("aaa"), Some("bbb")),
                ("dirty", Some("yes"), Some("no")),
                ("uncommitted", Some("1 file: x.py"), None)
            ]
        );
    }
}
