//! Configuration for the engines that run a replay's shards: a GitHub
//! Actions workflow (a job matrix) and a Kubernetes Indexed Job, rendered
//! from `templates/github-workflow.yml` and `templates/k8s-job.yaml`.
//!
//! Pure: a [`Spec`] in, text out. Every value that reaches a shell line is
//! quoted as a shell word and every value that reaches YAML is a quoted
//! scalar, so nothing in a spec can change the generated file's structure;
//! the values are still checked ([`check_text`]) so that a generated file
//! never carries a control character or a line break from the command line.

use std::sync::OnceLock;

use minijinja::Environment;
use serde::Serialize;

/// The largest bundle a `ConfigMap` can carry: the API server refuses
/// config maps whose data passes 1 MiB (keys included).
pub const CONFIGMAP_MAX: u64 = 1024 * 1024;
/// The key of the bundle in its `ConfigMap`.
const CONFIGMAP_KEY: &str = "bundle.zip";
/// Most jobs one GitHub Actions matrix may make.
pub const GITHUB_MAX_SHARDS: u32 = 256;
/// Most bundles of one issue the issue workflow replays.
pub const ISSUE_MAX_BUNDLES: u32 = 5;
/// Most completions Kubernetes allows an Indexed Job.
pub const K8S_MAX_SHARDS: u32 = 100_000;

/// What every generated configuration replays, and how.
#[derive(Debug, Clone)]
pub struct Spec {
    pub scenario: String,
    pub shards: u32,
    /// `replay`'s flags after the bundle, `--shard`, `--seed` and `--yes`:
    /// `--runs`, the axes, `--timeout`, `--jobs`.
    pub replay_args: Vec<String>,
    /// The shared seed; `None` lets the engine choose one per run (GitHub: the run's id).
    pub seed: Option<u64>,
    pub bundle_sha256: String,
    pub bundle_url: Option<String>,
    /// Where bugpack is installed from: a git URL and an optional revision.
    pub source: String,
    pub rev: Option<String>,
}

/// The GitHub-only settings.
#[derive(Debug, Clone)]
pub struct Github {
    /// The bundle's path from the repository root, when it is not fetched.
    pub repo_path: Option<String>,
    pub runs_on: String,
    pub expect_fixed: bool,
    /// Install strace on the runners (the matrix has a `trace` cell).
    pub strace: bool,
}

/// The Kubernetes-only settings.
#[derive(Debug, Clone)]
pub struct K8s {
    pub name: String,
    pub image: String,
    /// The seed every pod shares (an Indexed Job has no shared run id).
    pub seed: u64,
}

/// What the templates see.
#[derive(Debug, Serialize)]
struct View<'a> {
    version: &'a str,
    scenario: &'a str,
    scenario_comment: String,
    shards: u32,
    shard_list: String,
    replay_args: String,
    seed: Option<u64>,
    bundle_path: String,
    bundle_url: Option<&'a str>,
    bundle_sha256: &'a str,
    source: &'a str,
    rev: Option<&'a str>,
    runs_on: &'a str,
    expect_fixed: bool,
    strace: bool,
    name: &'a str,
    image: &'a str,
    configmap: Option<String>,
    bundle_base64: String,
    max_bundles: u32,
}

/// Why a spec cannot be rendered.
#[derive(Debug, thiserror::Error)]
pub enum CiError {
    #[error("{what} {value:?}: {why}")]
    Value {
        what: &'static str,
        value: String,
        why: &'static str,
    },
    #[error(
        "the bundle is {size} bytes and a ConfigMap holds at most 1 MiB ({max} bytes); \
         host it somewhere the pods can reach and pass --bundle-url URL"
    )]
    TooBigForConfigMap { size: u64, max: u64 },
    #[error("cannot render {0}: {1}")]
    Template(&'static str, minijinja::Error),
}

/// Refuses text that would not survive as one YAML scalar or shell word
/// on one line: control characters, line breaks, bidi overrides.
pub fn check_text(what: &'static str, value: &str) -> Result<(), CiError> {
    let bad = crate::report::table::is_unsafe_char;
    if value.is_empty() {
        return Err(CiError::Value {
            what,
            value: value.to_owned(),
            why: "must not be empty",
        });
    }
    if value.chars().any(bad) {
        return Err(CiError::Value {
            what,
            value: value.to_owned(),
            why: "holds a control character or line break",
        });
    }
    Ok(())
}

/// A Kubernetes object name: a DNS-1123 label, short enough for `-bundle`
/// and the pods' names to fit.
pub fn check_k8s_name(name: &str) -> Result<(), CiError> {
    let ok = !name.is_empty()
        && name.len() <= 48
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(CiError::Value {
            what: "--name",
            value: name.to_owned(),
            why: "use lowercase letters, digits and '-', at most 48 characters, starting and ending with a letter or digit",
        })
    }
}

/// The GitHub Actions workflow.
pub fn github(spec: &Spec, gh: &Github) -> Result<String, CiError> {
    let bundle_path = match (&spec.bundle_url, &gh.repo_path) {
        (Some(_), _) | (None, None) => "bugpack-bundle.zip".to_owned(),
        (None, Some(path)) => path.clone(),
    };
    let view = View {
        runs_on: &gh.runs_on,
        expect_fixed: gh.expect_fixed,
        strace: gh.strace,
        ..view(spec, bundle_path, spec.seed)
    };
    render("github-workflow.yml", &view)
}

/// The issue workflow (`ci github --on-issue`): replays every bundle an
/// issue links to, with `spec`'s matrix flags, and comments the results.
/// `spec.shards` is per bundle; its bundle and seed are unused.
pub fn github_on_issue(spec: &Spec, gh: &Github) -> Result<String, CiError> {
    let view = View {
        runs_on: &gh.runs_on,
        strace: gh.strace,
        ..view(spec, String::new(), None)
    };
    render("github-on-issue.yml", &view)
}

/// The Kubernetes manifests: the bundle's `ConfigMap` (unless it is fetched
/// from `spec.bundle_url`), then the Indexed Job.
pub fn k8s(spec: &Spec, k: &K8s, bundle: &[u8]) -> Result<String, CiError> {
    use base64::Engine as _;

    let mut view = view(
        spec,
        if spec.bundle_url.is_some() {
            "/tmp/bugpack-bundle.zip".to_owned()
        } else {
            format!("/bundle/{CONFIGMAP_KEY}")
        },
        Some(k.seed),
    );
    view.name = &k.name;
    view.image = &k.image;
    if spec.bundle_url.is_none() {
        let size = bundle.len() as u64 + CONFIGMAP_KEY.len() as u64;
        if size > CONFIGMAP_MAX {
            return Err(CiError::TooBigForConfigMap {
                size: bundle.len() as u64,
                max: CONFIGMAP_MAX - CONFIGMAP_KEY.len() as u64,
            });
        }
        view.configmap = Some(format!("{}-bundle", k.name));
        view.bundle_base64 = base64::engine::general_purpose::STANDARD.encode(bundle);
    }
    render("k8s-job.yaml", &view)
}

fn view(spec: &Spec, bundle_path: String, seed: Option<u64>) -> View<'_> {
    View {
        version: env!("CARGO_PKG_VERSION"),
        scenario: &spec.scenario,
        scenario_comment: spec.scenario.replace(['\n', '\r'], " "),
        shards: spec.shards,
        shard_list: (1..=spec.shards)
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
            .join(", "),
        replay_args: crate::capture::observe::shell_line(&spec.replay_args),
        seed,
        bundle_path,
        bundle_url: spec.bundle_url.as_deref(),
        bundle_sha256: &spec.bundle_sha256,
        source: &spec.source,
        rev: spec.rev.as_deref(),
        runs_on: "",
        expect_fixed: false,
        strace: false,
        name: "",
        image: "",
        configmap: None,
        bundle_base64: String::new(),
        max_bundles: ISSUE_MAX_BUNDLES,
    }
}

fn quote(word: &str) -> String {
    // `try_quote` refuses only NUL bytes, which check_text already refused.
    shlex::try_quote(word).map_or_else(|_| "''".to_owned(), std::borrow::Cow::into_owned)
}

fn render(name: &'static str, view: &View<'_>) -> Result<String, CiError> {
    environment()
        .get_template(name)
        .and_then(|t| t.render(minijinja::value::Serde(view)))
        .map_err(|e| CiError::Template(name, e))
}

fn environment() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        // GitHub's `${{ }}` must pass through: values are `{= =}` here.
        if let Ok(syntax) = minijinja::syntax::SyntaxConfig::builder()
            .variable_delimiters("{=", "=}")
            .keep_trailing_newline(true)
            .build()
        {
            env.set_syntax(syntax);
        }
        // A JSON string is a double-quoted YAML scalar.
        env.add_filter("q", |value: String| {
            serde_json::to_string(&value).unwrap_or_else(|_| "\"\"".to_owned())
        });
        env.add_filter("sh", |value: String| quote(&value));
        // The templates ship in the binary and are covered by tests;
        // failing to parse one is a build defect, reported on first render.
        let _ = env.add_template(
            "github-workflow.yml",
            include_str!("../templates/github-workflow.yml"),
        );
        let _ = env.add_template(
            "github-on-issue.yml",
            include_str!("../templates/github-on-issue.yml"),
        );
        let _ = env.add_template("k8s-job.yaml", include_str!("../templates/k8s-job.yaml"));
        env
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> Spec {
        Spec {
            scenario: "demo: a \"quoted\" name".to_owned(),
            shards: 3,
            replay_args: vec![
                "--runs".into(),
                "4".into(),
                "--proxy".into(),
                "none,slow:300".into(),
            ],
            seed: None,
            bundle_sha256: "ab".repeat(32),
            bundle_url: None,
            source: "https://example.invalid/bugpack.git".into(),
            rev: Some("v0.1.0".into()),
        }
    }

    #[test]
    fn the_workflow_is_yaml_with_every_value_in_place() {
        let text = github(
            &spec(),
            &Github {
                repo_path: Some("bugs/it's.zip".into()),
                runs_on: "ubuntu-latest".into(),
                expect_fixed: true,
                strace: true,
            },
        )
        .unwrap();
        let doc: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
        assert_eq!(
            doc["name"].as_str(),
            Some("bugpack replay: demo: a \"quoted\" name")
        );
        assert_eq!(doc["env"]["BUGPACK_BUNDLE"].as_str(), Some("bugs/it's.zip"));
        assert_eq!(
            doc["env"]["BUGPACK_SEED"].as_str(),
            Some("${{ github.run_id }}")
        );
        let shards: Vec<u64> = doc["jobs"]["replay"]["strategy"]["matrix"]["shard"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .collect();
        assert_eq!(shards, [1, 2, 3]);
        assert!(text.contains("--runs 4 --proxy 'none,slow:300'"), "{text}");
        assert!(text.contains("--rev v0.1.0 bugpack"), "{text}");
        assert!(text.contains("--expect-fixed"), "{text}");
        assert!(text.contains("apt-get install -y strace"), "{text}");
    }

    #[test]
    fn a_configmap_past_one_mebibyte_is_refused() {
        let k = K8s {
            name: "bugpack-replay".into(),
            image: "rust:1".into(),
            seed: 5,
        };
        let big = vec![0_u8; usize::try_from(CONFIGMAP_MAX).unwrap()];
        assert!(matches!(
            k8s(&spec(), &k, &big),
            Err(CiError::TooBigForConfigMap { .. })
        ));
        let fits = vec![0_u8; 1000];
        let text = k8s(&spec(), &k, &fits).unwrap();
        let docs: Vec<serde_yaml::Value> = serde_yaml::Deserializer::from_str(&text)
            .map(|d| serde_yaml::Value::deserialize(d).unwrap())
            .collect();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0]["kind"].as_str(), Some("ConfigMap"));
        assert_eq!(docs[1]["spec"]["completions"].as_u64(), Some(3));
        let mut url = spec();
        url.bundle_url = Some("https://example.invalid/b.zip".into());
        let text = k8s(&url, &k, &big).unwrap();
        assert!(!text.contains("ConfigMap"), "{text}");
    }

    use serde::Deserialize as _;

    #[test]
    fn names_and_texts_are_checked() {
        assert!(check_k8s_name("bugpack-replay").is_ok());
        for bad in ["", "Bugpack", "-x", "x-", "a_b", &"x".repeat(49)] {
            assert!(check_k8s_name(bad).is_err(), "{bad}");
        }
        assert!(check_text("--runs-on", "ubuntu-latest").is_ok());
        assert!(check_text("--runs-on", "a\nb").is_err());
        assert!(check_text("--runs-on", "").is_err());
    }
}
