//! Longest-prefix matching in userspace, for enforcing the allow and deny lists at L7 when the XDP program is
//! not running. One hash set per prefix length present, probed from the longest length down: a lookup costs at
//! most as many hash probes as there are distinct prefix lengths in use (a handful in practice).

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use ipnet::IpNet;

use crate::config::types::Cidr;

#[derive(Clone, Debug, Default)]
pub struct PrefixSet {
    /// (prefix length, masked address as u128 with IPv4 in the low 32 bits) per family.
    v4: Vec<(u8, HashSet<u32>)>,
    v6: Vec<(u8, HashSet<u128>)>,
    /// The value stored for each prefix (here: the monotonic expiry; 0 = never).
    values: HashMap<Cidr, u64>,
}

impl PrefixSet {
    pub fn from_entries(entries: impl IntoIterator<Item = (Cidr, u64)>) -> Self {
        let mut v4: HashMap<u8, HashSet<u32>> = HashMap::new();
        let mut v6: HashMap<u8, HashSet<u128>> = HashMap::new();
        let mut values = HashMap::new();
        for (cidr, value) in entries {
            match cidr.net() {
                IpNet::V4(n) => {
                    v4.entry(n.prefix_len()).or_default().insert(u32::from(n.network()));
                }
                IpNet::V6(n) => {
                    v6.entry(n.prefix_len()).or_default().insert(u128::from(n.network()));
                }
            }
            values.insert(cidr, value);
        }
        let mut v4: Vec<_> = v4.into_iter().collect();
        let mut v6: Vec<_> = v6.into_iter().collect();
        v4.sort_by_key(|e| std::cmp::Reverse(e.0));
        v6.sort_by_key(|e| std::cmp::Reverse(e.0));
        Self { v4, v6, values }
    }

    /// The longest listed prefix containing `ip`, with its value.
    pub fn longest_match(&self, ip: IpAddr) -> Option<(Cidr, u64)> {
        let found = match ip {
            IpAddr::V4(a) => {
                let a = u32::from(a);
                self.v4.iter().find_map(|(len, set)| {
                    let masked = if *len == 0 {
                        0
                    } else {
                        a & (u32::MAX << (32 - u32::from(*len)))
                    };
                    set.contains(&masked)
                        .then(|| IpNet::new(IpAddr::V4(masked.into()), *len))
                })
            }
            IpAddr::V6(a) => {
                let a = u128::from(a);
                self.v6.iter().find_map(|(len, set)| {
                    let masked = if *len == 0 {
                        0
                    } else {
                        a & (u128::MAX << (128 - u32::from(*len)))
                    };
                    set.contains(&masked)
                        .then(|| IpNet::new(IpAddr::V6(masked.into()), *len))
                })
            }
        }?;
        let cidr = Cidr::from(found.ok()?);
        self.values.get(&cidr).map(|v| (cidr, *v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(entries: &[&str]) -> PrefixSet {
        PrefixSet::from_entries(entries.iter().map(|e| (e.parse().expect("valid"), 0)))
    }

    #[test]
    fn longest_prefix_wins_in_both_families() {
        let s = set(&[
            "10.0.0.0/8",
            "10.1.0.0/16",
            "2001:db8::/32",
            "2001:db8:1::/48",
            "0.0.0.0/0",
        ]);
        let m = |ip: &str| s.longest_match(ip.parse().expect("ip")).map(|(c, _)| c.to_string());
        assert_eq!(m("10.1.2.3").as_deref(), Some("10.1.0.0/16"));
        assert_eq!(m("10.2.2.3").as_deref(), Some("10.0.0.0/8"));
        assert_eq!(m("192.0.2.1").as_deref(), Some("0.0.0.0/0"));
        assert_eq!(m("2001:db8:1::5").as_deref(), Some("2001:db8:1::/48"));
        assert_eq!(m("2001:db8:2::5").as_deref(), Some("2001:db8::/32"));
        assert_eq!(m("2001:db9::1"), None);
    }
}
