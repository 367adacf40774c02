//! `server.io: io_uring` end to end: the same proxy, with client sockets driven by io_uring on worker threads —
//! HTTP/1.1 keep-alive with bodies both ways, h2c multiplexing, TLS with h2 and http/1.1 by ALPN, a WebSocket
//! tunnel, and a graceful shutdown that lets an in-flight request finish.
#![allow(clippy::unwrap_used)] // a test reports failure by panicking

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rampart_tests::http1::{Client, websocket_echo};
use rampart_tests::pki::Pki;
use rampart_tests::*;

struct Uring {
    plain: SocketAddr,
    tls: u16,
    admin: String,
    process: Process,
    _pki: Pki,
    _upstream: Process,
    _state: XdpState,
}

fn start(tag: &str, upstream_delay_ms: u64) -> Uring {
    let state = XdpState::new(tag);
    let pki = Pki::new(&std::env::temp_dir().join(format!("rampart-pki-{tag}-{}", std::process::id())));
    let leaf = pki.leaf("u", &["uring.test"]);
    let (upstream, up) = start_named_upstream(tag, upstream_delay_ms);
    let (plain, tls, admin) = (free_port(), free_port(), free_port());
    let config = format!(
        "server:\n  host: 127.0.0.1\n  port: {plain}\n  io: io_uring\n  workers: 2\n  shutdown_timeout: 10\n\
         ssl:\n  enabled: true\n  port: {tls}\n  certificates:\n    - {{domains: [uring.test], cert_file: {}, key_file: {}}}\n\
         proxy:\n  upstreams:\n    - {{name: app, servers: [{{host: 127.0.0.1, port: {up}}}]}}\n\
         admin:\n  port: {admin}\nwaf:\n  enabled: false\nxdp:\n  enabled: false\n{}",
        leaf.cert.display(),
        leaf.key.display(),
        state.yaml()
    );
    let process = start_rampart(tag, &config, admin);
    Uring {
        plain: SocketAddr::from(([127, 0, 0, 1], plain)),
        tls,
        admin: format!("http://127.0.0.1:{admin}"),
        process,
        _pki: pki,
        _upstream: upstream,
        _state: state,
    }
}

/// Names of the daemon's threads, from /proc.
fn thread_names(pid: i32) -> Vec<String> {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .map(|n| n.trim().to_owned())
        .collect()
}

#[test]
fn requests_are_served_by_io_uring_workers_over_http1_h2c_tls_and_websocket() {
    let u = start("uring", 0);
    let threads = thread_names(u.process.pid());
    assert_eq!(
        threads.iter().filter(|n| n.starts_with("rampart-uring")).count(),
        2,
        "two io_uring workers, as configured: {threads:?}"
    );
    assert!(
        u.process.log().contains("io_uring workers started"),
        "{}",
        u.process.log()
    );

    // HTTP/1.1: many requests on one keep-alive connection, with a body large enough to take several reads
    // and writes through the ring in each direction.
    let mut c = Client::connect(u.plain).unwrap();
    let body: Vec<u8> = (0..200_000u32).map(|i| b'a' + (i % 26) as u8).collect();
    for i in 0..50 {
        let r = c
            .request("POST", &format!("/post/{i}"), &[("Content-Type", "text/plain")], &body)
            .unwrap();
        assert_eq!(r.status, 200, "request {i}");
        let echo = r.json();
        assert_eq!(echo["path"], format!("/post/{i}"));
        assert_eq!(
            echo["body_bytes"],
            body.len(),
            "the upstream saw the whole body: {echo}"
        );
    }

    // h2c: 200 requests multiplexed on one connection.
    let out = must(
        "h2load",
        &["-n", "200", "-c", "1", "-m", "10", &format!("http://{}/h2c", u.plain)],
    );
    assert!(out.contains("200 succeeded"), "{out}");

    // TLS with both ALPN protocols.
    for (flag, version) in [("--http2", "2"), ("--http1.1", "1.1")] {
        let tls = run(
            "curl",
            &[
                "-sS",
                "-m",
                "5",
                flag,
                "-k",
                "--resolve",
                &format!("uring.test:{}:127.0.0.1", u.tls),
                "-w",
                "\n%{http_version}",
                &format!("https://uring.test:{}/tls", u.tls),
            ],
        );
        let text = String::from_utf8_lossy(&tls.stdout);
        let (echo, got) = text.rsplit_once('\n').unwrap();
        assert_eq!(got, version, "{text} {}", String::from_utf8_lossy(&tls.stderr));
        assert!(echo.contains("\"path\":\"/tls\""), "{echo}");
    }

    // WebSocket: the upgraded connection is still an io_uring socket on the client side.
    let r = websocket_echo(u.plain, "/ws");
    assert_eq!(
        r.header("connection").map(str::to_ascii_lowercase).as_deref(),
        Some("upgrade")
    );

    // 50 POSTs, 200 h2c requests and two TLS requests answered 200; the handshake counts as 101.
    let metrics = scrape(&u.admin);
    assert!(
        metric(
            &metrics,
            r#"rampart_proxy_requests_total{status_code="200",upstream="app"}"#
        ) >= 252.0,
        "{metrics}"
    );
}

#[test]
fn shutdown_lets_an_in_flight_request_finish_on_an_io_uring_worker() {
    let mut u = start("uring-drain", 1500);
    let addr = u.plain;
    let client = std::thread::spawn(move || {
        let mut c = Client::connect(addr).unwrap();
        c.get("/slow", &[]).map(|r| r.status)
    });
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    let status = u
        .process
        .terminate(Duration::from_secs(15))
        .expect("the daemon exits after draining");
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "it waited for the request in flight"
    );
    assert_eq!(
        client.join().unwrap().unwrap(),
        200,
        "the request in flight was answered"
    );
    assert!(status.success(), "{status:?}: {}", u.process.log());
}
