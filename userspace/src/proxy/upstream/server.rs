//! One upstream server's live state: requests in flight, a latency average, whether an operator enabled it,
//! whether active checks find it healthy, and a circuit breaker fed by the outcome of real requests (passive
//! health).
//!
//! The breaker opens after `max_fails` failures within `fail_timeout`; it stays open for `fail_timeout`, doubled
//! each time it opens again without a success in between (capped), then lets one probe request through
//! (half-open): success closes it, failure opens it again.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::conn_pool::ConnPool;
use crate::config::schema::ServerEntry;

/// Longest the breaker stays open, however often it reopens.
const MAX_OPEN: Duration = Duration::from_secs(300);
/// Weight of a new latency sample in the moving average (out of 8).
const EWMA_NEW: u64 = 2;

#[derive(Debug)]
enum BreakerState {
    Closed,
    Open { until: Instant },
    HalfOpen { probing: bool },
}

#[derive(Debug)]
struct Breaker {
    state: BreakerState,
    recent_failures: VecDeque<Instant>,
    /// Consecutive openings without a success: the exponent of the backoff.
    opens: u32,
}

/// How a request to the server ended, as far as its health is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Success,
    /// Could not connect, connection reset, or timed out.
    Failure,
    /// Ended for a reason that says nothing about the server (the client went away, its body was too large).
    Cancelled,
}

#[derive(Debug)]
pub struct Server {
    /// `host:port`, stable across reloads.
    pub id: String,
    /// As written into request URIs (IPv6 literals bracketed).
    pub authority: String,
    pub host: String,
    pub port: u16,
    pub max_connections: u32,
    max_fails: u32,
    fail_timeout: Duration,
    pub weight: AtomicU32,
    pub enabled: AtomicBool,
    /// Set by active health checks; true until a check says otherwise.
    pub healthy: AtomicBool,
    pub active: AtomicU32,
    ewma_ns: AtomicU64,
    breaker: Mutex<Breaker>,
    /// The breaker is closed with no failure on record and no opening to back off from: what it is for
    /// nearly every request, which then takes no lock (three lock round trips per request otherwise).
    /// Written only with the breaker locked; read without the lock.
    settled: AtomicBool,
    /// Keep-alive connections to this server.
    pub pool: ConnPool,
}

impl Server {
    pub fn new(entry: &ServerEntry) -> Self {
        let host = entry.host.clone();
        let port = entry.port.get();
        let authority = if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        Self {
            id: format!("{host}:{port}"),
            authority,
            host,
            port,
            max_connections: entry.max_connections,
            max_fails: entry.max_fails.max(1),
            fail_timeout: Duration::from_secs(entry.fail_timeout.max(1)),
            weight: AtomicU32::new(entry.weight),
            enabled: AtomicBool::new(true),
            healthy: AtomicBool::new(true),
            active: AtomicU32::new(0),
            ewma_ns: AtomicU64::new(0),
            breaker: Mutex::new(Breaker {
                state: BreakerState::Closed,
                recent_failures: VecDeque::new(),
                opens: 0,
            }),
            settled: AtomicBool::new(true),
            pool: ConnPool::default(),
        }
    }

    /// Whether this server's static settings equal `entry`'s, so its live state can carry over a reload.
    pub fn same_settings(&self, entry: &ServerEntry) -> bool {
        self.host == entry.host
            && self.port == entry.port.get()
            && self.max_connections == entry.max_connections
            && self.max_fails == entry.max_fails.max(1)
            && self.fail_timeout == Duration::from_secs(entry.fail_timeout.max(1))
    }

    fn breaker(&self) -> std::sync::MutexGuard<'_, Breaker> {
        self.breaker.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Keeps `settled` true to the breaker's state; called with the breaker locked after every change.
    fn settle(&self, b: &Breaker) {
        let settled = matches!(b.state, BreakerState::Closed) && b.recent_failures.is_empty() && b.opens == 0;
        self.settled.store(settled, Ordering::Release);
    }

    /// Whether the breaker lets a request through now (an open breaker whose time is up turns half-open).
    /// `now` is called only when the breaker is not settled: nearly every request needs no clock read.
    pub fn breaker_allows(&self, now: impl FnOnce() -> Instant) -> bool {
        if self.settled.load(Ordering::Acquire) {
            return true;
        }
        let now = now();
        let mut b = self.breaker();
        let allows = match b.state {
            BreakerState::Closed => true,
            BreakerState::Open { until } if now >= until => {
                b.state = BreakerState::HalfOpen { probing: false };
                true
            }
            BreakerState::Open { .. } => false,
            BreakerState::HalfOpen { probing } => !probing,
        };
        self.settle(&b);
        allows
    }

    /// Marks the start of a request picked for this server: a half-open breaker admits only this one probe.
    pub fn begin(&self) {
        self.active.fetch_add(1, Ordering::Relaxed);
        // Settled means closed: only a half-open breaker has anything to record. A change racing this read
        // can only have tripped the breaker open, which has no probe to record either.
        if self.settled.load(Ordering::Acquire) {
            return;
        }
        let mut b = self.breaker();
        if let BreakerState::HalfOpen { probing } = &mut b.state {
            *probing = true;
        }
    }

    /// Records how a request ended; `latency` is the time to the response head on success. `now` is called
    /// only when the breaker has something to record: a success on a settled server, nearly every request,
    /// needs no clock read.
    pub fn end(&self, outcome: Outcome, latency: Option<Duration>, now: impl FnOnce() -> Instant) {
        self.active.fetch_sub(1, Ordering::Relaxed);
        if let Some(l) = latency {
            let sample = u64::try_from(l.as_nanos()).unwrap_or(u64::MAX).max(1);
            let old = self.ewma_ns.load(Ordering::Relaxed);
            let new = if old == 0 {
                sample
            } else {
                (old * (8 - EWMA_NEW) + sample * EWMA_NEW) / 8
            };
            self.ewma_ns.store(new, Ordering::Relaxed);
        }
        if outcome == Outcome::Success && self.settled.load(Ordering::Acquire) {
            // Already closed with nothing on record: a success changes nothing.
            return;
        }
        let mut b = self.breaker();
        match outcome {
            Outcome::Cancelled => {
                // A half-open probe that never completed must not block the next one.
                if let BreakerState::HalfOpen { probing } = &mut b.state {
                    *probing = false;
                }
            }
            Outcome::Success => {
                b.state = BreakerState::Closed;
                b.recent_failures.clear();
                b.opens = 0;
            }
            Outcome::Failure => {
                let now = now();
                let window_start = now.checked_sub(self.fail_timeout).unwrap_or(now);
                while b.recent_failures.front().is_some_and(|t| *t < window_start) {
                    b.recent_failures.pop_front();
                }
                b.recent_failures.push_back(now);
                let trip = matches!(b.state, BreakerState::HalfOpen { .. })
                    || b.recent_failures.len() >= self.max_fails as usize;
                if trip {
                    let open_for = self.fail_timeout.saturating_mul(1u32 << b.opens.min(16)).min(MAX_OPEN);
                    b.opens = b.opens.saturating_add(1);
                    b.state = BreakerState::Open { until: now + open_for };
                    b.recent_failures.clear();
                }
            }
        }
        self.settle(&b);
    }

    pub fn ewma_latency_ns(&self) -> u64 {
        self.ewma_ns.load(Ordering::Relaxed)
    }

    /// `healthy`, `open` (breaker), `half_open`, or `disabled`, for the admin API.
    pub fn status(&self) -> &'static str {
        if !self.enabled.load(Ordering::Relaxed) {
            return "disabled";
        }
        if !self.healthy.load(Ordering::Relaxed) {
            return "unhealthy";
        }
        match self.breaker().state {
            BreakerState::Closed => "healthy",
            BreakerState::Open { .. } => "circuit_open",
            BreakerState::HalfOpen { .. } => "half_open",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(max_fails: u32, fail_timeout: u64) -> Server {
        let entry: ServerEntry = serde_json::from_value(serde_json::json!({
            "host": "127.0.0.1", "port": 9, "max_fails": max_fails, "fail_timeout": fail_timeout
        }))
        .expect("valid entry");
        Server::new(&entry)
    }

    #[test]
    fn breaker_opens_after_max_fails_then_half_opens_for_one_probe() {
        let s = server(2, 10);
        let t0 = Instant::now();
        assert!(
            s.settled.load(Ordering::Relaxed),
            "a new server takes the lock-free path"
        );
        s.begin();
        s.end(Outcome::Failure, None, || t0);
        assert!(
            !s.settled.load(Ordering::Relaxed),
            "a failure on record leaves the fast path"
        );
        assert!(s.breaker_allows(|| t0), "one failure of two allowed");
        s.begin();
        s.end(Outcome::Failure, None, || t0);
        assert!(
            !s.breaker_allows(|| t0 + Duration::from_secs(9)),
            "open for fail_timeout"
        );
        let later = t0 + Duration::from_secs(10);
        assert!(s.breaker_allows(|| later), "half-open after fail_timeout");
        s.begin();
        assert!(!s.breaker_allows(|| later), "only one probe while half-open");
        s.end(Outcome::Failure, None, || later);
        assert!(
            !s.breaker_allows(|| later + Duration::from_secs(19)),
            "reopened for twice as long"
        );
        assert!(s.breaker_allows(|| later + Duration::from_secs(20)));
        s.begin();
        s.end(Outcome::Success, Some(Duration::from_millis(5)), || {
            later + Duration::from_secs(20)
        });
        assert!(
            s.breaker_allows(|| later + Duration::from_secs(20)),
            "a successful probe closes it"
        );
        assert_eq!(s.status(), "healthy");
        assert_eq!(s.active.load(Ordering::Relaxed), 0);
        assert!(s.settled.load(Ordering::Relaxed), "closed again with nothing on record");
    }

    #[test]
    fn failures_outside_the_window_do_not_count() {
        let s = server(2, 10);
        let t0 = Instant::now();
        s.begin();
        s.end(Outcome::Failure, None, || t0);
        s.begin();
        s.end(Outcome::Failure, None, || t0 + Duration::from_secs(11));
        assert!(s.breaker_allows(|| t0 + Duration::from_secs(11)));
    }

    #[test]
    fn latency_average_moves_towards_new_samples() {
        let s = server(3, 10);
        let now = Instant::now();
        s.begin();
        s.end(Outcome::Success, Some(Duration::from_millis(8)), || now);
        assert_eq!(s.ewma_latency_ns(), 8_000_000);
        s.begin();
        s.end(Outcome::Success, Some(Duration::from_millis(16)), || now);
        assert_eq!(s.ewma_latency_ns(), 10_000_000);
    }
}
