//! The guarantee of DESIGN.md "Redaction": after a capture, no secret value
//! appears anywhere: in any bundle entry, in the raw zip bytes, in the issue
//! text beside it, or in bugpack's own output with `-vv`.

use std::fs;
use std::process::Command;

use crate::capture::entries;
use crate::support::{Sandbox, contains};

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

/// The published format of each provider's secrets, as templates: `{A32}`
/// is 32 letters and digits, `{H64}` 64 lowercase hex digits, `{U27}` 27
/// upper-case letters and digits, `{B86}` 86 base64 characters, `{D18}` 18
/// digits, `{S27}` 27 URL-safe base64 characters. Each is generated afresh
/// (seeded, so a failure repeats) for every place it is put.
const SHAPES: &[(&str, &str)] = &[
    ("github classic", "ghp_{A36}"),
    ("github oauth", "gho_{A36}"),
    ("github user-to-server", "ghu_{A36}"),
    ("github server-to-server", "ghs_{A36}"),
    ("github refresh", "ghr_{A36}"),
    ("github fine-grained", "github_pat_{A22}_{A59}"),
    ("gitlab personal", "glpat-{S20}"),
    ("gitlab deploy", "gldt-{S20}"),
    ("gitlab runner", "glrt-{S20}"),
    ("slack bot", "xoxb-{D11}-{D13}-{A24}"),
    ("slack user", "xoxp-{D11}-{D13}-{D13}-{H32}"),
    ("slack app", "xapp-1-{U11}-{D13}-{H64}"),
    ("slack rotating", "xoxe.xoxp-1-{A60}"),
    (
        "slack webhook",
        "https://hooks.slack.com/services/T{U10}/B{U10}/{A24}",
    ),
    ("stripe secret", "sk_live_{A99}"),
    ("stripe test secret", "sk_test_{A99}"),
    ("stripe restricted", "rk_live_{A99}"),
    ("stripe webhook", "whsec_{A32}"),
    ("aws access key", "AKIA{U16}"),
    ("aws session key", "ASIA{U16}"),
    ("google api key", "AIza{S35}"),
    ("google oauth access", "ya29.{S80}"),
    ("google client secret", "GOCSPX-{S28}"),
    ("azure client secret", "{A3}8Q~{S34}"),
    ("openai project", "sk-proj-{S100}"),
    ("openai service account", "sk-svcacct-{S100}"),
    ("openai legacy", "sk-{A20}T3BlbkFJ{A20}"),
    ("anthropic", "sk-ant-api03-{S93}AA"),
    ("hugging face", "hf_{A34}"),
    ("npm", "npm_{A36}"),
    ("pypi", "pypi-AgEIcHlwaS5vcmc{S120}"),
    ("docker hub", "dckr_pat_{S27}"),
    ("twilio api key", "SK{H32}"),
    ("sendgrid", "SG.{S22}.{S43}"),
    ("mailgun", "key-{H32}"),
    ("mailgun private", "{H32}-{H8}-{H8}"),
    ("shopify admin", "shpat_{H32}"),
    ("shopify shared secret", "shpss_{H32}"),
    (
        "discord webhook",
        "https://discord.com/api/webhooks/{D18}/{S68}",
    ),
    ("discord bot", "MT{A24}.G{A5}.{S38}"),
    ("telegram bot", "{D10}:AA{S33}"),
    ("heroku", "HRKU-AA{S58}"),
    ("digitalocean", "dop_v1_{H64}"),
    ("digitalocean oauth", "doo_v1_{H64}"),
    ("new relic user key", "NRAK-{U27}"),
    ("new relic insert key", "NRII-{A32}"),
    ("sentry org token", "sntrys_{A90}"),
    ("sentry user token", "sntryu_{H64}"),
    ("sentry dsn", "https://{H32}@o{D6}.ingest.sentry.io/{D7}"),
    ("jwt", "eyJhbGciOiJIUzI1NiJ9.eyJ{S40}.{S43}"),
    (
        "url credentials",
        "https://deploy:{A20}@git.example.com/app.git",
    ),
    ("postgres url", "postgres://app:{A20}@db.internal:5432/app"),
    (
        "mongodb url",
        "mongodb+srv://svc:{A20}@cluster0.example.net/db",
    ),
    (
        "azure storage connection string",
        "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey={B86}==;EndpointSuffix=core.windows.net",
    ),
    (
        "azure sas url",
        "https://acct.blob.core.windows.net/c/b.txt?sv=2022-11-02&se=2026-12-31&sp=r&sig={B43}%3D",
    ),
    (
        "sql server connection string",
        "Server=db;Database=app;User Id=app;Password={A20};",
    ),
];

/// Generated secrets keep the random part apart: that is what must vanish
/// (a prefix like `ghp_` or `https://hooks.slack.com/` may stay).
fn generate(template: &str, rng: &mut fastrand::Rng) -> (String, Vec<String>) {
    const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut out = String::new();
    let mut random = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let close = open + rest[open..].find('}').unwrap();
        let spec = &rest[open + 1..close];
        let n: usize = spec[1..].parse().unwrap();
        let alphabet: &[u8] = match &spec[..1] {
            "A" => ALNUM,
            "H" => b"0123456789abcdef",
            "U" => b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",
            "D" => b"0123456789",
            "S" => b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_",
            "B" => b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
            other => panic!("bad template class {other}"),
        };
        // Digits and letters both, as real tokens have at these lengths.
        let part: String = loop {
            let p: String = (0..n)
                .map(|_| char::from(alphabet[rng.usize(..alphabet.len())]))
                .collect();
            if n < 8
                || (p.bytes().any(|b| b.is_ascii_digit())
                    && p.bytes().any(|b| b.is_ascii_alphabetic()))
                || spec.starts_with('D')
            {
                break p;
            }
        };
        out.push_str(&part);
        if n >= 8 {
            random.push(part);
        }
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    (out, random)
}

/// Issue 18's recall corpus: every provider shape, under a name that says
/// nothing, in every place a secret sits (an environment variable, ini,
/// env, YAML, JSON, TOML and properties files, a log line, a URL's query, a
/// command line), and generic assignments whose name says secret in every
/// file format. No byte of any generated secret may be left in the bundle
/// (its entries or its raw bytes), the issue text or bugpack's output; and
/// the values a maintainer needs (hashes, UUIDs, versions, paths, URLs)
/// stay as they were.
#[test]
fn every_secret_shape_in_every_place_is_redacted() {
    let sb = Sandbox::new();
    let mut rng = fastrand::Rng::with_seed(18);
    let mut needles: Vec<(String, String)> = Vec::new();
    let mut next = |label: &str, place: &str, rng: &mut fastrand::Rng| {
        let template = SHAPES
            .iter()
            .find(|(l, _)| *l == label)
            .map(|(_, t)| *t)
            .unwrap();
        let (value, random) = generate(template, rng);
        for r in random {
            needles.push((format!("{label} in {place}"), r));
        }
        value
    };
    let (mut ini, mut env_file, mut yaml, mut json, mut toml, mut props) = (
        String::from("[upstream]\n"),
        String::new(),
        String::from("upstream:\n"),
        Vec::new(),
        String::from("[upstream]\n"),
        String::new(),
    );
    let (mut log, mut args, mut vars) = (String::new(), Vec::new(), Vec::new());
    for (i, (label, _)) in SHAPES.iter().enumerate() {
        // TOML and YAML strings need their quotes escaped; none of the
        // shapes has a quote or backslash.
        ini.push_str(&format!("value{i} = {}\n", next(label, "ini", &mut rng)));
        env_file.push_str(&format!("VALUE_{i}={}\n", next(label, ".env", &mut rng)));
        yaml.push_str(&format!(
            "  value{i}: \"{}\"\n",
            next(label, "yaml", &mut rng)
        ));
        json.push(format!(
            "\"value{i}\": \"{}\"",
            next(label, "json", &mut rng)
        ));
        toml.push_str(&format!(
            "value{i} = \"{}\"\n",
            next(label, "toml", &mut rng)
        ));
        props.push_str(&format!(
            "app.value{i}={}\n",
            next(label, "properties", &mut rng)
        ));
        log.push_str(&format!(
            "2026-12-06T10:00:{:02}Z INFO upstream={} ready\n",
            i % 60,
            next(label, "a log line", &mut rng)
        ));
        if !label.contains("url") && !label.contains("webhook") && !label.contains("dsn") {
            log.push_str(&format!(
                "GET https://api.example.com/v1/items?page=2&value={}&sort=asc 200\n",
                next(label, "a URL's query", &mut rng)
            ));
        }
        args.push(format!("--upstream{i}"));
        args.push(next(label, "the command line", &mut rng));
        vars.push((
            format!("APP_VALUE_{i}"),
            next(label, "an environment variable", &mut rng),
        ));
    }
    // Generic assignments: names that say secret, values that look like one.
    let names = [
        "signing_key",
        "private_key",
        "client_secret",
        "encryption_key",
        "masterKey",
        "webhook_secret",
        "db_password",
        "refresh_token",
        "credentials",
        "auth",
        "AccountKey",
    ];
    let mut generic = |place: &str, rng: &mut fastrand::Rng| {
        let (value, random) = generate("{A12}7{A19}", rng);
        needles.push((format!("a generic assignment in {place}"), value.clone()));
        drop(random);
        value
    };
    for name in names {
        ini.push_str(&format!("{name} = {}\n", generic("ini", &mut rng)));
        env_file.push_str(&format!(
            "{}={}\n",
            name.to_uppercase(),
            generic(".env", &mut rng)
        ));
        yaml.push_str(&format!("  {name}: {}\n", generic("yaml", &mut rng)));
        json.push(format!("\"{name}\": \"{}\"", generic("json", &mut rng)));
        toml.push_str(&format!("{name} = \"{}\"\n", generic("toml", &mut rng)));
        props.push_str(&format!("app.{name}={}\n", generic("properties", &mut rng)));
    }
    // What a maintainer needs stays readable.
    let readable = [
        "commit = 3f786850e387550fdab836ed7e6dc881de23001b",
        "checksum: sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        "request_id = 123e4567-e89b-12d3-a456-426614174000",
        "version = 1.24.3-rc.1+build.5",
        "library = /usr/lib/x86_64-linux-gnu/libssl.so.3",
        "homepage = https://example.com/docs/install?lang=en",
        "key_file = /etc/app/tls/server.key",
        "primary_key = id",
        "sort_key = created_at_descending",
    ];
    for line in readable {
        ini.push_str(line);
        ini.push('\n');
        log.push_str(line);
        log.push('\n');
    }
    sb.write("conf/app.ini", &ini);
    sb.write("conf/.env", &env_file);
    sb.write("conf/app.yaml", &yaml);
    sb.write(
        "conf/app.json",
        format!("{{\n  {}\n}}\n", json.join(",\n  ")),
    );
    sb.write("conf/app.toml", &toml);
    sb.write("conf/app.properties", &props);
    sb.write("logs/app.log", &log);
    // A service-account file, as Google's console writes it.
    let (body, _) = generate("MIIEv{B60}{B60}", &mut rng);
    needles.push((
        "a service account's private key".to_owned(),
        body[5..].to_owned(),
    ));
    sb.write(
        "conf/service-account.json",
        format!(
            "{{\"type\": \"service_account\", \"project_id\": \"demo\", \"private_key_id\": \"0123\", \"private_key\": \"-----BEGIN PRIVATE KEY-----\\n{body}\\n-----END PRIVATE KEY-----\\n\", \"client_email\": \"svc@demo.iam.gserviceaccount.com\"}}\n"
        ),
    );
    // A PGP secret key block.
    let (pgp, _) = generate("lQOYBGV{B64}\n{B64}", &mut rng);
    needles.push(("a PGP private block".to_owned(), pgp[7..71].to_owned()));
    sb.write(
        "conf/secring.asc",
        format!("-----BEGIN PGP PRIVATE KEY BLOCK-----\n\n{pgp}\n=AbCd\n-----END PGP PRIVATE KEY BLOCK-----\n"),
    );

    let mut run = sb.bugpack();
    for (k, v) in &vars {
        run = run.env(k, v);
    }
    let out = run
        .args(["-vv", "capture", "-o", "bug.zip", "--title", "corpus"])
        .args(["--config", "conf", "--log", "logs/app.log"])
        .args(["--", "sh", "-c", "echo started; exit 1", "app"])
        .args(&args)
        .run()
        .success();
    let bundle = sb.path("bug.zip");
    let raw = fs::read(&bundle).unwrap();
    let issue = fs::read_to_string(sb.path("bug.zip.md")).unwrap();
    let all = entries(&bundle);
    let mut leaks = Vec::new();
    for (label, needle) in &needles {
        for (name, data) in &all {
            if contains(data, needle.as_bytes()) {
                leaks.push(format!("{label}: in {name}"));
            }
        }
        if contains(&raw, needle.as_bytes()) {
            leaks.push(format!("{label}: in the raw zip bytes"));
        }
        if issue.contains(needle.as_str()) {
            leaks.push(format!("{label}: in the issue text"));
        }
        if out.stdout.contains(needle.as_str()) || out.stderr.contains(needle.as_str()) {
            leaks.push(format!("{label}: in bugpack's output"));
        }
    }
    assert!(
        leaks.is_empty(),
        "{} of {} secrets leaked:\n{}",
        leaks.len(),
        needles.len(),
        leaks.join("\n")
    );
    let text = |name: &str| crate::capture::entry(&bundle, name);
    for entry in ["config/conf/app.ini", "logs/logs/app.log"] {
        let kept = text(entry);
        for line in readable {
            assert!(
                kept.contains(line),
                "{line:?} was redacted in {entry}:\n{kept}"
            );
        }
    }
    assert!(needles.len() > 7 * SHAPES.len(), "{}", needles.len());
}
