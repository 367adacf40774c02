//! Escalation end to end across a real network boundary: an attacking client inside a network namespace
//! sends SQL injection through Rampart (XDP attached natively on the host side of the veth pair). Its first
//! requests are blocked at L7 with 403; once its offence score reaches `waf.auto_ban.threshold`, the daemon
//! writes it into the XDP deny map (reason auto-ban) and its packets are dropped in the driver: the next
//! connection attempt times out, the XDP deny-list drop counter rises, and `GET /admin/waf/blocked-ips`
//! lists the address with source `auto_ban` and an expiry.
#![allow(clippy::unwrap_used)] // a test reports failure by panicking

use std::time::Duration;

use rampart_tests::*;

const ATTACK: &str = "/search?q=1%27%20UNION%20SELECT%20password%20FROM%20users--";

#[test]
fn an_attacker_blocked_at_l7_is_then_dropped_by_xdp() {
    require_root();
    let net = Netns::create("ab");
    let state = XdpState::new("ab");
    let (proxy_port, admin_port) = (free_port(), free_port());
    let (_upstream, upstream_port) = start_upstream();
    let config = format!(
        "server:\n  host: \"::\"\n  port: {proxy_port}\n\
         proxy:\n  upstreams:\n    - name: app\n      servers:\n        - {{host: 127.0.0.1, port: {upstream_port}}}\n\
         admin:\n  host: 127.0.0.1\n  port: {admin_port}\n\
         logging:\n  format: json\n\
         waf:\n  enabled: true\n  auto_ban: {{enabled: true, threshold: 3, duration: 600}}\n\
         xdp:\n  interfaces: [{iface}]\n  attach_mode: auto\n{state}",
        iface = net.host_if,
        state = state.yaml(),
    );
    let rampart = start_rampart(&format!("rampart-autoban-{proxy_port}"), &config, admin_port);
    let admin = format!("http://127.0.0.1:{admin_port}");
    let health = json(&curl(None, "GET", &format!("{admin}/health"), None, 5));
    assert_eq!(health["components"]["xdp"]["attached"][0]["mode"], "native", "{health}");

    let site = format!("http://{}:{proxy_port}", net.host_ip);
    let ok = curl(Some(&net.name), "GET", &format!("{site}/hello"), None, 3);
    assert_eq!(ok.status, 200, "a clean request passes: {ok:?}");
    let drops = |admin: &str| {
        let m = curl(None, "GET", &format!("{admin}/metrics"), None, 5).body;
        metric(&m, r#"rampart_xdp_packets_total{action="drop",reason="deny_list"}"#)
    };
    let drops_before = drops(&admin);

    // Four attacks, each blocked at L7: scores decay (half-life 60 s), so three offences add up to just
    // under the threshold of 3 and the fourth crosses it.
    for i in 0..4 {
        let r = curl(Some(&net.name), "GET", &format!("{site}{ATTACK}"), None, 3);
        assert_eq!(r.status, 403, "attack {i} is blocked by the WAF: {r:?}");
    }
    // The ban is written off the request path: wait until it is listed.
    let mut listed = serde_json::Value::Null;
    assert!(
        eventually(Duration::from_secs(5), || {
            listed = json(&curl(None, "GET", &format!("{admin}/admin/waf/blocked-ips"), None, 5));
            listed["blocked_ips"].as_array().is_some_and(|a| !a.is_empty())
        }),
        "the attacker was never banned:\n{}",
        rampart.log()
    );
    let entry = &listed["blocked_ips"][0];
    assert_eq!(entry["ip"], format!("{}/32", net.ns_ip), "{listed}");
    assert_eq!(entry["source"], "auto_ban", "{listed}");
    assert!(entry["reason"].as_str().unwrap().starts_with("auto-ban"), "{listed}");
    assert!(entry["expires"].is_string(), "an auto-ban expires: {listed}");
    assert_eq!(listed["enforced_by"], "xdp");

    // From now on its packets die in XDP: even a clean request times out, and the drop counter rises.
    let dropped = curl(Some(&net.name), "GET", &format!("{site}/hello"), None, 3);
    assert_eq!(
        dropped.curl_exit, 28,
        "expected a timeout (dropped by XDP), got {dropped:?}"
    );
    assert!(drops(&admin) > drops_before, "XDP counted no deny-list drops");
    let event = rampart
        .log()
        .lines()
        .find(|l| l.contains("\"event_type\":\"auto_ban\""))
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .unwrap_or_else(|| panic!("no auto_ban security event:\n{}", rampart.log()));
    assert_eq!(event["client_ip"], net.ns_ip.as_str());
    assert_eq!(event["target"], "rampart::security", "{event}");

    // The host itself (another address) is unaffected.
    let host = curl(None, "GET", &format!("http://127.0.0.1:{proxy_port}/hello"), None, 3);
    assert_eq!(host.status, 200, "{host:?}");
}
