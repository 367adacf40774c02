//! Drop events: what the XDP program tells userspace about a (sampled) drop through the `EVENTS` ring buffer.

/// One dropped packet. 40 bytes, no implicit padding.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DropEvent {
    /// `bpf_ktime_get_ns` at the drop.
    pub timestamp_ns: u64,
    /// Source address; IPv4 in the first four bytes.
    pub addr: [u8; 16],
    /// Interface the packet arrived on.
    pub ifindex: u32,
    /// Bytes of the frame.
    pub packet_len: u32,
    /// Country index for geo drops, [`crate::geo::UNKNOWN`] otherwise.
    pub country: u16,
    /// A [`crate::Reason`] as `u8`.
    pub reason: u8,
    /// 4 or 6.
    pub family: u8,
    /// IP protocol of the payload after IPv6 extension headers (6 TCP, 17 UDP, ...); 255 when unknown.
    pub l4_proto: u8,
    pub _pad: [u8; 3],
}

#[cfg(feature = "user")]
// SAFETY: #[repr(C)], Copy, integers and byte arrays only, explicitly padded to 40 bytes.
unsafe impl aya::Pod for DropEvent {}

#[cfg(test)]
mod tests {
    #[test]
    fn drop_event_is_40_bytes() {
        assert_eq!(core::mem::size_of::<super::DropEvent>(), 40);
    }
}
