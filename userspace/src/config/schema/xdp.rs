//! `xdp`: the kernel fast path. Userspace compiles these settings into the program's load-time settings and
//! BPF map entries. Geo policy comes from `waf.geo_blocking` (the XDP program is where it is enforced).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::config::types::{Cidr, Fraction};

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct XdpConfig {
    /// Load the XDP program. Default true. When false (or when XDP cannot be loaded), the allow and deny lists
    /// are enforced at L7 instead and `/health` reports `degraded: xdp`.
    pub enabled: bool,
    /// Interfaces to attach to, by name. Default none (the program is loaded, lists are kept, nothing is
    /// attached).
    pub interfaces: Vec<String>,
    /// How to attach: `native` (in the driver; fails if unsupported), `generic` (in the kernel stack, works
    /// everywhere, slower), or `auto` (native, falling back to generic with a warning). Default `auto`.
    pub attach_mode: AttachMode,
    /// Sources that always pass, skipping every other check (CIDR or address). Default none.
    pub allow: Vec<Cidr>,
    /// Sources dropped in the driver (CIDR or address), permanently, with reason `config`. Default none.
    pub deny: Vec<Cidr>,
    /// bpffs directory for pinned maps and links. Default `/sys/fs/bpf/rampart`.
    pub pin_path: PathBuf,
    /// Leave the program attached (on its pinned link) when the daemon exits, so the interface stays protected
    /// while the daemon restarts; the next start takes the link over atomically. Default false.
    pub keep_attached_on_exit: bool,
    /// The durable record of allow/deny entries (SQLite), from which the maps are rebuilt after a reboot.
    /// Default `/var/lib/rampart/access-lists.db`.
    pub record_file: PathBuf,
    pub rate_limit: XdpRateLimitConfig,
    pub drop_events: DropEventsConfig,
}

impl Default for XdpConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            interfaces: Vec::new(),
            attach_mode: AttachMode::Auto,
            allow: Vec::new(),
            deny: Vec::new(),
            pin_path: "/sys/fs/bpf/rampart".into(),
            keep_attached_on_exit: false,
            record_file: "/var/lib/rampart/access-lists.db".into(),
            rate_limit: XdpRateLimitConfig::default(),
            drop_events: DropEventsConfig::default(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AttachMode {
    Native,
    Generic,
    Auto,
}

/// Per-source packet rate limit in the driver: a token bucket per source address.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct XdpRateLimitConfig {
    /// Default false.
    pub enabled: bool,
    /// Sustained packets per second allowed from one source. Default 10000.
    pub packets_per_second: u64,
    /// Packets one source may send at once above the sustained rate. Default 20000.
    pub burst: u64,
    /// IPv6 sources are counted per prefix of this length (a host usually owns a /64). Default 64.
    pub ipv6_prefix: u8,
    /// Sources tracked at once; the least recently seen are forgotten first. Default 262144.
    pub max_sources: u32,
}

impl Default for XdpRateLimitConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            packets_per_second: 10_000,
            burst: 20_000,
            ipv6_prefix: 64,
            max_sources: 262_144,
        }
    }
}

/// Security events for packets dropped in XDP.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DropEventsConfig {
    /// Fraction of drops reported as security events (0.0–1.0). Default 0.01.
    pub sample_rate: Fraction,
}

impl Default for DropEventsConfig {
    fn default() -> Self {
        Self {
            sample_rate: Fraction::new_const(0.01),
        }
    }
}
