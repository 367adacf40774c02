//! Server-side request forgery: a URL in a value whose host is the server itself, a private network or a
//! cloud metadata endpoint — in any of the spellings address parsers accept (`127.1`, `2130706433`,
//! `0x7f000001`, `0177.0.0.1`, `[::ffff:127.0.0.1]`, `localtest.me`) — or a URL with a scheme that makes an
//! HTTP client speak another protocol (`gopher://`, `dict://`). URLs to public hosts pass.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::{Ctx, Hit};

pub const FRAGMENTS: &[&str] = &["://", "//", "\\\\"];

/// Schemes that turn an HTTP fetch into a raw protocol client.
const PROTOCOL_SCHEMES: &[&str] = &[
    "gopher", "dict", "ldap", "ldaps", "tftp", "jar", "netdoc", "sftp", "telnet", "smb", "rmi", "redis", "mysql",
    "imap", "pop3", "smtp",
];

/// Host names that resolve to loopback, or are metadata services.
const INTERNAL_NAMES: &[&str] = &[
    "localhost",
    "localhost.localdomain",
    "ip6-localhost",
    "ip6-loopback",
    "metadata",
    "metadata.google.internal",
    "instance-data",
    "instance-data.ec2.internal",
    "metadata.azure.com",
    "kubernetes.default",
    "kubernetes.default.svc",
    "localtest.me",
    "lvh.me",
    "vcap.me",
    "spoofed.burpcollaborator.net",
    "0",
    "broadcasthost",
];

pub fn detect(s: &str, _ctx: &Ctx) -> Option<Hit> {
    let mut best: Option<Hit> = None;
    let mut from = 0;
    let mut seen = 0;
    while let Some(p) = s[from..].find("//").or_else(|| s[from..].find("\\\\")) {
        let at = from + p;
        from = at + 2;
        seen += 1;
        if seen > 8 {
            break;
        }
        let scheme: &str = {
            let before = s[..at].strip_suffix(':').unwrap_or("");
            let start = before
                .rfind(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')))
                .map_or(0, |i| i + 1);
            &before[start..]
        };
        // A bare `//host` only counts at the start of the value (protocol-relative URL).
        if scheme.is_empty() && at != 0 {
            continue;
        }
        let rest = &s[at + 2..];
        let authority_end = rest.find(['/', '?', '#', '\\', ' ']).unwrap_or(rest.len());
        let authority = &rest[..authority_end];
        let host_port = authority.rsplit('@').next().unwrap_or(authority);
        let host = strip_port(host_port);
        let end = (at + 2 + authority_end).min(s.len());
        let start = at.saturating_sub(scheme.len() + 1);
        if PROTOCOL_SCHEMES.contains(&scheme) {
            best = Hit::max(best, Hit::new(0.92, start, end, "ssrf.protocol_scheme"));
        }
        if internal_host(host) {
            let c = if scheme.is_empty()
                || matches!(scheme, "http" | "https" | "ftp" | "ws" | "wss")
                || PROTOCOL_SCHEMES.contains(&scheme)
            {
                0.92
            } else {
                0.7
            };
            best = Hit::max(best, Hit::new(c, start, end, "ssrf.internal_host"));
        }
    }
    best
}

fn strip_port(h: &str) -> &str {
    if let Some(inner) = h.strip_prefix('[') {
        return inner.split(']').next().unwrap_or(inner);
    }
    // Only an IPv6 literal has colons inside; anything else ends at the first one (`127.1:80:\\@x`).
    h.split(':').next().unwrap_or(h)
}

/// Whether `host` names this machine, a private network or a metadata endpoint.
pub fn internal_host(host: &str) -> bool {
    let host = host.trim_end_matches('.');
    if host.is_empty() {
        return false;
    }
    if INTERNAL_NAMES.contains(&host) {
        return true;
    }
    // Wildcard DNS services that echo an address back (`127.0.0.1.nip.io`).
    for suffix in [
        ".nip.io",
        ".xip.io",
        ".sslip.io",
        ".localtest.me",
        ".lvh.me",
        ".localhost",
        ".internal",
        ".local",
    ] {
        if let Some(prefix) = host.strip_suffix(suffix) {
            if suffix.starts_with(".l") || suffix == ".internal" {
                return true;
            }
            return prefix.split(['.', '-']).filter(|p| !p.is_empty()).count() >= 4
                && parse_ipv4_loose(&prefix.replace('-', ".")).is_some_and(private_v4)
                || prefix.ends_with("127.0.0.1");
        }
    }
    // A name that ends in an internal dotted quad (`example.com.127.0.0.1`) resolves to it on many stacks.
    let labels: Vec<&str> = host.rsplitn(5, '.').collect();
    if labels.len() == 5
        && labels[..4]
            .iter()
            .all(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_digit()))
    {
        let quad = format!("{}.{}.{}.{}", labels[3], labels[2], labels[1], labels[0]);
        if parse_ipv4_loose(&quad).is_some_and(private_v4) {
            return true;
        }
    }
    if let Ok(v6) = host.parse::<Ipv6Addr>() {
        return private_v6(v6);
    }
    parse_ipv4_loose(host).is_some_and(private_v4)
}

fn private_v4(ip: Ipv4Addr) -> bool {
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.octets()[0] == 0
        || (ip.octets()[0] == 100 && (64..128).contains(&ip.octets()[1]))
        || ip == Ipv4Addr::new(100, 100, 100, 200)
        || ip.is_broadcast()
}

fn private_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return private_v4(v4);
    }
    ip.is_loopback()
        || ip.is_unspecified()
        || (ip.segments()[0] & 0xfe00) == 0xfc00
        || (ip.segments()[0] & 0xffc0) == 0xfe80
}

/// IPv4 in the forms `inet_aton` accepts: 1-4 parts, each decimal, octal (`0` prefix) or hex (`0x`).
fn parse_ipv4_loose(h: &str) -> Option<Ipv4Addr> {
    if h.is_empty() || !h.bytes().all(|b| b.is_ascii_hexdigit() || b == b'.' || b == b'x') {
        return None;
    }
    let parts: Vec<&str> = h.split('.').collect();
    if parts.len() > 4 || parts.iter().any(|p| p.is_empty()) {
        return None;
    }
    let nums: Vec<u64> = parts.iter().map(|p| parse_part(p)).collect::<Option<_>>()?;
    let v: u64 = match nums.as_slice() {
        [a] => *a,
        [a, b] if *a < 256 && *b < (1 << 24) => (a << 24) | b,
        [a, b, c] if *a < 256 && *b < 256 && *c < (1 << 16) => (a << 24) | (b << 16) | c,
        [a, b, c, d] if [a, b, c, d].iter().all(|x| **x < 256) => (a << 24) | (b << 16) | (c << 8) | d,
        _ => return None,
    };
    u32::try_from(v).ok().map(Ipv4Addr::from)
}

fn parse_part(p: &str) -> Option<u64> {
    if let Some(hex) = p.strip_prefix("0x") {
        return if hex.is_empty() {
            Some(0)
        } else {
            u64::from_str_radix(hex, 16).ok()
        };
    }
    if p.len() > 1 && p.starts_with('0') {
        return u64::from_str_radix(p, 8).ok();
    }
    p.parse().ok()
}

/// Whether `ip` is internal (for callers holding a parsed address).
pub fn internal_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => private_v4(v4),
        IpAddr::V6(v6) => private_v6(v6),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::waf::detect::test_support::confidence;
    use crate::waf::family::Family;

    fn c(s: &str) -> f32 {
        confidence(Family::Ssrf, s)
    }

    #[test]
    fn loopback_private_and_metadata_urls_are_ssrf_in_every_spelling() {
        for s in [
            "http://127.0.0.1/admin",
            "http://127.1:22",
            "http://2130706433/",
            "http://0x7f000001/",
            "http://0177.0.0.1/",
            "http://[::1]:8080/",
            "http://[::ffff:127.0.0.1]/",
            "http://169.254.169.254/latest/meta-data/",
            "http://metadata.google.internal/computeMetadata/v1/",
            "http://localhost:6379/",
            "gopher://example.com:6379/_INFO",
            "http://10.0.0.5/",
            "http://user@192.168.1.1/",
            "http://127.0.0.1.nip.io/",
        ] {
            assert!(c(s) >= 0.9, "{s}: {}", c(s));
        }
    }

    #[test]
    fn public_urls_pass() {
        for s in [
            "https://www.example.com/page?x=1",
            "see https://docs.rs/regex",
            "http://8.8.8.8/",
            "//cdn.example.net/a.js",
        ] {
            assert!(c(s) < 0.8, "{s}: {}", c(s));
        }
    }

    #[test]
    fn loose_ipv4_forms_parse_like_inet_aton() {
        assert_eq!(parse_ipv4_loose("127.1"), Some(Ipv4Addr::new(127, 0, 0, 1)));
        assert_eq!(parse_ipv4_loose("3232235777"), Some(Ipv4Addr::new(192, 168, 1, 1)));
        assert_eq!(parse_ipv4_loose("example"), None);
    }
}
