//! The cache shared by two Rampart processes through a real three-master Redis Cluster (redis-servers started
//! here on free loopback ports, killed by PID, their state in a temporary directory): an entry one node stored
//! is a Redis hit on the other, the entries land on more than one master, a purge on one node clears the
//! matching keys on every master and the other node's memory, and the whole cluster dying in the middle of a
//! load fails no client request (the nodes carry on from memory and say so).
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

fn start_node(tag: &str, upstream_port: u16, cluster: &RedisCluster) -> Node {
    let (proxy_port, admin_port) = (free_port(), free_port());
    let state = XdpState::new(&format!("cc{tag}{proxy_port}"));
    let config = format!(
        "server:\n  host: 127.0.0.1\n  port: {proxy_port}\n\
         proxy:\n  upstreams:\n    - name: app\n      servers:\n        - {{host: 127.0.0.1, port: {upstream_port}}}\n\
         \x20 caching:\n    enabled: true\n\
         \x20   redis_cache:\n      enabled: true\n      cluster_mode: true\n      cluster_nodes: {}\n      pool_size: 2\n      timeout: 1\n\
         \x20   cache_rules:\n      - {{path: \"/f/*\", ttl: 300}}\n\
         admin:\n  port: {admin_port}\n\
         xdp:\n  enabled: false\n{}",
        cluster.nodes_yaml(),
        state.yaml()
    );
    let mut rampart = start_rampart(&format!("rampart-cc-{tag}-{proxy_port}"), &config, admin_port);
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

fn stats(node: &Node) -> serde_json::Value {
    json(&curl(
        None,
        "GET",
        &format!("{}/admin/proxy/cache/stats", node.admin),
        None,
        5,
    ))
}

const IMG: usize = 12;
const CSS: usize = 4;

#[test]
fn two_nodes_share_a_cluster_and_a_purge_clears_every_master() {
    let cluster = start_redis_cluster(3);
    let (_upstream, upstream_port) = start_upstream();
    let a = start_node("pa", upstream_port, &cluster);
    let b = start_node("pb", upstream_port, &cluster);
    let (mut ca, mut cb) = (Client::connect(a.proxy).unwrap(), Client::connect(b.proxy).unwrap());

    let mut first = Vec::new();
    for i in 0..IMG {
        let (s, x, n) = get(&mut ca, &format!("/f/img/{i}.png"));
        assert_eq!((s, x.as_str()), (200, "MISS"), "/f/img/{i}.png");
        first.push(n);
    }
    for i in 0..CSS {
        assert_eq!(get(&mut ca, &format!("/f/css/{i}.css")).1, "MISS");
    }
    // Node A writes Redis in the background; each key goes to the master of its slot.
    let total = |pattern: &str| cluster.keys_per_master(pattern).iter().sum::<usize>();
    assert!(
        eventually(Duration::from_secs(10), || total("rampart:cache:*") == IMG + CSS),
        "keys per master: {:?}",
        cluster.keys_per_master("rampart:cache:*")
    );
    let img_per_master = cluster.keys_per_master("rampart:cache:*/f/img/*");
    assert_eq!(img_per_master.iter().sum::<usize>(), IMG, "{img_per_master:?}");
    assert!(
        img_per_master.iter().filter(|&&n| n > 0).count() > 1,
        "the entries spread over the masters: {img_per_master:?}"
    );

    // B answers A's entries from the cluster, without the upstream.
    let before = served(upstream_port);
    for (i, n) in first.iter().enumerate() {
        let (s, x, nb) = get(&mut cb, &format!("/f/img/{i}.png"));
        assert_eq!(
            (s, x.as_str(), nb.as_str()),
            (200, "HIT", n.as_str()),
            "/f/img/{i}.png on B"
        );
    }
    for i in 0..CSS {
        assert_eq!(get(&mut cb, &format!("/f/css/{i}.css")).1, "HIT");
    }
    assert_eq!(served(upstream_port), before, "B never asked the upstream");
    let s = stats(&b);
    assert_eq!(s["hits_redis"], IMG + CSS, "{s}");
    assert_eq!(s["redis"]["up"], true, "{s}");
    assert_eq!(s["entries"], IMG + CSS, "B copied the hits into memory: {s}");
    let m = scrape(&b.admin);
    assert_eq!(
        metric(&m, "rampart_proxy_cache_hits_total{cache_type=\"redis\"}"),
        (IMG + CSS) as f64
    );
    assert_eq!(metric(&m, "rampart_cache_redis_up"), 1.0);

    let r = curl(
        None,
        "DELETE",
        &format!("{}/admin/proxy/cache/clear?pattern=/f/img/*", a.admin),
        None,
        5,
    );
    assert_eq!(r.status, 200, "{r:?}");
    let v = json(&r);
    assert_eq!(v["redis_cleared"], IMG, "{v}");
    assert_eq!(v["memory_cleared"], IMG, "{v}");
    assert_eq!(v["entries_cleared"], 2 * IMG, "{v}");
    assert_eq!(v["nodes_notified"], 2, "both nodes listen: {v}");
    assert_eq!(
        cluster.keys_per_master("rampart:cache:*/f/img/*"),
        [0, 0, 0],
        "no img entry is left on any master"
    );
    assert_eq!(total("rampart:cache:*"), CSS, "the css entries stay");
    // B hears the purge through the cluster and clears its memory level (the css entries stay).
    assert!(
        eventually(Duration::from_secs(5), || stats(&b)["entries"] == CSS),
        "node B still holds purged entries: {}",
        stats(&b)
    );
    let before = served(upstream_port);
    assert_eq!(get(&mut cb, "/f/img/1.png").1, "MISS");
    assert_eq!(get(&mut ca, "/f/img/2.png").1, "MISS");
    assert_eq!(get(&mut cb, "/f/css/0.css").1, "HIT");
    assert_eq!(served(upstream_port) - before, 2);
}

#[test]
fn the_cluster_dying_mid_load_fails_no_request_and_degrades_to_memory() {
    let mut cluster = start_redis_cluster(3);
    let (_upstream, upstream_port) = start_upstream();
    let a = start_node("oa", upstream_port, &cluster);
    let b = start_node("ob", upstream_port, &cluster);
    let proxies = [a.proxy, b.proxy];
    let load = CacheLoad::start(proxies);
    std::thread::sleep(Duration::from_secs(2));
    let keys_before = cluster.keys_per_master("rampart:cache:*");
    let before_kill = load.ok();
    for master in &mut cluster.masters {
        master.process.terminate(Duration::from_secs(5));
    }
    std::thread::sleep(Duration::from_secs(3));
    let (total_ok, failed, errors) = load.finish();
    assert!(
        keys_before.iter().filter(|&&n| n > 0).count() > 1,
        "the load used the cluster before the kill: {keys_before:?}"
    );
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
