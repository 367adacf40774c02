//! Proxy behaviour against real upstream processes: HTTP/2 multiplexing, WebSocket tunnels, the PROXY protocol,
//! route rewrites, error answers and their metrics, limits, idle timeouts and graceful shutdown.
#![allow(clippy::unwrap_used)] // a test reports failure by panicking

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use rampart_tests::http1::{Client, websocket_echo};
use rampart_tests::*;

struct Daemon {
    proxy: SocketAddr,
    admin: String,
    process: Process,
    _state: XdpState,
}

fn daemon(tag: &str, server_extra: &str, upstreams: &str, routes: &str) -> Daemon {
    let state = XdpState::new(tag);
    let (proxy, admin) = (free_port(), free_port());
    let config = format!(
        "server:\n  host: 127.0.0.1\n  port: {proxy}\n{server_extra}proxy:\n  upstreams:\n{upstreams}  routes:\n{routes}\
         admin:\n  port: {admin}\nwaf:\n  enabled: false\nxdp:\n  enabled: false\n{}",
        state.yaml()
    );
    let path = temp_file(&format!("{tag}.yaml"), &config);
    let mut process = Process::start(tag, &rampart_bin(), &["run", "--config", path.to_str().unwrap()], &[]);
    wait_for_port(
        SocketAddr::from(([127, 0, 0, 1], admin)),
        Duration::from_secs(20),
        &mut process,
    );
    Daemon {
        proxy: SocketAddr::from(([127, 0, 0, 1], proxy)),
        admin: format!("http://127.0.0.1:{admin}"),
        process,
        _state: state,
    }
}

fn one(name: &str, port: u16) -> String {
    format!("    - {{name: {name}, servers: [{{host: 127.0.0.1, port: {port}}}]}}\n")
}

#[test]
fn http2_requests_share_one_connection() {
    let (_u, up) = start_upstream();
    let d = daemon("h2mux", "", &one("app", up), "    - {upstream: app}\n");
    // One client, one connection, up to 20 streams in flight at once (h2c with prior knowledge).
    let out = must(
        "h2load",
        &["-n", "400", "-c", "1", "-m", "20", &format!("http://{}/m", d.proxy)],
    );
    assert!(
        out.contains("requests: 400 total, 400 started, 400 done, 400 succeeded"),
        "{out}"
    );
    assert!(out.contains("status codes: 400 2xx"), "{out}");
    let metrics = scrape(&d.admin);
    assert!(
        metric(
            &metrics,
            r#"rampart_proxy_requests_total{status_code="200",upstream="app"}"#
        ) >= 400.0,
        "{metrics}"
    );
}

#[test]
fn a_websocket_handshake_becomes_a_tunnel_through_the_proxy() {
    let (_u, up) = start_upstream();
    let d = daemon("ws", "", &one("app", up), "    - {upstream: app}\n");
    let r = websocket_echo(d.proxy, "/chat");
    assert_eq!(r.header("sec-websocket-accept"), Some("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="));
}

#[test]
fn the_proxy_protocol_names_the_client_and_is_required_from_trusted_peers() {
    let (_u, up) = start_upstream();
    let d = daemon(
        "pp",
        "  proxy_protocol: true\n  trusted_proxies: [127.0.0.1/32]\n",
        &one("app", up),
        "    - {upstream: app}\n",
    );
    let mut s = TcpStream::connect(d.proxy).unwrap();
    s.write_all(
        b"PROXY TCP4 203.0.113.9 127.0.0.1 5555 80\r\nGET /pp HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    let text = read_all(s);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains("\"x_forwarded_for\":\"203.0.113.9\""), "{text}");
    assert!(
        text.contains("for=203.0.113.9;proto=http"),
        "Forwarded names the client: {text}"
    );
    let mut s = TcpStream::connect(d.proxy).unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    assert_eq!(read_all(s), "", "a connection without the header is closed unanswered");
}

#[test]
fn routes_rewrite_paths_and_headers_and_ids_travel_both_ways() {
    let (_u, up) = start_upstream();
    let routes = "    - pattern: /api/*\n      upstream: app\n      strip_prefix: /api\n      headers: {add: {X-Added: \"yes\"}, remove: [X-Secret]}\n      response_headers: {set: {X-Frame-Options: DENY}, remove: [X-Upstream-Server]}\n\
                  \x20   - pattern: /old/*\n      upstream: app\n      prefix_rewrite: {from: /old, to: /new}\n";
    let d = daemon(
        "rewrite",
        "  trusted_proxies: [127.0.0.1/32]\n",
        &one("app", up),
        routes,
    );
    let mut c = Client::connect(d.proxy).unwrap();
    let r = c
        .get(
            "/api/users?q=1",
            &[
                ("X-Secret", "s"),
                ("X-Request-Id", "lb-42"),
                ("X-Forwarded-For", "192.0.2.77"),
            ],
        )
        .unwrap();
    let echo = r.json();
    assert_eq!(echo["path"], "/users?q=1");
    assert_eq!(echo["x_added"], "yes");
    assert_eq!(echo["x_request_id"], "lb-42", "an incoming id is passed on");
    assert_eq!(echo["x_forwarded_for"], "192.0.2.77, 127.0.0.1");
    assert_eq!(r.header("x-request-id"), Some("lb-42"));
    assert_eq!(r.header("x-frame-options"), Some("DENY"));
    assert_eq!(r.header("x-upstream-server"), None);
    let r = c.get("/old/thing", &[]).unwrap();
    assert_eq!(r.json()["path"], "/new/thing");
    assert_eq!(
        r.header("x-request-id").map(str::len),
        Some(32),
        "a new id is made when none came"
    );
    assert_eq!(c.get("/elsewhere", &[]).unwrap().status, 404);
}

#[test]
fn timeouts_give_504_and_a_pool_without_healthy_servers_gives_503() {
    let (_slow, slow) = start_named_upstream("slow", 3000);
    let dead = free_port();
    let ups = format!(
        "{}    - name: gone\n      health_check: {{enabled: true, type: tcp, interval: 1, timeout: 1, unhealthy_threshold: 1}}\n      servers: [{{host: 127.0.0.1, port: {dead}}}]\n",
        one("slow", slow)
    );
    let routes = "    - {pattern: /slow/*, upstream: slow, timeout: 1}\n    - {pattern: /gone/*, upstream: gone}\n";
    let d = daemon("errors", "", &ups, routes);
    let mut c = Client::connect(d.proxy).unwrap();
    let started = Instant::now();
    let r = c.get("/slow/x", &[]).unwrap();
    assert_eq!(r.status, 504);
    assert!(
        started.elapsed() < Duration::from_millis(2500),
        "the route timeout is 1 s"
    );
    let body = String::from_utf8_lossy(&r.body).into_owned();
    assert!(
        body.contains(r.header("x-request-id").unwrap()),
        "the page names the request id: {body}"
    );
    assert!(
        eventually(Duration::from_secs(5), || c
            .get("/gone/x", &[])
            .map(|r| r.status == 503)
            .unwrap_or(false)),
        "503 once health checks fail"
    );
    let metrics = scrape(&d.admin);
    assert!(
        metric(&metrics, r#"rampart_proxy_errors_total{kind="timeout"}"#) >= 1.0,
        "{metrics}"
    );
    assert!(
        metric(&metrics, r#"rampart_proxy_errors_total{kind="no_server"}"#) >= 1.0,
        "{metrics}"
    );
    assert!(
        metric(
            &metrics,
            r#"rampart_proxy_requests_total{status_code="504",upstream="slow"}"#
        ) >= 1.0,
        "{metrics}"
    );
}

#[test]
fn oversized_headers_are_refused_and_idle_connections_close() {
    let (_u, up) = start_upstream();
    let d = daemon(
        "limits",
        "  max_header_size: 16KB\n  keepalive_timeout: 2\n",
        &one("app", up),
        "    - {upstream: app}\n",
    );
    let mut c = Client::connect(d.proxy).unwrap();
    let big = "x".repeat(20 * 1024);
    match c.get("/", &[("X-Big", &big)]) {
        Ok(r) => assert_eq!(r.status, 431),
        Err(e) => panic!("expected 431, got {e}"),
    }
    let mut c = Client::connect(d.proxy).unwrap();
    assert_eq!(c.get("/", &[]).unwrap().status, 200);
    std::thread::sleep(Duration::from_millis(3500));
    assert!(
        c.get("/", &[]).is_err(),
        "an idle keep-alive connection must be closed after keepalive_timeout"
    );
}

#[test]
fn shutdown_lets_in_flight_requests_finish() {
    let (_u, up) = start_named_upstream("slow", 1500);
    let mut d = daemon("drain", "", &one("app", up), "    - {upstream: app}\n");
    let addr = d.proxy;
    let inflight = std::thread::spawn(move || Client::connect(addr).unwrap().get("/slow", &[]).map(|r| r.status));
    std::thread::sleep(Duration::from_millis(400));
    // SAFETY: signalling a child we started.
    unsafe { libc::kill(d.process.pid(), libc::SIGTERM) };
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        TcpStream::connect(addr).is_err(),
        "no new connections once shutdown began"
    );
    assert_eq!(
        inflight.join().unwrap().unwrap(),
        200,
        "the request in flight completes"
    );
    let status = d.process.terminate(Duration::from_secs(10)).expect("exits");
    assert!(status.success(), "{}", d.process.log());
}
