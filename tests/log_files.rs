//! The access, security and performance logs written to their own files by a running daemon: the formats
//! (combined with escaped client text, JSON security events, the performance record with phase timings),
//! rotation by size with the count of rotated files bounded, nothing lost at shutdown, the daemon's own log
//! to a file from `logging.outputs`, and a log path that cannot be opened refused at start with its name.
#![allow(clippy::unwrap_used)] // a test reports failure by panicking

use std::path::{Path, PathBuf};
use std::time::Duration;

use rampart_tests::*;

struct Logs {
    dir: PathBuf,
}

impl Logs {
    fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("rampart-logs-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// The live file and its rotated siblings, oldest first, concatenated.
    fn all(&self, name: &str) -> String {
        let mut files = rotated(&self.dir, name);
        files.reverse();
        files.push(self.path(name));
        files
            .iter()
            .map(|p| std::fs::read_to_string(p).unwrap_or_default())
            .collect()
    }
}

impl Drop for Logs {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Rotated files of `name` in `dir`, newest first.
fn rotated(dir: &Path, name: &str) -> Vec<PathBuf> {
    let prefix = format!("{name}.");
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&prefix))
        })
        .collect();
    v.sort();
    v.reverse();
    v
}

fn config(logs: &Logs, proxy_port: u16, admin_port: u16, upstream_port: u16, state: &XdpState) -> String {
    format!(
        "server:\n  host: 127.0.0.1\n  port: {proxy_port}\n\
         proxy:\n  upstreams:\n    - name: app\n      servers:\n        - {{host: 127.0.0.1, port: {upstream_port}}}\n  \
         routes:\n    - {{name: main, pattern: \"/*\", upstream: app}}\n\
         admin:\n  port: {admin_port}\n\
         logging:\n  format: json\n  outputs: [stdout, {daemon}]\n\
         \x20 security_log:\n    enabled: true\n    file: {security}\n\
         \x20 access_log:\n    enabled: true\n    file: {access}\n    format: combined\n    max_size: 4KB\n    rotation: size\n    max_files: 3\n\
         \x20 performance_log:\n    enabled: true\n    file: {perf}\n    slow_request_threshold: 0\n\
         waf:\n  enabled: true\n  mode: block\n\
         xdp:\n  enabled: false\n{}",
        state.yaml(),
        daemon = logs.path("daemon.log").display(),
        security = logs.path("security.log").display(),
        access = logs.path("access.log").display(),
        perf = logs.path("perf.log").display(),
    )
}

#[test]
fn access_security_and_performance_records_reach_their_files_and_the_access_log_rotates() {
    let logs = Logs::new("files");
    let (_upstream, upstream_port) = start_upstream();
    let (proxy_port, admin_port) = (free_port(), free_port());
    let state = XdpState::new(&format!("logs{proxy_port}"));
    let yaml = config(&logs, proxy_port, admin_port, upstream_port, &state);
    let mut rampart = start_rampart(&format!("rampart-logs-{proxy_port}"), &yaml, admin_port);
    wait_for_port(
        std::net::SocketAddr::from(([127, 0, 0, 1], proxy_port)),
        Duration::from_secs(20),
        &mut rampart,
    );
    let proxy = format!("http://127.0.0.1:{proxy_port}");

    // ~120-byte combined lines, 4 KB files: 200 requests rotate many times; only 3 rotated files stay.
    let requests = 200;
    for i in 0..requests {
        let r = run(
            "curl",
            &[
                "-sS",
                "-m",
                "5",
                "-o",
                "/dev/null",
                "-A",
                "probe \"quoted\"",
                &format!("{proxy}/page/{i}?x=1"),
            ],
        );
        assert!(r.status.success(), "{r:?}");
    }
    let attack = curl(
        None,
        "GET",
        &format!("{proxy}/s?q=1%27%20UNION%20SELECT%20password%20FROM%20users--"),
        None,
        5,
    );
    assert_eq!(attack.status, 403, "{attack:?}");

    // A clean stop flushes every queue: the last request's lines must be there.
    assert!(
        rampart.terminate(Duration::from_secs(20)).is_some(),
        "rampart did not stop"
    );

    let rotated_access = rotated(&logs.dir, "access.log");
    assert_eq!(rotated_access.len(), 3, "max_files 3: {rotated_access:?}");
    for f in &rotated_access {
        let len = std::fs::metadata(f).unwrap().len();
        assert!(len <= 4096, "{} is {len} bytes, over max_size", f.display());
        let text = std::fs::read_to_string(f).unwrap();
        assert!(
            text.ends_with('\n'),
            "a record was split by rotation in {}",
            f.display()
        );
    }
    let live = std::fs::read_to_string(logs.path("access.log")).unwrap();
    let last = live.lines().last().unwrap();
    // Combined format, the user agent's quotes escaped as nginx does.
    assert!(last.starts_with("127.0.0.1 - - ["), "not the combined format: {last}");
    assert!(
        last.contains("\"GET /s?q=1%27%20UNION%20SELECT%20password%20FROM%20users-- HTTP/1.1\" 403 "),
        "{last}"
    );
    let page = logs.all("access.log");
    assert!(
        page.contains(&format!("\"GET /page/{}?x=1 HTTP/1.1\" 200 ", requests - 1)),
        "the last clean request is missing"
    );
    assert!(page.contains("\"probe \\x22quoted\\x22\""), "user agent not escaped");

    let security = std::fs::read_to_string(logs.path("security.log")).unwrap();
    let event: serde_json::Value = security
        .lines()
        .find(|l| l.contains("security_block"))
        .map(|l| serde_json::from_str(l).unwrap())
        .unwrap_or_else(|| panic!("no security_block event in the security log:\n{security}"));
    assert_eq!(event["attack_type"], "sql_injection");
    // Only security events go there.
    assert!(security.lines().all(|l| l.contains("\"event_type\"")), "{security}");
    let daemon = std::fs::read_to_string(logs.path("daemon.log")).unwrap();
    assert!(daemon.contains("proxy listening"), "{daemon}");
    assert!(
        !daemon.contains("security_block"),
        "security events belong in their own file when one is set"
    );

    let perf = std::fs::read_to_string(logs.path("perf.log")).unwrap();
    let records: Vec<serde_json::Value> = perf.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(records.len(), requests + 1, "threshold 0 logs every request");
    let r = records.iter().find(|r| r["response"]["status_code"] == 200).unwrap();
    assert_eq!(r["event_type"], "request_processed");
    assert_eq!(r["upstream"], "app");
    let t = &r["timing"];
    let total = t["total_ms"].as_f64().unwrap();
    let parts = t["waf_processing_ms"].as_f64().unwrap()
        + t["upstream_request_ms"].as_f64().unwrap()
        + t["response_processing_ms"].as_f64().unwrap();
    assert!(total > 0.0 && (total - parts).abs() < 0.01, "{t}");
    assert!(t["upstream_request_ms"].as_f64().unwrap() > 0.0, "{t}");
}

#[test]
fn a_log_file_that_cannot_be_opened_stops_the_start_naming_it() {
    let logs = Logs::new("bad");
    let (proxy_port, admin_port) = (free_port(), free_port());
    let state = XdpState::new(&format!("logsbad{proxy_port}"));
    // A directory where the file should be: it cannot be opened for appending.
    std::fs::create_dir_all(logs.path("access.log")).unwrap();
    let yaml = config(&logs, proxy_port, admin_port, 9, &state);
    let path = temp_file(&format!("logs-bad-{proxy_port}.yaml"), &yaml);
    let out = std::process::Command::new(rampart_bin())
        .args(["run", "--config", path.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    assert!(
        err.contains(&logs.path("access.log").display().to_string()) && err.contains("access"),
        "{err}"
    );
}
