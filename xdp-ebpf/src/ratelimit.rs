//! Per-source packet rate limit: GCRA (the "virtual scheduling" form of a token bucket) in a shared LRU hash.
//!
//! Each source has a theoretical arrival time `tat`. A packet is admitted when `tat <= now + tau`, and then
//! moves `tat` one emission interval on. A source over its limit therefore causes no map write at all, so a
//! flood costs one lookup per packet. Up to `burst` packets pass at once; the sustained rate is 1/interval.
//! The map is shared by all CPUs (an update is one atomic add), so the limit is per source, not per CPU.

use core::intrinsics::{atomic_xadd, AtomicOrdering};

use aya_ebpf::{bindings::BPF_NOEXIST, helpers::bpf_ktime_get_ns};

use crate::{maps::RATE, settings};

/// IPv4 sources are keyed by their IPv4-mapped IPv6 form, so one map serves both families.
#[inline(always)]
pub fn key_v4(addr: &[u8; 4]) -> [u8; 16] {
    [
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, addr[0], addr[1], addr[2], addr[3],
    ]
}

/// IPv6 sources are keyed by their prefix (default /64): one host owns a whole /64.
#[inline(always)]
pub fn key_v6(addr: &[u8; 16]) -> [u8; 16] {
    let mask = settings::rate_v6_mask();
    let mut key = [0u8; 16];
    for i in 0..16 {
        key[i] = addr[i] & mask[i];
    }
    key
}

/// Whether the source with `key` may send this packet. Always true when rate limiting is off.
#[inline(always)]
pub fn admit(key: &[u8; 16]) -> bool {
    let interval = settings::rate_interval_ns();
    if interval == 0 {
        return true;
    }
    let tau = settings::rate_tau_ns();
    let now = unsafe { bpf_ktime_get_ns() };
    match RATE.get_ptr_mut(key) {
        None => {
            // A race with another CPU inserting the same key loses one packet's accounting, never a verdict.
            let _ = RATE.insert(key, now + interval, BPF_NOEXIST as u64);
            true
        }
        Some(ptr) => {
            // SAFETY: the pointer is to a live map value of this LRU hash, valid for this program run.
            let tat = unsafe { core::ptr::read_volatile(ptr) };
            if tat > now + tau {
                return false;
            }
            if tat < now {
                // Idle long enough to have a full burst again: restart the schedule from now.
                unsafe { core::ptr::write_volatile(ptr, now + interval) };
            } else {
                // SAFETY: the value is a naturally aligned u64. The BPF target has no atomics in `core`, so the
                // intrinsic is used directly; its result is unused, so it compiles to XADD (valid on every CPU
                // version the verifier accepts).
                unsafe { atomic_xadd::<u64, u64, { AtomicOrdering::Relaxed }>(ptr, interval) };
            }
            true
        }
    }
}
