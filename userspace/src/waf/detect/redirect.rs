//! Open redirects: a value that a redirecting endpoint would send the browser off-site with, spelled to slip
//! past the usual "starts with `/`" check — protocol-relative (`//evil`, `/\evil`, `\\evil`), a scheme with
//! mangled slashes (`https:/\evil`, `http:evil`), a trusted-looking name as user info (`trusted.tld@evil`),
//! a numeric host, or whitespace and control characters that browsers drop (`/\t/evil`). A plain absolute
//! URL is how links are shared and passes; only the disguised forms are attacks.

use super::{Ctx, Hit};

pub const FRAGMENTS: &[&str] = &["//", "\\", "http:", "https:", "@", "/\t", "/ /", "%09"];

pub fn detect(s: &str, _ctx: &Ctx) -> Option<Hit> {
    let t = s.trim_start_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
    let lead = s.len() - t.len();
    let b = t.as_bytes();
    let hit = |c: f32, rule: &'static str| Some(Hit::new(c, lead, s.len().min(lead + 60), rule));
    // Slashes and backslashes in any mix, possibly with tabs or spaces between: what browsers read as `//`.
    let mut i = 0;
    let mut slashes = 0;
    let mut backslash = false;
    let mut gap = false;
    while i < b.len() && i < 12 {
        match b[i] {
            b'/' => slashes += 1,
            b'\\' => {
                slashes += 1;
                backslash = true;
            }
            b'\t' | b'\n' | b'\r' | b' ' if slashes > 0 => gap = true,
            _ => break,
        }
        i += 1;
    }
    let host_follows = b
        .get(i)
        .is_some_and(|c| c.is_ascii_alphanumeric() || *c >= 0x80 || matches!(c, b'%' | b'[' | b'@' | b'.'));
    if slashes >= 2 && host_follows {
        let c = if backslash || gap || slashes > 2 { 0.9 } else { 0.85 };
        return hit(c, "redirect.protocol_relative");
    }
    if slashes == 1 && backslash && host_follows && b.first() == Some(&b'\\') {
        return hit(0.82, "redirect.backslash_host");
    }
    // A scheme followed by something other than a clean `//host`.
    for scheme in ["https:", "http:"] {
        if let Some(rest) = t.strip_prefix(scheme) {
            let r = rest.as_bytes();
            if !rest.starts_with("//") || rest.starts_with("///") || rest.starts_with("//\\") {
                let starts_hosty = r
                    .first()
                    .is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, b'\\' | b'/' | b'\t' | b'%'));
                if starts_hosty {
                    return hit(0.88, "redirect.mangled_scheme");
                }
            }
            let authority = rest
                .trim_start_matches(['/', '\\'])
                .split(['/', '?', '#', '\\'])
                .next()
                .unwrap_or("");
            if let Some((user, host)) = authority.rsplit_once('@')
                && (user.contains('.') || user.is_empty() || user.contains(';'))
                && !host.is_empty()
            {
                return hit(0.88, "redirect.userinfo_host");
            }
            let host = authority.rsplit('@').next().unwrap_or(authority);
            let host = host.split(':').next().unwrap_or(host);
            if !host.is_empty() && numeric_host(host) {
                return hit(0.85, "redirect.numeric_host");
            }
            if authority
                .bytes()
                .any(|c| c.is_ascii_whitespace() || c.is_ascii_control() || matches!(c, b'\'' | b'"' | b'>' | b'<'))
            {
                return hit(0.85, "redirect.odd_authority");
            }
        }
    }
    None
}

/// A host written as a number (decimal dword, octal or hex parts): never a real site's name.
fn numeric_host(h: &str) -> bool {
    let parts: Vec<&str> = h.split('.').collect();
    let numeric = parts.iter().all(|p| {
        !p.is_empty()
            && (p.bytes().all(|c| c.is_ascii_digit())
                || p.strip_prefix("0x")
                    .is_some_and(|x| x.bytes().all(|c| c.is_ascii_hexdigit())))
    });
    // A dotted quad of plain decimals is an ordinary IP address literal; odd forms are the trick.
    let plain_quad = parts.len() == 4
        && parts
            .iter()
            .all(|p| p.len() <= 3 && !(p.len() > 1 && p.starts_with('0')) && !p.starts_with("0x"));
    numeric && !plain_quad
}

#[cfg(test)]
mod tests {
    use crate::waf::detect::test_support::confidence;
    use crate::waf::family::Family;

    fn c(s: &str) -> f32 {
        confidence(Family::OpenRedirect, s)
    }

    #[test]
    fn disguised_off_site_targets_are_open_redirects() {
        for s in [
            "//evil.example",
            "/\\evil.example",
            "\\\\evil.example",
            "https:/\\evil.example",
            "http:evil.example",
            "https://trusted.example@evil.example/",
            "http://3627734734/",
            "/%09/evil.example",
            "///evil.example",
        ] {
            assert!(c(s) >= 0.8, "{s}: {}", c(s));
        }
    }

    #[test]
    fn local_paths_and_plain_urls_pass() {
        for s in [
            "/account/orders",
            "https://shop.example.com/cart",
            "http://192.168.1.10/",
            "/a//b",
            "profile",
        ] {
            assert!(c(s) < 0.8, "{s}: {}", c(s));
        }
    }
}
