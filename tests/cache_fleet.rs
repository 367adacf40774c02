//! The cache shared by two Rampart processes through one real redis-server (started here on a free loopback
//! port, killed by PID): an entry one node stored is a hit on the other, a purge on one node clears both
//! nodes' memory and Redis and reports the count, and Redis dying in the middle of a load fails no client
//! request (the nodes carry on from memory and say so in `/health` and a metric).
#![allow(clippy::unwrap_used)] // a test reports failure by panicking

use std::net::SocketAddr;
use std::time::Duration;

use rampart_tests::cache_outage::{CacheLoad, assert_redis_down};
use rampart_tests::http1::Client;
use rampart_tests::*;

struct Node {
    proxy: SocketAddr,
    admin: String,
    rampart: Process,
    _state: XdpState,
}

fn start_node(tag: &str, upstream_port: u16, redis_port: u16) -> Node {
    let (proxy_port, admin_port) = (free_port(), free_port());
    let state = XdpState::new(&format!("cf{tag}{proxy_port}"));
    let config = format!(
        "server:\n  host: 127.0.0.1\n  port: {proxy_port}\n\
         proxy:\n  upstreams:\n    - name: app\n      servers:\n        - {{host: 127.0.0.1, port: {upstream_port}}}\n\
         \x20 caching:\n    enabled: true\n\
         \x20   redis_cache:\n      enabled: true\n      host: 127.0.0.1\n      port: {redis_port}\n      pool_size: 2\n      timeout: 1\n\
         \x20   cache_rules:\n      - {{path: \"/f/*\", ttl: 300}}\n\
         admin:\n  port: {admin_port}\n\
         xdp:\n  enabled: false\n{}",
        state.yaml()
    );
    let mut rampart = start_rampart(&format!("rampart-cf-{tag}-{proxy_port}"), &config, admin_port);
    let proxy = SocketAddr::from(([127, 0, 0, 1], proxy_port));
    wait_for_port(proxy, Duration::from_secs(20), &mut rampart);
    Node {
        proxy,
        admin: format!("http://127.0.0.1:{admin_port}"),
        rampart,
        _state: state,
    }
}

fn served(upstream_port: u16) -> u64 {
    let mut c = Client::connect(SocketAddr::from(([127, 0, 0, 1], upstream_port))).unwrap();
    c.get("/__echo/count", &[]).unwrap().json()["served"].as_u64().unwrap()
}

fn get(c: &mut Client, path: &str) -> (u16, String, String) {
    let r = c.get(path, &[]).unwrap();
    if r.header("connection").is_some_and(|v| v.eq_ignore_ascii_case("close")) {
        c.reconnect().unwrap();
    }
    (
        r.status,
        r.header("x-cache").unwrap_or("-").to_owned(),
        r.header("x-echo-n").unwrap_or("-").to_owned(),
    )
}

fn redis_keys(port: u16) -> usize {
    let out = must(
        "redis-cli",
        &["-p", &port.to_string(), "--scan", "--pattern", "rampart:cache:*"],
    );
    out.lines().filter(|l| !l.is_empty()).count()
}

#[test]
fn two_nodes_share_entries_and_a_purge_on_one_clears_both() {
    let redis = start_redis();
    let (_upstream, upstream_port) = start_upstream();
    let a = start_node("pa", upstream_port, redis.port);
    let b = start_node("pb", upstream_port, redis.port);
    let (mut ca, mut cb) = (Client::connect(a.proxy).unwrap(), Client::connect(b.proxy).unwrap());

    let (s, x, n) = get(&mut ca, "/f/img/1.png");
    assert_eq!((s, x.as_str()), (200, "MISS"));
    // Node A writes Redis in the background: B sees the entry once it is there.
    assert!(eventually(Duration::from_secs(5), || redis_keys(redis.port) == 1));
    let before = served(upstream_port);
    let (s, x, nb) = get(&mut cb, "/f/img/1.png");
    assert_eq!(
        (s, x.as_str(), nb.as_str()),
        (200, "HIT", n.as_str()),
        "B answers A's entry from Redis"
    );
    assert_eq!(served(upstream_port), before, "without the upstream");
    let stats = json(&curl(
        None,
        "GET",
        &format!("{}/admin/proxy/cache/stats", b.admin),
        None,
        5,
    ));
    assert_eq!(stats["hits_redis"], 1, "{stats}");
    assert_eq!(stats["redis"]["up"], true, "{stats}");

    // More entries on both nodes, one outside the pattern.
    get(&mut ca, "/f/img/2.png");
    get(&mut cb, "/f/css/site.css");
    assert!(eventually(Duration::from_secs(5), || redis_keys(redis.port) == 3));
    assert_eq!(get(&mut cb, "/f/img/2.png").1, "HIT");
    assert_eq!(get(&mut ca, "/f/css/site.css").1, "HIT");

    let r = curl(
        None,
        "DELETE",
        &format!("{}/admin/proxy/cache/clear?pattern=/f/img/*", a.admin),
        None,
        5,
    );
    assert_eq!(r.status, 200, "{r:?}");
    let v = json(&r);
    assert_eq!(v["redis_cleared"], 2, "{v}");
    assert_eq!(v["memory_cleared"], 2, "{v}");
    assert_eq!(v["entries_cleared"], 4, "{v}");
    assert_eq!(v["nodes_notified"], 2, "both nodes listen: {v}");
    assert_eq!(redis_keys(redis.port), 1, "only the css entry is left in Redis");
    // B hears the purge through Redis and clears its memory level.
    assert!(
        eventually(Duration::from_secs(5), || {
            let s = json(&curl(
                None,
                "GET",
                &format!("{}/admin/proxy/cache/stats", b.admin),
                None,
                5,
            ));
            s["entries"] == 1
        }),
        "node B still holds purged entries"
    );
    let before = served(upstream_port);
    assert_eq!(get(&mut cb, "/f/img/1.png").1, "MISS");
    assert_eq!(get(&mut ca, "/f/img/2.png").1, "MISS");
    assert_eq!(get(&mut cb, "/f/css/site.css").1, "HIT");
    assert_eq!(served(upstream_port) - before, 2);
    drop(redis);
}

#[test]
fn redis_dying_mid_load_fails_no_request_and_degrades_to_memory() {
    let mut redis = start_redis();
    let (_upstream, upstream_port) = start_upstream();
    let a = start_node("oa", upstream_port, redis.port);
    let b = start_node("ob", upstream_port, redis.port);
    let proxies = [a.proxy, b.proxy];
    let load = CacheLoad::start(proxies);
    std::thread::sleep(Duration::from_secs(2));
    let before_kill = load.ok();
    redis.process.terminate(Duration::from_secs(5));
    std::thread::sleep(Duration::from_secs(3));
    let (total_ok, failed, errors) = load.finish();
    assert!(before_kill > 100, "the load ran before the kill: {before_kill}");
    assert!(
        total_ok > before_kill + 100,
        "the load went on after the kill: {total_ok}"
    );
    assert_eq!(failed, 0, "failed requests: {errors:?}");

    for node in [&a, &b] {
        assert_redis_down(&node.admin, &node.rampart.log());
    }
    // Memory alone still caches.
    let mut c = Client::connect(a.proxy).unwrap();
    get(&mut c, "/f/after");
    assert_eq!(get(&mut c, "/f/after").1, "HIT");
}
