//! L7 rate limits (`waf.rate_limiting`): a global limit, a per-client limit and per-endpoint limits, each
//! over up to three windows (second, minute, hour), with whitelisted and blacklisted client prefixes.
//! Compiled once per configuration generation; [`RateLimiter::check`] is what a request costs: a prefix
//! scan of the (short) white and black lists, and one map operation per window that applies.
//!
//! Counters live in the local sharded [`store::Store`], or in Redis when `redis_url` is set (with the local
//! store as the fallback while Redis is down). Counters start afresh when a reload builds a new generation.

pub mod algorithm;
mod remote;
pub mod store;
mod user;

use std::hash::{Hash, Hasher};
use std::net::IpAddr;
use std::time::Instant;

use http::HeaderMap;

use crate::config::patterns::PathPattern;
use crate::config::schema::{EndpointLimit, RateAlgorithm, RateLimit, RateLimitingConfig};
use crate::config::types::Cidr;
use algorithm::{Admission, Window};
use remote::Remote;
use store::{Key, Store};
pub use user::UserKeyReader;

const SECOND_NS: u64 = 1_000_000_000;

#[derive(Debug, thiserror::Error)]
pub enum RateLimitError {
    #[error("{at}: a rate of 0 requests is not a limit (remove the key to mean none)")]
    ZeroRate { at: String },
    #[error("{at}: a limit needs requests_per_second, requests_per_minute or requests_per_hour")]
    NoWindow { at: String },
    #[error("{at}: burst 0 would refuse every request")]
    ZeroBurst { at: String },
    #[error("waf.rate_limiting.redis_url `{url}`: {error}")]
    Redis { url: String, error: String },
}

/// What the limits decided for one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// Over a limit: answer 429 with these header values.
    Limited(Refusal),
    /// The client is on `blacklist_ips`.
    Blacklisted,
}

/// A refusal, carrying what `Retry-After` and the `RateLimit-*` headers report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// Which limit refused: `global`, `per_ip` or `endpoint`.
    pub scope: &'static str,
    /// Requests the refusing window allows.
    pub limit: u64,
    /// Seconds until the quota is whole again (rounded up).
    pub reset_secs: u64,
    /// Seconds until a request would be allowed (rounded up, at least 1).
    pub retry_after_secs: u64,
}

/// Whose counter a limit uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scope {
    All,
    Client,
    User,
}

/// One configured limit: its windows (ids into `RateLimiter::windows`) and how it keys clients.
struct Limit {
    name: &'static str,
    first_window: u32,
    windows: u32,
    scope: Scope,
}

pub struct RateLimiter {
    windows: Vec<Window>,
    global: Option<Limit>,
    per_ip: Option<Limit>,
    endpoints: Vec<(PathPattern, Limit)>,
    whitelist: Vec<Cidr>,
    blacklist: Vec<Cidr>,
    store: Store,
    remote: Option<Remote>,
    user_key: UserKeyReader,
    origin: Instant,
}

impl RateLimiter {
    /// Compiles the configuration; `None` when nothing is limited or listed.
    pub fn build(c: &RateLimitingConfig) -> Result<Option<Self>, RateLimitError> {
        let nothing = c.global_limit.is_none()
            && c.per_ip_limit.is_none()
            && c.per_endpoint_limits.is_empty()
            && c.blacklist_ips.is_empty();
        if nothing {
            return Ok(None);
        }
        let mut windows = Vec::new();
        let global = c
            .global_limit
            .as_ref()
            .map(|l| {
                compile(
                    &mut windows,
                    "global",
                    Scope::All,
                    &Rates::of(l),
                    "waf.rate_limiting.global_limit",
                )
            })
            .transpose()?;
        let per_ip = c
            .per_ip_limit
            .as_ref()
            .map(|l| {
                compile(
                    &mut windows,
                    "per_ip",
                    Scope::Client,
                    &Rates::of(l),
                    "waf.rate_limiting.per_ip_limit",
                )
            })
            .transpose()?;
        let endpoints = c
            .per_endpoint_limits
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let scope = match (e.per_user, e.per_ip) {
                    (true, _) => Scope::User,
                    (false, true) => Scope::Client,
                    (false, false) => Scope::All,
                };
                let at = format!("waf.rate_limiting.per_endpoint_limits[{i}]");
                Ok((
                    e.path.clone(),
                    compile(&mut windows, "endpoint", scope, &Rates::of_endpoint(e), &at)?,
                ))
            })
            .collect::<Result<Vec<_>, RateLimitError>>()?;
        let remote = c
            .redis_url
            .as_deref()
            .map(|url| {
                Remote::new(url).map_err(|e| RateLimitError::Redis {
                    url: url.to_owned(),
                    error: e.to_string(),
                })
            })
            .transpose()?;
        Ok(Some(Self {
            windows,
            global,
            per_ip,
            endpoints,
            whitelist: c.whitelist_ips.clone(),
            blacklist: c.blacklist_ips.clone(),
            store: Store::new(c.max_tracked_keys),
            remote,
            user_key: UserKeyReader::new(&c.user_key),
            origin: Instant::now(),
        }))
    }

    fn now_ns(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// Whether `client` is exempt from rate limits.
    pub fn is_whitelisted(&self, client: IpAddr) -> bool {
        self.whitelist.iter().any(|c| c.contains(&client))
    }

    /// Counts the request against every limit that applies, in order global → per client → endpoints,
    /// and stops at the first refusal (a refused request is not counted by the limits after it).
    pub async fn check(&self, client: IpAddr, path: &str, headers: &HeaderMap) -> Decision {
        if self.is_whitelisted(client) {
            return Decision::Allow;
        }
        if self.blacklist.iter().any(|c| c.contains(&client)) {
            return Decision::Blacklisted;
        }
        let ip_key = ip_bits(client);
        if let Some(l) = &self.global
            && let Some(r) = self.apply(l, 0).await
        {
            return Decision::Limited(r);
        }
        if let Some(l) = &self.per_ip
            && let Some(r) = self.apply(l, ip_key).await
        {
            return Decision::Limited(r);
        }
        for (pattern, l) in &self.endpoints {
            if !pattern.matches(path) {
                continue;
            }
            let key = match l.scope {
                Scope::All => 0,
                Scope::Client => ip_key,
                // A request without the user's key is counted per client, so anonymous floods stay limited.
                Scope::User => self.user_key.read(headers).map_or(ip_key, |u| user_bits(&u)),
            };
            if let Some(r) = self.apply(l, key).await {
                return Decision::Limited(r);
            }
        }
        Decision::Allow
    }

    /// Admits against each window of `limit`; the first refusal is returned.
    async fn apply(&self, limit: &Limit, client: u128) -> Option<Refusal> {
        for id in limit.first_window..limit.first_window + limit.windows {
            let Some(window) = self.windows.get(usize::try_from(id).unwrap_or(usize::MAX)) else {
                continue;
            };
            let admission = match &self.remote {
                Some(remote) => {
                    let key = format!(
                        "rampart:rl:{id}:{}:{}:{}:{client:032x}",
                        window.period_ns / SECOND_NS,
                        window.limit,
                        window.capacity
                    );
                    match remote.admit(&key, window).await {
                        Some(a) => a,
                        None => self.local(id, client, window),
                    }
                }
                None => self.local(id, client, window),
            };
            if !admission.allowed {
                return Some(Refusal {
                    scope: limit.name,
                    limit: window.limit,
                    reset_secs: admission.reset_ns.div_ceil(SECOND_NS),
                    retry_after_secs: admission.retry_after_ns.div_ceil(SECOND_NS).max(1),
                });
            }
        }
        None
    }

    fn local(&self, id: u32, client: u128, window: &Window) -> Admission {
        self.store
            .admit(Key { window: id, client }, window, self.now_ns(), &self.windows)
    }

    /// Forgets idle counters; returns how many went.
    pub fn sweep(&self) -> usize {
        self.store.sweep(self.now_ns(), &self.windows)
    }

    /// Counters held in memory.
    pub fn tracked(&self) -> usize {
        self.store.len()
    }
}

/// A client address as 128 bits (IPv4 as its IPv4-mapped IPv6 form).
fn ip_bits(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(v4.to_ipv6_mapped()),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

/// A user key as 128 bits in a range no IPv4-mapped address uses. The hash is unkeyed so every node (and
/// Redis) agrees on it; the map that stores the result uses a random key, so this cannot be used to flood
/// one shard.
fn user_bits(user: &[u8]) -> u128 {
    let mut h = std::hash::DefaultHasher::new();
    user.hash(&mut h);
    (0xfeed_u128 << 112) | u128::from(h.finish())
}

/// The windows of one limit as configured.
struct Rates {
    per_second: Option<u64>,
    per_minute: Option<u64>,
    per_hour: Option<u64>,
    burst: Option<u64>,
    algorithm: RateAlgorithm,
}

impl Rates {
    fn of(l: &RateLimit) -> Self {
        Self {
            per_second: l.requests_per_second,
            per_minute: l.requests_per_minute,
            per_hour: l.requests_per_hour,
            burst: l.burst,
            algorithm: l.algorithm,
        }
    }

    fn of_endpoint(e: &EndpointLimit) -> Self {
        Self {
            per_second: e.requests_per_second,
            per_minute: e.requests_per_minute,
            per_hour: e.requests_per_hour,
            burst: e.burst,
            algorithm: e.algorithm,
        }
    }
}

/// The windows of one limit on its own (a custom rule's `rate_limit`); `at` names it in errors.
pub fn compile_windows(l: &RateLimit, at: &str) -> Result<Vec<Window>, RateLimitError> {
    let mut windows = Vec::new();
    compile(&mut windows, "rule", Scope::Client, &Rates::of(l), at)?;
    Ok(windows)
}

fn compile(
    windows: &mut Vec<Window>,
    name: &'static str,
    scope: Scope,
    r: &Rates,
    at: &str,
) -> Result<Limit, RateLimitError> {
    if r.burst == Some(0) {
        return Err(RateLimitError::ZeroBurst {
            at: format!("{at}.burst"),
        });
    }
    let first = u32::try_from(windows.len()).unwrap_or(u32::MAX);
    let mut shortest = true;
    for (rate, period_s, key) in [
        (r.per_second, 1, "requests_per_second"),
        (r.per_minute, 60, "requests_per_minute"),
        (r.per_hour, 3600, "requests_per_hour"),
    ] {
        let Some(limit) = rate else { continue };
        if limit == 0 {
            return Err(RateLimitError::ZeroRate {
                at: format!("{at}.{key}"),
            });
        }
        let capacity = if shortest { r.burst.unwrap_or(limit) } else { limit };
        shortest = false;
        windows.push(Window {
            algorithm: r.algorithm,
            period_ns: period_s * SECOND_NS,
            limit,
            capacity,
        });
    }
    let count = u32::try_from(windows.len()).unwrap_or(u32::MAX) - first;
    if count == 0 {
        return Err(RateLimitError::NoWindow { at: at.to_owned() });
    }
    Ok(Limit {
        name,
        first_window: first,
        windows: count,
        scope,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a test reports failure by panicking
mod tests {
    use super::*;

    fn limiter(yaml: &str) -> RateLimiter {
        let c: RateLimitingConfig = serde_saphyr::from_str(yaml).unwrap();
        RateLimiter::build(&c).unwrap().unwrap()
    }

    fn run(l: &RateLimiter, ip: &str, path: &str, headers: &HeaderMap) -> Decision {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        rt.block_on(l.check(ip.parse().unwrap(), path, headers))
    }

    #[test]
    fn per_ip_limits_count_each_client_separately_and_whitelist_and_blacklist_apply() {
        let l = limiter(
            "per_ip_limit: {requests_per_minute: 3}\nwhitelist_ips: [10.0.0.0/8]\nblacklist_ips: [203.0.113.0/24]\n",
        );
        let h = HeaderMap::new();
        for _ in 0..3 {
            assert_eq!(run(&l, "192.0.2.1", "/", &h), Decision::Allow);
        }
        let Decision::Limited(r) = run(&l, "192.0.2.1", "/", &h) else {
            panic!("the 4th must be refused")
        };
        assert_eq!((r.scope, r.limit), ("per_ip", 3));
        assert!((19..=20).contains(&r.retry_after_secs), "one token per 20 s: {r:?}");
        assert_eq!(
            run(&l, "192.0.2.2", "/", &h),
            Decision::Allow,
            "another client has its own quota"
        );
        for _ in 0..10 {
            assert_eq!(run(&l, "10.1.2.3", "/", &h), Decision::Allow, "whitelisted");
        }
        assert_eq!(run(&l, "203.0.113.9", "/", &h), Decision::Blacklisted);
    }

    #[test]
    fn every_window_of_a_limit_must_fit() {
        let l = limiter("per_ip_limit: {requests_per_second: 100, requests_per_minute: 5}\n");
        let h = HeaderMap::new();
        let allowed = (0..20)
            .filter(|_| run(&l, "192.0.2.1", "/", &h) == Decision::Allow)
            .count();
        assert_eq!(allowed, 5, "the minute window binds before the second window");
    }

    #[test]
    fn endpoint_limits_match_their_paths_and_key_per_user_header() {
        let l = limiter(
            "user_key: {header: x-api-key}\nper_endpoint_limits:\n  - {path: \"/api/*\", requests_per_minute: 2, per_user: true}\n",
        );
        let mut alice = HeaderMap::new();
        alice.insert("x-api-key", "alice".parse().unwrap());
        let mut bob = HeaderMap::new();
        bob.insert("x-api-key", "bob".parse().unwrap());
        assert_eq!(run(&l, "192.0.2.1", "/api/x", &alice), Decision::Allow);
        assert_eq!(run(&l, "192.0.2.2", "/api/y", &alice), Decision::Allow);
        assert!(
            matches!(run(&l, "192.0.2.3", "/api/z", &alice), Decision::Limited(_)),
            "alice's quota is shared across her addresses"
        );
        assert_eq!(run(&l, "192.0.2.1", "/api/x", &bob), Decision::Allow, "bob has his own");
        assert_eq!(
            run(&l, "192.0.2.3", "/other", &alice),
            Decision::Allow,
            "other paths are not limited"
        );
    }

    #[test]
    fn bad_limits_are_refused_naming_the_key() {
        let c: RateLimitingConfig = serde_saphyr::from_str("per_ip_limit: {requests_per_second: 0}\n").unwrap();
        let e = RateLimiter::build(&c).err().unwrap().to_string();
        assert!(e.contains("waf.rate_limiting.per_ip_limit.requests_per_second"), "{e}");
        let c: RateLimitingConfig = serde_saphyr::from_str("global_limit: {burst: 5}\n").unwrap();
        let e = RateLimiter::build(&c).err().unwrap().to_string();
        assert!(e.contains("waf.rate_limiting.global_limit"), "{e}");
        assert!(RateLimiter::build(&RateLimitingConfig::default()).unwrap().is_none());
    }
}
