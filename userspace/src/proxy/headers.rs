//! Header rewriting between client and upstream: hop-by-hop headers (RFC 9110 §7.6.1) never cross the proxy,
//! and the upstream learns the client's address, scheme and host through X-Forwarded-*.

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

/// Headers that describe one connection, not the message.
const HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
];

/// Removes hop-by-hop headers, including any the Connection header names. `Upgrade` is kept only when
/// `keep_upgrade` (a WebSocket handshake passes it through).
pub fn strip_hop_by_hop(headers: &mut HeaderMap, keep_upgrade: bool) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .filter(|name| !(keep_upgrade && name == header::UPGRADE))
        .collect();
    for name in named.iter().chain(HOP_BY_HOP.iter()) {
        headers.remove(name);
    }
    if !keep_upgrade {
        headers.remove(header::UPGRADE);
    }
}

/// Appends the client to X-Forwarded-For and `Forwarded` (RFC 7239), and sets X-Forwarded-Proto and
/// X-Forwarded-Host.
pub fn add_forwarded(headers: &mut HeaderMap, client_ip: std::net::IpAddr, scheme: &'static str, host: Option<&str>) {
    let for_node = match client_ip {
        std::net::IpAddr::V4(v4) => v4.to_string(),
        std::net::IpAddr::V6(v6) => format!("\"[{v6}]\""),
    };
    let mut element = format!("for={for_node};proto={scheme}");
    if let Some(h) = host.filter(|h| {
        h.bytes()
            .all(|b| b.is_ascii_graphic() && b != b'"' && b != b';' && b != b',')
    }) {
        element.push_str(";host=");
        element.push_str(h);
    }
    let forwarded = match headers.get(header::FORWARDED).and_then(|v| v.to_str().ok()) {
        Some(prior) if !prior.trim().is_empty() => format!("{prior}, {element}"),
        _ => element,
    };
    if let Ok(v) = HeaderValue::from_str(&forwarded) {
        headers.insert(header::FORWARDED, v);
    }
    let client = client_ip.to_string();
    let xff = match headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
        Some(prior) if !prior.trim().is_empty() => format!("{prior}, {client}"),
        _ => client,
    };
    if let Ok(v) = HeaderValue::from_str(&xff) {
        headers.insert("x-forwarded-for", v);
    }
    headers.insert("x-forwarded-proto", HeaderValue::from_static(scheme));
    if let Some(v) = host.and_then(|h| HeaderValue::from_str(h).ok()) {
        headers.insert("x-forwarded-host", v);
    }
}

/// Applies a route's header changes: remove, then set (replace), then add (append).
pub fn rewrite(headers: &mut HeaderMap, changes: &crate::config::schema::HeaderRewrite) {
    for name in &changes.remove {
        if let Ok(n) = HeaderName::from_bytes(name.as_bytes()) {
            headers.remove(n);
        }
    }
    for (name, value) in &changes.set {
        if let (Ok(n), Ok(v)) = (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(value)) {
            headers.insert(n, v);
        }
    }
    for (name, value) in &changes.add {
        if let (Ok(n), Ok(v)) = (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(value)) {
            headers.append(n, v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_named_headers_and_hop_by_hop_are_removed() {
        let mut h = HeaderMap::new();
        h.insert(header::CONNECTION, HeaderValue::from_static("close, x-secret"));
        h.insert("x-secret", HeaderValue::from_static("1"));
        h.insert(header::TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
        h.insert("x-keep", HeaderValue::from_static("1"));
        strip_hop_by_hop(&mut h, false);
        assert!(h.get("x-secret").is_none() && h.get(header::CONNECTION).is_none());
        assert!(h.get(header::TRANSFER_ENCODING).is_none());
        assert!(h.get("x-keep").is_some());
    }

    #[test]
    fn forwarded_for_is_appended() {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", HeaderValue::from_static("198.51.100.1"));
        add_forwarded(&mut h, "192.0.2.9".parse().expect("valid"), "http", Some("example.com"));
        assert_eq!(h["x-forwarded-for"], "198.51.100.1, 192.0.2.9");
        assert_eq!(h["x-forwarded-proto"], "http");
        assert_eq!(h["x-forwarded-host"], "example.com");
        assert_eq!(h["forwarded"], "for=192.0.2.9;proto=http;host=example.com");
        let mut v6 = HeaderMap::new();
        add_forwarded(&mut v6, "2001:db8::1".parse().expect("valid"), "https", None);
        assert_eq!(v6["forwarded"], "for=\"[2001:db8::1]\";proto=https");
    }

    #[test]
    fn rewrites_remove_then_set_then_add() {
        let mut h = HeaderMap::new();
        h.insert("x-old", HeaderValue::from_static("1"));
        h.insert("x-set", HeaderValue::from_static("before"));
        let changes = crate::config::schema::HeaderRewrite {
            add: [("x-add".to_string(), "a".to_string())].into(),
            set: [("x-set".to_string(), "after".to_string())].into(),
            remove: vec!["x-old".into()],
        };
        rewrite(&mut h, &changes);
        assert!(h.get("x-old").is_none());
        assert_eq!(h["x-set"], "after");
        assert_eq!(h["x-add"], "a");
    }
}
