//! The admin API with authentication on, against a real daemon and upstream on loopback (XDP off): every
//! documented route for every role (allowed and forbidden), forged, edited, expired and alg-none tokens,
//! login lockout, refresh rotation and logout revocation, the admin rate limit, CORS, and the management
//! endpoints (WAF stats, deny and allow lists with expiry, upstream server changes, system status and logs,
//! metrics families after traffic).
#![allow(clippy::unwrap_used)] // a test reports failure by panicking

use std::io::Write;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use rampart_tests::*;
use serde_json::{Value, json};

const SECRET: &str = "test-secret-test-secret-test-secret-0123";
const ATTACK: &str = "/search?q=1%27%20UNION%20SELECT%20password%20FROM%20users--";

/// `rampart admin hash-password` with `password` on standard input.
fn hash(password: &str) -> String {
    let mut child = Command::new(rampart_bin())
        .args(["admin", "hash-password"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{password}\n").as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let h = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(h.starts_with("$argon2id$"), "{h}");
    h
}

struct Daemon {
    proxy: String,
    admin: String,
    upstream_port: u16,
    rampart: Process,
    _upstream: Process,
    _state: XdpState,
}

/// Rampart with three accounts (viewer/operator/admin, password = name + "-pw"), `admin_extra` lines under
/// `admin:` and `auth_extra` under `admin.auth:`.
fn start(tag: &str, auth_extra: &str, admin_extra: &str) -> Daemon {
    let (upstream, upstream_port) = start_upstream();
    let (proxy_port, admin_port) = (free_port(), free_port());
    let state = XdpState::new(&format!("adm{tag}{proxy_port}"));
    let users: String = ["viewer", "operator", "admin"]
        .iter()
        .map(|u| {
            format!(
                "      - {{username: {u}, role: {u}, password_hash: \"{}\"}}\n",
                hash(&format!("{u}-pw"))
            )
        })
        .collect();
    let config = format!(
        "server:\n  host: 127.0.0.1\n  port: {proxy_port}\n\
         proxy:\n  upstreams:\n    - name: app\n      servers:\n        - {{host: 127.0.0.1, port: {upstream_port}}}\n  \
         routes:\n    - {{name: main, pattern: \"/*\", upstream: app}}\n\
         admin:\n  port: {admin_port}\n  auth:\n    enabled: true\n    jwt_secret: {SECRET}\n    users:\n{users}{auth_extra}{admin_extra}\
         logging:\n  format: json\n\
         waf:\n  enabled: true\n  mode: block\n\
         xdp:\n  enabled: false\n{}",
        state.yaml()
    );
    let path = temp_file(&format!("admin-{tag}-{proxy_port}.yaml"), &config);
    let mut rampart = Process::start(
        &format!("rampart-admin-{tag}"),
        &rampart_bin(),
        &["run", "--config", path.to_str().unwrap()],
        &[],
    );
    for port in [proxy_port, admin_port] {
        wait_for_port(
            SocketAddr::from(([127, 0, 0, 1], port)),
            Duration::from_secs(20),
            &mut rampart,
        );
    }
    Daemon {
        proxy: format!("http://127.0.0.1:{proxy_port}"),
        admin: format!("http://127.0.0.1:{admin_port}"),
        upstream_port,
        rampart,
        _upstream: upstream,
        _state: state,
    }
}

/// A curl request with optional bearer token and extra headers; returns status, lower-cased head and body.
fn call(method: &str, url: &str, token: Option<&str>, body: Option<&str>, headers: &[&str]) -> (u16, String, String) {
    let mut args: Vec<String> = ["-sS", "-m", "10", "-i", "-X", method].map(String::from).to_vec();
    if let Some(t) = token {
        args.extend(["-H".into(), format!("authorization: Bearer {t}")]);
    }
    for h in headers {
        args.extend(["-H".into(), (*h).to_owned()]);
    }
    if let Some(b) = body {
        args.extend(["-H", "content-type: application/json", "--data-binary", b].map(String::from));
    }
    args.push(url.into());
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run("curl", &refs);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, head.to_ascii_lowercase(), body.to_owned())
}

fn login(d: &Daemon, user: &str, password: &str) -> (u16, Value) {
    let body = json!({ "username": user, "password": password }).to_string();
    let (status, _, text) = call("POST", &format!("{}/admin/auth/login", d.admin), None, Some(&body), &[]);
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn token(d: &Daemon, user: &str) -> String {
    let (status, v) = login(d, user, &format!("{user}-pw"));
    assert_eq!(status, 200, "{v}");
    v["access_token"].as_str().unwrap().to_owned()
}

/// A body the operation accepts, so an allowed role gets past validation.
fn body_for(method: &str, path: &str) -> Option<String> {
    let b = match (method, path) {
        ("POST", "/admin/auth/login") => json!({ "username": "nobody", "password": "x" }),
        ("POST", "/admin/waf/blocked-ips") => json!({ "ip": "198.51.100.7", "reason": "role test", "duration": 60 }),
        ("POST", "/admin/waf/whitelist-ip") => json!({ "ip": "198.51.100.8", "duration": 60 }),
        ("PUT", "/admin/waf/rules/{name}") => json!({ "enabled": true }),
        ("PUT", "/admin/proxy/upstreams/{name}/servers/{server_id}") => json!({ "weight": 1 }),
        _ => return None,
    };
    Some(b.to_string())
}

fn url_for(d: &Daemon, path: &str) -> String {
    let p = path
        .replace("/rules/{name}", "/rules/sql_injection")
        .replace("/upstreams/{name}", "/upstreams/app")
        .replace("{server_id}", &format!("127.0.0.1:{}", d.upstream_port))
        .replace("/blocked-ips", "/blocked-ips?ip=198.51.100.7")
        .replace("/whitelist-ip", "/whitelist-ip?ip=198.51.100.8");
    format!("{}{p}", d.admin)
}

const RANKS: [&str; 3] = ["viewer", "operator", "admin"];

#[test]
fn every_documented_route_admits_exactly_the_roles_it_names() {
    let d = start("roles", "", "  rate_limiting: {enabled: false}\n");
    let tokens: Vec<String> = RANKS.iter().map(|u| token(&d, u)).collect();
    let (status, _, doc) = call(
        "GET",
        &format!("{}/admin/openapi.json", d.admin),
        Some(&tokens[0]),
        None,
        &[],
    );
    assert_eq!(status, 200);
    let doc: Value = serde_json::from_str(&doc).unwrap();
    let mut checked = 0;
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            let method = method.to_ascii_uppercase();
            let role = op["x-rampart-role"].as_str().unwrap();
            let url = url_for(&d, path);
            let body = body_for(&method, path);
            // A route that is not served answers axum's empty 404 or 405; a handler's 404 has a JSON error.
            let served = |status: u16, text: &str| status != 405 && !(status == 404 && text.is_empty());
            let (anon, _, text) = call(&method, &url, None, body.as_deref(), &[]);
            if role == "public" {
                assert!(
                    served(anon, &text) && anon != 403,
                    "{method} {path} without a token: {anon} {text}"
                );
                checked += 1;
                continue;
            }
            assert_eq!(anon, 401, "{method} {path} without a token: {text}");
            let needed = RANKS.iter().position(|r| *r == role).unwrap();
            for (rank, user) in RANKS.iter().enumerate() {
                // Logging out closes the session; use a fresh one so the other checks keep theirs.
                let t = if path == "/admin/auth/logout" {
                    token(&d, user)
                } else {
                    tokens[rank].clone()
                };
                let (status, _, text) = call(&method, &url, Some(&t), body.as_deref(), &[]);
                if rank < needed {
                    assert_eq!(status, 403, "{user} on {method} {path}: {text}");
                    assert!(text.contains(role), "the refusal names the role needed: {text}");
                } else {
                    assert!(served(status, &text), "{user} on {method} {path} not served: {status}");
                    assert!(
                        status != 401 && status != 403,
                        "{user} on {method} {path}: {status} {text}"
                    );
                }
                checked += 1;
            }
        }
    }
    assert!(checked > 60, "only {checked} checks: is the document complete?");
}

fn forge(claims: &Value, alg: jsonwebtoken::Algorithm, secret: &str) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(alg),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

#[test]
fn forged_edited_alg_none_and_expired_tokens_are_refused() {
    let d = start("tokens", "    token_expiry: 2\n    refresh_token_expiry: 60\n", "");
    let (_, pair) = login(&d, "viewer", "viewer-pw");
    let access = pair["access_token"].as_str().unwrap();
    let status_url = format!("{}/admin/system/status", d.admin);
    let reload_url = format!("{}/admin/system/reload-config", d.admin);
    assert_eq!(call("GET", &status_url, Some(access), None, &[]).0, 200);

    let mut claims: Value = serde_json::from_slice(&B64.decode(access.split('.').nth(1).unwrap()).unwrap()).unwrap();
    assert_eq!(claims["role"], "viewer");
    // Raised to admin and signed with a guessed secret.
    claims["role"] = json!("admin");
    let guessed = forge(
        &claims,
        jsonwebtoken::Algorithm::HS256,
        "guessed-secret-guessed-secret-000000",
    );
    let (s, head, _) = call("POST", &reload_url, Some(&guessed), None, &[]);
    assert_eq!(s, 401);
    assert!(head.contains("www-authenticate: bearer"), "{head}");
    // The payload edited under the real signature.
    let parts: Vec<&str> = access.split('.').collect();
    let edited = format!("{}.{}.{}", parts[0], B64.encode(claims.to_string()), parts[2]);
    assert_eq!(call("POST", &reload_url, Some(&edited), None, &[]).0, 401);
    // alg none with no signature.
    let none = format!(
        "{}.{}.",
        B64.encode(r#"{"alg":"none","typ":"JWT"}"#),
        B64.encode(claims.to_string())
    );
    assert_eq!(call("GET", &status_url, Some(&none), None, &[]).0, 401);
    // The right secret but another algorithm than the configured HS256.
    claims["role"] = json!("viewer");
    let hs512 = forge(&claims, jsonwebtoken::Algorithm::HS512, SECRET);
    let (s, _, text) = call("GET", &status_url, Some(&hs512), None, &[]);
    assert_eq!(s, 401, "{text}");
    assert!(text.contains("algorithm"), "{text}");
    // A refresh token is not an access token.
    assert_eq!(
        call("GET", &status_url, pair["refresh_token"].as_str(), None, &[]).0,
        401
    );
    // Garbage.
    assert_eq!(call("GET", &status_url, Some("not.a.jwt"), None, &[]).0, 401);

    std::thread::sleep(Duration::from_millis(3100));
    let (s, _, text) = call("GET", &status_url, Some(access), None, &[]);
    assert_eq!(s, 401, "expired: {text}");
    assert!(text.contains("expired"), "{text}");
    // The refresh token outlives it and gets a working pair.
    let (s, _, text) = call(
        "POST",
        &format!("{}/admin/auth/refresh", d.admin),
        pair["refresh_token"].as_str(),
        None,
        &[],
    );
    assert_eq!(s, 200, "{text}");
    let fresh: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        call("GET", &status_url, fresh["access_token"].as_str(), None, &[]).0,
        200
    );
    let log = d.rampart.log();
    assert!(
        !log.contains(SECRET) && !log.contains(access) && !log.contains("viewer-pw"),
        "a secret was logged"
    );
}

#[test]
fn repeated_failed_logins_lock_the_account_for_the_lockout_duration() {
    let d = start("lockout", "    max_login_attempts: 3\n    lockout_duration: 2\n", "");
    for _ in 0..3 {
        assert_eq!(login(&d, "operator", "wrong").0, 401);
    }
    let (s, v) = login(&d, "operator", "operator-pw");
    assert_eq!(s, 429, "the right password is refused while locked: {v}");
    assert!(v["error"].as_str().unwrap().contains("locked"), "{v}");
    assert_eq!(login(&d, "admin", "admin-pw").0, 200, "other accounts are not locked");
    // Unknown users get the same answer as a wrong password.
    assert_eq!(login(&d, "ghost", "x").1["error"], login(&d, "viewer", "x").1["error"]);
    std::thread::sleep(Duration::from_millis(2200));
    assert_eq!(
        login(&d, "operator", "operator-pw").0,
        200,
        "unlocked after the duration"
    );
    assert!(
        d.rampart.log().contains("admin account locked"),
        "the lockout is logged"
    );
}

#[test]
fn refresh_rotates_tokens_and_logout_revokes_the_session() {
    let d = start("refresh", "", "");
    let refresh_url = format!("{}/admin/auth/refresh", d.admin);
    let waf_url = format!("{}/admin/waf/stats", d.admin);
    let (_, first) = login(&d, "operator", "operator-pw");
    let (s, _, text) = call("POST", &refresh_url, first["refresh_token"].as_str(), None, &[]);
    assert_eq!(s, 200, "{text}");
    let second: Value = serde_json::from_str(&text).unwrap();
    assert_ne!(second["refresh_token"], first["refresh_token"]);
    assert_eq!(call("GET", &waf_url, second["access_token"].as_str(), None, &[]).0, 200);
    // The consumed refresh token again: refused, and the session it belonged to is closed.
    let (s, _, text) = call("POST", &refresh_url, first["refresh_token"].as_str(), None, &[]);
    assert_eq!(s, 401);
    assert!(text.contains("already used"), "{text}");
    assert_eq!(call("GET", &waf_url, second["access_token"].as_str(), None, &[]).0, 401);

    let (_, pair) = login(&d, "operator", "operator-pw");
    let access = pair["access_token"].as_str().unwrap();
    let (s, _, text) = call(
        "POST",
        &format!("{}/admin/auth/logout", d.admin),
        Some(access),
        None,
        &[],
    );
    assert_eq!(
        (s, serde_json::from_str::<Value>(&text).unwrap()["success"].clone()),
        (200, json!(true))
    );
    assert_eq!(
        call("GET", &waf_url, Some(access), None, &[]).0,
        401,
        "access token revoked"
    );
    let body = json!({ "refresh_token": pair["refresh_token"] }).to_string();
    assert_eq!(
        call("POST", &refresh_url, None, Some(&body), &[]).0,
        401,
        "refresh token revoked"
    );
}

#[test]
fn the_admin_rate_limit_answers_429_but_never_limits_health() {
    let d = start(
        "ratelimit",
        "",
        "  rate_limiting: {enabled: true, requests_per_minute: 5, per_ip: true}\n",
    );
    let url = format!("{}/admin/openapi.json", d.admin);
    let statuses: Vec<u16> = (0..7).map(|_| call("GET", &url, None, None, &[]).0).collect();
    assert_eq!(statuses, [401, 401, 401, 401, 401, 429, 429]);
    let (_, head, _) = call("GET", &url, None, None, &[]);
    assert!(head.contains("retry-after: "), "{head}");
    for _ in 0..10 {
        assert_eq!(call("GET", &format!("{}/health", d.admin), None, None, &[]).0, 200);
    }
}

#[test]
fn cors_answers_configured_origins_only() {
    let d = start(
        "cors",
        "",
        "  cors:\n    enabled: true\n    allow_origins: [\"https://ops.example\"]\n    allow_headers: [authorization, content-type]\n    max_age: 120\n",
    );
    let url = format!("{}/admin/waf/stats", d.admin);
    let preflight = ["origin: https://ops.example", "access-control-request-method: GET"];
    let (s, head, _) = call("OPTIONS", &url, None, None, &preflight);
    assert_eq!(s, 204, "{head}");
    assert!(
        head.contains("access-control-allow-origin: https://ops.example"),
        "{head}"
    );
    assert!(
        head.contains("access-control-allow-headers: authorization, content-type"),
        "{head}"
    );
    assert!(head.contains("access-control-max-age: 120"), "{head}");
    let (_, head, _) = call(
        "OPTIONS",
        &url,
        None,
        None,
        &["origin: https://evil.example", "access-control-request-method: GET"],
    );
    assert!(!head.contains("access-control-allow-origin"), "{head}");
    let t = token(&d, "viewer");
    let (s, head, _) = call("GET", &url, Some(&t), None, &["origin: https://ops.example"]);
    assert_eq!(s, 200);
    assert!(
        head.contains("access-control-allow-origin: https://ops.example"),
        "{head}"
    );
}

#[test]
fn management_endpoints_change_and_report_live_state() {
    let d = start("manage", "", "");
    let op = token(&d, "operator");
    let admin = &d.admin;
    // An attack and clean traffic, then the WAF stats and metrics show them.
    assert_eq!(curl(None, "GET", &format!("{}{ATTACK}", d.proxy), None, 5).status, 403);
    for _ in 0..3 {
        assert_eq!(curl(None, "GET", &format!("{}/ok", d.proxy), None, 5).status, 200);
    }
    let (_, _, text) = call("GET", &format!("{admin}/admin/waf/stats"), Some(&op), None, &[]);
    let stats: Value = serde_json::from_str(&text).unwrap();
    assert!(stats["requests_processed"].as_u64().unwrap() >= 4, "{stats}");
    assert!(stats["requests_blocked"].as_u64().unwrap() >= 1, "{stats}");
    assert!(stats["attack_types"]["sql_injection"].as_u64().unwrap() >= 1, "{stats}");

    let m = scrape(admin);
    for family in [
        "rampart_waf_requests_total{action=\"blocked\"}",
        "rampart_waf_blocked_requests_total{attack_type=\"sql_injection\"}",
        "rampart_waf_request_duration_seconds_count",
        "rampart_proxy_requests_total{status_code=\"200\",upstream=\"app\"}",
        "rampart_proxy_request_duration_seconds_count{upstream=\"app\"}",
        "rampart_proxy_upstream_connections_active{upstream=\"app\"}",
        "rampart_process_resident_memory_bytes",
        "rampart_process_cpu_seconds_total",
    ] {
        assert!(m.lines().any(|l| l.starts_with(family)), "{family} missing:\n{m}");
    }
    assert_eq!(
        metric(&m, "rampart_proxy_requests_total{status_code=\"200\",upstream=\"app\"}"),
        3.0
    );
    let health = format!(
        "rampart_proxy_upstream_health_status{{server=\"127.0.0.1:{}\",upstream=\"app\"}}",
        d.upstream_port
    );
    assert_eq!(metric(&m, &health), 1.0, "{m}");
    assert!(!m.contains("=\"127.0.0.1\""), "a client address became a label:\n{m}");
    // Every family the shipped Grafana dashboard and alerts query exists (XDP ones need XDP, which is off).
    let deploy = [
        include_str!("../deploy/grafana/rampart-dashboard.json"),
        include_str!("../deploy/prometheus/rampart-alerts.yml"),
    ]
    .concat();
    let mut queried: Vec<&str> = deploy
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with("rampart_") && !w.starts_with("rampart_xdp_"))
        .map(|w| w.trim_end_matches("_bucket"))
        .collect();
    queried.sort_unstable();
    queried.dedup();
    assert!(queried.len() >= 6, "{queried:?}");
    for name in queried {
        assert!(
            m.contains(&format!("# TYPE {name} ")),
            "the dashboard queries {name}, which is not exported"
        );
    }
    assert!(!m.contains("/search"), "a path became a label");

    // Deny list with expiry and reason, allow list with duration.
    let body = json!({ "ip": "203.0.113.9", "reason": "scanner", "duration": 600 }).to_string();
    assert_eq!(
        call(
            "POST",
            &format!("{admin}/admin/waf/blocked-ips"),
            Some(&op),
            Some(&body),
            &[]
        )
        .0,
        201
    );
    let (_, _, text) = call("GET", &format!("{admin}/admin/waf/blocked-ips"), Some(&op), None, &[]);
    let listed: Value = serde_json::from_str(&text).unwrap();
    let entry = listed["blocked_ips"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["ip"] == "203.0.113.9/32")
        .unwrap();
    assert_eq!(entry["reason"], "scanner");
    assert!(entry["expires"].as_str().unwrap().starts_with("20"), "{entry}");
    let body = json!({ "ip": "192.0.2.0/24", "duration": 300 }).to_string();
    assert_eq!(
        call(
            "POST",
            &format!("{admin}/admin/waf/whitelist-ip"),
            Some(&op),
            Some(&body),
            &[]
        )
        .0,
        201
    );
    let (_, _, text) = call("GET", &format!("{admin}/admin/waf/whitelist-ip"), Some(&op), None, &[]);
    assert!(
        text.contains("192.0.2.0/24") && text.contains("\"expires\":\"20"),
        "{text}"
    );
    let (s, _, text) = call(
        "POST",
        &format!("{admin}/admin/waf/whitelist-ip"),
        Some(&op),
        Some("{\"ip\":\"300.1.1.1\"}"),
        &[],
    );
    assert_eq!(s, 400);
    assert!(text.contains("\"field\":\"ip\""), "{text}");
    assert_eq!(
        call(
            "DELETE",
            &format!("{admin}/admin/waf/whitelist-ip?ip=192.0.2.0/24"),
            Some(&op),
            None,
            &[]
        )
        .0,
        200
    );
    assert_eq!(
        call(
            "DELETE",
            &format!("{admin}/admin/waf/whitelist-ip?ip=192.0.2.0/24"),
            Some(&op),
            None,
            &[]
        )
        .0,
        404
    );

    // Take the only server out of rotation: traffic fails over to nothing, then comes back.
    let server = format!(
        "{admin}/admin/proxy/upstreams/app/servers/127.0.0.1:{}",
        d.upstream_port
    );
    let (s, _, text) = call("PUT", &server, Some(&op), Some("{\"enabled\":false,\"weight\":3}"), &[]);
    assert_eq!(s, 200, "{text}");
    let (_, _, text) = call("GET", &format!("{admin}/admin/proxy/upstreams"), Some(&op), None, &[]);
    let up: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(up["upstreams"][0]["servers"][0]["status"], "disabled");
    assert_eq!(up["upstreams"][0]["servers"][0]["weight"], 3);
    assert_ne!(curl(None, "GET", &format!("{}/ok", d.proxy), None, 5).status, 200);
    assert_eq!(call("PUT", &server, Some(&op), Some("{\"enabled\":true}"), &[]).0, 200);
    assert_eq!(curl(None, "GET", &format!("{}/ok", d.proxy), None, 5).status, 200);
    let (s, _, text) = call(
        "PUT",
        &format!("{admin}/admin/proxy/upstreams/app/servers/10.9.9.9:1"),
        Some(&op),
        Some("{\"weight\":1}"),
        &[],
    );
    assert_eq!(s, 404);
    assert!(text.contains("has no server"), "{text}");

    // System status and logs.
    let (_, _, text) = call("GET", &format!("{admin}/admin/system/status"), Some(&op), None, &[]);
    let st: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(st["status"], "healthy", "{st}");
    assert!(st["memory_usage"]["used"].as_u64().unwrap() > 1 << 20, "{st}");
    let names: Vec<&str> = st["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"waf") && names.contains(&"xdp") && names.contains(&"upstreams"),
        "{st}"
    );
    let (s, _, text) = call(
        "GET",
        &format!("{admin}/admin/system/logs?level=warn&limit=50"),
        Some(&op),
        None,
        &[],
    );
    assert_eq!(s, 200, "{text}");
    let logs: Value = serde_json::from_str(&text).unwrap();
    let logs = logs["logs"].as_array().unwrap();
    assert!(!logs.is_empty() && logs.len() <= 50);
    assert!(
        logs.iter().all(|l| l["level"] == "WARN" || l["level"] == "ERROR"),
        "{logs:?}"
    );
    assert!(
        logs.iter().any(|l| l.to_string().contains("security_block")),
        "the attack's event: {logs:?}"
    );
    let (s, _, text) = call(
        "GET",
        &format!("{admin}/admin/system/logs?level=loud"),
        Some(&op),
        None,
        &[],
    );
    assert_eq!(s, 400);
    assert!(text.contains("\"field\":\"level\""), "{text}");
    let (_, _, text) = call(
        "GET",
        &format!("{admin}/admin/system/logs?since=1h&limit=2000"),
        Some(&op),
        None,
        &[],
    );
    assert!(text.contains("admin API listening"), "{text}");

    // Cache: no rules in this configuration, and the answer says so.
    let (_, _, text) = call("GET", &format!("{admin}/admin/proxy/cache/stats"), Some(&op), None, &[]);
    assert!(
        text.contains("\"cache_enabled\":false") && text.contains("\"entries\":0"),
        "{text}"
    );
}

#[test]
fn auth_cannot_be_off_on_a_non_loopback_listener() {
    let path = temp_file(
        "admin-open.yaml",
        "admin:\n  host: 0.0.0.0\n  port: 18081\n  auth:\n    enabled: false\nxdp:\n  enabled: false\n",
    );
    let out = run(
        rampart_bin().to_str().unwrap(),
        &["config", "validate", path.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("admin.auth.enabled") && err.contains("loopback"), "{err}");
    let path = temp_file(
        "admin-plain.yaml",
        "admin:\n  auth:\n    enabled: true\n    jwt_secret: 0123456789abcdef0123456789abcdef\n    users:\n      - {username: a, role: admin, password_hash: hunter2}\n",
    );
    let out = run(
        rampart_bin().to_str().unwrap(),
        &["config", "validate", path.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("password_hash"));
}

/// `rampart ARGS` with `RAMPART_TOKEN_FILE` set and `stdin` fed in; returns exit status, stdout, stderr.
fn cli(token_file: &std::path::Path, args: &[&str], stdin: &str) -> (i32, String, String) {
    let mut child = Command::new(rampart_bin())
        .args(args)
        .env("RAMPART_TOKEN_FILE", token_file)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_cli_logs_in_manages_lists_and_rules_and_tails_events() {
    use std::os::unix::fs::PermissionsExt;
    let d = start("cli", "", "");
    let dir = std::env::temp_dir().join(format!("rampart-cli-{}", d.upstream_port));
    let _ = std::fs::remove_dir_all(&dir);
    let tokens = dir.join("sub").join("token");
    let a = d.admin.as_str();
    let (code, out, err) = cli(&tokens, &["login", "--admin", a, "--username", "operator"], "wrong\n");
    assert_ne!(code, 0, "{out}");
    assert!(err.contains("401"), "{err}");
    let (code, out, err) = cli(
        &tokens,
        &["login", "--admin", a, "--username", "operator"],
        "operator-pw\n",
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("as operator (operator)"), "{out}");
    assert_eq!(std::fs::metadata(&tokens).unwrap().permissions().mode() & 0o777, 0o600);
    assert_eq!(
        std::fs::metadata(tokens.parent().unwrap())
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o700
    );
    assert!(!std::fs::read_to_string(&tokens).unwrap().contains("operator-pw"));

    let (code, out, err) = cli(
        &tokens,
        &[
            "waf",
            "block-ip",
            "203.0.113.5",
            "--duration",
            "10m",
            "--reason",
            "cli-test",
            "--admin",
            a,
        ],
        "",
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("blocked 203.0.113.5/32 until 20"), "{out}");
    let (_, out, _) = cli(&tokens, &["waf", "status", "--admin", a], "");
    assert!(out.contains("203.0.113.5/32") && out.contains("cli-test"), "{out}");
    let (_, out, _) = cli(&tokens, &["waf", "status", "--json", "--admin", a], "");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["blocked_ips"][0]["reason"], "cli-test");
    let (code, out, _) = cli(&tokens, &["waf", "unblock-ip", "203.0.113.5", "--admin", a], "");
    assert_eq!((code, out.trim()), (0, "unblocked 203.0.113.5/32"));
    let (code, _, err) = cli(&tokens, &["waf", "unblock-ip", "203.0.113.5", "--admin", a], "");
    assert_ne!(code, 0);
    assert!(err.contains("not on the deny list"), "{err}");

    assert_eq!(cli(&tokens, &["waf", "rules", "disable", "xss", "--admin", a], "").0, 0);
    let (_, out, _) = cli(&tokens, &["waf", "rules", "list", "--json", "--admin", a], "");
    let rules: Value = serde_json::from_str(&out).unwrap();
    let xss = rules["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "xss")
        .unwrap();
    assert_eq!(xss["enabled"], false);
    assert_eq!(cli(&tokens, &["waf", "rules", "enable", "xss", "--admin", a], "").0, 0);
    let (_, out, _) = cli(&tokens, &["waf", "rules", "list", "--admin", a], "");
    assert!(out.lines().any(|l| l.starts_with("xss") && l.contains("true")), "{out}");

    let (_, out, _) = cli(&tokens, &["proxy", "status", "--admin", a], "");
    assert!(
        out.contains(&format!("127.0.0.1:{}", d.upstream_port)) && out.contains("healthy"),
        "{out}"
    );
    let (code, out, _) = cli(&tokens, &["cache", "clear", "--pattern", "/img/*", "--admin", a], "");
    assert_eq!(code, 0);
    assert!(
        out.contains("entries cleared: 0") && out.contains("no cache rules are configured"),
        "{out}"
    );
    let (_, out, _) = cli(&tokens, &["monitor", "health", "--admin", a], "");
    assert!(out.starts_with("status: healthy") && out.contains("upstreams"), "{out}");

    // `events` sees an attack made while it listens.
    let mut tail = Command::new(rampart_bin())
        .args(["events", "--count", "1", "--json", "--admin", a])
        .env("RAMPART_TOKEN_FILE", &tokens)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let attack = format!("{}{ATTACK}", d.proxy);
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while tail.try_wait().unwrap().is_none() && std::time::Instant::now() < deadline {
        curl(None, "GET", &attack, None, 5);
        std::thread::sleep(Duration::from_millis(300));
    }
    if tail.try_wait().unwrap().is_none() {
        tail.kill().unwrap();
    }
    let out = tail.wait_with_output().unwrap();
    let line = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "events: {line} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ev: Value = serde_json::from_str(line.trim()).unwrap();
    assert_eq!(
        (ev["topic"].as_str(), ev["data"]["attack_type"].as_str()),
        (Some("security_events"), Some("sql_injection"))
    );

    // A viewer may read but not block.
    let viewer = dir.join("viewer-token");
    assert_eq!(
        cli(&viewer, &["login", "--admin", a, "--username", "viewer"], "viewer-pw\n").0,
        0
    );
    assert_eq!(cli(&viewer, &["proxy", "status", "--admin", a], "").0, 0);
    let (code, _, err) = cli(&viewer, &["waf", "block-ip", "203.0.113.6", "--admin", a], "");
    assert_ne!(code, 0);
    assert!(err.contains("403") && err.contains("operator"), "{err}");

    let (code, out, _) = cli(&tokens, &["completions", "bash"], "");
    assert_eq!(code, 0);
    assert!(
        out.contains("block-ip") && out.contains("complete"),
        "bash completion script"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_websocket_needs_a_valid_token_first_and_sends_subscribed_topics() {
    let d = start("ws", "", "");
    let dir = std::env::temp_dir().join(format!("rampart-ws-{}", d.upstream_port));
    let tokens = dir.join("token");
    // Without logging in the CLI has no token: the socket refuses it.
    let (code, _, err) = cli(&tokens, &["events", "--count", "1", "--admin", &d.admin], "");
    assert_ne!(code, 0);
    assert!(err.contains("401") || err.contains("authentication"), "{err}");
    assert_eq!(
        cli(
            &tokens,
            &["login", "--admin", &d.admin, "--username", "viewer"],
            "viewer-pw\n"
        )
        .0,
        0
    );
    let (code, out, err) = cli(
        &tokens,
        &[
            "events",
            "--topic",
            "performance_metrics",
            "--topic",
            "health_status",
            "--count",
            "2",
            "--json",
            "--admin",
            &d.admin,
        ],
        "",
    );
    assert_eq!(code, 0, "{err}");
    let topics: Vec<String> = out
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["topic"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert!(topics.contains(&"performance_metrics".to_owned()), "{out}");
    assert!(
        topics
            .iter()
            .all(|t| t == "performance_metrics" || t == "health_status"),
        "{out}"
    );
    let (code, _, err) = cli(
        &tokens,
        &["events", "--topic", "gossip", "--count", "1", "--admin", &d.admin],
        "",
    );
    assert_ne!(code, 0);
    assert!(err.contains("unknown topic"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A Chrome DevTools Protocol session with one page of a headless chromium.
struct Cdp {
    ws: tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<std::net::TcpStream>>,
    next: u64,
}

impl Cdp {
    fn call(&mut self, method: &str, params: Value) -> Value {
        self.next += 1;
        let id = self.next;
        let msg = json!({ "id": id, "method": method, "params": params }).to_string();
        self.ws.send(tungstenite::Message::text(msg)).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while std::time::Instant::now() < deadline {
            let m = match self.ws.read() {
                Ok(m) => m,
                Err(tungstenite::Error::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                Err(tungstenite::Error::Io(e)) if e.kind() == std::io::ErrorKind::TimedOut => continue,
                Err(e) => panic!("CDP: {e}"),
            };
            if let tungstenite::Message::Text(t) = m {
                let v: Value = serde_json::from_str(&t).unwrap();
                if v["id"] == id {
                    assert!(v.get("error").is_none(), "{method}: {v}");
                    return v["result"].clone();
                }
            }
        }
        panic!("no answer to {method}");
    }

    /// Evaluates `expr` in the page and returns its value.
    fn eval(&mut self, expr: &str) -> Value {
        let r = self.call(
            "Runtime.evaluate",
            json!({ "expression": expr, "returnByValue": true, "awaitPromise": true }),
        );
        assert!(r.get("exceptionDetails").is_none(), "{expr}: {r}");
        r["result"]["value"].clone()
    }

    fn wait_for(&mut self, expr: &str, timeout: Duration) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        while std::time::Instant::now() < deadline {
            if self.eval(expr) == json!(true) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        false
    }
}

#[test]
fn the_dashboard_in_headless_chromium_logs_in_shows_an_attack_live_and_unblocks_an_ip() {
    let d = start("browser", "", "  rate_limiting: {enabled: false}\n");
    let op = token(&d, "operator");
    let body = json!({ "ip": "198.51.100.20", "reason": "to unblock", "duration": 3600 }).to_string();
    assert_eq!(
        call(
            "POST",
            &format!("{}/admin/waf/blocked-ips", d.admin),
            Some(&op),
            Some(&body),
            &[]
        )
        .0,
        201
    );
    let (s, head, _) = call("GET", &format!("{}/admin/dashboard", d.admin), None, None, &[]);
    assert_eq!(s, 200);
    assert!(
        head.contains("content-security-policy: default-src 'none'; script-src 'self'"),
        "{head}"
    );

    let port = free_port();
    let profile = std::env::temp_dir().join(format!("rampart-chromium-{port}"));
    let args = [
        "--headless=new".to_owned(),
        "--no-sandbox".into(),
        "--disable-gpu".into(),
        "--disable-dev-shm-usage".into(),
        "--no-first-run".into(),
        "--window-size=1400,1100".into(),
        format!("--remote-debugging-port={port}"),
        format!("--user-data-dir={}", profile.display()),
        "about:blank".into(),
    ];
    let arg_refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut chromium = Process::start("chromium", std::path::Path::new("/usr/bin/chromium"), &arg_refs, &[]);
    wait_for_port(
        SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_secs(30),
        &mut chromium,
    );
    let mut target = Value::Null;
    assert!(eventually(Duration::from_secs(10), || {
        let list = curl(None, "GET", &format!("http://127.0.0.1:{port}/json/list"), None, 5);
        target = serde_json::from_str::<Value>(&list.body)
            .ok()
            .and_then(|v| v.as_array()?.iter().find(|t| t["type"] == "page").cloned())
            .unwrap_or(Value::Null);
        !target.is_null()
    }));
    let (ws, _) = tungstenite::connect(target["webSocketDebuggerUrl"].as_str().unwrap()).unwrap();
    if let tungstenite::stream::MaybeTlsStream::Plain(s) = ws.get_ref() {
        s.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
    }
    let mut cdp = Cdp { ws, next: 0 };
    cdp.call(
        "Page.navigate",
        json!({ "url": format!("{}/admin/dashboard", d.admin) }),
    );
    assert!(cdp.wait_for(
        "document.readyState === 'complete' && !!document.getElementById('login-button')",
        Duration::from_secs(15)
    ));

    // A wrong password is refused on the page.
    cdp.eval("document.getElementById('username').value = 'operator'; document.getElementById('password').value = 'nope'; document.getElementById('login-button').click(); true");
    assert!(cdp.wait_for(
        "document.getElementById('login-error').textContent.includes('invalid')",
        Duration::from_secs(10)
    ));
    cdp.eval("document.getElementById('password').value = 'operator-pw'; document.getElementById('login-button').click(); true");
    assert!(
        cdp.wait_for(
            "document.getElementById('live').textContent === 'connected'",
            Duration::from_secs(15)
        ),
        "the live event socket did not connect: {}",
        cdp.eval("document.body.innerText")
    );
    assert!(cdp.wait_for(
        "!!document.querySelector('[data-unblock=\"198.51.100.20/32\"]')",
        Duration::from_secs(10)
    ));
    // Signed in: the form is gone from the screen, the application is on it.
    assert_eq!(
        cdp.eval(
            "[getComputedStyle(document.getElementById('login')).display, \
             getComputedStyle(document.getElementById('app')).display]"
        ),
        json!(["none", "grid"])
    );

    // An attack appears live (the page is not reloaded; the WebSocket brings it).
    let attack = format!("{}{ATTACK}", d.proxy);
    assert_eq!(curl(None, "GET", &attack, None, 5).status, 403);
    assert!(
        cdp.wait_for(
            "document.getElementById('events').innerText.includes('sql_injection') && document.getElementById('attackers').innerText.includes('127.0.0.1')",
            Duration::from_secs(10)
        ),
        "{}",
        cdp.eval("document.body.innerText")
    );
    // The payload is shown as text, never as markup.
    let xss = format!("{}/p?q=%3Cscript%3Ealert(1)%3C/script%3E", d.proxy);
    assert_eq!(curl(None, "GET", &xss, None, 5).status, 403);
    assert!(cdp.wait_for(
        "document.getElementById('events').innerText.includes('xss')",
        Duration::from_secs(10)
    ));
    assert_eq!(cdp.eval("document.querySelectorAll('#events script').length"), json!(0));

    // Unblock from the page: the deny list loses the entry.
    cdp.eval("document.querySelector('[data-unblock=\"198.51.100.20/32\"]').click(); true");
    assert!(eventually(Duration::from_secs(10), || {
        let (_, _, text) = call(
            "GET",
            &format!("{}/admin/waf/blocked-ips", d.admin),
            Some(&op),
            None,
            &[],
        );
        !text.contains("198.51.100.20")
    }));
    assert!(cdp.wait_for(
        "!document.querySelector('[data-unblock=\"198.51.100.20/32\"]')",
        Duration::from_secs(10)
    ));
    assert!(
        cdp.eval("document.getElementById('upstreams').innerText")
            .as_str()
            .unwrap()
            .contains("healthy")
    );

    let shot = cdp.call("Page.captureScreenshot", json!({ "format": "png" }));
    let png = base64::engine::general_purpose::STANDARD
        .decode(shot["data"].as_str().unwrap())
        .unwrap();
    assert!(png.starts_with(b"\x89PNG"));
    let out = std::env::var_os("RAMPART_SCREENSHOT").map_or_else(
        || std::env::temp_dir().join("rampart-dashboard.png"),
        std::path::PathBuf::from,
    );
    std::fs::write(&out, png).unwrap();
    drop(cdp);
    chromium.terminate(Duration::from_secs(5));
    let _ = std::fs::remove_dir_all(&profile);
}
