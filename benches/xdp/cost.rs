//! Cost of the XDP program per packet, per verdict path, measured by the kernel with BPF_PROG_TEST_RUN.
//!
//! Loaded as in production: 100,000 deny prefixes (50,000 IPv4, 50,000 IPv6, random lengths /16–/32 and
//! /32–/128), 100,000 geo prefixes, and for the "full" program geo and the rate limiter switched on. Each row
//! is the kernel's average over `REPEAT` runs of the same packet (hot cache; in a real flood the trie walk
//! misses cache more often). The `unparsed` row is the floor: the test-run loop plus parsing the Ethernet
//! header.
//!
//!     cargo xtask bench xdp-cost
#![allow(clippy::unwrap_used)] // a benchmark aborts on setup failure

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};

use ipnet::{Ipv4Net, Ipv6Net};
use rampart::config::types::Cidr;
use rampart::xdp::settings::{RateSettings, Settings};
use rampart::xdp::testrun::{XDP_DROP, XDP_PASS};
use rampart::xdp::{self, CompiledGeo, ListKind};
use rampart_common::{EntrySource, ListEntry, geo};
use rampart_tests::XdpState;
use rampart_tests::packets::Frame;

const REPEAT: u32 = 1_000_000;
const DENY_PREFIXES: usize = 100_000;
const GEO_PREFIXES: usize = 100_000;

/// A small deterministic generator (xorshift), so every run loads the same prefixes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn random_v4(rng: &mut Rng) -> Ipv4Net {
    let len = 16 + (rng.next() % 17) as u8;
    // Avoid 198.51.100.0/24 and 203.0.113.0/24, used by the probe packets below.
    let addr = Ipv4Addr::from((rng.next() as u32) | 0x0100_0000);
    Ipv4Net::new(addr, len).unwrap().trunc()
}

fn random_v6(rng: &mut Rng) -> Ipv6Net {
    let len = 32 + (rng.next() % 97) as u8;
    let addr = Ipv6Addr::from(((rng.next() as u128) << 64 | rng.next() as u128) | (0x2400u128 << 112));
    Ipv6Net::new(addr, len).unwrap().trunc()
}

fn main() {
    rampart_tests::require_root();
    let mut rng = Rng(0x5eed_1234_abcd_ef01);
    let deny: Vec<Cidr> = (0..DENY_PREFIXES)
        .map(|i| {
            if i % 2 == 0 {
                ipnet::IpNet::V4(random_v4(&mut rng))
            } else {
                ipnet::IpNet::V6(random_v6(&mut rng))
            }
        })
        .map(Cidr::from)
        .collect();
    let mut geo_maps = CompiledGeo {
        v4: BTreeMap::new(),
        v6: BTreeMap::new(),
        policy: vec![geo::PASS; geo::POLICY_LEN as usize],
    };
    for i in 0..GEO_PREFIXES {
        let country = (i % 200) as u16;
        if i % 2 == 0 {
            geo_maps.v4.insert(random_v4(&mut rng), country);
        } else {
            geo_maps.v6.insert(random_v6(&mut rng), country);
        }
    }
    // Country 7 is blocked; the geo probe address below is loaded as country 7.
    geo_maps.policy[7] = geo::DROP;
    geo_maps.v4.insert("203.0.113.0/24".parse().unwrap(), 7);

    let base = Settings {
        rate: None,
        geo_enabled: false,
        event_sample: 0,
        rate_max_sources: 262_144,
    };
    let full = Settings {
        rate: Some(RateSettings::new(1_000_000_000, 1_000_000, 64)),
        geo_enabled: true,
        ..base.clone()
    };
    let strict = Settings {
        rate: Some(RateSettings::new(1, 1, 64)),
        geo_enabled: true,
        ..base.clone()
    };

    println!(
        "XDP program cost per packet (BPF_PROG_TEST_RUN, {REPEAT} runs each, {DENY_PREFIXES} deny prefixes loaded)\n"
    );
    println!("{:<10} {:<44} {:>8} {:>10}", "program", "path", "verdict", "ns/packet");
    for (name, settings) in [("lists", &base), ("full", &full), ("rate-drop", &strict)] {
        let state = XdpState::new(&format!("bench-{name}"));
        let mut loaded = xdp::load(&state.pin_dir, settings).unwrap();
        {
            let mut lists = xdp::lock(&loaded.maps.lists);
            for cidr in &deny {
                lists
                    .insert(ListKind::Deny, *cidr, ListEntry::new(EntrySource::ThreatFeed, 0))
                    .unwrap();
            }
            lists
                .insert(
                    ListKind::Deny,
                    "198.51.100.7".parse().unwrap(),
                    ListEntry::new(EntrySource::Admin, 0),
                )
                .unwrap();
            lists
                .insert(
                    ListKind::Deny,
                    "2001:db8::7".parse().unwrap(),
                    ListEntry::new(EntrySource::Admin, 0),
                )
                .unwrap();
            lists
                .insert(
                    ListKind::Allow,
                    "198.51.100.9".parse().unwrap(),
                    ListEntry::new(EntrySource::Admin, 0),
                )
                .unwrap();
        }
        if settings.geo_enabled {
            xdp::lock(&loaded.maps.geo).apply(&geo_maps).unwrap();
        }
        let f = Frame::new();
        let v4 = |s: &str| f.ipv4(s.parse().unwrap(), 0);
        let v6 = |s: &str| f.ipv6(s.parse().unwrap());
        let mut rows: Vec<(&str, Vec<u8>)> = vec![
            ("unparsed (ARP)", f.arp()),
            ("IPv4, no match", v4("198.51.100.8")),
            ("IPv6, no match", v6("2001:db8::8")),
            ("IPv4, deny list hit", v4("198.51.100.7")),
            ("IPv6, deny list hit", v6("2001:db8::7")),
            ("IPv4, allow list hit", v4("198.51.100.9")),
            (
                "IPv4, QinQ-tagged, no match",
                Frame::new()
                    .vlan(0x88a8, 1)
                    .vlan(0x8100, 2)
                    .ipv4(Ipv4Addr::new(198, 51, 100, 8), 0),
            ),
        ];
        if settings.geo_enabled {
            rows.push(("IPv4, geo: blocked country", v4("203.0.113.1")));
        }
        if name == "rate-drop" {
            rows = vec![("IPv4, over its rate", v4("198.51.100.8"))];
        }
        for (path, frame) in rows {
            // Warm up (and, for the rate limiter, create the source's entry and use up its burst).
            loaded.program.test_run(&frame, 1000).unwrap();
            let r = loaded.program.test_run(&frame, REPEAT).unwrap();
            let verdict = match r.action {
                XDP_PASS => "PASS",
                XDP_DROP => "DROP",
                _ => "other",
            };
            println!("{name:<10} {path:<44} {verdict:>8} {:>10}", r.ns_per_run);
        }
    }
    println!(
        "\nlists = allow+deny only; full = + geo (100000 prefixes) + rate limiter; rate-drop = a source over its rate"
    );
}
