//! Patterns used by routes: path patterns, host patterns and HTTP methods. Each compiles while deserialising,
//! so a bad pattern is reported with its key path and line like any other bad value.

use std::fmt;

use regex::Regex;
use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize, Serializer};

/// A path pattern: exact (`/login`), prefix (`/api/*`, which also matches `/api` itself), glob
/// (`/static/*.css`: `*` and `?` stay within one segment, `**` crosses segments) or regex (`~^/v[0-9]+/`).
#[derive(Clone, Debug)]
pub enum PathPattern {
    Exact(String),
    Prefix(String),
    Glob { source: String, regex: Regex },
    Regex { source: String, regex: Regex },
}

impl PathPattern {
    pub fn parse(s: &str) -> Result<Self, String> {
        if let Some(re) = s.strip_prefix('~') {
            let regex = Regex::new(re).map_err(|e| format!("invalid regex `{re}`: {e}"))?;
            return Ok(Self::Regex {
                source: s.to_owned(),
                regex,
            });
        }
        if !s.starts_with('/') && s != "*" {
            return Err(format!("path pattern `{s}` must start with `/` (or `~` for a regex)"));
        }
        if s == "*" || s == "/*" {
            return Ok(Self::Prefix("/".into()));
        }
        if let Some(prefix) = s.strip_suffix("/*")
            && !prefix.contains(['*', '?'])
        {
            return Ok(Self::Prefix(format!("{prefix}/")));
        }
        if s.contains(['*', '?']) {
            let mut re = String::from("^");
            let mut chars = s.chars().peekable();
            while let Some(c) = chars.next() {
                match c {
                    '*' if chars.peek() == Some(&'*') => {
                        chars.next();
                        re.push_str(".*");
                    }
                    '*' => re.push_str("[^/]*"),
                    '?' => re.push_str("[^/]"),
                    c => re.push_str(&regex::escape(&c.to_string())),
                }
            }
            re.push('$');
            let regex = Regex::new(&re).map_err(|e| format!("invalid glob `{s}`: {e}"))?;
            return Ok(Self::Glob {
                source: s.to_owned(),
                regex,
            });
        }
        Ok(Self::Exact(s.to_owned()))
    }

    pub fn matches(&self, path: &str) -> bool {
        match self {
            Self::Exact(p) => path == p,
            Self::Prefix(p) => path.starts_with(p.as_str()) || path == p.trim_end_matches('/'),
            Self::Glob { regex, .. } | Self::Regex { regex, .. } => regex.is_match(path),
        }
    }

    fn source(&self) -> String {
        match self {
            Self::Exact(p) => p.clone(),
            Self::Prefix(p) if p == "/" => "/*".into(),
            Self::Prefix(p) => format!("{p}*"),
            Self::Glob { source, .. } | Self::Regex { source, .. } => source.clone(),
        }
    }
}

/// A host name (`api.example.com`) or a wildcard for its subdomains (`*.example.com`, any depth). Lower-cased;
/// a port is never part of the pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostPattern {
    Exact(String),
    /// The suffix including its leading dot: `.example.com`.
    Wildcard(String),
}

impl HostPattern {
    pub fn parse(s: &str) -> Result<Self, String> {
        let lower = s.trim().to_ascii_lowercase();
        let (wild, name) = match lower.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, lower.as_str()),
        };
        let valid = !name.is_empty()
            && name.len() <= 253
            && name
                .split('.')
                .all(|l| !l.is_empty() && l.len() <= 63 && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
        if !valid {
            return Err(format!(
                "invalid host name `{s}`: expected e.g. example.com or *.example.com"
            ));
        }
        Ok(if wild {
            Self::Wildcard(format!(".{name}"))
        } else {
            Self::Exact(name.to_owned())
        })
    }

    /// `host` must already be lower-cased and without a port.
    pub fn matches(&self, host: &str) -> bool {
        match self {
            Self::Exact(h) => host == h,
            Self::Wildcard(suffix) => host.len() > suffix.len() && host.ends_with(suffix.as_str()),
        }
    }
}

/// An HTTP method name, upper-cased.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpMethod(pub http::Method);

impl HttpMethod {
    pub fn parse(s: &str) -> Result<Self, String> {
        http::Method::from_bytes(s.trim().to_ascii_uppercase().as_bytes())
            .map(Self)
            .map_err(|_| format!("invalid HTTP method `{s}`"))
    }
}

macro_rules! string_serde {
    ($ty:ty, $to_string:expr) => {
        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let f: fn(&$ty) -> String = $to_string;
                s.serialize_str(&f(self))
            }
        }
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                <$ty>::parse(&s).map_err(de::Error::custom)
            }
        }
    };
}

string_serde!(PathPattern, |p| p.source());
string_serde!(HostPattern, |h| match h {
    HostPattern::Exact(n) => n.clone(),
    HostPattern::Wildcard(s) => format!("*{s}"),
});
string_serde!(HttpMethod, |m| m.0.as_str().to_owned());

impl fmt::Display for PathPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> PathPattern {
        PathPattern::parse(s).expect("valid pattern")
    }

    #[test]
    fn path_patterns_of_every_kind() {
        assert!(p("/login").matches("/login") && !p("/login").matches("/login/x"));
        let api = p("/api/*");
        assert!(api.matches("/api") && api.matches("/api/") && api.matches("/api/v1/users"));
        assert!(!api.matches("/apix") && !api.matches("/"));
        assert!(p("/*").matches("/anything/at/all"));
        let glob = p("/static/*.css");
        assert!(
            glob.matches("/static/site.css") && !glob.matches("/static/a/site.css") && !glob.matches("/static/site.js")
        );
        assert!(p("/files/**/raw").matches("/files/a/b/c/raw"));
        assert!(p("/v?/x").matches("/v1/x") && !p("/v?/x").matches("/v12/x"));
        let re = p("~^/v[0-9]+/items$");
        assert!(re.matches("/v12/items") && !re.matches("/vx/items"));
    }

    #[test]
    fn bad_patterns_are_errors_naming_the_input() {
        assert!(PathPattern::parse("~(").expect_err("bad regex").contains("`(`"));
        assert!(PathPattern::parse("api").is_err());
        assert!(HostPattern::parse("exa mple.com").is_err());
        assert!(HostPattern::parse("*.").is_err());
        assert!(HttpMethod::parse("GE T").is_err());
    }

    #[test]
    fn host_patterns() {
        let exact = HostPattern::parse("API.Example.com").expect("valid");
        assert!(exact.matches("api.example.com") && !exact.matches("x.api.example.com"));
        let wild = HostPattern::parse("*.example.com").expect("valid");
        assert!(wild.matches("a.example.com") && wild.matches("a.b.example.com"));
        assert!(!wild.matches("example.com") && !wild.matches("badexample.com"));
    }

    #[test]
    fn patterns_serialise_back_to_their_source() {
        for s in ["/login", "/api/*", "/*", "/static/*.css", "~^/v[0-9]+/"] {
            assert_eq!(p(s).to_string(), s);
        }
    }
}
