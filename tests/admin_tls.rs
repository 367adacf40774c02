//! The admin listener over TLS (`admin.tls`): the API answers HTTPS with the configured certificate and
//! refuses plain HTTP; the CLI reaches it trusting the CA in `RAMPART_ADMIN_CA` and refuses it without; a
//! key that cannot be read stops the start naming the key.
#![allow(clippy::unwrap_used)] // a test reports failure by panicking

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use rampart_tests::pki::Pki;
use rampart_tests::*;

struct Setup {
    admin_port: u16,
    ca: PathBuf,
    dir: PathBuf,
    _rampart: Process,
    /// Deletes its files when dropped: kept for as long as the test uses the CA.
    _pki: Pki,
    _state: XdpState,
}

impl Drop for Setup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn config(proxy_port: u16, admin_port: u16, cert: &str, key: &str, state: &XdpState) -> String {
    format!(
        "server:\n  host: 127.0.0.1\n  port: {proxy_port}\n\
         proxy:\n  upstreams:\n    - {{name: app, servers: [{{host: 127.0.0.1, port: 9}}]}}\n  \
         routes:\n    - {{pattern: \"/*\", upstream: app}}\n\
         admin:\n  port: {admin_port}\n  tls:\n    cert_file: {cert}\n    key_file: {key}\n\
         logging:\n  format: json\n\
         xdp:\n  enabled: false\n{}",
        state.yaml()
    )
}

fn start(tag: &str) -> Setup {
    let dir = std::env::temp_dir().join(format!("rampart-admin-tls-{tag}-{}", std::process::id()));
    let pki = Pki::new(&dir);
    let leaf = pki.leaf("admin", &["localhost"]);
    let (proxy_port, admin_port) = (free_port(), free_port());
    let state = XdpState::new(&format!("admintls{admin_port}"));
    let yaml = config(
        proxy_port,
        admin_port,
        leaf.cert.to_str().unwrap(),
        leaf.key.to_str().unwrap(),
        &state,
    );
    let rampart = start_rampart(&format!("rampart-admin-tls-{tag}-{admin_port}"), &yaml, admin_port);
    Setup {
        admin_port,
        ca: pki.ca_cert.clone(),
        dir,
        _rampart: rampart,
        _pki: pki,
        _state: state,
    }
}

fn https_health(s: &Setup, cacert: Option<&std::path::Path>) -> std::process::Output {
    let resolve = format!("localhost:{}:127.0.0.1", s.admin_port);
    let url = format!("https://localhost:{}/health", s.admin_port);
    let mut args = vec!["-sS", "-m", "5", "--resolve", &resolve];
    let ca;
    if let Some(c) = cacert {
        ca = c.to_str().unwrap().to_owned();
        args.extend(["--cacert", &ca]);
    }
    args.push(&url);
    run("curl", &args)
}

#[test]
fn the_admin_api_answers_https_with_its_certificate_and_refuses_plain_http() {
    let s = start("https");
    let ok = https_health(&s, Some(&s.ca));
    assert!(ok.status.success(), "{ok:?}");
    let v: serde_json::Value = serde_json::from_slice(&ok.stdout).unwrap();
    assert!(v["status"].is_string(), "{v}");

    // Without the CA the certificate is not trusted: the client refuses, as it must.
    let untrusted = https_health(&s, None);
    assert!(!untrusted.status.success(), "{untrusted:?}");

    let plain = curl(
        None,
        "GET",
        &format!("http://127.0.0.1:{}/health", s.admin_port),
        None,
        5,
    );
    assert_eq!(plain.status, 0, "plain HTTP must not be answered: {plain:?}");
}

#[test]
fn the_cli_reaches_an_https_admin_api_trusting_rampart_admin_ca_and_refuses_it_without() {
    let s = start("cli");
    let tokens = s.dir.join("tokens");
    let url = format!("https://localhost:{}", s.admin_port);
    let cli = |ca: Option<&std::path::Path>| {
        let mut c = std::process::Command::new(rampart_bin());
        c.args(["monitor", "health", "--json", "--admin", &url])
            .env("RAMPART_TOKEN_FILE", &tokens)
            .env_remove("RAMPART_ADMIN_CA");
        if let Some(ca) = ca {
            c.env("RAMPART_ADMIN_CA", ca);
        }
        c.output().unwrap()
    };
    let ok = cli(Some(&s.ca));
    assert!(ok.status.success(), "{ok:?}");
    let v: serde_json::Value = serde_json::from_slice(&ok.stdout).unwrap();
    assert!(v["status"].is_string(), "{v}");

    // The event tail opens its WebSocket over TLS too (performance_metrics arrive every second).
    let events = std::process::Command::new(rampart_bin())
        .args([
            "events",
            "--topic",
            "performance_metrics",
            "--count",
            "1",
            "--json",
            "--admin",
            &url,
        ])
        .env("RAMPART_TOKEN_FILE", &tokens)
        .env("RAMPART_ADMIN_CA", &s.ca)
        .output()
        .unwrap();
    assert!(events.status.success(), "{events:?}");
    assert!(
        String::from_utf8_lossy(&events.stdout).contains("performance_metrics"),
        "{events:?}"
    );

    let refused = cli(None);
    assert!(!refused.status.success(), "{refused:?}");
    let err = String::from_utf8_lossy(&refused.stderr).to_lowercase();
    assert!(err.contains("certificate") || err.contains("issuer"), "{err}");
}

#[test]
fn an_unreadable_admin_key_stops_the_start_naming_it() {
    let dir = std::env::temp_dir().join(format!("rampart-admin-tls-bad-{}", std::process::id()));
    let pki = Pki::new(&dir);
    let leaf = pki.leaf("admin", &["localhost"]);
    let (proxy_port, admin_port) = (free_port(), free_port());
    let state = XdpState::new(&format!("admintlsbad{admin_port}"));
    let missing = dir.join("missing.key");
    let yaml = config(
        proxy_port,
        admin_port,
        leaf.cert.to_str().unwrap(),
        missing.to_str().unwrap(),
        &state,
    );
    let path = temp_file(&format!("admin-tls-bad-{admin_port}.yaml"), &yaml);
    let out = std::process::Command::new(rampart_bin())
        .args(["run", "--config", path.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("admin.tls.key_file") && err.contains(missing.to_str().unwrap()),
        "{err}"
    );
    // Nothing may be left listening in plain HTTP instead.
    assert!(
        std::net::TcpStream::connect_timeout(
            &SocketAddr::from(([127, 0, 0, 1], admin_port)),
            Duration::from_millis(500)
        )
        .is_err()
    );
    let _ = std::fs::remove_dir_all(&dir);
}
