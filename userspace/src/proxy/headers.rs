//! Header rewriting between client and upstream: hop-by-hop headers (RFC 9110 §7.6.1) never cross the proxy,
//! the upstream learns the client's address, scheme and host through X-Forwarded-* and `Forwarded`
//! (RFC 7239), and routes add, set and remove headers on requests and responses.
//!
//! The upstream request's header block is written in one pass over the client's headers
//! (`write_request_headers`): hop-by-hop fields are skipped and the forwarding fields are appended as the
//! bytes go out, instead of being removed from and inserted into the header map first. That pass was a fifth
//! of the proxy's user-space CPU per request when done through the map.

use std::net::IpAddr;

use bytes::{BufMut, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};

use crate::config::schema::HeaderRewrite;

/// Fields that describe one connection and never cross a proxy (RFC 9110 §7.6.1); `upgrade` is kept on a
/// WebSocket upgrade. `name` as it arrived, in any case.
pub fn is_hop_by_hop(name: &[u8], keep_upgrade: bool) -> bool {
    let is = |n: &[u8]| name.eq_ignore_ascii_case(n);
    match name.len() {
        2 => is(b"te"),
        7 => is(b"trailer") || (!keep_upgrade && is(b"upgrade")),
        10 => is(b"connection") || is(b"keep-alive"),
        16 => is(b"proxy-connection"),
        17 => is(b"transfer-encoding"),
        18 => is(b"proxy-authenticate"),
        19 => is(b"proxy-authorization"),
        _ => false,
    }
}

pub const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
pub const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
pub const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// What this hop tells the upstream about the request it forwards.
pub struct Forwarding<'a> {
    /// The address this hop received the request from.
    pub previous_hop: IpAddr,
    pub scheme: &'static str,
    pub request_id: &'a HeaderValue,
    /// An upgrade handshake keeps `Upgrade` and says `Connection: upgrade`.
    pub upgrade: bool,
    /// Forwarding fields the route's own rewrite sets or removes: those are sent as the rewrite left them.
    pub overridden: &'a Overrides,
}

/// Which forwarding fields a route's request rewrite takes over.
#[derive(Clone, Copy, Debug, Default)]
pub struct Overrides {
    pub x_forwarded_for: bool,
    pub forwarded: bool,
    pub x_forwarded_proto: bool,
    pub x_forwarded_host: bool,
    pub request_id: bool,
}

/// Writes the header block of the upstream request (without framing fields and the final CRLF): the client's
/// headers minus hop-by-hop ones and minus the fields named in `Connection`, then X-Forwarded-For and
/// `Forwarded` with this hop appended, X-Forwarded-Proto, X-Forwarded-Host and X-Request-Id.
pub fn write_request_headers(out: &mut BytesMut, headers: &HeaderMap, fwd: &Forwarding<'_>) {
    // What the main pass needs to know beforehand, in one walk over the fields (a map lookup per name hashes
    // it; comparing standard names is a compare of two small integers).
    let mut host: Option<&HeaderValue> = None;
    let mut cookies = 0;
    let mut has_connection = false;
    for (name, value) in headers {
        if *name == header::HOST {
            host.get_or_insert(value);
        } else if *name == header::COOKIE {
            cookies += 1;
        } else if *name == header::CONNECTION {
            has_connection = true;
        }
    }
    let named = if has_connection {
        connection_named(headers)
    } else {
        Vec::new()
    };
    let mut prior_xff: Option<&HeaderValue> = None;
    let mut extra_xff = false;
    let mut prior_forwarded: Option<&HeaderValue> = None;
    let mut extra_forwarded = false;
    let split_cookies = cookies > 1;
    let mut cookies_written = false;
    let ov = fwd.overridden;
    for (name, value) in headers {
        match name.as_str() {
            // Framing is written by the HTTP/1.1 encoder; the rest describe the client's connection.
            "content-length"
            | "transfer-encoding"
            | "connection"
            | "keep-alive"
            | "proxy-connection"
            | "te"
            | "trailer"
            | "proxy-authorization"
            | "proxy-authenticate" => continue,
            "upgrade" if !fwd.upgrade => continue,
            "x-forwarded-for" if !ov.x_forwarded_for => {
                extra_xff |= prior_xff.is_some();
                prior_xff.get_or_insert(value);
                continue;
            }
            "forwarded" if !ov.forwarded => {
                extra_forwarded |= prior_forwarded.is_some();
                prior_forwarded.get_or_insert(value);
                continue;
            }
            "x-forwarded-proto" if !ov.x_forwarded_proto => continue,
            "x-forwarded-host" if !ov.x_forwarded_host => continue,
            "x-request-id" if !ov.request_id => continue,
            // HTTP/2 may split cookies into several fields; HTTP/1.1 wants one (RFC 9113 §8.2.3).
            "cookie" if split_cookies => {
                if !cookies_written {
                    cookies_written = true;
                    out.put_slice(b"cookie: ");
                    for (i, v) in headers.get_all(header::COOKIE).iter().enumerate() {
                        if i > 0 {
                            out.put_slice(b"; ");
                        }
                        out.put_slice(v.as_bytes());
                    }
                    out.put_slice(b"\r\n");
                }
                continue;
            }
            _ => {}
        }
        // `Connection: upgrade` names Upgrade, which an upgrade handshake must keep.
        if !named.is_empty()
            && named.iter().any(|n| n.eq_ignore_ascii_case(name.as_str()))
            && !(fwd.upgrade && name == header::UPGRADE)
        {
            continue;
        }
        put_field(out, name.as_str().as_bytes(), value.as_bytes());
    }

    let host = host.filter(|h| !h.is_empty());
    if !ov.x_forwarded_for {
        out.put_slice(b"x-forwarded-for: ");
        if let Some(prior) = prior_xff {
            put_list(out, headers, &X_FORWARDED_FOR, prior, extra_xff);
            out.put_slice(b", ");
        }
        put_ip(out, fwd.previous_hop);
        out.put_slice(b"\r\n");
    }
    if !ov.forwarded {
        out.put_slice(b"forwarded: ");
        if let Some(prior) = prior_forwarded {
            put_list(out, headers, &header::FORWARDED, prior, extra_forwarded);
            out.put_slice(b", ");
        }
        out.put_slice(b"for=");
        match fwd.previous_hop {
            IpAddr::V4(_) => put_ip(out, fwd.previous_hop),
            IpAddr::V6(_) => {
                out.put_slice(b"\"[");
                put_ip(out, fwd.previous_hop);
                out.put_slice(b"]\"");
            }
        }
        out.put_slice(b";proto=");
        out.put_slice(fwd.scheme.as_bytes());
        // Only a host that is a valid token goes into `Forwarded`; anything else would need quoting rules that
        // upstream parsers disagree on.
        if let Some(h) = host.filter(|h| {
            h.as_bytes()
                .iter()
                .all(|&b| b.is_ascii_graphic() && b != b'"' && b != b';' && b != b',')
        }) {
            out.put_slice(b";host=");
            out.put_slice(h.as_bytes());
        }
        out.put_slice(b"\r\n");
    }
    if !ov.x_forwarded_proto {
        put_field(out, b"x-forwarded-proto", fwd.scheme.as_bytes());
    }
    if !ov.x_forwarded_host
        && let Some(h) = host
    {
        put_field(out, b"x-forwarded-host", h.as_bytes());
    }
    if !ov.request_id {
        put_field(out, b"x-request-id", fwd.request_id.as_bytes());
    }
    if fwd.upgrade {
        out.put_slice(b"connection: upgrade\r\n");
    }
}

/// Field names listed in the `Connection` header(s), which are hop-by-hop too.
fn connection_named(headers: &HeaderMap) -> Vec<&str> {
    let mut named = Vec::new();
    for v in headers.get_all(header::CONNECTION) {
        for token in v.to_str().unwrap_or("").split(',').map(str::trim) {
            if !token.is_empty() && !token.eq_ignore_ascii_case("close") && !token.eq_ignore_ascii_case("keep-alive") {
                named.push(token);
            }
        }
    }
    named
}

/// A list-valued field as one line: the first value, or every value joined when the client sent several.
fn put_list(out: &mut BytesMut, headers: &HeaderMap, name: &HeaderName, first: &HeaderValue, several: bool) {
    if !several {
        out.put_slice(first.as_bytes());
        return;
    }
    for (i, v) in headers.get_all(name).iter().enumerate() {
        if i > 0 {
            out.put_slice(b", ");
        }
        out.put_slice(v.as_bytes());
    }
}

pub fn put_field(out: &mut BytesMut, name: &[u8], value: &[u8]) {
    out.put_slice(name);
    out.put_slice(b": ");
    out.put_slice(value);
    out.put_slice(b"\r\n");
}

/// The address in its usual text form; IPv4, by far the common case, without the formatting machinery.
fn put_ip(out: &mut BytesMut, ip: IpAddr) {
    match ip {
        IpAddr::V4(v4) => {
            // Rendered on the stack and copied once: a put per digit checked the buffer's room each time.
            let mut text = [0u8; 15];
            let mut len = 0;
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    text[len] = b'.';
                    len += 1;
                }
                if octet >= 100 {
                    text[len] = b'0' + octet / 100;
                    len += 1;
                }
                if octet >= 10 {
                    text[len] = b'0' + octet / 10 % 10;
                    len += 1;
                }
                text[len] = b'0' + octet % 10;
                len += 1;
            }
            out.put_slice(&text[..len]);
        }
        IpAddr::V6(v6) => {
            use std::fmt::Write;
            let _ = write!(out, "{v6}");
        }
    }
}

/// A route's header changes, compiled once when the route table is built.
#[derive(Debug, Default)]
pub struct Rewrite {
    remove: Vec<HeaderName>,
    set: Vec<(HeaderName, HeaderValue)>,
    add: Vec<(HeaderName, HeaderValue)>,
}

impl Rewrite {
    /// Names and values were checked by `config::validate`; anything still invalid is skipped.
    pub fn compile(changes: &HeaderRewrite) -> Self {
        let pair = |(n, v): (&String, &String)| {
            Some((
                HeaderName::from_bytes(n.as_bytes()).ok()?,
                HeaderValue::from_str(v).ok()?,
            ))
        };
        Self {
            remove: changes
                .remove
                .iter()
                .filter_map(|n| HeaderName::from_bytes(n.as_bytes()).ok())
                .collect(),
            set: changes.set.iter().filter_map(pair).collect(),
            add: changes.add.iter().filter_map(pair).collect(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.remove.is_empty() && self.set.is_empty() && self.add.is_empty()
    }

    /// Whether the rewrite sets or removes `name` (so this hop must not generate its own value for it).
    pub fn touches(&self, name: &HeaderName) -> bool {
        self.remove.contains(name) || self.set.iter().chain(&self.add).any(|(n, _)| n == name)
    }

    /// Which forwarding fields this rewrite takes over.
    pub fn overrides(&self) -> Overrides {
        Overrides {
            x_forwarded_for: self.touches(&X_FORWARDED_FOR),
            forwarded: self.touches(&header::FORWARDED),
            x_forwarded_proto: self.touches(&X_FORWARDED_PROTO),
            x_forwarded_host: self.touches(&X_FORWARDED_HOST),
            request_id: self.touches(&super::request_id::HEADER),
        }
    }

    /// Remove, then set (replace), then add (append).
    pub fn apply(&self, headers: &mut HeaderMap) {
        for name in &self.remove {
            headers.remove(name);
        }
        for (name, value) in &self.set {
            headers.insert(name.clone(), value.clone());
        }
        for (name, value) in &self.add {
            headers.append(name.clone(), value.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(headers: &HeaderMap, client: &str, overridden: &Overrides) -> String {
        let id = HeaderValue::from_static("req-1");
        let fwd = Forwarding {
            previous_hop: client.parse().expect("valid address"),
            scheme: "http",
            request_id: &id,
            upgrade: false,
            overridden,
        };
        let mut out = BytesMut::new();
        write_request_headers(&mut out, headers, &fwd);
        String::from_utf8(out.to_vec()).expect("ASCII")
    }

    #[test]
    fn hop_by_hop_names_are_found_in_any_case_and_nothing_else_is() {
        for (name, hop, hop_on_upgrade) in [
            ("connection", true, true),
            ("Keep-Alive", true, true),
            ("PROXY-CONNECTION", true, true),
            ("proxy-authenticate", true, true),
            ("Proxy-Authorization", true, true),
            ("TE", true, true),
            ("trailer", true, true),
            ("Transfer-Encoding", true, true),
            ("Upgrade", true, false),
            ("content-type", false, false),
            ("x-connection", false, false),
            ("tex", false, false),
            ("connectionx", false, false),
        ] {
            assert_eq!(is_hop_by_hop(name.as_bytes(), false), hop, "{name}");
            assert_eq!(
                is_hop_by_hop(name.as_bytes(), true),
                hop_on_upgrade,
                "{name} on upgrade"
            );
        }
    }

    #[test]
    fn connection_named_headers_and_hop_by_hop_are_not_forwarded() {
        let mut h = HeaderMap::new();
        h.insert(header::CONNECTION, HeaderValue::from_static("close, x-secret"));
        h.insert("x-secret", HeaderValue::from_static("1"));
        h.insert(header::TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert(header::TE, HeaderValue::from_static("trailers"));
        h.insert(header::UPGRADE, HeaderValue::from_static("h2c"));
        h.insert("x-keep", HeaderValue::from_static("1"));
        let out = written(&h, "192.0.2.9", &Overrides::default());
        for gone in [
            "connection:",
            "x-secret",
            "transfer-encoding",
            "keep-alive",
            "te:",
            "upgrade",
        ] {
            assert!(!out.contains(gone), "{gone} was forwarded:\n{out}");
        }
        assert!(out.contains("x-keep: 1\r\n"));
    }

    #[test]
    fn this_hop_is_appended_to_forwarded_for_and_forwarded() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("example.com"));
        h.append("x-forwarded-for", HeaderValue::from_static("198.51.100.1"));
        h.append("x-forwarded-for", HeaderValue::from_static("198.51.100.2"));
        h.insert("x-forwarded-proto", HeaderValue::from_static("spoofed"));
        h.insert("x-request-id", HeaderValue::from_static("spoofed"));
        let out = written(&h, "192.0.2.9", &Overrides::default());
        assert!(
            out.contains("x-forwarded-for: 198.51.100.1, 198.51.100.2, 192.0.2.9\r\n"),
            "{out}"
        );
        assert!(out.contains("x-forwarded-proto: http\r\n"), "{out}");
        assert!(out.contains("x-forwarded-host: example.com\r\n"), "{out}");
        assert!(
            out.contains("forwarded: for=192.0.2.9;proto=http;host=example.com\r\n"),
            "{out}"
        );
        assert!(out.contains("x-request-id: req-1\r\n"), "{out}");
        assert!(!out.contains("spoofed"), "{out}");
        let v6 = written(&HeaderMap::new(), "2001:db8::1", &Overrides::default());
        assert!(v6.contains("forwarded: for=\"[2001:db8::1]\";proto=http\r\n"), "{v6}");
        assert!(v6.contains("x-forwarded-for: 2001:db8::1\r\n"), "{v6}");
    }

    #[test]
    fn an_upgrade_handshake_keeps_upgrade_and_says_connection_upgrade() {
        let mut h = HeaderMap::new();
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
        let id = HeaderValue::from_static("req-1");
        let overridden = Overrides::default();
        let fwd = Forwarding {
            previous_hop: "192.0.2.9".parse().expect("valid"),
            scheme: "http",
            request_id: &id,
            upgrade: true,
            overridden: &overridden,
        };
        let mut out = BytesMut::new();
        write_request_headers(&mut out, &h, &fwd);
        let out = String::from_utf8(out.to_vec()).expect("ASCII");
        assert!(out.contains("upgrade: websocket\r\n"), "{out}");
        assert!(out.contains("connection: upgrade\r\n"), "{out}");
        assert!(
            !out.contains("Upgrade\r\n"),
            "the client's own Connection field is not passed on: {out}"
        );
    }

    #[test]
    fn ipv4_addresses_are_written_like_display() {
        for ip in ["0.0.0.0", "1.2.3.4", "10.200.30.255", "100.9.99.1"] {
            let mut out = BytesMut::new();
            put_ip(&mut out, ip.parse().expect("valid"));
            assert_eq!(&out[..], ip.as_bytes());
        }
    }

    #[test]
    fn a_route_that_sets_a_forwarding_field_keeps_its_own_value() {
        let changes = HeaderRewrite {
            set: [("x-forwarded-for".to_string(), "fixed".to_string())].into(),
            ..HeaderRewrite::default()
        };
        let rewrite = Rewrite::compile(&changes);
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", HeaderValue::from_static("198.51.100.1"));
        rewrite.apply(&mut h);
        let out = written(&h, "192.0.2.9", &rewrite.overrides());
        assert!(out.contains("x-forwarded-for: fixed\r\n"), "{out}");
        assert!(!out.contains("192.0.2.9, "), "{out}");
    }

    #[test]
    fn rewrites_remove_then_set_then_add() {
        let mut h = HeaderMap::new();
        h.insert("x-old", HeaderValue::from_static("1"));
        h.insert("x-set", HeaderValue::from_static("before"));
        let changes = HeaderRewrite {
            add: [("x-add".to_string(), "a".to_string())].into(),
            set: [("x-set".to_string(), "after".to_string())].into(),
            remove: vec!["x-old".into()],
        };
        Rewrite::compile(&changes).apply(&mut h);
        assert!(h.get("x-old").is_none());
        assert_eq!(h["x-set"], "after");
        assert_eq!(h["x-add"], "a");
    }
}
