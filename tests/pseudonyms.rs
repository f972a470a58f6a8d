//! Issue 18, part 2: the user's name, host names, home directory, container
//! names, the words they add and their addresses become pseudonyms, the same
//! one for the same value in every entry of a bundle and in the issue text;
//! the map back stays on the user's machine (mode 0600) and `bugpack unmask`
//! reads a reply back with it.

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::PathBuf;
use std::process::Command;

use crate::capture::entries;
use crate::support::{Sandbox, contains};

/// What identifies the user in this test: none of it may reach the bundle.
const REAL: &[&str] = &[
    "ajohansson",
    "build7",
    "build7.corp.initech.example",
    "checkout-5d8f9c-x2x7q",
    "Initech",
    "initech",
    "10.20.30.40",
    "10.20.30.41",
    "172.31.9.8",
    "2a01:4f8:c0c:1234::10",
    "3c:22:fb:12:34:56",
];

struct Project {
    sb: Sandbox,
    repo: PathBuf,
    home: PathBuf,
}

/// A git project in the user's home with a remote on the user's host, a
/// config and a log that name the user, the host and addresses, and a
/// command that prints them too.
fn project() -> Project {
    let sb = Sandbox::new();
    let home = sb.path("home/ajohansson");
    let repo = home.join("src/shop");
    fs::create_dir_all(&repo).unwrap();
    let git = |args: &[&str]| {
        let out = Command::new("git")
            .args(args)
            .current_dir(&repo)
            .env("HOME", &home)
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}: {out:?}");
    };
    git(&["init", "-q", "-b", "main"]);
    git(&[
        "remote",
        "add",
        "origin",
        "ssh://ajohansson@build7.corp.initech.example/srv/git/shop.git",
    ]);
    fs::write(
        repo.join("app.toml"),
        "[db]\nhost = \"10.20.30.40\"\nreplica = \"10.20.30.41\"\nowner = \"ajohansson\"\n\
         [node]\nname = \"build7\"\nmac = \"3c:22:fb:12:34:56\"\nv6 = \"2a01:4f8:c0c:1234::10\"\n\
         loopback = \"127.0.0.1\"\ndocs = \"192.0.2.10\"\nversion = \"1.2.3.4.5\"\n",
    )
    .unwrap();
    fs::write(
        repo.join("app.log"),
        "10:00:01 build7 worker started by ajohansson for Initech\n\
         10:00:02 connecting to 10.20.30.40:5432 from 172.31.9.8\n\
         10:00:03 pod checkout-5d8f9c-x2x7q ready\n",
    )
    .unwrap();
    fs::write(
        repo.join("main.py"),
        "import os\n\
         print('user', os.environ['USER'], 'on', 'build7.corp.initech.example')\n\
         print('home', os.path.expanduser('~'), 'db 10.20.30.40 for INITECH')\n\
         raise SystemExit(3)\n",
    )
    .unwrap();
    git(&["add", "-A"]);
    git(&[
        "-c",
        "user.email=dev@example.com",
        "-c",
        "user.name=dev",
        "commit",
        "-qm",
        "shop",
    ]);
    Project { sb, repo, home }
}

impl Project {
    fn capture(&self, extra: &[&str]) -> crate::support::Outcome {
        let mut args: Vec<String> = [
            "capture",
            "--config",
            "app.toml",
            "--log",
            "app.log",
            "--obfuscate",
            "initech",
            "-o",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        args.push(self.sb.path("bug.zip").display().to_string());
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        args.extend(["--", "python3", "main.py"].map(str::to_owned));
        self.sb
            .bugpack()
            .in_dir(&self.repo)
            .env("HOME", &self.home)
            .env("USER", "ajohansson")
            .env("LOGNAME", "ajohansson")
            .env("HOSTNAME", "build7.corp.initech.example")
            .env("POD_NAME", "checkout-5d8f9c-x2x7q")
            .env("XDG_DATA_HOME", self.sb.path("data"))
            .args(args)
            .run()
    }

    fn bundle(&self) -> PathBuf {
        self.sb.path("bug.zip")
    }

    fn maps(&self) -> PathBuf {
        self.sb.path("data/bugpack/pseudonyms")
    }

    fn entry(&self, name: &str) -> String {
        crate::capture::entry(&self.bundle(), name)
    }

    fn id(&self) -> String {
        let manifest = self.entry("bugpack.yaml");
        manifest
            .lines()
            .find_map(|l| l.strip_prefix("id: "))
            .unwrap()
            .trim()
            .to_owned()
    }
}

/// Every text a capture leaves for the public: each bundle entry, the raw
/// zip bytes and the issue text beside it.
fn public_texts(p: &Project) -> Vec<(String, Vec<u8>)> {
    let mut out = entries(&p.bundle());
    out.push(("(zip bytes)".to_owned(), fs::read(p.bundle()).unwrap()));
    out.push((
        "bug.zip.md".to_owned(),
        fs::read(p.sb.path("bug.zip.md")).unwrap(),
    ));
    out
}

#[test]
fn names_hosts_homes_and_addresses_become_the_same_pseudonyms_everywhere() {
    let p = project();
    let out = p.capture(&[]).success();
    let home = p.home.display().to_string();
    for (name, data) in public_texts(&p) {
        for real in REAL.iter().copied().chain([home.as_str()]) {
            assert!(
                !contains(&data, real),
                "{real:?} is in {name}:\n{}",
                String::from_utf8_lossy(&data)
            );
        }
    }
    // The same value has the same pseudonym in every entry and the issue.
    let vars = p.entry("env/vars.yaml");
    let config = p.entry("config/app.toml");
    let log = p
        .entry(&format!("logs/{}", "app.log"))
        .replace("\r\n", "\n");
    let remote = p.entry("git/repo.yaml");
    let stdout = p.entry("observed/stdout.log");
    let issue = fs::read_to_string(p.sb.path("bug.zip.md")).unwrap();
    assert!(vars.contains("USER: user-1"), "{vars}");
    assert!(vars.contains("HOME: /home/user-1"), "{vars}");
    assert!(vars.contains("HOSTNAME: host-1.example.com"), "{vars}");
    // The machine running the tests may have container names of its own.
    let pod = vars
        .lines()
        .find_map(|l| l.strip_prefix("POD_NAME: "))
        .unwrap_or_else(|| panic!("no POD_NAME in {vars}"));
    assert!(pod.starts_with("container-"), "{vars}");
    assert!(config.contains("owner = \"user-1\""), "{config}");
    assert!(config.contains("name = \"host-1\""), "{config}");
    assert!(
        log.contains("host-1 worker started by user-1 for word-1"),
        "{log}"
    );
    assert!(log.contains(&format!("pod {pod} ready")), "{log}");
    assert!(
        remote.contains("ssh://user-1@host-1.example.com/srv/git/shop.git"),
        "{remote}"
    );
    assert!(
        stdout.contains("user user-1 on host-1.example.com"),
        "{stdout}"
    );
    assert!(stdout.contains("home /home/user-1 "), "{stdout}");
    assert!(issue.contains("user-1 on host-1.example.com"), "{issue}");
    // Addresses: one pseudonym per address, a shared /24 kept shared,
    // another /24 elsewhere; loopback, documentation and version strings stay.
    let db = field(&config, "host");
    let replica = field(&config, "replica");
    assert_eq!(db.rsplit_once('.').unwrap().1, "40");
    assert_eq!(
        db.rsplit_once('.').unwrap().0,
        replica.rsplit_once('.').unwrap().0,
        "addresses of one /24 share a pseudonymous /24: {config}"
    );
    assert!(
        log.contains(&format!("connecting to {db}:5432 from ")),
        "{log}"
    );
    assert!(stdout.contains(&format!("db {db} for word-1")), "{stdout}");
    let other = log
        .lines()
        .find(|l| l.contains("connecting"))
        .and_then(|l| l.rsplit(' ').next())
        .unwrap();
    assert_ne!(
        other.rsplit_once('.').unwrap().0,
        db.rsplit_once('.').unwrap().0
    );
    assert!(config.contains("mac = \"02:00:00:00:00:01\""), "{config}");
    assert!(!field(&config, "v6").starts_with("2a01"), "{config}");
    for kept in ["127.0.0.1", "192.0.2.10", "1.2.3.4.5"] {
        assert!(config.contains(kept), "{kept} should stay: {config}");
    }
    // The summary says where the map is; the map is the user's alone.
    out.stdout_has("as pseudonyms")
        .stdout_has(&format!("bugpack unmask {}", p.id()));
    let map = p.maps().join(format!("{}.yaml", p.id()));
    let mode = fs::metadata(&map).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{}", map.display());
    let dir_mode = fs::metadata(p.maps()).unwrap().permissions().mode() & 0o777;
    assert_eq!(dir_mode, 0o700);
    let map_text = fs::read_to_string(&map).unwrap();
    assert!(map_text.contains("real: ajohansson"), "{map_text}");
    assert!(
        !entries(&p.bundle())
            .iter()
            .any(|(_, d)| contains(d, "real: ajohansson")),
        "the map is never in the bundle"
    );
}

fn field(text: &str, key: &str) -> String {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{key} = \"")))
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or_else(|| panic!("no {key} in {text}"))
        .to_owned()
}

#[test]
fn unmask_puts_the_real_values_back_in_a_reply() {
    let p = project();
    p.capture(&[]).success();
    let stdout = p.entry("observed/stdout.log");
    let run_unmask = |id: &str, text: &str| {
        p.sb.bugpack()
            .env("XDG_DATA_HOME", p.sb.path("data"))
            .args(["unmask", id])
            .stdin(text.as_bytes().to_vec())
            .run()
    };
    // The bundle's own output comes back as the command printed it.
    let back = run_unmask(&p.id(), &stdout).success();
    assert_eq!(
        back.stdout,
        format!(
            "user ajohansson on build7.corp.initech.example\nhome {} db 10.20.30.40 for INITECH\n",
            p.home.display()
        )
        .replace("INITECH", "Initech"),
    );
    // A maintainer's reply: pseudonyms, and a host of the same /24 that
    // the bundle never held; the id may be shortened, or the bundle named.
    let config = p.entry("config/app.toml");
    let db = field(&config, "host");
    let neighbour = format!("{}.99", db.rsplit_once('.').unwrap().0);
    let reply = format!("Can user-1 reach {neighbour} from host-1? user-10 is someone else.\n");
    let want = "Can ajohansson reach 10.20.30.99 from build7? user-10 is someone else.\n";
    run_unmask(&p.id()[..8], &reply).success();
    assert_eq!(run_unmask(&p.id()[..8], &reply).stdout, want);
    let bundle = p.bundle().display().to_string();
    assert_eq!(run_unmask(&bundle, &reply).success().stdout, want);
    // Wrong ids: one line, exit 2, nothing read from elsewhere.
    run_unmask("../../etc/passwd", "x")
        .code(2)
        .one_line_error()
        .stderr_has("is not a bundle id");
    run_unmask("0123456789abcdef", "x")
        .code(2)
        .one_line_error()
        .stderr_has("no pseudonyms of bundle 0123456789abcdef on this machine");
}

#[test]
fn no_pseudonyms_keeps_names_but_not_the_words_asked_for() {
    let p = project();
    p.capture(&["--no-pseudonyms"]).success();
    let vars = p.entry("env/vars.yaml");
    assert!(vars.contains("USER: ajohansson"), "{vars}");
    let config = p.entry("config/app.toml");
    assert!(config.contains("10.20.30.40"), "{config}");
    let log = p.entry("logs/app.log");
    assert!(
        log.contains("for word-1"),
        "--obfuscate still applies: {log}"
    );
    assert!(!log.contains("Initech"), "{log}");
}

#[test]
fn a_dry_run_shows_each_substitution_and_keeps_no_map() {
    let p = project();
    let out = p.capture(&["--dry-run"]).success();
    for line in [
        "pseudonyms (the map stays on this machine):",
        "env/vars.yaml:1  user  ajohansson -> user-1",
        "config/app.toml:2  ipv4  10.20.30.40 -> ",
        "logs/app.log:1  word  Initech -> word-1",
        "  mac  3c:22:fb:12:34:56 -> 02:00:00:00:00:01",
    ] {
        assert!(out.stdout.contains(line), "no {line:?} in:\n{}", out.stdout);
    }
    assert!(!p.bundle().exists());
    assert!(!p.maps().exists(), "a dry run keeps no map");
}

#[test]
fn a_profile_obfuscates_its_words_for_every_user() {
    let p = project();
    fs::write(p.repo.join(".bugpack.yaml"), "obfuscate: [shop]\n").unwrap();
    p.capture(&[]).success();
    let remote = p.entry("git/repo.yaml");
    assert!(remote.contains("/srv/git/word-"), "{remote}");
    assert!(!remote.contains("shop"), "{remote}");
}
