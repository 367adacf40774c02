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
    /// Not IPv4/IPv6, or truncated: passed without inspection.
    NotIp = 1,
    /// Source on the allow list: passed, every other check skipped.
    AllowList = 2,
    /// Source on the deny list: dropped.
    DenyList = 3,
}

impl Reason {
    /// Every reason, in index order; the `STATS` map has exactly this many slots.
    pub const ALL: [Reason; 4] = [Reason::NoMatch, Reason::NotIp, Reason::AllowList, Reason::DenyList];
    pub const COUNT: u32 = Self::ALL.len() as u32;

    pub const fn action(self) -> Action {
        match self {
            Self::NoMatch | Self::NotIp | Self::AllowList => Action::Pass,
            Self::DenyList => Action::Drop,
        }
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::NoMatch => "no_match",
            Self::NotIp => "not_ip",
            Self::AllowList => "allow_list",
            Self::DenyList => "deny_list",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_listed_in_index_order() {
        for (i, r) in Reason::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i);
        }
    }
}
