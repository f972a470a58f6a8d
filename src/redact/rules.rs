//! The built-in redaction rules, as data: a name, a regular expression, and
//! which capture groups hold the secret (the first that took part in a match
//! is replaced; the rest of the match, such as `password = ` or
//! `Authorization: Bearer `, stays).
//!
//! Order matters only for ties: when two rules match the very same bytes,
//! the earlier, more specific rule names the redaction.

/// One built-in rule.
#[derive(Debug, Clone, Copy)]
pub struct RuleDef {
    pub name: &'static str,
    pub pattern: &'static str,
    /// Capture groups that may hold the secret; 0 is the whole match.
    pub groups: &'static [usize],
    /// Extra check on the secret's bytes (e.g. "looks like a credential").
    pub keep_if: Option<fn(&[u8]) -> bool>,
}

/// Values an assignment may hold that are not secrets: empty, null-like,
/// booleans, references to other variables, masks, and our own placeholders.
pub(crate) fn plausible_value(value: &[u8]) -> bool {
    let v = value.trim_ascii();
    if v.is_empty() || v.starts_with(b"[REDACTED:") || v.starts_with(b"${") || v.starts_with(b"$(")
    {
        return false;
    }
    if v.first() == Some(&b'$')
        && v[1..]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'_')
    {
        return false;
    }
    if v.iter().all(|&c| c == b'*' || c == b'x' || c == b'X') {
        return false;
    }
    // A placeholder, as documentation writes `--password=...` or `=…`:
    // dots, ellipses, brackets and quotes only (a password of `!@#$%`
    // is still one).
    if v.iter().all(|c| b".*<>-_`()[]'\"\xE2\x80\xA6".contains(c)) {
        return false;
    }
    let lower = v.to_ascii_lowercase();
    !matches!(
        lower.as_slice(),
        b"null"
            | b"none"
            | b"nil"
            | b"~"
            | b"true"
            | b"false"
            | b"yes"
            | b"no"
            | b"on"
            | b"off"
            | b"\"\""
            | b"''"
    )
}

/// A value that looks generated rather than chosen, for names that only
/// may hold a secret (`*key`): at least 16 characters with no space, letters
/// and digits both, spread over many symbols (Shannon entropy of 3 bits a
/// character or more), and not a path or a URL. `signing_key = "8f3Kq..."`
/// goes; `primary_key: id`, `sort_key = created_at_descending` and
/// `key_file = /etc/app/key.pem` stay.
pub(crate) fn looks_generated(value: &[u8]) -> bool {
    let v = value.trim_ascii();
    if v.len() < 16
        || !plausible_value(v)
        || v.iter().any(u8::is_ascii_whitespace)
        || v.starts_with(b"/")
        || v.starts_with(b"./")
        || v.starts_with(b"~/")
        || v.windows(3).any(|w| w == b"://")
    {
        return false;
    }
    if !v.iter().any(u8::is_ascii_digit) || !v.iter().any(u8::is_ascii_alphabetic) {
        return false;
    }
    let mut counts = [0u32; 256];
    for &b in v {
        counts[usize::from(b)] += 1;
    }
    #[allow(clippy::cast_precision_loss)] // lengths far below 2^52
    let len = v.len() as f64;
    let entropy: f64 = counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = f64::from(c) / len;
            -p * p.log2()
        })
        .sum();
    entropy >= 3.0
}

/// Userinfo in a URL is a credential when it has a password part, or is
/// long enough to be a token used as a user name.
fn url_credential(userinfo: &[u8]) -> bool {
    !userinfo.starts_with(b"[REDACTED:") && (userinfo.contains(&b':') || userinfo.len() >= 16)
}

/// The pattern of an assignment to a name matching `$name` (a regex), its
/// value in group 1, 2, 3 or 4:
///
/// 1. in a URL query (`?name=v&...`, `&name=v#...`): the value ends at the
///    next `&` or `#`, which a query value cannot hold unescaped, so the
///    parameters after it stay (only a space, a quote, `<`, `>` or a
///    backtick end it otherwise, so no part of the secret is left). An
///    empty value matches too, without a group, so that the parameters
///    after it are not taken for its value;
/// 2. to 4. anywhere else (ini, env, yaml, json, toml, flags): a quoted
///    value, or an unquoted one up to a space or a separator.
///
/// The query form starts at the `?` or `&`, before the name, so it wins
/// over the general one, which would start at the name.
macro_rules! assignment {
    ($name:literal) => {
        concat!(
            r"(?i)(?:[?&]",
            $name,
            r"=(?:([^\s&#'\x22<>`]+)|[&#\s]|$)|\b",
            $name,
            r#"["']?[ \t]*[:=][ \t]*(?:"([^"\r\n]*)"|'([^'\r\n]*)'|([^\s,;#'"\]\}]+)))"#
        )
    };
}

/// The rules, most specific first.
pub static BUILTIN_RULES: &[RuleDef] = &[
    RuleDef {
        name: "private-key",
        // A whole PEM/OpenSSH/PGP private key block, or a block cut short by
        // a log tail (then everything that looks like its body).
        pattern: r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----(?:[\s\S]*?-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----|[A-Za-z0-9+/=\s:,.\-]*)",
        groups: &[0],
        keep_if: None,
    },
    RuleDef {
        name: "github-token",
        pattern: r"\b((?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})\b",
        groups: &[1],
        keep_if: None,
    },
    RuleDef {
        name: "gitlab-token",
        pattern: r"\b(gl(?:pat|dt|rt|ptt|ft|imt|oas|cbt|soat|ffct|agent|cf|runner)-[0-9A-Za-z_\-]{20,})",
        groups: &[1],
        keep_if: None,
    },
    RuleDef {
        name: "slack-webhook",
        pattern: r"(https://hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9/_\-]+)",
        groups: &[1],
        keep_if: None,
    },
    RuleDef {
        name: "slack-token",
        // Bot, user, app-level, configuration and rotating (`xoxe.xoxp-`) tokens.
        pattern: r"\b((?:xoxe\.)?xox[abposre]-[0-9A-Za-z\-]{10,}|xapp-[0-9]-[A-Za-z0-9\-]{10,})",
        groups: &[1],
        keep_if: None,
    },
    RuleDef {
        name: "stripe-key",
        pattern: r"\b((?:sk|rk)_(?:live|test)_[0-9A-Za-z]{16,}|whsec_[0-9A-Za-z]{20,})",
        groups: &[1],
        keep_if: None,
    },
    RuleDef {
        name: "aws-access-key-id",
        pattern: r"\b((?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[0-9A-Z]{16})\b",
        groups: &[1],
        keep_if: None,
    },
    RuleDef {
        name: "aws-secret-key",
        pattern: r#"(?i)aws_?secret_?(?:access_?)?key["']?\s*[:=]\s*["']?([A-Za-z0-9/+=]{40})\b"#,
        groups: &[1],
        keep_if: None,
    },
    RuleDef {
        name: "google-api-key",
        pattern: r"\b(AIza[0-9A-Za-z_\-]{35})",
        groups: &[1],
        keep_if: None,
    },
    RuleDef {
        name: "google-oauth",
        pattern: r"\b(ya29\.[0-9A-Za-z_\-]{20,}|GOCSPX-[0-9A-Za-z_\-]{20,}|1//0[0-9A-Za-z_\-]{30,})",
        groups: &[1],
        keep_if: None,
    },
    RuleDef {
        name: "azure-storage-key",
        // `AccountKey=` of a storage connection string: 64 bytes, base64.
        pattern: r"(?i)\b(?:Account|SharedAccess)Key[ \t]*=[ \t]*([A-Za-z0-9+/]{40,86}={0,2})",
        groups: &[1],
        keep_if: None,
    },
    RuleDef {
        name: "azure-sas",
        // The signature of a shared access signature URL (`...&sig=...`).
        pattern: r"[?&]sig=([A-Za-z0-9%+/=]{20,})",
        groups: &[1],
        keep_if: None,
    },
    RuleDef {
        name: "azure-client-secret",
        // Entra ID (Azure AD) application secrets: `xxx8Q~` and 31 to 34 more.
        pattern: r"(?:^|[^A-Za-z0-9_~.\-])([A-Za-z0-9_~.\-]{3}[0-9]Q~[A-Za-z0-9_~.\-]{31,34})",
        groups: &[1],
        keep_if: None,
    },
    RuleDef {
        name: "openai-key",
        // Project, service-account and admin keys, and the legacy `sk-...T3BlbkFJ...`.
        pattern: r"\b(sk-(?:proj|svcacct|admin)-[A-Za-z0-9_\-]{20,}|sk-[A-Za-z0-9]{20}T3BlbkFJ[A-Za-z0-9]{20})",
        groups: &[1],
        keep_if: None,
    },
    RuleDef {
        name: "anthropic-key",
        pattern: r"\b(sk-ant-[a-z]+[0-9]*-[A-Za-z0-9_\-]{20,})",
        groups: &[1],
        keep_if: None,
    },
    RuleDef {
        name: "huggingface-token",
        pattern: r"\b((?:hf|api_org)_[A-Za-z0-9]{30,})",
        groups: &[1],
        keep_if: None,
    },
    RuleDef {
        name: "npm-token",
        pattern: r"\b(npm_[A-Za-z0-9]{36})",
        groups: &[1],
        keep_if: None,
    },
    RuleDef {
        name: "pypi-token",
        // A macaroon whose base64 starts with the index's name (`pypi.org`).
        pattern: r"\b(pypi-Ag[A-Za-z0-9_\-]{50,})",
        groups: &[1],
        keep_if: None,
    },
    RuleDef {
        name: "docker-hub-token",
        pattern: r"\b(dckr_(?:pat|oat)_[A-Za-z0-9_\-]{20,})",
        groups: &[1],
        keep_if: None,
    },
    RuleDef {
        name: "twilio-api-key",
        pattern: r"\b(SK[0-9a-fA-F]{32})\b",
        groups: &[1],
        keep_if: None,
    },
    RuleDef {
        name: "sendgrid-key",
        pattern: r"\b(SG\.[A-Za-z0-9_\-]{22}\.[A-Za-z0-9_\-]{43})",
        groups: &[1],
        keep_if: None,
    },
    RuleDef {
        name: "mailgun-key",
        pattern: r"\b(key-[0-9a-f]{32}|[0-9a-f]{32}-[0-9a-f]{8}-[0-9a-f]{8})\b",
        groups: &[1],
        keep_if: None,
    },
    RuleDef {
        name: "shopify-token",
        pattern: r"\b(shp(?:at|ca|pa|ss)_[a-fA-F0-9]{32})",
        groups: &[1],
        keep_if: None,
    },
    RuleDef {
        name: "discord-webhook",
        pattern: r"(https://(?:ptb\.|canary\.)?discord(?:app)?\.com/api/webhooks/[0-9]+/[A-Za-z0-9_\-]+)",
        groups: &[1],
        keep_if: None,
    },
    RuleDef {
        name: "discord-token",
        // A bot token: the bot's id in base64, a timestamp, an HMAC.
        pattern: r"\b([MNO][A-Za-z0-9_\-]{23,27}\.[A-Za-z0-9_\-]{6}\.[A-Za-z0-9_\-]{27,40})",
        groups: &[1],
        keep_if: None,
    },
    RuleDef {
        name: "telegram-bot-token",
        pattern: r"\b([0-9]{8,10}:AA[A-Za-z0-9_\-]{33})",
        groups: &[1],
        keep_if: None,
    },
    RuleDef {
        name: "heroku-key",
        pattern: r"\b(HRKU-[A-Za-z0-9_\-]{20,})",
        groups: &[1],
        keep_if: None,
    },
    RuleDef {
        name: "digitalocean-token",
        pattern: r"\b(do[opr]_v1_[a-f0-9]{64})",
        groups: &[1],
        keep_if: None,
    },
    RuleDef {
        name: "newrelic-key",
        pattern: r"\b(NR(?:AK|II|AA|RA|JS|IQ)-[A-Za-z0-9]{19,32})\b",
        groups: &[1],
        keep_if: None,
    },
    RuleDef {
        name: "sentry-token",
        pattern: r"\b(sntry[su]_[A-Za-z0-9+/=_\-]{40,})",
        groups: &[1],
        keep_if: None,
    },
    RuleDef {
        name: "jwt",
        pattern: r"\b(eyJ[A-Za-z0-9_\-]{5,}\.eyJ[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]{10,})",
        groups: &[1],
        keep_if: None,
    },
    RuleDef {
        name: "url-credentials",
        pattern: r#"(?i)\b[a-z][a-z0-9+.\-]{1,20}://([^/\s@'"<>]+)@"#,
        groups: &[1],
        keep_if: Some(url_credential),
    },
    RuleDef {
        name: "authorization-header",
        pattern: r#"(?i)\b(?:proxy-)?authorization["']?[ \t]*[:=][ \t]*["']?(?:(?:bearer|basic|token|digest|negotiate|ntlm|apikey|aws4-hmac-sha256)[ \t]+)?([^\s'"][^\r\n'"]*)"#,
        groups: &[1],
        keep_if: Some(plausible_value),
    },
    RuleDef {
        name: "cookie-header",
        pattern: r#"(?i)\b(?:set-)?cookie["']?[ \t]*:[ \t]*["']?([^\s'"][^\r\n'"]*)"#,
        groups: &[1],
        keep_if: Some(plausible_value),
    },
    RuleDef {
        name: "password",
        // `password`, `passwd`, `passphrase`, `pwd` ending a name, and
        // `pass` as a whole segment of one (`DB_PASS`, `smtp.pass`, not `compass`).
        pattern: assignment!(
            r"(?:[A-Za-z0-9_.\-]*(?:password|passwd|passphrase|pwd)|(?:[A-Za-z0-9_.\-]*[_.\-])?pass)"
        ),
        groups: &[1, 2, 3, 4],
        keep_if: Some(plausible_value),
    },
    RuleDef {
        name: "secret",
        pattern: assignment!(
            r"(?:[A-Za-z0-9_.\-]*[_.\-])?(?:secret|private_?key|credentials?|auth)"
        ),
        groups: &[1, 2, 3, 4],
        keep_if: Some(plausible_value),
    },
    RuleDef {
        name: "token",
        pattern: assignment!(
            r"[A-Za-z0-9_.\-]*(?:token|api[_\-]?key|access[_\-]?key|secret[_\-]?key)"
        ),
        groups: &[1, 2, 3, 4],
        keep_if: Some(plausible_value),
    },
    RuleDef {
        name: "key",
        // Any other name ending in `key` (`signing_key`, `encryptionKey`,
        // `master.key`), when its value looks generated.
        pattern: assignment!(r"[A-Za-z0-9_.\-]*key"),
        groups: &[1, 2, 3, 4],
        keep_if: Some(looks_generated),
    },
    RuleDef {
        name: "netrc",
        // `.netrc`: `machine h login u password p`, on one line or spread over
        // several; a `password p` line alone counts too, a sentence does not.
        pattern: r"(?im)(?:\b(?:machine[ \t]+\S+|default|login[ \t]+\S+|account[ \t]+\S+)[ \t]+(?:(?:login|account)[ \t]+\S+[ \t]+)*password[ \t]+(\S+)|^[ \t]*password[ \t]+(\S+)[ \t]*$)",
        groups: &[1, 2],
        keep_if: Some(plausible_value),
    },
    RuleDef {
        name: "cli-flag",
        // A command-line flag naming a secret, its value the next word:
        // `--password hunter2`, `-api-key abc` (not `--token-file path`).
        pattern: r"(?i)(?:^|[\s'\x22])--?[A-Za-z0-9_\-]*(?:password|passwd|passphrase|secret|token|api[_\-]?key)[ \t]+(?:'([^'\r\n]*)'|\x22([^\x22\r\n]*)\x22|([^\s\-'\x22][^\s'\x22]*))",
        groups: &[1, 2, 3],
        keep_if: Some(plausible_value),
    },
];

/// Names of environment variables whose values are secret, per DESIGN.md:
/// `*TOKEN*`, `*SECRET*`, `*PASSWORD*`, `*KEY*`, `*CREDENTIAL*`, `*AUTH*`,
/// `*COOKIE*`, `*SESSION*` (and `*PASSWD*`, and `PASS` as a whole
/// segment: `DB_PASS`), case-insensitive. Broad on
/// purpose: `KEYBOARD_LAYOUT` loses its value too, which costs nothing.
pub fn is_secret_name(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    [
        "TOKEN",
        "SECRET",
        "PASSWORD",
        "PASSWD",
        "KEY",
        "CREDENTIAL",
        "AUTH",
        "COOKIE",
        "SESSION",
    ]
    .iter()
    .any(|w| upper.contains(w))
        // `DB_PASS`, `SMTP_PASS`: `PASS` as a whole segment (not `COMPASS`).
        || upper.split(['_', '-', '.']).any(|part| part == "PASS")
}
