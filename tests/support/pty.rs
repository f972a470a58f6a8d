//! Runs `bugpack` on a pseudo-terminal, through python3's `pty` module, for
//! what only happens on a terminal: passphrase prompts, replay's consent
//! prompt, colour under `--color auto`. A script of (wait for this text,
//! then type that) pairs drives it.

use std::path::Path;
use std::process::Command;

use super::Sandbox;

/// The driver: forks `argv` on a new pty, answers the script, then reads
/// to EOF and prints what the terminal showed and the exit code as JSON.
/// The deadline only stops a hung test; nothing asserts on time.
const DRIVER: &str = r#"
import json, os, pty, select, signal, sys, termios, time
spec = json.loads(sys.argv[1])
pid, fd = pty.fork()
if pid == 0:
    os.chdir(spec["cwd"])
    # A person's terminal delivers Ctrl-C and Ctrl-\ to a program that
    # acts on them, whatever started these tests (a background job ignores
    # SIGINT, and an ignored signal stays ignored across exec).
    for sig in (signal.SIGINT, signal.SIGQUIT):
        signal.signal(sig, signal.SIG_DFL)
    os.execve(spec["argv"][0], spec["argv"], spec["env"])
out = b""
def read_some(deadline):
    global out
    left = deadline - time.monotonic()
    if left <= 0:
        return False
    ready, _, _ = select.select([fd], [], [], left)
    if not ready:
        return False
    try:
        data = os.read(fd, 65536)
    except OSError:
        return False
    if not data:
        return False
    out += data
    return True
missing = None
for expect, send, secret in spec["script"]:
    deadline = time.monotonic() + 120
    while expect.encode() not in out:
        if not read_some(deadline):
            missing = expect
            break
    if missing is not None:
        break
    # A secret is typed only once the program has turned echo off, as a
    # person would see the prompt first; the terminal shows whether it did.
    while secret and termios.tcgetattr(fd)[3] & termios.ECHO:
        if time.monotonic() > deadline:
            missing = "echo turned off for " + expect
            break
        time.sleep(0.01)
    if missing is not None:
        break
    os.write(fd, send.encode())
if missing is not None:
    os.kill(pid, 9)
deadline = time.monotonic() + 300
while read_some(deadline):
    pass
_, status = os.waitpid(pid, 0)
print(json.dumps({"code": os.waitstatus_to_exitcode(status),
                  "output": out.decode("utf-8", "replace"),
                  "missing": missing}))
"#;

/// What the terminal showed (stdout and stderr together, as a user sees
/// them) and how the command exited.
#[derive(Debug)]
pub struct PtyOutcome {
    pub code: i32,
    pub output: String,
}

impl Sandbox {
    /// Runs `bugpack ARGS` on a terminal in this sandbox, with `env` added,
    /// answering `script`: each pair waits for its text, then types its input.
    pub fn bugpack_on_pty(
        &self,
        args: &[&str],
        env: &[(&str, &str)],
        script: &[(&str, &str)],
    ) -> PtyOutcome {
        let script: Vec<(&str, &str, bool)> = script.iter().map(|&(e, s)| (e, s, false)).collect();
        self.pty(args, env, &script)
    }

    /// Like [`Sandbox::bugpack_on_pty`], but each input is a secret typed
    /// only after the program turned the terminal's echo off.
    pub fn bugpack_on_pty_secret(
        &self,
        args: &[&str],
        env: &[(&str, &str)],
        script: &[(&str, &str)],
    ) -> PtyOutcome {
        let script: Vec<(&str, &str, bool)> = script.iter().map(|&(e, s)| (e, s, true)).collect();
        self.pty(args, env, &script)
    }

    fn pty(
        &self,
        args: &[&str],
        env: &[(&str, &str)],
        script: &[(&str, &str, bool)],
    ) -> PtyOutcome {
        let mut argv = vec![env!("CARGO_BIN_EXE_bugpack").to_owned()];
        argv.extend(args.iter().map(|a| (*a).to_owned()));
        let mut vars = serde_json::Map::new();
        let path = std::env::var("PATH").unwrap_or_default();
        let home = self.home();
        let tmp = self.tmp();
        for (k, v) in [
            ("PATH", path.as_str()),
            ("HOME", path_str(&home)),
            ("TMPDIR", path_str(&tmp)),
            ("LANG", "C.UTF-8"),
            ("TERM", "xterm"),
        ]
        .into_iter()
        .chain(env.iter().copied())
        {
            vars.insert(k.to_owned(), v.into());
        }
        let spec = serde_json::json!({
            "argv": argv,
            "cwd": path_str(&self.dir()),
            "env": vars,
            "script": script,
        });
        let out = Command::new("python3")
            .arg("-c")
            .arg(DRIVER)
            .arg(spec.to_string())
            .output()
            .expect("python3 runs");
        assert!(
            out.status.success(),
            "pty driver failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let result: serde_json::Value =
            serde_json::from_slice(&out.stdout).expect("the driver prints JSON");
        let output = result["output"].as_str().unwrap_or_default().to_owned();
        if let Some(missing) = result["missing"].as_str() {
            panic!("bugpack {args:?} never showed {missing:?}; the terminal showed:\n{output}");
        }
        PtyOutcome {
            code: i32::try_from(result["code"].as_i64().unwrap()).unwrap(),
            output,
        }
    }
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("test paths are UTF-8")
}
