//! `rampart_ssl_certificate_expiry_seconds{domain}`: seconds until each served certificate expires (negative
//! once it has), for every name it is served for, file-based and ACME alike. Read from the served set at
//! scrape time, so it follows reloads and renewals without any bookkeeping.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{IntGaugeVec, Opts};

use super::ServedCert;

type Source = Box<dyn Fn() -> Vec<Arc<ServedCert>> + Send + Sync>;

pub struct ExpiryCollector {
    served: Source,
    /// Serialises scrapes: the gauge vector is reset and refilled, which must not interleave.
    scrape: Mutex<()>,
    gauge: IntGaugeVec,
}

impl ExpiryCollector {
    /// `served` lists the certificates in service, in the order the TLS listener prefers them.
    pub fn new(served: impl Fn() -> Vec<Arc<ServedCert>> + Send + Sync + 'static) -> Result<Self, prometheus::Error> {
        Ok(Self {
            served: Box::new(served),
            scrape: Mutex::new(()),
            gauge: IntGaugeVec::new(
                Opts::new(
                    "rampart_ssl_certificate_expiry_seconds",
                    "Seconds until the certificate served for this domain expires (negative once expired).",
                ),
                &["domain"],
            )?,
        })
    }
}

/// Each domain's remaining seconds; a domain served by two certificates reports the one preferred first.
pub fn expiry_by_domain(certs: &[Arc<ServedCert>], now: SystemTime) -> BTreeMap<String, i64> {
    let mut out = BTreeMap::new();
    for c in certs {
        for name in &c.info.names {
            out.entry(name.clone()).or_insert_with(|| c.info.seconds_left(now));
        }
    }
    out
}

impl Collector for ExpiryCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.gauge.desc()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let _scrape = self.scrape.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        self.gauge.reset();
        for (domain, left) in expiry_by_domain(&(self.served)(), SystemTime::now()) {
            self.gauge.with_label_values(&[domain.as_str()]).set(left);
        }
        self.gauge.collect()
    }
}
