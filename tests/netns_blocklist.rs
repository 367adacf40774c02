//! The walking skeleton end to end, across a real network boundary: a client inside a network namespace
//! reaches an upstream through Rampart on the host side of a veth pair; once its address is POSTed to the
//! admin API, XDP drops its packets before the host stack sees them; after DELETE it gets through again.
#![allow(clippy::unwrap_used)] // a test reports failure by panicking

use std::net::SocketAddr;
use std::time::Duration;

use rampart_tests::*;

const REQUEST_TIMEOUT_S: u32 = 3;

#[test]
fn blocked_client_is_dropped_by_xdp_and_unblocked_again() {
    require_root();
    let net = Netns::create("bl");
    let state = XdpState::new("bl");
    let (proxy_port, admin_port, upstream_port) = (free_port(), free_port(), free_port());
    let config = format!(
        "server:\n  host: \"::\"\n  port: {proxy_port}\n\
         proxy:\n  upstreams:\n    - name: app\n      servers:\n        - {{host: 127.0.0.1, port: {upstream_port}}}\n\
         admin:\n  host: 127.0.0.1\n  port: {admin_port}\n\
         waf:\n  enabled: false\n\
         xdp:\n  interfaces: [{iface}]\n  attach_mode: auto\n{state}",
        iface = net.host_if,
        state = state.yaml(),
    );
    let config_path = temp_file("netns.yaml", &config);
    let bin = rampart_bin();
    let upstream_addr = format!("127.0.0.1:{upstream_port}");
    let mut upstream = Process::start(
        "echo-upstream",
        &bin,
        &["echo-upstream", "--listen", &upstream_addr],
        &[],
    );
    wait_for_port(upstream_addr.parse().unwrap(), Duration::from_secs(10), &mut upstream);
    let mut rampart = Process::start(
        "rampart",
        &bin,
        &["run", "--config", config_path.to_str().unwrap()],
        &[],
    );
    let admin = format!("http://127.0.0.1:{admin_port}");
    wait_for_port(
        SocketAddr::from(([127, 0, 0, 1], admin_port)),
        Duration::from_secs(20),
        &mut rampart,
    );

    // The program is attached where the configuration says, natively on veth.
    let health = json(&curl(None, "GET", &format!("{admin}/health"), None, 5));
    assert_eq!(health["status"], "healthy", "{health}");
    assert_eq!(
        health["components"]["xdp"]["attached"][0]["interface"],
        net.host_if.as_str()
    );
    assert_eq!(health["components"]["xdp"]["attached"][0]["mode"], "native", "{health}");
    let link = must("ip", &["link", "show", "dev", &net.host_if]);
    assert!(
        link.contains("prog/xdp") && link.contains("rampart_xdp"),
        "ip link shows no XDP program:\n{link}"
    );

    // 1. Through the proxy from inside the namespace, with the client's address forwarded.
    let site = format!("http://{}:{proxy_port}/hello", net.host_ip);
    let ok = curl(Some(&net.name), "GET", &site, None, REQUEST_TIMEOUT_S);
    assert_eq!(ok.status, 200, "{ok:?}");
    assert_eq!(json(&ok)["x_forwarded_for"], net.ns_ip.as_str());

    // A bad POST changes nothing.
    let before = curl(None, "GET", &format!("{admin}/admin/waf/blocked-ips"), None, 5).body;
    for bad in [
        r#"{"ip":"10.0.0.0/33"}"#,
        r#"{"ip":"not-an-ip"}"#,
        r#"{"reason":"no ip"}"#,
        "{not json",
        r#"{"ip":"10.1.1.1","duration":-5}"#,
    ] {
        let r = curl(None, "POST", &format!("{admin}/admin/waf/blocked-ips"), Some(bad), 5);
        assert_eq!(r.status, 400, "{bad} → {r:?}");
        assert!(json(&r)["error"].is_string(), "{r:?}");
    }
    assert_eq!(
        curl(None, "GET", &format!("{admin}/admin/waf/blocked-ips"), None, 5).body,
        before
    );

    // 2. Block the namespace's address: its packets die in XDP, so the connection times out.
    let drops_before = metric(
        &metrics(&admin),
        r#"rampart_xdp_packets_total{action="drop",reason="deny_list"}"#,
    );
    let body = format!(r#"{{"ip":"{}","reason":"integration test","duration":600}}"#, net.ns_ip);
    let r = curl(None, "POST", &format!("{admin}/admin/waf/blocked-ips"), Some(&body), 5);
    assert_eq!(r.status, 201, "{r:?}");
    let listed = json(&curl(None, "GET", &format!("{admin}/admin/waf/blocked-ips"), None, 5));
    assert_eq!(listed["blocked_ips"][0]["ip"], format!("{}/32", net.ns_ip));
    assert_eq!(listed["blocked_ips"][0]["reason"], "integration test");
    assert!(listed["blocked_ips"][0]["expires"].is_string(), "{listed}");

    let blocked = curl(Some(&net.name), "GET", &site, None, REQUEST_TIMEOUT_S);
    assert_eq!(blocked.curl_exit, 28, "expected a connection timeout, got {blocked:?}");
    assert_eq!(blocked.status, 0);
    let drops_after = metric(
        &metrics(&admin),
        r#"rampart_xdp_packets_total{action="drop",reason="deny_list"}"#,
    );
    assert!(
        drops_after > drops_before,
        "XDP drop counter did not rise: {drops_before} -> {drops_after}"
    );

    // 3. Unblock: served again.
    let r = curl(
        None,
        "DELETE",
        &format!("{admin}/admin/waf/blocked-ips"),
        Some(&format!(r#"{{"ip":"{}"}}"#, net.ns_ip)),
        5,
    );
    assert_eq!(r.status, 200, "{r:?}");
    let again = curl(Some(&net.name), "GET", &site, None, REQUEST_TIMEOUT_S);
    assert_eq!(again.status, 200, "{again:?}");
    let gone = curl(
        None,
        "DELETE",
        &format!("{admin}/admin/waf/blocked-ips?ip={}", net.ns_ip),
        None,
        5,
    );
    assert_eq!(gone.status, 404, "{gone:?}");

    // 4. IPv6: a /64 prefix on the deny list drops the namespace's v6 address too.
    let site6 = format!("http://[{}]:{proxy_port}/v6", net.host_ip6);
    let ok6 = curl(Some(&net.name), "GET", &site6, None, REQUEST_TIMEOUT_S);
    assert_eq!(ok6.status, 200, "{ok6:?}");
    assert_eq!(json(&ok6)["x_forwarded_for"], net.ns_ip6.as_str());
    let prefix6 = format!("{}/64", net.ns_ip6.trim_end_matches("::2").to_owned() + "::");
    let r = curl(
        None,
        "POST",
        &format!("{admin}/admin/waf/blocked-ips"),
        Some(&format!(r#"{{"ip":"{prefix6}"}}"#)),
        5,
    );
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(
        json(&r)["blocked_ip"]["expires"],
        serde_json::Value::Null,
        "no duration means permanent"
    );
    let blocked6 = curl(Some(&net.name), "GET", &site6, None, REQUEST_TIMEOUT_S);
    assert_eq!(
        blocked6.curl_exit, 28,
        "expected a v6 connection timeout, got {blocked6:?}"
    );
    let v4_still_ok = curl(Some(&net.name), "GET", &site, None, REQUEST_TIMEOUT_S);
    assert_eq!(
        v4_still_ok.status, 200,
        "a v6 entry must not affect v4: {v4_still_ok:?}"
    );
    let r = curl(
        None,
        "DELETE",
        &format!("{admin}/admin/waf/blocked-ips?ip={prefix6}"),
        None,
        5,
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        curl(Some(&net.name), "GET", &site6, None, REQUEST_TIMEOUT_S).status,
        200
    );

    // Clean shutdown detaches the program.
    let status = rampart
        .terminate(Duration::from_secs(30))
        .expect("rampart did not exit after SIGTERM");
    assert!(status.success(), "rampart exited with {status}:\n{}", rampart.log());
    let link = must("ip", &["link", "show", "dev", &net.host_if]);
    assert!(!link.contains("prog/xdp"), "XDP still attached after shutdown:\n{link}");

    assert_namespace_removed(net);
}

fn metrics(admin: &str) -> String {
    let r = curl(None, "GET", &format!("{admin}/metrics"), None, 5);
    assert_eq!(r.status, 200, "{r:?}");
    r.body
}

/// Drops the namespace and checks it is really gone.
fn assert_namespace_removed(net: Netns) {
    let name = net.name.clone();
    drop(net);
    assert!(!netns_exists(&name), "namespace {name} left behind");
}

#[test]
fn several_interfaces_are_protected_and_xdp_status_reports_them() {
    require_root();
    let (one, two) = (Netns::create("m1"), Netns::create("m2"));
    let state = XdpState::new("multi");
    let (_upstream, up) = start_upstream();
    let (proxy, admin_port) = (free_port(), free_port());
    let config = format!(
        "server:\n  host: 0.0.0.0\n  port: {proxy}\n\
         proxy:\n  upstreams:\n    - name: app\n      servers: [{{host: 127.0.0.1, port: {up}}}]\n\
         admin:\n  port: {admin_port}\nwaf:\n  enabled: false\n\
         xdp:\n  interfaces: [{}, {}]\n{}",
        one.host_if,
        two.host_if,
        state.yaml()
    );
    let _rampart = start_rampart("rampart-multi", &config, admin_port);
    let admin = format!("http://127.0.0.1:{admin_port}");
    let body = format!(r#"{{"ip":"{}"}}"#, two.ns_ip);
    assert_eq!(
        curl(None, "POST", &format!("{admin}/admin/waf/blocked-ips"), Some(&body), 5).status,
        201
    );
    let site = |n: &Netns| format!("http://{}:{proxy}/", n.host_ip);
    assert_eq!(
        curl(Some(&one.name), "GET", &site(&one), None, REQUEST_TIMEOUT_S).status,
        200
    );
    assert_eq!(
        curl(Some(&two.name), "GET", &site(&two), None, REQUEST_TIMEOUT_S).curl_exit,
        28
    );

    let out = run(rampart_bin().to_str().unwrap(), &["xdp", "status", "--admin", &admin]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    for iface in [&one.host_if, &two.host_if] {
        let line = text
            .lines()
            .find(|l| l.starts_with(iface.as_str()))
            .unwrap_or_else(|| panic!("{iface} missing:\n{text}"));
        assert!(line.contains("native") && line.contains("true"), "{line}");
    }
    let program_id: u64 = text
        .lines()
        .next()
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert!(program_id > 0, "no program id:\n{text}");
    let deny = text
        .lines()
        .find(|l| l.starts_with("DENY_V4"))
        .unwrap_or_else(|| panic!("no DENY_V4 row:\n{text}"));
    assert_eq!(
        deny.split_whitespace().collect::<Vec<_>>(),
        ["DENY_V4", "1", "262144"],
        "{deny}"
    );
    let drops = text
        .lines()
        .find(|l| l.contains("deny_list"))
        .unwrap_or_else(|| panic!("no counter row:\n{text}"));
    let dropped: u64 = drops
        .split_whitespace()
        .nth(2)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert!(dropped > 0, "{drops}");
}
