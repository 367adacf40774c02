//! The maps this program reads and the counter it writes. Names must match `rampart_common::maps::names`
//! (the static's identifier is the map name in the object).

use aya_ebpf::{
    macros::map,
    maps::{LpmTrie, PerCpuArray},
};
use rampart_common::{
    maps::{ALLOW_MAX_ENTRIES, DENY_MAX_ENTRIES},
    Counter, ListEntry, Reason,
};

#[map]
pub static ALLOW_V4: LpmTrie<[u8; 4], ListEntry> = LpmTrie::with_max_entries(ALLOW_MAX_ENTRIES, 0);

#[map]
pub static ALLOW_V6: LpmTrie<[u8; 16], ListEntry> = LpmTrie::with_max_entries(ALLOW_MAX_ENTRIES, 0);

#[map]
pub static DENY_V4: LpmTrie<[u8; 4], ListEntry> = LpmTrie::with_max_entries(DENY_MAX_ENTRIES, 0);

#[map]
pub static DENY_V6: LpmTrie<[u8; 16], ListEntry> = LpmTrie::with_max_entries(DENY_MAX_ENTRIES, 0);

#[map]
pub static STATS: PerCpuArray<Counter> = PerCpuArray::with_max_entries(Reason::COUNT, 0);

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
