//! Configuration: one YAML file, typed by `schema`, overridden by `RAMPART_` environment variables, checked
//! by `validate`, with every problem reported as `file:line: key.path: message`.
//!
//! Loading is a pure function of the text and the environment: nothing here starts, binds or opens anything
//! but the file itself, so `rampart config validate` and the daemon accept exactly the same files.

mod env;
mod error;
mod lines;
mod path;
pub mod patterns;
pub mod schema;
mod summary;
pub mod types;
mod validate;

use std::path::Path;

use serde_json::Value;

pub use error::{ConfigError, ConfigIssue, Location};
pub use path::KeyPath;
pub use schema::Config;
pub use summary::{summary, summary_text};

use env::Override;
use lines::LineIndex;

/// The configuration `rampart run` uses without `--config`: `config/default.yaml`, compiled in.
pub const DEFAULT_YAML: &str = include_str!("../../../config/default.yaml");

/// Top-level keys of the schema; the environment overlay only touches variables that start with one of these.
pub const TOP_LEVEL_KEYS: &[&str] = &[
    "environment",
    "debug",
    "log_level",
    "server",
    "ssl",
    "waf",
    "proxy",
    "admin",
    "metrics",
    "logging",
    "xdp",
    "fleet",
];

/// Upper bound on the type errors collected from one file; past this, fixing the first ones is the way on.
const MAX_TYPE_ERRORS: usize = 32;

/// Reads and loads `path` with the process environment's overrides.
pub fn load_file(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    load_str(&text, &path.display().to_string(), std::env::vars())
}

/// The embedded default configuration with the process environment's overrides.
pub fn load_default() -> Result<Config, ConfigError> {
    load_str(DEFAULT_YAML, "<embedded default config>", std::env::vars())
}

/// Loads configuration text. `origin` names it in errors; `env` supplies the `RAMPART_` overrides.
pub fn load_str(
    text: &str,
    origin: &str,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Config, ConfigError> {
    let invalid = |issues| ConfigError::Invalid {
        origin: origin.to_owned(),
        issues,
    };
    let lines = LineIndex::build(text);
    let mut doc = parse_tree(text).map_err(|issue| invalid(vec![issue]))?;

    let (overrides, override_errors) = env::apply(&mut doc, env, TOP_LEVEL_KEYS);
    let locate = Locator {
        lines: &lines,
        overrides: &overrides,
    };
    let mut issues: Vec<ConfigIssue> = override_errors
        .into_iter()
        .map(|e| ConfigIssue {
            path: e.path,
            location: Location::Env(e.var),
            message: e.message,
        })
        .collect();

    let config = deserialize_collecting(doc, &locate, &mut issues);
    if let Some(config) = &config {
        issues.extend(
            validate::check(config)
                .into_iter()
                .map(|(path, message)| locate.issue(path, message)),
        );
    }
    match config {
        Some(config) if issues.is_empty() => Ok(config),
        _ => {
            issues.sort_by_key(|i| match i.location {
                Location::Line(l) => l,
                _ => usize::MAX,
            });
            Err(invalid(issues))
        }
    }
}

/// YAML text to a tree; a syntax error becomes one issue at its line.
fn parse_tree(text: &str) -> Result<Value, ConfigIssue> {
    let options = serde_saphyr::options! { with_snippet: false };
    match serde_saphyr::from_str_with_options::<Value>(text, options) {
        Ok(Value::Null) => Ok(Value::Object(Default::default())),
        Ok(v @ Value::Object(_)) => Ok(v),
        Ok(_) => Err(ConfigIssue {
            path: KeyPath::root(),
            location: Location::Line(1),
            message: "the configuration must be a mapping of sections (server:, proxy:, ...)".into(),
        }),
        Err(e) => Err(ConfigIssue {
            path: KeyPath::root(),
            location: e
                .location()
                .and_then(|l| usize::try_from(l.line()).ok())
                .map_or(Location::Unknown, Location::Line),
            message: format!("invalid YAML: {}", first_line(&e.to_string())),
        }),
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s)
}

/// Deserialises the typed config, and on a type error removes the offending key and tries again, so one run
/// reports every wrong type and unknown key rather than only the first.
fn deserialize_collecting(doc: Value, locate: &Locator<'_>, issues: &mut Vec<ConfigIssue>) -> Option<Config> {
    let mut doc = doc;
    let mut reported: Vec<KeyPath> = Vec::new();
    for _ in 0..MAX_TYPE_ERRORS {
        let err = match serde_path_to_error::deserialize::<_, Config>(doc.clone()) {
            Ok(config) => return Some(config),
            Err(err) => err,
        };
        let mut path = convert_path(err.path());
        let message = err.inner().to_string();
        if let Some(field) = backticked_after(&message, "unknown field `")
            && path.segments().last() != Some(&path::Segment::Key(field.to_owned()))
        {
            path.push_key(field);
        }
        // A required key whose bad value was removed resurfaces as "missing field": already reported.
        if let Some(field) = backticked_after(&message, "missing field `") {
            if !reported.contains(&path.child_key(field)) {
                issues.push(locate.issue(path, message));
            }
            // Nothing can be removed to get past a missing key, so collection ends here.
            return None;
        }
        reported.push(path.clone());
        issues.push(locate.issue(path.clone(), message));
        if !remove_key(&mut doc, &path) {
            return None;
        }
    }
    None
}

fn backticked_after<'a>(message: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = &message[message.find(prefix)? + prefix.len()..];
    rest.split('`').next()
}

fn convert_path(p: &serde_path_to_error::Path) -> KeyPath {
    use serde_path_to_error::Segment as S;
    let mut out = KeyPath::root();
    for seg in p.iter() {
        match seg {
            S::Seq { index } => out = out.child_index(*index),
            S::Map { key } => out.push_key(key),
            S::Enum { .. } | S::Unknown => {}
        }
    }
    out
}

/// Removes the value at `path`, or for a list item the whole list (removing one item would renumber the
/// rest and misreport later errors); false when nothing could be removed.
fn remove_key(doc: &mut Value, path: &KeyPath) -> bool {
    use path::Segment;
    let mut path = path.clone();
    while matches!(path.segments().last(), Some(Segment::Index(_))) {
        path.pop();
    }
    let Some((Segment::Key(last), parents)) = path.segments().split_last() else {
        return false;
    };
    let mut node = doc;
    for seg in parents {
        node = match (seg, node) {
            (Segment::Key(k), Value::Object(m)) => match m.get_mut(k) {
                Some(v) => v,
                None => return false,
            },
            (Segment::Index(i), Value::Array(a)) => match a.get_mut(*i) {
                Some(v) => v,
                None => return false,
            },
            _ => return false,
        };
    }
    match node {
        Value::Object(m) => m.remove(last).is_some(),
        _ => false,
    }
}

/// Attaches a location to a path: the environment variable that set it or an ancestor, else its file line.
struct Locator<'a> {
    lines: &'a LineIndex,
    overrides: &'a [Override],
}

impl Locator<'_> {
    fn issue(&self, path: KeyPath, message: String) -> ConfigIssue {
        let from_env = self
            .overrides
            .iter()
            .rev()
            .find(|o| path.segments().starts_with(o.path.segments()));
        let location = match from_env {
            Some(o) => Location::Env(o.var.clone()),
            None => self.lines.line_of(&path).map_or(Location::Unknown, Location::Line),
        };
        ConfigIssue {
            path,
            location,
            message,
        }
    }
}

/// The configuration as YAML, with secrets replaced, for `rampart config show`.
pub fn to_yaml_redacted(config: &Config) -> Result<String, serde_saphyr::SerializeError> {
    let mut shown = config.clone();
    let redact = |s: &mut Option<String>| {
        if s.is_some() {
            *s = Some("<redacted>".into());
        }
    };
    redact(&mut shown.admin.auth.jwt_secret);
    // A hash is not the password, but it can be attacked offline: it stays in the file only.
    for u in &mut shown.admin.auth.users {
        u.password_hash = "<redacted>".into();
    }
    redact(&mut shown.proxy.caching.redis_cache.password);
    redact(&mut shown.fleet.redis.password);
    serde_saphyr::to_string(&shown)
}

#[cfg(test)]
mod tests;
