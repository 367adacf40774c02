//! `rampart ssl status` and `rampart ssl renew DOMAIN`: the served certificates and the ACME renewal state
//! (`/admin/ssl/certificates`) as a table, or the API's JSON with `--json`.

use http::Method;
use serde_json::Value;

use super::AdminClient;

pub async fn status(admin: &str, json: bool) -> anyhow::Result<()> {
    let mut c = AdminClient::new(admin)?;
    let v = c.call(Method::GET, "/admin/ssl/certificates", None).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        print!("{}", render(&v));
    }
    Ok(())
}

pub async fn renew(admin: &str, domain: &str, json: bool) -> anyhow::Result<()> {
    let mut c = AdminClient::new(admin)?;
    let path = format!("/admin/ssl/certificates/{}/renew", super::commands::percent(domain));
    let v = c.call(Method::POST, &path, None).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!("{}", v["message"].as_str().unwrap_or("renewal started"));
    }
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
