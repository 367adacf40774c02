//! Proxy metrics: requests by upstream and status, latency by upstream, and errors by kind. Labels are bounded
//! (upstream names come from configuration, status codes are a small set): no paths or addresses.
//!
//! Resolving a labelled child hashes the label values and takes a lock, which on the hot path costs more than
//! the increment itself; children are therefore resolved once per (upstream, status) and kept, in short lists
//! scanned linearly (upstreams and status codes seen are few, and hashing them cost more than the scan).

use std::sync::RwLock;
use std::time::Duration;

use http::StatusCode;
use prometheus::{Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts, Registry};

pub struct ProxyMetrics {
    /// The WAF phase's metrics.
    pub waf: super::waf_phase::WafMetrics,
    requests: IntCounterVec,
    duration: HistogramVec,
    errors: IntCounterVec,
    resolved: RwLock<Vec<(Box<str>, Resolved)>>,
}

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
            requests,
            duration,
            errors,
            resolved: RwLock::new(Vec::new()),
        })
    }

    pub fn observe(&self, upstream: &str, status: StatusCode, took: Duration) {
        let code = status.as_u16();
        {
            let resolved = self.resolved.read().unwrap_or_else(|p| p.into_inner());
            if let Some((_, r)) = resolved.iter().find(|(name, _)| &**name == upstream)
                && let Some(counter) = r.by_status.iter().find(|(c, _)| *c == code).map(|(_, counter)| counter)
            {
                counter.inc();
                r.duration.observe(took.as_secs_f64());
                return;
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
            Some(i) => &r.by_status[i].1,
            None => {
                r.by_status
                    .push((code, self.requests.with_label_values(&[upstream, status.as_str()])));
                &r.by_status[r.by_status.len() - 1].1
            }
        };
        counter.inc();
        r.duration.observe(took.as_secs_f64());
    }

    pub fn error(&self, kind: &str) {
        self.errors.with_label_values(&[kind]).inc();
    }
}
