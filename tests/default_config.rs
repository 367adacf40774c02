//! The embedded default configuration — what `cargo xtask run` starts — serves a request through the proxy on
//! :8080 to the demo upstream on 127.0.0.1:8000 with the XDP program attached to `lo`, and detaches on exit.
//! Uses the fixed ports of the default configuration; the test fails, naming the port, if one is taken.
#![allow(clippy::unwrap_used)] // a test reports failure by panicking

use std::net::SocketAddr;
use std::time::Duration;

use rampart_tests::*;

#[test]
fn default_config_serves_through_the_proxy_with_xdp_on_loopback() {
    require_root();
    let bin = rampart_bin();
    let mut upstream = Process::start(
        "echo-upstream",
        &bin,
        &["echo-upstream", "--listen", "127.0.0.1:8000"],
        &[],
    );
    wait_for_port(
        "127.0.0.1:8000".parse().unwrap(),
        Duration::from_secs(10),
        &mut upstream,
    );
    // The default config's pins and record live under system paths; point them at this test's own.
    let state = XdpState::new("dflt");
    let env = [
        ("RAMPART_XDP__PIN_PATH", state.pin_dir.to_str().unwrap()),
        ("RAMPART_XDP__RECORD_FILE", state.record.to_str().unwrap()),
    ];
    let mut rampart = Process::start("rampart", &bin, &["run"], &env);
    wait_for_port(
        SocketAddr::from(([127, 0, 0, 1], 8081)),
        Duration::from_secs(20),
        &mut rampart,
    );

    let r = curl(None, "GET", "http://127.0.0.1:8080/hello", None, 5);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(json(&r)["server"], "echo");
    let link = must("ip", &["link", "show", "dev", "lo"]);
    assert!(link.contains("rampart_xdp"), "XDP not attached to lo:\n{link}");
    let health = json(&curl(None, "GET", "http://127.0.0.1:8081/health", None, 5));
    assert_eq!(
        health["components"]["xdp"]["attached"][0]["interface"], "lo",
        "{health}"
    );

    let status = rampart
        .terminate(Duration::from_secs(30))
        .expect("rampart exits on SIGTERM");
    assert!(status.success(), "{}", rampart.log());
    assert!(
        !must("ip", &["link", "show", "dev", "lo"]).contains("rampart_xdp"),
        "XDP left attached to lo"
    );
}
