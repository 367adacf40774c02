//! HTTP caching semantics as pure decisions (RFC 9111 for a shared cache, RFC 5861 for the stale extensions):
//! which requests may be answered from the cache, which responses may be stored and for how long, and when a
//! conditional request is answered with 304. No I/O and no clock of its own: the caller passes `now`.

use std::time::{Duration, SystemTime};

use http::header::{self, HeaderMap, HeaderName};
use http::{Method, StatusCode};

use crate::config::patterns::PathPattern;
use crate::config::schema::{CacheConditionOperator, CacheRule};

/// A cache rule compiled: what `proxy.caching.cache_rules[]` (or a route's `cache_ttl`) says.
#[derive(Clone, Debug)]
pub struct Rule {
    pub path: Option<PathPattern>,
    /// Freshness when the upstream gives none.
    pub ttl: Duration,
    pub vary: Vec<HeaderName>,
    pub key: KeyParts,
    pub conditions: Vec<Condition>,
    pub cache_set_cookie: bool,
    pub stale_while_revalidate: Duration,
    pub stale_if_error: Duration,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KeyParts {
    pub path: bool,
    pub query: bool,
    pub host: bool,
    pub method: bool,
    pub user_id: bool,
}

#[derive(Clone, Debug)]
pub struct Condition {
    pub header: HeaderName,
    pub operator: CacheConditionOperator,
    pub value: String,
}

impl Rule {
    /// Compiles a configured rule; `None` for one that validation would have refused.
    pub fn compile(r: &CacheRule) -> Option<Self> {
        let mut key = KeyParts::default();
        for part in &r.cache_key_include {
            match part.as_str() {
                "path" => key.path = true,
                "query" => key.query = true,
                "host" => key.host = true,
                "method" => key.method = true,
                "user_id" => key.user_id = true,
                _ => return None,
            }
        }
        Some(Self {
            path: Some(PathPattern::parse(&r.path).ok()?),
            ttl: Duration::from_secs(r.ttl),
            vary: r
                .vary_headers
                .iter()
                .map(|h| HeaderName::from_bytes(h.as_bytes()).ok())
                .collect::<Option<_>>()?,
            key,
            conditions: r
                .conditions
                .iter()
                .map(|c| {
                    Some(Condition {
                        header: HeaderName::from_bytes(c.header.as_bytes()).ok()?,
                        operator: c.operator,
                        value: c.value.clone(),
                    })
                })
                .collect::<Option<_>>()?,
            cache_set_cookie: r.cache_set_cookie,
            stale_while_revalidate: Duration::from_secs(r.stale_while_revalidate),
            stale_if_error: Duration::from_secs(r.stale_if_error),
        })
    }

    /// The rule a route's `cache_ttl` stands for: everything on the route, keyed by path and query.
    pub fn for_route_ttl(ttl: Duration) -> Self {
        Self {
            path: None,
            ttl,
            vary: Vec::new(),
            key: KeyParts {
                path: true,
                query: true,
                ..KeyParts::default()
            },
            conditions: Vec::new(),
            cache_set_cookie: false,
            stale_while_revalidate: Duration::ZERO,
            stale_if_error: Duration::ZERO,
        }
    }

    /// Whether the request's headers meet every condition (an absent header meets only `not_contains`).
    pub fn conditions_hold(&self, headers: &HeaderMap) -> bool {
        self.conditions.iter().all(|c| {
            let value = headers.get(&c.header).and_then(|v| v.to_str().ok());
            match (c.operator, value) {
                (CacheConditionOperator::Equals, Some(v)) => v == c.value,
                (CacheConditionOperator::Contains, Some(v)) => v.contains(c.value.as_str()),
                (CacheConditionOperator::NotContains, Some(v)) => !v.contains(c.value.as_str()),
                (CacheConditionOperator::NotContains, None) => true,
                (_, None) => false,
            }
        })
    }
}

/// What the cache may do for one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestMode {
    /// Not cacheable: forwarded untouched, the response not stored.
    Bypass,
    /// Look up; on a miss, forward and store.
    Lookup,
    /// Do not answer from the cache (the client asked for a fresh answer), but store what comes back.
    Refresh,
}

/// Decides for a request that a rule matched. `keyed_by_user`: the key includes the user, so a request
/// with credentials can be cached per user.
pub fn request_mode(method: &Method, headers: &HeaderMap, rule: &Rule) -> RequestMode {
    if method != Method::GET && method != Method::HEAD {
        return RequestMode::Bypass;
    }
    if !rule.conditions_hold(headers) {
        return RequestMode::Bypass;
    }
    let cc = Directives::parse(headers.get_all(header::CACHE_CONTROL).iter());
    if cc.no_store {
        return RequestMode::Bypass;
    }
    let pragma_no_cache = !headers.contains_key(header::CACHE_CONTROL)
        && headers
            .get_all(header::PRAGMA)
            .iter()
            .any(|v| v.to_str().is_ok_and(|v| v.to_ascii_lowercase().contains("no-cache")));
    if cc.no_cache || cc.max_age == Some(0) || pragma_no_cache {
        return RequestMode::Refresh;
    }
    RequestMode::Lookup
}

/// How long a stored response stays usable, from the time it was received.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lifetime {
    pub fresh: Duration,
    pub stale_while_revalidate: Duration,
    pub stale_if_error: Duration,
}

impl Lifetime {
    /// How long the entry must be kept at most: fresh plus the longest stale allowance.
    pub fn keep(&self) -> Duration {
        self.fresh + self.stale_while_revalidate.max(self.stale_if_error)
    }
}

/// Why a response was not stored (for logs and tests).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotStored {
    Method,
    Status,
    NoStore,
    Private,
    NoCache,
    SetCookie,
    VaryStar,
    Authorization,
    ZeroTtl,
}

/// Whether, and for how long, a response may be stored. `request` is the client's request; `now` the time
/// the response arrived.
pub fn storable(
    method: &Method,
    request: &HeaderMap,
    status: StatusCode,
    response: &HeaderMap,
    rule: &Rule,
    now: SystemTime,
) -> Result<Lifetime, NotStored> {
    if method != Method::GET {
        return Err(NotStored::Method);
    }
    if !matches!(
        status.as_u16(),
        200 | 203 | 204 | 300 | 301 | 308 | 404 | 405 | 410 | 414 | 501
    ) {
        return Err(NotStored::Status);
    }
    let cc = Directives::parse(response.get_all(header::CACHE_CONTROL).iter());
    if cc.no_store {
        return Err(NotStored::NoStore);
    }
    if cc.private {
        return Err(NotStored::Private);
    }
    if cc.no_cache {
        return Err(NotStored::NoCache);
    }
    if response.contains_key(header::SET_COOKIE) && !rule.cache_set_cookie {
        return Err(NotStored::SetCookie);
    }
    if response
        .get_all(header::VARY)
        .iter()
        .any(|v| v.to_str().is_ok_and(|v| v.split(',').any(|n| n.trim() == "*")))
    {
        return Err(NotStored::VaryStar);
    }
    // RFC 9111 §3.5: a shared cache stores answers to requests with credentials only when the upstream says
    // so; a key that includes the user keeps each user's answers apart, which is the same guarantee.
    if request.contains_key(header::AUTHORIZATION)
        && !rule.key.user_id
        && !(cc.public || cc.s_maxage.is_some() || cc.must_revalidate)
    {
        return Err(NotStored::Authorization);
    }
    let fresh = match cc.s_maxage.or(cc.max_age) {
        Some(secs) => Duration::from_secs(secs),
        None => match expires(response) {
            Some(at) => {
                let date = date(response).unwrap_or(now);
                at.duration_since(date).unwrap_or(Duration::ZERO)
            }
            None => rule.ttl,
        },
    };
    // must-revalidate and proxy-revalidate forbid serving stale, whatever was configured.
    let no_stale = cc.must_revalidate || cc.proxy_revalidate;
    let stale = |directive: Option<u64>, configured: Duration| {
        if no_stale {
            Duration::ZERO
        } else {
            directive.map_or(configured, Duration::from_secs)
        }
    };
    let lifetime = Lifetime {
        fresh,
        stale_while_revalidate: stale(cc.stale_while_revalidate, rule.stale_while_revalidate),
        stale_if_error: stale(cc.stale_if_error, rule.stale_if_error),
    };
    if lifetime.keep().is_zero() {
        return Err(NotStored::ZeroTtl);
    }
    Ok(lifetime)
}

fn expires(h: &HeaderMap) -> Option<SystemTime> {
    // An Expires that does not parse means "already expired" (RFC 9111 §5.3): the epoch.
    let v = h.get(header::EXPIRES)?.to_str().ok()?;
    Some(httpdate::parse_http_date(v).unwrap_or(SystemTime::UNIX_EPOCH))
}

fn date(h: &HeaderMap) -> Option<SystemTime> {
    httpdate::parse_http_date(h.get(header::DATE)?.to_str().ok()?).ok()
}

/// What a conditional request gets from a stored response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Conditional {
    NotModified,
    Full,
}

/// `If-None-Match` (weak comparison, RFC 9110 §13.1.2) takes precedence over `If-Modified-Since`.
pub fn conditional(request: &HeaderMap, stored: &HeaderMap) -> Conditional {
    if let Some(inm) = request.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()) {
        let Some(etag) = stored.get(header::ETAG).and_then(|v| v.to_str().ok()) else {
            return Conditional::Full;
        };
        let weak = |t: &str| t.trim().trim_start_matches("W/").to_owned();
        let mine = weak(etag);
        let hit = inm.trim() == "*" || inm.split(',').any(|t| weak(t) == mine);
        return if hit {
            Conditional::NotModified
        } else {
            Conditional::Full
        };
    }
    if let Some(ims) = request
        .get(header::IF_MODIFIED_SINCE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| httpdate::parse_http_date(v).ok())
        && let Some(lm) = stored
            .get(header::LAST_MODIFIED)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| httpdate::parse_http_date(v).ok())
        && lm <= ims
    {
        return Conditional::NotModified;
    }
    Conditional::Full
}

/// The `Cache-Control` directives that matter here.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Directives {
    pub no_store: bool,
    pub no_cache: bool,
    pub private: bool,
    pub public: bool,
    pub must_revalidate: bool,
    pub proxy_revalidate: bool,
    pub max_age: Option<u64>,
    pub s_maxage: Option<u64>,
    pub stale_while_revalidate: Option<u64>,
    pub stale_if_error: Option<u64>,
}

impl Directives {
    pub fn parse<'a>(values: impl Iterator<Item = &'a http::HeaderValue>) -> Self {
        let mut d = Self::default();
        for v in values {
            let Ok(v) = v.to_str() else { continue };
            for part in v.split(',') {
                let (name, arg) = match part.split_once('=') {
                    Some((n, a)) => (n.trim(), Some(a.trim().trim_matches('"'))),
                    None => (part.trim(), None),
                };
                // A malformed number counts as 0: the safe reading (RFC 9111 §1.2.2).
                let secs = || arg.map(|a| a.parse::<u64>().unwrap_or(0));
                match name.to_ascii_lowercase().as_str() {
                    "no-store" => d.no_store = true,
                    // `no-cache="field"` only limits fields; treated as plain no-cache, which is stricter.
                    "no-cache" => d.no_cache = true,
                    "private" => d.private = true,
                    "public" => d.public = true,
                    "must-revalidate" => d.must_revalidate = true,
                    "proxy-revalidate" => d.proxy_revalidate = true,
                    "max-age" => d.max_age = secs(),
                    "s-maxage" => d.s_maxage = secs(),
                    "stale-while-revalidate" => d.stale_while_revalidate = secs(),
                    "stale-if-error" => d.stale_if_error = secs(),
                    _ => {}
                }
            }
        }
        d
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a test reports failure by panicking
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (n, v) in pairs {
            h.append(HeaderName::from_bytes(n.as_bytes()).unwrap(), v.parse().unwrap());
        }
        h
    }

    fn rule() -> Rule {
        Rule::for_route_ttl(Duration::from_secs(60))
    }

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn storing_follows_the_http_rules_table() {
        let now = httpdate::parse_http_date("Wed, 02 Dec 2026 00:00:00 GMT").unwrap();
        let cookie_rule = Rule {
            cache_set_cookie: true,
            ..rule()
        };
        let user_rule = Rule {
            key: KeyParts {
                user_id: true,
                ..rule().key
            },
            ..rule()
        };
        let configured_stale = Rule {
            stale_while_revalidate: secs(5),
            stale_if_error: secs(30),
            ..rule()
        };
        let fresh = |n| {
            Ok(Lifetime {
                fresh: secs(n),
                stale_while_revalidate: Duration::ZERO,
                stale_if_error: Duration::ZERO,
            })
        };
        type Case<'a> = (
            &'a str,
            Method,
            Vec<(&'a str, &'a str)>,
            u16,
            Vec<(&'a str, &'a str)>,
            &'a Rule,
            Result<Lifetime, NotStored>,
        );
        let r = rule();
        let cases: Vec<Case<'_>> = vec![
            (
                "plain 200 takes the rule's ttl",
                Method::GET,
                vec![],
                200,
                vec![],
                &r,
                fresh(60),
            ),
            (
                "HEAD is never stored",
                Method::HEAD,
                vec![],
                200,
                vec![],
                &r,
                Err(NotStored::Method),
            ),
            (
                "POST is never stored",
                Method::POST,
                vec![],
                200,
                vec![],
                &r,
                Err(NotStored::Method),
            ),
            (
                "5xx is not stored",
                Method::GET,
                vec![],
                503,
                vec![],
                &r,
                Err(NotStored::Status),
            ),
            (
                "302 is not stored",
                Method::GET,
                vec![],
                302,
                vec![],
                &r,
                Err(NotStored::Status),
            ),
            ("404 is stored", Method::GET, vec![], 404, vec![], &r, fresh(60)),
            (
                "no-store",
                Method::GET,
                vec![],
                200,
                vec![("cache-control", "no-store")],
                &r,
                Err(NotStored::NoStore),
            ),
            (
                "private",
                Method::GET,
                vec![],
                200,
                vec![("cache-control", "private, max-age=60")],
                &r,
                Err(NotStored::Private),
            ),
            (
                "no-cache",
                Method::GET,
                vec![],
                200,
                vec![("cache-control", "no-cache")],
                &r,
                Err(NotStored::NoCache),
            ),
            (
                "max-age wins over the rule",
                Method::GET,
                vec![],
                200,
                vec![("cache-control", "max-age=10")],
                &r,
                fresh(10),
            ),
            (
                "s-maxage wins over max-age",
                Method::GET,
                vec![],
                200,
                vec![("cache-control", "max-age=10, s-maxage=20")],
                &r,
                fresh(20),
            ),
            (
                "max-age=0 is not stored",
                Method::GET,
                vec![],
                200,
                vec![("cache-control", "max-age=0")],
                &r,
                Err(NotStored::ZeroTtl),
            ),
            (
                "Expires relative to Date",
                Method::GET,
                vec![],
                200,
                vec![
                    ("date", "Wed, 02 Dec 2026 00:00:00 GMT"),
                    ("expires", "Wed, 02 Dec 2026 00:00:30 GMT"),
                ],
                &r,
                fresh(30),
            ),
            (
                "Expires in the past",
                Method::GET,
                vec![],
                200,
                vec![("expires", "Tue, 01 Dec 2026 00:00:00 GMT")],
                &r,
                Err(NotStored::ZeroTtl),
            ),
            (
                "an invalid Expires means expired",
                Method::GET,
                vec![],
                200,
                vec![("expires", "0")],
                &r,
                Err(NotStored::ZeroTtl),
            ),
            (
                "max-age wins over Expires",
                Method::GET,
                vec![],
                200,
                vec![
                    ("expires", "Tue, 01 Dec 2026 00:00:00 GMT"),
                    ("cache-control", "max-age=7"),
                ],
                &r,
                fresh(7),
            ),
            (
                "Set-Cookie is not stored",
                Method::GET,
                vec![],
                200,
                vec![("set-cookie", "a=b")],
                &r,
                Err(NotStored::SetCookie),
            ),
            (
                "Set-Cookie is stored when the rule says so",
                Method::GET,
                vec![],
                200,
                vec![("set-cookie", "a=b")],
                &cookie_rule,
                fresh(60),
            ),
            (
                "Vary: * is not stored",
                Method::GET,
                vec![],
                200,
                vec![("vary", "accept, *")],
                &r,
                Err(NotStored::VaryStar),
            ),
            (
                "Vary on a header is stored",
                Method::GET,
                vec![],
                200,
                vec![("vary", "accept-encoding")],
                &r,
                fresh(60),
            ),
            (
                "Authorization without public",
                Method::GET,
                vec![("authorization", "Bearer x")],
                200,
                vec![],
                &r,
                Err(NotStored::Authorization),
            ),
            (
                "Authorization with public",
                Method::GET,
                vec![("authorization", "Bearer x")],
                200,
                vec![("cache-control", "public, max-age=5")],
                &r,
                fresh(5),
            ),
            (
                "Authorization keyed by user",
                Method::GET,
                vec![("authorization", "Bearer x")],
                200,
                vec![],
                &user_rule,
                fresh(60),
            ),
            (
                "stale directives from the upstream",
                Method::GET,
                vec![],
                200,
                vec![(
                    "cache-control",
                    "max-age=1, stale-while-revalidate=9, stale-if-error=99",
                )],
                &r,
                Ok(Lifetime {
                    fresh: secs(1),
                    stale_while_revalidate: secs(9),
                    stale_if_error: secs(99),
                }),
            ),
            (
                "stale allowances from the rule",
                Method::GET,
                vec![],
                200,
                vec![("cache-control", "max-age=2")],
                &configured_stale,
                Ok(Lifetime {
                    fresh: secs(2),
                    stale_while_revalidate: secs(5),
                    stale_if_error: secs(30),
                }),
            ),
            (
                "must-revalidate forbids stale",
                Method::GET,
                vec![],
                200,
                vec![("cache-control", "max-age=2, must-revalidate, stale-if-error=50")],
                &configured_stale,
                fresh(2),
            ),
        ];
        for (name, method, req, status, resp, rule, want) in cases {
            let got = storable(
                &method,
                &headers(&req),
                StatusCode::from_u16(status).unwrap(),
                &headers(&resp),
                rule,
                now,
            );
            assert_eq!(got, want, "{name}");
        }
    }

    #[test]
    fn requests_follow_the_http_rules_table() {
        let no_cache_condition = Rule {
            conditions: vec![Condition {
                header: HeaderName::from_static("x-mode"),
                operator: CacheConditionOperator::NotContains,
                value: "live".into(),
            }],
            ..rule()
        };
        let r = rule();
        type RequestCase<'a> = (&'a str, Method, Vec<(&'a str, &'a str)>, &'a Rule, RequestMode);
        let cases: Vec<RequestCase<'_>> = vec![
            ("GET", Method::GET, vec![], &r, RequestMode::Lookup),
            ("HEAD", Method::HEAD, vec![], &r, RequestMode::Lookup),
            ("POST", Method::POST, vec![], &r, RequestMode::Bypass),
            ("PUT", Method::PUT, vec![], &r, RequestMode::Bypass),
            (
                "no-store",
                Method::GET,
                vec![("cache-control", "no-store")],
                &r,
                RequestMode::Bypass,
            ),
            (
                "no-cache",
                Method::GET,
                vec![("cache-control", "no-cache")],
                &r,
                RequestMode::Refresh,
            ),
            (
                "max-age=0",
                Method::GET,
                vec![("cache-control", "max-age=0")],
                &r,
                RequestMode::Refresh,
            ),
            (
                "Pragma",
                Method::GET,
                vec![("pragma", "no-cache")],
                &r,
                RequestMode::Refresh,
            ),
            (
                "condition holds with the header absent",
                Method::GET,
                vec![],
                &no_cache_condition,
                RequestMode::Lookup,
            ),
            (
                "condition fails",
                Method::GET,
                vec![("x-mode", "live-feed")],
                &no_cache_condition,
                RequestMode::Bypass,
            ),
        ];
        for (name, method, req, rule, want) in cases {
            assert_eq!(request_mode(&method, &headers(&req), rule), want, "{name}");
        }
    }

    #[test]
    fn conditional_requests_follow_the_http_rules_table() {
        let stored = headers(&[("etag", "\"v1\""), ("last-modified", "Tue, 01 Dec 2026 00:00:00 GMT")]);
        type ConditionalCase<'a> = (&'a str, Vec<(&'a str, &'a str)>, Conditional);
        let cases: Vec<ConditionalCase<'_>> = vec![
            ("no condition", vec![], Conditional::Full),
            (
                "matching etag",
                vec![("if-none-match", "\"v1\"")],
                Conditional::NotModified,
            ),
            (
                "weak match",
                vec![("if-none-match", "W/\"v1\"")],
                Conditional::NotModified,
            ),
            (
                "one of a list",
                vec![("if-none-match", "\"v0\", \"v1\"")],
                Conditional::NotModified,
            ),
            ("star", vec![("if-none-match", "*")], Conditional::NotModified),
            ("other etag", vec![("if-none-match", "\"v2\"")], Conditional::Full),
            (
                "modified since: not",
                vec![("if-modified-since", "Tue, 01 Dec 2026 00:00:00 GMT")],
                Conditional::NotModified,
            ),
            (
                "modified since: yes",
                vec![("if-modified-since", "Mon, 30 Nov 2026 00:00:00 GMT")],
                Conditional::Full,
            ),
            (
                "etag takes precedence",
                vec![
                    ("if-none-match", "\"v2\""),
                    ("if-modified-since", "Tue, 01 Dec 2026 00:00:00 GMT"),
                ],
                Conditional::Full,
            ),
        ];
        for (name, req, want) in cases {
            assert_eq!(conditional(&headers(&req), &stored), want, "{name}");
        }
    }
}
