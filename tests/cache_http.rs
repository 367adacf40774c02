//! The response cache through a real Rampart in front of the real echo upstream on loopback (XDP off): a
//! table of HTTP caching rules (what is stored, for how long, Vary, Set-Cookie, methods, conditional requests,
//! rule conditions and keys), request coalescing (100 concurrent misses make one upstream request), the stale
//! extensions, purge by pattern and the figures. Whether an answer came from the cache is told by the
//! upstream's own count of requests, not only by Rampart's `X-Cache`.
#![allow(clippy::unwrap_used)] // a test reports failure by panicking

use std::net::SocketAddr;
use std::time::Duration;

use rampart_tests::http1::{Client, Response};
use rampart_tests::*;

struct Node {
    proxy: SocketAddr,
    admin: String,
    upstream: SocketAddr,
    _rampart: Process,
    _upstream: Process,
    _state: XdpState,
}

const RULES: &str = concat!(
    "    cache_rules:\n",
    "      - {path: \"/c/*\", ttl: 60}\n",
    "      - {path: \"/v/*\", ttl: 60, vary_headers: [x-variant]}\n",
    "      - {path: \"/k/*\", ttl: 60, cache_key_include: [path]}\n",
    "      - {path: \"/cookie/*\", ttl: 60, cache_set_cookie: true}\n",
    "      - {path: \"/cond/*\", ttl: 60, conditions: [{header: x-mode, operator: not_contains, value: live}]}\n",
    "      - {path: \"/user/*\", ttl: 60, cache_key_include: [path, user_id]}\n",
    "      - {path: \"/swr/*\", ttl: 1, stale_while_revalidate: 30, cache_key_include: [path]}\n",
);

fn start_node(tag: &str) -> Node {
    let (upstream, upstream_port) = start_upstream();
    let (proxy_port, admin_port) = (free_port(), free_port());
    let state = XdpState::new(&format!("ch{tag}{proxy_port}"));
    let config = format!(
        "server:\n  host: 127.0.0.1\n  port: {proxy_port}\n\
         proxy:\n  upstreams:\n    - name: app\n      servers:\n        - {{host: 127.0.0.1, port: {upstream_port}}}\n\
         \x20 caching:\n    enabled: true\n    memory_cache:\n      max_size: 16MB\n      max_entries: 1000\n\
         \x20     max_object_size: 64KB\n      compression: true\n      compression_threshold: 512\n{RULES}\
         admin:\n  port: {admin_port}\n\
         waf:\n  enabled: true\n\
         xdp:\n  enabled: false\n{}",
        state.yaml()
    );
    let mut rampart = start_rampart(&format!("rampart-cache-{tag}-{proxy_port}"), &config, admin_port);
    let proxy = SocketAddr::from(([127, 0, 0, 1], proxy_port));
    wait_for_port(proxy, Duration::from_secs(20), &mut rampart);
    Node {
        proxy,
        admin: format!("http://127.0.0.1:{admin_port}"),
        upstream: SocketAddr::from(([127, 0, 0, 1], upstream_port)),
        _rampart: rampart,
        _upstream: upstream,
        _state: state,
    }
}

/// Requests the upstream has answered so far (asked of the upstream directly).
fn served(node: &Node) -> u64 {
    let mut c = Client::connect(node.upstream).unwrap();
    c.get("/__echo/count", &[]).unwrap().json()["served"].as_u64().unwrap()
}

fn send(c: &mut Client, method: &str, path: &str, headers: &[(&str, &str)]) -> Response {
    let r = c.request(method, path, headers, b"").unwrap();
    if r.header("connection").is_some_and(|v| v.eq_ignore_ascii_case("close")) {
        c.reconnect().unwrap();
    }
    r
}

/// One row: a first request that may fill the cache, a second one, and what the second must get.
struct Case {
    name: &'static str,
    first: (&'static str, &'static str, Vec<(&'static str, &'static str)>),
    second: (&'static str, &'static str, Vec<(&'static str, &'static str)>),
    /// Wait between the two (for expiry).
    pause_ms: u64,
    /// Whether the second is answered without the upstream.
    from_cache: bool,
    status: u16,
}

fn case(
    name: &'static str,
    first: (&'static str, &'static str, &[(&'static str, &'static str)]),
    second: (&'static str, &'static str, &[(&'static str, &'static str)]),
    from_cache: bool,
    status: u16,
) -> Case {
    Case {
        name,
        first: (first.0, first.1, first.2.to_vec()),
        second: (second.0, second.1, second.2.to_vec()),
        pause_ms: 0,
        from_cache,
        status,
    }
}

const LM: &str = "Tue, 01 Dec 2026 00:00:00 GMT";

#[test]
fn http_caching_rules_table() {
    let node = start_node("table");
    let mut c = Client::connect(node.proxy).unwrap();
    let g = "GET";
    let mut cases = vec![
        case(
            "plain GET is stored",
            (g, "/c/plain", &[]),
            (g, "/c/plain", &[]),
            true,
            200,
        ),
        case(
            "no-store is not stored",
            (g, "/c/ns?cc=no-store", &[]),
            (g, "/c/ns?cc=no-store", &[]),
            false,
            200,
        ),
        case(
            "private is not stored",
            (g, "/c/pr?cc=private", &[]),
            (g, "/c/pr?cc=private", &[]),
            false,
            200,
        ),
        case(
            "no-cache response is not stored",
            (g, "/c/nc?cc=no-cache", &[]),
            (g, "/c/nc?cc=no-cache", &[]),
            false,
            200,
        ),
        case(
            "s-maxage wins over max-age=0",
            (g, "/c/sm?cc=max-age%3D0%2C%20s-maxage%3D60", &[]),
            (g, "/c/sm?cc=max-age%3D0%2C%20s-maxage%3D60", &[]),
            true,
            200,
        ),
        case(
            "max-age=0 is not stored",
            (g, "/c/ma0?cc=max-age%3D0", &[]),
            (g, "/c/ma0?cc=max-age%3D0", &[]),
            false,
            200,
        ),
        case(
            "an Expires in the past is not stored",
            (g, "/c/exp?expires=Thu%2C%2001%20Jan%201970%2000%3A00%3A00%20GMT", &[]),
            (g, "/c/exp?expires=Thu%2C%2001%20Jan%201970%2000%3A00%3A00%20GMT", &[]),
            false,
            200,
        ),
        case(
            "Set-Cookie is not stored by default",
            (g, "/c/ck?cookie=sid%3D1", &[]),
            (g, "/c/ck?cookie=sid%3D1", &[]),
            false,
            200,
        ),
        case(
            "Set-Cookie is stored where the rule says so",
            (g, "/cookie/ck?cookie=sid%3D1", &[]),
            (g, "/cookie/ck?cookie=sid%3D1", &[]),
            true,
            200,
        ),
        case(
            "the query is part of the key",
            (g, "/c/q?a=1", &[]),
            (g, "/c/q?a=2", &[]),
            false,
            200,
        ),
        case(
            "a key without the query ignores it",
            (g, "/k/q?a=1", &[]),
            (g, "/k/q?a=2", &[]),
            true,
            200,
        ),
        case(
            "upstream Vary: same value hits",
            (g, "/c/vary?vary=accept-language", &[("accept-language", "en")]),
            (g, "/c/vary?vary=accept-language", &[("accept-language", "en")]),
            true,
            200,
        ),
        case(
            "upstream Vary: another value misses",
            (g, "/c/vary2?vary=accept-language", &[("accept-language", "en")]),
            (g, "/c/vary2?vary=accept-language", &[("accept-language", "fr")]),
            false,
            200,
        ),
        case(
            "Vary: * is not stored",
            (g, "/c/vstar?vary=*", &[]),
            (g, "/c/vstar?vary=*", &[]),
            false,
            200,
        ),
        case(
            "a rule's vary header keys the entry",
            (g, "/v/x", &[("x-variant", "a")]),
            (g, "/v/x", &[("x-variant", "b")]),
            false,
            200,
        ),
        case(
            "POST is never cached",
            ("POST", "/c/post", &[]),
            ("POST", "/c/post", &[]),
            false,
            200,
        ),
        case(
            "HEAD is answered from GET's entry",
            (g, "/c/head", &[]),
            ("HEAD", "/c/head", &[]),
            true,
            200,
        ),
        case(
            "5xx is not stored",
            (g, "/c/err?status=503", &[]),
            (g, "/c/err?status=503", &[]),
            false,
            503,
        ),
        case(
            "404 is stored",
            (g, "/c/nf?status=404", &[]),
            (g, "/c/nf?status=404", &[]),
            true,
            404,
        ),
        case(
            "request no-cache goes to the upstream",
            (g, "/c/rnc", &[]),
            (g, "/c/rnc", &[("cache-control", "no-cache")]),
            false,
            200,
        ),
        case(
            "request no-store bypasses",
            (g, "/c/rns", &[]),
            (g, "/c/rns", &[("cache-control", "no-store")]),
            false,
            200,
        ),
        case(
            "If-None-Match on a stored ETag is a 304 from the cache",
            (g, "/c/etag?etag=%22v1%22", &[]),
            (g, "/c/etag?etag=%22v1%22", &[("if-none-match", "\"v1\"")]),
            true,
            304,
        ),
        case(
            "If-None-Match on another ETag is the full response from the cache",
            (g, "/c/etag2?etag=%22v1%22", &[]),
            (g, "/c/etag2?etag=%22v1%22", &[("if-none-match", "\"v0\"")]),
            true,
            200,
        ),
        case(
            "If-Modified-Since not older than Last-Modified is a 304",
            (g, "/c/lm?lm=Tue%2C%2001%20Dec%202026%2000%3A00%3A00%20GMT", &[]),
            (
                g,
                "/c/lm?lm=Tue%2C%2001%20Dec%202026%2000%3A00%3A00%20GMT",
                &[("if-modified-since", LM)],
            ),
            true,
            304,
        ),
        case(
            "a conditional first request still fills the cache",
            (g, "/c/etag3?etag=%22v3%22", &[("if-none-match", "\"v3\"")]),
            (g, "/c/etag3?etag=%22v3%22", &[]),
            true,
            200,
        ),
        case(
            "a rule condition that holds caches",
            (g, "/cond/a", &[("x-mode", "static")]),
            (g, "/cond/a", &[("x-mode", "static")]),
            true,
            200,
        ),
        case(
            "a rule condition that fails bypasses",
            (g, "/cond/b", &[("x-mode", "live")]),
            (g, "/cond/b", &[("x-mode", "live")]),
            false,
            200,
        ),
        case(
            "Authorization without a user key is not stored",
            (g, "/c/auth", &[("authorization", "Bearer a")]),
            (g, "/c/auth", &[("authorization", "Bearer a")]),
            false,
            200,
        ),
        case(
            "a user key: the same user hits",
            (g, "/user/p", &[("authorization", "Bearer alice")]),
            (g, "/user/p", &[("authorization", "Bearer alice")]),
            true,
            200,
        ),
        case(
            "a user key: another user misses",
            (g, "/user/q", &[("authorization", "Bearer alice")]),
            (g, "/user/q", &[("authorization", "Bearer bob")]),
            false,
            200,
        ),
        case(
            "a body over max_object_size streams through, not stored",
            (g, "/c/big?size=100000", &[]),
            (g, "/c/big?size=100000", &[]),
            false,
            200,
        ),
        case(
            "a compressed body comes back whole",
            (g, "/c/zip?size=20000", &[]),
            (g, "/c/zip?size=20000", &[]),
            true,
            200,
        ),
    ];
    let mut expiring = case(
        "max-age=1 expires",
        (g, "/c/short?cc=max-age%3D1", &[]),
        (g, "/c/short?cc=max-age%3D1", &[]),
        false,
        200,
    );
    expiring.pause_ms = 1300;
    cases.push(expiring);

    let mut failures = Vec::new();
    for case in &cases {
        let first = send(&mut c, case.first.0, case.first.1, &case.first.2);
        std::thread::sleep(Duration::from_millis(case.pause_ms));
        let before = served(&node);
        let second = send(&mut c, case.second.0, case.second.1, &case.second.2);
        let upstream_calls = served(&node) - before;
        let from_cache = upstream_calls == 0;
        let mut problems = Vec::new();
        if from_cache != case.from_cache {
            problems.push(format!(
                "from cache: {from_cache} (upstream saw {upstream_calls}), want {}",
                case.from_cache
            ));
        }
        if second.status != case.status {
            problems.push(format!("status {}, want {}", second.status, case.status));
        }
        let x_cache = second.header("x-cache").unwrap_or("-").to_owned();
        if case.from_cache && x_cache != "HIT" {
            problems.push(format!("x-cache {x_cache}, want HIT"));
        }
        if case.from_cache && second.header("age").is_none() {
            problems.push("no Age on a cached answer".into());
        }
        let both_full = first.status == 200 && second.status == 200;
        if case.from_cache && both_full && case.second.0 == "GET" && second.body != first.body {
            problems.push("the cached body differs from the stored one".into());
        }
        if case.second.0 == "HEAD" && !second.body.is_empty() {
            problems.push("HEAD got a body".into());
        }
        if case.name.contains("Set-Cookie is stored") && second.header("set-cookie") != Some("sid=1") {
            problems.push("the stored Set-Cookie is not replayed".into());
        }
        if case.name.contains("over max_object_size") && second.body.len() < 100_000 {
            problems.push(format!("the body was cut: {} bytes", second.body.len()));
        }
        if !problems.is_empty() {
            failures.push(format!("{}: {}", case.name, problems.join("; ")));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} rows failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn a_request_the_waf_blocks_is_never_answered_from_the_cache() {
    let node = start_node("waf");
    let mut c = Client::connect(node.proxy).unwrap();
    // `/k/*` keys by path only, so the attack below has the same key as the stored answer.
    assert_eq!(send(&mut c, "GET", "/k/page", &[]).status, 200);
    assert_eq!(send(&mut c, "GET", "/k/page", &[]).header("x-cache"), Some("HIT"));
    let attack = send(&mut c, "GET", "/k/page?q=1%27%20or%20%271%27%3D%271", &[]);
    assert_eq!(attack.status, 403, "blocked, not served from the cache");
    assert_eq!(attack.header("x-cache"), None);
}

#[test]
fn a_hundred_concurrent_misses_make_one_upstream_request() {
    let node = start_node("coalesce");
    let before = served(&node);
    let proxy = node.proxy;
    // The upstream takes 400 ms, so all hundred arrive while the first fetch is in flight.
    let threads: Vec<_> = (0..100)
        .map(|_| {
            std::thread::spawn(move || {
                let mut c = Client::connect(proxy).unwrap();
                let r = c.get("/c/slow?sleep_ms=400", &[]).unwrap();
                (r.status, r.header("x-echo-n").map(str::to_owned))
            })
        })
        .collect();
    let results: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let upstream_calls = served(&node) - before;
    assert!(results.iter().all(|(s, _)| *s == 200), "{results:?}");
    assert_eq!(
        upstream_calls, 1,
        "100 concurrent misses for one key made {upstream_calls} upstream requests"
    );
    let first = &results[0].1;
    assert!(
        results.iter().all(|(_, n)| n == first),
        "every client got the one upstream answer"
    );
}

#[test]
fn stale_while_revalidate_serves_stale_and_refreshes_and_stale_if_error_covers_a_failure() {
    let node = start_node("stale");
    let mut c = Client::connect(node.proxy).unwrap();
    // Rule `/swr/*`: ttl 1 s, 30 s stale-while-revalidate, keyed by path only.
    let first = send(&mut c, "GET", "/swr/a", &[]);
    let n1 = first.header("x-echo-n").unwrap().to_owned();
    std::thread::sleep(Duration::from_millis(1300));
    let stale = send(&mut c, "GET", "/swr/a", &[]);
    assert_eq!(stale.header("x-cache"), Some("STALE"));
    assert_eq!(stale.header("x-echo-n"), Some(n1.as_str()), "the stale copy, at once");
    assert!(
        eventually(Duration::from_secs(5), || {
            let r = send(&mut c, "GET", "/swr/a", &[]);
            r.header("x-cache") == Some("HIT") && r.header("x-echo-n") != Some(n1.as_str())
        }),
        "the background refresh stored a new copy"
    );

    // stale-if-error from the upstream's directive: the same key (path only) now fails upstream.
    let ok = send(&mut c, "GET", "/k/sie?cc=max-age%3D1%2C%20stale-if-error%3D60", &[]);
    assert_eq!(ok.status, 200);
    std::thread::sleep(Duration::from_millis(1300));
    let covered = send(&mut c, "GET", "/k/sie?status=503", &[]);
    assert_eq!(covered.status, 200, "the failure is covered by the stale copy");
    assert_eq!(covered.header("x-cache"), Some("STALE"));
    assert_eq!(covered.header("x-echo-n"), ok.header("x-echo-n"));
}

#[test]
fn purge_by_pattern_clears_matching_entries_and_stats_count() {
    let node = start_node("purge");
    let mut c = Client::connect(node.proxy).unwrap();
    for p in ["/c/img/a.png", "/c/img/b.png", "/c/css/a.css"] {
        send(&mut c, "GET", p, &[]);
        assert_eq!(send(&mut c, "GET", p, &[]).header("x-cache"), Some("HIT"), "{p}");
    }
    let stats = json(&curl(
        None,
        "GET",
        &format!("{}/admin/proxy/cache/stats", node.admin),
        None,
        5,
    ));
    assert_eq!(stats["cache_enabled"], true);
    assert_eq!(stats["entries"], 3, "{stats}");
    assert_eq!(stats["hits"], 3, "{stats}");
    assert_eq!(stats["misses"], 3, "{stats}");
    assert_eq!(stats["hit_rate"], 0.5, "{stats}");
    assert!(stats["memory_usage"].as_u64().unwrap() > 0, "{stats}");

    let r = curl(
        None,
        "DELETE",
        &format!("{}/admin/proxy/cache/clear?pattern=/c/img/*", node.admin),
        None,
        5,
    );
    assert_eq!(r.status, 200, "{r:?}");
    let v = json(&r);
    assert_eq!(v["entries_cleared"], 2, "{v}");
    let before = served(&node);
    assert_eq!(send(&mut c, "GET", "/c/img/a.png", &[]).header("x-cache"), Some("MISS"));
    assert_eq!(send(&mut c, "GET", "/c/css/a.css", &[]).header("x-cache"), Some("HIT"));
    assert_eq!(served(&node) - before, 1, "only the purged entry went upstream");

    let metrics = scrape(&node.admin);
    assert_eq!(
        metric(&metrics, "rampart_proxy_cache_hits_total{cache_type=\"memory\"}"),
        4.0
    );
    assert_eq!(metric(&metrics, "rampart_proxy_cache_misses_total"), 4.0);

    let all = json(&curl(
        None,
        "DELETE",
        &format!("{}/admin/proxy/cache/clear", node.admin),
        None,
        5,
    ));
    assert_eq!(all["entries_cleared"], 2, "{all}");
}
