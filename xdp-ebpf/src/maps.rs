//! The maps this program reads and writes. Names must match `rampart_common::maps::names` (the static's
//! identifier is the map name in the object). Every map is pinned by name, in the directory the daemon gives
//! the loader, so lists, rate state and counters outlive a daemon restart.

use aya_ebpf::{
    macros::map,
    maps::{Array, LpmTrie, LruHashMap, PerCpuArray, RingBuf},
};
use rampart_common::{
    geo,
    maps::{ALLOW_MAX_ENTRIES, DENY_MAX_ENTRIES, EVENTS_BYTES, GEO_MAX_ENTRIES, RATE_DEFAULT_MAX_ENTRIES},
    stats::{EVENTS_LOST_SLOT, STATS_LEN},
    Counter, ListEntry, Reason,
};

#[map]
pub static ALLOW_V4: LpmTrie<[u8; 4], ListEntry> = LpmTrie::pinned(ALLOW_MAX_ENTRIES, 0);

#[map]
pub static ALLOW_V6: LpmTrie<[u8; 16], ListEntry> = LpmTrie::pinned(ALLOW_MAX_ENTRIES, 0);

#[map]
pub static DENY_V4: LpmTrie<[u8; 4], ListEntry> = LpmTrie::pinned(DENY_MAX_ENTRIES, 0);

#[map]
pub static DENY_V6: LpmTrie<[u8; 16], ListEntry> = LpmTrie::pinned(DENY_MAX_ENTRIES, 0);

#[map]
pub static GEO_V4: LpmTrie<[u8; 4], u16> = LpmTrie::pinned(GEO_MAX_ENTRIES, 0);

#[map]
pub static GEO_V6: LpmTrie<[u8; 16], u16> = LpmTrie::pinned(GEO_MAX_ENTRIES, 0);

#[map]
pub static GEO_POLICY: Array<u8> = Array::pinned(geo::POLICY_LEN, 0);

/// Key: IPv4-mapped address, or the IPv6 source masked to its prefix. Value: GCRA theoretical arrival time.
#[map]
pub static RATE: LruHashMap<[u8; 16], u64> = LruHashMap::pinned(RATE_DEFAULT_MAX_ENTRIES, 0);

#[map]
pub static STATS: PerCpuArray<Counter> = PerCpuArray::pinned(STATS_LEN, 0);

#[map]
pub static EVENTS: RingBuf = RingBuf::pinned(EVENTS_BYTES, 0);

/// Adds one packet of `bytes` to this CPU's counter for `reason`. Per-CPU slots need no atomics.
#[inline(always)]
pub fn count(reason: Reason, bytes: u64) {
    if let Some(counter) = STATS.get_ptr_mut(reason as u32) {
        // SAFETY: the pointer is this CPU's slot of a per-CPU array, valid for the program's run and not shared.
        unsafe {
            (*counter).packets += 1;
            (*counter).bytes += bytes;
        }
    }
}

/// Counts a drop event the ring buffer had no room for.
#[inline(always)]
pub fn count_lost_event() {
    if let Some(counter) = STATS.get_ptr_mut(EVENTS_LOST_SLOT) {
        // SAFETY: as in `count`.
        unsafe { (*counter).packets += 1 };
    }
}
