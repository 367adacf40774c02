//! Packet parsing: Ethernet with up to two VLAN tags (802.1Q, 802.1ad), then the IPv4 or IPv6 source address.
//! Every read is bounds-checked against `data_end`, as the verifier requires; a short packet yields `None`.

use aya_ebpf::programs::XdpContext;

const ETH_HLEN: usize = 14;
const VLAN_HLEN: usize = 4;
const ETH_P_IPV4: u16 = 0x0800;
const ETH_P_IPV6: u16 = 0x86dd;
const ETH_P_8021Q: u16 = 0x8100;
const ETH_P_8021AD: u16 = 0x88a8;

/// The source address of a parsed IP packet.
pub enum Source {
    V4([u8; 4]),
    V6([u8; 16]),
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
pub fn source(ctx: &XdpContext) -> Option<Source> {
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
            Some(Source::V4(src))
        }
        ETH_P_IPV6 => {
            let ip: *const Ipv6Header = ptr_at(ctx, offset)?;
            // SAFETY: as above, for the 40-byte IPv6 header.
            let (version, src) = unsafe { ((*ip).version_class_flow[0], (*ip).src) };
            if version >> 4 != 6 {
                return None;
            }
            Some(Source::V6(src))
        }
        _ => None,
    }
}
