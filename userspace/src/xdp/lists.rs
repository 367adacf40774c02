//! Typed access to the allow and deny tries: one CIDR in, the right family's map written. This is the only
//! code that writes list maps.

use std::net::IpAddr;

use aya::maps::lpm_trie::{Key, LpmTrie};
use aya::maps::{MapData, MapError};
use ipnet::IpNet;
use rampart_common::ListEntry;

use crate::config::types::Cidr;

/// Which list a change is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ListKind {
    Allow,
    Deny,
}

impl ListKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::Deny => "deny",
        }
    }
}

/// The four LPM tries, v4 and v6 for each list.
pub struct ListMaps {
    pub(super) allow_v4: LpmTrie<MapData, [u8; 4], ListEntry>,
    pub(super) allow_v6: LpmTrie<MapData, [u8; 16], ListEntry>,
    pub(super) deny_v4: LpmTrie<MapData, [u8; 4], ListEntry>,
    pub(super) deny_v6: LpmTrie<MapData, [u8; 16], ListEntry>,
}

impl ListMaps {
    pub fn insert(&mut self, list: ListKind, cidr: Cidr, entry: ListEntry) -> Result<(), MapError> {
        match (list, cidr.net()) {
            (ListKind::Allow, IpNet::V4(n)) => self.allow_v4.insert(&key_v4(n), entry, 0),
            (ListKind::Allow, IpNet::V6(n)) => self.allow_v6.insert(&key_v6(n), entry, 0),
            (ListKind::Deny, IpNet::V4(n)) => self.deny_v4.insert(&key_v4(n), entry, 0),
            (ListKind::Deny, IpNet::V6(n)) => self.deny_v6.insert(&key_v6(n), entry, 0),
        }
    }

    /// Removes an exact prefix; `Ok(false)` when it was not present.
    pub fn remove(&mut self, list: ListKind, cidr: Cidr) -> Result<bool, MapError> {
        let result = match (list, cidr.net()) {
            (ListKind::Allow, IpNet::V4(n)) => self.allow_v4.remove(&key_v4(n)),
            (ListKind::Allow, IpNet::V6(n)) => self.allow_v6.remove(&key_v6(n)),
            (ListKind::Deny, IpNet::V4(n)) => self.deny_v4.remove(&key_v4(n)),
            (ListKind::Deny, IpNet::V6(n)) => self.deny_v6.remove(&key_v6(n)),
        };
        match result {
            Ok(()) => Ok(true),
            Err(MapError::KeyNotFound) => Ok(false),
            // LPM tries report a missing key as a failed delete with ENOENT.
            Err(MapError::SyscallError(e)) if e.io_error.raw_os_error() == Some(libc::ENOENT) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Every entry of one list, both families.
    pub fn entries(&self, list: ListKind) -> Result<Vec<(Cidr, ListEntry)>, MapError> {
        let (v4, v6) = match list {
            ListKind::Allow => (&self.allow_v4, &self.allow_v6),
            ListKind::Deny => (&self.deny_v4, &self.deny_v6),
        };
        let mut out = Vec::new();
        for item in v4.iter() {
            let (key, entry) = item?;
            out.push((cidr_of(IpAddr::from(key.data()), key.prefix_len()), entry));
        }
        for item in v6.iter() {
            let (key, entry) = item?;
            out.push((cidr_of(IpAddr::from(key.data()), key.prefix_len()), entry));
        }
        Ok(out)
    }
}

fn key_v4(n: ipnet::Ipv4Net) -> Key<[u8; 4]> {
    Key::new(u32::from(n.prefix_len()), n.network().octets())
}

fn key_v6(n: ipnet::Ipv6Net) -> Key<[u8; 16]> {
    Key::new(u32::from(n.prefix_len()), n.network().octets())
}

fn cidr_of(addr: IpAddr, prefix_len: u32) -> Cidr {
    let len = u8::try_from(prefix_len).unwrap_or(u8::MAX);
    // The kernel only holds prefixes we inserted, so the length is valid; fall back to the host route if not.
    IpNet::new(addr, len)
        .map(Cidr::from)
        .unwrap_or_else(|_| Cidr::from(addr))
}
