//! `env/runtime.yaml`: what runs the command. The interpreter its `argv[0]`
//! resolves to (through `PATH` and a script's `#!` line), that
//! interpreter's version, the packages it would load, and the project's
//! lockfiles by hash, so that "Python 3.11.7 with slowlib 1.2.0" can be set
//! against a maintainer's own ([`differences`]).
//!
//! Versions come from asking the interpreter with arguments bugpack
//! chooses (`python3 -c ...`, `node --version`), or, for a Go binary, from
//! the build information its linker embeds; packages come from the files
//! package managers leave (`*.dist-info/METADATA`, `node_modules/*/package.json`),
//! never from running pip or npm. No other program is run: an unknown
//! `argv[0]` is recorded by its path alone. Every question goes through a
//! [`Probe`], so capture, `diff --here` and replay ask the same way.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io::Read as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::interrupt::{Interrupt, Interrupted};
use super::observe;

/// The most packages recorded.
const MAX_PACKAGES: usize = 5000;
/// The largest metadata file read for a package's name and version.
const MAX_METADATA: u64 = 1 << 20;
/// The largest binary searched for Go build information.
const MAX_GO_BINARY: u64 = 512 << 20;
/// How long an interpreter gets to say its version.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// Lockfiles recorded by hash, wherever they sit between the working
/// directory and the repository's root.
const LOCKFILES: &[&str] = &[
    "Cargo.lock",
    "package-lock.json",
    "npm-shrinkwrap.json",
    "yarn.lock",
    "pnpm-lock.yaml",
    "poetry.lock",
    "Pipfile.lock",
    "uv.lock",
    "pdm.lock",
    "go.sum",
    "Gemfile.lock",
    "composer.lock",
    "mix.lock",
];

/// What `env/runtime.yaml` records.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Runtime {
    /// The program as the command names it.
    pub program: String,
    /// The file that program is on this machine, when found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The script whose `#!` line named the interpreter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via: Option<String>,
    /// `python`, `node`, `ruby`, `java`, `perl`, `go`, `shell`, `program`
    /// (anything else), or `missing` (not found).
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Where the interpreter keeps its own files (Python's `sys.prefix`
    /// and `sys.base_prefix`), other than `/usr`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prefixes: Vec<String>,
    /// The packages it would load, by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub packages: Vec<Package>,
    /// Lockfiles by their path from the repository's root (or the working
    /// directory), each with its SHA-256.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub lockfiles: BTreeMap<String, String>,
}

/// An installed package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Package {
    pub name: String,
    pub version: String,
    /// The top-level modules it provides, where they differ from its name
    /// (`yaml` for `PyYAML`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub imports: Vec<String>,
}

impl Package {
    /// The names a program imports it by.
    pub fn import_names(&self) -> Vec<String> {
        if self.imports.is_empty() {
            vec![self.name.replace('-', "_").to_lowercase()]
        } else {
            self.imports.clone()
        }
    }
}

/// What a short command printed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Printed {
    pub stdout: String,
    pub stderr: String,
}

/// Runs a short command bugpack chooses (an interpreter and fixed
/// arguments) and returns what it printed; `None` when it could not run
/// or failed.
pub trait Probe {
    fn output(&mut self, argv: &[String]) -> Result<Option<Printed>, Interrupted>;
}

/// A [`Probe`] through [`observe::run`]: bounded in time and output, its
/// whole process tree stopped at the end, stopped early by `interrupt`.
#[derive(Debug)]
pub struct Prober<'a> {
    pub cwd: PathBuf,
    /// The environment, when not bugpack's own.
    pub env: Option<BTreeMap<String, String>>,
    pub staging: &'a Path,
    pub interrupt: &'a Interrupt,
}

impl Probe for Prober<'_> {
    fn output(&mut self, argv: &[String]) -> Result<Option<Printed>, Interrupted> {
        let spec = observe::Spec {
            argv: argv.to_vec(),
            cwd: self.cwd.clone(),
            timeout: PROBE_TIMEOUT,
            tail_bytes: 1 << 20,
            env: self.env.clone(),
            stdin: observe::Stdin::Null,
        };
        let Ok(dir) = tempfile::tempdir_in(self.staging) else {
            return Ok(None);
        };
        match observe::run(&spec, dir.path(), self.interrupt) {
            Err(e) if e.is::<Interrupted>() => Err(Interrupted),
            Err(_) => Ok(None),
            Ok(o) if o.observed.exit_code == Some(0) => Ok(Some(Printed {
                stdout: String::from_utf8_lossy(o.stdout_tail.kept()).into_owned(),
                stderr: String::from_utf8_lossy(o.stderr_tail.kept()).into_owned(),
            })),
            Ok(_) => Ok(None),
        }
    }
}

/// The Python that answers this prints its version, prefixes and path.
const PYTHON_PROBE: &str = "import json,sys\nprint(json.dumps({'version':'%d.%d.%d'%sys.version_info[:3],'executable':sys.executable,'prefixes':sorted({sys.prefix,sys.base_prefix}),'path':[p for p in sys.path if p]}))";

/// The runtime of `argv`, run from `cwd` with `path_var` as its `PATH`,
/// in the project whose root is `root` (lockfiles are looked for from
/// `cwd` up to it). `trusted` says whether the program may be run to ask
/// its version: replay asks only of interpreters outside the bundle's files.
pub fn describe(
    argv: &[String],
    path_var: Option<&str>,
    cwd: &Path,
    root: Option<&Path>,
    probe: &mut dyn Probe,
    trusted: &dyn Fn(&Path) -> bool,
) -> Result<Runtime, Interrupted> {
    let program = program_of(argv).unwrap_or_default();
    let mut rt = Runtime {
        program: program.clone(),
        kind: "missing".to_owned(),
        ..Runtime::default()
    };
    rt.lockfiles = lockfiles(cwd, root);
    let Some(mut path) = resolve(&program, path_var, cwd) else {
        return Ok(rt);
    };
    if let Some((interpreter, _)) = shebang(&path) {
        rt.via = Some(program.clone());
        let name = Path::new(&interpreter)
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        let Some(p) = resolve(&interpreter, path_var, cwd) else {
            rt.program = name;
            return Ok(rt);
        };
        path = p;
    }
    let name = path
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    kind_of(&name, &path).clone_into(&mut rt.kind);
    // A version manager's shim (pyenv's `shims/python3`, a shell script)
    // is the interpreter as far as the command knows: named as one, run as one.
    let typed = Path::new(&rt.program)
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    if let Some(kind) = kind_of_name(&typed).filter(|k| rt.via.is_some() && *k != rt.kind)
        && let Some(shim) = resolve(&rt.program, path_var, cwd)
    {
        kind.clone_into(&mut rt.kind);
        if let Some(manager) = shim.parent().and_then(Path::parent)
            && !matches!(manager.to_str(), Some("/" | "/usr" | "/usr/local"))
        {
            rt.prefixes.push(manager.display().to_string());
        }
        path = shim;
        rt.via = None;
    }
    rt.path = Some(path.display().to_string());
    let ask = trusted(&path);
    let exe = path.display().to_string();
    match rt.kind.as_str() {
        "python" if ask => {
            if let Some(out) = probe.output(&[exe, "-c".into(), PYTHON_PROBE.into()])? {
                python_facts(&mut rt, &out.stdout);
            }
        }
        "node" if ask => {
            if let Some(out) = probe.output(&[exe, "--version".into()])? {
                rt.version = first_token(&out.stdout).map(|v| v.trim_start_matches('v').to_owned());
            }
            rt.packages = node_packages(cwd, root);
        }
        "ruby" if ask => {
            if let Some(out) = probe.output(&[exe, "-e".into(), "print RUBY_VERSION".into()])? {
                rt.version = first_token(&out.stdout);
            }
        }
        "perl" if ask => {
            if let Some(out) = probe.output(&[exe, "-e".into(), "print $^V".into()])? {
                rt.version = first_token(&out.stdout).map(|v| v.trim_start_matches('v').to_owned());
            }
        }
        "java" if ask => {
            if let Some(out) = probe.output(&[exe, "-version".into()])? {
                rt.version = java_version(&format!("{}{}", out.stderr, out.stdout));
            }
        }
        "go" => {
            if let Some((version, deps)) = go_build_info(&path) {
                rt.version = Some(version.trim_start_matches("go").to_owned());
                rt.packages = deps;
            }
        }
        _ => {}
    }
    Ok(rt)
}

/// The program `argv` runs: its first word, or what `env` runs.
fn program_of(argv: &[String]) -> Option<String> {
    let first = argv.first()?;
    if Path::new(first).file_name().is_some_and(|n| n == "env") {
        return argv
            .iter()
            .skip(1)
            .find(|a| !a.starts_with('-') && !a.contains('='))
            .cloned()
            .or_else(|| Some(first.clone()));
    }
    Some(first.clone())
}

/// Where `program` is: a path (from `cwd`) when it has a slash, else the
/// first executable file of that name on `path_var`.
pub fn resolve(program: &str, path_var: Option<&str>, cwd: &Path) -> Option<PathBuf> {
    if program.is_empty() {
        return None;
    }
    let executable = |p: &Path| {
        fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.contains('/') {
        let p = cwd.join(program);
        return p.is_file().then_some(p);
    }
    path_var?
        .split(':')
        .filter(|d| !d.is_empty())
        .map(|d| cwd.join(d).join(program))
        .find(|p| executable(p))
}

/// A script's interpreter from its `#!` line (what `/usr/bin/env` names),
/// and the line's arguments.
fn shebang(path: &Path) -> Option<(String, Vec<String>)> {
    let mut head = [0u8; 256];
    let n = File::open(path).and_then(|mut f| f.read(&mut head)).ok()?;
    let text = head[..n].strip_prefix(b"#!")?;
    let line = text.split(|&b| b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?;
    let mut words = line.split_whitespace();
    let first = words.next()?.to_owned();
    let rest: Vec<String> = words.map(str::to_owned).collect();
    if Path::new(&first).file_name().is_some_and(|n| n == "env") {
        let program = rest
            .iter()
            .find(|a| !a.starts_with('-') && !a.contains('='))?
            .clone();
        return Some((program, Vec::new()));
    }
    Some((first, rest))
}

fn kind_of(name: &str, path: &Path) -> &'static str {
    kind_of_name(name).unwrap_or_else(|| {
        if go_build_info(path).is_some() {
            "go"
        } else {
            "program"
        }
    })
}

/// The kind of interpreter a program's name says it is.
fn kind_of_name(name: &str) -> Option<&'static str> {
    let stem = name.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.');
    Some(match stem {
        "python" | "pypy" => "python",
        "node" | "nodejs" => "node",
        "ruby" => "ruby",
        "java" => "java",
        "perl" => "perl",
        "sh" | "bash" | "dash" | "zsh" | "ksh" | "fish" | "busybox" => "shell",
        _ => return None,
    })
}

fn first_token(text: &str) -> Option<String> {
    text.split_whitespace().next().map(str::to_owned)
}

/// `17.0.15` from `openjdk version "17.0.15" 2025-04-15`.
fn java_version(text: &str) -> Option<String> {
    let after = text.split_once("version \"")?.1;
    Some(after.split('"').next()?.to_owned())
}

/// Fills in what [`PYTHON_PROBE`] printed, and the distributions on the path.
fn python_facts(rt: &mut Runtime, printed: &str) {
    #[derive(Deserialize)]
    struct Facts {
        version: String,
        executable: String,
        prefixes: Vec<String>,
        path: Vec<String>,
    }
    let Some(facts) = printed
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str::<Facts>(l).ok())
    else {
        return;
    };
    rt.version = Some(facts.version);
    if !facts.executable.is_empty() {
        rt.path = Some(facts.executable);
    }
    rt.prefixes.extend(
        facts
            .prefixes
            .into_iter()
            .filter(|p| p != "/usr" && p != "/"),
    );
    let dirs: Vec<PathBuf> = facts.path.iter().map(PathBuf::from).collect();
    rt.packages = python_packages(&dirs);
}

/// The distributions installed in `dirs` (Python's `sys.path`), first
/// found wins, as at import.
pub fn python_packages(dirs: &[PathBuf]) -> Vec<Package> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for dir in dirs {
        let Ok(entries) = fs::read_dir(dir) else {
            continue;
        };
        let mut names: Vec<PathBuf> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
        names.sort();
        for meta_dir in names {
            let file_name = meta_dir
                .file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
            let metadata = if file_name.ends_with(".dist-info") {
                meta_dir.join("METADATA")
            } else if file_name.ends_with(".egg-info") {
                if meta_dir.is_dir() {
                    meta_dir.join("PKG-INFO")
                } else {
                    meta_dir.clone()
                }
            } else {
                continue;
            };
            let Some((name, version)) = read_capped(&metadata).and_then(|t| metadata_fields(&t))
            else {
                continue;
            };
            if !seen.insert(normalize(&name)) || out.len() >= MAX_PACKAGES {
                continue;
            }
            let mut imports = top_level(&meta_dir);
            if imports == [name.replace('-', "_").to_lowercase()] {
                imports.clear();
            }
            out.push(Package {
                name,
                version,
                imports,
            });
        }
    }
    out.sort_by_key(|p| normalize(&p.name));
    out
}

/// `Name:` and `Version:` from a METADATA or PKG-INFO file's headers.
fn metadata_fields(text: &str) -> Option<(String, String)> {
    let mut name = None;
    let mut version = None;
    for line in text.lines() {
        if line.is_empty() {
            break;
        }
        if let Some(v) = line.strip_prefix("Name:") {
            name = Some(v.trim().to_owned());
        } else if let Some(v) = line.strip_prefix("Version:") {
            version = Some(v.trim().to_owned());
        }
    }
    Some((name?, version?))
}

/// A distribution's top-level modules: `top_level.txt`, else the first
/// parts of the paths its `RECORD` lists.
fn top_level(meta_dir: &Path) -> Vec<String> {
    let mut names = BTreeSet::new();
    if let Some(text) = read_capped(&meta_dir.join("top_level.txt")) {
        names.extend(
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(str::to_owned),
        );
    } else if let Some(text) = read_capped(&meta_dir.join("RECORD")) {
        for line in text.lines() {
            let path = line.split(',').next().unwrap_or_default();
            let first = path.split('/').next().unwrap_or_default();
            let module = if path.contains('/') {
                first
            } else {
                first.strip_suffix(".py").unwrap_or_default()
            };
            if !module.is_empty()
                && !module.contains('.')
                && module != "__pycache__"
                && !module.starts_with("..")
            {
                names.insert(module.to_owned());
            }
        }
    }
    names.into_iter().collect()
}

/// A package name as package indexes compare them (PEP 503).
pub fn normalize(name: &str) -> String {
    let mut out = String::new();
    let mut dash = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            dash = true;
        } else {
            if dash && !out.is_empty() {
                out.push('-');
            }
            dash = false;
            out.extend(c.to_lowercase());
        }
    }
    out
}

/// The packages under `node_modules` from `cwd` up to `root`.
fn node_packages(cwd: &Path, root: Option<&Path>) -> Vec<Package> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for dir in dirs_up(cwd, root) {
        let modules = dir.join("node_modules");
        let Ok(entries) = fs::read_dir(&modules) else {
            continue;
        };
        let mut dirs: Vec<PathBuf> = Vec::new();
        for e in entries.filter_map(Result::ok) {
            let p = e.path();
            if e.file_name().to_string_lossy().starts_with('@') {
                if let Ok(scoped) = fs::read_dir(&p) {
                    dirs.extend(scoped.filter_map(Result::ok).map(|e| e.path()));
                }
            } else {
                dirs.push(p);
            }
        }
        dirs.sort();
        for d in dirs {
            let Some(text) = read_capped(&d.join("package.json")) else {
                continue;
            };
            let Ok(json) = serde_json::from_str::<serde_json::Value>(&text) else {
                continue;
            };
            let (Some(name), Some(version)) = (json["name"].as_str(), json["version"].as_str())
            else {
                continue;
            };
            if out.len() < MAX_PACKAGES && seen.insert(name.to_owned()) {
                out.push(Package {
                    name: name.to_owned(),
                    version: version.to_owned(),
                    imports: Vec::new(),
                });
            }
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// `cwd`, then each parent up to and including `root` (only `cwd` when it
/// is not inside `root`, or there is none).
fn dirs_up(cwd: &Path, root: Option<&Path>) -> Vec<PathBuf> {
    let mut out = vec![cwd.to_path_buf()];
    if let Some(root) = root.filter(|r| cwd.starts_with(r)) {
        let mut at = cwd;
        while at != root {
            match at.parent() {
                Some(p) => {
                    out.push(p.to_path_buf());
                    at = p;
                }
                None => break,
            }
        }
    }
    out
}

/// The lockfiles between `cwd` and `root`, by path from `root` (or `cwd`).
pub fn lockfiles(cwd: &Path, root: Option<&Path>) -> BTreeMap<String, String> {
    let base = root.filter(|r| cwd.starts_with(r)).unwrap_or(cwd);
    let mut out = BTreeMap::new();
    for dir in dirs_up(cwd, root) {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.filter_map(Result::ok) {
            let name = e.file_name().to_string_lossy().into_owned();
            let is_lock = LOCKFILES.contains(&name.as_str())
                || (name.starts_with("requirements")
                    && Path::new(&name)
                        .extension()
                        .is_some_and(|x| x.eq_ignore_ascii_case("txt")));
            if !is_lock || !e.file_type().is_ok_and(|t| t.is_file()) {
                continue;
            }
            let path = e.path();
            let Ok(sha) = crate::bundle::reader::sha256_file(&path) else {
                continue;
            };
            let rel = path.strip_prefix(base).unwrap_or(&path);
            out.insert(rel.display().to_string(), sha);
        }
    }
    out
}

fn read_capped(path: &Path) -> Option<String> {
    let mut bytes = Vec::new();
    File::open(path)
        .ok()?
        .take(MAX_METADATA)
        .read_to_end(&mut bytes)
        .ok()?;
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

/// The Go version and the modules a Go binary was built from, read from
/// the build information the Go linker embeds (Go 1.18 and later).
fn go_build_info(path: &Path) -> Option<(String, Vec<Package>)> {
    const MAGIC: &[u8] = b"\xff Go buildinf:";
    let meta = fs::metadata(path).ok()?;
    if !meta.is_file() || meta.len() > MAX_GO_BINARY {
        return None;
    }
    let mut head = [0u8; 4];
    File::open(path).ok()?.read_exact(&mut head).ok()?;
    if &head != b"\x7fELF" {
        return None;
    }
    let bytes = fs::read(path).ok()?;
    let at = bytes.windows(MAGIC.len()).position(|w| w == MAGIC)?;
    let header = bytes.get(at..at + 32)?;
    if header[15] & 2 == 0 {
        return Some(("(Go before 1.18)".to_owned(), Vec::new()));
    }
    let mut rest = &bytes[at + 32..];
    let version = varint_string(&mut rest)?;
    let modinfo = varint_string(&mut rest).unwrap_or_default();
    let mut deps = Vec::new();
    for line in modinfo.lines() {
        let parts: Vec<&str> = line.split('\t').collect();
        if parts.first() == Some(&"dep") && parts.len() >= 3 {
            deps.push(Package {
                name: parts[1].to_owned(),
                version: parts[2].to_owned(),
                imports: Vec::new(),
            });
        }
    }
    Some((version, deps))
}

/// A string prefixed by its length as an unsigned varint.
fn varint_string(rest: &mut &[u8]) -> Option<String> {
    let mut len: usize = 0;
    let mut shift = 0;
    loop {
        let (&b, tail) = rest.split_first()?;
        *rest = tail;
        len |= usize::from(b & 0x7f).checked_shl(shift)?;
        if b & 0x80 == 0 {
            break;
        }
        shift += 7;
        if shift > 56 {
            return None;
        }
    }
    let text = rest.get(..len)?;
    *rest = &rest[len..];
    Some(String::from_utf8_lossy(text).into_owned())
}

/// One way two runtimes differ: `key` (`python`, `package slowlib`,
/// `lockfile poetry.lock`), the user's value and this machine's (`None`:
/// absent on that side).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Difference {
    pub key: String,
    pub user: Option<String>,
    pub here: Option<String>,
}

/// The runtime `argv` gets on this machine with `path_var` for `PATH`, run
/// from `cwd` in the repository at `root`, asked in a scratch directory
/// under `staging`. Only an interpreter owned by root or by this user, and
/// writable by no one else, is run to ask its version, and none under
/// `untrusted` (a stranger's files): the rest are described by their files.
pub fn here(
    argv: &[String],
    path_var: &str,
    cwd: &Path,
    root: Option<&Path>,
    staging: &Path,
    untrusted: Option<&Path>,
) -> Option<Runtime> {
    use std::os::unix::fs::MetadataExt as _;
    let scratch = tempfile::tempdir_in(staging).ok()?;
    let interrupt = Interrupt::new();
    let mut prober = Prober {
        cwd: "/".into(),
        env: Some(BTreeMap::from([
            ("PATH".to_owned(), path_var.to_owned()),
            ("LANG".to_owned(), "C.UTF-8".to_owned()),
        ])),
        staging: scratch.path(),
        interrupt: &interrupt,
    };
    let me = nix::unistd::geteuid().as_raw();
    let trusted = |p: &Path| {
        !untrusted.is_some_and(|u| p.starts_with(u))
            && fs::metadata(p)
                .is_ok_and(|m| (m.uid() == 0 || m.uid() == me) && m.mode() & 0o002 == 0)
    };
    describe(argv, Some(path_var), cwd, root, &mut prober, &trusted).ok()
}

/// How `here` differs from `user`: interpreter and version, packages
/// added, removed or at another version, lockfiles changed.
pub fn differences(user: &Runtime, here: &Runtime) -> Vec<Difference> {
    let mut out = Vec::new();
    let mut push = |key: String, a: Option<String>, b: Option<String>| {
        if a != b {
            out.push(Difference {
                key,
                user: a,
                here: b,
            });
        }
    };
    let describe = |rt: &Runtime| match rt.kind.as_str() {
        "missing" => None,
        _ => Some(match &rt.version {
            Some(v) => format!("{} {v}", rt.kind),
            None => rt.kind.clone(),
        }),
    };
    if user.kind == here.kind && user.kind != "missing" {
        push(
            format!("{} version", user.kind),
            user.version.clone(),
            here.version.clone(),
        );
    } else {
        push(
            format!("runtime of {}", user.program),
            describe(user),
            describe(here),
        );
    }
    let by_name = |rt: &Runtime| -> BTreeMap<String, (String, String)> {
        rt.packages
            .iter()
            .map(|p| (normalize(&p.name), (p.name.clone(), p.version.clone())))
            .collect()
    };
    let (a, b) = (by_name(user), by_name(here));
    let names: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    for n in names {
        let shown = a.get(n).or_else(|| b.get(n)).map_or(n.as_str(), |(s, _)| s);
        push(
            format!("package {shown}"),
            a.get(n).map(|(_, v)| v.clone()),
            b.get(n).map(|(_, v)| v.clone()),
        );
    }
    let files: BTreeSet<&String> = user.lockfiles.keys().chain(here.lockfiles.keys()).collect();
    for f in files {
        let short = |m: &BTreeMap<String, String>| m.get(f).map(|s| s.chars().take(12).collect());
        push(
            format!("lockfile {f}"),
            short(&user.lockfiles),
            short(&here.lockfiles),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    struct NoProbe;
    impl Probe for NoProbe {
        fn output(&mut self, _: &[String]) -> Result<Option<Printed>, Interrupted> {
            Ok(None)
        }
    }

    fn write(path: &Path, text: &str) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    #[test]
    fn distributions_are_read_from_their_metadata() {
        let dir = tempfile::tempdir().unwrap();
        let site = dir.path().join("site-packages");
        write(
            &site.join("PyYAML-6.0.1.dist-info/METADATA"),
            "Metadata-Version: 2.1\nName: PyYAML\nVersion: 6.0.1\n\nbody Name: x\n",
        );
        write(
            &site.join("PyYAML-6.0.1.dist-info/top_level.txt"),
            "_yaml\nyaml\n",
        );
        write(
            &site.join("slow_lib-1.2.0.dist-info/METADATA"),
            "Name: slow-lib\nVersion: 1.2.0\n",
        );
        write(
            &site.join("slow_lib-1.2.0.dist-info/RECORD"),
            "slow_lib/__init__.py,sha256=x,1\nslow_lib-1.2.0.dist-info/METADATA,,\n",
        );
        write(&site.join("old.egg-info"), "Name: Old\nVersion: 0.1\n");
        let pkgs = python_packages(&[site]);
        let names: Vec<(&str, &str)> = pkgs
            .iter()
            .map(|p| (p.name.as_str(), p.version.as_str()))
            .collect();
        assert_eq!(
            names,
            [("Old", "0.1"), ("PyYAML", "6.0.1"), ("slow-lib", "1.2.0")]
        );
        assert_eq!(pkgs[1].imports, ["_yaml", "yaml"]);
        assert!(pkgs[2].imports.is_empty(), "{:?}", pkgs[2]);
        assert_eq!(pkgs[2].import_names(), ["slow_lib"]);
        assert_eq!(normalize("Foo__Bar.baz"), "foo-bar-baz");
    }

    #[test]
    fn scripts_resolve_to_their_interpreter_and_lockfiles_are_hashed() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        write(&bin.join("python3"), "#!/bin/sh\n");
        fs::set_permissions(bin.join("python3"), fs::Permissions::from_mode(0o755)).unwrap();
        let app = dir.path().join("app");
        write(&app.join("run.py"), "#!/usr/bin/env python3\nprint(1)\n");
        write(&app.join("requirements-dev.txt"), "x==1\n");
        write(&dir.path().join("poetry.lock"), "lock\n");
        let path_var = bin.display().to_string();
        let rt = describe(
            &["./run.py".to_owned()],
            Some(&path_var),
            &app,
            Some(dir.path()),
            &mut NoProbe,
            &|_| true,
        )
        .unwrap();
        assert_eq!(rt.kind, "python");
        assert_eq!(rt.via.as_deref(), Some("./run.py"));
        assert_eq!(
            rt.path.as_deref(),
            Some(bin.join("python3").to_str().unwrap())
        );
        assert_eq!(
            rt.lockfiles.keys().collect::<Vec<_>>(),
            ["app/requirements-dev.txt", "poetry.lock"]
        );
        let missing = describe(
            &["nope-not-here".to_owned()],
            Some(&path_var),
            &app,
            None,
            &mut NoProbe,
            &|_| true,
        )
        .unwrap();
        assert_eq!(missing.kind, "missing");
    }

    #[test]
    fn differences_name_versions_packages_and_lockfiles() {
        let pkg = |n: &str, v: &str| Package {
            name: n.into(),
            version: v.into(),
            imports: Vec::new(),
        };
        let user = Runtime {
            program: "python3".into(),
            kind: "python".into(),
            version: Some("3.11.7".into()),
            packages: vec![pkg("slowlib", "1.2.0"), pkg("gone", "1")],
            lockfiles: BTreeMap::from([("poetry.lock".into(), "a".repeat(64))]),
            ..Runtime::default()
        };
        let here = Runtime {
            version: Some("3.11.2".into()),
            packages: vec![pkg("SlowLib", "1.3.0"), pkg("new", "2")],
            lockfiles: BTreeMap::from([("poetry.lock".into(), "b".repeat(64))]),
            ..user.clone()
        };
        let keys: Vec<String> = differences(&user, &here)
            .iter()
            .map(|d| format!("{}: {:?} -> {:?}", d.key, d.user, d.here))
            .collect();
        assert_eq!(
            keys,
            [
                "python version: Some(\"3.11.7\") -> Some(\"3.11.2\")",
                "package gone: Some(\"1\") -> None",
                "package new: None -> Some(\"2\")",
                "package slowlib: Some(\"1.2.0\") -> Some(\"1.3.0\")",
                "lockfile poetry.lock: Some(\"aaaaaaaaaaaa\") -> Some(\"bbbbbbbbbbbb\")",
            ]
        );
        assert!(differences(&user, &user).is_empty());
    }
}
