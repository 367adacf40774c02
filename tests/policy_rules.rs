//! Custom rules and L7 geo through a real Rampart on loopback (XDP off): a configured rule blocks; rules
//! added, replaced and deleted through `POST /admin/waf/rules` and `PUT/DELETE /admin/waf/rules/{name}`
//! apply at once and survive a restart; a `rate_limit` rule refuses with 429; an `allow` rule skips the
//! detectors; countries come from the MaxMind test database (clients told apart by X-Forwarded-For from a
//! trusted proxy), are usable in rules, are named in security events as `client_country`, and the geo
//! policy is enforced at L7 because XDP is off.
#![allow(clippy::unwrap_used)] // a test reports failure by panicking

use std::net::SocketAddr;
use std::time::Duration;

use rampart_tests::http1::Client;
use rampart_tests::*;

const GB: &str = "81.2.69.142";
const CN: &str = "111.235.160.1";
const SE: &str = "89.160.20.113";

fn config(proxy_port: u16, admin_port: u16, upstream_port: u16, state: &XdpState, waf_yaml: &str) -> String {
    let db = shared_dir().join("testdata/geoip/GeoIP2-Country-Test.mmdb");
    format!(
        "server:\n  host: 127.0.0.1\n  port: {proxy_port}\n  trusted_proxies: [127.0.0.1/32]\n\
         proxy:\n  upstreams:\n    - name: app\n      servers:\n        - {{host: 127.0.0.1, port: {upstream_port}}}\n\
         admin:\n  port: {admin_port}\n\
         logging:\n  format: json\n\
         waf:\n  enabled: true\n  geo_blocking:\n    enabled: true\n    blocked_countries: [CN]\n    geoip_database: {}\n{waf_yaml}\
         xdp:\n  enabled: false\n{}",
        db.display(),
        state.yaml()
    )
}

fn get(c: &mut Client, path: &str, ip: &str) -> u16 {
    let r = c.get(path, &[("x-forwarded-for", ip)]).unwrap();
    if r.header("connection").is_some_and(|v| v.eq_ignore_ascii_case("close")) {
        c.reconnect().unwrap();
    }
    r.status
}

fn events(p: &Process, rule: &str) -> Vec<serde_json::Value> {
    p.log()
        .lines()
        .filter(|l| l.contains("rampart::security") && l.contains(rule))
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

#[test]
fn custom_rules_change_at_run_time_persist_and_see_countries() {
    let (_upstream, upstream_port) = start_upstream();
    let (proxy_port, admin_port) = (free_port(), free_port());
    let state = XdpState::new(&format!("rules{proxy_port}"));
    let waf = "  custom_rules:\n    - name: no_admin_from_outside\n      priority: 10\n      conditions:\n        \
               - {type: path, operator: starts_with, value: /admin/}\n        \
               - {type: ip, operator: not_in_subnet, value: 10.0.0.0/8}\n      action: block\n      message: Admin access denied\n";
    let text = config(proxy_port, admin_port, upstream_port, &state, waf);
    let mut rampart = start_rampart(&format!("rampart-rules-{proxy_port}"), &text, admin_port);
    let proxy = SocketAddr::from(([127, 0, 0, 1], proxy_port));
    wait_for_port(proxy, Duration::from_secs(20), &mut rampart);
    let admin = format!("http://127.0.0.1:{admin_port}");
    let mut c = Client::connect(proxy).unwrap();

    // The configured rule, with its event naming the client's country.
    assert_eq!(get(&mut c, "/admin/panel", GB), 403);
    assert_eq!(get(&mut c, "/admin/panel", "10.1.2.3"), 200, "inside the subnet");
    assert_eq!(get(&mut c, "/public", GB), 200);
    let ev = events(&rampart, "no_admin_from_outside");
    assert!(
        ev.iter().any(|e| e["client_country"] == "GB"
            && e["action_taken"] == "blocked"
            && e["message"] == "Admin access denied"),
        "{ev:?}"
    );

    // L7 geo (XDP is off): CN is refused, with its country in the event.
    assert_eq!(get(&mut c, "/public", CN), 403);
    assert!(
        rampart
            .log()
            .lines()
            .any(|l| l.contains("\"attack_type\":\"geo\"") && l.contains("\"client_country\":\"CN\"")),
        "{}",
        rampart.log()
    );

    // POST a rule on the country: SE is blocked at once; a duplicate name is refused.
    let rule = r#"{"name":"no_sweden","priority":5,"conditions":[{"type":"country","operator":"equals","value":"SE"}],"action":"block"}"#;
    let r = curl(None, "POST", &format!("{admin}/admin/waf/rules"), Some(rule), 5);
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(
        curl(None, "POST", &format!("{admin}/admin/waf/rules"), Some(rule), 5).status,
        409
    );
    let bad = r#"{"name":"bad","conditions":[{"type":"path","operator":"regex","value":"("}],"action":"block"}"#;
    let r = curl(None, "POST", &format!("{admin}/admin/waf/rules"), Some(bad), 5);
    assert_eq!(r.status, 422, "{r:?}");
    assert!(r.body.contains("regex"), "{r:?}");
    assert_eq!(get(&mut c, "/public", SE), 403);
    assert_eq!(get(&mut c, "/public", GB), 200);

    // PUT replaces it with a rate_limit rule: two requests a minute from SE, then 429.
    let limited = r#"{"name":"no_sweden","conditions":[{"type":"country","operator":"equals","value":"SE"}],"action":"rate_limit","rate_limit":{"requests_per_minute":2}}"#;
    let r = curl(
        None,
        "PUT",
        &format!("{admin}/admin/waf/rules/no_sweden"),
        Some(limited),
        5,
    );
    assert_eq!(r.status, 200, "{r:?}");
    let statuses: Vec<u16> = (0..4).map(|_| get(&mut c, "/public", SE)).collect();
    assert_eq!(statuses, [200, 200, 429, 429]);
    assert_eq!(
        curl(None, "PUT", &format!("{admin}/admin/waf/rules/nope"), Some(limited), 5).status,
        404
    );

    // An allow rule skips the detectors: an attack from 10.9.9.9 on /trusted passes.
    let allow = r#"{"name":"trusted_scanner","priority":1,"match":"all","conditions":[{"type":"ip","operator":"in_subnet","value":"10.9.0.0/16"},{"type":"path","operator":"starts_with","value":"/trusted"}],"action":"allow"}"#;
    assert_eq!(
        curl(None, "POST", &format!("{admin}/admin/waf/rules"), Some(allow), 5).status,
        201
    );
    let attack = "/trusted?q=1%27%20UNION%20SELECT%20password%20FROM%20users--";
    assert_eq!(get(&mut c, attack, "10.9.9.9"), 200);
    assert_eq!(
        get(&mut c, attack, "10.8.9.9"),
        403,
        "elsewhere the detectors still block"
    );

    // Restart: the admin changes are still in force; then DELETE the configured rule.
    let listed = json(&curl(None, "GET", &format!("{admin}/admin/waf/rules"), None, 5));
    assert_eq!(listed["custom_rules"].as_array().unwrap().len(), 3, "{listed}");
    rampart.terminate(Duration::from_secs(10));
    let mut rampart = start_rampart(&format!("rampart-rules2-{proxy_port}"), &text, admin_port);
    wait_for_port(proxy, Duration::from_secs(20), &mut rampart);
    let mut c = Client::connect(proxy).unwrap();
    assert_eq!(
        get(&mut c, attack, "10.9.9.9"),
        200,
        "the allow rule survived the restart"
    );
    let statuses: Vec<u16> = (0..3).map(|_| get(&mut c, "/public", SE)).collect();
    assert_eq!(statuses, [200, 200, 429], "the replaced rule survived the restart");
    let r = curl(
        None,
        "DELETE",
        &format!("{admin}/admin/waf/rules/no_admin_from_outside"),
        None,
        5,
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(get(&mut c, "/admin/panel", GB), 200, "deleted");
    assert_eq!(
        curl(
            None,
            "DELETE",
            &format!("{admin}/admin/waf/rules/no_admin_from_outside"),
            None,
            5
        )
        .status,
        404
    );
    assert_eq!(
        curl(None, "DELETE", &format!("{admin}/admin/waf/rules/xss"), None, 5).status,
        400
    );
}
