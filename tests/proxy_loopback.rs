//! The proxy on loopback with XDP disabled (no privileges needed): HTTP/1.1 keep-alive and h2c to one upstream,
//! forwarded headers, and the error answers when the upstream is gone.
#![allow(clippy::unwrap_used)] // a test reports failure by panicking

use std::net::SocketAddr;
use std::time::Duration;

use rampart_tests::*;

struct Setup {
    proxy: String,
    _state: XdpState,
    _upstream: Process,
    rampart: Process,
}

fn start(with_upstream: bool) -> (Setup, Option<Process>) {
    let (proxy_port, admin_port, upstream_port) = (free_port(), free_port(), free_port());
    let state = XdpState::new(&format!("loop{proxy_port}"));
    let config = format!(
        "server:\n  host: 127.0.0.1\n  port: {proxy_port}\n  max_request_size: 1KB\n\
         proxy:\n  upstreams:\n    - name: app\n      servers:\n        - {{host: 127.0.0.1, port: {upstream_port}}}\n\
         admin:\n  port: {admin_port}\n\
         waf:\n  enabled: false\n\
         xdp:\n  enabled: false\n{}",
        state.yaml()
    );
    let path = temp_file(&format!("loop-{proxy_port}.yaml"), &config);
    let bin = rampart_bin();
    let up_addr = format!("127.0.0.1:{upstream_port}");
    let mut upstream = Process::start("echo-upstream", &bin, &["echo-upstream", "--listen", &up_addr], &[]);
    wait_for_port(up_addr.parse().unwrap(), Duration::from_secs(10), &mut upstream);
    let mut rampart = Process::start("rampart", &bin, &["run", "--config", path.to_str().unwrap()], &[]);
    wait_for_port(
        SocketAddr::from(([127, 0, 0, 1], proxy_port)),
        Duration::from_secs(20),
        &mut rampart,
    );
    let (kept, spare) = if with_upstream {
        (upstream, None)
    } else {
        (Process::start("idle", Path::new("sleep"), &["60"], &[]), Some(upstream))
    };
    (
        Setup {
            proxy: format!("http://127.0.0.1:{proxy_port}"),
            _state: state,
            _upstream: kept,
            rampart,
        },
        spare,
    )
}

use std::path::Path;

#[test]
fn http1_and_h2c_requests_reach_the_upstream_with_forwarded_headers() {
    let (s, _) = start(true);
    let r = curl(None, "GET", &format!("{}/a/b?c=d", s.proxy), None, 5);
    assert_eq!(r.status, 200, "{r:?}");
    let echo = json(&r);
    assert_eq!(echo["path"], "/a/b?c=d");
    assert_eq!(echo["x_forwarded_for"], "127.0.0.1");
    assert_eq!(echo["x_forwarded_proto"], "http");

    let h2 = run(
        "curl",
        &[
            "-sS",
            "-m",
            "5",
            "--http2-prior-knowledge",
            "-w",
            "\n%{http_version}",
            &format!("{}/h2", s.proxy),
        ],
    );
    let text = String::from_utf8_lossy(&h2.stdout);
    let (body, version) = text.rsplit_once('\n').unwrap();
    assert_eq!(version, "2", "client did not speak h2c: {text}");
    let echo: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(echo["path"], "/h2");
    assert_eq!(
        echo["version"], "HTTP/1.1",
        "upstream should be spoken to over HTTP/1.1"
    );
}

#[test]
fn keep_alive_connections_serve_many_requests() {
    let (s, _) = start(true);
    let urls: Vec<String> = (0..20).map(|i| format!("{}/k{i}", s.proxy)).collect();
    let mut args = vec!["-sS", "-m", "10", "-w", "%{num_connects} %{http_code}\n"];
    for url in &urls {
        args.extend(["-o", "/dev/null", url.as_str()]);
    }
    let out = String::from_utf8_lossy(&run("curl", &args).stdout).into_owned();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 20, "{out}");
    assert!(lines.iter().all(|l| l.ends_with(" 200")), "{out}");
    let connects: u32 = lines
        .iter()
        .map(|l| l.split(' ').next().unwrap().parse::<u32>().unwrap())
        .sum();
    assert_eq!(
        connects, 1,
        "curl should reuse one connection for all 20 requests:\n{out}"
    );
}

#[test]
fn upstream_connections_are_pooled_across_client_connections() {
    let (s, _) = start(true);
    // Separate curl processes: separate client connections, served over one pooled upstream connection.
    let peers: Vec<String> = (0..5)
        .map(|i| {
            let r = curl(None, "GET", &format!("{}/p{i}", s.proxy), None, 5);
            assert_eq!(r.status, 200, "{r:?}");
            json(&r)["peer"].as_str().unwrap().to_owned()
        })
        .collect();
    assert!(
        peers.iter().all(|p| *p == peers[0]),
        "upstream connection was not reused: {peers:?}"
    );
}

#[test]
fn oversized_bodies_get_413() {
    let (s, _) = start(true);
    let big = "x".repeat(2048);
    let r = curl(None, "POST", &format!("{}/upload", s.proxy), Some(&big), 5);
    assert_eq!(r.status, 413, "{r:?}");
    let small = curl(None, "POST", &format!("{}/upload", s.proxy), Some("{}"), 5);
    assert_eq!(small.status, 200, "{small:?}");
}

#[test]
fn a_dead_upstream_gives_502_naming_it() {
    let (mut s, upstream) = start(false);
    drop(upstream); // killed by PID
    let r = curl(None, "GET", &format!("{}/x", s.proxy), None, 10);
    assert_eq!(r.status, 502, "{r:?}");
    assert!(r.body.contains("`app`"), "{r:?}");
    assert!(
        r.body.contains("request id "),
        "the error page names the request id: {r:?}"
    );
    let status = s
        .rampart
        .terminate(Duration::from_secs(30))
        .expect("rampart exits on SIGTERM");
    assert!(status.success());
}
