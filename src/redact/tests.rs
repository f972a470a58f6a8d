//! Each rule with real-shaped samples that must go and near-misses that must
//! stay; the engine's consistency, idempotency and silence about values.

use super::*;

fn redactor() -> Redactor {
    Redactor::new(&[], std::iter::empty()).unwrap()
}

/// `text` with `secret` in it loses the secret, gets `rule`'s placeholder,
/// and keeps the rest.
#[track_caller]
fn gone(rule: &str, text: &str, secret: &str) {
    assert!(text.contains(secret), "bad test: {text:?} lacks {secret:?}");
    let mut r = redactor();
    let out = r.redact_str("t", text);
    assert!(
        !out.contains(secret),
        "rule {rule}: {secret:?} survived in {out:?}"
    );
    assert!(
        out.contains(&format!("[REDACTED:{rule}:1]")),
        "rule {rule} did not name it: {out:?}"
    );
    let kept = text.replace(secret, "");
    for word in kept
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| w.len() >= 4)
    {
        assert!(
            out.contains(word),
            "rule {rule} also removed {word:?}: {out:?}"
        );
    }
}

#[track_caller]
fn stays(text: &str) {
    let mut r = redactor();
    let out = r.redact_str("t", text);
    assert_eq!(out, text, "a near-miss was redacted");
    assert!(r.events().is_empty());
}

const GHP: &str = "ghp_aB3dE5fG7hI9jK1lM3nO5pQ7rS9tU1vW3xY5";

#[test]
fn github() {
    gone("github-token", &format!("token used: {GHP} ok"), GHP);
    let pat = "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWX";
    gone("github-token", &format!("GH={pat}\n"), pat);
    gone(
        "github-token",
        "gho_16C7e42F292c6912E7710c838347Ae178B4a here",
        "gho_16C7e42F292c6912E7710c838347Ae178B4a",
    );
    stays("ghp_ alone, and ghp_short12345 are not tokens");
}

#[test]
fn gitlab() {
    gone(
        "gitlab-token",
        "PRIVATE-TOKEN glpat-xYz12AbCdEfGhIjKlMnO done",
        "glpat-xYz12AbCdEfGhIjKlMnO",
    );
    stays("a glpat- prefix alone, or glpat-short");
}

#[test]
fn slack() {
    let bot = "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx";
    gone("slack-token", &format!("slack {bot} end"), bot);
    let hook = "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX";
    gone("slack-webhook", &format!("webhook: {hook}\n"), hook);
    stays("xoxo- is a greeting, https://slack.com/help is a page");
}

#[test]
fn stripe() {
    let key = "sk_live_51H8abcdefGHIJKLmnopQRSTuv";
    gone("stripe-key", &format!("stripe {key} end"), key);
    gone(
        "stripe-key",
        "hook whsec_abcdefghijklmnopqrstuvwxyz12 end",
        "whsec_abcdefghijklmnopqrstuvwxyz12",
    );
    stays("pk_live_ and sk_test_ without a body");
}

#[test]
fn aws() {
    gone(
        "aws-access-key-id",
        "id AKIAIOSFODNN7EXAMPLE end",
        "AKIAIOSFODNN7EXAMPLE",
    );
    let secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
    gone(
        "aws-secret-key",
        &format!("aws_secret_access_key = {secret}\nregion = eu\n"),
        secret,
    );
    stays("AKIA alone; region = eu-west-1; AKIAIOSFODNN7EXAMPLEX9 is too long");
}

#[test]
fn google() {
    gone(
        "google-api-key",
        "https://maps.example/api?key=AIzaSyDdI0hCZtE6vySjMm-WEfRq3CPzqKqqsHI&x=1",
        "AIzaSyDdI0hCZtE6vySjMm-WEfRq3CPzqKqqsHI",
    );
    // As a bare assignment the generic `key` rule takes the value whole.
    gone(
        "key",
        "key=AIzaSyDdI0hCZtE6vySjMm-WEfRq3CPzqKqqsHI&x=1",
        "AIzaSyDdI0hCZtE6vySjMm-WEfRq3CPzqKqqsHI",
    );
    let tok = "ya29.a0AfH6SMBx7Qw-abcdefghijklmnopqrstuvwxyz0123";
    gone("google-oauth", &format!("bearer {tok} end"), tok);
    gone(
        "google-oauth",
        "client 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 end",
        "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",
    );
    stays("AIza is a prefix; ya29 is a version string");
}

#[test]
fn jwt() {
    let jwt = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4ifQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";
    gone("jwt", &format!("session {jwt} end"), jwt);
    stays("eyJ alone is not a token; a.b.c is not either");
}

#[test]
fn private_keys() {
    let block = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\nQyNTUxOQAAACDqGJKHTBVy0bVgCTXj3c2o2Q==\n-----END OPENSSH PRIVATE KEY-----";
    gone("private-key", &format!("before\n{block}\nafter\n"), block);
    let rsa = "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA1234567890abcdefghij\n-----END RSA PRIVATE KEY-----";
    gone("private-key", &format!("x {rsa} y"), rsa);
    // A block cut short by a log tail still goes.
    let cut = "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIBYr4oBr+bG7d0b9Z2k1j2QmXZ";
    let mut r = redactor();
    let out = r.redact_str("t", &format!("log line\n{cut}"));
    assert!(!out.contains("MHcCAQEEIBYr4oBr"), "{out}");
    stays(
        "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA\n-----END PUBLIC KEY-----",
    );
}

#[test]
fn urls() {
    gone(
        "url-credentials",
        "remote https://alice:s3cretPa55@example.com/repo.git",
        "alice:s3cretPa55",
    );
    gone(
        "url-credentials",
        "db postgres://app:hunter2hunter2@db:5432/app",
        "app:hunter2hunter2",
    );
    let tok = "x-access-token:ghp_aB3dE5fG7hI9jK1lM3nO5pQ7rS9tU1vW3xY5";
    gone(
        "url-credentials",
        &format!("https://{tok}@github.com/o/r"),
        tok,
    );
    gone(
        "url-credentials",
        "https://0123456789abcdef0123@gitlab.example.com/x",
        "0123456789abcdef0123",
    );
    stays("https://example.com/path?q=1 and ssh://git@github.com/o/r.git and mailto:a@b.c");
}

#[test]
fn headers() {
    gone(
        "authorization-header",
        "> Authorization: Bearer abc.def-ghi_123\n> Host: x\n",
        "abc.def-ghi_123",
    );
    gone(
        "authorization-header",
        "curl -H 'Authorization: token 0123456789abcdef' url",
        "0123456789abcdef",
    );
    gone(
        "authorization-header",
        r#"{"Authorization": "Basic dXNlcjpwYXNz"}"#,
        "dXNlcjpwYXNz",
    );
    gone(
        "cookie-header",
        "Cookie: session=abc123def456; theme=dark\nAccept: */*\n",
        "session=abc123def456; theme=dark",
    );
    gone(
        "cookie-header",
        "< Set-Cookie: sid=xyz789xyz789; HttpOnly\n",
        "sid=xyz789xyz789; HttpOnly",
    );
    stays("Authorization is required before you continue. The cookie policy applies.");
}

#[test]
fn assignments() {
    gone(
        "password",
        "[db]\nhost = localhost\npassword = hunter2hunter2\n",
        "hunter2hunter2",
    );
    gone(
        "password",
        "DB_PASSWORD=correct-horse\nDEBUG=1\n",
        "correct-horse",
    );
    gone(
        "password",
        "export PGPASSWORD='single quoted'\n",
        "single quoted",
    );
    gone(
        "password",
        "database:\n  password: \"yaml secret\"\n",
        "yaml secret",
    );
    gone(
        "password",
        r#"{"user": "bob", "password": "json-secret-1"}"#,
        "json-secret-1",
    );
    gone(
        "password",
        "admin_password = \"toml-secret\"\n",
        "toml-secret",
    );
    gone(
        "password",
        "run --password=cli-secret-9 --verbose",
        "cli-secret-9",
    );
    gone("secret", "client_secret: s3cr3t-v4lue\n", "s3cr3t-v4lue");
    gone("secret", "SECRET=topsecretvalue\n", "topsecretvalue");
    gone("secret", "basic_auth = user:pw12345\n", "user:pw12345");
    gone("token", "api_key = abcdef0123456789\n", "abcdef0123456789");
    gone("token", "ACCESS_TOKEN: tok-9f8e7d6c\n", "tok-9f8e7d6c");
    gone("token", "apikey=zzzyyyxxx111\n", "zzzyyyxxx111");
    stays("password_min_length = 8\n");
    stays("token_url: https://auth.example.com/oauth/token\n");
    stays("tokenizer = bert\nmax_tokens: 100\n");
    stays("secret_santa_enabled: true\n");
    stays("password: null\npassword: ${DB_PASSWORD}\npassword: \"\"\npassword: ****\n");
    stays("oauth: enabled\nauthor = Jane\n");
}

#[test]
fn assignments_in_a_url_query_end_at_the_next_parameter() {
    let mut r = redactor();
    let out = r.redact_str(
        "t",
        "GET /v1/items?access_token=abcd1234efgh5678&page=2&sort=name HTTP/1.1",
    );
    assert_eq!(
        out,
        "GET /v1/items?access_token=[REDACTED:token:1]&page=2&sort=name HTTP/1.1"
    );
    let out = r.redact_str(
        "t",
        "https://h/cb?x=1&client_secret=s3cr3tValue99#section-2 and          https://h/login?user=bob&password=hunter2hunter2&next=/home",
    );
    assert_eq!(
        out,
        "https://h/cb?x=1&client_secret=[REDACTED:secret:1]#section-2 and          https://h/login?user=bob&password=[REDACTED:password:1]&next=/home"
    );
    // Nothing but `&`, `#`, a space or a quote ends a query value: every
    // other byte of the secret goes with it.
    let out = r.redact_str("t", "\"https://h/?api_key=k3y,part;two]}(x)\" done");
    assert_eq!(out, "\"https://h/?api_key=[REDACTED:token:2]\" done");
    // An empty value is no secret, and the next parameter is not its value.
    stays("https://h/?token=&page=2 and /x?api_key=#top and ?token= HTTP/1.1");
    stays("https://example.com/search?q=token&page=2&passage=1");
    // Outside a URL query, `&` may belong to the secret.
    gone("password", "DB_PASSWORD=abc&defghij\n", "abc&defghij");
    gone("token", "token: 'quoted&value#1'\n", "quoted&value#1");
    gone(
        "token",
        "https://h/?token=\"quoted-in-url\"",
        "quoted-in-url",
    );
}

#[test]
fn api_keys_with_dashes_and_short_pass_names() {
    gone("token", "X-API-Key: k3y-v4lue-0192\n", "k3y-v4lue-0192");
    gone(
        "token",
        "api-key = dash-key-value-77\n",
        "dash-key-value-77",
    );
    gone("token", "access-key: acc3ss-value-1\n", "acc3ss-value-1");
    gone("password", "DB_PASS=short-pass-value\n", "short-pass-value");
    gone(
        "password",
        "smtp.pass: mail-pa55-value\n",
        "mail-pa55-value",
    );
    gone("password", "pass = bare-pa55-value\n", "bare-pa55-value");
    stays("compass = north\nbypass: cache-layer\npassing: yes\nX-API-Version: 3\n");
    stays("api-keys are rotated monthly\npassenger = alice\n");
}

#[test]
fn netrc() {
    gone(
        "netrc",
        "machine api.example.com login bob password n3trc-pa55\n",
        "n3trc-pa55",
    );
    gone(
        "netrc",
        "machine api.example.com\n  login bob\n  password n3trc-multi\n",
        "n3trc-multi",
    );
    gone(
        "netrc",
        "default login anonymous password guest-pa55-1\n",
        "guest-pa55-1",
    );
    stays("Password reset links expire after one hour\n");
    stays("the password is checked by the login service\n");
}

#[test]
fn secret_flags_on_a_command_line() {
    gone(
        "cli-flag",
        "app --password cliPassw0rd99 --verbose",
        "cliPassw0rd99",
    );
    gone(
        "cli-flag",
        "deploy --api-key k-123456789 now",
        "k-123456789",
    );
    gone("cli-flag", "login -token 'quoted-tok-1'", "quoted-tok-1");
    stays("app --token-file /run/secrets/tok --verbose\n");
    stays("app --no-password --quiet\n");
}

#[test]
fn a_tail_sees_the_secret_its_cut_would_split() {
    let text = b"one\npassword = hunter2hunter2 and more\nlast line\n";
    // The cut lands inside the key name: kept text starts at "ssword".
    let cut = 6;
    let mut r = redactor();
    let out = r.redact_from("logs/a.log", text, cut);
    let out = String::from_utf8(out).unwrap();
    assert!(out.starts_with("ssword = [REDACTED:password:1]"), "{out}");
    assert!(out.ends_with("and more\nlast line\n"), "{out}");
    assert_eq!(r.events().len(), 1);
    assert_eq!(r.events()[0].line, 1);
    // A secret wholly before the cut is neither kept nor counted.
    let mut r = redactor();
    let out = r.redact_from("t", format!("{GHP}\nafter\n").as_bytes(), GHP.len() + 1);
    assert_eq!(out, b"after\n");
    assert!(r.events().is_empty());
    // A secret the cut splits becomes its placeholder.
    let mut r = redactor();
    let out = r.redact_from("t", format!("x {GHP} y").as_bytes(), 10);
    assert_eq!(out, b"[REDACTED:github-token:1] y");
}

#[test]
fn scrubbing_for_the_terminal_records_nothing() {
    let mut r = redactor();
    let line = format!("running `app --password=cliPassw0rd99 {GHP}`");
    let shown = r.scrub(&line);
    assert!(
        !shown.contains("cliPassw0rd99") && !shown.contains(GHP),
        "{shown}"
    );
    assert!(shown.contains("[REDACTED:github-token]"), "{shown}");
    assert!(r.events().is_empty() && r.counts().is_empty());
    // Once the bundle holds it, the terminal shows the bundle's placeholder.
    r.redact_str("steps.md", GHP);
    assert_eq!(r.scrub(GHP), "[REDACTED:github-token:1]");
}

#[test]
fn near_misses_that_look_random() {
    stays("commit 4b825dc642cb6eb9a060e54bf8d69288fbee4904");
    stays("id 123e4567-e89b-12d3-a456-426614174000");
    stays("sha256 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    stays("mail alice@example.com about it");
}

#[test]
fn env_values_are_hunted_everywhere() {
    let env = [
        ("MY_SERVICE_TOKEN", "very-private-value-42"),
        ("SESSION_ID", "3"),
        ("HOME", "/root"),
        ("DB_PASSWORD", "pässwörd-ünïcode-1"),
    ];
    let mut r = Redactor::new(&[], env.iter().copied()).unwrap();
    let out = r.redact_str(
        "logs/app.log",
        "calling api with very-private-value-42 as 3 in /root, then pässwörd-ünïcode-1\n",
    );
    assert!(!out.contains("very-private-value-42"), "{out}");
    assert!(!out.contains("pässwörd"), "{out}");
    assert!(out.contains(" as 3 in /root"), "{out}");
    assert_eq!(
        r.redact_env("env/vars.yaml", "MY_SERVICE_TOKEN", "very-private-value-42"),
        "[REDACTED:env:1]"
    );
    assert_eq!(
        r.redact_env("env/vars.yaml", "SESSION_ID", "3"),
        "[REDACTED:env:3]"
    );
    assert_eq!(r.redact_env("env/vars.yaml", "HOME", "/root"), "/root");
}

#[test]
fn the_same_secret_gets_the_same_placeholder() {
    let mut r = redactor();
    let a = r.redact_str("a", &format!("{GHP} and again {GHP}"));
    assert_eq!(
        a,
        "[REDACTED:github-token:1] and again [REDACTED:github-token:1]"
    );
    let other = "ghp_zZ9yY8xX7wW6vV5uU4tT3sS2rR1qQ0pP9oO8";
    let b = r.redact_str("b", &format!("{other} {GHP}"));
    assert_eq!(b, "[REDACTED:github-token:2] [REDACTED:github-token:1]");
    assert_eq!(r.counts()["github-token"], 4);
}

#[test]
fn redacting_twice_changes_nothing() {
    let text =
        format!("password = hunter2hunter2\nAuthorization: Bearer {GHP}\nhttps://u:p4ssw0rd@h/x\n");
    let mut r = redactor();
    let once = r.redact_str("t", &text);
    let events = r.events().len();
    let twice = r.redact_str("t", &once);
    assert_eq!(once, twice);
    assert_eq!(r.events().len(), events);
}

#[test]
fn overlapping_rules_replace_once() {
    let mut r = redactor();
    let out = r.redact_str("t", &format!("GITHUB_TOKEN={GHP}\n"));
    assert_eq!(out, "GITHUB_TOKEN=[REDACTED:github-token:1]\n");
    assert_eq!(r.events().len(), 1);
}

#[test]
fn bytes_that_are_not_utf8_survive_around_secrets() {
    let mut r = redactor();
    let mut input = vec![0xff, 0xfe, b'\n'];
    input.extend_from_slice(GHP.as_bytes());
    input.extend_from_slice(&[b'\n', 0x80, 0x00]);
    let out = r.redact("logs/bin.log", &input);
    assert!(out.starts_with(&[0xff, 0xfe, b'\n']));
    assert!(out.ends_with(&[b'\n', 0x80, 0x00]));
    assert!(!contains(&out, GHP.as_bytes()));
}

#[test]
fn events_name_lines_and_never_values() {
    let mut r = redactor();
    r.redact_str(
        "config/app.ini",
        "a = 1\nb = 2\npassword = hunter2hunter2\n",
    );
    let e = &r.events()[0];
    assert_eq!(
        (e.origin.as_str(), e.line, e.rule.as_str()),
        ("config/app.ini", 3, "password")
    );
    assert!(!format!("{:?}", r.events()).contains("hunter2"));
    let env = [("API_TOKEN", "learned-secret-value")];
    let r = Redactor::new(&[], env.iter().copied()).unwrap();
    assert!(!format!("{r:?}").contains("learned-secret-value"));
    assert_eq!(format!("{}", Secret::new("x")), "[secret]");
}

#[test]
fn user_rules_work_with_or_without_groups() {
    let extra = [
        ExtraRule {
            name: "ticket".into(),
            regex: "TCK-[0-9]{4}".into(),
        },
        ExtraRule {
            name: "host".into(),
            regex: "internal host ([a-z]+)\\.corp".into(),
        },
    ];
    let mut r = Redactor::new(&extra, std::iter::empty()).unwrap();
    let out = r.redact_str("t", "see TCK-1234 on internal host zeus.corp");
    assert_eq!(
        out,
        "see [REDACTED:ticket:1] on internal host [REDACTED:host:1].corp"
    );
    let bad = [ExtraRule {
        name: "bad".into(),
        regex: "(".into(),
    }];
    let err = Redactor::new(&bad, std::iter::empty()).unwrap_err();
    assert!(!err.to_string().contains('\n'), "{err}");
}

#[test]
fn secret_names() {
    for name in [
        "GITHUB_TOKEN",
        "db_password",
        "AWS_SECRET_ACCESS_KEY",
        "API_KEY",
        "SSH_AUTH_SOCK",
        "SESSION_COOKIE",
        "GOOGLE_APPLICATION_CREDENTIALS",
        "DB_PASS",
        "smtp-pass",
    ] {
        assert!(is_secret_name(name), "{name}");
    }
    for name in [
        "HOME",
        "PATH",
        "LANG",
        "EDITOR",
        "PWD",
        "COMPASS_DIR",
        "PASSENGER_ROOT",
    ] {
        assert!(!is_secret_name(name), "{name}");
    }
}

#[test]
fn a_megabyte_of_log_is_redacted_in_one_pass() {
    let mut log = String::new();
    while log.len() < 1 << 20 {
        log.push_str(
            "2026-11-22T10:00:00Z INFO request id=42 path=/api/v1/things status=200 took=3ms\n",
        );
    }
    log.push_str(&format!("Authorization: Bearer {GHP}\n"));
    let mut r = redactor();
    let out = r.redact_str("logs/big.log", &log);
    assert!(!out.contains(GHP));
    assert_eq!(r.events().len(), 1);
}

#[test]
fn a_match_cut_into_by_an_earlier_one_leaves_no_tail() {
    // Found by the `redact` fuzz target: a key block cut short by a log tail
    // swallowed `sk` of the Stripe key after it, and the rest survived.
    let text = "7rS9tU1vW3xY5zA7b-----BEGIN PRIVATE KEY-----\nsk_live_jEzmH1oJ3qL5sNxuPzwR1yT\nafter the secret\n";
    let mut r = redactor();
    let out = r.redact_str("t", text);
    assert!(!out.contains("jEzmH1oJ3qL5sNxuPzwR1yT"), "{out:?}");
    assert_eq!(
        out,
        "7rS9tU1vW3xY5zA7b[REDACTED:private-key:1]\nafter the secret\n"
    );
    let ghp = format!("-----BEGIN PRIVATE KEY-----\n\n{GHP}\n");
    let out = r.redact_str("t", &ghp);
    assert!(!out.contains(&GHP[4..]), "{out:?}");
    // An assignment whose name the key block's body swallows half of.
    let out = r.redact_str(
        "t",
        "-----BEGIN PRIVATE KEY-----\ndb_password=hunter_2hunter_2\n",
    );
    assert!(!out.contains("hunter"), "{out:?}");
}

/// The `redact` fuzz target refuses to start unless every built-in rule has
/// a secret shape in `fuzz/src/lib.rs`; caught here, a new rule without one
/// fails `cargo test` instead of CI's fuzz smoke.
#[test]
fn every_builtin_rule_has_a_fuzz_shape() {
    let shapes = include_str!("../../fuzz/src/lib.rs");
    for rule in BUILTIN_RULES {
        assert!(
            shapes.contains(&format!("rule: \"{}\"", rule.name)),
            "rule {} has no Shape in fuzz/src/lib.rs: add one",
            rule.name
        );
    }
}

#[test]
fn argv_is_redacted_with_the_whole_line_in_view() {
    let mut r = redactor();
    let argv: Vec<String> = [
        "app",
        "--api-key",
        "cliApiK3y-7788",
        "--password=hunter2x",
        "plain",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    let out = r.redact_argv("t", &argv);
    assert_eq!(out.len(), 5);
    assert_eq!(out[0], "app");
    assert_eq!(out[1], "--api-key");
    assert!(out[2].starts_with("[REDACTED:cli-flag:"), "{out:?}");
    assert!(!out[3].contains("hunter2x"), "{out:?}");
    assert!(out[3].starts_with("--password="), "{out:?}");
    assert_eq!(out[4], "plain");
    // The same secret in the command line itself gets the same placeholder.
    let line = r.redact_str("t", "app --api-key cliApiK3y-7788");
    assert!(line.ends_with(&out[2]), "{line} vs {out:?}");
}

#[test]
fn datadog() {
    // Datadog's keys have no prefix: 32 hex digits (API) and 40 (application),
    // found by the names and headers Datadog documents for them.
    let api = "4f0c1e2d3b4a59687f6e5d4c3b2a1908";
    let app = "9a8b7c6d5e4f30211203f4e5d6c7b8a9f0e1d2c3";
    for text in [
        format!("api_key: {api}\n"),
        format!("DD_API_KEY={api}\n"),
        format!("curl -H \"DD-API-KEY: {api}\" https://api.datadoghq.com/api/v1/validate"),
        format!("datadog.api_key = \"{api}\""),
        format!("https://api.datadoghq.com/api/v1/series?api_key={api}"),
    ] {
        let mut r = Redactor::new(&[], []).unwrap();
        let out = r.redact_str("t", &text);
        assert!(!out.contains(api), "{text} -> {out}");
    }
    for text in [
        format!("DD_APP_KEY={app}\n"),
        format!("-H \"DD-APPLICATION-KEY: {app}\""),
        format!("application_key: {app}"),
    ] {
        let mut r = Redactor::new(&[], []).unwrap();
        let out = r.redact_str("t", &text);
        assert!(!out.contains(app), "{text} -> {out}");
    }
    // A content hash of the same shape under a name that says nothing stays.
    stays(&format!("md5 {api} of the log"));
}

#[test]
fn documentation_placeholders_are_not_secrets_but_punctuation_passwords_are() {
    for text in [
        "run it with `--password=...`",
        "password=\u{2026}",
        "token: <>",
        "api_key = \"***\"",
    ] {
        stays(text);
    }
    gone("password", "password=!@#$%^&*", "!@#$%^&*");
}
