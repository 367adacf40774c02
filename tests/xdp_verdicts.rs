//! Every verdict path of the XDP program, run in the kernel with BPF_PROG_TEST_RUN on crafted frames: no
//! network needed, the real verifier and maps. Each test loads its own program instance with its own pinned
//! maps and settings.
#![allow(clippy::unwrap_used)] // a test reports failure by panicking

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, Ipv6Addr};

use rampart::config::types::Cidr;
use rampart::xdp::settings::{RateSettings, Settings};
use rampart::xdp::testrun::{XDP_DROP, XDP_PASS};
use rampart::xdp::{self, GeoPolicy, ListKind, Loaded, geo};
use rampart_common::{EntrySource, ListEntry, Reason};
use rampart_tests::packets::Frame;
use rampart_tests::{XdpState, require_root, shared_dir};

struct Prog {
    loaded: Loaded,
    _state: XdpState,
}

fn settings() -> Settings {
    Settings {
        rate: None,
        geo_enabled: false,
        event_sample: 0,
        rate_max_sources: 1024,
    }
}

fn load(tag: &str, settings: Settings) -> Prog {
    require_root();
    let state = XdpState::new(tag);
    let loaded = xdp::load(&state.pin_dir, &settings).unwrap_or_else(|e| panic!("loading the XDP program: {e}"));
    Prog { loaded, _state: state }
}

impl Prog {
    fn run(&mut self, frame: &[u8]) -> u32 {
        self.loaded.program.test_run(frame, 1).unwrap().action
    }

    fn list(&self, list: ListKind, cidr: &str, expires_at_ns: u64) {
        let cidr: Cidr = cidr.parse().unwrap();
        xdp::lock(&self.loaded.maps.lists)
            .insert(list, cidr, ListEntry::new(EntrySource::Admin, expires_at_ns))
            .unwrap();
    }

    fn packets(&self, reason: Reason) -> u64 {
        self.loaded
            .maps
            .stats
            .totals()
            .unwrap()
            .iter()
            .find(|(r, _)| *r == reason)
            .unwrap()
            .1
            .packets
    }
}

fn v4(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn v6(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

#[test]
fn denied_ipv4_and_ipv6_sources_are_dropped_and_others_pass() {
    let mut p = load("vt-deny", settings());
    let f = Frame::new();
    assert_eq!(p.run(&f.ipv4(v4("198.51.100.7"), 0)), XDP_PASS);
    assert_eq!(p.run(&f.ipv6(v6("2001:db8:1::7"))), XDP_PASS);
    p.list(ListKind::Deny, "198.51.100.0/24", 0);
    p.list(ListKind::Deny, "2001:db8:1::/48", 0);
    assert_eq!(p.run(&f.ipv4(v4("198.51.100.7"), 0)), XDP_DROP);
    assert_eq!(p.run(&f.ipv4(v4("198.51.101.7"), 0)), XDP_PASS);
    assert_eq!(p.run(&f.ipv6(v6("2001:db8:1:ffff::7"))), XDP_DROP);
    assert_eq!(p.run(&f.ipv6(v6("2001:db8:2::7"))), XDP_PASS);
    assert_eq!(p.packets(Reason::DenyList), 2);
    assert_eq!(p.packets(Reason::NoMatch), 4);
}

#[test]
fn vlan_and_qinq_tagged_frames_are_judged_by_their_source() {
    let mut p = load("vt-vlan", settings());
    p.list(ListKind::Deny, "198.51.100.7", 0);
    p.list(ListKind::Deny, "2001:db8::7", 0);
    let one = Frame::new().vlan(0x8100, 10);
    let qinq = Frame::new().vlan(0x88a8, 100).vlan(0x8100, 10);
    assert_eq!(p.run(&one.ipv4(v4("198.51.100.7"), 0)), XDP_DROP);
    assert_eq!(p.run(&one.ipv6(v6("2001:db8::7"))), XDP_DROP);
    assert_eq!(p.run(&qinq.ipv4(v4("198.51.100.7"), 0)), XDP_DROP);
    assert_eq!(p.run(&qinq.ipv6(v6("2001:db8::7"))), XDP_DROP);
    assert_eq!(p.run(&qinq.ipv4(v4("198.51.100.8"), 0)), XDP_PASS);
    // A third tag is beyond what the parser reads: passed as unparsed, never dropped blindly.
    let three = Frame::new().vlan(0x88a8, 1).vlan(0x8100, 2).vlan(0x8100, 3);
    assert_eq!(p.run(&three.ipv4(v4("198.51.100.7"), 0)), XDP_PASS);
    assert_eq!(p.packets(Reason::Unparsed), 1);
}

#[test]
fn truncated_malformed_and_non_ip_frames_pass_as_unparsed() {
    let mut p = load("vt-trunc", settings());
    p.list(ListKind::Deny, "0.0.0.0/0", 0);
    p.list(ListKind::Deny, "::/0", 0);
    let f = Frame::new();
    let full4 = f.ipv4(v4("198.51.100.7"), 0);
    let full6 = f.ipv6(v6("2001:db8::7"));
    // Cut inside the IP header: the source cannot be read.
    assert_eq!(p.run(&full4[..14 + 12]), XDP_PASS);
    assert_eq!(p.run(&full6[..14 + 20]), XDP_PASS);
    // Cut inside a VLAN tag.
    assert_eq!(
        p.run(&Frame::new().vlan(0x8100, 5).ipv4(v4("198.51.100.7"), 0)[..16]),
        XDP_PASS
    );
    // Wrong IP version nibble, and an IPv4 header length below 5 words.
    let mut bad_version = full4.clone();
    bad_version[14] = 0x65;
    assert_eq!(p.run(&bad_version), XDP_PASS);
    let mut short_ihl = full4.clone();
    short_ihl[14] = 0x44;
    assert_eq!(p.run(&short_ihl), XDP_PASS);
    assert_eq!(p.run(&f.arp()), XDP_PASS);
    assert_eq!(p.packets(Reason::Unparsed), 6);
    // The same source, complete, is dropped: the deny-all entries are live.
    assert_eq!(p.run(&full4), XDP_DROP);
    assert_eq!(p.run(&full6), XDP_DROP);
}

#[test]
fn fragments_are_judged_by_their_source() {
    let mut p = load("vt-frag", settings());
    p.list(ListKind::Deny, "198.51.100.7", 0);
    p.list(ListKind::Deny, "2001:db8::7", 0);
    let f = Frame::new();
    // First fragment (MF set) and a later fragment (offset 185 * 8 bytes).
    assert_eq!(p.run(&f.ipv4(v4("198.51.100.7"), 0x2000)), XDP_DROP);
    assert_eq!(p.run(&f.ipv4(v4("198.51.100.7"), 185)), XDP_DROP);
    assert_eq!(p.run(&f.ipv4(v4("198.51.100.8"), 185)), XDP_PASS);
    // IPv6 with hop-by-hop and fragment extension headers.
    assert_eq!(p.run(&f.ipv6_with(v6("2001:db8::7"), &[(0, 8), (44, 8)])), XDP_DROP);
    assert_eq!(p.run(&f.ipv6_with(v6("2001:db8::8"), &[(0, 8), (44, 8)])), XDP_PASS);
}

#[test]
fn expired_entries_stop_dropping_and_future_ones_drop() {
    let mut p = load("vt-expiry", settings());
    let now = xdp::monotonic_ns();
    p.list(ListKind::Deny, "198.51.100.1", now - 1_000_000_000);
    p.list(ListKind::Deny, "198.51.100.2", now + 600_000_000_000);
    p.list(ListKind::Deny, "2001:db8::1", now - 1);
    p.list(ListKind::Deny, "2001:db8::2", now + 600_000_000_000);
    let f = Frame::new();
    assert_eq!(p.run(&f.ipv4(v4("198.51.100.1"), 0)), XDP_PASS);
    assert_eq!(p.run(&f.ipv4(v4("198.51.100.2"), 0)), XDP_DROP);
    assert_eq!(p.run(&f.ipv6(v6("2001:db8::1"))), XDP_PASS);
    assert_eq!(p.run(&f.ipv6(v6("2001:db8::2"))), XDP_DROP);
    // An expired allow entry no longer protects a denied source.
    p.list(ListKind::Allow, "198.51.100.2", now - 1);
    assert_eq!(p.run(&f.ipv4(v4("198.51.100.2"), 0)), XDP_DROP);
}

#[test]
fn the_allow_list_beats_the_deny_list() {
    let mut p = load("vt-allow", settings());
    p.list(ListKind::Deny, "198.51.100.0/24", 0);
    p.list(ListKind::Allow, "198.51.100.7", 0);
    p.list(ListKind::Deny, "2001:db8::/32", 0);
    p.list(ListKind::Allow, "2001:db8:7::/48", 0);
    let f = Frame::new();
    assert_eq!(p.run(&f.ipv4(v4("198.51.100.7"), 0)), XDP_PASS);
    assert_eq!(p.run(&f.ipv4(v4("198.51.100.8"), 0)), XDP_DROP);
    assert_eq!(p.run(&f.ipv6(v6("2001:db8:7::1"))), XDP_PASS);
    assert_eq!(p.run(&f.ipv6(v6("2001:db8:8::1"))), XDP_DROP);
    assert_eq!(p.packets(Reason::AllowList), 2);
}

fn test_db() -> std::path::PathBuf {
    shared_dir().join("testdata/geoip/WAF-Test-Country.mmdb")
}

fn codes(list: &[&str]) -> BTreeSet<rampart::config::types::CountryCode> {
    list.iter().map(|c| c.parse().unwrap()).collect()
}

fn with_geo(tag: &str, policy: &GeoPolicy) -> Prog {
    let p = load(
        tag,
        Settings {
            geo_enabled: true,
            ..settings()
        },
    );
    let (compiled, _) = geo::compile(&test_db(), policy).unwrap();
    xdp::lock(&p.loaded.maps.geo).apply(&compiled).unwrap();
    p
}

#[test]
fn geo_block_mode_drops_the_listed_countries_only() {
    let policy = GeoPolicy {
        blocked: codes(&["KP"]),
        ..Default::default()
    };
    let mut p = with_geo("vt-geob", &policy);
    let f = Frame::new();
    assert_eq!(p.run(&f.ipv4(v4("198.51.100.9"), 0)), XDP_DROP, "KP (IPv4)");
    assert_eq!(p.run(&f.ipv6(v6("2001:db8:bad::2"))), XDP_DROP, "KP (IPv6)");
    assert_eq!(p.run(&f.ipv4(v4("192.0.2.7"), 0)), XDP_PASS, "FR");
    assert_eq!(p.run(&f.ipv4(v4("8.8.8.8"), 0)), XDP_PASS, "not in the database");
    assert_eq!(p.packets(Reason::Geo), 2);
    // The allow list still wins over geo.
    p.list(ListKind::Allow, "198.51.100.9", 0);
    assert_eq!(p.run(&f.ipv4(v4("198.51.100.9"), 0)), XDP_PASS);
}

#[test]
fn geo_allow_only_mode_drops_other_and_unknown_sources_but_not_whitelisted_or_private_ones() {
    let policy = GeoPolicy {
        allowed: codes(&["FR"]),
        whitelist: vec!["198.51.100.0/25".parse().unwrap()],
        ..Default::default()
    };
    let mut p = with_geo("vt-geoa", &policy);
    let f = Frame::new();
    assert_eq!(p.run(&f.ipv4(v4("192.0.2.7"), 0)), XDP_PASS, "FR");
    assert_eq!(p.run(&f.ipv6(v6("2001:db8:f00::1"))), XDP_PASS, "FR (IPv6)");
    assert_eq!(p.run(&f.ipv4(v4("203.0.113.1"), 0)), XDP_DROP, "US");
    assert_eq!(p.run(&f.ipv4(v4("8.8.8.8"), 0)), XDP_DROP, "not in the database");
    assert_eq!(
        p.run(&f.ipv6(v6("2001:db8:1::1"))),
        XDP_DROP,
        "not in the database (IPv6)"
    );
    assert_eq!(p.run(&f.ipv4(v4("198.51.100.9"), 0)), XDP_PASS, "KP but whitelisted");
    assert_eq!(
        p.run(&f.ipv4(v4("198.51.100.200"), 0)),
        XDP_DROP,
        "KP outside the whitelist"
    );
    assert_eq!(p.run(&f.ipv4(v4("127.0.0.1"), 0)), XDP_PASS, "loopback is exempt");
    assert_eq!(p.run(&f.ipv4(v4("192.168.1.1"), 0)), XDP_PASS, "private is exempt");
    assert_eq!(p.run(&f.ipv6(v6("fe80::1"))), XDP_PASS, "link-local is exempt");
}

#[test]
fn the_rate_limit_admits_the_burst_then_drops_per_source() {
    let rate = RateSettings::new(1, 3, 64);
    let mut p = load(
        "vt-rate",
        Settings {
            rate: Some(rate),
            ..settings()
        },
    );
    let f = Frame::new();
    let a = f.ipv4(v4("198.51.100.1"), 0);
    for i in 0..3 {
        assert_eq!(p.run(&a), XDP_PASS, "packet {i} of the burst");
    }
    assert_eq!(p.run(&a), XDP_DROP, "over the burst");
    assert_eq!(p.run(&a), XDP_DROP);
    // Another source has its own bucket.
    assert_eq!(p.run(&f.ipv4(v4("198.51.100.2"), 0)), XDP_PASS);
    // IPv6 sources share a bucket per /64.
    for host in ["2001:db8:0:1::1", "2001:db8:0:1::2", "2001:db8:0:1::3"] {
        assert_eq!(p.run(&f.ipv6(v6(host))), XDP_PASS, "{host}");
    }
    assert_eq!(
        p.run(&f.ipv6(v6("2001:db8:0:1::4"))),
        XDP_DROP,
        "same /64, burst used up"
    );
    assert_eq!(p.run(&f.ipv6(v6("2001:db8:0:2::1"))), XDP_PASS, "another /64");
    assert_eq!(p.packets(Reason::RateLimit), 3);
    // After one emission interval (1 s at 1 packet/s) the source may send one more packet.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert_eq!(p.run(&a), XDP_PASS, "refilled after an interval");
    assert_eq!(p.run(&a), XDP_DROP);
}

#[test]
fn allowed_sources_skip_the_rate_limit() {
    let mut p = load(
        "vt-rateallow",
        Settings {
            rate: Some(RateSettings::new(1, 1, 64)),
            ..settings()
        },
    );
    p.list(ListKind::Allow, "198.51.100.1", 0);
    let a = Frame::new().ipv4(v4("198.51.100.1"), 0);
    for _ in 0..5 {
        assert_eq!(p.run(&a), XDP_PASS);
    }
}

#[test]
fn sampled_drops_reach_the_ring_buffer_with_their_details() {
    let mut p = load(
        "vt-events",
        Settings {
            event_sample: u32::MAX,
            ..settings()
        },
    );
    p.list(ListKind::Deny, "2001:db8::7", 0);
    p.list(ListKind::Deny, "198.51.100.7", 0);
    let f = Frame::new();
    // UDP behind hop-by-hop, routing and fragment headers.
    assert_eq!(
        p.run(&f.ipv6_with(v6("2001:db8::7"), &[(0, 16), (43, 8), (44, 8)])),
        XDP_DROP
    );
    assert_eq!(p.run(&f.ipv4(v4("198.51.100.7"), 0)), XDP_DROP);
    assert_eq!(p.run(&f.ipv4(v4("198.51.100.8"), 0)), XDP_PASS);
    let mut events = Vec::new();
    while let Some(item) = p.loaded.events.next() {
        events.push(xdp::events::decode(&item, None).unwrap());
    }
    assert_eq!(events.len(), 2, "one event per drop, none for the pass: {events:?}");
    assert_eq!(events[0].source.to_string(), "2001:db8::7");
    assert_eq!(events[0].reason, Reason::DenyList);
    assert_eq!(events[0].l4_proto, 17, "UDP found behind the extension headers");
    assert_eq!(events[1].source.to_string(), "198.51.100.7");
    assert_eq!(events[1].l4_proto, 17);
}

#[test]
fn no_events_are_emitted_when_sampling_is_off() {
    let mut p = load("vt-noevents", settings());
    p.list(ListKind::Deny, "198.51.100.7", 0);
    assert_eq!(p.run(&Frame::new().ipv4(v4("198.51.100.7"), 0)), XDP_DROP);
    assert!(p.loaded.events.next().is_none());
}

#[test]
fn pinned_maps_have_the_definitions_userspace_expects() {
    let p = load("vt-defs", settings());
    let pins = xdp::PinDir::new(&p._state.pin_dir);
    let dropped = pins.drop_incompatible(&xdp::pins::definitions(1024));
    assert!(
        dropped.is_empty(),
        "maps whose kernel definition differs from pins::definitions: {dropped:?}"
    );
    // A different rate-limiter size is a different definition: that pin would be recreated.
    let dropped = pins.drop_incompatible(&xdp::pins::definitions(2048));
    assert_eq!(dropped, vec![rampart_common::maps::names::RATE]);
}
