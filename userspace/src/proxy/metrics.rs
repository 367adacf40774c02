//! Proxy metrics: requests by upstream and status, latency by upstream, and errors by kind. Labels are bounded
//! (upstream names come from configuration, status codes are a small set): no paths or addresses.
//!
//! Resolving a labelled child hashes the label values and takes a lock, which on the hot path costs more than
//! the increment itself; children are therefore resolved once per (upstream, status) and kept, in short lists
//! scanned linearly (upstreams and status codes seen are few, and hashing them cost more than the scan).
//! Each worker thread keeps its own copy of the children it used, so that the common request takes no lock
//! at all (a read lock is two atomic operations, as many as the increments themselves).

use std::sync::RwLock;
use std::time::Duration;

use http::StatusCode;
use prometheus::{Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts, Registry};

pub struct ProxyMetrics {
    /// The WAF phase's metrics.
    pub waf: super::waf_phase::WafMetrics,
    /// Bot detection's and challenges' metrics.
    pub bot: super::challenge_phase::BotMetrics,
    requests: IntCounterVec,
    duration: HistogramVec,
    errors: IntCounterVec,
    resolved: RwLock<Vec<(Box<str>, Resolved)>>,
    /// Tells this instance's entries in the per-thread caches from those of others (tests make many).
    id: u64,
}

/// A thread's children: (metrics instance, upstream, status code) and the counter and histogram for them.
type ThreadEntry = (u64, Box<str>, u16, IntCounter, Histogram);

thread_local! {
    static THREAD_RESOLVED: std::cell::RefCell<Vec<ThreadEntry>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Entries a thread keeps at most; past it the cache starts over (labels are bounded, so it rarely fills).
const THREAD_ENTRIES: usize = 64;

/// One upstream's children: the histogram, and a counter per status code seen.
struct Resolved {
    duration: Histogram,
    by_status: Vec<(u16, IntCounter)>,
}

impl ProxyMetrics {
    pub fn new(registry: &Registry) -> prometheus::Result<Self> {
        let requests = IntCounterVec::new(
            Opts::new(
                "rampart_proxy_requests_total",
                "Requests answered, by upstream and status code.",
            ),
            &["upstream", "status_code"],
        )?;
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "rampart_proxy_request_duration_seconds",
                "Time to answer a request, by upstream.",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ]),
            &["upstream"],
        )?;
        let errors = IntCounterVec::new(
            Opts::new(
                "rampart_proxy_errors_total",
                "Requests that got no upstream answer, by kind.",
            ),
            &["kind"],
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        registry.register(Box::new(errors.clone()))?;
        Ok(Self {
            waf: super::waf_phase::WafMetrics::new(registry)?,
            bot: super::challenge_phase::BotMetrics::new(registry)?,
            requests,
            duration,
            errors,
            resolved: RwLock::new(Vec::new()),
            id: {
                static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
                NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            },
        })
    }

    pub fn observe(&self, upstream: &str, status: StatusCode, took: Duration) {
        let code = status.as_u16();
        let seconds = took.as_secs_f64();
        THREAD_RESOLVED.with(|cell| {
            let Ok(mut cache) = cell.try_borrow_mut() else {
                // Re-entered (cannot happen from the proxy); count without the cache.
                let (counter, duration) = self.shared_children(upstream, status);
                counter.inc();
                duration.observe(seconds);
                return;
            };
            let found = cache
                .iter()
                .position(|(id, name, c, ..)| *id == self.id && *c == code && &**name == upstream);
            let at = found.unwrap_or_else(|| {
                if cache.len() >= THREAD_ENTRIES {
                    cache.clear();
                }
                let (counter, duration) = self.shared_children(upstream, status);
                cache.push((self.id, upstream.into(), code, counter, duration));
                cache.len() - 1
            });
            let (.., counter, duration) = &cache[at];
            counter.inc();
            duration.observe(seconds);
        });
    }

    /// The children for (upstream, status), resolved once per process and shared by every thread.
    fn shared_children(&self, upstream: &str, status: StatusCode) -> (IntCounter, Histogram) {
        let code = status.as_u16();
        {
            let resolved = self.resolved.read().unwrap_or_else(|p| p.into_inner());
            if let Some((_, r)) = resolved.iter().find(|(name, _)| &**name == upstream)
                && let Some(counter) = r.by_status.iter().find(|(c, _)| *c == code).map(|(_, counter)| counter)
            {
                return (counter.clone(), r.duration.clone());
            }
        }
        let mut resolved = self.resolved.write().unwrap_or_else(|p| p.into_inner());
        let index = match resolved.iter().position(|(name, _)| &**name == upstream) {
            Some(i) => i,
            None => {
                let duration = self.duration.with_label_values(&[upstream]);
                resolved.push((
                    upstream.into(),
                    Resolved {
                        duration,
                        by_status: Vec::new(),
                    },
                ));
                resolved.len() - 1
            }
        };
        let r = &mut resolved[index].1;
        let counter = match r.by_status.iter().position(|(c, _)| *c == code) {
            Some(i) => r.by_status[i].1.clone(),
            None => {
                let counter = self.requests.with_label_values(&[upstream, status.as_str()]);
                r.by_status.push((code, counter.clone()));
                counter
            }
        };
        (counter, r.duration.clone())
    }

    pub fn error(&self, kind: &str) {
        self.errors.with_label_values(&[kind]).inc();
    }
}

/// `rampart_proxy_upstream_connections_active{upstream}` (requests in flight to the pool) and
/// `rampart_proxy_upstream_health_status{upstream,server}` (1 when the server takes traffic, 0 when it is
/// disabled, failing active checks or behind an open circuit breaker), read from the live servers at scrape
/// time. Server labels are the configured `host:port`, so their number is bounded by the configuration.
pub struct UpstreamCollector {
    live: std::sync::Arc<super::LiveRuntime>,
    scrape: std::sync::Mutex<()>,
    active: prometheus::IntGaugeVec,
    health: prometheus::IntGaugeVec,
}

impl UpstreamCollector {
    pub fn new(live: std::sync::Arc<super::LiveRuntime>) -> prometheus::Result<Self> {
        Ok(Self {
            live,
            scrape: std::sync::Mutex::new(()),
            active: prometheus::IntGaugeVec::new(
                Opts::new(
                    "rampart_proxy_upstream_connections_active",
                    "Requests in flight to each upstream pool.",
                ),
                &["upstream"],
            )?,
            health: prometheus::IntGaugeVec::new(
                Opts::new(
                    "rampart_proxy_upstream_health_status",
                    "1 when the server takes traffic, 0 when disabled, unhealthy or circuit-open.",
                ),
                &["upstream", "server"],
            )?,
        })
    }
}

impl prometheus::core::Collector for UpstreamCollector {
    fn desc(&self) -> Vec<&prometheus::core::Desc> {
        let mut d = self.active.desc();
        d.extend(self.health.desc());
        d
    }

    fn collect(&self) -> Vec<prometheus::proto::MetricFamily> {
        use std::sync::atomic::Ordering;
        let _scrape = self.scrape.lock().unwrap_or_else(|p| p.into_inner());
        // Rebuilt on every scrape, so servers removed by a reload disappear.
        self.active.reset();
        self.health.reset();
        let rt = self.live.load();
        for pool in rt.upstreams.iter() {
            let in_flight: u64 = pool
                .servers
                .iter()
                .map(|s| u64::from(s.active.load(Ordering::Relaxed)))
                .sum();
            self.active
                .with_label_values(&[pool.name.as_str()])
                .set(i64::try_from(in_flight).unwrap_or(i64::MAX));
            for s in &pool.servers {
                let up = i64::from(matches!(s.status(), "healthy" | "half_open"));
                self.health
                    .with_label_values(&[pool.name.as_str(), s.id.as_str()])
                    .set(up);
            }
        }
        let mut out = self.active.collect();
        out.extend(self.health.collect());
        out
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a test reports failure by panicking
mod tests {
    use super::*;

    fn requests(registry: &Registry, upstream: &str, code: &str) -> u64 {
        registry
            .gather()
            .iter()
            .filter(|f| f.name() == "rampart_proxy_requests_total")
            .flat_map(|f| f.get_metric().iter())
            .filter(|m| {
                let labels: Vec<_> = m.get_label().iter().map(|l| (l.name(), l.value())).collect();
                labels.contains(&("upstream", upstream)) && labels.contains(&("status_code", code))
            })
            .map(|m| m.get_counter().get_value() as u64)
            .sum()
    }

    /// Children cached per thread belong to the instance that resolved them: two instances on one thread
    /// (as in tests, or across a restart of the metrics) never count into each other's registry.
    #[test]
    fn each_instance_counts_into_its_own_registry_through_the_thread_cache() {
        let (ra, rb) = (Registry::new(), Registry::new());
        let (a, b) = (ProxyMetrics::new(&ra).unwrap(), ProxyMetrics::new(&rb).unwrap());
        for _ in 0..3 {
            a.observe("app", StatusCode::OK, Duration::from_millis(1));
        }
        b.observe("app", StatusCode::OK, Duration::from_millis(1));
        a.observe("app", StatusCode::NOT_FOUND, Duration::from_millis(1));
        a.observe("other", StatusCode::OK, Duration::from_millis(1));
        assert_eq!(requests(&ra, "app", "200"), 3);
        assert_eq!(requests(&rb, "app", "200"), 1);
        assert_eq!(requests(&ra, "app", "404"), 1);
        assert_eq!(requests(&ra, "other", "200"), 1);
        assert_eq!(requests(&rb, "app", "404"), 0);
    }
}
