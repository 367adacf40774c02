//! Protocol checks on the request head: things different HTTP parsers read differently (the raw material of
//! request smuggling) and encodings no conforming client produces. Not guesses about content: a hit here is
//! certain, and blocks whatever the mode's thresholds.

use super::Hit;
use crate::waf::request::RequestView;

pub fn check(req: &RequestView<'_>) -> Option<Hit> {
    let h = req.headers;
    // Counted without collecting: this runs on every request.
    let cl = h.get_all("content-length");
    let te = h.get_all("transfer-encoding");
    let (cl_count, te_count) = (cl.iter().count(), te.iter().count());
    if cl_count > 0 && te_count > 0 {
        return Some(Hit::new(1.0, 0, 0, "protocol.content_length_with_transfer_encoding"));
    }
    if cl_count > 1 {
        return Some(Hit::new(1.0, 0, 0, "protocol.duplicate_content_length"));
    }
    if let Some(v) = cl.iter().next().map(|v| v.as_bytes())
        && (v.is_empty() || !v.iter().all(u8::is_ascii_digit))
    {
        return Some(Hit::new(1.0, 0, 0, "protocol.invalid_content_length"));
    }
    if te_count > 1
        || te
            .iter()
            .next()
            .is_some_and(|v| !v.as_bytes().eq_ignore_ascii_case(b"chunked"))
    {
        return Some(Hit::new(1.0, 0, 0, "protocol.unusual_transfer_encoding"));
    }
    // Folded a chunk at a time (no early exit inside one) so that the compiler can vectorise the test.
    let control = |b: &u8| (*b < 0x20 && *b != b'\t') || *b == 0x7f;
    for (name, value) in h {
        if value
            .as_bytes()
            .chunks(32)
            .any(|c| c.iter().fold(false, |seen, b| seen | control(b)))
        {
            return Some(Hit::new(1.0, 0, 0, "protocol.control_character_in_header"));
        }
        // A header name that smuggles a second name (`Transfer-Encoding ` variants arrive as valid names
        // only through lenient parsers, but obfuscated duplicates like `content-length\t` are caught here).
        if name.as_str().ends_with(['\t', ' ']) {
            return Some(Hit::new(1.0, 0, 0, "protocol.invalid_header_name"));
        }
    }
    if !req
        .method
        .bytes()
        .all(|b| b.is_ascii_uppercase() || b == b'-' || b == b'_')
    {
        return Some(Hit::new(1.0, 0, 0, "protocol.invalid_method"));
    }
    if req.path.bytes().any(|b| b < 0x21 || b == 0x7f) {
        return Some(Hit::new(1.0, 0, 0, "protocol.control_character_in_path"));
    }
    None
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use http::{HeaderMap, HeaderValue};

    use super::*;

    fn view<'a>(headers: &'a HeaderMap, method: &'a str) -> RequestView<'a> {
        RequestView {
            method,
            path: "/",
            query: "",
            headers,
            body: b"",
            body_truncated: false,
            client: IpAddr::V4(Ipv4Addr::LOCALHOST),
            route: None,
        }
    }

    #[test]
    fn content_length_with_transfer_encoding_is_smuggling() {
        let mut h = HeaderMap::new();
        h.insert("content-length", HeaderValue::from_static("5"));
        h.insert("transfer-encoding", HeaderValue::from_static("chunked"));
        assert!(check(&view(&h, "POST")).is_some());
    }

    #[test]
    fn duplicate_content_length_and_odd_transfer_encoding_are_refused() {
        let mut h = HeaderMap::new();
        h.append("content-length", HeaderValue::from_static("5"));
        h.append("content-length", HeaderValue::from_static("6"));
        assert!(check(&view(&h, "POST")).is_some());
        let mut h = HeaderMap::new();
        h.insert("transfer-encoding", HeaderValue::from_static("chunked, identity"));
        assert!(check(&view(&h, "POST")).is_some());
    }

    #[test]
    fn an_ordinary_request_passes() {
        let mut h = HeaderMap::new();
        h.insert("content-length", HeaderValue::from_static("5"));
        h.insert("user-agent", HeaderValue::from_static("curl/8"));
        assert!(check(&view(&h, "POST")).is_none());
    }
}
