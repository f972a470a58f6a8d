//! The guarantee of DESIGN.md "Redaction": after a capture, no secret value
//! appears anywhere: in any bundle entry, in the raw zip bytes, in the issue
//! text beside it, or in bugpack's own output with `-vv`.

use std::fs;
use std::process::Command;

use crate::capture::entries;
use crate::support::Sandbox;

/// Each secret with a label; the values are fake but real-shaped.
const SECRETS: &[(&str, &str)] = &[
    ("github classic", "ghp_Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2Ji1Hg0Fe9Dc8"),
    ("github oauth", "gho_Ab1Cd2Ef3Gh4Ij5Kl6Mn7Op8Qr9St0Uv1Wx2"),
    (
        "github fine-grained",
        "github_pat_11AAAAAAA0abcdefghijkl_mnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ012345",
    ),
    ("gitlab", "glpat-Qw3Er4Ty5Ui6Op7As8Df"),
    (
        "slack bot",
        "xoxb-2222222222-3333333333333-AbCdEfGhIjKlMnOpQrStUv",
    ),
    (
        "slack user",
        "xoxp-4444444444-5555555555555-ZyXwVuTsRqPoNmLkJiHg",
    ),
    (
        "slack webhook",
        "https://hooks.slack.com/services/T11111111/B22222222/abcdefghijklmnopqrstuvwx",
    ),
    ("stripe live", "sk_live_51AbCdEfGhIjKlMnOpQrStUv"),
    ("stripe restricted", "rk_live_51ZyXwVuTsRqPoNmLkJiHgFe"),
    ("stripe webhook", "whsec_MnOpQrStUvWxYz0123456789ab"),
    ("aws key id", "AKIAQWERTYUIOPASDFGH"),
    ("aws secret", "Zx81kLmN0pQrS7tUvWx9yZaBcDeFgHiJkLmNoPqR"),
    ("google api", "AIzaSyA1b2C3d4E5f6G7h8I9j0KlMnOpQrStUvW"),
    (
        "google oauth",
        "ya29.a0AbCdEfGhIjKlMnOpQrStUvWxYz0123456789",
    ),
    (
        "google client secret",
        "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",
    ),
    (
        "jwt",
        "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSIsImFkbWluIjp0cnVlfQ.c2lnbmF0dXJlLW9mLXRoZS10b2tlbg",
    ),
    (
        "rsa key body",
        "MIIEowIBAAKCAQEAz8xq9Wv7Ut6Sr5Qp4On3Ml2Kj1Ih0Gf9Ed8Cb7Aa6Zy5Xw4Vu",
    ),
    (
        "openssh key body",
        "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW",
    ),
    ("postgres url password", "pgSup3rS3cr3t"),
    (
        "git remote token",
        "ghp_Rm0teT0kenValue9876543210AbCdEfGhIjK",
    ),
    ("bearer header", "bearer-value-7f6e5d4c3b2a1908"),
    ("basic header", "YWRtaW46czNjcjN0LXBhc3N3b3Jk"),
    ("cookie", "sessionid=c00k1e-v4lue-8877665544"),
    ("set-cookie", "refresh=s3t-c00k1e-1122334455"),
    ("ini password", "ini-pa55w0rd-value"),
    ("yaml secret", "yaml-s3cr3t-value"),
    ("json token", "json-t0ken-value-abc"),
    ("toml api key", "toml-ap1-key-value-xyz"),
    (".env password", "dotenv-pa55-value"),
    ("secret env var", "env-only-secret-0192837465"),
    ("url in env var", "envUrlPa55w0rd"),
    ("custom rule", "zeus-internal-7731"),
    ("cli flag", "flag-pa55w0rd-4455"),
    ("echoed by the command", "printed-by-command-5566"),
    ("x-api-key header", "xApiKeyHeaderValue-2468"),
    ("api-key with a dash", "dashApiKeyValue-1357"),
    ("short pass name", "dbPassShortName-9753"),
    (".netrc password", "netrcPassw0rdValue-8642"),
    ("file name", "ghp_F1leNameT0kenValue0123456789abcdefgh"),
    ("cli flag value", "cliFlagSecretValue-1122"),
];

fn secret(label: &str) -> &'static str {
    SECRETS
        .iter()
        .find(|(l, _)| *l == label)
        .map_or_else(|| panic!("no secret labelled {label}"), |(_, s)| *s)
}

#[test]
fn no_secret_reaches_the_bundle_or_the_terminal() {
    assert!(SECRETS.len() >= 30);
    let sb = Sandbox::new();
    let s = secret;
    sb.write(
        "conf/app.ini",
        format!(
            "[db]\nhost = db.local\npassword = {}\nurl = postgres://app:{}@db.local/app\n",
            s("ini password"),
            s("postgres url password")
        ),
    );
    sb.write(
        "conf/config.yaml",
        format!(
            "service:\n  client_secret: {}\n  region: eu\n",
            s("yaml secret")
        ),
    );
    sb.write(
        "conf/settings.json",
        format!(
            "{{\"name\": \"app\", \"auth_token\": \"{}\"}}\n",
            s("json token")
        ),
    );
    sb.write(
        "conf/app.toml",
        format!(
            "[api]\napi_key = \"{}\"\nstripe = \"{}\"\n",
            s("toml api key"),
            s("stripe restricted")
        ),
    );
    sb.write(
        "conf/.env",
        format!(
            "PASSWORD={}\nSLACK_USER={}\nDB_PASS={}\n",
            s(".env password"),
            s("slack user"),
            s("short pass name")
        ),
    );
    sb.write(
        "conf/api.conf",
        format!(
            "X-API-Key: {}\napi-key = {}\n",
            s("x-api-key header"),
            s("api-key with a dash")
        ),
    );
    sb.write(
        "conf/.netrc",
        format!(
            "machine api.example.com login bot password {}\n",
            s(".netrc password")
        ),
    );
    sb.write(&format!("conf/{}.ini", s("file name")), "[x]\ny = 1\n");
    sb.write(
        "logs/http.log",
        format!(
            "> GET /api HTTP/1.1\n> Authorization: Bearer {}\n> Cookie: {}\n< Set-Cookie: {}; HttpOnly\n\
             proxy auth Authorization: Basic {}\njwt={} key={}\naws {} {}\n",
            s("bearer header"),
            s("cookie"),
            s("set-cookie"),
            s("basic header"),
            s("jwt"),
            s("google api"),
            s("aws key id"),
            s("gitlab")
        ),
    );
    sb.write(
        "run.sh",
        format!(
            "echo \"using $MY_APP_TOKEN\"\necho '{}' >&2\necho 'aws_secret_access_key = {}'\n\
             echo '-----BEGIN RSA PRIVATE KEY-----'\necho '{}'\necho '-----END RSA PRIVATE KEY-----'\n\
             echo 'oauth {} {}'\necho 'token={}'\nexit 1\n",
            s("stripe live"),
            s("aws secret"),
            s("rsa key body"),
            s("google oauth"),
            s("google client secret"),
            s("echoed by the command")
        ),
    );
    sb.write(
        "id_demo",
        format!(
            "-----BEGIN OPENSSH PRIVATE KEY-----\n{}\n-----END OPENSSH PRIVATE KEY-----\n",
            s("openssh key body")
        ),
    );
    sb.write(
        "steps.md",
        format!(
            "1. posted to {} with {}\n2. the bot token {} stopped working\n3. see zeus host {}\n4. ran app --password={}\n",
            s("slack webhook"),
            s("github oauth"),
            s("slack bot"),
            s("custom rule"),
            s("cli flag")
        ),
    );
    let git = |args: &[&str]| {
        let st = Command::new("git")
            .args(args)
            .current_dir(sb.dir())
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@example.com")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@example.com")
            .output()
            .unwrap();
        assert!(st.status.success(), "git {args:?}");
    };
    git(&["init", "-q"]);
    git(&[
        "remote",
        "add",
        "origin",
        &format!("https://{}@github.com/acme/app.git", s("git remote token")),
    ]);
    git(&[
        "remote",
        "add",
        "mirror",
        &format!(
            "https://bot:{}@gitlab.example.com/acme/app.git",
            s("github fine-grained")
        ),
    ]);

    let out = sb
        .bugpack()
        .env("MY_APP_TOKEN", s("secret env var"))
        .env("GITHUB_TOKEN", s("github classic"))
        .env(
            "DATABASE_URL",
            format!("postgres://svc:{}@db/app", s("url in env var")),
        )
        .env("STRIPE_WEBHOOK", s("stripe webhook"))
        .args([
            "-vv", "capture", "-o", "bug.zip", "--title", "leaky", "--steps", "steps.md",
        ])
        .args([
            "--config",
            "conf",
            "--config",
            "id_demo",
            "--log",
            "logs/http.log",
            "--include",
            "run.sh",
        ])
        .args(["--redact", "zeus-internal-[0-9]+", "--", "sh", "run.sh"])
        .args(["--token", s("cli flag value")])
        .run()
        .success();

    let bundle = sb.path("bug.zip");
    let raw = fs::read(&bundle).unwrap();
    let issue = fs::read_to_string(sb.path("bug.zip.md")).unwrap();
    let all = entries(&bundle);
    for (label, value) in SECRETS {
        let needle = value.as_bytes();
        for (name, data) in &all {
            assert!(
                !contains(data, needle),
                "{label} survived in {name}:\n{}",
                String::from_utf8_lossy(data)
            );
        }
        assert!(!contains(&raw, needle), "{label} is in the raw zip bytes");
        assert!(!issue.contains(value), "{label} is in the issue text");
        assert!(!out.stdout.contains(value), "{label} is in stdout");
        assert!(!out.stderr.contains(value), "{label} is in stderr");
    }
    // The surrounding text survived, and the manifest counts what was done.
    let get = |name: &str| {
        let (_, d) = all
            .iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("no {name}"));
        String::from_utf8_lossy(d).into_owned()
    };
    assert!(get("config/conf/app.ini").contains("host = db.local"));
    assert!(get("logs/logs/http.log").contains("> GET /api HTTP/1.1"));
    assert!(get("env/vars.yaml").contains("MY_APP_TOKEN: '[REDACTED:env:"));
    assert!(get("git/repo.yaml").contains("github.com/acme/app.git"));
    let manifest = get("bugpack.yaml");
    for rule in [
        "env",
        "github-token",
        "password",
        "private-key",
        "cookie-header",
        "authorization-header",
        "custom",
    ] {
        assert!(
            manifest.contains(&format!("  {rule}: ")),
            "manifest lacks a count for {rule}\n{manifest}"
        );
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Every entry and the raw zip bytes lack `secret`.
fn nowhere_in(bundle: &std::path::Path, secret: &str) {
    let raw = fs::read(bundle).unwrap();
    assert!(
        !contains(&raw, secret.as_bytes()),
        "{secret} is in the raw zip bytes"
    );
    for (name, data) in entries(bundle) {
        assert!(
            !contains(&data, secret.as_bytes()),
            "{secret} survived in {name}:\n{}",
            String::from_utf8_lossy(&data)
        );
    }
}

/// Output whose last 1 MiB (the tail capture keeps) starts two bytes into
/// `password=<secret>`: a naive cut would keep `ssword=<secret>`, which no
/// rule recognises.
fn cut_inside_a_key_name(secret: &str) -> String {
    const TAIL: usize = 1 << 20;
    let head = format!("{}\n", "x".repeat(100));
    let key = format!("password={secret}\n");
    let total = TAIL + head.len() + 2;
    let mut out = head + &key;
    let line = format!("{}\n", "y".repeat(99));
    while out.len() + line.len() <= total {
        out.push_str(&line);
    }
    let rest = total - out.len();
    if rest > 0 {
        out.push_str(&"z".repeat(rest - 1));
        out.push('\n');
    }
    assert_eq!(out.len(), total);
    out
}

#[test]
fn a_tail_cut_inside_a_key_name_leaks_nothing() {
    let sb = Sandbox::new();
    let secret = "LeakedSecret99";
    sb.write("out.txt", cut_inside_a_key_name(secret));
    // One line longer than the tail: the cut splits the key name too, and
    // the line's start is within the context read before the cut.
    let long = "LongLineSecret77";
    let key = format!("password={long}");
    let line = format!(
        "{} {key} {}\n",
        "a".repeat(50),
        "b".repeat((1 << 20) - key.len())
    );
    sb.write("long.txt", &line);
    sb.bugpack()
        .args([
            "capture",
            "-o",
            "bug.zip",
            "--",
            "sh",
            "-c",
            "cat out.txt; cat long.txt >&2; exit 1",
        ])
        .run()
        .success();
    let bundle = sb.path("bug.zip");
    nowhere_in(&bundle, secret);
    nowhere_in(&bundle, long);
    let stdout = crate::capture::entry(&bundle, "observed/stdout.log");
    assert!(
        stdout.starts_with("yyyy"),
        "the tail starts at a line: {}",
        &stdout[..40]
    );
    let stderr = crate::capture::entry(&bundle, "observed/stderr.log");
    assert!(stderr.contains("[REDACTED:password:"), "{}", &stderr[..80]);
    assert!(stderr.ends_with("bbb\n"));

    // A log tail, the same way.
    let log_secret = "LogTailSecret55";
    let text = format!("first\npassword={log_secret}\nfiller line one\nfiller line two\n");
    let cut = text.find("password").unwrap() + 2;
    sb.write("app.log", &text);
    let tail = text.len() - cut;
    sb.bugpack()
        .args([
            "capture",
            "-o",
            "log.zip",
            "--log",
            "app.log",
            "--log-bytes",
            &tail.to_string(),
        ])
        .run()
        .success();
    nowhere_in(&sb.path("log.zip"), log_secret);
    assert_eq!(
        crate::capture::entry(&sb.path("log.zip"), "logs/app.log"),
        "filler line one\nfiller line two\n"
    );
}

#[test]
fn bugpacks_own_words_never_print_a_secret() {
    use std::io::{BufRead as _, BufReader, Write as _};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        for stream in listener.incoming().take(2) {
            let mut stream = stream.unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            while reader.read_line(&mut line).unwrap() > 2 {
                line.clear();
            }
            stream
                .write_all(b"HTTP/1.1 500 Oops\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                .unwrap();
        }
    });
    let token = "ghp_Cl1ArgT0kenValue0123456789abcdefghij";
    let env_secret = "envOnlySecretValue-3141";
    let probe_password = "pr0bePassw0rdValue";
    let cli_password = "cliPassw0rd99";
    let sb = Sandbox::new();
    let url = format!("http://probe:{probe_password}@127.0.0.1:{port}/status");
    let mut run = sb.bugpack();
    for var in ["http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"] {
        run = run.env_remove(var);
    }
    let out = run
        .env("MY_APP_TOKEN", env_secret)
        .args(["-vv", "capture", "-o", "bug.zip", "--probe", &url, "--"])
        .args(["sh", "-c", "echo \"$MY_APP_TOKEN\"; exit 3", "sh"])
        .args([
            &format!("--password={cli_password}"),
            token,
            "--api-key",
            "cliApiK3y-7788",
        ])
        .run()
        .success()
        .stderr_has("running `");
    server.join().unwrap();
    for secret in [
        token,
        env_secret,
        probe_password,
        cli_password,
        "cliApiK3y-7788",
    ] {
        assert!(
            !out.stdout.contains(secret),
            "{secret} in stdout\n{}",
            out.stdout
        );
        assert!(
            !out.stderr.contains(secret),
            "{secret} in stderr\n{}",
            out.stderr
        );
        nowhere_in(&sb.path("bug.zip"), secret);
    }

    // Errors quote what the user typed: never the secret in it.
    for (args, needle) in [
        (vec!["--", token], "no such command"),
        (
            vec!["--probe", "ftp://u:ftpPassw0rdValue@files/x"],
            "--probe",
        ),
        (vec!["--redact", "cliPassw0rd99("], "--redact"),
        (vec!["--log", &format!("logs/{token}.log")], "no such file"),
    ] {
        let out = sb
            .bugpack()
            .args(["-vv", "capture", "-o", "x.zip"])
            .args(&args)
            .run()
            .code(2)
            .stderr_has(needle);
        for secret in [token, "ftpPassw0rdValue", "cliPassw0rd99"] {
            assert!(!out.stderr.contains(secret), "{secret} in\n{}", out.stderr);
        }
    }
}

#[test]
fn a_token_in_a_url_query_goes_and_the_parameters_after_it_stay() {
    let sb = Sandbox::new();
    sb.write(
        "app.log",
        "GET /v1/items?access_token=q7Rt9Zx2Lm4Np8Vb&page=2&sort=name#top 200\n\
         POST /login?user=bob&password=Hunt3rHunt3r&next=/home 302\n",
    );
    sb.bugpack()
        .args(["capture", "-o", "bug.zip", "--log", "app.log"])
        .run()
        .success();
    let bundle = sb.path("bug.zip");
    for secret in ["q7Rt9Zx2Lm4Np8Vb", "Hunt3rHunt3r"] {
        nowhere_in(&bundle, secret);
    }
    let log = crate::capture::entry(&bundle, "logs/app.log");
    assert_eq!(
        log,
        "GET /v1/items?access_token=[REDACTED:token:1]&page=2&sort=name#top 200\n\
         POST /login?user=bob&password=[REDACTED:password:1]&next=/home 302\n"
    );
}
