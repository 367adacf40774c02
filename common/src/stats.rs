//! Verdict counters: one per-CPU `Counter` per [`Reason`], so the XDP program never contends on a cache line
//! and userspace sums the CPUs when it exports `rampart_xdp_packets_total{action,reason}`.

/// Packets and bytes seen for one verdict reason on one CPU.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counter {
    pub packets: u64,
    pub bytes: u64,
}

#[cfg(feature = "user")]
// SAFETY: Counter is #[repr(C)], Copy, two u64 fields, no padding.
unsafe impl aya::Pod for Counter {}

/// Slot after the verdict reasons that counts drop events the ring buffer had no room for (`packets` only).
pub const EVENTS_LOST_SLOT: u32 = Reason::COUNT;
/// Length of the `STATS` array.
pub const STATS_LEN: u32 = Reason::COUNT + 1;

/// What the XDP program did with a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Pass,
    Drop,
}

impl Action {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pass => "pass",
            Self::Drop => "drop",
        }
    }
}

/// Why the XDP program reached its verdict; the index into the `STATS` array.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// Parsed, matched nothing: passed to the kernel stack.
    NoMatch = 0,
    /// Not IPv4/IPv6, or too short or malformed to read the source: passed without inspection.
    Unparsed = 1,
    /// Source on the allow list: passed, every other check skipped.
    AllowList = 2,
    /// Source on the deny list: dropped.
    DenyList = 3,
    /// Source in a country the geo policy refuses: dropped.
    Geo = 4,
    /// Source over its packet rate: dropped.
    RateLimit = 5,
}

impl Reason {
    /// Every reason, in index order.
    pub const ALL: [Reason; 6] = [
        Reason::NoMatch,
        Reason::Unparsed,
        Reason::AllowList,
        Reason::DenyList,
        Reason::Geo,
        Reason::RateLimit,
    ];
    pub const COUNT: u32 = Self::ALL.len() as u32;

    pub const fn action(self) -> Action {
        match self {
            Self::NoMatch | Self::Unparsed | Self::AllowList => Action::Pass,
            Self::DenyList | Self::Geo | Self::RateLimit => Action::Drop,
        }
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::NoMatch => "no_match",
            Self::Unparsed => "unparsed",
            Self::AllowList => "allow_list",
            Self::DenyList => "deny_list",
            Self::Geo => "geo",
            Self::RateLimit => "rate_limit",
        }
    }

    pub const fn from_u8(code: u8) -> Option<Self> {
        match code {
            0 => Some(Self::NoMatch),
            1 => Some(Self::Unparsed),
            2 => Some(Self::AllowList),
            3 => Some(Self::DenyList),
            4 => Some(Self::Geo),
            5 => Some(Self::RateLimit),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_listed_in_index_order_and_round_trip() {
        for (i, r) in Reason::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i);
            assert_eq!(Reason::from_u8(i as u8), Some(*r));
        }
    }
}
