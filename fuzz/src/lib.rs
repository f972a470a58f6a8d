//! What the fuzz targets and the seed generator share: the secret shapes of
//! the `redact` target and the addresses of the `proxy` target.

pub mod redact {
    //! The `redact` target's secret shapes, one per rule.

    /// Secret material is drawn from these.
    pub const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    /// For AWS access key ids.
    pub const UPPER_DIGITS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

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
        Shape { rule: "jwt", before: "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.", alphabet: ALNUM, len: (10, 60), after: "" },
        Shape { rule: "url-credentials", before: "https://deploy:", alphabet: ALNUM, len: (8, 40), after: "@git.example.com/repo.git" },
        Shape { rule: "authorization-header", before: "Authorization: Bearer ", alphabet: ALNUM, len: (8, 60), after: "" },
        Shape { rule: "cookie-header", before: "Cookie: ", alphabet: ALNUM, len: (8, 60), after: "" },
        Shape { rule: "password", before: "db_password = ", alphabet: ALNUM, len: (8, 40), after: "" },
        Shape { rule: "secret", before: "client_secret: ", alphabet: ALNUM, len: (8, 40), after: "" },
        Shape { rule: "token", before: "api_token=", alphabet: ALNUM, len: (8, 40), after: "" },
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
