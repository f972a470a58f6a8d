//! `capture --trace-files`: the command run a second time under `strace -f`,
//! after the observed run (which stays untraced: some bugs vanish under a
//! tracer), and every file it opened to read or executed, sorted into the
//! project's files, the interpreter's own, those of Debian packages (whose
//! versions are recorded), other system files, and the rest: files outside
//! the project that a maintainer's checkout lacks (`~/.config/app/settings.toml`,
//! `/etc/app.conf`). Those are listed, with the flag that shares them, and
//! never packed: the user decides.
//!
//! The trace is parsed, never run; the second run is stopped at the same
//! time limit as the first, with its whole process tree.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::Context as _;
use regex::Regex;
use serde::{Deserialize, Serialize};

use super::interrupt::Interrupt;
use super::observe::{self, Ending, Stdin};
use crate::redact::Redactor;

/// The most files listed as outside the project.
const MAX_OUTSIDE: usize = 200;

/// What `env/files.yaml` records.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Traced {
    /// Files of the project (the repository, or the working directory) it read.
    pub project: u64,
    /// Files of its interpreter (a virtualenv, a toolchain under `~`).
    pub runtime: u64,
    /// Files of Debian packages and other system files.
    pub system: u64,
    /// Files outside all of those, redacted: what a maintainer lacks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outside: Vec<String>,
    /// The Debian packages whose files it read, with their versions.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub packages: BTreeMap<String, String>,
    /// How the traced run ended, when not by itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// The traced run's inputs.
#[derive(Debug)]
pub struct Trace<'a> {
    pub argv: &'a [String],
    pub cwd: &'a Path,
    pub timeout: Duration,
    /// The repository's root, when there is one.
    pub root: Option<&'a Path>,
    /// The interpreter's prefixes (`env/runtime.yaml`).
    pub prefixes: &'a [String],
    /// The recorded standard input, given to the traced run too.
    pub stdin: Option<PathBuf>,
}

/// Runs the command under strace and sorts what it read.
pub fn run(
    trace: &Trace<'_>,
    staging: &Path,
    interrupt: &Interrupt,
    redactor: &mut Redactor,
) -> anyhow::Result<Traced> {
    let log = staging.join("trace-files.strace");
    let mut argv: Vec<String> = [
        "strace",
        "-f",
        "-qq",
        "-z",
        "-s",
        "4096",
        "-e",
        "signal=none",
        "-e",
        "trace=open,openat,openat2,creat,execve,execveat,chdir,clone,clone3,fork,vfork",
        "-o",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    argv.push(log.display().to_string());
    argv.push("--".to_owned());
    argv.extend(trace.argv.iter().cloned());
    let spec = observe::Spec {
        argv,
        cwd: trace.cwd.to_path_buf(),
        timeout: trace.timeout,
        tail_bytes: 4096,
        env: None,
        stdin: trace.stdin.clone().map_or(Stdin::Null, Stdin::File),
    };
    let dir = tempfile::tempdir_in(staging).context("cannot create a staging directory")?;
    tracing::info!("running the command again under strace for --trace-files");
    let o = observe::run(&spec, dir.path(), interrupt)?;
    let text = fs::read_to_string(&log).unwrap_or_default();
    if text.is_empty() && o.observed.exit_code != Some(0) {
        let said = String::from_utf8_lossy(o.stderr_tail.kept())
            .trim()
            .to_owned();
        anyhow::bail!(
            "--trace-files: strace recorded nothing ({}); check that strace can trace here (ptrace may be forbidden)",
            said.lines().last().unwrap_or("no message")
        );
    }
    let opened = parse(&text, trace.cwd);
    let mut traced = classify(&opened, trace, staging, redactor);
    if o.observed.ending == Ending::Hang {
        traced.note = Some(format!(
            "the traced run was still going after {} ms and was stopped",
            o.observed.timeout_ms
        ));
    }
    Ok(traced)
}

/// Whether strace is on this machine's PATH.
pub fn strace_available() -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join("strace").is_file()))
}

fn line_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r"^(\d+)\s+(?:<\.\.\. )?(open|openat|openat2|creat|execve|execveat|chdir|clone3?|fork|vfork)\b(?: resumed>)?\(?(.*)$")
            .unwrap_or_else(|_| unreachable!("a valid regex"))
    })
}

/// The files a trace shows read or executed, absolute, each process's
/// relative paths resolved against its working directory.
pub fn parse(text: &str, cwd: &Path) -> BTreeSet<PathBuf> {
    let mut cwds: HashMap<u32, PathBuf> = HashMap::new();
    let mut out = BTreeSet::new();
    for line in text.lines() {
        let Some(c) = line_re().captures(line) else {
            continue;
        };
        let Ok(pid) = c[1].parse::<u32>() else {
            continue;
        };
        let call = &c[2];
        let rest = &c[3];
        let here = cwds.get(&pid).cloned().unwrap_or_else(|| cwd.to_path_buf());
        if matches!(call, "clone" | "clone3" | "fork" | "vfork") {
            if let Some(child) = rest
                .rsplit_once("= ")
                .and_then(|(_, r)| r.split_whitespace().next())
                .and_then(|n| n.parse::<u32>().ok())
            {
                cwds.insert(child, here);
            }
            continue;
        }
        // openat, openat2 and execveat name a directory first; only paths
        // from the working directory (AT_FDCWD) or absolute ones are followed.
        let args = if matches!(call, "openat" | "openat2" | "execveat") {
            match rest.split_once(", ") {
                Some(("AT_FDCWD", after)) => after,
                Some((_, after)) if after.starts_with("\"/") => after,
                _ => continue,
            }
        } else {
            rest
        };
        let Some((path, after)) = quoted(args) else {
            continue;
        };
        let full = if path.starts_with('/') {
            PathBuf::from(&path)
        } else {
            here.join(&path)
        };
        match call {
            "chdir" => {
                cwds.insert(pid, full);
            }
            "execve" | "execveat" => {
                out.insert(full);
            }
            "creat" => {}
            _ => {
                let writes_only = after.contains("O_WRONLY") || after.contains("O_CREAT");
                if !writes_only && !after.contains("O_DIRECTORY") {
                    out.insert(full);
                }
            }
        }
    }
    out
}

/// The C-quoted string `text` starts with, unescaped, and what follows it.
fn quoted(text: &str) -> Option<(String, &str)> {
    let body = text.strip_prefix('"')?;
    let mut out = Vec::new();
    let bytes = body.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                return Some((String::from_utf8_lossy(&out).into_owned(), &body[i + 1..]));
            }
            b'\\' if i + 1 < bytes.len() => {
                i += 1;
                match bytes[i] {
                    b'n' => out.push(b'\n'),
                    b't' => out.push(b'\t'),
                    b'x' if i + 2 < bytes.len() => {
                        let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok()?;
                        out.push(u8::from_str_radix(hex, 16).ok()?);
                        i += 2;
                    }
                    d @ b'0'..=b'7' => {
                        let mut v = u32::from(d - b'0');
                        let mut n = 1;
                        while n < 3 && i + 1 < bytes.len() && (b'0'..=b'7').contains(&bytes[i + 1])
                        {
                            i += 1;
                            v = v * 8 + u32::from(bytes[i] - b'0');
                            n += 1;
                        }
                        out.push(u8::try_from(v).ok()?);
                    }
                    other => out.push(other),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    None
}

/// Files every program reads that no package owns: made at install time or
/// by the administrator's tools, the same on every machine of a kind.
const GENERATED: &[&str] = &[
    "/etc/ld.so.cache",
    "/etc/ld.so.preload",
    "/etc/localtime",
    "/etc/timezone",
    "/etc/passwd",
    "/etc/group",
    "/etc/shadow",
    "/etc/nsswitch.conf",
    "/etc/hosts",
    "/etc/host.conf",
    "/etc/hostname",
    "/etc/resolv.conf",
    "/etc/gai.conf",
    "/etc/mime.types",
    "/etc/machine-id",
    "/etc/os-release",
];

/// Directories whose files are the system's, packaged or not.
const SYSTEM_DIRS: &[&str] = &[
    "/proc/",
    "/sys/",
    "/dev/",
    "/run/",
    "/usr/lib/",
    "/usr/lib64/",
    "/usr/libexec/",
    "/usr/share/",
    "/usr/bin/",
    "/usr/sbin/",
    "/lib/",
    "/lib64/",
    "/lib32/",
    "/bin/",
    "/sbin/",
    "/etc/ssl/",
    "/etc/alternatives/",
    "/etc/ld.so.conf.d/",
    "/var/lib/",
    "/var/cache/",
];

fn classify(
    opened: &BTreeSet<PathBuf>,
    trace: &Trace<'_>,
    staging: &Path,
    redactor: &mut Redactor,
) -> Traced {
    let canon = |p: &Path| fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let roots: Vec<PathBuf> = [Some(trace.cwd), trace.root]
        .into_iter()
        .flatten()
        .map(canon)
        .collect();
    let prefixes: Vec<PathBuf> = trace.prefixes.iter().map(|p| canon(Path::new(p))).collect();
    let staging = canon(staging);
    let mut traced = Traced::default();
    let mut unowned = Vec::new();
    for path in opened {
        if !path.exists() {
            continue;
        }
        let real = canon(path);
        if real.starts_with(&staging) {
            continue;
        }
        if roots
            .iter()
            .any(|r| real.starts_with(r) || path.starts_with(r))
        {
            traced.project += 1;
        } else if prefixes
            .iter()
            .any(|p| real.starts_with(p) || path.starts_with(p))
            || path.components().any(|c| c.as_os_str() == "__pycache__")
        {
            traced.runtime += 1;
        } else {
            unowned.push(path.clone());
        }
    }
    let owners = dpkg_owners(&unowned);
    let mut outside = BTreeSet::new();
    for path in unowned {
        if let Some(pkg) = owners.get(&path) {
            traced.system += 1;
            traced.packages.entry(pkg.clone()).or_default();
            continue;
        }
        let text = path.to_string_lossy();
        if GENERATED.contains(&text.as_ref()) || SYSTEM_DIRS.iter().any(|d| text.starts_with(d)) {
            traced.system += 1;
        } else {
            outside.insert(redactor.redact_str("env/files.yaml", &text));
        }
    }
    traced.outside = outside.into_iter().take(MAX_OUTSIDE).collect();
    let versions = dpkg_versions(&traced.packages.keys().cloned().collect());
    for (pkg, version) in &mut traced.packages {
        *version = versions.get(pkg).cloned().unwrap_or_else(|| "?".to_owned());
    }
    traced
}

/// The Debian package that owns each of `paths`, from dpkg's file lists
/// (each path is also looked for under its merged-`/usr` spelling).
fn dpkg_owners(paths: &[PathBuf]) -> HashMap<PathBuf, String> {
    let mut wanted: HashMap<String, PathBuf> = HashMap::new();
    for p in paths {
        let text = p.to_string_lossy().into_owned();
        for spelling in merged_usr(&text) {
            wanted.insert(spelling, p.clone());
        }
        if let Ok(real) = fs::canonicalize(p) {
            for spelling in merged_usr(&real.to_string_lossy()) {
                wanted.entry(spelling).or_insert_with(|| p.clone());
            }
        }
    }
    let mut owners = HashMap::new();
    if wanted.is_empty() {
        return owners;
    }
    let Ok(lists) = fs::read_dir("/var/lib/dpkg/info") else {
        return owners;
    };
    for entry in lists.filter_map(Result::ok) {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pkg) = name.strip_suffix(".list") else {
            continue;
        };
        let pkg = pkg.split(':').next().unwrap_or(pkg);
        let Ok(text) = fs::read_to_string(entry.path()) else {
            continue;
        };
        for line in text.lines() {
            if let Some(p) = wanted.get(line) {
                owners.entry(p.clone()).or_insert_with(|| pkg.to_owned());
            }
        }
    }
    owners
}

/// `path` and its other spelling on a merged-`/usr` system (`/lib/x` and `/usr/lib/x`).
fn merged_usr(path: &str) -> Vec<String> {
    let mut out = vec![path.to_owned()];
    for top in ["/lib/", "/lib64/", "/bin/", "/sbin/"] {
        if let Some(rest) = path.strip_prefix(top) {
            out.push(format!("/usr{top}{rest}"));
        }
        if let Some(rest) = path.strip_prefix(&format!("/usr{top}")) {
            out.push(format!("{top}{rest}"));
        }
    }
    out
}

/// The installed version of each of `packages`, from dpkg's status file.
fn dpkg_versions(packages: &BTreeSet<String>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let Ok(text) = fs::read_to_string("/var/lib/dpkg/status") else {
        return out;
    };
    for stanza in text.split("\n\n") {
        let field = |key: &str| {
            stanza
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .map(|v| v.trim().to_owned())
        };
        if let (Some(name), Some(version)) = (field("Package:"), field("Version:"))
            && packages.contains(&name)
        {
            out.insert(name, version);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trace_gives_the_files_read_and_executed() {
        let text = r#"100   execve("/usr/bin/python3", ["python3", "main.py"], 0x7ffd /* 20 vars */) = 0
100   openat(AT_FDCWD, "/etc/ld.so.cache", O_RDONLY|O_CLOEXEC) = 3
100   openat(AT_FDCWD, "main.py", O_RDONLY|O_CLOEXEC) = 3
100   openat(AT_FDCWD, "out.log", O_WRONLY|O_CREAT|O_TRUNC, 0666) = 4
100   openat(AT_FDCWD, "/home/u/.config/app/settings.toml", O_RDONLY <unfinished ...>
100   openat(AT_FDCWD, "/tmp", O_RDONLY|O_DIRECTORY) = 5
100   clone(child_stack=NULL, flags=CLONE_CHILD_CLEARTID|SIGCHLD) = 101
101   chdir("sub") = 0
101   openat(AT_FDCWD, "data \"x\".txt", O_RDONLY) = 3
101   openat(3, "rel.txt", O_RDONLY) = 4
102   openat(AT_FDCWD, "/a\303\251\x41", O_RDONLY) = 3
"#;
        let got: Vec<String> = parse(text, Path::new("/w"))
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        assert_eq!(
            got,
            [
                "/aéA",
                "/etc/ld.so.cache",
                "/home/u/.config/app/settings.toml",
                "/usr/bin/python3",
                "/w/main.py",
                "/w/sub/data \"x\".txt",
            ]
        );
    }

    #[test]
    fn merged_usr_spellings() {
        assert_eq!(merged_usr("/lib/x.so"), ["/lib/x.so", "/usr/lib/x.so"]);
        assert_eq!(merged_usr("/usr/bin/sh"), ["/usr/bin/sh", "/bin/sh"]);
        assert_eq!(merged_usr("/etc/x"), ["/etc/x"]);
    }
}
