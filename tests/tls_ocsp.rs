//! OCSP stapling from the responder a certificate names: a real responder (`openssl ocsp` on loopback,
//! signing with the test CA) answers; Rampart fetches, checks and staples the response, refreshes it
//! half-way to its nextUpdate, keeps it through a responder outage while it is current, and stops stapling
//! it once it is stale.
#![allow(clippy::unwrap_used)] // a test reports failure by panicking

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rampart_tests::pki::Pki;
use rampart_tests::*;

fn status(port: u16) -> String {
    let out = Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            &format!("127.0.0.1:{port}"),
            "-servername",
            "o.test",
            "-status",
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn this_update(out: &str) -> Option<String> {
    out.lines()
        .find(|l| l.trim_start().starts_with("This Update:"))
        .map(|l| l.trim().to_owned())
}

#[test]
fn ocsp_responses_are_fetched_from_the_responder_refreshed_and_dropped_once_stale() {
    let state = XdpState::new("ocsp");
    let pki = Pki::new(&std::env::temp_dir().join(format!("rampart-pki-ocsp-{}", std::process::id())));
    let responder_port = free_port();
    let leaf = pki.leaf_with_ocsp("o", &["o.test"], &format!("http://127.0.0.1:{responder_port}/"));
    // Responses valid for one minute: refreshed after about 30 s, stale 60 s after the last fetch.
    let mut responder = pki.ocsp_responder(&leaf, responder_port, 1, 100);
    let (_upstream, up) = start_upstream();
    let (plain, tls, admin) = (free_port(), free_port(), free_port());
    let config = format!(
        "server:\n  host: 127.0.0.1\n  port: {plain}\n\
         ssl:\n  enabled: true\n  port: {tls}\n  ocsp_stapling: {{enabled: true, timeout: 5}}\n  certificates:\n\
         \x20   - {{domains: [o.test], cert_file: {}, key_file: {}, chain_file: {}}}\n\
         proxy:\n  upstreams:\n    - {{name: app, servers: [{{host: 127.0.0.1, port: {up}}}]}}\n\
         \x20 routes:\n    - {{pattern: /*, upstream: app}}\n\
         admin:\n  port: {admin}\nwaf:\n  enabled: false\nxdp:\n  enabled: false\n{}",
        leaf.cert.display(),
        leaf.key.display(),
        pki.ca_cert.display(),
        state.yaml()
    );
    let rampart = start_rampart("ocsp", &config, admin);

    let mut first = None;
    assert!(
        eventually(Duration::from_secs(20), || {
            let out = status(tls);
            first = this_update(&out).filter(|_| out.contains("Cert Status: good"));
            first.is_some()
        }),
        "no stapled response fetched from the responder:\n{}\n{}",
        status(tls),
        rampart.log()
    );
    let first = first.unwrap();
    let listing = json(&curl(
        None,
        "GET",
        &format!("http://127.0.0.1:{admin}/admin/ssl/certificates"),
        None,
        5,
    ));
    let cert = &listing["certificates"][0];
    assert_eq!(cert["ocsp"]["stapled"], true, "{listing}");
    assert_eq!(cert["ocsp"]["responder"], format!("http://127.0.0.1:{responder_port}/"));
    assert_eq!(cert["source"], "file");

    // Refreshed before it goes stale.
    let mut second = None;
    assert!(
        eventually(Duration::from_secs(50), || {
            second = this_update(&status(tls)).filter(|t| *t != first);
            second.is_some()
        }),
        "the stapled response was not refreshed:\n{}",
        rampart.log()
    );

    // The responder goes away: the current response stays while it is current, then is dropped.
    assert!(responder.terminate(Duration::from_secs(5)).is_some());
    let stopped = Instant::now();
    assert!(status(tls).contains("Cert Status: good"), "dropped too early");
    assert!(
        eventually(Duration::from_secs(80), || status(tls)
            .contains("OCSP response: no response sent")),
        "a stale response is still stapled:\n{}\n{}",
        status(tls),
        rampart.log()
    );
    assert!(
        stopped.elapsed() > Duration::from_secs(10),
        "dropped before its nextUpdate"
    );
    // Handshakes check freshness themselves; the refresher notices on its next round (every 2 s) and says so.
    assert!(
        eventually(Duration::from_secs(5), || {
            let log = rampart.log();
            log.contains("OCSP refresh failed") && log.contains("passed its nextUpdate")
        }),
        "{}",
        rampart.log()
    );

    // The expiry metric covers file certificates too.
    let m = scrape(&format!("http://127.0.0.1:{admin}"));
    let left = metric(&m, "rampart_ssl_certificate_expiry_seconds{domain=\"o.test\"}");
    assert!(left > 3600.0 && left <= 2.0 * 86_400.0, "{left}\n{m}");
}
