//! Checks that span several values (references between sections, port clashes, required companions). Per-value
//! rules (ranges, CIDR syntax, enums) are enforced while deserialising, by the types in `config::types`.

use std::collections::HashSet;
use std::net::IpAddr;

use super::path::KeyPath;
use super::schema::{Config, HealthCheckKind, MatchOperator, RouteConditionKind, RouteConfig};

/// A problem found by a cross-field check, before its location is attached.
pub type Finding = (KeyPath, String);

pub fn check(config: &Config) -> Vec<Finding> {
    let mut out = Vec::new();
    server(config, &mut out);
    proxy(config, &mut out);
    listeners(config, &mut out);
    ssl(config, &mut out);
    admin(config, &mut out);
    waf(config, &mut out);
    xdp(config, &mut out);
    logging(config, &mut out);
    fleet(config, &mut out);
    out
}

fn logging(c: &Config, out: &mut Vec<Finding>) {
    let a = &c.logging.access_log;
    if a.enabled
        && let Err(e) = crate::telemetry::request_log::AccessFormat::new(a.format, a.custom_format.as_deref())
    {
        out.push((at("logging.access_log.custom_format"), e.to_string()));
    }
    for (name, max_files) in [
        ("security_log", c.logging.security_log.max_files),
        ("access_log", a.max_files),
        ("performance_log", c.logging.performance_log.max_files),
    ] {
        if max_files > 10_000 {
            out.push((
                at("logging").child_key(name).child_key("max_files"),
                "at most 10000".into(),
            ));
        }
    }
}

fn at(path: &str) -> KeyPath {
    KeyPath::parse(path)
}

fn server(c: &Config, out: &mut Vec<Finding>) {
    let s = &c.server;
    if s.max_connections == 0 {
        out.push((at("server.max_connections"), "must be at least 1".into()));
    }
    for (name, v) in [
        ("keepalive_timeout", s.keepalive_timeout),
        ("request_timeout", s.request_timeout),
    ] {
        if v == 0 {
            out.push((at("server").child_key(name), "must be at least 1 second".into()));
        }
    }
    if s.max_request_size.get() == 0 {
        out.push((at("server.max_request_size"), "must be more than 0 bytes".into()));
    }
}

fn proxy(c: &Config, out: &mut Vec<Finding>) {
    let ups = &c.proxy.upstreams;
    if ups.is_empty() {
        out.push((at("proxy.upstreams"), "at least one upstream is required".into()));
    }
    let mut names = HashSet::new();
    for (i, u) in ups.iter().enumerate() {
        let base = at("proxy.upstreams").child_index(i);
        if u.name.trim().is_empty() {
            out.push((base.child_key("name"), "must not be empty".into()));
        } else if !names.insert(u.name.as_str()) {
            out.push((base.child_key("name"), format!("duplicate upstream name `{}`", u.name)));
        }
        if u.servers.is_empty() {
            out.push((base.child_key("servers"), "at least one server is required".into()));
        }
        for (j, s) in u.servers.iter().enumerate() {
            let sp = base.child_key("servers").child_index(j);
            if s.host.trim().is_empty() {
                out.push((sp.child_key("host"), "must not be empty".into()));
            }
            if s.weight == 0 {
                out.push((sp.child_key("weight"), "must be at least 1".into()));
            }
        }
        let hc = &u.health_check;
        let hp = base.child_key("health_check");
        if let Some(bad) = hc.expected_status.iter().find(|s| !(100..=599).contains(*s)) {
            out.push((
                hp.child_key("expected_status"),
                format!("{bad} is not an HTTP status (100-599)"),
            ));
        }
        if hc.enabled && hc.kind == HealthCheckKind::Custom && hc.script.is_none() {
            out.push((hp.child_key("script"), "required when type is custom".into()));
        }
        if hc.enabled && (hc.interval == 0 || hc.timeout == 0) {
            out.push((hp, "interval and timeout must be at least 1 second".into()));
        }
    }
    caching(c, out);
    for (i, r) in c.proxy.routes.iter().enumerate() {
        route_conditions(&at("proxy.routes").child_index(i), r, out);
        if !names.contains(r.upstream.as_str()) {
            out.push((
                at("proxy.routes").child_index(i).child_key("upstream"),
                format!("no upstream named `{}` (defined: {})", r.upstream, names_list(&names)),
            ));
        }
    }
}

/// Parts a cache key may be built from (`proxy.caching.cache_rules[].cache_key_include`).
pub const CACHE_KEY_PARTS: [&str; 5] = ["path", "query", "host", "method", "user_id"];

fn caching(c: &Config, out: &mut Vec<Finding>) {
    let m = &c.proxy.caching.memory_cache;
    let base = at("proxy.caching.memory_cache");
    if m.max_size.get() == 0 {
        out.push((base.child_key("max_size"), "must be at least 1 byte".into()));
    }
    if m.max_entries == 0 {
        out.push((base.child_key("max_entries"), "must be at least 1".into()));
    }
    if m.max_object_size.get() > m.max_size.get() {
        out.push((
            base.child_key("max_object_size"),
            format!("{} is larger than max_size ({})", m.max_object_size, m.max_size),
        ));
    }
    if m.max_object_size.get() > 512 * 1024 * 1024 {
        out.push((base.child_key("max_object_size"), "must be at most 512MB".into()));
    }
    let r = &c.proxy.caching.redis_cache;
    let rp = at("proxy.caching.redis_cache");
    if r.enabled {
        if r.pool_size == 0 || r.pool_size > 64 {
            out.push((rp.child_key("pool_size"), format!("{} is not in 1-64", r.pool_size)));
        }
        if r.timeout == 0 {
            out.push((rp.child_key("timeout"), "must be at least 1 second".into()));
        }
        if r.cluster_mode {
            if r.cluster_nodes.is_empty() {
                out.push((
                    rp.child_key("cluster_nodes"),
                    "cluster_mode needs at least one host:port entry".into(),
                ));
            }
            for (i, node) in r.cluster_nodes.iter().enumerate() {
                if let Err(e) = crate::config::schema::RedisCacheConfig::cluster_node(node) {
                    out.push((rp.child_key("cluster_nodes").child_index(i), e));
                }
            }
            if r.db != 0 {
                out.push((
                    rp.child_key("db"),
                    format!("{} in cluster mode: a Redis Cluster has only db 0", r.db),
                ));
            }
        } else if r.host.trim().is_empty() {
            out.push((rp.child_key("host"), "must not be empty".into()));
        }
    }
    for (i, rule) in c.proxy.caching.cache_rules.iter().enumerate() {
        let p = at("proxy.caching.cache_rules").child_index(i);
        if let Err(e) = crate::config::patterns::PathPattern::parse(&rule.path) {
            out.push((p.child_key("path"), e));
        }
        for (j, h) in rule.vary_headers.iter().enumerate() {
            if http::HeaderName::from_bytes(h.as_bytes()).is_err() {
                out.push((
                    p.child_key("vary_headers").child_index(j),
                    format!("`{h}` is not a valid header name"),
                ));
            }
        }
        for (j, part) in rule.cache_key_include.iter().enumerate() {
            if !CACHE_KEY_PARTS.contains(&part.as_str()) {
                out.push((
                    p.child_key("cache_key_include").child_index(j),
                    format!("unknown key part `{part}` (known: {})", CACHE_KEY_PARTS.join(", ")),
                ));
            }
        }
        for (j, cond) in rule.conditions.iter().enumerate() {
            if http::HeaderName::from_bytes(cond.header.as_bytes()).is_err() {
                out.push((
                    p.child_key("conditions").child_index(j).child_key("header"),
                    format!("`{}` is not a valid header name", cond.header),
                ));
            }
        }
    }
}

fn route_conditions(base: &KeyPath, r: &RouteConfig, out: &mut Vec<Finding>) {
    for (j, cond) in r.conditions.iter().enumerate() {
        let p = base.child_key("conditions").child_index(j);
        let needs_name = matches!(cond.kind, RouteConditionKind::Header | RouteConditionKind::Query);
        if needs_name && cond.name.as_deref().is_none_or(str::is_empty) {
            out.push((p.child_key("name"), "required for header and query conditions".into()));
        }
        if cond.kind == RouteConditionKind::Header
            && let Some(name) = &cond.name
            && http::HeaderName::from_bytes(name.as_bytes()).is_err()
        {
            out.push((p.child_key("name"), format!("`{name}` is not a valid header name")));
        }
        match cond.operator {
            MatchOperator::Regex => {
                if let Err(e) = regex::Regex::new(&cond.value) {
                    out.push((p.child_key("value"), format!("invalid regex `{}`: {e}", cond.value)));
                }
            }
            MatchOperator::InSubnet => {
                if let Err(e) = cond.value.parse::<crate::config::types::Cidr>() {
                    out.push((p.child_key("value"), e.to_string()));
                }
            }
            MatchOperator::Equals if cond.kind == RouteConditionKind::Ip => {
                if let Err(e) = cond.value.parse::<crate::config::types::Cidr>() {
                    out.push((p.child_key("value"), e.to_string()));
                }
            }
            _ => {}
        }
    }
    if let Some(prefix) = &r.strip_prefix
        && !prefix.starts_with('/')
    {
        out.push((base.child_key("strip_prefix"), "must start with /".into()));
    }
    for (key, rewrite) in [("headers", &r.headers), ("response_headers", &r.response_headers)] {
        header_rewrite(&base.child_key(key), rewrite, out);
    }
}

/// Every header name and value a route adds, sets or removes must be sendable as it is.
fn header_rewrite(base: &KeyPath, r: &crate::config::schema::HeaderRewrite, out: &mut Vec<Finding>) {
    let bad_name = |n: &str| http::HeaderName::from_bytes(n.as_bytes()).is_err();
    for (i, name) in r.remove.iter().enumerate() {
        if bad_name(name) {
            out.push((
                base.child_key("remove").child_index(i),
                format!("`{name}` is not a valid header name"),
            ));
        }
    }
    for (key, fields) in [("set", &r.set), ("add", &r.add)] {
        for (name, value) in fields {
            let p = base.child_key(key).child_key(name);
            if bad_name(name) {
                out.push((p, format!("`{name}` is not a valid header name")));
            } else if http::HeaderValue::from_str(value).is_err() {
                out.push((p, format!("the value of `{name}` has characters a header cannot carry")));
            }
        }
    }
}

fn names_list(names: &HashSet<&str>) -> String {
    let mut v: Vec<_> = names.iter().copied().collect();
    v.sort_unstable();
    if v.is_empty() { "none".into() } else { v.join(", ") }
}

/// Two listeners on the same port clash when either binds the unspecified address or both bind the same one.
fn listeners(c: &Config, out: &mut Vec<Finding>) {
    let mut bound: Vec<(&str, IpAddr, u16)> = vec![("server.port", c.server.host, c.server.port.get())];
    if c.ssl.enabled {
        bound.push(("ssl.port", c.server.host, c.ssl.port.get()));
    }
    if c.admin.enabled {
        bound.push(("admin.port", c.admin.host, c.admin.port.get()));
    }
    if let (true, Some(port)) = (
        c.metrics.enabled && c.metrics.prometheus.enabled,
        c.metrics.prometheus.port,
    ) {
        bound.push(("metrics.prometheus.port", c.admin.host, port.get()));
    }
    for (i, (path, host, port)) in bound.iter().enumerate() {
        for (other, ohost, oport) in &bound[..i] {
            let overlap = host == ohost || host.is_unspecified() || ohost.is_unspecified();
            if port == oport && overlap {
                out.push((at(path), format!("port {port} is already used by {other}")));
            }
        }
    }
}

fn ssl(c: &Config, out: &mut Vec<Finding>) {
    let s = &c.ssl;
    if s.enabled && s.certificates.is_empty() && !s.auto_provision {
        out.push((
            at("ssl.certificates"),
            "ssl is enabled but no certificate is configured and auto_provision is off".into(),
        ));
    }
    if s.auto_provision && s.acme.domains.is_empty() {
        out.push((
            at("ssl.acme.domains"),
            "auto_provision needs at least one domain".into(),
        ));
    }
    if s.auto_provision && !s.enabled {
        out.push((
            at("ssl.auto_provision"),
            "needs ssl.enabled: true (automatic certificates are served by the TLS listener)".into(),
        ));
    }
    if s.auto_provision {
        acme(s, out);
    }
    if s.protocols.is_empty() {
        out.push((at("ssl.protocols"), "at least one protocol version is required".into()));
    }
    for (i, cert) in s.certificates.iter().enumerate() {
        if cert.domains.is_empty() {
            out.push((
                at("ssl.certificates").child_index(i).child_key("domains"),
                "at least one domain is required".into(),
            ));
        }
    }
}

/// ACME settings that cannot work: a wildcard without a DNS hook (only dns-01 can validate one), dns-01
/// without a hook, names that are not DNS names, a zero check interval.
fn acme(s: &crate::config::schema::SslConfig, out: &mut Vec<Finding>) {
    use crate::config::schema::ChallengeType;
    let a = &s.acme;
    if a.challenge_type == ChallengeType::Dns01 && a.dns_hook.is_none() {
        out.push((
            at("ssl.acme.dns_hook"),
            "challenge_type dns-01 needs a dns_hook that publishes the TXT records".into(),
        ));
    }
    for (i, d) in a.domains.iter().enumerate() {
        let path = at("ssl.acme.domains").child_index(i);
        let base = d.strip_prefix("*.").unwrap_or(d);
        let valid_label = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        };
        if base.len() > 253 || !base.split('.').all(valid_label) || !base.contains('.') && base != "localhost" {
            out.push((
                path,
                format!("`{d}` is not a DNS name (like example.com or *.example.com)"),
            ));
        } else if d.starts_with("*.") && a.dns_hook.is_none() {
            out.push((
                path,
                format!("wildcard `{d}` can only be validated by dns-01: set ssl.acme.dns_hook"),
            ));
        }
    }
    if s.renewal.check_interval == 0 {
        out.push((at("ssl.renewal.check_interval"), "must be at least 1 second".into()));
    }
    if s.renewal.retry_initial == 0 || s.renewal.retry_max < s.renewal.retry_initial {
        out.push((
            at("ssl.renewal.retry_initial"),
            "must be at least 1 second and at most ssl.renewal.retry_max".into(),
        ));
    }
}

fn admin(c: &Config, out: &mut Vec<Finding>) {
    let a = &c.admin.auth;
    if a.enabled {
        match &a.jwt_secret {
            None => out.push((
                at("admin.auth.jwt_secret"),
                "required when admin.auth.enabled is true".into(),
            )),
            Some(s) if s.len() < 32 => out.push((at("admin.auth.jwt_secret"), "must be at least 32 bytes".into())),
            Some(_) => {}
        }
        if !matches!(a.jwt_algorithm.as_str(), "HS256" | "HS384" | "HS512") {
            out.push((
                at("admin.auth.jwt_algorithm"),
                format!("`{}` is not supported (HS256, HS384 or HS512)", a.jwt_algorithm),
            ));
        }
        if a.users.is_empty() {
            out.push((
                at("admin.auth.users"),
                "at least one user is required when admin.auth.enabled is true".into(),
            ));
        }
        if a.token_expiry == 0 || a.refresh_token_expiry < a.token_expiry {
            out.push((
                at("admin.auth.refresh_token_expiry"),
                "token_expiry must be above 0 and refresh_token_expiry at least token_expiry".into(),
            ));
        }
        if a.max_login_attempts == 0 {
            out.push((at("admin.auth.max_login_attempts"), "must be at least 1".into()));
        }
    } else {
        if c.admin.enabled && !c.admin.host.is_loopback() {
            out.push((
                at("admin.auth.enabled"),
                format!(
                    "must be true when admin.host ({}) is not a loopback address: the API would be open to the network",
                    c.admin.host
                ),
            ));
        }
        if !a.users.is_empty() {
            out.push((
                at("admin.auth.users"),
                "users are configured but admin.auth.enabled is false; enable auth or remove them".into(),
            ));
        }
    }
    let mut names = HashSet::new();
    for (i, u) in a.users.iter().enumerate() {
        let key = at("admin.auth.users").child_index(i);
        if u.username.is_empty() || u.username.len() > 64 {
            out.push((key.child_key("username"), "must be 1 to 64 bytes".into()));
        }
        if !names.insert(u.username.as_str()) {
            out.push((key.child_key("username"), format!("`{}` is listed twice", u.username)));
        }
        if let Err(e) = argon2::PasswordHash::new(&u.password_hash) {
            out.push((
                key.child_key("password_hash"),
                format!("not an argon2 PHC string ({e}); make one with `rampart admin hash-password`"),
            ));
        } else if !u.password_hash.starts_with("$argon2") {
            out.push((key.child_key("password_hash"), "must be an argon2 hash".into()));
        }
    }
    if !c.metrics.prometheus.path.starts_with('/') {
        out.push((at("metrics.prometheus.path"), "must start with /".into()));
    }
    if !c.metrics.health_checks.endpoint.starts_with('/') {
        out.push((at("metrics.health_checks.endpoint"), "must start with /".into()));
    }
}

fn bot_challenge(c: &crate::config::schema::ChallengeConfig, out: &mut Vec<Finding>) {
    let here = || at("waf.bot_protection.challenge");
    if !(8..=28).contains(&c.difficulty) {
        out.push((
            here().child_key("difficulty"),
            format!("{} is outside 8..=28 (bits of proof of work)", c.difficulty),
        ));
    }
    if c.clearance_ttl < 60 {
        out.push((here().child_key("clearance_ttl"), "must be at least 60 seconds".into()));
    }
    if c.challenge_ttl < 10 {
        out.push((here().child_key("challenge_ttl"), "must be at least 10 seconds".into()));
    }
    if c.cookie_name.is_empty()
        || !c
            .cookie_name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b))
    {
        out.push((
            here().child_key("cookie_name"),
            "must be letters, digits, - and _ only".into(),
        ));
    }
    if c.secret.as_ref().is_some_and(|s| s.len() < 32) {
        out.push((here().child_key("secret"), "must be at least 32 characters".into()));
    }
    if let Some(cap) = &c.captcha {
        let cap_at = || here().child_key("captcha");
        for (key, url) in [("verify_url", &cap.verify_url), ("script_url", &cap.script_url)] {
            if !matches!(url.parse::<http::Uri>(), Ok(u) if matches!(u.scheme_str(), Some("http" | "https")) && u.host().is_some())
            {
                out.push((cap_at().child_key(key), format!("`{url}` is not an http(s) URL")));
            }
        }
        if cap.site_key.is_empty() || cap.secret.is_empty() {
            out.push((cap_at(), "site_key and secret must not be empty".into()));
        }
        if cap.timeout == 0 {
            out.push((cap_at().child_key("timeout"), "must be at least 1 second".into()));
        }
    }
}

fn waf(c: &Config, out: &mut Vec<Finding>) {
    let b = &c.waf.bot_protection;
    if b.challenge_threshold > b.detection_threshold {
        out.push((
            at("waf.bot_protection.challenge_threshold"),
            "must not be above detection_threshold (challenges come before blocks)".into(),
        ));
    }
    bot_challenge(&b.challenge, out);
    if b.max_tracked_clients == 0 {
        out.push((
            at("waf.bot_protection.max_tracked_clients"),
            "must be at least 1".into(),
        ));
    }
    for (i, v) in b.verified_bots.iter().enumerate() {
        let here = at("waf.bot_protection.verified_bots").child_index(i);
        if v.user_agent.trim().is_empty() {
            out.push((here.child_key("user_agent"), "must not be empty".into()));
        }
        if v.domains.is_empty() || v.domains.iter().any(|d| d.trim_matches('.').is_empty()) {
            out.push((
                here.child_key("domains"),
                "needs at least one domain, none empty".into(),
            ));
        }
    }
    let g = &c.waf.geo_blocking;
    if g.enabled && g.geoip_database.is_none() {
        out.push((
            at("waf.geo_blocking.geoip_database"),
            "required when geo_blocking is enabled".into(),
        ));
    }
    let mut rule_names = HashSet::new();
    for (i, r) in c.waf.custom_rules.iter().enumerate() {
        if !rule_names.insert(r.name.as_str()) {
            out.push((
                at("waf.custom_rules").child_index(i).child_key("name"),
                format!("duplicate rule name `{}`", r.name),
            ));
        }
    }
}

/// Linux interface names are at most 15 bytes and contain no `/`, whitespace or `:`.
fn fleet(c: &Config, out: &mut Vec<Finding>) {
    let f = &c.fleet;
    if !f.enabled {
        return;
    }
    if f.redis.host.trim().is_empty() {
        out.push((at("fleet.redis.host"), "must name the Redis host".into()));
    }
    if f.redis.timeout == 0 {
        out.push((at("fleet.redis.timeout"), "must be at least 1 second".into()));
    }
    if f.resync_interval == 0 {
        out.push((at("fleet.resync_interval"), "must be at least 1 second".into()));
    }
    let bad_name = |s: &str| s.is_empty() || s.len() > 200 || s.chars().any(|ch| ch.is_whitespace() || ch.is_control());
    if bad_name(&f.key_prefix) {
        out.push((at("fleet.key_prefix"), "must be 1-200 characters without spaces".into()));
    }
    if f.node_id.as_deref().is_some_and(bad_name) {
        out.push((at("fleet.node_id"), "must be 1-200 characters without spaces".into()));
    }
}

fn xdp(c: &Config, out: &mut Vec<Finding>) {
    let rl = &c.xdp.rate_limit;
    if rl.enabled {
        if rl.packets_per_second == 0 {
            out.push((at("xdp.rate_limit.packets_per_second"), "must be at least 1".into()));
        }
        if rl.burst == 0 {
            out.push((at("xdp.rate_limit.burst"), "must be at least 1".into()));
        }
        if rl.packets_per_second > 1_000_000_000 {
            out.push((
                at("xdp.rate_limit.packets_per_second"),
                "must be at most 1000000000".into(),
            ));
        }
    }
    if rl.ipv6_prefix > 128 {
        out.push((at("xdp.rate_limit.ipv6_prefix"), "must be 0-128".into()));
    }
    if rl.max_sources == 0 {
        out.push((at("xdp.rate_limit.max_sources"), "must be at least 1".into()));
    }
    if !c.xdp.pin_path.is_absolute() {
        out.push((at("xdp.pin_path"), "must be an absolute path".into()));
    }
    let mut seen = HashSet::new();
    for (i, name) in c.xdp.interfaces.iter().enumerate() {
        let p = at("xdp.interfaces").child_index(i);
        let valid = !name.is_empty()
            && name.len() <= 15
            && !name.chars().any(|ch| ch == '/' || ch == ':' || ch.is_whitespace());
        if !valid {
            out.push((p, format!("`{name}` is not a valid interface name")));
        } else if !seen.insert(name.as_str()) {
            out.push((p, format!("interface `{name}` is listed twice")));
        }
    }
}
