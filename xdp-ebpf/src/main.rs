//! Rampart's XDP program: the per-packet verdict in the NIC driver path.
//!
//! The verdict pipeline, in order (see ARCHITECTURE.md): parse Ethernet (up to two VLAN tags) and the IP
//! header → source on the allow list with a live entry → PASS → source on the deny list with a live entry →
//! DROP → PASS. Every verdict is counted per CPU by reason.
//!
//! This program never makes a decision that needs configuration parsing: it only looks up maps that the
//! daemon fills. Anything it cannot parse passes untouched, because dropping what we do not understand would
//! make a bug in this parser an outage.
#![no_std]
#![no_main]

mod maps;
mod parse;

use aya_ebpf::{
    bindings::xdp_action,
    helpers::bpf_ktime_get_ns,
    macros::xdp,
    maps::{lpm_trie::Key, LpmTrie},
    programs::XdpContext,
};
use rampart_common::{Action, ListEntry, Reason};

use crate::parse::Source;

#[xdp]
pub fn rampart_xdp(ctx: XdpContext) -> u32 {
    let bytes = (ctx.data_end() - ctx.data()) as u64;
    let reason = verdict(&ctx);
    maps::count(reason, bytes);
    match reason.action() {
        Action::Pass => xdp_action::XDP_PASS,
        Action::Drop => xdp_action::XDP_DROP,
    }
}

#[inline(always)]
fn verdict(ctx: &XdpContext) -> Reason {
    match parse::source(ctx) {
        None => Reason::NotIp,
        Some(Source::V4(addr)) => classify(&maps::ALLOW_V4, &maps::DENY_V4, &Key::new(32, addr)),
        Some(Source::V6(addr)) => classify(&maps::ALLOW_V6, &maps::DENY_V6, &Key::new(128, addr)),
    }
}

/// Allow beats deny; the deny trie is consulted only when the allow trie has no live entry.
#[inline(always)]
fn classify<K>(allow: &LpmTrie<K, ListEntry>, deny: &LpmTrie<K, ListEntry>, key: &Key<K>) -> Reason {
    if allow.get(key).is_some_and(is_live) {
        return Reason::AllowList;
    }
    if deny.get(key).is_some_and(is_live) {
        return Reason::DenyList;
    }
    Reason::NoMatch
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
