//! Configuration errors: each names the key path and where the bad value came from (file line or environment
//! variable), one line per problem, so an operator can fix every mistake in one pass.

use std::fmt;
use std::path::PathBuf;

use super::path::KeyPath;

/// Where a configuration value was written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    /// A 1-based line of the configuration file.
    Line(usize),
    /// An environment variable overriding the file.
    Env(String),
    /// Not attributable to a place (e.g. the file is empty).
    Unknown,
}

/// One problem with the configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigIssue {
    pub path: KeyPath,
    pub location: Location,
    pub message: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Every problem found, in document order where known.
    #[error("{}", render(origin, issues))]
    Invalid { origin: String, issues: Vec<ConfigIssue> },
}

impl ConfigError {
    pub fn issues(&self) -> &[ConfigIssue] {
        match self {
            Self::Read { .. } => &[],
            Self::Invalid { issues, .. } => issues,
        }
    }
}

fn render(origin: &str, issues: &[ConfigIssue]) -> String {
    issues
        .iter()
        .map(|i| IssueLine { origin, issue: i }.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

struct IssueLine<'a> {
    origin: &'a str,
    issue: &'a ConfigIssue,
}

impl fmt::Display for IssueLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ConfigIssue {
            path,
            location,
            message,
        } = self.issue;
        match location {
            Location::Line(line) => write!(f, "{}:{line}: {path}: {message}", self.origin),
            Location::Env(var) => write!(f, "environment {var}: {path}: {message}"),
            Location::Unknown => write!(f, "{}: {path}: {message}", self.origin),
        }
    }
}
