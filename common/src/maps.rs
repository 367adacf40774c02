//! Map names, sizes and entry types shared by the XDP program and the daemon.

/// Names of the maps in the XDP object. The eBPF crate declares statics with exactly these names (the kernel
/// keeps at most 15 characters of a map name, so keep them short); the daemon looks maps up by them, pins
/// them under these names, and checks each pinned map's definition against [`crate::maps::definitions`].
pub mod names {
    /// IPv4 source allow list: `LpmTrie<[u8; 4], ListEntry>`. A live hit passes and skips every other check.
    pub const ALLOW_V4: &str = "ALLOW_V4";
    /// IPv6 source allow list: `LpmTrie<[u8; 16], ListEntry>`.
    pub const ALLOW_V6: &str = "ALLOW_V6";
    /// IPv4 source deny list: `LpmTrie<[u8; 4], ListEntry>`.
    pub const DENY_V4: &str = "DENY_V4";
    /// IPv6 source deny list: `LpmTrie<[u8; 16], ListEntry>`.
    pub const DENY_V6: &str = "DENY_V6";
    /// IPv4 prefix → country index: `LpmTrie<[u8; 4], u16>`.
    pub const GEO_V4: &str = "GEO_V4";
    /// IPv6 prefix → country index: `LpmTrie<[u8; 16], u16>`.
    pub const GEO_V6: &str = "GEO_V6";
    /// Country index → [`crate::geo::PASS`] or [`crate::geo::DROP`]: `Array<u8>`.
    pub const GEO_POLICY: &str = "GEO_POLICY";
    /// Per-source rate state (GCRA theoretical arrival time, ns): `LruHashMap<[u8; 16], u64>`.
    pub const RATE: &str = "RATE";
    /// Per-CPU packet and byte counters: `PerCpuArray<Counter>` indexed by [`crate::Reason`], plus
    /// [`crate::stats::EVENTS_LOST_SLOT`].
    pub const STATS: &str = "STATS";
    /// Sampled drop events: `RingBuf` of [`crate::DropEvent`].
    pub const EVENTS: &str = "EVENTS";
    /// Every map above.
    pub const ALL: &[&str] = &[
        ALLOW_V4, ALLOW_V6, DENY_V4, DENY_V6, GEO_V4, GEO_V6, GEO_POLICY, RATE, STATS, EVENTS,
    ];
}

/// Maximum number of prefixes in each deny trie. An LPM trie is allocated lazily (`BPF_F_NO_PREALLOC`), so a
/// large limit costs memory only for entries actually present.
pub const DENY_MAX_ENTRIES: u32 = 262_144;

/// Maximum number of prefixes in each allow trie.
pub const ALLOW_MAX_ENTRIES: u32 = 16_384;

/// Maximum number of prefixes in each geo trie. A full country database has ~500k IPv4 and ~300k IPv6
/// networks; only the countries a policy needs are loaded.
pub const GEO_MAX_ENTRIES: u32 = 1_048_576;

/// Default number of sources tracked by the rate limiter (least recently seen evicted first); the daemon
/// overrides it from `xdp.rate_limit.max_sources` at load time.
pub const RATE_DEFAULT_MAX_ENTRIES: u32 = 262_144;

/// Ring buffer size for drop events (a power of two, a multiple of the page size).
pub const EVENTS_BYTES: u32 = 256 * 1024;

/// Name of the XDP program function in the object.
pub const PROGRAM_NAME: &str = "rampart_xdp";

/// Value of an allow- or deny-list entry.
///
/// `expires_at_ns` is on the kernel's monotonic clock (`bpf_ktime_get_ns`, which is `CLOCK_MONOTONIC`);
/// 0 means the entry never expires. An expired entry is ignored by the XDP program until userspace sweeps it.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ListEntry {
    pub expires_at_ns: u64,
    /// An [`EntrySource`] as `u32`; unknown codes are still enforced.
    pub source: u32,
    /// Explicit padding so the layout has no uninitialised bytes (the kernel copies all 16).
    pub _pad: u32,
}

impl ListEntry {
    pub const fn new(source: EntrySource, expires_at_ns: u64) -> Self {
        Self {
            expires_at_ns,
            source: source as u32,
            _pad: 0,
        }
    }

    /// Whether the entry still applies at monotonic time `now_ns`.
    #[inline(always)]
    pub const fn is_live(&self, now_ns: u64) -> bool {
        self.expires_at_ns == 0 || now_ns < self.expires_at_ns
    }
}

/// Who put an address on a list; carried in the map value so drop events and listings can say why.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum EntrySource {
    /// Added through the admin API or CLI.
    Admin = 1,
    /// Listed in the configuration file (`xdp.allow`/`xdp.deny`).
    Config = 2,
    /// Added automatically by L7 offence escalation.
    AutoBan = 3,
    /// Imported from a threat-intelligence feed.
    ThreatFeed = 4,
}

impl EntrySource {
    pub const fn from_u32(code: u32) -> Option<Self> {
        match code {
            1 => Some(Self::Admin),
            2 => Some(Self::Config),
            3 => Some(Self::AutoBan),
            4 => Some(Self::ThreatFeed),
            _ => None,
        }
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Config => "config",
            Self::AutoBan => "auto_ban",
            Self::ThreatFeed => "threat_feed",
        }
    }
}

#[cfg(feature = "user")]
// SAFETY: ListEntry is #[repr(C)], Copy, made only of integers, and has no implicit padding.
unsafe impl aya::Pod for ListEntry {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_entry_has_no_implicit_padding() {
        assert_eq!(core::mem::size_of::<ListEntry>(), 16);
    }

    #[test]
    fn zero_expiry_is_permanent_and_past_expiry_is_dead() {
        let permanent = ListEntry::new(EntrySource::Admin, 0);
        assert!(permanent.is_live(u64::MAX));
        let timed = ListEntry::new(EntrySource::Admin, 100);
        assert!(timed.is_live(99));
        assert!(!timed.is_live(100));
    }

    #[test]
    fn reason_codes_round_trip() {
        for r in [
            EntrySource::Admin,
            EntrySource::Config,
            EntrySource::AutoBan,
            EntrySource::ThreatFeed,
        ] {
            assert_eq!(EntrySource::from_u32(r as u32), Some(r));
        }
        assert_eq!(EntrySource::from_u32(0), None);
    }
}
