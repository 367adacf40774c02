//! Bot detection and challenges through a real Rampart on loopback (XDP off): tools are blocked by their
//! signatures, a client that looks like a browser but lacks what browsers send is challenged, a forged or
//! wrong answer is refused and counted as an offence, a correct one earns a clearance cookie bound to the
//! client, and headless Chromium (Debian's) solves the JavaScript proof of work by itself and reaches the
//! upstream while curl cannot. A second daemon uses a CAPTCHA provider instead: a real HTTP siteverify
//! server on loopback, in this test, that accepts one token.
#![allow(clippy::unwrap_used)] // a test reports failure by panicking

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rampart::policy::challenge::pow;
use rampart_tests::http1::{Client, Response};
use rampart_tests::*;

/// What a script dressed as Chrome sends: the visible headers, not the client hints or fetch metadata.
const CHROME_UA: &str =
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";

fn browserish<'a>(ip: &'a str, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut h = vec![
        ("x-forwarded-for", ip),
        ("user-agent", CHROME_UA),
        (
            "accept",
            "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
        ),
        ("accept-language", "en-US,en;q=0.9"),
        ("accept-encoding", "gzip, deflate, br"),
    ];
    h.extend_from_slice(extra);
    h
}

fn config(proxy_port: u16, admin_port: u16, upstream_port: u16, state: &XdpState, bot_yaml: &str) -> String {
    format!(
        "server:\n  host: 127.0.0.1\n  port: {proxy_port}\n  trusted_proxies: [127.0.0.1/32]\n\
         proxy:\n  upstreams:\n    - name: app\n      servers:\n        - {{host: 127.0.0.1, port: {upstream_port}}}\n\
         admin:\n  port: {admin_port}\n\
         logging:\n  format: json\n\
         waf:\n  enabled: true\n  auto_ban:\n    enabled: true\n    threshold: 5\n    challenge_failure_weight: 2\n\
         \x20 bot_protection:\n    enabled: true\n{bot_yaml}\
         xdp:\n  enabled: false\n{}",
        state.yaml()
    )
}

/// The hidden field `name` of a challenge page.
fn field(page: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = page.find(&marker).unwrap_or_else(|| panic!("no {name} in {page}")) + marker.len();
    page[start..].split('"').next().unwrap().replace("&amp;", "&")
}

fn solve(nonce: &str, difficulty: u8) -> String {
    (0u64..10_000_000)
        .map(|i| i.to_string())
        .find(|s| pow::solved(nonce, s, difficulty))
        .unwrap()
}

fn post_form(c: &mut Client, headers: &[(&str, &str)], form: &str) -> Response {
    let mut h = headers.to_vec();
    h.push(("content-type", "application/x-www-form-urlencoded"));
    let r = c.request("POST", "/.rampart/challenge", &h, form.as_bytes()).unwrap();
    if r.header("connection").is_some_and(|v| v.eq_ignore_ascii_case("close")) {
        c.reconnect().unwrap();
    }
    r
}

fn text(r: &Response) -> String {
    String::from_utf8_lossy(&r.body).into_owned()
}

#[test]
fn tools_are_blocked_suspects_challenged_and_a_browser_passes() {
    let (_upstream, upstream_port) = start_upstream();
    let (proxy_port, admin_port) = (free_port(), free_port());
    let state = XdpState::new(&format!("bots{proxy_port}"));
    let bot = "    challenge:\n      difficulty: 12\n";
    let mut rampart = start_rampart(
        &format!("rampart-bots-{proxy_port}"),
        &config(proxy_port, admin_port, upstream_port, &state, bot),
        admin_port,
    );
    let proxy = SocketAddr::from(([127, 0, 0, 1], proxy_port));
    wait_for_port(proxy, Duration::from_secs(20), &mut rampart);
    let admin = format!("http://127.0.0.1:{admin_port}");
    let mut c = Client::connect(proxy).unwrap();

    // A real curl process: blocked by its signature, before any upstream sees it.
    let r = curl(None, "GET", &format!("http://127.0.0.1:{proxy_port}/page"), None, 5);
    assert_eq!(r.status, 403, "{r:?}");
    assert!(r.body.contains("automated clients"), "{r:?}");
    assert!(
        rampart
            .log()
            .lines()
            .any(|l| l.contains("\"attack_type\":\"bot\"") && l.contains("http_library")),
        "no bot event naming the signature"
    );

    // Browser-like, but no client hints or fetch metadata: the challenge page.
    let suspect = browserish("198.51.100.7", &[]);
    let page = c.get("/page?item=42", &suspect).unwrap();
    assert_eq!(page.status, 403);
    let html = text(&page);
    assert!(html.contains("rampart-challenge"), "{html}");
    assert!(page.header("content-security-policy").unwrap().contains("'nonce-"));
    assert_eq!(page.header("cache-control"), Some("no-store, private"));
    let nonce = field(&html, "nonce");
    assert_eq!(field(&html, "return_to"), "/page?item=42");

    // A wrong solution and a forged nonce are refused, and are offences: three of them ban the client.
    let wrong = post_form(&mut c, &suspect, &format!("nonce={nonce}&solution=1&return_to=/page"));
    assert_eq!(wrong.status, 403, "{}", text(&wrong));
    assert!(text(&wrong).contains("challenge failed"));
    let forged_nonce = nonce.replacen(".12.", ".1.", 1);
    let forged = post_form(
        &mut c,
        &suspect,
        &format!(
            "nonce={forged_nonce}&solution={}&return_to=/page",
            solve(&forged_nonce, 1)
        ),
    );
    assert_eq!(forged.status, 403, "{}", text(&forged));
    let other_client = browserish("198.51.100.8", &[]);
    let stolen = post_form(
        &mut c,
        &other_client,
        &format!("nonce={nonce}&solution={}&return_to=/page", solve(&nonce, 12)),
    );
    assert_eq!(stolen.status, 403, "a nonce is bound to the client it was issued to");
    post_form(&mut c, &suspect, &format!("nonce={nonce}&solution=2&return_to=/page"));
    assert!(
        eventually(Duration::from_secs(5), || {
            curl(None, "GET", &format!("{admin}/admin/waf/blocked-ips"), None, 5)
                .body
                .contains("198.51.100.7")
        }),
        "three failed answers (weight 2, threshold 5) should have banned the client"
    );

    // A client that does the work gets the cookie and is sent back; with it, the upstream answers and no
    // challenge follows. An open redirect is not on offer.
    let solver = browserish("198.51.100.20", &[]);
    let page = c.get("/page?item=42", &solver).unwrap();
    let nonce = field(&text(&page), "nonce");
    let pass = post_form(
        &mut c,
        &solver,
        &format!(
            "nonce={nonce}&solution={}&return_to=%2Fpage%3Fitem%3D42",
            solve(&nonce, 12)
        ),
    );
    assert_eq!(pass.status, 303, "{}", text(&pass));
    assert_eq!(pass.header("location"), Some("/page?item=42"));
    let set_cookie = pass.header("set-cookie").unwrap().to_owned();
    assert!(
        set_cookie.contains("HttpOnly") && set_cookie.contains("Max-Age=3600"),
        "{set_cookie}"
    );
    let cookie = set_cookie.split(';').next().unwrap().to_owned();
    let cleared = browserish("198.51.100.20", &[("cookie", &cookie)]);
    let through = c.get("/page?item=42", &cleared).unwrap();
    assert_eq!(through.status, 200, "{}", text(&through));
    assert!(
        text(&through).contains("\"path\":\"/page?item=42\""),
        "{}",
        text(&through)
    );
    // The cookie is bound to its client: from another address it is worthless.
    let elsewhere = browserish("198.51.100.21", &[("cookie", &cookie)]);
    assert_eq!(c.get("/page", &elsewhere).unwrap().status, 403);
    let page = c.get("/x", &solver).unwrap();
    let nonce = field(&text(&page), "nonce");
    let redirect = post_form(
        &mut c,
        &solver,
        &format!(
            "nonce={nonce}&solution={}&return_to=https://evil.example/",
            solve(&nonce, 12)
        ),
    );
    assert_eq!(redirect.header("location"), Some("/"));

    // Headless Chromium: challenged (its user agent says headless), runs the page's script, posts the
    // answer, follows the redirect with the cookie, and shows the upstream's answer.
    let profile = std::env::temp_dir().join(format!("rampart-chromium-{proxy_port}"));
    let out = run(
        "timeout",
        &[
            "90",
            "chromium",
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            &format!("--user-data-dir={}", profile.display()),
            "--virtual-time-budget=30000",
            "--dump-dom",
            &format!("http://127.0.0.1:{proxy_port}/browse?from=chromium"),
        ],
    );
    let _ = std::fs::remove_dir_all(&profile);
    let dom = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        dom.contains("/browse") && dom.contains("chromium") && !dom.contains("rampart-challenge"),
        "chromium did not get through: {dom}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let log = rampart.log();
    assert!(log.contains("HeadlessChrome"), "chromium was not challenged first");
    assert!(
        log.contains("security_challenge_passed"),
        "no passed challenge in the log"
    );

    // curl cannot run the script: it gets the page, never the upstream.
    let r = run(
        "curl",
        &[
            "-sS",
            "-m",
            "5",
            "-A",
            CHROME_UA,
            "-H",
            "Accept-Language: en",
            "-H",
            "Accept-Encoding: gzip",
            "-H",
            "Accept: text/html",
            "-w",
            "\n%{http_code}",
            &format!("http://127.0.0.1:{proxy_port}/browse"),
        ],
    );
    let body = String::from_utf8_lossy(&r.stdout).into_owned();
    assert!(body.ends_with("403") && body.contains("rampart-challenge"), "{body}");

    let metrics = scrape(&admin);
    assert!(
        metric(&metrics, "rampart_bot_challenges_total{result=\"passed\"}") >= 3.0,
        "{metrics}"
    );
    assert!(metric(&metrics, "rampart_bot_challenges_total{result=\"failed\"}") >= 4.0);
    assert!(metric(&metrics, "rampart_bot_requests_total{verdict=\"blocked\"}") >= 1.0);
    assert!(metric(&metrics, "rampart_bot_requests_total{verdict=\"challenged\"}") >= 4.0);
}

/// A siteverify endpoint: `success` only for token `good-token` with secret `s3cret`; counts its checks.
fn start_siteverify() -> (u16, Arc<AtomicU64>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let checks = Arc::new(AtomicU64::new(0));
    let counter = checks.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(50) {
            let Ok(mut stream) = stream else { continue };
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut length = 0usize;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length.min(65536)];
            let _ = reader.read_exact(&mut body);
            let body = String::from_utf8_lossy(&body);
            counter.fetch_add(1, Ordering::SeqCst);
            let ok =
                body.contains("secret=s3cret") && body.contains("response=good-token") && body.contains("remoteip=");
            let answer = format!("{{\"success\": {ok}}}");
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
                answer.len()
            );
        }
    });
    (port, checks)
}

#[test]
fn a_captcha_provider_decides_when_the_proof_of_work_is_off() {
    let (_upstream, upstream_port) = start_upstream();
    let (verify_port, checks) = start_siteverify();
    let (proxy_port, admin_port) = (free_port(), free_port());
    let state = XdpState::new(&format!("captcha{proxy_port}"));
    let bot = format!(
        "    javascript_challenge: false\n    challenge:\n      captcha:\n        site_key: site-123\n        \
         secret: s3cret\n        verify_url: http://127.0.0.1:{verify_port}/siteverify\n        \
         script_url: https://captcha.example/api.js\n"
    );
    let mut rampart = start_rampart(
        &format!("rampart-captcha-{proxy_port}"),
        &config(proxy_port, admin_port, upstream_port, &state, &bot),
        admin_port,
    );
    let proxy = SocketAddr::from(([127, 0, 0, 1], proxy_port));
    wait_for_port(proxy, Duration::from_secs(20), &mut rampart);
    let mut c = Client::connect(proxy).unwrap();

    let suspect = browserish("198.51.100.30", &[]);
    let page = c.get("/shop", &suspect).unwrap();
    assert_eq!(page.status, 403);
    let html = text(&page);
    assert!(
        html.contains("data-sitekey=\"site-123\"") && html.contains("https://captcha.example/api.js"),
        "{html}"
    );
    assert!(
        page.header("content-security-policy")
            .unwrap()
            .contains("https://captcha.example")
    );
    let nonce = field(&html, "nonce");

    let bad = post_form(
        &mut c,
        &suspect,
        &format!("nonce={nonce}&cf-turnstile-response=bad-token&return_to=/shop"),
    );
    assert_eq!(bad.status, 403, "{}", text(&bad));
    let good = post_form(
        &mut c,
        &suspect,
        &format!("nonce={nonce}&cf-turnstile-response=good-token&return_to=/shop"),
    );
    assert_eq!(good.status, 303, "{}", text(&good));
    assert_eq!(
        checks.load(Ordering::SeqCst),
        2,
        "each answer is checked with the provider"
    );
    let cookie = good.header("set-cookie").unwrap().split(';').next().unwrap().to_owned();
    let through = c
        .get("/shop", &browserish("198.51.100.30", &[("cookie", &cookie)]))
        .unwrap();
    assert_eq!(through.status, 200, "{}", text(&through));
}
