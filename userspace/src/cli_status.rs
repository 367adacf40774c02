//! `rampart xdp status`: asks the running daemon's admin API and prints the XDP state as a table (or the raw
//! JSON with `--json`).

use std::time::Duration;

use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

pub async fn xdp_status(admin: &str, json: bool) -> anyhow::Result<()> {
    let url = format!("{}/admin/xdp/status", admin.trim_end_matches('/'));
    let uri: http::Uri = url.parse().with_context(|| format!("invalid admin URL `{admin}`"))?;
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let resp = tokio::time::timeout(Duration::from_secs(10), client.get(uri))
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
    let v: Value = serde_json::from_slice(&body).context("the admin API's answer is not JSON")?;
    if json {
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        print!("{}", render(&v));
    }
    Ok(())
}

fn render(v: &Value) -> String {
    let mut out = String::new();
    let s = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    };
    out += &format!(
        "XDP enabled: {}   loaded: {}   program id: {}\n",
        s(&v["enabled"]),
        s(&v["loaded"]),
        s(&v["program_id"])
    );
    if let Some(reason) = v["degraded"].as_str() {
        out += &format!("DEGRADED: {reason}\n");
    }
    out += "\nINTERFACE        MODE      PINNED\n";
    for a in v["attachments"].as_array().into_iter().flatten() {
        out += &format!("{:<16} {:<9} {}\n", s(&a["interface"]), s(&a["mode"]), s(&a["pinned"]));
    }
    if let Some(maps) = v["maps"].as_array() {
        out += "\nMAP           ENTRIES      MAX\n";
        for m in maps {
            out += &format!(
                "{:<12} {:>8} {:>8}\n",
                s(&m["name"]),
                s(&m["entries"]),
                s(&m["max_entries"])
            );
        }
    }
    if let Some(counters) = v["counters"].as_array() {
        out += "\nACTION  REASON         PACKETS          BYTES\n";
        for c in counters {
            out += &format!(
                "{:<7} {:<11} {:>10} {:>14}\n",
                s(&c["action"]),
                s(&c["reason"]),
                s(&c["packets"]),
                s(&c["bytes"])
            );
        }
        out += &format!("\ndrop events lost: {}\n", s(&v["events_lost"]));
    }
    out
}
