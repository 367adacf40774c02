//! Crafted frames for BPF_PROG_TEST_RUN: Ethernet (optionally VLAN-tagged) with IPv4 or IPv6 and a UDP
//! payload, plus the odd shapes the parser must survive (truncated, fragments, extension headers, non-IP).
//! Checksums are left zero: the XDP program never looks at them.

use std::net::{Ipv4Addr, Ipv6Addr};

const DST_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 1];
const SRC_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 2];

/// A frame under construction.
#[derive(Clone, Debug, Default)]
pub struct Frame {
    vlans: Vec<(u16, u16)>,
}

impl Frame {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a VLAN tag with TPID `tpid` (0x8100 for 802.1Q, 0x88a8 for the QinQ outer tag).
    pub fn vlan(mut self, tpid: u16, id: u16) -> Self {
        self.vlans.push((tpid, id));
        self
    }

    fn ethernet(&self, ether_type: u16) -> Vec<u8> {
        let mut f = Vec::with_capacity(128);
        f.extend_from_slice(&DST_MAC);
        f.extend_from_slice(&SRC_MAC);
        for (tpid, id) in &self.vlans {
            f.extend_from_slice(&tpid.to_be_bytes());
            f.extend_from_slice(&id.to_be_bytes());
        }
        f.extend_from_slice(&ether_type.to_be_bytes());
        f
    }

    /// IPv4/UDP from `src`; `frag` is the raw flags+offset field (0x2000 = more fragments, low 13 bits offset).
    pub fn ipv4(&self, src: Ipv4Addr, frag: u16) -> Vec<u8> {
        let mut f = self.ethernet(0x0800);
        let payload = udp(18);
        let total = 20 + payload.len() as u16;
        f.extend_from_slice(&[0x45, 0]);
        f.extend_from_slice(&total.to_be_bytes());
        f.extend_from_slice(&[0, 1]);
        f.extend_from_slice(&frag.to_be_bytes());
        f.extend_from_slice(&[64, 17, 0, 0]);
        f.extend_from_slice(&src.octets());
        f.extend_from_slice(&Ipv4Addr::new(192, 0, 2, 200).octets());
        f.extend_from_slice(&payload);
        f
    }

    /// IPv6/UDP from `src`, with `ext` extension headers (each `(type, total_len_bytes)`) before the UDP header.
    pub fn ipv6_with(&self, src: Ipv6Addr, ext: &[(u8, usize)]) -> Vec<u8> {
        let mut f = self.ethernet(0x86dd);
        let payload = udp(18);
        let ext_len: usize = ext.iter().map(|(_, l)| l).sum();
        f.extend_from_slice(&[0x60, 0, 0, 0]);
        f.extend_from_slice(&((ext_len + payload.len()) as u16).to_be_bytes());
        f.push(ext.first().map_or(17, |(t, _)| *t));
        f.push(64);
        f.extend_from_slice(&src.octets());
        f.extend_from_slice(&"2001:db8::200".parse::<Ipv6Addr>().expect("valid").octets());
        for (i, (kind, len)) in ext.iter().enumerate() {
            let next = ext.get(i + 1).map_or(17, |(t, _)| *t);
            let mut h = vec![0u8; *len];
            h[0] = next;
            h[1] = match kind {
                44 => 0,
                51 => (*len / 4 - 2) as u8,
                _ => (*len / 8 - 1) as u8,
            };
            f.extend_from_slice(&h);
        }
        f.extend_from_slice(&payload);
        f
    }

    pub fn ipv6(&self, src: Ipv6Addr) -> Vec<u8> {
        self.ipv6_with(src, &[])
    }

    /// An ARP request: not IP.
    pub fn arp(&self) -> Vec<u8> {
        let mut f = self.ethernet(0x0806);
        f.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
        f.extend_from_slice(&SRC_MAC);
        f.extend_from_slice(&[192, 0, 2, 1]);
        f.extend_from_slice(&[0; 6]);
        f.extend_from_slice(&[192, 0, 2, 2]);
        f
    }
}

fn udp(payload: usize) -> Vec<u8> {
    let mut u = Vec::with_capacity(8 + payload);
    u.extend_from_slice(&12345u16.to_be_bytes());
    u.extend_from_slice(&53u16.to_be_bytes());
    u.extend_from_slice(&((8 + payload) as u16).to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend(std::iter::repeat_n(0x41, payload));
    u
}
