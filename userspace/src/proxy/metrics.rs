//! Proxy metrics: requests by upstream and status, latency by upstream, and errors by kind. Labels are bounded
//! (upstream names come from configuration, status codes are a small set): no paths or addresses.

use std::time::Duration;

use http::StatusCode;
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};

pub struct ProxyMetrics {
    requests: IntCounterVec,
    duration: HistogramVec,
    errors: IntCounterVec,
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
            requests,
            duration,
            errors,
        })
    }

    pub fn observe(&self, upstream: &str, status: StatusCode, took: Duration) {
        self.requests.with_label_values(&[upstream, status.as_str()]).inc();
        self.duration.with_label_values(&[upstream]).observe(took.as_secs_f64());
    }

    pub fn error(&self, kind: &str) {
        self.errors.with_label_values(&[kind]).inc();
    }
}
