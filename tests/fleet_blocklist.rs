//! Fleet state through a real redis-server (started here on a random loopback port, killed by PID): several
//! Rampart processes, each with XDP attached natively to the host side of its own veth pair and its own pin
//! directory and record. A block made through node A's admin API lands in node B's deny map and B's XDP
//! drops the blocked client's packets within a second; an unblock propagates the same way; a node started
//! after the change has it at start, and a node that was down during an unblock drops its stale entry at
//! start. No node re-publishes what it received. When Redis dies, nodes keep enforcing their own lists, say
//! so on `/health` and in a metric, and after Redis comes back (empty) they reconnect and resync, so a
//! block made during the outage reaches the other nodes.
#![allow(clippy::unwrap_used)] // a test reports failure by panicking

use std::time::{Duration, Instant};

use rampart_tests::*;

const DROPS: &str = r#"rampart_xdp_packets_total{action="drop",reason="deny_list"}"#;

struct Node {
    rampart: Process,
    admin: String,
    _state: XdpState,
}

/// Starts a node named `node_id` with XDP on `net`'s host interface, sharing lists through `redis_port`.
fn start_node(node_id: &str, net: &Netns, state: XdpState, redis_port: u16, prefix: &str) -> Node {
    let (proxy_port, admin_port) = (free_port(), free_port());
    let config = format!(
        "server:\n  host: 127.0.0.1\n  port: {proxy_port}\n\
         proxy:\n  upstreams:\n    - name: app\n      servers:\n        - {{host: 127.0.0.1, port: 9}}\n\
         admin:\n  host: 127.0.0.1\n  port: {admin_port}\n\
         logging:\n  format: json\n\
         waf:\n  enabled: false\n\
         xdp:\n  interfaces: [{iface}]\n  attach_mode: native\n{state}\
         fleet:\n  enabled: true\n  node_id: {node_id}\n  key_prefix: {prefix}\n  resync_interval: 2\n\
         \x20 redis: {{host: 127.0.0.1, port: {redis_port}, timeout: 1}}\n",
        iface = net.host_if,
        state = state.yaml(),
    );
    let rampart = start_rampart(&format!("rampart-{node_id}-{proxy_port}"), &config, admin_port);
    Node {
        rampart,
        admin: format!("http://127.0.0.1:{admin_port}"),
        _state: state,
    }
}

impl Node {
    /// The prefixes in this node's deny list as the admin API reports them (read from the XDP maps).
    fn denied(&self) -> Vec<String> {
        let listed = json(&curl(
            None,
            "GET",
            &format!("{}/admin/waf/blocked-ips", self.admin),
            None,
            5,
        ));
        assert_eq!(listed["enforced_by"], "xdp", "{listed}");
        listed["blocked_ips"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["ip"].as_str().unwrap().to_owned())
            .collect()
    }

    fn block(&self, ip: &str) {
        let body = format!(r#"{{"ip":"{ip}","reason":"fleet test","duration":600}}"#);
        let r = curl(
            None,
            "POST",
            &format!("{}/admin/waf/blocked-ips", self.admin),
            Some(&body),
            5,
        );
        assert_eq!(r.status, 201, "{r:?}");
    }

    fn unblock(&self, ip: &str) {
        let r = curl(
            None,
            "DELETE",
            &format!("{}/admin/waf/blocked-ips?ip={ip}", self.admin),
            None,
            5,
        );
        assert_eq!(r.status, 200, "{r:?}");
    }

    fn metric(&self, name: &str) -> f64 {
        metric(&scrape(&self.admin), name)
    }

    fn health(&self) -> serde_json::Value {
        json(&curl(None, "GET", &format!("{}/health", self.admin), None, 5))
    }
}

/// Waits up to `limit` for `check`, polling every 20 ms; returns how long it took, or panics with `what`.
fn within(limit: Duration, what: &str, node: &Node, mut check: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while start.elapsed() < limit {
        if check() {
            return start.elapsed();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("{what} did not happen within {limit:?}\n{}", node.rampart.log());
}

/// Sends 100 datagrams from inside `net` to a socket on its host side; returns how many arrived.
fn datagrams_through(net: &Netns) -> u64 {
    let counter = UdpCounter::bind(&net.host_ip);
    let sent = udp_flood(&net.name, counter.addr, 100, 3.0, 500);
    assert_eq!(sent, 100, "the sender could not send");
    std::thread::sleep(Duration::from_millis(300));
    counter.count()
}

fn slash32(ip: &str) -> String {
    format!("{ip}/32")
}

#[test]
fn blocks_and_unblocks_reach_every_node_and_late_nodes_catch_up() {
    require_root();
    let redis = start_redis();
    let prefix = format!("rt{}", std::process::id());
    let (na, nb, nc) = (Netns::create("fla"), Netns::create("flb"), Netns::create("flc"));
    let a = start_node("edge-a", &na, XdpState::new("fla"), redis.port, &prefix);
    let b = start_node("edge-b", &nb, XdpState::new("flb"), redis.port, &prefix);
    assert_eq!(b.health()["components"]["fleet"]["status"], "healthy", "{}", b.health());

    // Before: the client inside B's namespace reaches B's host.
    assert_eq!(datagrams_through(&nb), 100, "nothing is blocked yet");

    // 1. A block made on A lands in B's deny map within a second, and B's XDP drops the client.
    let (client_b, client_c) = (nb.ns_ip.clone(), nc.ns_ip.clone());
    let drops_before = b.metric(DROPS);
    a.block(&client_b);
    let took = within(Duration::from_secs(1), "the block reaching node B", &b, || {
        b.denied().contains(&slash32(&client_b))
    });
    eprintln!("block reached node B after {took:?}");
    assert_eq!(datagrams_through(&nb), 0, "B's XDP must drop the blocked client");
    assert!(
        b.metric(DROPS) >= drops_before + 100.0,
        "B's deny-list drops did not rise"
    );
    let listed = json(&curl(
        None,
        "GET",
        &format!("{}/admin/waf/blocked-ips", b.admin),
        None,
        5,
    ));
    assert_eq!(
        listed["blocked_ips"][0]["reason"], "fleet test",
        "metadata travels: {listed}"
    );
    assert!(
        listed["blocked_ips"][0]["expires"].is_string(),
        "the expiry travels: {listed}"
    );

    // The change is in Redis's durable list, written by A.
    let stored = must(
        "redis-cli",
        &[
            "-p",
            &redis.port.to_string(),
            "HGET",
            &format!("{prefix}:access:deny"),
            &slash32(&client_b),
        ],
    );
    let stored: serde_json::Value = serde_json::from_str(stored.trim()).unwrap();
    assert_eq!(stored["node"], "edge-a", "{stored}");
    assert_eq!(stored["op"], "add", "{stored}");

    // 2. A node started after the change has it from the moment its admin API answers.
    a.block(&client_c);
    within(Duration::from_secs(1), "the second block reaching node B", &b, || {
        b.denied().contains(&slash32(&client_c))
    });
    let c = start_node("edge-c", &nc, XdpState::new("flc"), redis.port, &prefix);
    let at_start = c.denied();
    assert!(
        at_start.contains(&slash32(&client_c)) && at_start.contains(&slash32(&client_b)),
        "node C did not catch up at start: {at_start:?}\n{}",
        c.rampart.log()
    );
    assert_eq!(datagrams_through(&nc), 0, "C's XDP must drop its blocked client");

    // 3. An unblock made on A propagates: B lets its client through again within a second.
    a.unblock(&client_b);
    let took = within(Duration::from_secs(1), "the unblock reaching node B", &b, || {
        !b.denied().contains(&slash32(&client_b))
    });
    eprintln!("unblock reached node B after {took:?}");
    assert_eq!(datagrams_through(&nb), 100, "B must pass the unblocked client again");
    within(Duration::from_secs(1), "the unblock reaching node C", &c, || {
        !c.denied().contains(&slash32(&client_b))
    });

    // No loops: only A published; B and C applied A's three changes and published none of them.
    assert_eq!(a.metric(r#"rampart_fleet_changes_total{direction="published"}"#), 3.0);
    assert_eq!(
        a.metric(r#"rampart_fleet_changes_total{direction="applied"}"#),
        0.0,
        "A ignores its own"
    );
    assert_eq!(b.metric(r#"rampart_fleet_changes_total{direction="published"}"#), 0.0);
    assert_eq!(b.metric(r#"rampart_fleet_changes_total{direction="applied"}"#), 3.0);
    assert_eq!(c.metric(r#"rampart_fleet_changes_total{direction="published"}"#), 0.0);

    // 4. A node that was down while its client was unblocked drops its stale entry when it starts again,
    //    although its own record and pinned map still hold it.
    let Node {
        mut rampart,
        _state: state_c,
        ..
    } = c;
    rampart
        .terminate(Duration::from_secs(10))
        .expect("node C stops on SIGTERM");
    drop(rampart);
    a.unblock(&client_c);
    let c = start_node("edge-c2", &nc, state_c, redis.port, &prefix);
    assert!(
        !c.denied().contains(&slash32(&client_c)),
        "node C kept an entry unblocked while it was down:\n{}",
        c.rampart.log()
    );
    assert_eq!(
        datagrams_through(&nc),
        100,
        "C must pass its unblocked client after catching up"
    );
}

#[test]
fn nodes_keep_their_lists_while_redis_is_down_and_resync_when_it_returns() {
    require_root();
    let mut redis = start_redis();
    let port = redis.port;
    let prefix = format!("ro{}", std::process::id());
    let (na, nb) = (Netns::create("foa"), Netns::create("fob"));
    let a = start_node("out-a", &na, XdpState::new("foa"), port, &prefix);
    let b = start_node("out-b", &nb, XdpState::new("fob"), port, &prefix);
    a.block(&nb.ns_ip);
    within(Duration::from_secs(1), "the block reaching node B", &b, || {
        b.denied().contains(&slash32(&nb.ns_ip))
    });

    // Redis dies: both nodes say so, and keep enforcing what they have.
    redis.process.terminate(Duration::from_secs(5)).expect("redis stops");
    within(Duration::from_secs(10), "node B reporting the outage", &b, || {
        b.health()["degraded"]
            .as_array()
            .is_some_and(|d| d.iter().any(|x| x == "fleet"))
    });
    assert_eq!(b.metric("rampart_fleet_redis_up"), 0.0);
    assert_eq!(b.health()["components"]["fleet"]["status"], "degraded");
    assert!(
        b.rampart.log().contains("fleet: Redis is unreachable"),
        "{}",
        b.rampart.log()
    );
    assert_eq!(
        datagrams_through(&nb),
        0,
        "B still drops the blocked client without Redis"
    );
    // A change made during the outage works locally at once.
    b.block(&na.ns_ip);
    assert!(b.denied().contains(&slash32(&na.ns_ip)));
    assert!(!a.denied().contains(&slash32(&na.ns_ip)), "A cannot know yet");

    // Redis returns empty (it keeps nothing on disk): the nodes reconnect, push what they hold, and A learns
    // B's outage-time block.
    let _redis = start_redis_on(port);
    within(
        Duration::from_secs(10),
        "node A learning the outage-time block",
        &a,
        || a.denied().contains(&slash32(&na.ns_ip)),
    );
    assert_eq!(
        datagrams_through(&na),
        0,
        "A's XDP drops the client blocked on B during the outage"
    );
    within(Duration::from_secs(5), "node B reporting Redis back", &b, || {
        b.health()["status"] == "healthy"
    });
    assert_eq!(b.metric("rampart_fleet_redis_up"), 1.0);
    assert!(b.denied().contains(&slash32(&nb.ns_ip)), "B kept A's earlier block");
    // The durable list is whole again: a node started now would see both.
    let out = must(
        "redis-cli",
        &["-p", &port.to_string(), "HKEYS", &format!("{prefix}:access:deny")],
    );
    assert!(
        out.contains(&slash32(&nb.ns_ip)) && out.contains(&slash32(&na.ns_ip)),
        "Redis after the resync: {out}"
    );
}
