//! `rampart ssl status` and `rampart ssl renew DOMAIN`: ask the running daemon's admin API
//! (`/admin/ssl/certificates`) and print the served certificates and the ACME renewal state as a table (or
//! the raw JSON with `--json`).

use std::time::Duration;

use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

async fn call(method: http::Method, admin: &str, path: &str) -> anyhow::Result<Value> {
    let url = format!("{}{path}", admin.trim_end_matches('/'));
    let uri: http::Uri = url.parse().with_context(|| format!("invalid admin URL `{admin}`"))?;
    let req = http::Request::builder()
        .method(method)
        .uri(uri)
        .body(Empty::<Bytes>::new())
        .context("building the request")?;
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let resp = tokio::time::timeout(Duration::from_secs(10), client.request(req))
        .await
        .with_context(|| format!("no answer from {url} within 10 s"))?
        .with_context(|| format!("cannot reach the admin API at {admin} (is rampart running?)"))?;
    let status = resp.status();
    let body = resp
        .into_body()
        .collect()
        .await
        .context("reading the admin API's answer")?
        .to_bytes();
    if !status.is_success() {
        bail!("{url} answered {status}: {}", String::from_utf8_lossy(&body));
    }
    serde_json::from_slice(&body).context("the admin API's answer is not JSON")
}

pub async fn status(admin: &str, json: bool) -> anyhow::Result<()> {
    let v = call(http::Method::GET, admin, "/admin/ssl/certificates").await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        print!("{}", render(&v));
    }
    Ok(())
}

pub async fn renew(admin: &str, domain: &str) -> anyhow::Result<()> {
    let v = call(
        http::Method::POST,
        admin,
        &format!("/admin/ssl/certificates/{domain}/renew"),
    )
    .await?;
    println!("{}", v["message"].as_str().unwrap_or("renewal started"));
    Ok(())
}

fn render(v: &Value) -> String {
    let s = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    };
    let mut out = String::from("SOURCE                 EXPIRES (UTC)          LEFT      OCSP     SERIAL / DOMAINS\n");
    for c in v["certificates"].as_array().into_iter().flatten() {
        let left = c["expires_in_seconds"].as_i64().unwrap_or(0);
        let left = if left < 0 {
            "EXPIRED".to_owned()
        } else if left >= 86_400 {
            format!("{}d", left / 86_400)
        } else {
            format!("{}h{}m", left / 3600, left % 3600 / 60)
        };
        let ocsp = if c["ocsp"]["stapled"].as_bool() == Some(true) {
            "stapled"
        } else if c["ocsp"]["responder"].is_string() {
            "none"
        } else {
            "-"
        };
        let domains: Vec<String> = c["domains"].as_array().into_iter().flatten().map(s).collect();
        out += &format!(
            "{:<22} {:<22} {:<9} {:<8} {}\n{:<65}{}\n",
            s(&c["source"]),
            s(&c["not_after"]),
            left,
            ocsp,
            s(&c["serial"]),
            "",
            domains.join(", ")
        );
    }
    let acme = &v["acme"];
    if acme.is_null() {
        out += "\nACME: off (ssl.auto_provision: false)\n";
    } else {
        let r = &acme["renewal"];
        out += &format!(
            "\nACME: {} via {} ({})\n  renew at: {}   last success: {}\n",
            s(&acme["directory_url"]),
            s(&acme["challenge_type"]),
            s(&acme["key_type"]),
            s(&r["renew_at"]),
            s(&r["last_success"]),
        );
        if r["consecutive_failures"].as_u64().unwrap_or(0) > 0 {
            out += &format!(
                "  FAILING: {} attempt(s), next retry {}\n  last error: {}\n",
                s(&r["consecutive_failures"]),
                s(&r["next_retry"]),
                s(&r["last_error"])
            );
        }
        if r["serving_fallback"].as_bool() == Some(true) {
            out += "  SERVING A SELF-SIGNED FALLBACK: no certificate has been issued yet\n";
        }
    }
    out
}
