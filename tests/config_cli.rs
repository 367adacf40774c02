//! `rampart config validate` and `rampart run` on bad configuration: one line per problem naming key path and
//! line, exit status 2, and nothing started.
#![allow(clippy::unwrap_used)] // a test reports failure by panicking

use std::net::TcpStream;
use std::time::Duration;

use rampart_tests::*;

const BAD: &str = "server:\n  port: 70000\n  hots: x\nproxy:\n  upstreams:\n    - name: a\n      servers: [{host: h, port: 1}]\nxdp:\n  deny: [10.0.0.0/33]\n";

#[test]
fn validate_reports_every_problem_with_key_path_and_line_and_exits_2() {
    let path = temp_file("bad.yaml", BAD);
    let out = run(
        rampart_bin().to_str().unwrap(),
        &["config", "validate", path.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 3, "{err}");
    assert!(
        lines[0].contains("bad.yaml:2: server.port: port out of range: 70000"),
        "{err}"
    );
    assert!(
        lines[1].contains("bad.yaml:3: server.hots: unknown field `hots`"),
        "{err}"
    );
    assert!(
        lines[2].contains("bad.yaml:9: xdp.deny[0]: invalid CIDR `10.0.0.0/33`"),
        "{err}"
    );
}

#[test]
fn wrong_types_are_reported_the_same_way() {
    let path = temp_file(
        "type.yaml",
        "proxy:\n  upstreams:\n    - name: a\n      servers: [{host: h, port: 1}]\nwaf:\n  enabled: maybe\n",
    );
    let out = run(
        rampart_bin().to_str().unwrap(),
        &["config", "validate", path.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("type.yaml:6: waf.enabled: invalid type"), "{err}");
}

#[test]
fn run_with_a_bad_config_starts_nothing() {
    let port = free_port();
    let path = temp_file(
        "badrun.yaml",
        &format!("server:\n  port: {port}\n  prot: 1\nproxy:\n  upstreams: []\n"),
    );
    let mut p = Process::start(
        "rampart",
        &rampart_bin(),
        &["run", "--config", path.to_str().unwrap()],
        &[],
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = p.exited() {
            break s;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "rampart kept running with a bad config"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(2), "{}", p.log());
    assert!(p.log().contains("server.prot"), "{}", p.log());
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "something listens on the configured port"
    );
}

#[test]
fn a_good_config_validates() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../config/rampart.example.yaml");
    let out = run(rampart_bin().to_str().unwrap(), &["config", "validate", example]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn environment_overrides_are_validated_too() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../config/rampart.example.yaml");
    let out = std::process::Command::new(rampart_bin())
        .args(["config", "validate", example])
        .env("RAMPART_ADMIN__PORT", "0")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("environment RAMPART_ADMIN__PORT: admin.port"));
}
