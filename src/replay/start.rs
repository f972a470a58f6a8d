//! Telling a run that never got to the bug from one that ran it: a run
//! step that could not start the command (exit 126 or 127, a missing
//! interpreter, a script or a module of the user's project that is not
//! here, a package the user had installed) is an `error` with its cause
//! and what to do, never `passed` and never `reproduced`.
//!
//! What counts as the user's project comes from the bundle ([`Known`]):
//! the repository's file list (`git/files.txt`, `git/untracked/`), the
//! directory the command ran in, the packages of its runtime. A failure
//! the user's own run showed too (`observed/stderr.log`) is the bug, not a
//! failure to start, and is left to the judge.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};
use std::sync::OnceLock;

use regex::Regex;

/// What the bundle says about the user's side.
#[derive(Debug, Clone, Default)]
pub struct Known {
    /// The program the command runs, as typed (`python3`).
    pub program: String,
    /// How the user's runtime is described (`python 3.11.7 at /usr/bin/python3`).
    pub runtime: Option<String>,
    /// The repository's files by path from its root; empty without git.
    pub project: BTreeSet<String>,
    /// The bundle came from a git repository.
    pub repo: bool,
    /// The command's directory from the repository's root (`.` at the root).
    pub cwd: String,
    /// The runs run in a checkout of the project (`--repo`).
    pub in_checkout: bool,
    /// The end of what the user's run printed on stderr.
    pub observed_stderr: String,
    /// The user's packages by the module a program imports: `name version`.
    pub packages: BTreeMap<String, String>,
}

/// Why a run could not start the command, and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartFailure {
    pub cause: String,
    pub hint: String,
}

/// How many of the last lines of stderr are read.
const LINES: usize = 40;

fn re(cell: &'static OnceLock<Regex>, pattern: &str) -> &'static Regex {
    cell.get_or_init(|| Regex::new(pattern).unwrap_or_else(|_| unreachable!("a valid regex")))
}

/// Why the run step could not start the command, if it could not. `code`
/// is its exit code, `stderr` the end of its stderr, `cwd` the directory
/// it ran in (paths it printed are read relative to it).
pub fn check(known: &Known, code: Option<i32>, stderr: &str, cwd: &Path) -> Option<StartFailure> {
    static SCRIPT: OnceLock<Regex> = OnceLock::new();
    static MODULE: OnceLock<Regex> = OnceLock::new();
    static NODE: OnceLock<Regex> = OnceLock::new();
    static SH_OPEN: OnceLock<Regex> = OnceLock::new();
    static NOT_FOUND: OnceLock<Regex> = OnceLock::new();
    static ENV: OnceLock<Regex> = OnceLock::new();
    static QUOTED: OnceLock<Regex> = OnceLock::new();
    let lines: Vec<&str> = stderr.lines().rev().take(LINES).collect();
    let program = program_name(&known.program);

    for line in &lines {
        // python3: can't open file '/w/main.py': [Errno 2] No such file or directory
        if let Some(c) =
            re(&SCRIPT, r"^(\S+): can't open file '([^']+)': \[Errno 2\]").captures(line)
        {
            let who = program_name(&c[1]);
            return known.missing_file(&who, &c[2], cwd, "can't open file");
        }
        // ModuleNotFoundError: No module named 'worker'
        if let Some(c) =
            re(&MODULE, r"ModuleNotFoundError: No module named '([\w.]+)'").captures(line)
        {
            return known.missing_module(&program, &c[1]);
        }
        // Error: Cannot find module '/w/main.js'
        if let Some(c) = re(&NODE, r"Error: Cannot find module '([^']+)'").captures(line) {
            let what = &c[1];
            if what.starts_with('/') || what.starts_with('.') {
                return known.missing_file(&program, what, cwd, "Cannot find module");
            }
            return known.missing_module(&program, what);
        }
    }
    if matches!(code, Some(2 | 126 | 127)) {
        for line in &lines {
            // dash: sh: 0: cannot open build.sh: No such file
            if let Some(c) =
                re(&SH_OPEN, r"^(\S+): \d+: cannot open ([^:]+): No such file").captures(line)
            {
                return known.missing_file(&program_name(&c[1]), &c[2], cwd, "cannot open");
            }
        }
    }
    if matches!(code, Some(126 | 127)) {
        for line in &lines {
            // /usr/bin/env: 'python3': No such file or directory
            let found = re(&ENV, r"^\S*env: '([^']+)': No such file or directory")
                .captures(line)
                .map(|c| c[1].to_owned())
                .or_else(|| {
                    // sh: 1: python3: not found / bash: ./x.sh: No such file or directory
                    re(
                        &NOT_FOUND,
                        r"^\S+: (?:(?:line )?\d+: )?([^:]+): (?:not found|No such file or directory|command not found)$",
                    )
                    .captures(line)
                    .map(|c| c[1].to_owned())
                });
            if let Some(cmd) = found {
                if cmd.contains('/') && known.is_project_file(&cmd, cwd) {
                    return known.missing_file(&program_name(&cmd), &cmd, cwd, "not found");
                }
                return Some(known.missing_program(&cmd, line));
            }
        }
        let line = lines
            .iter()
            .find(|l| !l.trim().is_empty())
            .map_or("", |l| l.trim());
        let line: String = line.chars().take(160).collect();
        return Some(StartFailure {
            cause: format!(
                "the run step could not start the command (exit {}): {line}",
                code.unwrap_or_default()
            ),
            hint:
                "check that the command's program exists where replay runs it and can be executed"
                    .to_owned(),
        });
    }
    // FileNotFoundError: [Errno 2] No such file or directory: 'config/app.ini'
    for line in &lines {
        if !line.contains("No such file or directory") {
            continue;
        }
        for c in re(&QUOTED, r#"['"]([^'"]+)['"]"#).captures_iter(line) {
            if known.is_project_file(&c[1], cwd) {
                return known.missing_file(&program, &c[1], cwd, "No such file");
            }
        }
    }
    None
}

/// `python3` from `/usr/bin/python3`.
fn program_name(program: &str) -> String {
    Path::new(program)
        .file_name()
        .map_or_else(|| program.to_owned(), |n| n.to_string_lossy().into_owned())
}

impl Known {
    /// The user's run failed this way too: then it is the bug.
    fn observed_says(&self, phrase: &str, name: &str) -> bool {
        self.observed_stderr
            .lines()
            .any(|l| l.contains(phrase) && l.contains(name))
    }

    /// `path` as the project names it (from the repository's root), when
    /// it is one of the project's files: read relative to `cwd` (the run's
    /// directory, which stands for the user's), or, for a path of the
    /// user's machine, by its ending.
    fn project_path(&self, path: &str, cwd: &Path) -> Option<String> {
        let p = Path::new(path);
        let rel: PathBuf = match p.strip_prefix(cwd) {
            Ok(r) => r.to_path_buf(),
            Err(_) if p.is_relative() => p.to_path_buf(),
            Err(_) => {
                return self
                    .project
                    .iter()
                    .find(|f| path.ends_with(&format!("/{f}")))
                    .cloned();
            }
        };
        let joined = normalize(&Path::new(&self.cwd).join(rel));
        let name = joined.to_str()?.to_owned();
        self.project.contains(&name).then_some(name)
    }

    fn is_project_file(&self, path: &str, cwd: &Path) -> bool {
        self.project_path(path, cwd).is_some()
    }

    /// A file the command needs is not here.
    fn missing_file(
        &self,
        who: &str,
        path: &str,
        cwd: &Path,
        phrase: &str,
    ) -> Option<StartFailure> {
        let shown = Path::new(path)
            .strip_prefix(cwd)
            .map_or_else(|_| path.to_owned(), |r| r.display().to_string());
        let name = Path::new(path)
            .file_name()
            .map_or_else(|| path.to_owned(), |n| n.to_string_lossy().into_owned());
        if self.observed_says(phrase, &name) {
            return None;
        }
        let in_project = self.project_path(path, cwd);
        Some(match (&in_project, self.in_checkout) {
            (Some(_), false) => StartFailure {
                cause: format!("{who} could not open {shown}, which is in the user's repository"),
                hint: "replay with --repo DIR, a checkout of that project".to_owned(),
            },
            (Some(_) | None, true) => StartFailure {
                cause: format!("{who} could not open {shown}, which this checkout lacks"),
                hint: "the user's copy may be ignored by git or past capture's cap for untracked files: ask the user for it, or check that DIR is a clone of the user's project"
                    .to_owned(),
            },
            (None, false) if self.repo => StartFailure {
                cause: format!("{who} could not open {shown}, which the bundle does not hold"),
                hint: "replay with --repo DIR, a checkout of the user's project, or ask the user to capture again with --include FILE"
                    .to_owned(),
            },
            (None, false) => StartFailure {
                cause: format!("{who} could not open {shown}, which the bundle does not hold"),
                hint: format!("ask the user to capture again with --include {shown}"),
            },
        })
    }

    /// A module the program imports is not here: the project's own, or a
    /// package the user had. Any other missing module may be the bug.
    fn missing_module(&self, who: &str, module: &str) -> Option<StartFailure> {
        if self.observed_says("No module named", module)
            || self.observed_says("Cannot find module", module)
        {
            return None;
        }
        let top = module.split(['.', '/']).next().unwrap_or(module);
        let ours = self.project.iter().any(|f| {
            let f = format!("/{f}");
            f.ends_with(&format!("/{top}.py"))
                || f.contains(&format!("/{top}/"))
                || f.ends_with(&format!("/{top}.js"))
        });
        if ours {
            return Some(if self.in_checkout {
                StartFailure {
                    cause: format!("{who} could not import {module}, which this checkout lacks"),
                    hint: "check that DIR is a clone of the user's project".to_owned(),
                }
            } else {
                StartFailure {
                    cause: format!(
                        "{who} could not import {module}, which is in the user's repository"
                    ),
                    hint: "replay with --repo DIR, a checkout of that project".to_owned(),
                }
            });
        }
        let package = self
            .packages
            .get(top)
            .or_else(|| self.packages.get(module))?;
        Some(StartFailure {
            cause: format!("{who} could not import {module}, which the user had installed ({package})"),
            hint: "install the user's packages where replay runs (env/runtime.yaml lists them; `bugpack diff BUNDLE --here` compares)"
                .to_owned(),
        })
    }

    /// A program the command runs is not installed here.
    fn missing_program(&self, cmd: &str, line: &str) -> StartFailure {
        let name = program_name(cmd);
        let line: String = line.trim().chars().take(160).collect();
        let hint = match (&self.runtime, name == program_name(&self.program)) {
            (Some(rt), true) => format!("install it where replay runs: the user ran {rt}"),
            _ => format!("install {name} where replay runs, or replay on a machine that has it"),
        };
        StartFailure {
            cause: format!("{name} is not installed where replay runs ({line})"),
            hint,
        }
    }
}

/// Removes `.` and resolves `..` lexically.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known() -> Known {
        Known {
            program: "python3".into(),
            runtime: Some("python 3.11.7 at /usr/bin/python3".into()),
            project: [
                "main.py",
                "app/worker.py",
                "app/conf/app.ini",
                "tools/run.sh",
            ]
            .iter()
            .map(|s| (*s).to_owned())
            .collect(),
            repo: true,
            cwd: "app".into(),
            in_checkout: false,
            observed_stderr: String::new(),
            packages: BTreeMap::from([("yaml".into(), "PyYAML 6.0.1".into())]),
        }
    }

    #[test]
    fn a_script_of_the_project_that_is_not_here_is_a_start_failure() {
        let mut k = known();
        k.cwd = ".".into();
        let f = check(
            &k,
            Some(2),
            "python3: can't open file '/runs/r1/work/main.py': [Errno 2] No such file or directory\n",
            Path::new("/runs/r1/work"),
        )
        .unwrap();
        assert_eq!(
            f.cause,
            "python3 could not open main.py, which is in the user's repository"
        );
        assert_eq!(f.hint, "replay with --repo DIR, a checkout of that project");
        // The user saw the same: it is the bug.
        k.observed_stderr =
            "python3: can't open file '/home/u/main.py': [Errno 2] No such file or directory"
                .into();
        assert_eq!(
            check(
                &k,
                Some(2),
                "python3: can't open file '/runs/r1/work/main.py': [Errno 2] x\n",
                Path::new("/runs/r1/work")
            ),
            None
        );
    }

    #[test]
    fn modules_of_the_project_and_the_users_packages() {
        let k = known();
        let cwd = Path::new("/w");
        let f = check(
            &k,
            Some(1),
            "Traceback...\nModuleNotFoundError: No module named 'worker'\n",
            cwd,
        )
        .unwrap();
        assert!(
            f.cause
                .contains("could not import worker, which is in the user's repository"),
            "{f:?}"
        );
        let f = check(
            &k,
            Some(1),
            "ModuleNotFoundError: No module named 'yaml'\n",
            cwd,
        )
        .unwrap();
        assert!(
            f.cause
                .contains("which the user had installed (PyYAML 6.0.1)"),
            "{f:?}"
        );
        // A module neither the project's nor the user's may be the bug.
        assert_eq!(
            check(
                &k,
                Some(1),
                "ModuleNotFoundError: No module named 'nope'\n",
                cwd
            ),
            None
        );
    }

    #[test]
    fn missing_programs_and_files() {
        let k = known();
        let cwd = Path::new("/w");
        let f = check(&k, Some(127), "sh: 1: python3: not found\n", cwd).unwrap();
        assert!(
            f.cause
                .starts_with("python3 is not installed where replay runs"),
            "{f:?}"
        );
        assert_eq!(
            f.hint,
            "install it where replay runs: the user ran python 3.11.7 at /usr/bin/python3"
        );
        let f = check(
            &k,
            Some(127),
            "/usr/bin/env: 'node': No such file or directory\n",
            cwd,
        )
        .unwrap();
        assert!(f.cause.starts_with("node is not installed"), "{f:?}");
        let f = check(
            &k,
            Some(1),
            "FileNotFoundError: [Errno 2] No such file or directory: 'conf/app.ini'\n",
            cwd,
        )
        .unwrap();
        assert!(
            f.cause
                .contains("could not open conf/app.ini, which is in the user's repository"),
            "{f:?}"
        );
        let f = check(
            &k,
            Some(2),
            "sh: 0: cannot open ../tools/run.sh: No such file\n",
            cwd,
        )
        .unwrap();
        assert!(
            f.cause.contains("which is in the user's repository"),
            "{f:?}"
        );
        // An ordinary failure is not a start failure.
        assert_eq!(check(&k, Some(1), "error: the pool is full\n", cwd), None);
        assert_eq!(
            check(
                &k,
                Some(1),
                "open('/etc/nothing'): No such file or directory\n",
                cwd
            ),
            None
        );
        let mut k = k;
        k.in_checkout = true;
        let f = check(
            &k,
            Some(2),
            "python3: can't open file '/w/gone.py': [Errno 2] x\n",
            cwd,
        )
        .unwrap();
        assert!(f.cause.contains("which this checkout lacks"), "{f:?}");
    }
}
