//! The program's load-time settings, computed from configuration and written into its `.rodata` before load
//! (see `rampart_common::settings` for why they are globals and not a map).

use aya::EbpfLoader;
use rampart_common::settings::{self as names, v6_mask};

use crate::config::Config;

/// Rate-limit parameters in the form the kernel uses (GCRA).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateSettings {
    pub interval_ns: u64,
    pub tau_ns: u64,
    pub v6_mask: [u8; 16],
}

impl RateSettings {
    /// `packets_per_second` ≥ 1 sustained, `burst` ≥ 1 packets at once, IPv6 sources grouped by `v6_prefix`.
    pub fn new(packets_per_second: u64, burst: u64, v6_prefix: u8) -> Self {
        let interval_ns = (1_000_000_000 / packets_per_second.max(1)).max(1);
        Self {
            interval_ns,
            tau_ns: interval_ns.saturating_mul(burst.max(1) - 1),
            v6_mask: v6_mask(v6_prefix),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// `None`: rate limiting off.
    pub rate: Option<RateSettings>,
    pub geo_enabled: bool,
    /// Threshold on a random u32: a drop emits an event when the random value is below it.
    pub event_sample: u32,
    /// Size of the rate limiter's LRU map.
    pub rate_max_sources: u32,
}

impl Settings {
    pub fn from_config(config: &Config) -> Self {
        let rl = &config.xdp.rate_limit;
        Self {
            rate: rl
                .enabled
                .then(|| RateSettings::new(rl.packets_per_second, rl.burst, rl.ipv6_prefix)),
            geo_enabled: config.waf.geo_blocking.enabled,
            event_sample: sample_threshold(config.xdp.drop_events.sample_rate.get()),
            rate_max_sources: rl.max_sources,
        }
    }

    /// Writes the settings into the loader; `self` must outlive the load.
    pub fn apply<'a>(&'a self, loader: &mut EbpfLoader<'a>, scratch: &'a SettingsScratch) {
        loader
            .override_global(names::RATE_INTERVAL_NS, &scratch.interval, true)
            .override_global(names::RATE_TAU_NS, &scratch.tau, true)
            .override_global(names::RATE_V6_MASK, &scratch.mask, true)
            .override_global(names::GEO_ENABLED, &scratch.geo, true)
            .override_global(names::EVENT_SAMPLE, &self.event_sample, true)
            .map_max_entries(rampart_common::maps::names::RATE, self.rate_max_sources);
    }

    /// The values in the exact types the globals have, kept alive for the loader's borrow.
    pub fn scratch(&self) -> SettingsScratch {
        let rate = self.rate.unwrap_or(RateSettings {
            interval_ns: 0,
            tau_ns: 0,
            v6_mask: v6_mask(64),
        });
        SettingsScratch {
            interval: rate.interval_ns,
            tau: rate.tau_ns,
            mask: rate.v6_mask,
            geo: u8::from(self.geo_enabled),
        }
    }
}

pub struct SettingsScratch {
    interval: u64,
    tau: u64,
    mask: [u8; 16],
    geo: u8,
}

/// A sampling fraction (0.0–1.0) as a threshold on a uniform random u32.
pub fn sample_threshold(fraction: f64) -> u32 {
    if fraction >= 1.0 {
        u32::MAX
    } else if fraction <= 0.0 {
        0
    } else {
        // Truncation is intended: the threshold is at most one step of 2^-32 below the exact fraction.
        (fraction * f64::from(u32::MAX)) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gcra_parameters_admit_exactly_burst_packets_at_once() {
        let r = RateSettings::new(100, 5, 64);
        assert_eq!(r.interval_ns, 10_000_000);
        // Packet k (1-based) at the same instant passes while (k-1)*interval <= tau.
        assert_eq!(r.tau_ns / r.interval_ns + 1, 5);
        assert_eq!(RateSettings::new(100, 1, 64).tau_ns, 0);
    }

    #[test]
    fn sample_thresholds() {
        assert_eq!(sample_threshold(0.0), 0);
        assert_eq!(sample_threshold(1.0), u32::MAX);
        assert!((f64::from(sample_threshold(0.01)) / f64::from(u32::MAX) - 0.01).abs() < 1e-9);
    }
}
