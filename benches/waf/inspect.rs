//! Inspection cost of the WAF engine per request shape, with the default configuration: a clean GET with five
//! headers and a 300-byte query (target ≤ 5 µs), a 4 KB urlencoded POST, a 16 KB JSON POST (target ≤ 50 µs),
//! a 64 KB multipart upload, the clean GET from user agents the engine has not seen, a few attacks, and
//! inputs built to be slow — deep nesting, long runs of encoded bytes, many arguments, long token runs for
//! the SQL lexer (target: none over 1 ms).
//!
//! `cargo xtask bench waf` (or `cargo bench -p rampart-benches --bench waf_inspect`).
#![allow(clippy::unwrap_used)] // a benchmark fails by panicking

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use http::{HeaderMap, HeaderValue};
use rampart::config::schema::WafConfig;
use rampart::waf::{Engine, Overrides, RequestView};

struct Case {
    name: &'static str,
    method: &'static str,
    path: &'static str,
    query: String,
    headers: HeaderMap,
    body: Vec<u8>,
}

fn browser_headers(content_type: Option<&str>) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert("host", HeaderValue::from_static("shop.example.com"));
    h.insert(
        "user-agent",
        HeaderValue::from_static(
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
        ),
    );
    h.insert(
        "accept",
        HeaderValue::from_static("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
    );
    h.insert("accept-language", HeaderValue::from_static("en-US,en;q=0.9"));
    h.insert(
        "cookie",
        HeaderValue::from_static("sessionid=3b451e4b17e6056de35d395398a1a936; _ga=GA1.2.778360764.1663440572; lang=de"),
    );
    if let Some(ct) = content_type {
        h.insert("content-type", HeaderValue::from_str(ct).unwrap());
    }
    h
}

/// A 300-byte query of ordinary shop parameters.
fn clean_query() -> String {
    let mut q = String::from(
        "q=blue+running+shoes&category=sport&brand=acme&size=42&color=blue&sort=price_asc&page=2&per_page=24\
         &utm_source=newsletter&utm_medium=email&utm_campaign=spring_sale_2024&ref=homepage_banner&lang=en-US",
    );
    while q.len() < 300 {
        q.push_str("&f=in_stock");
    }
    q.truncate(300);
    q
}

fn form_body(bytes: usize) -> Vec<u8> {
    let mut b = String::from(
        "first_name=Esther&last_name=van+der+Berg&email=raparecida%40example.net&phone=%2B55+61+7608+6782",
    );
    let mut i = 0;
    while b.len() < bytes {
        b.push_str(&format!(
            "&comment_{i}=Great+product%2C+arrived+on+time.+Would+buy+again+from+this+shop"
        ));
        i += 1;
    }
    b.truncate(bytes);
    b.into_bytes()
}

fn json_body(bytes: usize) -> Vec<u8> {
    let mut items = Vec::new();
    let mut len = 0;
    let mut i = 0;
    while len < bytes {
        let item = format!(
            r#"{{"sku": "bf5c662b-{i}", "qty": {}, "name": "Organic cotton t-shirt, size M", "note": "Please gift wrap it, it's for my sister's birthday", "price": 19.99, "tags": ["summer", "sale"]}}"#,
            i % 5 + 1
        );
        len += item.len() + 2;
        items.push(item);
        i += 1;
    }
    format!(
        r#"{{"customer": {{"name": "Anna O'Brien", "email": "anna@example.net"}}, "items": [{}]}}"#,
        items.join(", ")
    )
    .into_bytes()
}

fn multipart_body(bytes: usize) -> Vec<u8> {
    let mut b = b"------WebKitFormBoundary781c72891b20bae6\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nHoliday photo\r\n------WebKitFormBoundary781c72891b20bae6\r\nContent-Disposition: form-data; name=\"avatar\"; filename=\"beach.png\"\r\nContent-Type: image/png\r\n\r\n\x89PNG\r\n\x1a\n".to_vec();
    let mut x: u32 = 12345;
    while b.len() < bytes {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
        b.push((x >> 16) as u8);
    }
    b.extend_from_slice(b"\r\n------WebKitFormBoundary781c72891b20bae6--\r\n");
    b
}

fn cases() -> Vec<Case> {
    let get = |name, query: String| Case {
        name,
        method: "GET",
        path: "/products/search",
        query,
        headers: browser_headers(None),
        body: Vec::new(),
    };
    let post = |name, ct: &str, body: Vec<u8>| Case {
        name,
        method: "POST",
        path: "/api/v1/orders",
        query: String::new(),
        headers: browser_headers(Some(ct)),
        body,
    };
    vec![
        get("clean_get_5_headers_300b_query", clean_query()),
        post(
            "urlencoded_post_4kb",
            "application/x-www-form-urlencoded",
            form_body(4096),
        ),
        post("json_post_16kb", "application/json", json_body(16 * 1024)),
        post(
            "multipart_upload_64kb",
            "multipart/form-data; boundary=----WebKitFormBoundary781c72891b20bae6",
            multipart_body(64 * 1024),
        ),
        get(
            "attack_sqli_union",
            "id=1%27%20UNION%20SELECT%20password%20FROM%20users--".into(),
        ),
        get(
            "attack_xss_img_onerror",
            "q=%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E".into(),
        ),
        post(
            "adversarial_json_nesting_100k",
            "application/json",
            "[".repeat(100_000).into_bytes(),
        ),
        post(
            "adversarial_json_deep_objects_10k",
            "application/json",
            r#"{"a":"#.repeat(10_000).into_bytes(),
        ),
        get("adversarial_encoded_run_48kb", format!("q={}", "%25".repeat(16_000))),
        get(
            "adversarial_percent_u_run_48kb",
            format!("q={}", "%u0027".repeat(8_000)),
        ),
        get(
            "adversarial_quotes_and_parens_16kb",
            format!("q={}", "'(".repeat(8_000)),
        ),
        get("adversarial_many_arguments_20k", "a=1&".repeat(20_000)),
        post(
            "adversarial_angle_brackets_64kb",
            "text/plain",
            "<a ".repeat(21_000).into_bytes(),
        ),
        post(
            "adversarial_entities_64kb",
            "application/x-www-form-urlencoded",
            format!("x={}", "&#x3c;".repeat(10_000)).into_bytes(),
        ),
    ]
}

fn bench(c: &mut Criterion) {
    let engine = Engine::build(&WafConfig::default(), &Overrides::new()).unwrap();
    let mut group = c.benchmark_group("waf_inspect");
    for case in cases() {
        let view = RequestView {
            method: case.method,
            path: case.path,
            query: &case.query,
            headers: &case.headers,
            body: &case.body,
            body_truncated: false,
            client: IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7)),
            route: None,
        };
        group.throughput(Throughput::Bytes((case.query.len() + case.body.len()) as u64));
        group.bench_function(case.name, |b| b.iter(|| black_box(engine.inspect(black_box(&view)))));
    }
    // The clean GET from 64 user agents in turn: more than the engine remembers per thread, so every
    // request inspects its agent afresh (what the first request from each browser build costs).
    let query = clean_query();
    let agents: Vec<HeaderMap> = (0..64)
        .map(|i| {
            let mut h = browser_headers(None);
            let ua = format!(
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.{i}.0 Safari/537.36"
            );
            h.insert("user-agent", HeaderValue::from_str(&ua).unwrap());
            h
        })
        .collect();
    let views: Vec<RequestView<'_>> = agents
        .iter()
        .map(|headers| RequestView {
            method: "GET",
            path: "/products/search",
            query: &query,
            headers,
            body: b"",
            body_truncated: false,
            client: IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7)),
            route: None,
        })
        .collect();
    let mut next = 0;
    group.bench_function("clean_get_unseen_user_agent", |b| {
        b.iter(|| {
            next = (next + 1) % views.len();
            black_box(engine.inspect(black_box(&views[next])))
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).warm_up_time(std::time::Duration::from_millis(500)).measurement_time(std::time::Duration::from_secs(2));
    targets = bench
}
criterion_main!(benches);
