//! Judging a run: did the bug show?
//!
//! A run reproduces when ANY of the scenario's expectations holds: it hung
//! (`hang`), it exited as expected (`exit`), or its output matched
//! (`output`). Anything that kept the scenario from being tried (setup
//! failed, a service never got ready, the sandbox failed) is an `error`,
//! never a reproduction; so is a hang the scenario does not expect.

use std::fs::File;
use std::io::{Read as _, Seek as _, SeekFrom};
use std::path::Path;

use crate::scenario::{ExitSpec, Expect};

/// The most output, from the end of each stream, that `expect.output` is matched against.
const MATCH_WINDOW: u64 = 16 << 20;

pub use crate::run::Outcome;

/// How the judged step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// Still running at the timeout.
    Hang,
    /// It ended by itself: an exit code, or the signal that killed it.
    Exited {
        code: Option<i32>,
        signal: Option<i32>,
    },
}

/// The outcome, the reason (`hang`, `exit`, `output`, or for others what
/// happened), and the matched line for `output`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Judgement {
    pub outcome: Outcome,
    pub reason: String,
    pub matched: Option<String>,
}

/// Judges a run that got as far as its `run` step.
pub fn judge(expect: &Expect, ending: Ending, stdout: &Path, stderr: &Path) -> Judgement {
    let verdict = |outcome, reason: &str, matched| Judgement {
        outcome,
        reason: reason.to_owned(),
        matched,
    };
    if ending == Ending::Hang {
        if expect.hang {
            return verdict(Outcome::Reproduced, "hang", None);
        }
        return verdict(
            Outcome::Error,
            "timeout (the scenario does not expect a hang)",
            None,
        );
    }
    let Ending::Exited { code, signal } = ending else {
        return verdict(Outcome::Error, "unknown ending", None);
    };
    // `sh -c` says 127 when the command does not exist and 126 when it
    // cannot be executed: the scenario was never tried.
    if matches!(code, Some(126 | 127)) {
        let said = tail(stderr, 2048);
        if said.contains("not found")
            || said.contains("cannot execute")
            || said.contains("Permission denied")
        {
            let line = said
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("")
                .trim();
            let line: String = line.chars().take(160).collect();
            return verdict(
                Outcome::Error,
                &format!("the run step could not start: {line}"),
                None,
            );
        }
    }
    let exit_holds = match expect.exit {
        None => false,
        Some(ExitSpec::Nonzero) => code != Some(0) || signal.is_some(),
        Some(ExitSpec::Code(want)) => code == Some(i32::from(want)),
    };
    if exit_holds {
        return verdict(Outcome::Reproduced, "exit", None);
    }
    if let Some(re) = &expect.output {
        for path in [stdout, stderr] {
            if let Some(line) = matching_line(re, path) {
                return verdict(Outcome::Reproduced, "output", Some(line));
            }
        }
    }
    verdict(Outcome::Passed, "passed", None)
}

/// The first line of the last [`MATCH_WINDOW`] bytes of `path` that `re` matches.
fn matching_line(re: &regex::Regex, path: &Path) -> Option<String> {
    let mut file = File::open(path).ok()?;
    let len = file.seek(SeekFrom::End(0)).ok()?;
    file.seek(SeekFrom::Start(len.saturating_sub(MATCH_WINDOW)))
        .ok()?;
    let mut bytes = Vec::new();
    file.take(MATCH_WINDOW).read_to_end(&mut bytes).ok()?;
    let text = String::from_utf8_lossy(&bytes);
    text.lines()
        .find(|l| re.is_match(l))
        .map(|l| l.chars().take(200).collect())
}

/// The last `max` bytes of a file, as text (lossy), for reports.
pub fn tail(path: &Path, max: u64) -> String {
    let Ok(mut file) = File::open(path) else {
        return String::new();
    };
    let len = file.seek(SeekFrom::End(0)).unwrap_or(0);
    if file.seek(SeekFrom::Start(len.saturating_sub(max))).is_err() {
        return String::new();
    }
    let mut bytes = Vec::new();
    let _ = file.take(max).read_to_end(&mut bytes);
    String::from_utf8_lossy(&bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(out: &str, err: &str) -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let o = dir.path().join("out");
        let e = dir.path().join("err");
        std::fs::write(&o, out).unwrap();
        std::fs::write(&e, err).unwrap();
        (dir, o, e)
    }

    fn expect(hang: bool, exit: Option<ExitSpec>, output: Option<&str>) -> Expect {
        Expect {
            hang,
            exit,
            output: output.map(|o| regex::Regex::new(o).unwrap()),
        }
    }

    #[test]
    fn any_expectation_reproduces() {
        let (_d, o, e) = files("ok\n", "status PENDING forever\n");
        let exited = |code| Ending::Exited {
            code: Some(code),
            signal: None,
        };
        let j = judge(&expect(true, None, None), Ending::Hang, &o, &e);
        assert_eq!(
            (j.outcome, j.reason.as_str()),
            (Outcome::Reproduced, "hang")
        );
        let j = judge(
            &expect(false, Some(ExitSpec::Nonzero), None),
            exited(2),
            &o,
            &e,
        );
        assert_eq!(
            (j.outcome, j.reason.as_str()),
            (Outcome::Reproduced, "exit")
        );
        let j = judge(
            &expect(false, Some(ExitSpec::Code(3)), None),
            exited(2),
            &o,
            &e,
        );
        assert_eq!(j.outcome, Outcome::Passed);
        let j = judge(&expect(false, None, Some("PENDING")), exited(0), &o, &e);
        assert_eq!(j.outcome, Outcome::Reproduced);
        assert_eq!(j.matched.as_deref(), Some("status PENDING forever"));
        let killed = Ending::Exited {
            code: None,
            signal: Some(9),
        };
        let j = judge(
            &expect(false, Some(ExitSpec::Nonzero), None),
            killed,
            &o,
            &e,
        );
        assert_eq!(j.outcome, Outcome::Reproduced);
    }

    #[test]
    fn a_missing_command_is_an_error_not_a_reproduction() {
        let (_d, o, e) = files("", "sh: 1: no-such-tool: not found\n");
        let ending = Ending::Exited {
            code: Some(127),
            signal: None,
        };
        let j = judge(
            &expect(false, Some(ExitSpec::Nonzero), None),
            ending,
            &o,
            &e,
        );
        assert_eq!(j.outcome, Outcome::Error);
        assert!(j.reason.contains("no-such-tool: not found"), "{}", j.reason);
    }

    #[test]
    fn an_unexpected_hang_is_an_error_not_a_pass() {
        let (_d, o, e) = files("", "");
        let j = judge(
            &expect(false, Some(ExitSpec::Nonzero), None),
            Ending::Hang,
            &o,
            &e,
        );
        assert_eq!(j.outcome, Outcome::Error);
    }
}
