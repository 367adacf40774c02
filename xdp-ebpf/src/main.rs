//! Rampart's XDP program: the per-packet verdict in the NIC driver path.
//!
//! The verdict pipeline, in order (see ARCHITECTURE.md):
//! parse Ethernet (up to two VLAN tags) and the IP header → allow list (live entry) → PASS →
//! deny list (live entry) → DROP → geo policy → DROP → per-source rate limit → DROP → PASS.
//! Every verdict is counted per CPU by reason; drops are sampled into the `EVENTS` ring buffer.
//!
//! This program never makes a decision that needs configuration parsing: it only looks up maps and load-time
//! settings that the daemon fills. Anything it cannot parse passes untouched, because dropping what we do not
//! understand would make a bug in this parser an outage.
#![no_std]
#![no_main]
// The BPF target has no atomics in `core`; the rate limiter needs the atomic-add intrinsic.
#![allow(internal_features)]
#![feature(core_intrinsics)]

mod events;
mod maps;
mod parse;
mod ratelimit;
mod settings;

use aya_ebpf::{
    bindings::xdp_action,
    helpers::bpf_ktime_get_ns,
    macros::xdp,
    maps::{lpm_trie::Key, LpmTrie},
    programs::XdpContext,
};
use rampart_common::{geo, Action, ListEntry, Reason};

use crate::parse::{Packet, Source};

#[xdp]
pub fn rampart_xdp(ctx: XdpContext) -> u32 {
    let bytes = (ctx.data_end() - ctx.data()) as u64;
    let reason = match parse::packet(&ctx) {
        None => Reason::Unparsed,
        Some(packet) => {
            let (reason, country) = verdict(&packet);
            if reason.action() == Action::Drop {
                events::maybe_emit(&ctx, &packet, reason, country, bytes);
            }
            reason
        }
    };
    maps::count(reason, bytes);
    match reason.action() {
        Action::Pass => xdp_action::XDP_PASS,
        Action::Drop => xdp_action::XDP_DROP,
    }
}

/// The verdict for a parsed packet, and the country index when the geo stage decided it.
#[inline(always)]
fn verdict(packet: &Packet) -> (Reason, u16) {
    match packet.src {
        Source::V4(addr) => judge(
            &maps::ALLOW_V4,
            &maps::DENY_V4,
            &maps::GEO_V4,
            &Key::new(32, addr),
            || ratelimit::key_v4(&addr),
        ),
        Source::V6(addr) => judge(
            &maps::ALLOW_V6,
            &maps::DENY_V6,
            &maps::GEO_V6,
            &Key::new(128, addr),
            || ratelimit::key_v6(&addr),
        ),
    }
}

/// The pipeline for one address family; `rate_key` is computed only when the rate stage is reached.
#[inline(always)]
fn judge<K>(
    allow: &LpmTrie<K, ListEntry>,
    deny: &LpmTrie<K, ListEntry>,
    geo_trie: &LpmTrie<K, u16>,
    key: &Key<K>,
    rate_key: impl FnOnce() -> [u8; 16],
) -> (Reason, u16) {
    if let Some(reason) = lists(allow, deny, key) {
        return (reason, geo::UNKNOWN);
    }
    if let Some(country) = geo_drop(geo_trie, key) {
        return (Reason::Geo, country);
    }
    if !ratelimit::admit(&rate_key()) {
        return (Reason::RateLimit, geo::UNKNOWN);
    }
    (Reason::NoMatch, geo::UNKNOWN)
}

/// Allow beats deny; the deny trie is consulted only when the allow trie has no live entry. `None` means
/// neither list decided.
#[inline(always)]
fn lists<K>(allow: &LpmTrie<K, ListEntry>, deny: &LpmTrie<K, ListEntry>, key: &Key<K>) -> Option<Reason> {
    if allow.get(key).is_some_and(is_live) {
        return Some(Reason::AllowList);
    }
    if deny.get(key).is_some_and(is_live) {
        return Some(Reason::DenyList);
    }
    None
}

/// The country index if geo policy drops this source. Addresses no loaded prefix covers take the `UNKNOWN`
/// slot's policy (drop in allow-only mode, pass otherwise).
#[inline(always)]
fn geo_drop<K>(trie: &LpmTrie<K, u16>, key: &Key<K>) -> Option<u16> {
    if !settings::geo_enabled() {
        return None;
    }
    let country = trie.get(key).copied().unwrap_or(geo::UNKNOWN);
    match maps::GEO_POLICY.get(u32::from(country)) {
        Some(&geo::DROP) => Some(country),
        _ => None,
    }
}

/// The clock is read only for an entry that can expire, so permanent entries cost no helper call.
#[inline(always)]
fn is_live(entry: &ListEntry) -> bool {
    entry.expires_at_ns == 0 || entry.is_live(unsafe { bpf_ktime_get_ns() })
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    // The verifier rejects any reachable panic path, so this is never executed at runtime.
    loop {}
}

/// GPL-compatible licence string; the kernel refuses some helpers to programs without one.
#[link_section = "license"]
#[no_mangle]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
