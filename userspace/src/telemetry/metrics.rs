//! Prometheus metrics. Kernel counters are read from the per-CPU map at scrape time by [`XdpCollector`], so
//! there is no polling loop and a scrape always sees the kernel's current totals.

use std::sync::{Arc, Mutex};

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{Encoder, IntCounter, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder};
use tracing::warn;

use crate::xdp::XdpMaps;

pub struct Metrics {
    registry: Registry,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        match super::process::ProcessCollector::new() {
            // Registration fails only on duplicate names, which is a programming error caught by the tests.
            Ok(p) => {
                if let Err(e) = registry.register(Box::new(p)) {
                    warn!(error = %e, "registering process metrics failed");
                }
            }
            Err(e) => warn!(error = %e, "building process metrics failed"),
        }
        Self { registry }
    }

    /// Where other parts register their metrics.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Adds the kernel counters, read from the maps at every scrape.
    pub fn register_xdp(&self, xdp: Option<Arc<XdpMaps>>) {
        let registry = &self.registry;
        if let Some(maps) = xdp {
            // Registration fails only on duplicate names, which is a programming error caught by the tests.
            if let Err(e) = registry.register(Box::new(XdpCollector::new(maps))) {
                warn!(error = %e, "registering XDP metrics failed");
            }
        }
    }

    /// The registry in Prometheus text exposition format.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut buf) {
            warn!(error = %e, "encoding metrics failed");
        }
        String::from_utf8(buf).unwrap_or_default()
    }
}

/// `rampart_xdp_packets_total{action,reason}`, `rampart_xdp_bytes_total{action,reason}`,
/// `rampart_xdp_map_entries{map}` and `rampart_xdp_events_lost_total`.
struct XdpCollector {
    maps: Arc<XdpMaps>,
    /// Serialises scrapes: the vectors below are reset and refilled, which must not interleave.
    scrape: Mutex<()>,
    packets: IntCounterVec,
    bytes: IntCounterVec,
    entries: IntGaugeVec,
    lost: IntCounter,
}

impl XdpCollector {
    fn new(maps: Arc<XdpMaps>) -> Self {
        let vec = |name: &str, help: &str| {
            IntCounterVec::new(Opts::new(name, help), &["action", "reason"]).expect("metric names are valid")
        };
        Self {
            maps,
            scrape: Mutex::new(()),
            packets: vec(
                "rampart_xdp_packets_total",
                "Packets seen by the XDP program, by verdict and reason.",
            ),
            bytes: vec(
                "rampart_xdp_bytes_total",
                "Bytes seen by the XDP program, by verdict and reason.",
            ),
            entries: IntGaugeVec::new(
                Opts::new("rampart_xdp_map_entries", "Entries in each XDP map."),
                &["map"],
            )
            .expect("metric names are valid"),
            lost: IntCounter::new(
                "rampart_xdp_events_lost_total",
                "Drop events not reported because the ring buffer was full.",
            )
            .expect("metric names are valid"),
        }
    }
}

impl Collector for XdpCollector {
    fn desc(&self) -> Vec<&Desc> {
        let mut d = self.packets.desc();
        d.extend(self.bytes.desc());
        d.extend(self.entries.desc());
        d.extend(self.lost.desc());
        d
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let _scrape = self.scrape.lock().unwrap_or_else(|p| p.into_inner());
        let totals = match self.maps.stats.totals() {
            Ok(t) => t,
            Err(e) => {
                warn!(error = %e, "reading XDP counters failed");
                return Vec::new();
            }
        };
        // The vectors are scratch space rebuilt on every scrape from the kernel's absolute totals.
        self.packets.reset();
        self.bytes.reset();
        for (reason, c) in totals {
            let labels = [reason.action().as_str(), reason.as_str()];
            self.packets.with_label_values(&labels).inc_by(c.packets);
            self.bytes.with_label_values(&labels).inc_by(c.bytes);
        }
        self.entries.reset();
        for (map, n) in self.maps.entry_counts() {
            self.entries
                .with_label_values(&[map])
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
        self.lost.reset();
        if let Ok(n) = self.maps.stats.events_lost() {
            self.lost.inc_by(n);
        }
        let mut out = self.packets.collect();
        out.extend(self.bytes.collect());
        out.extend(self.entries.collect());
        out.extend(self.lost.collect());
        out
    }
}
