//! Load balancing, failover, retries and reload with real upstream processes on loopback ports.
#![allow(clippy::unwrap_used)] // a test reports failure by panicking

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use rampart_tests::http1::Client;
use rampart_tests::*;

/// Upstreams `name` with echo servers (name, weight, delay); returns the YAML and the processes.
fn pool(name: &str, algorithm: &str, servers: &[(&str, u32, u64)], extra: &str) -> (String, Vec<Process>) {
    let mut yaml = format!("    - name: {name}\n      algorithm: {algorithm}\n{extra}      servers:\n");
    let mut procs = Vec::new();
    for (server, weight, delay) in servers {
        let (p, port) = start_named_upstream(server, *delay);
        yaml.push_str(&format!(
            "        - {{host: 127.0.0.1, port: {port}, weight: {weight}, max_fails: 1000}}\n"
        ));
        procs.push(p);
    }
    (yaml, procs)
}

struct Daemon {
    proxy: SocketAddr,
    admin: String,
    config: std::path::PathBuf,
    process: Process,
    _state: XdpState,
}

fn daemon(tag: &str, upstreams: &str, routes: &str, server_extra: &str) -> Daemon {
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
        config: path,
        process,
        _state: state,
    }
}

fn route(pattern: &str, upstream: &str, extra: &str) -> String {
    format!("    - pattern: \"{pattern}\"\n      upstream: {upstream}\n{extra}")
}

fn server_of(c: &mut Client, path: &str, headers: &[(&str, &str)]) -> String {
    let r = c.get(path, headers).unwrap();
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    r.json()["server"].as_str().unwrap().to_owned()
}

#[test]
fn each_algorithm_distributes_as_configured() {
    let (rr, _p1) = pool("rr", "round_robin", &[("r1", 1, 0), ("r2", 2, 0), ("r3", 3, 0)], "");
    let (wr, _p2) = pool(
        "wr",
        "weighted_random",
        &[("w1", 30, 0), ("w2", 50, 0), ("w3", 20, 0)],
        "",
    );
    let (lc, _p3) = pool("lc", "least_connections", &[("l1", 1, 0), ("l2", 1, 0)], "");
    let (p2c, _p4) = pool("p2c", "power_of_two_choices", &[("fast", 1, 0), ("slow", 1, 25)], "");
    let routes = [
        route("/rr/*", "rr", ""),
        route("/wr/*", "wr", ""),
        route("/lc/*", "lc", ""),
        route("/p2c/*", "p2c", ""),
    ]
    .concat();
    let d = daemon("balance", &[rr, wr, lc, p2c].concat(), &routes, "");
    let mut c = Client::connect(d.proxy).unwrap();
    let mut count = |path: &str, n: usize| {
        let mut m: HashMap<String, usize> = HashMap::new();
        for _ in 0..n {
            *m.entry(server_of(&mut c, path, &[])).or_default() += 1;
        }
        m
    };
    // Smooth weighted round robin over one connection is exact.
    let rr = count("/rr/x", 10_002);
    assert_eq!((rr["r1"], rr["r2"], rr["r3"]), (1667, 3334, 5001), "{rr:?}");
    let wr = count("/wr/x", 10_000);
    for (name, want) in [("w1", 0.30), ("w2", 0.50), ("w3", 0.20)] {
        let got = wr[name] as f64 / 10_000.0;
        assert!((got - want).abs() < 0.03, "{name}: {got} vs {want}: {wr:?}");
    }
    let lc = count("/lc/x", 2_000);
    assert!(lc["l1"].abs_diff(lc["l2"]) <= 200, "equal servers share: {lc:?}");
    // After the latency averages warm up, the fast server takes most of the traffic.
    count("/p2c/x", 20);
    let p2c = count("/p2c/x", 200);
    assert!(p2c.get("fast").copied().unwrap_or(0) >= 170, "{p2c:?}");
}

#[test]
fn ip_hash_is_sticky_and_removing_a_server_moves_only_its_clients() {
    let (ip, _procs) = pool(
        "ip",
        "ip_hash",
        &[("h1", 1, 0), ("h2", 1, 0), ("h3", 1, 0), ("h4", 1, 0)],
        "      hash_method: md5\n",
    );
    let d = daemon(
        "iphash",
        &ip,
        &route("/*", "ip", ""),
        "  trusted_proxies: [127.0.0.1/32]\n",
    );
    let mut c = Client::connect(d.proxy).unwrap();
    let clients: Vec<String> = (0..2_000u32)
        .map(|i| format!("198.18.{}.{}", i / 250, i % 250 + 1))
        .collect();
    let before: Vec<String> = clients
        .iter()
        .map(|ip| server_of(&mut c, "/", &[("X-Forwarded-For", ip)]))
        .collect();
    let mut counts: HashMap<&str, usize> = HashMap::new();
    before.iter().for_each(|s| *counts.entry(s.as_str()).or_default() += 1);
    assert!(counts.values().all(|&n| (350..=650).contains(&n)), "{counts:?}");
    for (ip, was) in clients.iter().zip(&before).take(200) {
        assert_eq!(&server_of(&mut c, "/", &[("X-Forwarded-For", ip)]), was, "sticky");
    }
    // Remove h2 from the pool and reload.
    let text = std::fs::read_to_string(&d.config).unwrap();
    let kept: String = text
        .lines()
        .filter(|l| !l.contains(&format!("port: {}", port_of(&text, 1))))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&d.config, kept).unwrap();
    let r = curl(
        None,
        "POST",
        &format!("{}/admin/system/reload-config", d.admin),
        Some("{}"),
        5,
    );
    assert_eq!(r.status, 200, "{r:?}");
    let mut c = Client::connect(d.proxy).unwrap();
    let mut moved = 0;
    for (ip, was) in clients.iter().zip(&before) {
        let now = server_of(&mut c, "/", &[("X-Forwarded-For", ip)]);
        assert_ne!(now, "h2");
        if was != "h2" && &now != was {
            moved += 1;
        }
    }
    assert_eq!(moved, 0, "clients of the remaining servers must not move");
}

/// The port of the `n`th server line in a config text.
fn port_of(text: &str, n: usize) -> u16 {
    text.lines()
        .filter(|l| l.contains("host: 127.0.0.1, port:"))
        .nth(n)
        .and_then(|l| l.split("port: ").nth(1))
        .and_then(|r| r.split(',').next())
        .and_then(|p| p.trim().parse().ok())
        .unwrap()
}

/// Sends `n` GETs on keep-alive connections from `threads` threads; returns (ok, failed).
fn load(addr: SocketAddr, path: &'static str, n: u64, threads: u64, stop_early: Arc<AtomicBool>) -> (u64, u64) {
    let (ok, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (ok, failed, stop) = (ok.clone(), failed.clone(), stop_early.clone());
            std::thread::spawn(move || {
                let mut c = Client::connect(addr).unwrap();
                for _ in 0..n / threads {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    match c.get(path, &[]) {
                        Ok(r) if r.status == 200 => ok.fetch_add(1, Ordering::Relaxed),
                        Ok(_) => failed.fetch_add(1, Ordering::Relaxed),
                        Err(_) => {
                            let _ = c.reconnect();
                            failed.fetch_add(1, Ordering::Relaxed)
                        }
                    };
                }
            })
        })
        .collect();
    handles.into_iter().for_each(|h| h.join().unwrap());
    (ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed))
}

fn status_of(admin: &str, server: u16) -> String {
    let v = json(&curl(None, "GET", &format!("{admin}/admin/proxy/upstreams"), None, 5));
    v["upstreams"][0]["servers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["port"] == server)
        .unwrap()["status"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn killing_an_upstream_under_load_costs_no_requests_and_health_checks_notice() {
    let health = "      health_check: {enabled: true, type: http, path: /health, interval: 1, timeout: 1, healthy_threshold: 1, unhealthy_threshold: 2}\n";
    let (ups, mut procs) = pool("app", "round_robin", &[("a", 1, 0), ("b", 1, 0), ("c", 1, 0)], health);
    let d = daemon("failover", &ups, &route("/*", "app", "      retry_attempts: 2\n"), "");
    let victim = port_of(&std::fs::read_to_string(&d.config).unwrap(), 1);
    let addr = d.proxy;
    let runner = std::thread::spawn(move || load(addr, "/x", 6_000, 2, Arc::new(AtomicBool::new(false))));
    std::thread::sleep(Duration::from_millis(400));
    drop(procs.remove(1)); // killed by PID mid-load
    let (ok, failed) = runner.join().unwrap();
    assert!(
        failed == 0,
        "{failed} requests failed ({ok} ok): connection failures must be retried on another server"
    );
    assert!(ok >= 5_990, "{ok}");
    assert!(
        eventually(Duration::from_secs(8), || status_of(&d.admin, victim) == "unhealthy"),
        "active checks did not mark it"
    );
    // All traffic now goes to the two live servers, with no errors.
    let (ok, failed) = load(addr, "/x", 300, 1, Arc::new(AtomicBool::new(false)));
    assert_eq!((ok, failed), (300, 0));
}

#[test]
fn only_idempotent_requests_are_retried() {
    let (_p, live) = start_named_upstream("live", 0);
    let dead = free_port();
    let ups = format!(
        "    - name: app\n      servers:\n        - {{host: 127.0.0.1, port: {dead}, max_fails: 1000}}\n        - {{host: 127.0.0.1, port: {live}, max_fails: 1000}}\n"
    );
    let d = daemon("retries", &ups, &route("/*", "app", "      retry_attempts: 1\n"), "");
    let mut c = Client::connect(d.proxy).unwrap();
    for _ in 0..20 {
        assert_eq!(
            c.get("/", &[]).unwrap().status,
            200,
            "GET is retried on the live server"
        );
    }
    // A connection per POST: after a 502 the unread body makes the server close the connection, as HTTP allows.
    let post = || {
        Client::connect(d.proxy)
            .unwrap()
            .request("POST", "/", &[], b"{}")
            .unwrap()
            .status
    };
    let posts: Vec<u16> = (0..20).map(|_| post()).collect();
    assert!(
        posts.iter().filter(|&&s| s == 502).count() >= 8,
        "a POST that hit the dead server is not retried: {posts:?}"
    );
    assert!(posts.iter().filter(|&&s| s == 200).count() >= 8, "{posts:?}");
}

#[test]
fn reloads_under_load_fail_no_request_and_a_bad_config_changes_nothing() {
    let (ups, _p) = pool("app", "round_robin", &[("a", 1, 0), ("b", 1, 0)], "");
    let d = daemon("reload", &ups, &route("/*", "app", ""), "");
    let addr = d.proxy;
    let stop = Arc::new(AtomicBool::new(false));
    let s2 = stop.clone();
    let runner = std::thread::spawn(move || load(addr, "/x", 200_000, 2, s2));
    let original = std::fs::read_to_string(&d.config).unwrap();
    for i in 0..4 {
        std::thread::sleep(Duration::from_millis(300));
        let changed = original.replace(
            "upstream: app\n",
            &format!("upstream: app\n      headers: {{add: {{X-Added: \"v{i}\"}}}}\n"),
        );
        std::fs::write(&d.config, &changed).unwrap();
        let r = curl(
            None,
            "POST",
            &format!("{}/admin/system/reload-config", d.admin),
            Some("{}"),
            5,
        );
        assert_eq!(r.status, 200, "{r:?}");
    }
    // SIGHUP works too.
    // SAFETY: signalling a child we started.
    unsafe { libc::kill(d.process.pid(), libc::SIGHUP) };
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    let (ok, failed) = runner.join().unwrap();
    assert_eq!(failed, 0, "{failed} failed of {}", ok + failed);
    assert!(ok > 500, "{ok}");
    let mut c = Client::connect(d.proxy).unwrap();
    assert_eq!(
        c.get("/", &[]).unwrap().json()["x_added"],
        "v3",
        "the last reload is in force"
    );

    // A broken file: the reload is refused and the previous configuration keeps serving.
    std::fs::write(
        &d.config,
        original.replace("algorithm: round_robin", "algorithm: fastest"),
    )
    .unwrap();
    let r = curl(
        None,
        "POST",
        &format!("{}/admin/system/reload-config", d.admin),
        Some("{}"),
        5,
    );
    assert_eq!(r.status, 422, "{r:?}");
    assert!(r.body.contains("algorithm"), "{r:?}");
    assert_eq!(c.get("/", &[]).unwrap().json()["x_added"], "v3");
    assert!(d.process.log().contains("reload refused"), "{}", d.process.log());
}
