//! Sampled drop events to userspace through the `EVENTS` ring buffer. Emitting never waits: when the ring is
//! full the event is counted as lost and the packet is dropped all the same.

use aya_ebpf::{
    bindings::BPF_RB_NO_WAKEUP,
    helpers::{bpf_get_prandom_u32, bpf_ktime_get_ns},
    programs::XdpContext,
};
use rampart_common::{DropEvent, Reason};

use crate::{
    maps::{count_lost_event, EVENTS},
    parse::{self, Packet, Source},
    settings,
};

#[inline(always)]
pub fn maybe_emit(ctx: &XdpContext, packet: &Packet, reason: Reason, country: u16, bytes: u64) {
    let sample = settings::event_sample();
    if sample == 0 || unsafe { bpf_get_prandom_u32() } >= sample {
        return;
    }
    let Some(mut entry) = EVENTS.reserve::<DropEvent>(0) else {
        count_lost_event();
        return;
    };
    let (addr, family) = match packet.src {
        Source::V4(a) => ([a[0], a[1], a[2], a[3], 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], 4),
        Source::V6(a) => (a, 6),
    };
    entry.write(DropEvent {
        timestamp_ns: unsafe { bpf_ktime_get_ns() },
        addr,
        // SAFETY: ctx.ctx points to the xdp_md the kernel passed this program.
        ifindex: unsafe { (*ctx.ctx).ingress_ifindex },
        packet_len: bytes as u32,
        country,
        reason: reason as u8,
        family,
        l4_proto: parse::l4_protocol(ctx, packet),
        _pad: [0; 3],
    });
    // Userspace polls on a timer, so skip the wakeup: a flood of drops must not become a flood of wakeups.
    entry.submit(BPF_RB_NO_WAKEUP as u64);
}
