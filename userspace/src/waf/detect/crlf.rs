//! CRLF injection (HTTP response splitting and header injection): a CR or LF in a value followed by something
//! a response or request parser would take for a header line (`Set-Cookie:`, `Location:`), and any CR or LF
//! in the request path, where no legitimate request has one. Also the Unicode characters some stacks
//! truncate to CR/LF (U+560A, U+560D). Line breaks in text areas followed by prose pass.

use super::{Ctx, Hit};
use crate::waf::targets::Location;

pub const FRAGMENTS: &[&str] = &["\r", "\n", "\u{560a}", "\u{560d}"];

const HEADERS: &[&str] = &[
    "set-cookie",
    "location",
    "content-type",
    "content-length",
    "content-disposition",
    "refresh",
    "x-xss-protection",
    "access-control-allow-origin",
    "access-control-allow-credentials",
    "cache-control",
    "host",
    "cookie",
    "transfer-encoding",
    "x-forwarded-for",
    "x-forwarded-host",
    "link",
    "content-security-policy",
    "http/1.",
    "http/2",
    "connection",
    "upgrade",
    "x-frame-options",
    "content-encoding",
    "authorization",
    "referer",
    "vary",
    "expires",
    "etag",
    "last-modified",
    "server",
    "x-powered-by",
    "strict-transport-security",
    "x-injected",
];

pub fn detect(s: &str, ctx: &Ctx) -> Option<Hit> {
    let b = s.as_bytes();
    let first = b.iter().position(|c| matches!(c, b'\r' | b'\n'));
    let unicode = s.find(['\u{560a}', '\u{560d}']);
    let at = match (first, unicode) {
        (Some(a), Some(u)) => a.min(u),
        (Some(a), None) => a,
        (None, Some(u)) => u,
        (None, None) => return None,
    };
    if ctx.location == Location::Path {
        return Some(Hit::new(0.92, at, s.len().min(at + 60), "crlf.in_path"));
    }
    // Each line after a break: does it start like a header?
    let mut best: Option<Hit> = None;
    for (i, line) in s
        .split(['\r', '\n', '\u{560a}', '\u{560d}'])
        .enumerate()
        .skip(1)
        .take(32)
    {
        let t = line.trim_start_matches([' ', '\t']);
        if let Some(h) = HEADERS.iter().find(|h| t.starts_with(**h)) {
            let after = &t[h.len()..];
            if h.starts_with("http/") || after.trim_start().starts_with(':') {
                let start = s.find(line).unwrap_or(at).saturating_sub(1);
                best = Hit::max(
                    best,
                    Hit::new(0.92, start, s.len().min(start + 60), "crlf.header_injection"),
                );
                let _ = i;
                break;
            }
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use crate::waf::detect::test_support::{confidence, confidence_at};
    use crate::waf::family::Family;
    use crate::waf::targets::Location;

    #[test]
    fn header_lines_after_a_line_break_are_crlf_injection() {
        assert!(confidence(Family::CrlfInjection, "x%0d%0aSet-Cookie:crlf=injection") >= 0.9);
        assert!(confidence(Family::CrlfInjection, "%25250aLocation: http://evil") >= 0.9);
        assert!(confidence(Family::CrlfInjection, "%E5%98%8A%E5%98%8DSet-Cookie:x=1") >= 0.9);
    }

    #[test]
    fn any_line_break_in_the_path_is_crlf_injection() {
        assert!(confidence_at(Family::CrlfInjection, "/%0d%0aanything", Location::Path) >= 0.9);
    }

    #[test]
    fn multi_line_text_passes() {
        assert!(confidence(Family::CrlfInjection, "Great product!%0D%0APros: cheap%0D%0ACons: none") < 0.8);
    }
}
