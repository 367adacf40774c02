//! The response cache: a memory level (moka: bounded in bytes and entries, TinyLFU or LRU, per-entry expiry)
//! in front of an optional shared Redis level, the rules that say what is cached under which key, request
//! coalescing (concurrent misses for one key make one upstream request), purge by pattern and the figures.
//!
//! HTTP semantics are decided in [`policy`]; the request path that uses all this is `proxy::cache_phase`.
//! The stores outlive configuration generations (a reload keeps what is cached); the rules are per generation.

pub mod entry;
pub mod l2;
pub mod policy;

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http::HeaderMap;
use moka::sync::Cache;
use prometheus::{IntCounter, IntCounterVec, Opts, Registry};
use sha2::Digest as _;
use tokio::sync::watch;

use crate::config::Config;
use crate::config::schema::{CachingConfig, EvictionPolicy};
use crate::policy::ratelimit::UserKeyReader;
use entry::{Entry, unix_ms};
use l2::{L2, L2Error};
use policy::{RequestMode, Rule};

/// Longest purge pattern accepted.
pub const MAX_PATTERN: usize = 1024;
/// Longest cache key; a request whose key would be longer is not cached.
const MAX_KEY: usize = 4096;
/// Misses being fetched at once that others may wait for; past this, misses are not coalesced.
const MAX_FLIGHTS: usize = 65_536;

/// The rules of one configuration generation.
pub struct CacheRules {
    /// `proxy.caching.cache_rules`, in file order (the first whose path matches applies); empty when
    /// `proxy.caching.enabled` is false.
    rules: Vec<Rule>,
    /// Routes' `cache_ttl`, by route name: used when no rule matched.
    by_route: HashMap<String, Rule>,
    user: UserKeyReader,
}

/// What the cache does with one request.
pub struct Plan<'a> {
    pub rule: &'a Rule,
    pub key: String,
    pub mode: RequestMode,
}

impl CacheRules {
    pub fn build(config: &Config) -> Self {
        let c = &config.proxy.caching;
        let rules = if c.enabled {
            c.cache_rules.iter().filter_map(Rule::compile).collect()
        } else {
            Vec::new()
        };
        let by_route = config
            .proxy
            .routes
            .iter()
            .enumerate()
            .filter_map(|(i, r)| {
                let ttl = r.cache_ttl?;
                let name = r.name.clone().unwrap_or_else(|| format!("route{i}"));
                Some((name, Rule::for_route_ttl(Duration::from_secs(ttl))))
            })
            .collect();
        Self {
            rules,
            by_route,
            user: UserKeyReader::new(&config.waf.rate_limiting.user_key),
        }
    }

    /// Whether anything is cached at all under these rules.
    pub fn any(&self) -> bool {
        !self.rules.is_empty() || !self.by_route.is_empty()
    }

    /// The plan for a request on `route`, or `None` when no rule covers it.
    pub fn plan<B>(&self, route: &str, req: &http::Request<B>, host: Option<&str>) -> Option<Plan<'_>> {
        if self.rules.is_empty() && self.by_route.is_empty() {
            // No caching configured: the common case costs no route lookup.
            return None;
        }
        let path = req.uri().path();
        let rule = self
            .rules
            .iter()
            .find(|r| r.path.as_ref().is_some_and(|p| p.matches(path)))
            .or_else(|| self.by_route.get(route))?;
        let mode = policy::request_mode(req.method(), req.headers(), rule);
        if mode == RequestMode::Bypass {
            return None;
        }
        let key = self.key(rule, path, req.uri().query(), host, req.headers())?;
        Some(Plan { rule, key, mode })
    }

    fn key(&self, rule: &Rule, path: &str, query: Option<&str>, host: Option<&str>, h: &HeaderMap) -> Option<String> {
        let mut k = String::with_capacity(path.len() + 32);
        if rule.key.path {
            k.push_str(path);
        }
        if rule.key.query
            && let Some(q) = query
        {
            k.push('?');
            k.push_str(q);
        }
        if rule.key.host {
            k.push_str(" host=");
            k.push_str(host.unwrap_or("-"));
        }
        if rule.key.method {
            // HEAD is answered from GET's entry, so both are one method here.
            k.push_str(" method=GET");
        }
        for name in &rule.vary {
            k.push(' ');
            k.push_str(name.as_str());
            k.push('=');
            for (i, v) in h.get_all(name).iter().enumerate() {
                if i > 0 {
                    k.push(',');
                }
                k.push_str(&String::from_utf8_lossy(v.as_bytes()));
            }
        }
        if rule.key.user_id {
            // Hashed: the key is shown by purges and stored in Redis, and a user's token must not be.
            k.push_str(" user=");
            match self.user.read(h) {
                Some(user) => {
                    let digest = sha2::Sha256::digest(&user);
                    for b in &digest[..16] {
                        k.push_str(&format!("{b:02x}"));
                    }
                }
                None => k.push('-'),
            }
        }
        (k.len() <= MAX_KEY).then_some(k)
    }
}

/// A cache-level answer's origin, for the figures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Memory,
    Redis,
}

/// Who fetches a missing key.
pub enum Flight {
    /// This request fetches; others wait until the guard is dropped.
    Leader(FlightGuard),
    /// Another request is fetching: wait for it, then look again.
    Follower(watch::Receiver<()>),
    /// Too many fetches at once: fetch without coalescing.
    Alone,
}

/// Held by the request fetching a key; dropping it (stored or not) wakes the waiters.
pub struct FlightGuard {
    cache: Weak<ResponseCache>,
    key: String,
    _done: watch::Sender<()>,
}

impl Drop for FlightGuard {
    fn drop(&mut self) {
        // Removed before the sender drops (fields drop after this body): a waiter that wakes and misses
        // becomes a leader of its own rather than waiting on a finished flight.
        if let Some(cache) = self.cache.upgrade() {
            cache
                .flights
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&self.key);
        }
    }
}

/// The figures of `GET /admin/proxy/cache/stats`.
#[derive(Clone, Copy, Debug, serde::Serialize)]
pub struct Stats {
    pub hits: u64,
    pub hits_memory: u64,
    pub hits_redis: u64,
    pub misses: u64,
    pub hit_rate: f64,
    pub stale_served: u64,
    pub memory_usage: u64,
    pub entries: u64,
    pub redis_enabled: bool,
    pub redis_up: bool,
}

/// What a purge cleared.
#[derive(Clone, Copy, Debug, serde::Serialize)]
pub struct Purged {
    pub memory: u64,
    /// `None`: no Redis level, or it could not be reached.
    pub redis: Option<u64>,
    /// Nodes that received the purge over Redis, this one included.
    pub nodes_notified: Option<u64>,
}

pub struct ResponseCache {
    memory: Option<Cache<String, Arc<Entry>>>,
    redis: Option<Arc<L2>>,
    flights: Mutex<HashMap<String, watch::Receiver<()>>>,
    pub max_object: usize,
    compress_from: Option<usize>,
    bytes: Arc<AtomicI64>,
    misses: IntCounter,
    stale: IntCounter,
    hits_memory: IntCounter,
    hits_redis: IntCounter,
}

/// Per-entry expiry: an entry goes when it is no longer usable even stale.
struct UntilUnusable;

impl moka::Expiry<String, Arc<Entry>> for UntilUnusable {
    fn expire_after_create(&self, _: &String, value: &Arc<Entry>, _: Instant) -> Option<Duration> {
        Some(remaining(value))
    }

    fn expire_after_update(&self, _: &String, value: &Arc<Entry>, _: Instant, _: Option<Duration>) -> Option<Duration> {
        Some(remaining(value))
    }
}

fn remaining(e: &Entry) -> Duration {
    Duration::from_millis(e.keep_until_ms().saturating_sub(unix_ms(SystemTime::now())))
}

impl ResponseCache {
    pub fn new(c: &CachingConfig, registry: &Registry) -> Result<Arc<Self>, L2Error> {
        let m = &c.memory_cache;
        let bytes = Arc::new(AtomicI64::new(0));
        let memory = m.enabled.then(|| {
            // moka bounds one weight, so the entry limit is folded into it: every entry weighs at least
            // `max_size / max_entries`, so neither the bytes nor the count can exceed its limit.
            let slot = (m.max_size.get() / m.max_entries.max(1)).max(1);
            let weigh =
                move |_: &String, e: &Arc<Entry>| u32::try_from((e.size() as u64).max(slot)).unwrap_or(u32::MAX);
            let policy = match m.eviction_policy {
                EvictionPolicy::Lfu => moka::policy::EvictionPolicy::tiny_lfu(),
                // `ttl` evicts by expiry first, which every entry has; under pressure the oldest use goes.
                EvictionPolicy::Lru | EvictionPolicy::Ttl => moka::policy::EvictionPolicy::lru(),
            };
            let held = bytes.clone();
            Cache::builder()
                .max_capacity(m.max_size.get())
                .weigher(weigh)
                .eviction_policy(policy)
                .expire_after(UntilUnusable)
                .eviction_listener(move |_, e: Arc<Entry>, _| {
                    held.fetch_sub(i64::try_from(e.size()).unwrap_or(0), Ordering::Relaxed);
                })
                .build()
        });
        let redis = if c.redis_cache.enabled {
            Some(Arc::new(L2::new(&c.redis_cache, registry)?))
        } else {
            None
        };
        let hits = IntCounterVec::new(
            Opts::new(
                "rampart_proxy_cache_hits_total",
                "Requests answered from the cache, by level.",
            ),
            &["cache_type"],
        )?;
        let misses = IntCounter::with_opts(Opts::new(
            "rampart_proxy_cache_misses_total",
            "Cacheable requests that went to the upstream.",
        ))?;
        let stale = IntCounter::with_opts(Opts::new(
            "rampart_proxy_cache_stale_total",
            "Stale responses served (stale-while-revalidate or stale-if-error).",
        ))?;
        registry.register(Box::new(hits.clone()))?;
        registry.register(Box::new(misses.clone()))?;
        registry.register(Box::new(stale.clone()))?;
        let cache = Arc::new(Self {
            memory,
            redis,
            flights: Mutex::new(HashMap::new()),
            max_object: usize::try_from(m.max_object_size.get()).unwrap_or(usize::MAX),
            compress_from: m
                .compression
                .then(|| usize::try_from(m.compression_threshold).unwrap_or(usize::MAX)),
            bytes,
            hits_memory: hits.with_label_values(&["memory"]),
            hits_redis: hits.with_label_values(&["redis"]),
            misses,
            stale,
        });
        Ok(cache)
    }

    /// Starts listening for purges from other nodes (needs the runtime; a no-op without Redis).
    pub fn start(self: &Arc<Self>) -> Option<tokio::task::JoinHandle<()>> {
        let redis = self.redis.clone()?;
        let me = Arc::downgrade(self);
        Some(redis.subscribe(move |pattern| {
            if let Some(cache) = me.upgrade() {
                cache.purge_memory(pattern);
            }
        }))
    }

    /// A usable memory entry for this request (same values on the varied headers).
    pub fn get_memory(&self, key: &str, request: &HeaderMap) -> Option<Arc<Entry>> {
        let e = self.memory.as_ref()?.get(key)?;
        e.vary_matches(request).then_some(e)
    }

    /// The Redis entry for this key, copied into memory when found. `None` on a miss or a Redis failure.
    pub async fn get_redis(&self, key: &str, request: &HeaderMap) -> Option<Arc<Entry>> {
        let bytes = self.redis.as_ref()?.get(key).await?;
        let e = Arc::new(Entry::decode(&bytes, self.max_object)?);
        if !e.vary_matches(request) {
            return None;
        }
        self.put_memory(key.to_owned(), e.clone());
        Some(e)
    }

    fn put_memory(&self, key: String, e: Arc<Entry>) {
        if let Some(m) = &self.memory {
            self.bytes
                .fetch_add(i64::try_from(e.size()).unwrap_or(0), Ordering::Relaxed);
            m.insert(key, e);
        }
    }

    /// Stores in memory at once and in Redis in the background (a request never waits for Redis to store).
    pub fn store(&self, key: String, e: Arc<Entry>) {
        if let Some(redis) = &self.redis {
            let redis = redis.clone();
            let (key, e) = (key.clone(), e.clone());
            tokio::spawn(async move {
                let ttl = remaining(&e);
                if !ttl.is_zero() {
                    redis.set(&key, &e.encode(), ttl).await;
                }
            });
        }
        self.put_memory(key, e);
    }

    /// The body to store: deflated when compression is on, the body is large enough and it gets smaller.
    pub fn pack(&self, body: Bytes) -> (Bytes, bool) {
        match self.compress_from {
            Some(from) if body.len() >= from => {
                let packed = miniz_oxide::deflate::compress_to_vec(&body, 1);
                if packed.len() < body.len() {
                    (Bytes::from(packed), true)
                } else {
                    (body, false)
                }
            }
            _ => (body, false),
        }
    }

    /// The body to send; `None` for a stored body that does not inflate within the object limit.
    pub fn unpack(&self, e: &Entry) -> Option<Bytes> {
        if !e.compressed {
            return Some(e.body.clone());
        }
        miniz_oxide::inflate::decompress_to_vec_with_limit(&e.body, self.max_object)
            .ok()
            .map(Bytes::from)
    }

    /// Joins or starts the fetch of `key`.
    pub fn begin(self: &Arc<Self>, key: &str) -> Flight {
        let mut flights = self.flights.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(rx) = flights.get(key) {
            return Flight::Follower(rx.clone());
        }
        if flights.len() >= MAX_FLIGHTS {
            return Flight::Alone;
        }
        let (tx, rx) = watch::channel(());
        flights.insert(key.to_owned(), rx);
        Flight::Leader(FlightGuard {
            cache: Arc::downgrade(self),
            key: key.to_owned(),
            _done: tx,
        })
    }

    pub fn hit(&self, level: Level) {
        match level {
            Level::Memory => self.hits_memory.inc(),
            Level::Redis => self.hits_redis.inc(),
        }
    }

    pub fn miss(&self) {
        self.misses.inc();
    }

    pub fn stale_served(&self) {
        self.stale.inc();
    }

    /// Whether the Redis level is configured and failing.
    pub fn redis_down(&self) -> bool {
        self.redis.as_ref().is_some_and(|r| r.is_down())
    }

    pub fn stats(&self) -> Stats {
        let (hm, hr, misses) = (self.hits_memory.get(), self.hits_redis.get(), self.misses.get());
        let hits = hm + hr;
        let entries = self.memory.as_ref().map_or(0, |m| {
            m.run_pending_tasks();
            m.entry_count()
        });
        Stats {
            hits,
            hits_memory: hm,
            hits_redis: hr,
            misses,
            hit_rate: if hits + misses == 0 {
                0.0
            } else {
                hits as f64 / (hits + misses) as f64
            },
            stale_served: self.stale.get(),
            memory_usage: u64::try_from(self.bytes.load(Ordering::Relaxed)).unwrap_or(0),
            entries,
            redis_enabled: self.redis.is_some(),
            redis_up: self.redis.is_some() && !self.redis_down(),
        }
    }

    /// Removes this node's memory entries whose keys match `pattern` (empty: all); how many.
    pub fn purge_memory(&self, pattern: &str) -> u64 {
        let Some(m) = &self.memory else { return 0 };
        let doomed: Vec<Arc<String>> = m
            .iter()
            .filter(|(k, _)| pattern.is_empty() || glob(pattern, k))
            .map(|(k, _)| k)
            .collect();
        for k in &doomed {
            m.invalidate(k.as_str());
        }
        m.run_pending_tasks();
        doomed.len() as u64
    }

    /// Clears matching entries here, in Redis, and (through Redis) on every other node.
    pub async fn purge(&self, pattern: &str) -> Purged {
        // Memory first, so this node's count is its own (its subscriber hears the purge too, and would race
        // this count); an entry copied back from Redis meanwhile goes when that message arrives.
        let memory = self.purge_memory(pattern);
        let remote = match &self.redis {
            Some(r) => r.purge(pattern).await,
            None => None,
        };
        Purged {
            memory,
            redis: remote.map(|(deleted, _)| deleted),
            nodes_notified: remote.map(|(_, told)| told),
        }
    }
}

/// `*` matches any run of characters (including none); everything else matches itself.
pub fn glob(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&b| b == b'*')
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a test reports failure by panicking
mod tests {
    use super::*;
    use crate::config::schema::CacheRule;

    #[test]
    fn globs_match_with_star_only() {
        assert!(glob("/img/*", "/img/a.png"));
        assert!(glob("/img/*", "/img/"));
        assert!(!glob("/img/*", "/im/a.png"));
        assert!(glob("*a.png*", "/img/a.png?x=1"));
        assert!(glob("/a?b", "/a?b"));
        assert!(!glob("/a?b", "/axb"));
        assert!(glob("*", ""));
        assert!(glob("/x*y*z", "/x12y34z"));
        assert!(!glob("/x*y*z", "/x12y34"));
    }

    fn config(yaml_rules: Vec<CacheRule>) -> Config {
        let mut c = Config::default();
        c.proxy.caching.enabled = true;
        c.proxy.caching.cache_rules = yaml_rules;
        c
    }

    fn rule(path: &str, key: &[&str], vary: &[&str]) -> CacheRule {
        CacheRule {
            path: path.into(),
            ttl: 60,
            vary_headers: vary.iter().map(|s| (*s).to_owned()).collect(),
            cache_key_include: key.iter().map(|s| (*s).to_owned()).collect(),
            conditions: Vec::new(),
            cache_set_cookie: false,
            stale_while_revalidate: 0,
            stale_if_error: 0,
        }
    }

    fn key_of(rules: &CacheRules, uri: &str, headers: &[(&str, &str)]) -> Option<String> {
        let mut b = http::Request::builder().uri(uri);
        for (n, v) in headers {
            b = b.header(*n, *v);
        }
        let req = b.body(()).unwrap();
        rules.plan("r", &req, Some("example.com")).map(|p| p.key)
    }

    #[test]
    fn keys_hold_the_parts_the_rule_names() {
        let rules = CacheRules::build(&config(vec![
            rule("/static/*", &["path"], &[]),
            rule("/api/*", &["path", "query", "host"], &["accept-encoding"]),
            rule("/me/*", &["path", "user_id"], &[]),
        ]));
        assert_eq!(key_of(&rules, "/static/a.css?v=1", &[]).unwrap(), "/static/a.css");
        assert_eq!(
            key_of(&rules, "/api/x?a=1", &[("accept-encoding", "gzip")]).unwrap(),
            "/api/x?a=1 host=example.com accept-encoding=gzip"
        );
        assert_ne!(
            key_of(&rules, "/api/x?a=1", &[("accept-encoding", "br")]),
            key_of(&rules, "/api/x?a=1", &[("accept-encoding", "gzip")])
        );
        let alice = key_of(&rules, "/me/p", &[("authorization", "alice")]).unwrap();
        let bob = key_of(&rules, "/me/p", &[("authorization", "bob")]).unwrap();
        assert_ne!(alice, bob, "users get their own entries");
        assert!(!alice.contains("alice"), "the user is hashed: {alice}");
        assert_eq!(key_of(&rules, "/other", &[]), None, "no rule, no caching");
        let long = format!("/static/{}", "a".repeat(MAX_KEY));
        assert_eq!(key_of(&rules, &long, &[]), None, "an over-long key is not cached");
    }
}
