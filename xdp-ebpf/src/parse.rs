//! Packet parsing: Ethernet with up to two VLAN tags (802.1Q, 802.1ad), then the IPv4 or IPv6 source address.
//! Every read is bounds-checked against `data_end`, as the verifier requires; a packet too short or malformed
//! to read its source yields `None` and passes. The IPv6 extension-header walk is only done for sampled drop
//! events (to name the payload protocol), never on the per-packet path.

use aya_ebpf::programs::XdpContext;

const ETH_HLEN: usize = 14;
const VLAN_HLEN: usize = 4;
const ETH_P_IPV4: u16 = 0x0800;
const ETH_P_IPV6: u16 = 0x86dd;
const ETH_P_8021Q: u16 = 0x8100;
const ETH_P_8021AD: u16 = 0x88a8;
const IPV6_HLEN: usize = 40;
/// Extension headers walked at most before giving up on naming the payload protocol.
const MAX_EXT_HEADERS: usize = 8;
const UNKNOWN_PROTO: u8 = 255;
/// Furthest offset at which an extension header is read.
const MAX_EXT_OFFSET: usize = 512;

/// The source address of a parsed IP packet.
#[derive(Clone, Copy)]
pub enum Source {
    V4([u8; 4]),
    V6([u8; 16]),
}

/// A parsed packet: its source and where its IP header starts.
pub struct Packet {
    pub src: Source,
    pub l3_offset: usize,
}

#[repr(C)]
struct Ipv4Header {
    version_ihl: u8,
    tos: u8,
    total_len: [u8; 2],
    id: [u8; 2],
    frag: [u8; 2],
    ttl: u8,
    protocol: u8,
    checksum: [u8; 2],
    src: [u8; 4],
    dst: [u8; 4],
}

#[repr(C)]
struct Ipv6Header {
    version_class_flow: [u8; 4],
    payload_len: [u8; 2],
    next_header: u8,
    hop_limit: u8,
    src: [u8; 16],
    dst: [u8; 16],
}

/// A pointer to a `T` at `offset` bytes into the packet, if the whole `T` lies before `data_end`.
#[inline(always)]
fn ptr_at<T>(ctx: &XdpContext, offset: usize) -> Option<*const T> {
    let start = ctx.data();
    if start + offset + core::mem::size_of::<T>() > ctx.data_end() {
        return None;
    }
    Some((start + offset) as *const T)
}

#[inline(always)]
fn u8_at(ctx: &XdpContext, offset: usize) -> Option<u8> {
    let p: *const u8 = ptr_at(ctx, offset)?;
    // SAFETY: ptr_at checked the byte is inside the packet.
    Some(unsafe { *p })
}

#[inline(always)]
fn be16_at(ctx: &XdpContext, offset: usize) -> Option<u16> {
    let p: *const [u8; 2] = ptr_at(ctx, offset)?;
    // SAFETY: ptr_at checked that both bytes are inside the packet.
    Some(u16::from_be_bytes(unsafe { *p }))
}

#[inline(always)]
fn is_vlan(ether_type: u16) -> bool {
    ether_type == ETH_P_8021Q || ether_type == ETH_P_8021AD
}

#[inline(always)]
pub fn packet(ctx: &XdpContext) -> Option<Packet> {
    let mut ether_type = be16_at(ctx, ETH_HLEN - 2)?;
    let mut offset = ETH_HLEN;
    // Unrolled by hand: two tags cover 802.1Q and QinQ, and the verifier prefers straight-line code.
    if is_vlan(ether_type) {
        ether_type = be16_at(ctx, offset + 2)?;
        offset += VLAN_HLEN;
    }
    if is_vlan(ether_type) {
        ether_type = be16_at(ctx, offset + 2)?;
        offset += VLAN_HLEN;
    }
    match ether_type {
        ETH_P_IPV4 => {
            let ip: *const Ipv4Header = ptr_at(ctx, offset)?;
            // SAFETY: ptr_at checked the whole fixed header is inside the packet.
            let (version_ihl, src) = unsafe { ((*ip).version_ihl, (*ip).src) };
            if version_ihl >> 4 != 4 || version_ihl & 0x0f < 5 {
                return None;
            }
            Some(Packet {
                src: Source::V4(src),
                l3_offset: offset,
            })
        }
        ETH_P_IPV6 => {
            let ip: *const Ipv6Header = ptr_at(ctx, offset)?;
            // SAFETY: as above, for the 40-byte IPv6 header.
            let (version, src) = unsafe { ((*ip).version_class_flow[0], (*ip).src) };
            if version >> 4 != 6 {
                return None;
            }
            Some(Packet {
                src: Source::V6(src),
                l3_offset: offset,
            })
        }
        _ => None,
    }
}

/// The payload protocol: IPv4's protocol field, or IPv6's next header after skipping extension headers
/// (hop-by-hop, routing, fragment, destination options, AH, mobility). 255 when the chain is too long or
/// truncated.
#[inline(always)]
pub fn l4_protocol(ctx: &XdpContext, packet: &Packet) -> u8 {
    match packet.src {
        Source::V4(_) => u8_at(ctx, packet.l3_offset + 9).unwrap_or(UNKNOWN_PROTO),
        Source::V6(_) => {
            let Some(mut next) = u8_at(ctx, packet.l3_offset + 6) else {
                return UNKNOWN_PROTO;
            };
            let mut offset = packet.l3_offset + IPV6_HLEN;
            for _ in 0..MAX_EXT_HEADERS {
                if !matches!(next, 0 | 43 | 44 | 51 | 60 | 135) {
                    return next;
                }
                // Bounded so the verifier can track the variable offset (real chains are far shorter).
                if offset > MAX_EXT_OFFSET {
                    return UNKNOWN_PROTO;
                }
                // Two bytes (next header, length) per read: with a variable offset the verifier can only prove
                // a read in bounds from a check of the form `p + N > end` with N > 1.
                let Some(hdr) = ptr_at::<[u8; 2]>(ctx, offset) else {
                    return UNKNOWN_PROTO;
                };
                // SAFETY: ptr_at checked both bytes are inside the packet.
                let [following, len] = unsafe { *hdr };
                offset += match next {
                    // Fragment header: fixed 8 bytes.
                    44 => 8,
                    // Authentication header: (len + 2) * 4 bytes.
                    51 => (len as usize + 2) * 4,
                    // Hop-by-hop, routing, destination options, mobility: (len + 1) * 8 bytes.
                    _ => (len as usize + 1) * 8,
                };
                next = following;
            }
            UNKNOWN_PROTO
        }
    }
}
