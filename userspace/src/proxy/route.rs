//! Choosing the route for a request: by host, path pattern, method and conditions, in priority order.
//!
//! Routes are tried by ascending `priority`, then in file order. A route matches when its host, path and
//! method match and every `required` condition holds; among the matching routes of the best priority, the one
//! with the most matching optional conditions wins (file order breaks ties). Without configured routes every
//! request takes one implicit route to the first upstream. Pure: no I/O, no allocation on the match path.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, Method};
use regex::Regex;

use super::headers::{Overrides, Rewrite};
use crate::config::Config;
use crate::config::patterns::{HostPattern, PathPattern};
use crate::config::schema::{MatchOperator, PrefixRewrite, RouteConditionKind};
use crate::config::types::Cidr;

/// What a request looks like to the router.
pub struct RequestFacts<'a> {
    /// Lower-cased, without port.
    pub host: Option<&'a str>,
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub method: &'a Method,
    pub headers: &'a HeaderMap,
    pub client: IpAddr,
}

/// What happens to a request once its route is chosen.
#[derive(Debug)]
pub struct RouteSettings {
    pub name: String,
    pub upstream: Arc<str>,
    pub timeout: Duration,
    pub retry_attempts: u32,
    pub ssl_redirect: bool,
    pub request_headers: Rewrite,
    pub response_headers: Rewrite,
    /// Forwarding fields that `request_headers` takes over from this hop.
    pub forwarding_overrides: Overrides,
    pub strip_prefix: Option<String>,
    pub prefix_rewrite: Option<PrefixRewrite>,
}

enum Test {
    Equals(String),
    Contains(String),
    StartsWith(String),
    EndsWith(String),
    Regex(Regex),
    Present,
    InSubnet(Cidr),
}

impl Test {
    fn on(&self, value: Option<&str>) -> bool {
        match (self, value) {
            (Self::Present, v) => v.is_some(),
            (_, None) => false,
            (Self::Equals(x), Some(v)) => v == x,
            (Self::Contains(x), Some(v)) => v.contains(x.as_str()),
            (Self::StartsWith(x), Some(v)) => v.starts_with(x.as_str()),
            (Self::EndsWith(x), Some(v)) => v.ends_with(x.as_str()),
            (Self::Regex(r), Some(v)) => r.is_match(v),
            (Self::InSubnet(c), Some(v)) => v.parse::<IpAddr>().is_ok_and(|ip| c.contains(&ip)),
        }
    }
}

enum Subject {
    Header(http::HeaderName),
    Query(String),
    Method,
    Ip,
}

struct Condition {
    subject: Subject,
    test: Test,
}

impl Condition {
    fn holds(&self, r: &RequestFacts<'_>) -> bool {
        match &self.subject {
            Subject::Header(name) => {
                let values = r.headers.get_all(name);
                if matches!(self.test, Test::Present) {
                    return values.iter().next().is_some();
                }
                values.iter().any(|v| self.test.on(v.to_str().ok()))
            }
            Subject::Query(name) => {
                let mut found = r.query.into_iter().flat_map(|q| q.split('&')).filter_map(|kv| {
                    let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                    (k == name).then_some(v)
                });
                if matches!(self.test, Test::Present) {
                    return found.next().is_some();
                }
                found.any(|v| self.test.on(Some(v)))
            }
            Subject::Method => self.test.on(Some(r.method.as_str())),
            Subject::Ip => match &self.test {
                Test::InSubnet(c) => c.contains(&r.client),
                other => other.on(Some(&r.client.to_string())),
            },
        }
    }
}

struct Route {
    hosts: Vec<HostPattern>,
    path: PathPattern,
    methods: Vec<Method>,
    priority: i32,
    required: Vec<Condition>,
    optional: Vec<Condition>,
    settings: Arc<RouteSettings>,
}

impl Route {
    fn base_match(&self, r: &RequestFacts<'_>) -> bool {
        (self.hosts.is_empty() || r.host.is_some_and(|h| self.hosts.iter().any(|p| p.matches(h))))
            && self.path.matches(r.path)
            && (self.methods.is_empty() || self.methods.contains(r.method))
            && self.required.iter().all(|c| c.holds(r))
    }
}

pub struct RouteTable {
    /// Sorted by priority; stable, so file order is kept within a priority.
    routes: Vec<Route>,
}

impl RouteTable {
    /// Compiles the routes of a validated configuration (patterns and conditions were checked by
    /// `config::validate`; anything still unusable is skipped, never guessed at).
    pub fn build(config: &Config) -> Self {
        let mut routes: Vec<Route> = config
            .proxy
            .routes
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let (required, optional): (Vec<_>, Vec<_>) = r.conditions.iter().partition(|c| c.required);
                Route {
                    hosts: r.hosts.clone(),
                    path: r.pattern.clone(),
                    methods: r.methods.iter().map(|m| m.0.clone()).collect(),
                    priority: r.priority,
                    required: required.into_iter().filter_map(compile_condition).collect(),
                    optional: optional.into_iter().filter_map(compile_condition).collect(),
                    settings: Arc::new(RouteSettings {
                        name: r.name.clone().unwrap_or_else(|| format!("route{i}")),
                        upstream: Arc::from(r.upstream.as_str()),
                        timeout: Duration::from_secs(r.timeout),
                        retry_attempts: r.retry_attempts,
                        ssl_redirect: r.ssl_redirect,
                        request_headers: Rewrite::compile(&r.headers),
                        response_headers: Rewrite::compile(&r.response_headers),
                        forwarding_overrides: Rewrite::compile(&r.headers).overrides(),
                        strip_prefix: r.strip_prefix.clone(),
                        prefix_rewrite: r.prefix_rewrite.clone(),
                    }),
                }
            })
            .collect();
        if routes.is_empty()
            && let Some(first) = config.proxy.upstreams.first()
        {
            routes.push(Route {
                hosts: Vec::new(),
                path: PathPattern::Prefix("/".into()),
                methods: Vec::new(),
                priority: 0,
                required: Vec::new(),
                optional: Vec::new(),
                settings: Arc::new(RouteSettings {
                    name: "default".into(),
                    upstream: Arc::from(first.name.as_str()),
                    timeout: Duration::from_secs(30),
                    retry_attempts: 0,
                    ssl_redirect: false,
                    request_headers: Rewrite::default(),
                    response_headers: Rewrite::default(),
                    forwarding_overrides: Overrides::default(),
                    strip_prefix: None,
                    prefix_rewrite: None,
                }),
            });
        }
        routes.sort_by_key(|r| r.priority);
        Self { routes }
    }

    /// The route for a request, or `None` when no route matches.
    pub fn find(&self, r: &RequestFacts<'_>) -> Option<&Arc<RouteSettings>> {
        let mut best: Option<(&Route, usize)> = None;
        for route in &self.routes {
            if let Some((b, _)) = best
                && b.priority != route.priority
            {
                break;
            }
            if !route.base_match(r) {
                continue;
            }
            let score = route.optional.iter().filter(|c| c.holds(r)).count();
            if best.is_none_or(|(_, s)| score > s) {
                best = Some((route, score));
            }
        }
        best.map(|(route, _)| &route.settings)
    }
}

fn compile_condition(c: &crate::config::schema::RouteCondition) -> Option<Condition> {
    let subject = match c.kind {
        RouteConditionKind::Header => {
            Subject::Header(http::HeaderName::from_bytes(c.name.as_deref()?.as_bytes()).ok()?)
        }
        RouteConditionKind::Query => Subject::Query(c.name.clone()?),
        RouteConditionKind::Method => Subject::Method,
        RouteConditionKind::Ip => Subject::Ip,
    };
    let v = c.value.clone();
    let test = match c.operator {
        MatchOperator::Equals => Test::Equals(v),
        MatchOperator::Contains => Test::Contains(v),
        MatchOperator::StartsWith => Test::StartsWith(v),
        MatchOperator::EndsWith => Test::EndsWith(v),
        MatchOperator::Regex => Test::Regex(Regex::new(&v).ok()?),
        MatchOperator::Present => Test::Present,
        MatchOperator::InSubnet => Test::InSubnet(v.parse().ok()?),
    };
    // `equals` on an IP condition means "this address or network".
    let test = match (c.kind, test) {
        (RouteConditionKind::Ip, Test::Equals(v)) => Test::InSubnet(v.parse().ok()?),
        (_, t) => t,
    };
    Some(Condition { subject, test })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(yaml: &str) -> RouteTable {
        let text = format!(
            "proxy:\n  upstreams:\n    - {{name: a, servers: [{{host: h, port: 1}}]}}\n    - {{name: b, servers: [{{host: h, port: 2}}]}}\n    - {{name: c, servers: [{{host: h, port: 3}}]}}\n  routes:\n{yaml}"
        );
        let config = crate::config::load_str(&text, "test", Vec::new()).expect("valid config");
        RouteTable::build(&config)
    }

    fn route<'a>(
        t: &'a RouteTable,
        host: Option<&str>,
        path: &str,
        method: &str,
        headers: &[(&str, &str)],
        query: Option<&str>,
        ip: &str,
    ) -> Option<&'a str> {
        let mut h = HeaderMap::new();
        for (k, v) in headers {
            h.append(
                http::HeaderName::from_bytes(k.as_bytes()).expect("name"),
                v.parse().expect("value"),
            );
        }
        let method: Method = method.parse().expect("method");
        let facts = RequestFacts {
            host,
            path,
            query,
            method: &method,
            headers: &h,
            client: ip.parse().expect("ip"),
        };
        t.find(&facts).map(|s| &*s.upstream)
    }

    #[test]
    fn host_exact_and_wildcard_then_path_kinds() {
        let t = table(
            "    - {hosts: [api.example.com], pattern: /v1/*, upstream: a}\n    - {hosts: [\"*.example.com\"], upstream: b}\n    - {pattern: \"~^/static/.+\\\\.css$\", upstream: c}\n",
        );
        assert_eq!(
            route(&t, Some("api.example.com"), "/v1/x", "GET", &[], None, "192.0.2.1"),
            Some("a")
        );
        assert_eq!(
            route(&t, Some("api.example.com"), "/v2/x", "GET", &[], None, "192.0.2.1"),
            Some("b")
        );
        assert_eq!(
            route(&t, Some("www.example.com"), "/", "GET", &[], None, "192.0.2.1"),
            Some("b")
        );
        assert_eq!(
            route(&t, Some("other.org"), "/static/a.css", "GET", &[], None, "192.0.2.1"),
            Some("c")
        );
        assert_eq!(route(&t, Some("other.org"), "/", "GET", &[], None, "192.0.2.1"), None);
    }

    #[test]
    fn priority_beats_file_order_and_methods_filter() {
        let t = table(
            "    - {pattern: /*, upstream: a, priority: 50}\n    - {pattern: /admin/*, upstream: b, priority: 10, methods: [post]}\n",
        );
        assert_eq!(route(&t, None, "/admin/x", "POST", &[], None, "192.0.2.1"), Some("b"));
        assert_eq!(route(&t, None, "/admin/x", "GET", &[], None, "192.0.2.1"), Some("a"));
    }

    #[test]
    fn required_conditions_must_hold_and_optional_ones_break_ties() {
        let t = table(concat!(
            "    - pattern: /*\n      upstream: a\n      conditions:\n        - {type: ip, operator: in_subnet, value: 10.0.0.0/8}\n",
            "    - pattern: /*\n      upstream: b\n      conditions:\n        - {type: header, name: x-beta, operator: equals, value: \"1\", required: false}\n",
            "    - pattern: /*\n      upstream: c\n      conditions:\n        - {type: query, name: v, operator: regex, value: \"^[0-9]+$\", required: false}\n        - {type: header, name: authorization, operator: present, required: false}\n",
        ));
        assert_eq!(route(&t, None, "/", "GET", &[], None, "10.1.2.3"), Some("a"));
        assert_eq!(
            route(&t, None, "/", "GET", &[], None, "192.0.2.1"),
            Some("b"),
            "no optional matches: file order"
        );
        assert_eq!(
            route(&t, None, "/", "GET", &[("x-beta", "1")], None, "192.0.2.1"),
            Some("b")
        );
        assert_eq!(
            route(
                &t,
                None,
                "/",
                "GET",
                &[("authorization", "x")],
                Some("v=12"),
                "192.0.2.1"
            ),
            Some("c")
        );
        assert_eq!(
            route(
                &t,
                None,
                "/",
                "GET",
                &[("x-beta", "1"), ("authorization", "x")],
                Some("v=1"),
                "192.0.2.1"
            ),
            Some("c")
        );
    }

    #[test]
    fn without_routes_everything_goes_to_the_first_upstream() {
        let config = crate::config::load_str(
            "proxy:\n  upstreams:\n    - {name: only, servers: [{host: h, port: 1}]}\n",
            "t",
            Vec::new(),
        )
        .expect("valid");
        let t = RouteTable::build(&config);
        assert_eq!(
            route(&t, Some("x.org"), "/any", "DELETE", &[], None, "192.0.2.1"),
            Some("only")
        );
    }
}
