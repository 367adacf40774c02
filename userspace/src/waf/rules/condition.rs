//! One compiled condition of a custom rule, in the rule anatomy the detectors share: a *target* (which part
//! of the request), *transforms* (applied in order before matching), a *matcher* (the operator with its
//! operand compiled once: regexes and globs built, subnets parsed, sizes read). Evaluation borrows from
//! the request and allocates only when a transform changes a value.

use std::borrow::Cow;
use std::net::IpAddr;

use regex::Regex;

use super::RuleInput;
use crate::config::schema::{ConditionKind, ConditionOperator, RuleCondition, Transform};
use crate::config::types::Cidr;

/// Why a condition cannot be compiled; the caller adds where it is.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ConditionError {
    #[error("operator `{0}` needs a value")]
    MissingValue(&'static str),
    #[error("type `{0}` needs a `name`")]
    MissingName(&'static str),
    #[error("invalid regex `{pattern}`: {error}")]
    Regex { pattern: String, error: String },
    #[error("`{0}` is not a CIDR list")]
    Cidr(String),
    #[error("`{0}` is not a size in bytes")]
    Size(String),
    #[error("operator `{op}` does not apply to type `{kind}`")]
    Mismatch { op: &'static str, kind: &'static str },
}

/// What part of the request a condition looks at.
#[derive(Clone, Debug)]
enum Target {
    Path,
    Method,
    Header(http::HeaderName),
    /// A query argument by name (decoded), or the raw query string.
    Query(Option<String>),
    /// A cookie by name, or the whole Cookie header.
    Cookie(Option<String>),
    Body,
    Ip,
    Country,
    UserAgent,
}

#[derive(Clone, Debug)]
enum Matcher {
    Equals(String),
    Contains(String),
    StartsWith(String),
    EndsWith(String),
    Regex(Regex),
    InSubnet(Vec<Cidr>),
    NotInSubnet(Vec<Cidr>),
    Exists,
    Gt(u64),
    Lt(u64),
}

#[derive(Clone, Debug)]
pub struct Condition {
    target: Target,
    transforms: Vec<Transform>,
    matcher: Matcher,
}

fn kind_name(k: ConditionKind) -> &'static str {
    match k {
        ConditionKind::Path => "path",
        ConditionKind::Method => "method",
        ConditionKind::Header => "header",
        ConditionKind::Query => "query",
        ConditionKind::Cookie => "cookie",
        ConditionKind::Body => "body",
        ConditionKind::Ip => "ip",
        ConditionKind::Country => "country",
        ConditionKind::UserAgent => "user_agent",
    }
}

fn op_name(o: ConditionOperator) -> &'static str {
    match o {
        ConditionOperator::Equals => "equals",
        ConditionOperator::Contains => "contains",
        ConditionOperator::StartsWith => "starts_with",
        ConditionOperator::EndsWith => "ends_with",
        ConditionOperator::Regex => "regex",
        ConditionOperator::Glob => "glob",
        ConditionOperator::InSubnet => "in_subnet",
        ConditionOperator::NotInSubnet => "not_in_subnet",
        ConditionOperator::Exists => "exists",
        ConditionOperator::Gt => "gt",
        ConditionOperator::Lt => "lt",
    }
}

/// A glob (`*` any run, `?` one character, everything else literal) as an anchored regex.
fn glob_regex(glob: &str) -> String {
    let mut re = String::from("^(?s)");
    for c in glob.chars() {
        match c {
            '*' => re.push_str(".*"),
            '?' => re.push('.'),
            c => re.push_str(&regex::escape(&c.to_string())),
        }
    }
    re.push('$');
    re
}

fn cidrs(value: &str) -> Result<Vec<Cidr>, ConditionError> {
    value
        .split(',')
        .map(|s| {
            s.trim()
                .parse::<Cidr>()
                .map_err(|_| ConditionError::Cidr(value.to_owned()))
        })
        .collect()
}

impl Condition {
    pub fn compile(c: &RuleCondition) -> Result<Self, ConditionError> {
        let op = op_name(c.operator);
        let needs_name = |kind| c.name.clone().ok_or(ConditionError::MissingName(kind));
        let target = match c.kind {
            ConditionKind::Path => Target::Path,
            ConditionKind::Method => Target::Method,
            ConditionKind::Header => {
                let name = needs_name("header")?;
                Target::Header(
                    http::HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes())
                        .map_err(|_| ConditionError::MissingName("header"))?,
                )
            }
            ConditionKind::Query => Target::Query(c.name.clone()),
            ConditionKind::Cookie => Target::Cookie(c.name.clone()),
            ConditionKind::Body => Target::Body,
            ConditionKind::Ip => Target::Ip,
            ConditionKind::Country => Target::Country,
            ConditionKind::UserAgent => Target::UserAgent,
        };
        let value = || c.value.clone().ok_or(ConditionError::MissingValue(op));
        let subnet_ok = matches!(c.kind, ConditionKind::Ip);
        let matcher = match c.operator {
            ConditionOperator::Equals => Matcher::Equals(value()?),
            ConditionOperator::Contains => Matcher::Contains(value()?),
            ConditionOperator::StartsWith => Matcher::StartsWith(value()?),
            ConditionOperator::EndsWith => Matcher::EndsWith(value()?),
            ConditionOperator::Regex | ConditionOperator::Glob => {
                let v = value()?;
                let pattern = if c.operator == ConditionOperator::Glob {
                    glob_regex(&v)
                } else {
                    v
                };
                Matcher::Regex(Regex::new(&pattern).map_err(|e| ConditionError::Regex {
                    pattern: pattern.clone(),
                    error: e.to_string(),
                })?)
            }
            ConditionOperator::InSubnet | ConditionOperator::NotInSubnet => {
                if !subnet_ok {
                    return Err(ConditionError::Mismatch {
                        op,
                        kind: kind_name(c.kind),
                    });
                }
                let list = cidrs(&value()?)?;
                if c.operator == ConditionOperator::InSubnet {
                    Matcher::InSubnet(list)
                } else {
                    Matcher::NotInSubnet(list)
                }
            }
            ConditionOperator::Exists => Matcher::Exists,
            ConditionOperator::Gt | ConditionOperator::Lt => {
                let v = value()?;
                let n = v
                    .parse::<crate::config::types::ByteSize>()
                    .map_err(|_| ConditionError::Size(v.clone()))?
                    .get();
                if c.operator == ConditionOperator::Gt {
                    Matcher::Gt(n)
                } else {
                    Matcher::Lt(n)
                }
            }
        };
        Ok(Self {
            target,
            transforms: c.transforms.clone(),
            matcher,
        })
    }

    /// Whether the condition holds for `req`. A target the request lacks (no such header, no country)
    /// satisfies no operator, `not_in_subnet` included.
    pub fn holds(&self, req: &RuleInput<'_>) -> bool {
        if let Target::Ip = self.target {
            match &self.matcher {
                Matcher::InSubnet(l) => return in_any(l, req.view.client),
                Matcher::NotInSubnet(l) => return !in_any(l, req.view.client),
                _ => {}
            }
        }
        let Some(raw) = self.value(req) else { return false };
        if let Matcher::Exists = self.matcher {
            return true;
        }
        if let (Matcher::Gt(n) | Matcher::Lt(n), Target::Body) = (&self.matcher, &self.target) {
            let size = req.body_size();
            return if matches!(self.matcher, Matcher::Gt(_)) {
                size > *n
            } else {
                size < *n
            };
        }
        let mut v = raw;
        for t in &self.transforms {
            v = apply(*t, v);
        }
        match &self.matcher {
            Matcher::Equals(s) => v == s.as_str(),
            Matcher::Contains(s) => v.contains(s.as_str()),
            Matcher::StartsWith(s) => v.starts_with(s.as_str()),
            Matcher::EndsWith(s) => v.ends_with(s.as_str()),
            Matcher::Regex(r) => r.is_match(&v),
            Matcher::Gt(n) => v.len() as u64 > *n,
            Matcher::Lt(n) => (v.len() as u64) < *n,
            Matcher::Exists | Matcher::InSubnet(_) | Matcher::NotInSubnet(_) => false,
        }
    }

    fn value<'r>(&self, req: &RuleInput<'r>) -> Option<Cow<'r, str>> {
        let v = req.view;
        Some(match &self.target {
            Target::Path => Cow::Borrowed(v.path),
            Target::Method => Cow::Borrowed(v.method),
            Target::Header(name) => Cow::Borrowed(v.headers.get(name).and_then(|h| h.to_str().ok())?),
            Target::UserAgent => Cow::Borrowed(v.header("user-agent")?),
            Target::Query(None) => Cow::Borrowed(v.query),
            Target::Query(Some(name)) => query_arg(v.query, name)?,
            Target::Cookie(None) => Cow::Borrowed(v.header("cookie")?),
            Target::Cookie(Some(name)) => Cow::Borrowed(cookie(v.headers, name)?),
            Target::Body => String::from_utf8_lossy(v.body),
            Target::Ip => Cow::Owned(v.client.to_string()),
            Target::Country => Cow::Borrowed(req.country?),
        })
    }
}

fn in_any(list: &[Cidr], ip: IpAddr) -> bool {
    list.iter().any(|c| c.contains(&ip))
}

fn apply(t: Transform, v: Cow<'_, str>) -> Cow<'_, str> {
    match t {
        Transform::Lowercase if v.bytes().any(|b| b.is_ascii_uppercase()) => Cow::Owned(v.to_lowercase()),
        Transform::Trim if v.trim().len() != v.len() => Cow::Owned(v.trim().to_owned()),
        Transform::UrlDecode if v.contains(['%', '+']) => Cow::Owned(percent_decode(&v)),
        _ => v,
    }
}

/// `%XX` and `+` decoded; invalid escapes stay as they are.
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(x) => {
                        out.push(x);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The first value of query argument `name` (names compared after decoding), decoded.
fn query_arg<'r>(query: &'r str, name: &str) -> Option<Cow<'r, str>> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let matches = if k.contains(['%', '+']) {
            percent_decode(k) == name
        } else {
            k == name
        };
        matches.then(|| {
            if v.contains(['%', '+']) {
                Cow::Owned(percent_decode(v))
            } else {
                Cow::Borrowed(v)
            }
        })
    })
}

/// The value of cookie `name` in any Cookie header.
fn cookie<'r>(headers: &'r http::HeaderMap, name: &str) -> Option<&'r str> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|h| h.to_str().ok())
        .flat_map(|h| h.split(';'))
        .find_map(|kv| {
            let (k, v) = kv.trim().split_once('=')?;
            (k == name).then_some(v)
        })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a test reports failure by panicking
mod tests {
    use super::*;

    #[test]
    fn percent_decoding_handles_bad_escapes() {
        assert_eq!(percent_decode("a%20b+c"), "a b c");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
        assert_eq!(percent_decode("%41"), "A");
    }

    #[test]
    fn globs_are_anchored_and_escape_the_rest() {
        let r = Regex::new(&glob_regex("/api/*.json")).unwrap();
        assert!(r.is_match("/api/v1/x.json") && !r.is_match("/api/x.jsonp") && !r.is_match("/apix.json"));
        assert!(Regex::new(&glob_regex("a?c")).unwrap().is_match("abc"));
    }
}
