//! The XDP fast path across real network boundaries: geo policy (with the test GeoIP database and a namespace
//! holding an address from it), the per-source rate limit under a flood, protection through a daemon restart
//! during a flood, rebuilding the maps from the durable record after a "reboot", and degraded operation when
//! XDP cannot run.
#![allow(clippy::unwrap_used)] // a test reports failure by panicking

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rampart_tests::*;

const TIMEOUT_S: u32 = 3;

fn drops(admin: &str, reason: &str) -> f64 {
    metric(
        &scrape(admin),
        &format!(r#"rampart_xdp_packets_total{{action="drop",reason="{reason}"}}"#),
    )
}

/// A config for a proxy on `net`'s host address with XDP on its veth.
fn config(net: &Netns, state: &XdpState, ports: (u16, u16, u16), xdp_extra: &str, top_extra: &str) -> String {
    let (proxy, admin, upstream) = ports;
    format!(
        "server:\n  host: \"::\"\n  port: {proxy}\n\
         proxy:\n  upstreams:\n    - name: app\n      servers: [{{host: 127.0.0.1, port: {upstream}}}]\n\
         admin:\n  port: {admin}\n\
         logging:\n  format: json\n\
         {top_extra}\
         xdp:\n  interfaces: [{iface}]\n  attach_mode: native\n  drop_events:\n    sample_rate: 1.0\n{state}{xdp_extra}",
        iface = net.host_if,
        state = state.yaml(),
    )
}

#[test]
fn a_geo_blocked_country_is_dropped_and_the_policy_follows_database_changes() {
    require_root();
    // 198.51.100.9 is KP in the synthetic database; it is absent from MaxMind's GeoLite2 test database.
    let net = Netns::create_with("gb", "198.51.100.1", "198.51.100.9", 24);
    let state = XdpState::new("gb");
    let geodir = std::env::temp_dir().join(format!("rampart-geo-{}", std::process::id()));
    std::fs::create_dir_all(&geodir).unwrap();
    let db = geodir.join("country.mmdb");
    std::fs::copy(shared_dir().join("testdata/geoip/WAF-Test-Country.mmdb"), &db).unwrap();
    let (_upstream, up) = start_upstream();
    let ports = (free_port(), free_port(), up);
    let geo = format!(
        "waf:\n  enabled: false\n  geo_blocking:\n    enabled: true\n    blocked_countries: [KP]\n    geoip_database: {}\n    update_interval: 1\n",
        db.display()
    );
    let rampart = start_rampart("rampart-geo", &config(&net, &state, ports, "", &geo), ports.1);
    let admin = format!("http://127.0.0.1:{}", ports.1);
    let site = format!("http://{}:{}/", net.host_ip, ports.0);

    let r = curl(Some(&net.name), "GET", &site, None, TIMEOUT_S);
    assert_eq!(r.curl_exit, 28, "a KP source must be dropped: {r:?}");
    assert!(drops(&admin, "geo") > 0.0, "geo drop counter did not rise");
    assert!(
        eventually(Duration::from_secs(5), || rampart
            .log()
            .contains(r#""client_country":"KP""#)),
        "no security event naming the country:\n{}",
        rampart.log()
    );
    assert!(
        rampart.log().contains("geo policy compiled into XDP"),
        "{}",
        rampart.log()
    );

    // Swap in a database that does not know the address: the policy recompiles and the source passes.
    let next = geodir.join("next.mmdb");
    std::fs::copy(shared_dir().join("testdata/geoip/GeoLite2-Country-Test.mmdb"), &next).unwrap();
    std::fs::rename(&next, &db).unwrap();
    let passed = eventually(Duration::from_secs(15), || {
        curl(Some(&net.name), "GET", &site, None, 1).status == 200
    });
    assert!(
        passed,
        "the source stayed blocked after the database changed:\n{}",
        rampart.log()
    );
    assert!(rampart.log().contains("GeoIP database changed"), "{}", rampart.log());
    let _ = std::fs::remove_dir_all(&geodir);
}

#[test]
fn allow_only_mode_drops_sources_from_other_countries() {
    require_root();
    // 203.0.113.1 is US in the synthetic database; only FR is allowed.
    let net = Netns::create_with("ga", "203.0.113.2", "203.0.113.1", 24);
    let state = XdpState::new("ga");
    let db = shared_dir().join("testdata/geoip/WAF-Test-Country.mmdb");
    let (_upstream, up) = start_upstream();
    let ports = (free_port(), free_port(), up);
    let geo = format!(
        "waf:\n  enabled: false\n  geo_blocking:\n    enabled: true\n    allowed_countries: [FR]\n    geoip_database: {}\n",
        db.display()
    );
    let _rampart = start_rampart("rampart-geo-allow", &config(&net, &state, ports, "", &geo), ports.1);
    let admin = format!("http://127.0.0.1:{}", ports.1);
    let site = format!("http://{}:{}/", net.host_ip, ports.0);
    let r = curl(Some(&net.name), "GET", &site, None, TIMEOUT_S);
    assert_eq!(
        r.curl_exit, 28,
        "a US source must be dropped in allow-only FR mode: {r:?}"
    );
    assert!(drops(&admin, "geo") > 0.0);
    // The admin API on loopback is unaffected (loopback is exempt and not on the attached interface).
    assert_eq!(curl(None, "GET", &format!("{admin}/health"), None, 5).status, 200);
}

#[test]
fn the_rate_limit_drops_a_flood_above_the_configured_rate() {
    require_root();
    let net = Netns::create("rl");
    let state = XdpState::new("rl");
    let (_upstream, up) = start_upstream();
    let ports = (free_port(), free_port(), up);
    let rl = "  rate_limit:\n    enabled: true\n    packets_per_second: 100\n    burst: 50\n";
    let _rampart = start_rampart(
        "rampart-rl",
        &config(&net, &state, ports, rl, "waf:\n  enabled: false\n"),
        ports.1,
    );
    let admin = format!("http://127.0.0.1:{}", ports.1);
    let sink = UdpCounter::bind(&net.host_ip);
    let started = Instant::now();
    let sent = udp_flood(&net.name, sink.addr, 5_000, 3.0, 0);
    let elapsed = started.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_millis(300));
    let received = sink.count();
    assert!(sent >= 4_000, "the flood sender managed only {sent} packets");
    // The burst passes, then 100 packets per second; the rest die in XDP.
    let ceiling = 50.0 + 100.0 * (elapsed + 0.5) + 5.0;
    assert!(received >= 50, "fewer than the burst arrived: {received} of {sent}");
    assert!(
        (received as f64) <= ceiling,
        "{received} of {sent} arrived in {elapsed:.2}s; at most {ceiling:.0} may"
    );
    let dropped = drops(&admin, "rate_limit");
    assert!(
        dropped >= (sent - received) as f64 - 5.0,
        "rate_limit drops {dropped} vs {} not received",
        sent - received
    );
}

#[test]
fn a_restart_during_a_flood_from_a_blocked_source_lets_nothing_through() {
    require_root();
    let net = Netns::create("rs");
    let state = XdpState::new("rs");
    let (_upstream, up) = start_upstream();
    let ports = (free_port(), free_port(), up);
    let cfg = config(
        &net,
        &state,
        ports,
        "  keep_attached_on_exit: true\n",
        "waf:\n  enabled: false\n",
    );
    let mut first = start_rampart("rampart-first", &cfg, ports.1);
    let admin = format!("http://127.0.0.1:{}", ports.1);
    let sink = UdpCounter::bind(&net.host_ip);

    // The path works before the block: every packet of a short paced burst arrives.
    assert_eq!(udp_flood(&net.name, sink.addr, 20, 2.0, 200), 20);
    assert!(
        eventually(Duration::from_secs(2), || sink.count() == 20),
        "only {} of 20 arrived",
        sink.count()
    );

    let body = format!(r#"{{"ip":"{}","reason":"flood"}}"#, net.ns_ip);
    assert_eq!(
        curl(None, "POST", &format!("{admin}/admin/waf/blocked-ips"), Some(&body), 5).status,
        201
    );

    let (ns, dst) = (net.name.clone(), sink.addr);
    let flood = std::thread::spawn(move || udp_flood(&ns, dst, 40_000, 8.0, 4_000));
    std::thread::sleep(Duration::from_secs(1));
    let status = first
        .terminate(Duration::from_secs(30))
        .expect("the first daemon exits");
    assert!(status.success(), "{}", first.log());
    assert!(
        first.log().contains("leaving the XDP program attached"),
        "{}",
        first.log()
    );
    // Down for a moment on purpose: the pinned link keeps the program dropping.
    std::thread::sleep(Duration::from_millis(500));
    let second = start_rampart("rampart-second", &cfg, ports.1);
    let sent = flood.join().unwrap();

    assert!(sent >= 10_000, "the flood sent only {sent} packets");
    assert_eq!(
        sink.count(),
        20,
        "packets from the blocked source got through during the restart"
    );
    assert!(
        second.log().contains("took over the pinned XDP link"),
        "{}",
        second.log()
    );
    // The counters live in a pinned map too, so the new daemon reports the whole flood.
    let dropped = drops(&admin, "deny_list");
    assert!(
        dropped >= sent as f64 * 0.95,
        "deny_list drops {dropped} for {sent} sent"
    );
    let listed = json(&curl(None, "GET", &format!("{admin}/admin/waf/blocked-ips"), None, 5));
    assert_eq!(listed["blocked_ips"][0]["reason"], "flood");
}

#[test]
fn after_a_reboot_the_deny_list_is_rebuilt_from_the_record() {
    require_root();
    let net = Netns::create("rb");
    let state = XdpState::new("rb");
    let (_upstream, up) = start_upstream();
    let ports = (free_port(), free_port(), up);
    let cfg = config(&net, &state, ports, "", "waf:\n  enabled: false\n");
    let admin = format!("http://127.0.0.1:{}", ports.1);
    let site = format!("http://{}:{}/", net.host_ip, ports.0);
    let mut first = start_rampart("rampart-boot1", &cfg, ports.1);
    let body = format!(r#"{{"ip":"{}","reason":"before reboot","duration":3600}}"#, net.ns_ip);
    assert_eq!(
        curl(None, "POST", &format!("{admin}/admin/waf/blocked-ips"), Some(&body), 5).status,
        201
    );
    assert!(first.terminate(Duration::from_secs(30)).unwrap().success());

    // A reboot empties bpffs: maps, counters and links are gone; only the record on disk remains.
    state.forget_pins();
    let second = start_rampart("rampart-boot2", &cfg, ports.1);
    assert!(second.log().contains(r#""written":1"#), "{}", second.log());
    let r = curl(Some(&net.name), "GET", &site, None, TIMEOUT_S);
    assert_eq!(r.curl_exit, 28, "the rebuilt deny list must drop the source: {r:?}");
    let listed = json(&curl(None, "GET", &format!("{admin}/admin/waf/blocked-ips"), None, 5));
    assert_eq!(listed["blocked_ips"][0]["reason"], "before reboot");
    assert!(
        listed["blocked_ips"][0]["expires"].is_string(),
        "the expiry survives: {listed}"
    );
}

/// Runs the daemon with XDP unable to run, and checks that lists are enforced per connection.
fn assert_degraded_with_l7_enforcement(admin: &str, proxy_port: u16, rampart: &Process) {
    let health = json(&curl(None, "GET", &format!("{admin}/health"), None, 5));
    assert_eq!(health["status"], "degraded", "{health}");
    assert_eq!(health["degraded"][0], "xdp", "{health}");
    assert_eq!(health["components"]["xdp"]["lists_enforced_by"], "l7", "{health}");
    assert_eq!(
        health["components"]["xdp"]["attached"],
        serde_json::json!([]),
        "{health}"
    );
    assert!(rampart.log().contains("degraded: xdp"), "{}", rampart.log());
    let body = r#"{"ip":"127.0.0.3","reason":"l7"}"#;
    assert_eq!(
        curl(None, "POST", &format!("{admin}/admin/waf/blocked-ips"), Some(body), 5).status,
        201
    );
    let site = format!("http://127.0.0.1:{proxy_port}/");
    let run_from = |src: &str| {
        let out = run(
            "curl",
            &[
                "-sS",
                "-m",
                "3",
                "--interface",
                src,
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                &site,
            ],
        );
        (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let (code, status) = run_from("127.0.0.3");
    assert!(
        code != Some(0) && code != Some(28),
        "a denied source must be refused at once, got curl {code:?} {status}"
    );
    assert_eq!(run_from("127.0.0.1"), (Some(0), "200".into()));
    let (code, _) = run_from("127.0.0.4");
    assert!(
        code != Some(0),
        "the configured deny entry 127.0.0.4 must be enforced at L7 too"
    );
}

#[test]
fn an_interface_that_refuses_xdp_leaves_the_daemon_running_degraded_with_l7_enforcement() {
    require_root();
    let state = XdpState::new("dg");
    let (_upstream, up) = start_upstream();
    let (proxy, admin_port) = (free_port(), free_port());
    // Loopback has no driver XDP hook, so native mode must fail.
    let cfg = format!(
        "server:\n  host: 127.0.0.1\n  port: {proxy}\nproxy:\n  upstreams:\n    - name: app\n      servers: [{{host: 127.0.0.1, port: {up}}}]\n\
         admin:\n  port: {admin_port}\nwaf:\n  enabled: false\n\
         xdp:\n  interfaces: [lo]\n  attach_mode: native\n  deny: [127.0.0.4]\n{}",
        state.yaml()
    );
    let rampart = start_rampart("rampart-degraded", &cfg, admin_port);
    assert_degraded_with_l7_enforcement(&format!("http://127.0.0.1:{admin_port}"), proxy, &rampart);
}

#[test]
fn without_privileges_the_daemon_starts_degraded_with_l7_enforcement() {
    require_root();
    let state = XdpState::new("np");
    // The unprivileged user must be able to write its record.
    let record_dir = state.record.parent().unwrap().to_owned();
    must("chmod", &["0777", record_dir.to_str().unwrap()]);
    let (_upstream, up) = start_upstream();
    let (proxy, admin_port) = (free_port(), free_port());
    let cfg = format!(
        "server:\n  host: 127.0.0.1\n  port: {proxy}\nproxy:\n  upstreams:\n    - name: app\n      servers: [{{host: 127.0.0.1, port: {up}}}]\n\
         admin:\n  port: {admin_port}\nwaf:\n  enabled: false\n\
         xdp:\n  interfaces: [lo]\n  deny: [127.0.0.4]\n{}",
        state.yaml()
    );
    let path = temp_file("unprivileged.yaml", &cfg);
    let bin = rampart_bin();
    let args = [
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "--inh-caps=-all",
        bin.to_str().unwrap(),
        "run",
        "--config",
        path.to_str().unwrap(),
    ];
    let mut rampart = Process::start("rampart-unprivileged", std::path::Path::new("setpriv"), &args, &[]);
    wait_for_port(
        SocketAddr::from(([127, 0, 0, 1], admin_port)),
        Duration::from_secs(30),
        &mut rampart,
    );
    assert_degraded_with_l7_enforcement(&format!("http://127.0.0.1:{admin_port}"), proxy, &rampart);
}
