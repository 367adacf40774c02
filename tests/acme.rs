//! Automatic certificates against a real ACME server (Debian's pebble, started per test on loopback with
//! real validation): issuance by http-01, tls-alpn-01 and dns-01 (wildcards), renewal of short-lived
//! certificates swapped in while old connections keep working, an ACME outage during renewal, and a restart
//! that reuses the stored account and certificate.
#![allow(clippy::unwrap_used)] // a test reports failure by panicking

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use rampart_tests::acme::Pebble;
use rampart_tests::*;

struct Setup<'a> {
    domains: &'a [&'a str],
    challenge: &'a str,
    key_type: &'a str,
    days_before_expiry: u32,
    extra_acme: String,
    extra_renewal: String,
    /// Lines under `ssl:` (for example `certificates:`).
    extra_ssl: String,
    waf: bool,
}

impl Default for Setup<'_> {
    fn default() -> Self {
        Self {
            domains: &["www.rampart.test"],
            challenge: "http-01",
            key_type: "ecdsa256",
            days_before_expiry: 30,
            extra_acme: String::new(),
            extra_renewal: String::new(),
            extra_ssl: String::new(),
            waf: false,
        }
    }
}

/// One Rampart with automatic certificates, its ports and its storage directory (removed on drop).
struct Rampart {
    admin: u16,
    dir: PathBuf,
    config: String,
    process: Option<Process>,
    _upstream: Process,
    _state: XdpState,
}

impl Rampart {
    fn new(tag: &str, plain: u16, tls: u16, pebble: &Pebble, setup: &Setup<'_>) -> Self {
        let state = XdpState::new(tag);
        let dir = std::env::temp_dir().join(format!("rampart-acme-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let (upstream, up) = start_upstream();
        let admin = free_port();
        let domains: Vec<String> = setup.domains.iter().map(|d| format!("\"{d}\"")).collect();
        let config = format!(
            "server:\n  host: 127.0.0.1\n  port: {plain}\n\
             ssl:\n  enabled: true\n  port: {tls}\n  auto_provision: true\n{extra_ssl}\
             \x20 acme:\n    directory_url: {url}\n    email: ops@rampart.test\n    domains: [{domains}]\n\
             \x20   challenge_type: {challenge}\n    key_type: {key_type}\n    ca_file: {ca}\n\
             \x20   dns_propagation_delay: 0\n    order_timeout: 30\n{extra_acme}\
             \x20 storage:\n    path: {store}\n\
             \x20 renewal:\n    days_before_expiry: {days}\n    check_interval: 1\n    retry_initial: 1\n    retry_max: 4\n{extra_renewal}\
             proxy:\n  upstreams:\n    - {{name: app, servers: [{{host: 127.0.0.1, port: {up}}}]}}\n\
             \x20 routes:\n    - {{pattern: /*, upstream: app, ssl_redirect: true}}\n\
             admin:\n  port: {admin}\nwaf:\n  enabled: {waf}\nxdp:\n  enabled: false\n{xdp}",
            url = pebble.directory_url,
            domains = domains.join(", "),
            challenge = setup.challenge,
            key_type = setup.key_type,
            ca = pebble.ca_file.display(),
            extra_acme = setup.extra_acme,
            store = dir.join("certs").display(),
            days = setup.days_before_expiry,
            extra_renewal = setup.extra_renewal,
            extra_ssl = setup.extra_ssl,
            waf = setup.waf,
            xdp = state.yaml(),
        );
        let mut me = Self {
            admin,
            dir,
            config,
            process: None,
            _upstream: upstream,
            _state: state,
        };
        me.start(tag);
        me
    }

    fn start(&mut self, name: &str) {
        self.process = Some(start_rampart(name, &self.config, self.admin));
    }

    fn stop(&mut self) {
        if let Some(mut p) = self.process.take() {
            assert!(p.terminate(Duration::from_secs(15)).is_some(), "rampart did not stop");
        }
    }

    fn log(&self) -> String {
        self.process.as_ref().map(Process::log).unwrap_or_default()
    }

    fn admin_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.admin)
    }

    fn certificates(&self) -> serde_json::Value {
        json(&curl(
            None,
            "GET",
            &format!("{}/admin/ssl/certificates", self.admin_url()),
            None,
            5,
        ))
    }

    fn health(&self) -> serde_json::Value {
        json(&curl(None, "GET", &format!("{}/health", self.admin_url()), None, 5))
    }

    /// The serial of the ACME certificate in service, once there is one other than `not`.
    fn wait_for_acme_serial(&self, not: Option<&str>, timeout: Duration) -> String {
        let mut serial = String::new();
        let found = eventually(timeout, || {
            let v = self.certificates();
            serial = v["certificates"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|c| c["source"] == "acme")
                .and_then(|c| c["serial"].as_str())
                .unwrap_or_default()
                .to_owned();
            !serial.is_empty() && Some(serial.as_str()) != not
        });
        assert!(
            found,
            "no (new) ACME certificate within {timeout:?}:\n{}\n{}",
            self.certificates(),
            self.log()
        );
        serial
    }
}

impl Drop for Rampart {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `openssl s_client` output for a handshake with `name` (input closed at once).
fn s_client(port: u16, name: &str, extra: &[&str]) -> String {
    let connect = format!("127.0.0.1:{port}");
    let mut args = vec!["s_client", "-connect", &connect, "-servername", name, "-showcerts"];
    args.extend_from_slice(extra);
    let out = Command::new("openssl")
        .args(&args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

/// `openssl x509 ARGS` over the first certificate the server sends for `name`.
fn leaf(port: u16, name: &str, args: &[&str]) -> String {
    let out = s_client(port, name, &[]);
    let pem: String = out
        .split("-----BEGIN CERTIFICATE-----")
        .nth(1)
        .and_then(|r| r.split("-----END CERTIFICATE-----").next())
        .map(|b| format!("-----BEGIN CERTIFICATE-----{b}-----END CERTIFICATE-----\n"))
        .unwrap_or_default();
    let mut child = Command::new("openssl")
        .arg("x509")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(pem.as_bytes()).unwrap();
    String::from_utf8_lossy(&child.wait_with_output().unwrap().stdout).into_owned()
}

fn served_serial(port: u16, name: &str) -> String {
    leaf(port, name, &["-noout", "-serial"])
        .trim()
        .trim_start_matches("serial=")
        .to_owned()
}

/// Whether the chain served for `name` verifies up to pebble's current root.
fn verifies(port: u16, name: &str, root: &Path) -> bool {
    s_client(
        port,
        name,
        &["-CAfile", root.to_str().unwrap(), "-verify_hostname", name],
    )
    .contains("Verify return code: 0 (ok)")
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o777
}

#[test]
fn a_san_certificate_is_issued_by_http01_on_the_plain_listener_before_any_redirect() {
    let (plain, tls) = (free_port(), free_port());
    let pebble = Pebble::start("http01", plain, tls, None);
    let setup = Setup {
        domains: &["www.rampart.test", "api.rampart.test"],
        key_type: "rsa2048",
        waf: true,
        ..Setup::default()
    };
    // The only route redirects plain HTTP to HTTPS, and the WAF blocks: validation works only if challenges
    // come first, and the WAF never sees them.
    let r = Rampart::new("acme-http01", plain, tls, &pebble, &setup);
    let serial = r.wait_for_acme_serial(None, Duration::from_secs(60));
    let waf_seen = |r: &Rampart| {
        let m = scrape(&r.admin_url());
        assert!(m.contains("rampart_waf_requests_total{action=\"allowed\"}"), "{m}");
        ["allowed", "blocked", "challenged", "logged"]
            .iter()
            .map(|a| metric(&m, &format!("rampart_waf_requests_total{{action=\"{a}\"}}")))
            .sum::<f64>()
    };
    assert!(
        pebble.log().contains("/.well-known/acme-challenge/"),
        "pebble validated over HTTP: {}",
        pebble.log()
    );
    assert_eq!(waf_seen(&r), 0.0, "the WAF inspected the validation requests");
    let root = pebble.root_pem();
    for name in ["www.rampart.test", "api.rampart.test"] {
        assert!(
            verifies(tls, name, &root),
            "{name} does not verify:\n{}",
            s_client(tls, name, &[])
        );
        assert!(served_serial(tls, name).eq_ignore_ascii_case(&serial));
    }
    let text = leaf(tls, "www.rampart.test", &["-noout", "-text"]);
    assert!(
        text.contains("Public-Key: (2048 bit)") && text.contains("rsaEncryption"),
        "{text}"
    );
    assert!(
        text.contains("DNS:www.rampart.test") && text.contains("DNS:api.rampart.test"),
        "{text}"
    );
    assert!(r.log().contains("ACME challenge answer in place"), "{}", r.log());

    // Through the proxy with the issued certificate; plain HTTP is still redirected.
    let resolve = format!("www.rampart.test:{tls}:127.0.0.1");
    let out = run(
        "curl",
        &[
            "-sS",
            "--cacert",
            root.to_str().unwrap(),
            "--resolve",
            &resolve,
            "-w",
            "\n%{http_code}",
            &format!("https://www.rampart.test:{tls}/hello"),
        ],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.ends_with("\n200") && text.contains("\"path\":\"/hello\""),
        "{text} {out:?}"
    );
    assert_eq!(waf_seen(&r), 1.0, "the WAF inspects ordinary requests");
    let plain_reply = curl(None, "GET", &format!("http://127.0.0.1:{plain}/hello"), None, 5);
    assert_eq!(plain_reply.status, 301, "{plain_reply:?}");

    // Secrets on disk are the owner's only.
    let store = r.dir.join("certs");
    let account = std::fs::read_dir(&store)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with("acme-account-"))
        .expect("account credentials stored");
    assert_eq!(mode(&account), 0o600);
    assert_eq!(mode(&store.join("www.rampart.test/privkey.pem")), 0o600);
    assert_eq!(mode(&store), 0o700);
    assert!(
        !r.log().contains(&std::fs::read_to_string(&account).unwrap()[..40]),
        "credentials never reach the log"
    );

    // Expiry metric, admin listing and the CLI.
    let metrics = scrape(&r.admin_url());
    let left = metric(
        &metrics,
        "rampart_ssl_certificate_expiry_seconds{domain=\"api.rampart.test\"}",
    );
    assert!(
        left > 86_400.0 * 300.0,
        "pebble's default lifetime is years: {left}\n{metrics}"
    );
    let out = run(
        rampart_bin().to_str().unwrap(),
        &["ssl", "status", "--admin", &r.admin_url()],
    );
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(
        table.contains("acme") && table.contains("www.rampart.test, api.rampart.test"),
        "{table}"
    );
    assert!(table.contains(&serial), "{table}");
    assert_eq!(r.health()["components"]["acme"]["status"], "healthy", "{}", r.health());
}

#[test]
fn a_certificate_is_issued_by_tls_alpn01_on_the_tls_listener() {
    let (plain, tls) = (free_port(), free_port());
    // Pebble's http-01 port leads nowhere: only the TLS listener can answer.
    let pebble = Pebble::start("alpn", free_port(), tls, None);
    let setup = Setup {
        challenge: "tls-alpn-01",
        key_type: "ecdsa384",
        ..Setup::default()
    };
    let r = Rampart::new("acme-alpn", plain, tls, &pebble, &setup);
    let serial = r.wait_for_acme_serial(None, Duration::from_secs(60));
    let root = pebble.root_pem();
    assert!(verifies(tls, "www.rampart.test", &root));
    assert!(served_serial(tls, "www.rampart.test").eq_ignore_ascii_case(&serial));
    let text = leaf(tls, "www.rampart.test", &["-noout", "-text"]);
    assert!(text.contains("Public-Key: (384 bit)"), "{text}");
    assert!(r.log().contains("TlsAlpn01"), "{}", r.log());
    // Outside an order, acme-tls/1 gets no certificate at all.
    let out = s_client(tls, "www.rampart.test", &["-alpn", "acme-tls/1"]);
    assert!(!out.contains("BEGIN CERTIFICATE"), "{out}");
}

#[test]
fn wildcard_names_are_validated_through_the_dns_hook() {
    let (plain, tls) = (free_port(), free_port());
    let pebble = Pebble::start("dns01", plain, tls, None);
    let hook = pebble.dns_hook();
    let setup = Setup {
        domains: &["*.wild.rampart.test", "wild.rampart.test"],
        key_type: "rsa4096",
        extra_acme: format!("    dns_hook: {}\n", hook.display()),
        ..Setup::default()
    };
    let r = Rampart::new("acme-dns01", plain, tls, &pebble, &setup);
    r.wait_for_acme_serial(None, Duration::from_secs(90));
    let root = pebble.root_pem();
    assert!(verifies(tls, "x.wild.rampart.test", &root));
    assert!(verifies(tls, "wild.rampart.test", &root));
    let text = leaf(tls, "x.wild.rampart.test", &["-noout", "-text"]);
    assert!(
        text.contains("DNS:*.wild.rampart.test") && text.contains("Public-Key: (4096 bit)"),
        "{text}"
    );
    let calls = std::fs::read_to_string(pebble.dir.join("dns-hook.calls")).unwrap_or_default();
    assert!(
        calls.contains("set _acme-challenge.wild.rampart.test")
            && calls.contains("clear _acme-challenge.wild.rampart.test"),
        "the hook set and cleared the record: {calls}"
    );
    // The wildcard went through DNS; the plain name used the configured http-01.
    assert!(r.log().contains("Dns01") && r.log().contains("Http01"), "{}", r.log());
}

#[test]
fn a_short_lived_certificate_is_renewed_and_new_connections_get_it_while_an_old_one_keeps_working() {
    let (plain, tls) = (free_port(), free_port());
    // 20-second certificates: renewal is due half-way, since days_before_expiry is far longer.
    let pebble = Pebble::start("renew", plain, tls, Some(20));
    let dir = std::env::temp_dir().join(format!("rampart-acme-renew-script-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let marker = dir.join("renewed");
    let script = dir.join("post-renewal.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho \"$RAMPART_CERT_DOMAINS $RAMPART_CERT_FILE $RAMPART_CERT_SERIAL\" >> {}\nexit 3\n",
            marker.display()
        ),
    )
    .unwrap();
    must("chmod", &["755", script.to_str().unwrap()]);
    let setup = Setup {
        extra_renewal: format!(
            "    post_renewal_script: {}\n    post_renewal_timeout: 5\n",
            script.display()
        ),
        ..Setup::default()
    };
    let r = Rampart::new("acme-renew", plain, tls, &pebble, &setup);
    let first = r.wait_for_acme_serial(None, Duration::from_secs(60));
    assert!(served_serial(tls, "www.rampart.test").eq_ignore_ascii_case(&first));

    // An old connection: TLS open with the first certificate, one request done, kept alive.
    let mut old = Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            &format!("127.0.0.1:{tls}"),
            "-servername",
            "www.rampart.test",
            "-quiet",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut old_in = old.stdin.take().unwrap();
    old_in
        .write_all(b"GET /before HTTP/1.1\r\nHost: www.rampart.test\r\n\r\n")
        .unwrap();

    let second = r.wait_for_acme_serial(Some(&first), Duration::from_secs(40));
    assert!(
        eventually(Duration::from_secs(5), || served_serial(tls, "www.rampart.test")
            .eq_ignore_ascii_case(&second)),
        "a new connection does not get the renewed certificate"
    );
    old_in
        .write_all(b"GET /after HTTP/1.1\r\nHost: www.rampart.test\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut out = String::new();
    old.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    let _ = old.wait();
    assert!(
        out.contains("\"path\":\"/before\"") && out.contains("\"path\":\"/after\""),
        "the old connection broke:\n{out}"
    );

    // The replaced certificate was backed up; the post-renewal script ran, and its failure was only logged.
    let backups = r.dir.join("certs/backup/www.rampart.test");
    let kept: Vec<String> = std::fs::read_dir(&backups)
        .unwrap_or_else(|e| panic!("{}: {e}", backups.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        kept.iter().any(|k| k.ends_with(&format!("-{first}"))),
        "{kept:?} lacks {first}"
    );
    assert!(
        eventually(Duration::from_secs(10), || std::fs::read_to_string(&marker)
            .is_ok_and(|m| m.contains(&second))),
        "post-renewal script did not run for {second}"
    );
    let m = std::fs::read_to_string(&marker).unwrap();
    assert!(m.contains("www.rampart.test ") && m.contains("fullchain.pem"), "{m}");
    assert!(r.log().contains("post-renewal script failed"), "{}", r.log());
    assert!(r.log().contains("new certificate installed"), "{}", r.log());
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn when_the_acme_server_is_down_the_current_certificate_stays_and_health_says_degraded_until_it_returns() {
    let (plain, tls) = (free_port(), free_port());
    let mut pebble = Pebble::start("down", plain, tls, None);
    let r = Rampart::new("acme-down", plain, tls, &pebble, &Setup::default());
    let first = r.wait_for_acme_serial(None, Duration::from_secs(60));
    assert_eq!(r.health()["status"], "healthy", "{}", r.health());

    pebble.stop();
    let renew = curl(
        None,
        "POST",
        &format!("{}/admin/ssl/certificates/www.rampart.test/renew", r.admin_url()),
        None,
        5,
    );
    assert_eq!(renew.status, 202, "{renew:?}");
    assert!(
        eventually(Duration::from_secs(20), || {
            let h = r.health();
            h["status"] == "degraded" && h["degraded"].as_array().is_some_and(|d| d.iter().any(|x| x == "acme"))
        }),
        "health does not report degraded: acme: {}",
        r.health()
    );
    // Retries keep failing with growing waits, and the current certificate stays in service.
    assert!(
        eventually(Duration::from_secs(20), || r
            .log()
            .matches("retrying with backoff")
            .count()
            >= 3),
        "{}",
        r.log()
    );
    assert!(served_serial(tls, "www.rampart.test").eq_ignore_ascii_case(&first));
    // The waits grow: retry_initial 1 s doubling up to retry_max 4 s, each jittered within [half, full].
    let waits: Vec<u64> = r
        .log()
        .lines()
        .filter(|l| l.contains("retrying with backoff"))
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["retry_in_seconds"].as_u64())
        .collect();
    assert!(
        waits.len() >= 3 && waits[0] <= 1 && (1..=2).contains(&waits[1]) && (2..=4).contains(&waits[2]),
        "backoff waits {waits:?}"
    );
    let status = r.certificates();
    assert!(
        status["acme"]["renewal"]["consecutive_failures"].as_u64().unwrap_or(0) >= 3,
        "{status}"
    );
    assert!(
        status["acme"]["renewal"]["last_error"]
            .as_str()
            .unwrap_or("")
            .contains("Connection refused"),
        "{status}"
    );
    assert!(
        r.health()["components"]["acme"]["reason"]
            .as_str()
            .is_some_and(|s| s.contains("failed attempt"))
    );

    // The server returns (a fresh pebble that has forgotten the account): the next retry recovers.
    pebble.restart();
    let second = r.wait_for_acme_serial(Some(&first), Duration::from_secs(30));
    assert!(
        eventually(Duration::from_secs(5), || r.health()["status"] == "healthy"),
        "{}",
        r.health()
    );
    assert!(served_serial(tls, "www.rampart.test").eq_ignore_ascii_case(&second));
    assert!(r.log().contains("does not know the stored account"), "{}", r.log());
    assert!(verifies(tls, "www.rampart.test", &pebble.root_pem()));
}

#[test]
fn a_restart_reuses_the_stored_account_and_certificate_without_a_new_order() {
    let (plain, tls) = (free_port(), free_port());
    let pebble = Pebble::start("restart", plain, tls, None);
    let mut r = Rampart::new("acme-restart", plain, tls, &pebble, &Setup::default());
    let first = r.wait_for_acme_serial(None, Duration::from_secs(60));
    assert_eq!(pebble.orders(), 1, "{}", pebble.log());
    let text = leaf(tls, "www.rampart.test", &["-noout", "-text"]);
    assert!(
        text.contains("id-ecPublicKey") && text.contains("Public-Key: (256 bit)") && text.contains("P-256"),
        "ecdsa256: {text}"
    );
    let store = r.dir.join("certs");
    let account_files = || -> Vec<(PathBuf, Vec<u8>)> {
        let mut v: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(&store)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("acme-account-"))
            .map(|p| (p.clone(), std::fs::read(&p).unwrap()))
            .collect();
        v.sort();
        v
    };
    let accounts = account_files();
    assert_eq!(accounts.len(), 1);

    r.stop();
    r.start("acme-restart-2");
    assert!(
        eventually(Duration::from_secs(10), || r
            .log()
            .contains("serving the stored certificate")),
        "{}",
        r.log()
    );
    assert!(served_serial(tls, "www.rampart.test").eq_ignore_ascii_case(&first));
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        pebble.orders(),
        1,
        "a restart with a valid stored certificate placed an order"
    );
    assert!(!r.log().contains("ACME order placed"), "{}", r.log());

    // Only an ACME domain can be renewed through the API.
    let other = curl(
        None,
        "POST",
        &format!("{}/admin/ssl/certificates/other.rampart.test/renew", r.admin_url()),
        None,
        5,
    );
    assert_eq!(other.status, 404, "{other:?}");

    // A forced renewal now uses the stored account: no new account, the same credentials file.
    let out = run(
        rampart_bin().to_str().unwrap(),
        &["ssl", "renew", "www.rampart.test", "--admin", &r.admin_url()],
    );
    assert!(out.status.success(), "{out:?}");
    let second = r.wait_for_acme_serial(Some(&first), Duration::from_secs(30));
    assert!(served_serial(tls, "www.rampart.test").eq_ignore_ascii_case(&second));
    assert!(r.log().contains("using the stored ACME account"), "{}", r.log());
    assert_eq!(pebble.orders(), 2);
    assert_eq!(
        pebble.log().matches("There are now 1 accounts in memory").count(),
        1,
        "{}",
        pebble.log()
    );
    assert!(!pebble.log().contains("There are now 2 accounts"), "{}", pebble.log());
    assert_eq!(account_files(), accounts, "the account credentials were not replaced");
}

#[test]
fn a_self_signed_fallback_is_served_loudly_only_while_no_certificate_exists_at_all() {
    const LOUD: &str = "NO CERTIFICATE EXISTS: serving a SELF-SIGNED FALLBACK";
    let (plain, tls) = (free_port(), free_port());
    let mut pebble = Pebble::start("fallback", plain, tls, None);
    // The CA is down from the start, nothing is stored and no certificate file is configured.
    pebble.stop();
    let mut r = Rampart::new("acme-fallback", plain, tls, &pebble, &Setup::default());
    assert!(
        eventually(Duration::from_secs(10), || r.log().contains(LOUD)),
        "{}",
        r.log()
    );
    let line = r.log().lines().find(|l| l.contains(LOUD)).unwrap().to_owned();
    assert!(line.contains("\"level\":\"ERROR\""), "{line}");
    let issuer = leaf(tls, "www.rampart.test", &["-noout", "-subject", "-issuer"]);
    assert!(
        issuer.matches("Rampart self-signed fallback").count() == 2,
        "the handshake gets the fallback: {issuer}"
    );
    let listing = r.certificates();
    assert_eq!(
        listing["certificates"][0]["source"], "self-signed-fallback",
        "{listing}"
    );
    assert_eq!(listing["acme"]["renewal"]["serving_fallback"], true, "{listing}");
    let h = r.health();
    assert!(
        h["status"] == "degraded" && h["degraded"].as_array().is_some_and(|d| d.iter().any(|x| x == "acme")),
        "{h}"
    );

    // The CA comes back: the issued certificate replaces the fallback, which is never stored.
    pebble.restart();
    let serial = r.wait_for_acme_serial(None, Duration::from_secs(30));
    assert!(verifies(tls, "www.rampart.test", &pebble.root_pem()));
    let listing = r.certificates();
    assert!(
        listing["certificates"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["source"] == "acme"),
        "{listing}"
    );
    assert!(
        eventually(Duration::from_secs(5), || r.health()["status"] == "healthy"),
        "{}",
        r.health()
    );
    let stored = std::fs::read_to_string(r.dir.join("certs/www.rampart.test/fullchain.pem")).unwrap();
    assert!(!stored.is_empty());

    // A restart while the CA is down again: the stored certificate is served, and there is no fallback.
    r.stop();
    pebble.stop();
    r.start("acme-fallback-2");
    assert!(
        eventually(Duration::from_secs(10), || r
            .log()
            .contains("serving the stored certificate")),
        "{}",
        r.log()
    );
    assert!(served_serial(tls, "www.rampart.test").eq_ignore_ascii_case(&serial));
    assert!(!r.log().contains(LOUD), "{}", r.log());
    assert_eq!(r.health()["status"], "healthy", "{}", r.health());

    // A certificate file configured beside ACME also counts: while the CA is down it is served, no fallback.
    let pki = rampart_tests::pki::Pki::new(&r.dir.join("pki"));
    let file = pki.leaf("files", &["files.rampart.test"]);
    let setup = Setup {
        domains: &["other.rampart.test"],
        extra_ssl: format!(
            "  certificates:\n    - {{domains: [files.rampart.test], cert_file: {}, key_file: {}}}\n",
            file.cert.display(),
            file.key.display()
        ),
        ..Setup::default()
    };
    let (plain2, tls2) = (free_port(), free_port());
    let with_file = Rampart::new("acme-fallback-file", plain2, tls2, &pebble, &setup);
    assert!(
        eventually(Duration::from_secs(10), || with_file
            .log()
            .contains("certificate request failed")),
        "{}",
        with_file.log()
    );
    assert!(!with_file.log().contains(LOUD), "{}", with_file.log());
    assert!(
        served_serial(tls2, "other.rampart.test").eq_ignore_ascii_case(&file.serial),
        "the file certificate stands in"
    );
    let listing = with_file.certificates();
    assert!(
        listing["certificates"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["source"] == "file"),
        "{listing}"
    );
}

/// The README's ACME example, as written there, issues a certificate: only the directory (and the trust for
/// it), the ports, the storage path and the upstream port are overridden, through `RAMPART_` variables.
#[test]
fn the_readme_acme_example_works_as_written() {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md")).unwrap();
    let section = &readme[readme
        .find("## Automatic certificates (ACME)")
        .expect("the README's ACME section")..];
    let start = section.find("```yaml\n").expect("a YAML block") + "```yaml\n".len();
    let example = &section[start..start + section[start..].find("```").unwrap()];
    assert!(
        example.contains("auto_provision: true") && example.contains("directory_url:"),
        "{example}"
    );

    let (plain, tls, admin) = (free_port(), free_port(), free_port());
    let pebble = Pebble::start("readme", plain, tls, None);
    let state = XdpState::new("acme-readme");
    let (_upstream, up) = start_upstream();
    let dir = std::env::temp_dir().join(format!("rampart-acme-readme-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("readme.yaml");
    std::fs::write(&config, example).unwrap();
    let s = |v: &dyn std::fmt::Display| v.to_string();
    let env = [
        ("RAMPART_SERVER__HOST", s(&"127.0.0.1")),
        ("RAMPART_SERVER__PORT", s(&plain)),
        ("RAMPART_SSL__PORT", s(&tls)),
        ("RAMPART_SSL__ACME__DIRECTORY_URL", pebble.directory_url.clone()),
        ("RAMPART_SSL__ACME__CA_FILE", s(&pebble.ca_file.display())),
        ("RAMPART_SSL__STORAGE__PATH", s(&dir.join("certs").display())),
        ("RAMPART_PROXY__UPSTREAMS__0__SERVERS__0__PORT", s(&up)),
        ("RAMPART_ADMIN__PORT", s(&admin)),
        ("RAMPART_XDP__ENABLED", s(&"false")),
        ("RAMPART_XDP__PIN_PATH", s(&state.pin_dir.display())),
        ("RAMPART_XDP__RECORD_FILE", s(&state.record.display())),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut rampart = Process::start(
        "acme-readme",
        &rampart_bin(),
        &["run", "--config", config.to_str().unwrap()],
        &env,
    );
    wait_for_port(
        std::net::SocketAddr::from(([127, 0, 0, 1], admin)),
        Duration::from_secs(30),
        &mut rampart,
    );
    let listing = || {
        json(&curl(
            None,
            "GET",
            &format!("http://127.0.0.1:{admin}/admin/ssl/certificates"),
            None,
            5,
        ))
    };
    assert!(
        eventually(Duration::from_secs(60), || listing()["certificates"]
            .as_array()
            .is_some_and(|c| c.iter().any(|c| c["source"] == "acme"))),
        "{}\n{}",
        listing(),
        rampart.log()
    );
    let root = pebble.root_pem();
    for name in ["example.com", "www.example.com"] {
        assert!(verifies(tls, name, &root), "{name}:\n{}", s_client(tls, name, &[]));
    }
    let text = leaf(tls, "example.com", &["-noout", "-text"]);
    assert!(text.contains("Public-Key: (256 bit)"), "{text}");
    let plain_reply = curl(None, "GET", &format!("http://127.0.0.1:{plain}/"), None, 5);
    assert_eq!(plain_reply.status, 301, "{plain_reply:?}");
    drop(rampart);
    let _ = std::fs::remove_dir_all(&dir);
}
