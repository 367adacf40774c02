//! The shared second level: entries in Redis (`proxy.caching.redis_cache`), seen by every node that names the
//! same server, and the purge channel that tells every node to clear its memory level too.
//!
//! Redis is an optimisation, never a dependency of a request: every operation has a deadline, a failure
//! marks Redis down for a moment (one attempt per second while it is gone, not one per request), and the
//! caller carries on with the memory level alone. The state is a gauge and the `/health` degraded list.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use prometheus::{IntCounter, IntGauge, Opts, Registry};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tracing::{info, warn};

use crate::config::schema::RedisCacheConfig;

/// Keys of entries are this followed by the cache key.
pub const PREFIX: &str = "rampart:cache:";
/// Purge requests: the payload is the pattern (empty for everything).
pub const CHANNEL: &str = "rampart:cache:purge";
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(1);
/// Keys a purge deletes at most, so one request cannot run for ever against a huge keyspace.
const MAX_PURGE_KEYS: u64 = 1_000_000;

pub struct L2 {
    conns: Vec<ConnectionManager>,
    next: AtomicUsize,
    client: redis::Client,
    timeout: Duration,
    origin: Instant,
    down_until: AtomicU64,
    down: AtomicBool,
    addr: String,
    up: IntGauge,
    errors: IntCounter,
}

#[derive(Debug, thiserror::Error)]
pub enum L2Error {
    #[error("proxy.caching.redis_cache ({addr}): {error}")]
    Open { addr: String, error: redis::RedisError },
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
}

/// `redis://` URL of the configuration; the password is percent-encoded.
fn url(c: &RedisCacheConfig) -> String {
    let auth = c.password.as_deref().map_or(String::new(), |p| {
        let enc: String = p
            .bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                    char::from(b).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect();
        format!(":{enc}@")
    });
    let host = if c.host.contains(':') && !c.host.starts_with('[') {
        format!("[{}]", c.host)
    } else {
        c.host.clone()
    };
    format!("redis://{auth}{host}:{}/{}", c.port.get(), c.db)
}

impl L2 {
    /// Prepares the pool; nothing is sent until the first request (a Redis that is down at start is the same
    /// as one that goes down later).
    pub fn new(c: &RedisCacheConfig, registry: &Registry) -> Result<Self, L2Error> {
        let addr = format!("{}:{}/{}", c.host, c.port.get(), c.db);
        let open = |error| L2Error::Open {
            addr: addr.clone(),
            error,
        };
        let client = redis::Client::open(url(c).as_str()).map_err(open)?;
        let timeout = Duration::from_secs(c.timeout.max(1));
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(timeout))
            .set_connection_timeout(Some(timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(200));
        // One multiplexed connection already carries many requests at once; `pool_size` of them spread the
        // work of a busy node over several sockets.
        let conns = (0..c.pool_size.clamp(1, 64))
            .map(|_| ConnectionManager::new_lazy_with_config(client.clone(), config.clone()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(open)?;
        let up = IntGauge::with_opts(Opts::new(
            "rampart_cache_redis_up",
            "1 while the Redis cache level answers, 0 while requests are served from memory alone.",
        ))?;
        let errors = IntCounter::with_opts(Opts::new(
            "rampart_cache_redis_errors_total",
            "Redis cache operations that failed or timed out (the request carried on without Redis).",
        ))?;
        registry.register(Box::new(up.clone()))?;
        registry.register(Box::new(errors.clone()))?;
        up.set(1);
        Ok(Self {
            conns,
            next: AtomicUsize::new(0),
            client,
            timeout,
            origin: Instant::now(),
            down_until: AtomicU64::new(0),
            down: AtomicBool::new(false),
            addr,
            up,
            errors,
        })
    }

    fn elapsed_ns(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// Whether Redis failed recently (and is being left alone).
    pub fn is_down(&self) -> bool {
        self.down.load(Ordering::Relaxed)
    }

    fn conn(&self) -> Option<ConnectionManager> {
        if self.elapsed_ns() < self.down_until.load(Ordering::Relaxed) {
            return None;
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.conns.len().max(1);
        self.conns.get(i).cloned()
    }

    fn failed(&self, what: &str, error: &dyn std::fmt::Display) {
        self.errors.inc();
        let until = self.elapsed_ns() + u64::try_from(RETRY_AFTER_FAILURE.as_nanos()).unwrap_or(0);
        self.down_until.store(until, Ordering::Relaxed);
        if !self.down.swap(true, Ordering::Relaxed) {
            self.up.set(0);
            warn!(redis = %self.addr, error = %error, operation = what,
                "Redis cache is unreachable: serving from the memory cache alone");
        }
    }

    fn answered(&self) {
        if self.down.swap(false, Ordering::Relaxed) {
            self.up.set(1);
            info!(redis = %self.addr, "Redis cache answers again: the shared cache level is back");
        }
    }

    /// Runs one command with the deadline; `None` when Redis is down, failed or took too long.
    async fn run<T: redis::FromRedisValue>(&self, what: &str, cmd: &redis::Cmd) -> Option<T> {
        let mut conn = self.conn()?;
        match tokio::time::timeout(self.timeout, cmd.query_async::<T>(&mut conn)).await {
            Ok(Ok(v)) => {
                self.answered();
                Some(v)
            }
            Ok(Err(e)) => {
                self.failed(what, &e);
                None
            }
            Err(_) => {
                self.failed(what, &"timed out");
                None
            }
        }
    }

    pub async fn get(&self, key: &str) -> Option<Vec<u8>> {
        let mut cmd = redis::cmd("GET");
        cmd.arg(format!("{PREFIX}{key}"));
        self.run::<Option<Vec<u8>>>("get", &cmd).await.flatten()
    }

    pub async fn set(&self, key: &str, value: &[u8], ttl: Duration) {
        let ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let mut cmd = redis::cmd("SET");
        cmd.arg(format!("{PREFIX}{key}")).arg(value).arg("PX").arg(ms);
        let _: Option<()> = self.run("set", &cmd).await;
    }

    /// Deletes the entries whose keys match `pattern` (`*` is the only wildcard) and tells every node to
    /// clear its memory level. `(deleted, nodes told)`, or `None` when Redis could not be reached.
    pub async fn purge(&self, pattern: &str) -> Option<(u64, u64)> {
        let glob = format!("{}{}", redis_escape(PREFIX), redis_escape(pattern).replace("\\*", "*"));
        let mut cursor: u64 = 0;
        let mut deleted = 0u64;
        loop {
            let mut scan = redis::cmd("SCAN");
            scan.arg(cursor).arg("MATCH").arg(&glob).arg("COUNT").arg(1000);
            let (next, keys): (u64, Vec<Vec<u8>>) = self.run("scan", &scan).await?;
            if !keys.is_empty() {
                let mut del = redis::cmd("UNLINK");
                for k in &keys {
                    del.arg(k.as_slice());
                }
                deleted += self.run::<u64>("unlink", &del).await?;
            }
            cursor = next;
            if cursor == 0 || deleted >= MAX_PURGE_KEYS {
                break;
            }
        }
        let mut publish = redis::cmd("PUBLISH");
        publish.arg(CHANNEL).arg(pattern);
        let told = self.run::<u64>("publish", &publish).await?;
        Some((deleted, told))
    }

    /// Listens for purges from any node (this one included) and hands each pattern to `on_purge`; reconnects
    /// after Redis goes away, once a second.
    pub fn subscribe(self: Arc<Self>, on_purge: impl Fn(&str) + Send + Sync + 'static) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                match tokio::time::timeout(self.timeout, self.client.get_async_pubsub()).await {
                    Ok(Ok(mut ps)) => match ps.subscribe(CHANNEL).await {
                        Ok(()) => {
                            self.answered();
                            let mut messages = ps.on_message();
                            while let Some(msg) = messages.next().await {
                                match std::str::from_utf8(msg.get_payload_bytes()) {
                                    Ok(pattern) if pattern.len() <= super::MAX_PATTERN => on_purge(pattern),
                                    _ => warn!("ignored a purge message that is not a valid pattern"),
                                }
                            }
                            // The stream ends when the connection does: Redis is gone (or restarting).
                            self.failed("subscribe", &"the purge subscription was closed");
                        }
                        Err(e) => self.failed("subscribe", &e),
                    },
                    Ok(Err(e)) => self.failed("subscribe", &e),
                    Err(_) => self.failed("subscribe", &"timed out"),
                }
                tokio::time::sleep(RETRY_AFTER_FAILURE).await;
            }
        })
    }
}

/// Escapes Redis glob specials so they match themselves.
fn redis_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\' | '^') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a test reports failure by panicking
mod tests {
    use super::*;

    #[test]
    fn only_the_star_is_a_wildcard_in_redis_patterns() {
        let glob = redis_escape("/a?b[c]*").replace("\\*", "*");
        assert_eq!(glob, "/a\\?b\\[c\\]*");
    }

    #[test]
    fn the_password_is_percent_encoded_in_the_url() {
        let c = RedisCacheConfig {
            password: Some("p@ss:w/rd".into()),
            ..RedisCacheConfig::default()
        };
        assert_eq!(url(&c), "redis://:p%40ss%3Aw%2Frd@127.0.0.1:6379/0");
    }
}
