//! One function per admin subcommand: call the API, then print a table (or the JSON with `--json`).

use std::fmt::Write as _;
use std::time::Duration;

use anyhow::{Context, bail};
use http::Method;
use serde_json::{Value, json};

use super::AdminClient;
use super::token_store::{self, Stored};

/// A JSON value as table text: strings bare, null as `-`.
fn s(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

fn emit(v: &Value, json: bool, table: impl FnOnce(&Value) -> String) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(v)?);
    } else {
        print!("{}", table(v));
    }
    Ok(())
}

/// `rampart login`: password from standard input (first line), tokens saved 0600.
pub async fn login(admin: &str, username: &str, json: bool) -> anyhow::Result<()> {
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .context("reading the password from standard input")?;
    let password = line.trim_end_matches(['\r', '\n']);
    if password.is_empty() {
        bail!("no password on standard input (e.g. `rampart login --username ops < passfile`)");
    }
    let client = AdminClient::new(admin)?;
    let body = json!({ "username": username, "password": password });
    let (status, v) = client.raw(Method::POST, "/admin/auth/login", Some(&body), None).await?;
    if !status.is_success() {
        bail!("login refused: {status}: {}", s(&v["error"]));
    }
    let (Some(access), Some(refresh)) = (v["access_token"].as_str(), v["refresh_token"].as_str()) else {
        bail!("the login answer has no tokens: {v}");
    };
    let path = token_store::save(&Stored {
        admin: client.base().to_owned(),
        username: username.to_owned(),
        access_token: access.to_owned(),
        refresh_token: refresh.to_owned(),
    })?;
    let summary = json!({ "username": username, "role": v["role"], "token_file": path.display().to_string(),
                          "expires_in": v["expires_in"] });
    emit(&summary, json, |v| {
        format!(
            "logged in to {} as {} ({}); token saved to {}\n",
            client.base(),
            s(&v["username"]),
            s(&v["role"]),
            s(&v["token_file"])
        )
    })
}

pub async fn waf_status(admin: &str, json: bool) -> anyhow::Result<()> {
    let mut c = AdminClient::new(admin)?;
    let stats = c.call(Method::GET, "/admin/waf/stats", None).await?;
    let blocked = c.call(Method::GET, "/admin/waf/blocked-ips", None).await?;
    let v = json!({ "stats": stats, "blocked_ips": blocked["blocked_ips"], "enforced_by": blocked["enforced_by"] });
    emit(&v, json, |v| {
        let st = &v["stats"];
        let mut out = format!(
            "WAF enabled: {}   requests inspected: {}   blocked: {}   mean inspection: {:.3} ms\n",
            s(&st["waf_enabled"]),
            s(&st["requests_processed"]),
            s(&st["requests_blocked"]),
            st["performance"]["avg_processing_time_ms"].as_f64().unwrap_or(0.0)
        );
        out += "\nATTACK TYPE              BLOCKED\n";
        for (k, n) in st["attack_types"].as_object().into_iter().flatten() {
            let _ = writeln!(out, "{k:<24} {:>7}", s(n));
        }
        let _ = writeln!(
            out,
            "\nBLOCKED IP           EXPIRES                REASON   (enforced by {})",
            s(&v["enforced_by"])
        );
        for b in v["blocked_ips"].as_array().into_iter().flatten() {
            let _ = writeln!(out, "{:<20} {:<22} {}", s(&b["ip"]), s(&b["expires"]), s(&b["reason"]));
        }
        out
    })
}

pub async fn block_ip(
    admin: &str,
    ip: &str,
    duration: Option<Duration>,
    reason: Option<&str>,
    json: bool,
) -> anyhow::Result<()> {
    let mut c = AdminClient::new(admin)?;
    let body = json!({ "ip": ip, "duration": duration.map_or(0, |d| d.as_secs()), "reason": reason.unwrap_or("cli") });
    let v = c.call(Method::POST, "/admin/waf/blocked-ips", Some(&body)).await?;
    emit(&v, json, |v| {
        let b = &v["blocked_ip"];
        format!(
            "blocked {} until {} ({})\n",
            s(&b["ip"]),
            b["expires"].as_str().unwrap_or("removed"),
            s(&b["reason"])
        )
    })
}

pub async fn unblock_ip(admin: &str, ip: &str, json: bool) -> anyhow::Result<()> {
    let mut c = AdminClient::new(admin)?;
    let body = json!({ "ip": ip });
    let v = c.call(Method::DELETE, "/admin/waf/blocked-ips", Some(&body)).await?;
    emit(&v, json, |v| format!("unblocked {}\n", s(&v["removed"])))
}

pub async fn rules_list(admin: &str, json: bool) -> anyhow::Result<()> {
    let mut c = AdminClient::new(admin)?;
    let v = c.call(Method::GET, "/admin/waf/rules", None).await?;
    emit(&v, json, |v| {
        let mut out = String::from("RULE                 ENABLED  THRESHOLD  ACTION\n");
        for r in v["rules"].as_array().into_iter().flatten() {
            let _ = writeln!(
                out,
                "{:<20} {:<8} {:<10} {}",
                s(&r["name"]),
                s(&r["enabled"]),
                s(&r["threshold"]),
                s(&r["action"])
            );
        }
        out
    })
}

pub async fn rule_set_enabled(admin: &str, name: &str, enabled: bool, json: bool) -> anyhow::Result<()> {
    let mut c = AdminClient::new(admin)?;
    let v = c
        .call(
            Method::PUT,
            &format!("/admin/waf/rules/{name}"),
            Some(&json!({ "enabled": enabled })),
        )
        .await?;
    emit(&v, json, |v| format!("{}\n", s(&v["message"])))
}

pub async fn proxy_status(admin: &str, json: bool) -> anyhow::Result<()> {
    let mut c = AdminClient::new(admin)?;
    let v = c.call(Method::GET, "/admin/proxy/upstreams", None).await?;
    emit(&v, json, |v| {
        let mut out = String::from(
            "UPSTREAM         ALGORITHM            SERVER                 STATUS        WEIGHT  ACTIVE  LATENCY_MS\n",
        );
        for u in v["upstreams"].as_array().into_iter().flatten() {
            for sv in u["servers"].as_array().into_iter().flatten() {
                let _ = writeln!(
                    out,
                    "{:<16} {:<20} {:<22} {:<13} {:>6} {:>7} {:>11.2}",
                    s(&u["name"]),
                    s(&u["algorithm"]),
                    s(&sv["id"]),
                    s(&sv["status"]),
                    s(&sv["weight"]),
                    s(&sv["active_connections"]),
                    sv["latency_ms"].as_f64().unwrap_or(0.0)
                );
            }
        }
        out
    })
}

pub async fn cache_clear(admin: &str, pattern: Option<&str>, json: bool) -> anyhow::Result<()> {
    let mut c = AdminClient::new(admin)?;
    let path = match pattern {
        Some(p) => format!("/admin/proxy/cache/clear?pattern={}", percent(p)),
        None => "/admin/proxy/cache/clear".into(),
    };
    let v = c.call(Method::DELETE, &path, None).await?;
    emit(&v, json, |v| {
        let mut out = format!("entries cleared: {}\n", s(&v["entries_cleared"]));
        if v["cache_enabled"] == false {
            let _ = writeln!(out, "note: {}", s(&v["message"]));
        }
        out
    })
}

pub async fn monitor_health(admin: &str, json: bool) -> anyhow::Result<()> {
    let mut c = AdminClient::new(admin)?;
    let v = c.call(Method::GET, "/admin/system/status", None).await?;
    emit(&v, json, |v| {
        let mut out = format!(
            "status: {}   uptime: {} s   memory: {} MiB   cpu: {:.1}%\n\nCOMPONENT        STATUS\n",
            s(&v["status"]),
            s(&v["uptime"]),
            v["memory_usage"]["used"].as_u64().unwrap_or(0) >> 20,
            v["cpu_usage"].as_f64().unwrap_or(0.0)
        );
        for comp in v["components"].as_array().into_iter().flatten() {
            let _ = writeln!(out, "{:<16} {}", s(&comp["name"]), s(&comp["status"]));
        }
        out
    })
}

/// Percent-encodes a query value (everything but unreserved characters).
pub(super) fn percent(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
