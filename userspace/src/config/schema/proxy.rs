//! `proxy`: upstream pools, routes and the response cache.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::config::patterns::{HostPattern, HttpMethod, PathPattern};
use crate::config::types::{ByteSize, Port};

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProxyConfig {
    /// Named pools of servers. At least one is required; without `routes`, every request goes to the first.
    pub upstreams: Vec<UpstreamConfig>,
    /// Routes, matched by host and path. Default none.
    pub routes: Vec<RouteConfig>,
    pub caching: CachingConfig,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamConfig {
    /// Unique name that routes refer to.
    pub name: String,
    /// How a server is picked: `round_robin`, `least_connections`, `ip_hash`, `weighted_random` or
    /// `power_of_two_choices`. Default `round_robin`.
    #[serde(default)]
    pub algorithm: Algorithm,
    /// Hash for `ip_hash`. Default `crc32`.
    #[serde(default)]
    pub hash_method: HashMethod,
    /// At least one server.
    pub servers: Vec<ServerEntry>,
    #[serde(default)]
    pub health_check: HealthCheckConfig,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Algorithm {
    /// Smooth weighted round robin (nginx's).
    #[default]
    RoundRobin,
    /// Fewest requests in flight relative to weight; respects `max_connections`.
    LeastConnections,
    /// Consistent hashing of the client address: removing a server moves only its clients.
    IpHash,
    WeightedRandom,
    /// Two random servers, the one with the lower latency × load wins.
    PowerOfTwoChoices,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HashMethod {
    #[default]
    Crc32,
    Md5,
    Sha1,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerEntry {
    /// Host name or address.
    pub host: String,
    pub port: Port,
    /// Relative share for weighted algorithms. Default 1.
    #[serde(default = "default_weight")]
    pub weight: u32,
    /// Connections to this server at once; 0 means no limit. Default 0.
    #[serde(default)]
    pub max_connections: u32,
    /// Failures within `fail_timeout` that mark the server down. Default 3.
    #[serde(default = "default_max_fails")]
    pub max_fails: u32,
    /// Seconds of the failure window, and how long a failed server stays out. Default 10.
    #[serde(default = "default_fail_timeout")]
    pub fail_timeout: u64,
}

fn default_weight() -> u32 {
    1
}

fn default_max_fails() -> u32 {
    3
}

fn default_fail_timeout() -> u64 {
    10
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HealthCheckConfig {
    /// Probe servers actively. Default false (passive checks always run).
    pub enabled: bool,
    /// `http`, `tcp` or `custom` (run `script`). Default `http`.
    #[serde(rename = "type")]
    pub kind: HealthCheckKind,
    /// Path probed by `http` checks. Default `/health`.
    pub path: String,
    /// Method of `http` checks. Default `GET`.
    pub method: String,
    /// Seconds between probes. Default 30.
    pub interval: u64,
    /// Seconds a probe may take. Default 5.
    pub timeout: u64,
    /// Seconds to establish the connection, for `tcp`; default: `timeout`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connect_timeout: Option<u64>,
    /// Consecutive successes that mark a server healthy. Default 2.
    pub healthy_threshold: u32,
    /// Consecutive failures that mark a server unhealthy. Default 3.
    pub unhealthy_threshold: u32,
    /// Statuses that count as healthy. Default `[200]`.
    pub expected_status: Vec<u16>,
    /// Substring the body must contain. Default none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected_body: Option<String>,
    /// Headers sent with `http` probes. Default none.
    pub headers: BTreeMap<String, String>,
    /// Program run by `custom` checks; exit status 0 means healthy. Default none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub script: Option<PathBuf>,
}

impl Default for HealthCheckConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            kind: HealthCheckKind::Http,
            path: "/health".into(),
            method: "GET".into(),
            interval: 30,
            timeout: 5,
            connect_timeout: None,
            healthy_threshold: 2,
            unhealthy_threshold: 3,
            expected_status: vec![200],
            expected_body: None,
            headers: BTreeMap::new(),
            script: None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthCheckKind {
    Http,
    Tcp,
    Custom,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// Name for logs and metrics. Default: `route<N>` by position.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Host names this route serves (`*.example.com` matches any subdomain); empty matches any host.
    #[serde(default)]
    pub hosts: Vec<HostPattern>,
    /// Path pattern: exact (`/login`), prefix (`/api/*`), glob (`/static/*.css`, `*` within a segment, `**`
    /// across segments) or regex (`~^/v[0-9]+/`). Default `/*` (everything).
    #[serde(default = "default_pattern")]
    pub pattern: PathPattern,
    /// Methods this route serves; empty means all. Default empty.
    #[serde(default)]
    pub methods: Vec<HttpMethod>,
    /// Routes are tried by ascending priority, then in file order. Default 100.
    #[serde(default = "default_route_priority")]
    pub priority: i32,
    /// Name of the upstream that serves this route.
    pub upstream: String,
    /// Seconds to wait for the upstream's response. Default 30.
    #[serde(default = "default_route_timeout")]
    pub timeout: u64,
    /// Extra attempts for idempotent requests on connection failure. Default 0.
    #[serde(default)]
    pub retry_attempts: u32,
    /// Cache responses for this many seconds. Default: not cached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_ttl: Option<u64>,
    /// Redirect plain HTTP to HTTPS. Default false.
    #[serde(default)]
    pub ssl_redirect: bool,
    /// Changes to the request sent upstream.
    #[serde(default)]
    pub headers: HeaderRewrite,
    /// Changes to the response sent to the client.
    #[serde(default)]
    pub response_headers: HeaderRewrite,
    /// Remove this prefix from the path before forwarding (`/api` turns `/api/users` into `/users`). Default none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strip_prefix: Option<String>,
    /// Replace a leading path prefix before forwarding. Default none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix_rewrite: Option<PrefixRewrite>,
    /// Further conditions. All `required: true` ones must hold; among routes of equal priority, the one with
    /// more matching `required: false` conditions wins. Default none.
    #[serde(default)]
    pub conditions: Vec<RouteCondition>,
}

fn default_pattern() -> PathPattern {
    PathPattern::Prefix("/".into())
}

fn default_route_priority() -> i32 {
    100
}

/// `from` → `to` at the start of the path.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrefixRewrite {
    pub from: String,
    pub to: String,
}

fn default_route_timeout() -> u64 {
    30
}

/// Header changes: `set` replaces, `add` appends, `remove` deletes.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HeaderRewrite {
    /// Appended (existing values kept).
    pub add: BTreeMap<String, String>,
    /// Replacing any existing value.
    pub set: BTreeMap<String, String>,
    /// Removed.
    pub remove: Vec<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteCondition {
    #[serde(rename = "type")]
    pub kind: RouteConditionKind,
    /// Header or query parameter name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Default `equals`.
    #[serde(default)]
    pub operator: MatchOperator,
    #[serde(default)]
    pub value: String,
    /// When false the condition only raises the route's priority. Default true.
    #[serde(default = "default_required")]
    pub required: bool,
}

/// How a route condition compares the request's value with `value`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchOperator {
    #[default]
    Equals,
    Contains,
    StartsWith,
    EndsWith,
    Regex,
    /// The header or parameter is present, whatever its value.
    Present,
    InSubnet,
}

fn default_required() -> bool {
    true
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RouteConditionKind {
    Header,
    Query,
    Method,
    /// The client address; `value` is a CIDR (operator `in_subnet` or `equals`).
    Ip,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CachingConfig {
    /// Cache responses. Default false.
    pub enabled: bool,
    pub memory_cache: MemoryCacheConfig,
    pub redis_cache: RedisCacheConfig,
    /// Which responses are cached, and for how long. Default none.
    #[serde(alias = "rules")]
    pub cache_rules: Vec<CacheRule>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MemoryCacheConfig {
    /// Default true.
    pub enabled: bool,
    /// Memory for cached bodies. Default 256MB.
    pub max_size: ByteSize,
    /// Entries at most. Default 100000.
    pub max_entries: u64,
    /// Default `lru`.
    pub eviction_policy: EvictionPolicy,
    /// Compress stored bodies. Default false.
    pub compression: bool,
    /// Compress only bodies at least this large. Default 1024.
    pub compression_threshold: u64,
    /// Largest body stored; larger responses stream through uncached. Default 1MB.
    pub max_object_size: ByteSize,
}

impl Default for MemoryCacheConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            max_size: ByteSize::mib(256),
            max_entries: 100_000,
            eviction_policy: EvictionPolicy::Lru,
            compression: false,
            compression_threshold: 1024,
            max_object_size: ByteSize::mib(1),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EvictionPolicy {
    Lru,
    Lfu,
    Ttl,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedisCacheConfig {
    /// Default false.
    pub enabled: bool,
    /// Default `127.0.0.1`.
    pub host: String,
    /// Default 6379.
    pub port: Port,
    /// Default 0.
    pub db: u32,
    /// Default none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// Connections kept open. Default 10.
    pub pool_size: u32,
    /// Seconds per operation before falling back to the memory cache. Default 5.
    pub timeout: u64,
    /// Talk to a Redis Cluster through `cluster_nodes` instead of one server at `host`/`port`. Default false.
    pub cluster_mode: bool,
    /// `host:port` of cluster nodes (`[v6]:port` for IPv6), needed in cluster mode: the first that answers
    /// tells where the rest of the cluster is. Default none.
    pub cluster_nodes: Vec<String>,
}

impl RedisCacheConfig {
    /// Splits a `cluster_nodes` entry into host and port: `host:port` or `[v6]:port`, port 1-65535.
    pub fn cluster_node(entry: &str) -> Result<(String, u16), String> {
        let bad = || format!("`{entry}` is not host:port");
        let (host, port) = entry.trim().rsplit_once(':').ok_or_else(bad)?;
        let port = port.parse::<u16>().ok().filter(|p| *p != 0).ok_or_else(bad)?;
        let host = match host.strip_prefix('[') {
            Some(v6) => v6
                .strip_suffix(']')
                .filter(|h| h.parse::<std::net::Ipv6Addr>().is_ok())
                .ok_or_else(bad)?,
            // An unbracketed colon would make the port ambiguous.
            None if host.contains(':') => return Err(bad()),
            None => host,
        };
        if host.is_empty() || host.chars().any(|c| c.is_whitespace() || c == '/' || c == '@') {
            return Err(bad());
        }
        Ok((host.to_owned(), port))
    }
}

impl Default for RedisCacheConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            host: "127.0.0.1".into(),
            port: Port::new_const(6379),
            db: 0,
            password: None,
            pool_size: 10,
            timeout: 5,
            cluster_mode: false,
            cluster_nodes: Vec::new(),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheRule {
    /// Path pattern, as in routes.
    pub path: String,
    /// Seconds to keep a response.
    pub ttl: u64,
    /// Request headers that vary the cache key. Default none.
    #[serde(default)]
    pub vary_headers: Vec<String>,
    /// Extra cache-key parts: `path`, `query`, `host`, `method`, `user_id`. Default `[path, query]`.
    #[serde(default = "default_cache_key")]
    pub cache_key_include: Vec<String>,
    /// Header conditions for caching. Default none.
    #[serde(default)]
    pub conditions: Vec<CacheCondition>,
    /// Store responses that carry `Set-Cookie` (the cookie is stored and replayed). Default false.
    #[serde(default)]
    pub cache_set_cookie: bool,
    /// Seconds a stale response may be served while it is refreshed in the background, when the upstream's
    /// `Cache-Control` names none. Default 0.
    #[serde(default)]
    pub stale_while_revalidate: u64,
    /// Seconds a stale response may be served when the upstream fails, when the upstream's `Cache-Control`
    /// names none. Default 0.
    #[serde(default)]
    pub stale_if_error: u64,
}

fn default_cache_key() -> Vec<String> {
    vec!["path".into(), "query".into()]
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheCondition {
    /// Request header tested.
    pub header: String,
    /// Default `equals`.
    #[serde(default)]
    pub operator: CacheConditionOperator,
    #[serde(default)]
    pub value: String,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CacheConditionOperator {
    #[default]
    Equals,
    Contains,
    NotContains,
}
