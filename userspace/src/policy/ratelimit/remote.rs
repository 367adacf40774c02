//! Counters in Redis, shared by every node that names the same `waf.rate_limiting.redis_url`. Each
//! admission is one Lua script run atomically by Redis (read, decide, write), on Redis's own clock so that
//! nodes with skewed clocks still agree. The script implements the same three algorithms as
//! `algorithm.rs`, in microseconds.
//!
//! When Redis fails (refused, timed out, a script error) the caller falls back to the local store; this
//! module remembers the failure for a moment so a dead Redis costs one attempt per second, not one per
//! request, and logs a warning when it goes down and when it comes back.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tracing::{info, warn};

use super::algorithm::{Admission, Window};
use crate::config::schema::RateAlgorithm;

/// How long Redis is left alone after a failure.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(1);
/// Longest a request waits for Redis before the local counters decide.
const RESPONSE_TIMEOUT: Duration = Duration::from_millis(250);

const SCRIPT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local alg = tonumber(ARGV[1])
local period = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
local cap = tonumber(ARGV[4])
local ttl_ms = math.floor(period / 500) + 1000
if alg == 0 then
  local interval = math.max(1, math.floor(period / limit))
  local tol = interval * (cap - 1)
  local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
  if tat < now then tat = now end
  local ahead = tat - now
  if ahead > tol then return {0, 0, ahead, ahead - tol} end
  local nxt = tat + interval
  redis.call('SET', KEYS[1], string.format('%.0f', nxt), 'PX', math.floor((nxt - now) / 1000) + 1000)
  local used = math.ceil((nxt - now) / interval)
  return {1, math.max(0, cap - used), nxt - now, 0}
end
local v = redis.call('HMGET', KEYS[1], 's', 'c', 'p')
local s = tonumber(v[1] or '-1')
local c = tonumber(v[2] or '0')
local p = tonumber(v[3] or '0')
local start = now - (now % period)
if s ~= start then
  if alg == 1 and s + period == start then p = c else p = 0 end
  c = 0
end
local elapsed = now - start
local reset = start + period - now
local est = function(cur) return p * (period - elapsed) / period + cur end
if est(c + 1) > limit then
  local retry = reset
  if alg == 1 and c < limit and p > 0 then
    local room = limit - c - 1
    retry = math.max(1, period - math.floor(room * period / p) - elapsed)
  end
  return {0, 0, reset, retry}
end
c = c + 1
redis.call('HSET', KEYS[1], 's', string.format('%.0f', start), 'c', c, 'p', p)
redis.call('PEXPIRE', KEYS[1], ttl_ms)
return {1, math.max(0, limit - math.ceil(est(c))), reset, 0}
";

pub struct Remote {
    conn: ConnectionManager,
    script: redis::Script,
    origin: Instant,
    /// Nanoseconds after `origin` before which Redis is not tried again.
    down_until: AtomicU64,
    down: AtomicBool,
    url: String,
}

impl Remote {
    /// Prepares the connection; nothing is sent until the first request (a Redis that is down at start is
    /// the same as one that goes down later).
    pub fn new(url: &str) -> Result<Self, redis::RedisError> {
        let client = redis::Client::open(url)?;
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_connection_timeout(Some(RESPONSE_TIMEOUT))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(200));
        let conn = ConnectionManager::new_lazy_with_config(client, config)?;
        Ok(Self {
            conn,
            script: redis::Script::new(SCRIPT),
            origin: Instant::now(),
            down_until: AtomicU64::new(0),
            down: AtomicBool::new(false),
            url: redact(url),
        })
    }

    fn elapsed_ns(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// Admits one request in Redis; `None` when Redis cannot answer (the caller decides locally).
    pub async fn admit(&self, key: &str, window: &Window) -> Option<Admission> {
        if self.elapsed_ns() < self.down_until.load(Ordering::Relaxed) {
            return None;
        }
        let alg: u8 = match window.algorithm {
            RateAlgorithm::TokenBucket => 0,
            RateAlgorithm::SlidingWindow => 1,
            RateAlgorithm::FixedWindow => 2,
        };
        let mut conn = self.conn.clone();
        let reply: Result<(u8, u64, u64, u64), _> = self
            .script
            .key(key)
            .arg(alg)
            .arg(window.period_ns / 1000)
            .arg(window.limit)
            .arg(window.capacity)
            .invoke_async(&mut conn)
            .await;
        match reply {
            Ok((allowed, remaining, reset_us, retry_us)) => {
                if self.down.swap(false, Ordering::Relaxed) {
                    info!(redis = %self.url, "Redis answers again: rate limits are shared across nodes again");
                }
                Some(Admission {
                    allowed: allowed == 1,
                    remaining,
                    reset_ns: reset_us.saturating_mul(1000),
                    retry_after_ns: retry_us.saturating_mul(1000),
                })
            }
            Err(e) => {
                let until = self.elapsed_ns() + u64::try_from(RETRY_AFTER_FAILURE.as_nanos()).unwrap_or(0);
                self.down_until.store(until, Ordering::Relaxed);
                if !self.down.swap(true, Ordering::Relaxed) {
                    warn!(
                        redis = %self.url,
                        error = %e,
                        "Redis is unreachable: rate limits fall back to this node's local counters"
                    );
                }
                None
            }
        }
    }
}

/// The URL without a password, for logs.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => format!("{}://***{}", &url[..scheme], &url[at..]),
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_not_logged() {
        assert_eq!(redact("redis://:secret@10.0.0.1:6379/0"), "redis://***@10.0.0.1:6379/0");
        assert_eq!(redact("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
    }
}
