//! What the fuzz targets and the seed generator share: the secret shapes of
//! the `redact` target and the addresses of the `proxy` target.

pub mod redact {
    //! The `redact` target's secret shapes, one per rule.

    /// Secret material is drawn from these.
    pub const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    /// For AWS access key ids.
    pub const UPPER_DIGITS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    /// For keys written in lowercase hex.
    pub const HEX: &[u8] = b"0123456789abcdef";

    /// A secret-named environment variable the redactor knows...
    pub const ENV_NAME: &str = "DEPLOY_TOKEN";
    /// ...and its value, which must vanish wherever it appears.
    pub const ENV_VALUE: &str = "dpl0y-T0ken-9f8e7d6c5b4a";
    /// A user rule, as from `--redact` or a profile.
    pub const EXTRA: (&str, &str) = ("ticket", r"\bTCK-([0-9]{6,})");

    /// How a shape lays out: text before the secret, the secret's alphabet and
    /// length bounds, text after it on the same line.
    #[derive(Debug)]
    pub struct Shape {
        /// The rule that must catch it (its placeholder name).
        pub rule: &'static str,
        pub before: &'static str,
        pub alphabet: &'static [u8],
        /// Shortest and longest secret.
        pub len: (usize, usize),
        pub after: &'static str,
    }

    /// One shape per built-in rule, plus the `env` literal and a user rule.
    #[rustfmt::skip]
    pub const SHAPES: &[Shape] = &[
        Shape { rule: "private-key", before: "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA", alphabet: ALNUM, len: (16, 64), after: "\n-----END OPENSSH PRIVATE KEY-----" },
        Shape { rule: "github-token", before: "ghp_", alphabet: ALNUM, len: (36, 60), after: "" },
        Shape { rule: "gitlab-token", before: "glpat-", alphabet: ALNUM, len: (20, 40), after: "" },
        Shape { rule: "slack-webhook", before: "https://hooks.slack.com/services/T0123/B0456/", alphabet: ALNUM, len: (16, 40), after: "" },
        Shape { rule: "slack-token", before: "xoxb-1234-", alphabet: ALNUM, len: (10, 40), after: "" },
        Shape { rule: "stripe-key", before: "sk_live_", alphabet: ALNUM, len: (16, 40), after: "" },
        Shape { rule: "aws-access-key-id", before: "AKIA", alphabet: UPPER_DIGITS, len: (16, 16), after: "" },
        Shape { rule: "aws-secret-key", before: "aws_secret_access_key = ", alphabet: ALNUM, len: (40, 40), after: "" },
        Shape { rule: "google-api-key", before: "AIza", alphabet: ALNUM, len: (35, 35), after: "" },
        Shape { rule: "google-oauth", before: "ya29.", alphabet: ALNUM, len: (20, 60), after: "" },
        Shape { rule: "azure-storage-key", before: "AccountName=acct;AccountKey=", alphabet: ALNUM, len: (86, 86), after: "==;EndpointSuffix=core.windows.net" },
        Shape { rule: "azure-sas", before: "https://acct.blob.core.windows.net/c/b?sv=2022-11-02&sig=", alphabet: ALNUM, len: (20, 60), after: "" },
        Shape { rule: "azure-client-secret", before: " Xy78Q~", alphabet: ALNUM, len: (31, 34), after: "" },
        Shape { rule: "openai-key", before: "sk-proj-", alphabet: ALNUM, len: (20, 80), after: "" },
        Shape { rule: "anthropic-key", before: "sk-ant-api03-", alphabet: ALNUM, len: (20, 95), after: "" },
        Shape { rule: "huggingface-token", before: "hf_", alphabet: ALNUM, len: (30, 40), after: "" },
        Shape { rule: "npm-token", before: "npm_", alphabet: ALNUM, len: (36, 36), after: "" },
        Shape { rule: "pypi-token", before: "pypi-AgEIcHlwaS5vcmc", alphabet: ALNUM, len: (50, 120), after: "" },
        Shape { rule: "docker-hub-token", before: "dckr_pat_", alphabet: ALNUM, len: (27, 27), after: "" },
        Shape { rule: "twilio-api-key", before: "SK", alphabet: HEX, len: (32, 32), after: "" },
        Shape { rule: "sendgrid-key", before: "SG.abcdefghijklmnopqrstuv.", alphabet: ALNUM, len: (43, 43), after: "" },
        Shape { rule: "mailgun-key", before: "key-", alphabet: HEX, len: (32, 32), after: "" },
        Shape { rule: "shopify-token", before: "shpat_", alphabet: HEX, len: (32, 32), after: "" },
        Shape { rule: "discord-webhook", before: "https://discord.com/api/webhooks/123456789012345678/", alphabet: ALNUM, len: (20, 68), after: "" },
        Shape { rule: "discord-token", before: "MTA4NzY1NDMyMTA5ODc2NTQz.GAbCdE.", alphabet: ALNUM, len: (27, 38), after: "" },
        Shape { rule: "telegram-bot-token", before: "123456789:AA", alphabet: ALNUM, len: (33, 33), after: "" },
        Shape { rule: "heroku-key", before: "HRKU-AA", alphabet: ALNUM, len: (20, 58), after: "" },
        Shape { rule: "digitalocean-token", before: "dop_v1_", alphabet: HEX, len: (64, 64), after: "" },
        Shape { rule: "newrelic-key", before: "NRAK-", alphabet: UPPER_DIGITS, len: (27, 27), after: "" },
        Shape { rule: "sentry-token", before: "sntrys_", alphabet: ALNUM, len: (40, 120), after: "" },
        Shape { rule: "jwt", before: "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.", alphabet: ALNUM, len: (10, 60), after: "" },
        Shape { rule: "url-credentials", before: "https://deploy:", alphabet: ALNUM, len: (8, 40), after: "@git.example.com/repo.git" },
        Shape { rule: "authorization-header", before: "Authorization: Bearer ", alphabet: ALNUM, len: (8, 60), after: "" },
        Shape { rule: "cookie-header", before: "Cookie: ", alphabet: ALNUM, len: (8, 60), after: "" },
        Shape { rule: "password", before: "db_password = ", alphabet: ALNUM, len: (8, 40), after: "" },
        Shape { rule: "secret", before: "client_secret: ", alphabet: ALNUM, len: (8, 40), after: "" },
        Shape { rule: "token", before: "api_token=", alphabet: ALNUM, len: (8, 40), after: "" },
        Shape { rule: "key", before: "signing_key = 9Zq", alphabet: ALNUM, len: (16, 40), after: "" },
        Shape { rule: "netrc", before: "machine api.example.com login deploy password ", alphabet: ALNUM, len: (8, 40), after: "" },
        Shape { rule: "cli-flag", before: "mysql --user app --password ", alphabet: ALNUM, len: (8, 40), after: " --host db" },
        Shape { rule: "env", before: "", alphabet: ALNUM, len: (8, 40), after: "" },
        Shape { rule: "ticket", before: "TCK-", alphabet: b"0123456789", len: (8, 20), after: "" },
    ];
}

pub mod proxy {
    //! Where the `proxy` target's origin and proxies listen, inside the
    //! target's own network namespace.

    /// The origin server.
    pub const ORIGIN: &str = "127.0.0.1:8080";
    /// The proxies, in the order the input's first byte picks them.
    pub const PROXIES: [&str; 3] = ["127.0.0.1:3128", "127.0.0.1:3129", "127.0.0.1:3130"];
}
