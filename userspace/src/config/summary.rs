//! `rampart config summary`: the few facts an operator checks first (listeners, upstreams and routes, WAF
//! mode, XDP, admin access), as JSON and as a short text. Never includes a secret.

use serde_json::{Value, json};

use super::Config;

pub fn summary(c: &Config) -> Value {
    let to_value = |v: &dyn AsValue| v.value();
    json!({
        "proxy": { "host": c.server.host.to_string(), "port": c.server.port.get(),
                   "tls": c.ssl.enabled, "tls_port": c.ssl.port.get() },
        "upstreams": c.proxy.upstreams.iter().map(|u| json!({
            "name": u.name, "algorithm": to_value(&u.algorithm), "servers": u.servers.len(),
        })).collect::<Vec<_>>(),
        "routes": c.proxy.routes.len(),
        "waf": { "enabled": c.waf.enabled, "mode": to_value(&c.waf.mode) },
        "xdp": { "enabled": c.xdp.enabled, "interfaces": c.xdp.interfaces,
                 "allow_entries": c.xdp.allow.len(), "deny_entries": c.xdp.deny.len() },
        "admin": { "enabled": c.admin.enabled, "host": c.admin.host.to_string(), "port": c.admin.port.get(),
                   "auth": c.admin.auth.enabled, "users": c.admin.auth.users.len(),
                   "rate_limit_per_minute": c.admin.rate_limiting.enabled.then_some(c.admin.rate_limiting.requests_per_minute),
                   "cors": c.admin.cors.enabled },
    })
}

/// Serialises a config enum as its YAML spelling.
trait AsValue {
    fn value(&self) -> Value;
}

impl<T: serde::Serialize> AsValue for T {
    fn value(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

pub fn summary_text(v: &Value) -> String {
    let s = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    };
    let mut out = format!(
        "proxy     {}:{}  tls: {} (port {})\n",
        s(&v["proxy"]["host"]),
        s(&v["proxy"]["port"]),
        s(&v["proxy"]["tls"]),
        s(&v["proxy"]["tls_port"])
    );
    for u in v["upstreams"].as_array().into_iter().flatten() {
        out += &format!(
            "upstream  {}  {}  {} server(s)\n",
            s(&u["name"]),
            s(&u["algorithm"]),
            s(&u["servers"])
        );
    }
    out += &format!("routes    {}\n", s(&v["routes"]));
    out += &format!(
        "waf       enabled: {}  mode: {}\n",
        s(&v["waf"]["enabled"]),
        s(&v["waf"]["mode"])
    );
    out += &format!(
        "xdp       enabled: {}  interfaces: {}  allow: {}  deny: {}\n",
        s(&v["xdp"]["enabled"]),
        s(&v["xdp"]["interfaces"]),
        s(&v["xdp"]["allow_entries"]),
        s(&v["xdp"]["deny_entries"])
    );
    let a = &v["admin"];
    out += &format!(
        "admin     {}:{}  auth: {}  users: {}  rate limit/min: {}  cors: {}\n",
        s(&a["host"]),
        s(&a["port"]),
        s(&a["auth"]),
        s(&a["users"]),
        s(&a["rate_limit_per_minute"]),
        s(&a["cors"])
    );
    out
}
