//! The proxy's own HTTP/1.1 server against hand-written requests: pipelining, request bodies by length and
//! chunked, `Expect: 100-continue`, HTTP/1.0, refusals of ambiguous framing (request smuggling shapes) that
//! never reach the upstream, and connections closed when a body is left unread.
#![allow(clippy::unwrap_used)] // a test reports failure by panicking

use std::io::Read;
use std::net::SocketAddr;

use rampart_tests::http1::Client;
use rampart_tests::*;

struct Daemon {
    proxy: SocketAddr,
    admin: String,
    _process: Process,
    _upstream: Process,
    _state: XdpState,
}

fn daemon(tag: &str) -> Daemon {
    let state = XdpState::new(tag);
    let (upstream, up) = start_named_upstream(tag, 0);
    let (proxy, admin) = (free_port(), free_port());
    let config = format!(
        "server:\n  host: 127.0.0.1\n  port: {proxy}\n  max_request_size: 64KB\n\
         proxy:\n  upstreams:\n    - {{name: app, servers: [{{host: 127.0.0.1, port: {up}}}]}}\n\
         admin:\n  port: {admin}\nwaf:\n  enabled: false\nxdp:\n  enabled: false\n{}",
        state.yaml()
    );
    let process = start_rampart(tag, &config, admin);
    Daemon {
        proxy: SocketAddr::from(([127, 0, 0, 1], proxy)),
        admin: format!("http://127.0.0.1:{admin}"),
        _process: process,
        _upstream: upstream,
        _state: state,
    }
}

fn upstream_requests(d: &Daemon) -> f64 {
    metric(
        &scrape(&d.admin),
        r#"rampart_proxy_requests_total{status_code="200",upstream="app"}"#,
    )
}

#[test]
fn pipelined_requests_are_answered_in_order_on_one_connection() {
    let d = daemon("h1pipe");
    let mut c = Client::connect(d.proxy).unwrap();
    let batch: String = (0..10)
        .map(|i| format!("GET /p/{i} HTTP/1.1\r\nHost: x\r\n\r\n"))
        .collect();
    c.send_raw(batch.as_bytes()).unwrap();
    for i in 0..10 {
        let r = c.read_response(false).unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(
            r.json()["path"],
            format!("/p/{i}"),
            "answers must come back in request order"
        );
    }
}

#[test]
fn request_bodies_arrive_whole_by_length_and_by_chunks() {
    let d = daemon("h1body");
    let mut c = Client::connect(d.proxy).unwrap();
    let body = "x".repeat(40_000);
    let r = c.request("POST", "/len", &[], body.as_bytes()).unwrap();
    assert_eq!(r.json()["body_bytes"], 40_000);
    // Chunked, in pieces, with an extension and a trailer; the next request follows on the same connection.
    c.send_raw(
        b"POST /chunked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\
          5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: t\r\n\r\nGET /after HTTP/1.1\r\nHost: x\r\n\r\n",
    )
    .unwrap();
    let r = c.read_response(false).unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["body_bytes"], 11);
    let r = c.read_response(false).unwrap();
    assert_eq!(r.json()["path"], "/after");
}

#[test]
fn expect_continue_gets_an_interim_answer_before_the_body() {
    let d = daemon("h1expect");
    let mut c = Client::connect(d.proxy).unwrap();
    c.send_raw(b"POST /e HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n")
        .unwrap();
    let interim = c.read_response(false).unwrap();
    assert_eq!(interim.status, 100);
    c.send_raw(b"data").unwrap();
    let r = c.read_response(false).unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["body_bytes"], 4);
}

#[test]
fn http10_clients_get_keep_alive_only_when_they_ask() {
    let d = daemon("h1ten");
    let mut c = Client::connect(d.proxy).unwrap();
    c.send_raw(b"GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        .unwrap();
    let r = c.read_response(false).unwrap();
    assert_eq!(r.header("connection"), Some("keep-alive"));
    c.send_raw(b"GET /b HTTP/1.0\r\n\r\n").unwrap();
    let r = c.read_response(false).unwrap();
    assert_eq!(r.json()["path"], "/b");
    assert_eq!(r.header("connection"), Some("close"));
    let (mut s, _) = c.into_stream();
    let mut rest = Vec::new();
    assert_eq!(
        s.read_to_end(&mut rest).unwrap(),
        0,
        "the connection is closed after an HTTP/1.0 answer"
    );
}

#[test]
fn ambiguous_framing_is_refused_before_it_reaches_the_upstream() {
    let d = daemon("h1smuggle");
    let before = upstream_requests(&d);
    for raw in [
        &b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG"[..],
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
        b"GET / HTTP/1.1\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nBad Header: 1\r\n\r\n",
    ] {
        let mut c = Client::connect(d.proxy).unwrap();
        c.send_raw(raw).unwrap();
        let r = c.read_response(false).unwrap();
        assert_eq!(r.status, 400, "{:?}", String::from_utf8_lossy(raw));
        assert_eq!(r.header("connection"), Some("close"));
        let (mut s, _) = c.into_stream();
        let mut rest = Vec::new();
        assert_eq!(
            s.read_to_end(&mut rest).unwrap(),
            0,
            "nothing more is answered on a refused connection"
        );
    }
    assert_eq!(upstream_requests(&d), before, "no refused request reached the upstream");
}

#[test]
fn a_body_the_proxy_refuses_to_read_closes_the_connection() {
    let d = daemon("h1unread");
    let mut c = Client::connect(d.proxy).unwrap();
    // Declared larger than max_request_size: 413 without reading it, then the connection must go, since the
    // unread body would otherwise be taken for the next request.
    c.send_raw(
        b"POST /big HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n",
    )
    .unwrap();
    let r = c.read_response(false).unwrap();
    assert_eq!(r.status, 413);
    assert_eq!(r.header("connection"), Some("close"));
    assert!(
        c.read_response(false).is_err(),
        "the bytes after the refused head were not served as a request"
    );
}
