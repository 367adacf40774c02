//! TLS termination against real clients (curl, openssl s_client): certificates by SNI, h2 by ALPN, HSTS,
//! session resumption, OCSP stapling, HTTP→HTTPS redirects and certificate hot reload.
#![allow(clippy::unwrap_used)] // a test reports failure by panicking

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use rampart_tests::pki::{Leaf, Pki};
use rampart_tests::*;

struct Tls {
    plain: u16,
    tls: u16,
    pki: Pki,
    leaves: Vec<Leaf>,
    process: Process,
    _upstream: Process,
    _state: XdpState,
}

fn start(tag: &str) -> Tls {
    let state = XdpState::new(tag);
    let pki = Pki::new(&std::env::temp_dir().join(format!("rampart-pki-{tag}-{}", std::process::id())));
    let a = pki.leaf("a", &["a.test"]);
    let b = pki.leaf("b", &["b.test"]);
    let w = pki.leaf("wild", &["*.wild.test"]);
    let ocsp = pki.ocsp_response(&a, "a");
    let (upstream, up) = start_upstream();
    let (plain, tls, admin) = (free_port(), free_port(), free_port());
    let cert = |l: &Leaf, domains: &str, extra: &str| {
        format!(
            "    - {{domains: [{domains}], cert_file: {}, key_file: {}{extra}}}\n",
            l.cert.display(),
            l.key.display()
        )
    };
    let config = format!(
        "server:\n  host: 127.0.0.1\n  port: {plain}\n\
         ssl:\n  enabled: true\n  port: {tls}\n  security: {{hsts_max_age: 31536000, hsts_include_subdomains: true}}\n  certificates:\n{}{}{}\
         proxy:\n  upstreams:\n    - {{name: app, servers: [{{host: 127.0.0.1, port: {up}}}]}}\n  routes:\n\
         \x20   - {{pattern: /secure/*, upstream: app, ssl_redirect: true}}\n    - {{pattern: /*, upstream: app}}\n\
         admin:\n  port: {admin}\nwaf:\n  enabled: false\nxdp:\n  enabled: false\n{}",
        cert(&a, "a.test", &format!(", ocsp_response_file: {}", ocsp.display())),
        cert(&b, "b.test", ""),
        cert(&w, "\"*.wild.test\"", ""),
        state.yaml()
    );
    let path = temp_file(&format!("{tag}.yaml"), &config);
    let mut process = Process::start(tag, &rampart_bin(), &["run", "--config", path.to_str().unwrap()], &[]);
    wait_for_port(
        SocketAddr::from(([127, 0, 0, 1], admin)),
        Duration::from_secs(20),
        &mut process,
    );
    Tls {
        plain,
        tls,
        pki,
        leaves: vec![a, b, w],
        process,
        _upstream: upstream,
        _state: state,
    }
}

/// Runs `openssl s_client` for `name` and returns its output (input closed at once unless `stdin` is given).
fn s_client(port: u16, name: &str, extra: &[&str], ca: &Path) -> String {
    let connect = format!("127.0.0.1:{port}");
    let mut args = vec![
        "s_client",
        "-connect",
        &connect,
        "-servername",
        name,
        "-CAfile",
        ca.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let out = Command::new("openssl")
        .args(&args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

fn subject_cn(out: &str) -> String {
    out.lines()
        .find(|l| l.starts_with("subject="))
        .and_then(|l| l.rsplit("CN").next())
        .map(|s| s.trim_start_matches([' ', '=']).to_owned())
        .unwrap_or_default()
}

#[test]
fn each_sni_name_gets_its_certificate_and_h2_is_negotiated() {
    let t = start("tls-sni");
    for (name, cn) in [
        ("a.test", "a.test"),
        ("b.test", "b.test"),
        ("x.wild.test", "*.wild.test"),
        ("unknown.test", "a.test"),
    ] {
        let out = s_client(t.tls, name, &[], &t.pki.ca_cert);
        assert_eq!(subject_cn(&out), cn, "SNI {name}:\n{out}");
        if name != "unknown.test" {
            assert!(out.contains("Verify return code: 0 (ok)"), "{name}:\n{out}");
        }
    }
    let url = format!("https://b.test:{}/hello", t.tls);
    let resolve = format!("b.test:{}:127.0.0.1", t.tls);
    let out = run(
        "curl",
        &[
            "-sS",
            "-i",
            "--http2",
            "--cacert",
            t.pki.ca_cert.to_str().unwrap(),
            "--resolve",
            &resolve,
            "-w",
            "\nhttp_version=%{http_version}",
            &url,
        ],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("http_version=2"), "ALPN h2 expected:\n{text}");
    assert!(
        text.to_ascii_lowercase()
            .contains("strict-transport-security: max-age=31536000; includesubdomains"),
        "{text}"
    );
    assert!(text.contains("\"x_forwarded_proto\":\"https\""), "{text}");
}

#[test]
fn sessions_resume_and_ocsp_is_stapled() {
    let t = start("tls-resume");
    let out = s_client(t.tls, "b.test", &["-tls1_2", "-reconnect"], &t.pki.ca_cert);
    let reused = out.matches("Reused, TLSv1.2").count();
    assert!(reused >= 4, "TLS 1.2 sessions did not resume ({reused} reused):\n{out}");
    let sess = t.pki.dir.join("tls13.sess");
    // TLS 1.3 tickets arrive after the handshake: give s_client a moment to read them before it quits.
    let mut first = Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            &format!("127.0.0.1:{}", t.tls),
            "-servername",
            "b.test",
            "-tls1_3",
            "-sess_out",
            sess.to_str().unwrap(),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(800));
    drop(first.stdin.take());
    let _ = first.wait();
    let out = s_client(
        t.tls,
        "b.test",
        &["-tls1_3", "-sess_in", sess.to_str().unwrap()],
        &t.pki.ca_cert,
    );
    assert!(out.contains("Reused, TLSv1.3"), "TLS 1.3 ticket not accepted:\n{out}");

    let out = s_client(t.tls, "a.test", &["-status"], &t.pki.ca_cert);
    assert!(
        out.contains("OCSP Response Status: successful"),
        "no stapled OCSP response:\n{out}"
    );
    assert!(out.contains("Cert Status: good"), "{out}");
    let out = s_client(t.tls, "b.test", &["-status"], &t.pki.ca_cert);
    assert!(
        out.contains("OCSP response: no response sent"),
        "b.test has no OCSP file:\n{out}"
    );
}

#[test]
fn plain_http_on_a_secure_route_is_redirected_to_https() {
    let t = start("tls-redirect");
    let out = run(
        "curl",
        &[
            "-sS",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code} %{redirect_url}",
            "-H",
            "Host: a.test",
            &format!("http://127.0.0.1:{}/secure/page?x=1", t.plain),
        ],
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("301 https://a.test:{}/secure/page?x=1", t.tls)
    );
    let out = run(
        "curl",
        &[
            "-sS",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            &format!("http://127.0.0.1:{}/open", t.plain),
        ],
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "200",
        "other routes stay on plain HTTP"
    );
}

#[test]
fn a_replaced_certificate_is_served_to_new_connections_while_old_ones_keep_working() {
    let t = start("tls-reload");
    let serial = |out: &str| {
        out.lines()
            .find(|l| l.contains("serial"))
            .map(str::to_owned)
            .unwrap_or_default()
    };
    let _ = serial;
    // An old connection: TLS open, one request done, kept alive.
    let mut old = Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            &format!("127.0.0.1:{}", t.tls),
            "-servername",
            "b.test",
            "-quiet",
            "-CAfile",
            t.pki.ca_cert.to_str().unwrap(),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut old_in = old.stdin.take().unwrap();
    old_in
        .write_all(b"GET /before HTTP/1.1\r\nHost: b.test\r\n\r\n")
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let before = cert_serial(t.tls, "b.test", &t.pki.ca_cert);
    assert!(
        before.eq_ignore_ascii_case(&t.leaves[1].serial),
        "{before} vs {}",
        t.leaves[1].serial
    );

    // Reissue b.test into the same files; the daemon notices the change and reloads.
    let renewed = t.pki.leaf("b", &["b.test"]);
    assert_ne!(renewed.serial, t.leaves[1].serial);
    assert!(
        eventually(Duration::from_secs(10), || cert_serial(t.tls, "b.test", &t.pki.ca_cert)
            .eq_ignore_ascii_case(&renewed.serial)),
        "new connections did not get the new certificate:\n{}",
        t.process.log()
    );
    // The old connection still serves requests.
    old_in
        .write_all(b"GET /after HTTP/1.1\r\nHost: b.test\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut out = String::new();
    old.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    let _ = old.wait();
    assert!(
        out.contains("\"path\":\"/before\"") && out.contains("\"path\":\"/after\""),
        "old connection broke:\n{out}"
    );
}

fn cert_serial(port: u16, name: &str, ca: &Path) -> String {
    let out = s_client(port, name, &["-showcerts"], ca);
    let pem: String = out
        .split("-----BEGIN CERTIFICATE-----")
        .nth(1)
        .and_then(|r| r.split("-----END CERTIFICATE-----").next())
        .map(|b| format!("-----BEGIN CERTIFICATE-----{b}-----END CERTIFICATE-----\n"))
        .unwrap_or_default();
    let mut child = Command::new("openssl")
        .args(["x509", "-noout", "-serial"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(pem.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .trim_start_matches("serial=")
        .to_owned()
}
