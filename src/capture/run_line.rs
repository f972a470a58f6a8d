//! The scenario's `run:` line from the command the user captured.
//!
//! Replay runs the scenario in a fresh directory holding `scenario/`, which
//! stands for the directory the capture ran in. A path in the command that
//! points inside it keeps working; one that points outside it (`../tools/x.sh`)
//! or is absolute (`/home/alice/app/input.txt`) would not, so when it names
//! a file or directory packed with `--include`, it is rewritten to where
//! that was packed. A path the rewrite cannot reach (inside a longer
//! argument such as `sh -c "sh ../x.sh"`) is refused with a usage error
//! before anything runs.

use std::path::{Path, PathBuf};

use super::files::{Included, Placed, resolve};
use crate::error::usage;

/// The command with its included paths rewritten, and notes for the user
/// (a file the command names that replay will not find).
pub fn rewrite(
    argv: &[String],
    cwd: &Path,
    placed: &[Placed],
    included: &[Included],
    in_project: &dyn Fn(&Path) -> bool,
) -> anyhow::Result<(Vec<String>, Vec<String>)> {
    let mut out = Vec::with_capacity(argv.len());
    let mut notes = Vec::new();
    for (i, arg) in argv.iter().enumerate() {
        let program = i == 0;
        if let Some(new) = place_of(arg, cwd, placed, included, program) {
            out.push(new);
            continue;
        }
        if let Some((key, value)) = arg.split_once('=')
            && !key.is_empty()
            && !key.contains('/')
            && let Some(new) = place_of(value, cwd, placed, included, false)
        {
            out.push(format!("{key}={new}"));
            continue;
        }
        for inc in included.iter().filter(|inc| outside(&inc.given, cwd)) {
            let spellings = [
                inc.given.to_string_lossy().into_owned(),
                inc.source.to_string_lossy().into_owned(),
            ];
            if let Some(s) = spellings.iter().find(|s| mentions(arg, s)) {
                return Err(usage(format!(
                    "the command names {s} inside the argument `{arg}`, where bugpack cannot rewrite it for replay; \
                     pass the path as an argument of its own, or run bugpack capture from a directory that contains it"
                )));
            }
        }
        if let Some(note) = missing(arg, cwd, placed, included, in_project) {
            notes.push(note);
        }
        out.push(arg.clone());
    }
    Ok((out, notes))
}

/// Whether `path` appears in `text` as a path of its own (not as part of
/// a longer name: `/opt` is not in `/optimal`).
fn mentions(text: &str, path: &str) -> bool {
    let name_char = |c: char| c.is_alphanumeric() || "._-".contains(c);
    !path.is_empty()
        && text.match_indices(path).any(|(at, _)| {
            let before = text[..at].chars().next_back();
            let after = text[at + path.len()..].chars().next();
            !before.is_some_and(|c| name_char(c) || c == '/') && !after.is_some_and(name_char)
        })
}

/// Whether a path leaves `cwd` (or is absolute): replay cannot follow it.
fn outside(path: &Path, cwd: &Path) -> bool {
    path.is_absolute() || !resolve(cwd, path).starts_with(cwd)
}

/// Where `text`, a path that leaves the capture's directory, was packed.
fn place_of(
    text: &str,
    cwd: &Path,
    placed: &[Placed],
    included: &[Included],
    program: bool,
) -> Option<String> {
    if text.is_empty() || text.contains('\n') {
        return None;
    }
    let path = Path::new(text);
    if !outside(path, cwd) {
        return None;
    }
    let abs = resolve(cwd, path);
    let place = placed
        .iter()
        .find(|p| p.source == abs && p.entry.starts_with("scenario/"))
        .map(|p| p.entry["scenario/".len()..].to_owned())
        .or_else(|| {
            included.iter().find_map(|inc| {
                let rest = abs.strip_prefix(&inc.source).ok()?;
                if !inc.is_dir && !rest.as_os_str().is_empty() {
                    return None;
                }
                if rest.as_os_str().is_empty() {
                    return Some(inc.place.clone());
                }
                let joined: PathBuf = Path::new(&inc.place).join(rest);
                Some(joined.to_string_lossy().into_owned())
            })
        })?;
    let place = if place.is_empty() {
        ".".to_owned()
    } else {
        place
    };
    Some(if program && !place.contains('/') {
        format!("./{place}")
    } else {
        place
    })
}

/// A note when `arg` names a file in the capture's directory that was not
/// included and is no file of the repository (which a replay in a checkout
/// has): replay of the scenario alone will not find it.
fn missing(
    arg: &str,
    cwd: &Path,
    placed: &[Placed],
    included: &[Included],
    in_project: &dyn Fn(&Path) -> bool,
) -> Option<String> {
    if arg.is_empty() || arg.starts_with('-') || arg.contains('\n') {
        return None;
    }
    let abs = resolve(cwd, Path::new(arg));
    if !abs.starts_with(cwd) {
        return None;
    }
    if abs == cwd || !abs.is_file() || in_project(&abs) {
        return None;
    }
    let packed = placed
        .iter()
        .any(|p| p.source == abs && p.entry.starts_with("scenario/"))
        || included
            .iter()
            .any(|inc| inc.is_dir && abs.starts_with(&inc.source));
    (!packed).then(|| {
        format!("the command names {arg}, which is not in the bundle; add --include {arg} so that replay finds it")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn placed(source: &str, entry: &str) -> Placed {
        Placed {
            entry: entry.to_owned(),
            source: PathBuf::from(source),
            source_bytes: 0,
            kept_bytes: 0,
            staged: PathBuf::new(),
        }
    }

    fn args(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn paths_outside_the_directory_become_their_packed_places() {
        let cwd = Path::new("/repo/app");
        let p = [placed("/repo/tools/x.sh", "scenario/tools/x.sh")];
        let inc = [Included {
            given: PathBuf::from("../tools/x.sh"),
            source: PathBuf::from("/repo/tools/x.sh"),
            place: "tools/x.sh".to_owned(),
            is_dir: false,
        }];
        let (run, _) = rewrite(
            &args(&["sh", "../tools/x.sh", "--in=/repo/tools/x.sh"]),
            cwd,
            &p,
            &inc,
            &|_| false,
        )
        .unwrap();
        assert_eq!(run, ["sh", "tools/x.sh", "--in=tools/x.sh"]);
        let err = rewrite(
            &args(&["sh", "-c", "sh ../tools/x.sh"]),
            cwd,
            &p,
            &inc,
            &|_| false,
        )
        .unwrap_err();
        assert!(err.to_string().contains("../tools/x.sh"), "{err}");
    }

    #[test]
    fn a_program_and_directories_are_rewritten_too() {
        let cwd = Path::new("/repo/app");
        let inc = [Included {
            given: PathBuf::from("/opt/kit"),
            source: PathBuf::from("/opt/kit"),
            place: "kit".to_owned(),
            is_dir: true,
        }];
        let p = [placed("/opt/kit/run", "scenario/kit/run")];
        let (run, _) = rewrite(
            &args(&["/opt/kit/run", "/opt/kit/data/a.json", "/opt/kit"]),
            cwd,
            &p,
            &inc,
            &|_| false,
        )
        .unwrap();
        assert_eq!(run, ["kit/run", "kit/data/a.json", "kit"]);
        let inc = [Included {
            given: PathBuf::from("/opt/x.sh"),
            source: PathBuf::from("/opt/x.sh"),
            place: "x.sh".to_owned(),
            is_dir: false,
        }];
        let p = [placed("/opt/x.sh", "scenario/x.sh")];
        let (run, _) = rewrite(&args(&["/opt/x.sh"]), cwd, &p, &inc, &|_| false).unwrap();
        assert_eq!(run, ["./x.sh"]);
    }

    #[test]
    fn other_paths_stay_as_typed() {
        let cwd = Path::new("/repo/app");
        let (run, notes) = rewrite(
            &args(&["/usr/bin/python3", "-c", "print(1)", "../elsewhere"]),
            cwd,
            &[],
            &[],
            &|_| false,
        )
        .unwrap();
        assert_eq!(run, ["/usr/bin/python3", "-c", "print(1)", "../elsewhere"]);
        assert!(notes.is_empty());
        // A file in the directory that was not included gets a note.
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("run.sh");
        std::fs::write(&script, "true\n").unwrap();
        let abs = script.display().to_string();
        let (_, notes) = rewrite(
            &args(&["sh", "run.sh", &abs]),
            dir.path(),
            &[],
            &[],
            &|_| false,
        )
        .unwrap();
        assert_eq!(notes.len(), 2, "{notes:?}");
        assert!(notes[0].contains("--include run.sh"), "{notes:?}");
        // A file of the repository is in any checkout of it: no note.
        let (_, notes) = rewrite(&args(&["sh", "run.sh"]), dir.path(), &[], &[], &|p| {
            p == script
        })
        .unwrap();
        assert!(notes.is_empty(), "{notes:?}");
        let inc = [Included {
            given: PathBuf::from("/opt"),
            source: PathBuf::from("/opt"),
            place: "opt".to_owned(),
            is_dir: true,
        }];
        let (run, _) = rewrite(&args(&["sh", "-c", "ls /optimal"]), cwd, &[], &inc, &|_| {
            false
        })
        .unwrap();
        assert_eq!(run[2], "ls /optimal");
        assert!(
            rewrite(&args(&["sh", "-c", "ls /opt/a"]), cwd, &[], &inc, &|_| {
                false
            })
            .is_err()
        );
    }
}
