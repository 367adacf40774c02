//! The WAF in front of a real upstream on loopback, with XDP off: attacks get 403 naming the request id and
//! leave a JSON security event and a metric; clean requests pass; monitor mode logs instead of blocking; an
//! exclusion fixes a false positive; `PUT /admin/waf/rules/{name}` changes the live engine and survives a
//! reload; bodies over the inspection limit are blocked or inspected by prefix; `rampart waf test` reports.
#![allow(clippy::unwrap_used)] // a test reports failure by panicking

use std::net::SocketAddr;
use std::time::Duration;

use rampart_tests::*;

const ATTACK: &str = "/search?q=1%27%20UNION%20SELECT%20password%20FROM%20users--";

struct Setup {
    proxy: String,
    admin: String,
    rampart: Process,
    config: std::path::PathBuf,
    _upstream: Process,
    _state: XdpState,
}

/// Starts an upstream and Rampart with `waf_yaml` (lines under `waf:`).
fn start(tag: &str, waf_yaml: &str) -> Setup {
    let (upstream, upstream_port) = start_upstream();
    let (proxy_port, admin_port) = (free_port(), free_port());
    let state = XdpState::new(&format!("waf{tag}{proxy_port}"));
    let config = format!(
        "server:\n  host: 127.0.0.1\n  port: {proxy_port}\n\
         proxy:\n  upstreams:\n    - name: app\n      servers:\n        - {{host: 127.0.0.1, port: {upstream_port}}}\n  \
         routes:\n    - {{name: blog, pattern: \"/blog/*\", upstream: app}}\n    - {{name: main, pattern: \"/*\", upstream: app}}\n\
         admin:\n  port: {admin_port}\n\
         logging:\n  format: json\n\
         waf:\n  enabled: true\n{waf_yaml}\
         xdp:\n  enabled: false\n{}",
        state.yaml()
    );
    let path = temp_file(&format!("waf-{tag}-{proxy_port}.yaml"), &config);
    let mut rampart = Process::start(
        &format!("rampart-waf-{tag}"),
        &rampart_bin(),
        &["run", "--config", path.to_str().unwrap()],
        &[],
    );
    wait_for_port(
        SocketAddr::from(([127, 0, 0, 1], proxy_port)),
        Duration::from_secs(20),
        &mut rampart,
    );
    wait_for_port(
        SocketAddr::from(([127, 0, 0, 1], admin_port)),
        Duration::from_secs(20),
        &mut rampart,
    );
    Setup {
        proxy: format!("http://127.0.0.1:{proxy_port}"),
        admin: format!("http://127.0.0.1:{admin_port}"),
        rampart,
        config: path,
        _upstream: upstream,
        _state: state,
    }
}

/// `curl -i`: status, headers and body of one request.
fn get_with_headers(url: &str) -> (u16, String, String) {
    let out = run("curl", &["-sS", "-m", "5", "-i", url]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, head.to_ascii_lowercase(), body.to_owned())
}

fn put_rule(admin: &str, rule: &str, body: &str) -> Reply {
    curl(None, "PUT", &format!("{admin}/admin/waf/rules/{rule}"), Some(body), 5)
}

#[test]
fn an_attack_is_refused_with_its_request_id_a_security_event_and_a_metric() {
    let s = start("attack", "  mode: block\n");
    let (status, head, body) = get_with_headers(&format!("{}{ATTACK}", s.proxy));
    assert_eq!(status, 403, "{head}{body}");
    let id = head
        .lines()
        .find_map(|l| l.strip_prefix("x-request-id: "))
        .unwrap()
        .trim()
        .to_owned();
    assert!(body.contains(&id), "the block page names the request id {id}: {body}");
    assert!(head.contains("x-content-type-options: nosniff"), "{head}");
    assert!(
        eventually(Duration::from_secs(5), || s
            .rampart
            .log()
            .lines()
            .any(|l| l.contains(&id) && l.contains("\"event_type\":\"security_block\""))),
        "no security event for {id}:\n{}",
        s.rampart.log()
    );
    let event: serde_json::Value = s
        .rampart
        .log()
        .lines()
        .find(|l| l.contains(&id) && l.contains("security_block"))
        .map(|l| serde_json::from_str(l).unwrap())
        .unwrap();
    assert_eq!(event["attack_type"], "sql_injection");
    assert_eq!(event["rule_name"], "owasp_sql_injection");
    assert_eq!(event["action_taken"], "blocked");
    assert_eq!(event["client_ip"], "127.0.0.1");
    assert_eq!(event["method"], "GET");
    assert_eq!(event["path"], "/search");
    assert!(
        event["pattern_matched"].as_str().unwrap().contains("union select"),
        "{event}"
    );
    assert!(event["confidence"].as_f64().unwrap() >= 0.8, "{event}");
    let metrics = scrape(&s.admin);
    assert_eq!(
        metric(
            &metrics,
            "rampart_waf_blocked_requests_total{attack_type=\"sql_injection\"}"
        ),
        1.0
    );
    assert_eq!(metric(&metrics, "rampart_waf_requests_total{action=\"blocked\"}"), 1.0);
}

#[test]
fn a_clean_request_reaches_the_upstream() {
    let s = start("clean", "");
    let r = curl(
        None,
        "GET",
        &format!("{}/search?q=O%27Brien+select+a+plan", s.proxy),
        None,
        5,
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(json(&r)["path"], "/search?q=O%27Brien+select+a+plan");
    let r = curl(
        None,
        "POST",
        &format!("{}/api/items", s.proxy),
        Some(r#"{"name": "drop me a line"}"#),
        5,
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(json(&r)["body_bytes"], 26);
    let metrics = scrape(&s.admin);
    assert_eq!(metric(&metrics, "rampart_waf_requests_total{action=\"allowed\"}"), 2.0);
    assert!(metric(&metrics, "rampart_waf_request_duration_seconds_count{phase=\"head\"}") >= 1.0);
}

#[test]
fn monitor_mode_lets_an_attack_through_and_logs_it() {
    let s = start("monitor", "  mode: monitor\n");
    let r = curl(None, "GET", &format!("{}{ATTACK}", s.proxy), None, 5);
    assert_eq!(r.status, 200, "{r:?}");
    assert!(
        eventually(Duration::from_secs(5), || s
            .rampart
            .log()
            .contains("\"event_type\":\"security_detection\"")),
        "{}",
        s.rampart.log()
    );
    assert!(s.rampart.log().contains("\"action_taken\":\"logged\""));
    let metrics = scrape(&s.admin);
    assert_eq!(metric(&metrics, "rampart_waf_requests_total{action=\"logged\"}"), 1.0);
    assert_eq!(
        metric(
            &metrics,
            "rampart_waf_blocked_requests_total{attack_type=\"sql_injection\"}"
        ),
        0.0
    );
}

#[test]
fn an_exclusion_fixes_a_false_positive_on_its_route_and_argument_only() {
    let s = start(
        "excl",
        "  exclusions:\n    - {route: blog, args: [snippet], rules: [sql_injection]}\n",
    );
    let q = "snippet=1%27%20or%20%271%27%3D%271";
    assert_eq!(
        curl(None, "GET", &format!("{}/blog/post?{q}", s.proxy), None, 5).status,
        200
    );
    assert_eq!(curl(None, "GET", &format!("{}/shop?{q}", s.proxy), None, 5).status, 403);
    let other = "other=1%27%20or%20%271%27%3D%271";
    assert_eq!(
        curl(None, "GET", &format!("{}/blog/post?{other}", s.proxy), None, 5).status,
        403
    );
}

#[test]
fn a_rule_change_through_the_admin_api_takes_effect_at_once_and_survives_a_reload() {
    let s = start("admin", "");
    let xss = format!("{}/?q=%3Cscript%3Ealert(1)%3C/script%3E", s.proxy);
    assert_eq!(curl(None, "GET", &xss, None, 5).status, 403);
    let r = put_rule(&s.admin, "xss", r#"{"enabled": false}"#);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(json(&r)["rule"]["enabled"], false);
    assert_eq!(curl(None, "GET", &xss, None, 5).status, 200);
    // A reload rebuilds the engine from the file; the override is applied on top.
    std::fs::write(&s.config, std::fs::read_to_string(&s.config).unwrap() + "\n").unwrap();
    let r = curl(
        None,
        "POST",
        &format!("{}/admin/system/reload-config", s.admin),
        None,
        5,
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(curl(None, "GET", &xss, None, 5).status, 200);
    // Bad changes are refused with the field at fault and change nothing.
    let r = put_rule(&s.admin, "xss", r#"{"threshold": 2}"#);
    assert_eq!(r.status, 400, "{r:?}");
    assert_eq!(json(&r)["field"], "threshold");
    assert_eq!(put_rule(&s.admin, "no_such_rule", r#"{"enabled": true}"#).status, 404);
    let r = put_rule(&s.admin, "xss", r#"{"enabled": true, "action": "log"}"#);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        curl(None, "GET", &xss, None, 5).status,
        200,
        "action log lets it through"
    );
    assert_eq!(put_rule(&s.admin, "xss", r#"{"action": "block"}"#).status, 200);
    assert_eq!(curl(None, "GET", &xss, None, 5).status, 403);
    let rules = json(&curl(None, "GET", &format!("{}/admin/waf/rules", s.admin), None, 5));
    assert!(
        rules["rules"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["name"] == "xss" && r["enabled"] == true)
    );
}

#[test]
fn a_body_over_the_inspection_limit_is_blocked_by_default_and_inspected_by_prefix_when_asked() {
    let big = format!(r#"{{"text": "{}"}}"#, "a".repeat(2000));
    let s = start("overflow", "  body_inspection_limit: 1KB\n");
    let r = curl(None, "POST", &format!("{}/api", s.proxy), Some(&big), 5);
    assert_eq!(r.status, 403, "{r:?}");
    let small = r#"{"text": "hello"}"#;
    assert_eq!(
        curl(None, "POST", &format!("{}/api", s.proxy), Some(small), 5).status,
        200
    );
    drop(s);

    let s = start(
        "prefix",
        "  body_inspection_limit: 1KB\n  body_overflow: inspect_prefix\n",
    );
    let r = curl(None, "POST", &format!("{}/api", s.proxy), Some(&big), 5);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(json(&r)["body_bytes"], big.len(), "the whole body is forwarded");
    let attack_first = format!(r#"{{"text": "<script>alert(1)</script>{}"}}"#, "a".repeat(2000));
    assert_eq!(
        curl(None, "POST", &format!("{}/api", s.proxy), Some(&attack_first), 5).status,
        403
    );
}

#[test]
fn waf_test_replays_a_corpus_offline_and_ends_with_the_summary_line() {
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/waf-mini.jsonl");
    let out = run(
        rampart_bin().to_str().unwrap(),
        &["waf", "test", fixture.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    // Three of the four attacks are attacks a WAF can see (t-xss-2 is a plain word), the benign pass.
    assert_eq!(
        lines.last().copied(),
        Some("detection=75.0% false_positive=0.0%"),
        "{text}"
    );
    let row = |class: &str| lines.iter().find(|l| l.starts_with(class)).copied().unwrap_or("");
    assert!(row("sqli").contains("detection 100.0%"), "{text}");
    assert!(row("xss").contains("detection 50.0%"), "{text}");
    assert!(row("benign").contains("false positive 0.0%"), "{text}");
    assert!(text.contains("slowest requests:"), "{text}");
}
