//! An upstream response's header fields as they arrived: spans into the response head's bytes, carried with
//! the response's body (`proxy::response_body`) instead of in a `HeaderMap`.
//!
//! Why: building a `HeaderMap` from an upstream head (a name lookup, a value check and a hash insert per field)
//! was the largest single cost of a proxied HTTP/1.1 request, and the common path only copies the fields to the
//! client. So the fields stay raw, already validated by the parser, and `net::h1` writes them out directly. The
//! response's own `HeaderMap` then holds only what this hop sets (request id, HSTS, security headers), and a
//! raw field whose name the map also holds is not written: the map's value wins, as `insert` would have made it.
//!
//! Whatever needs the fields as a `HeaderMap` (HTTP/2 clients, route response rewrites, WebSocket upgrades)
//! calls `proxy::response_body::materialize` first; after that the response is an ordinary one.

use bytes::Bytes;
use http::header::{HeaderMap, HeaderName, HeaderValue};

/// One field: where its name and value sit in the head.
#[derive(Clone, Copy, Debug)]
pub struct Span {
    name_at: u32,
    name_len: u32,
    value_at: u32,
    value_len: u32,
}

/// Validated field lines of one response head. Names keep the upstream's spelling (case is not significant).
#[derive(Clone, Debug, Default)]
pub struct RawFields {
    head: Bytes,
    spans: Vec<Span>,
}

impl Span {
    /// `None` when an offset does not fit (a head is at most 64 KiB, so none should).
    pub fn new(name_at: usize, name_len: usize, value_at: usize, value_len: usize) -> Option<Self> {
        let fit = |n: usize| u32::try_from(n).ok().filter(|&n| n <= u32::MAX / 2);
        Some(Self {
            name_at: fit(name_at)?,
            name_len: fit(name_len)?,
            value_at: fit(value_at)?,
            value_len: fit(value_len)?,
        })
    }
}

impl RawFields {
    /// Fields from `name: value` lines, spans found the way the parser reports them (tests).
    #[cfg(test)]
    pub fn from_lines(text: &'static str) -> Self {
        let head = Bytes::from_static(text.as_bytes());
        let mut spans = Vec::new();
        let mut at = 0;
        for line in text.split("\r\n") {
            if let Some((n, v)) = line.split_once(": ") {
                spans.push((at, n.len(), at + n.len() + 2, v.len()));
            }
            at += line.len() + 2;
        }
        Self::new(head, spans)
    }

    /// `head` holds the fields; each `(name_at, name_len, value_at, value_len)` is a span in it whose name is
    /// a valid token and whose value holds no control characters (what the HTTP/1.1 parser checked).
    pub fn new(head: Bytes, spans: impl IntoIterator<Item = (usize, usize, usize, usize)>) -> Self {
        let spans = spans
            .into_iter()
            .filter(|&(na, nl, va, vl)| na + nl <= head.len() && va + vl <= head.len())
            // The head is at most 64 KiB, so every offset fits; anything else is dropped, not wrapped.
            .filter_map(|(na, nl, va, vl)| {
                Some(Span {
                    name_at: u32::try_from(na).ok()?,
                    name_len: u32::try_from(nl).ok()?,
                    value_at: u32::try_from(va).ok()?,
                    value_len: u32::try_from(vl).ok()?,
                })
            })
            .collect();
        Self { head, spans }
    }

    /// Spans built by a parser that has them at hand; any outside `head` is dropped.
    pub fn from_spans(head: Bytes, mut spans: Vec<Span>) -> Self {
        let len = head.len();
        spans.retain(|s| (s.name_at + s.name_len) as usize <= len && (s.value_at + s.value_len) as usize <= len);
        Self { head, spans }
    }

    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// At least the bytes the fields take as `name: value\r\n` lines (the head they were parsed from).
    pub fn wire_len(&self) -> usize {
        self.head.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// `(name, value)` of each field in order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> + '_ {
        self.spans.iter().map(|s| {
            (
                &self.head[s.name_at as usize..(s.name_at + s.name_len) as usize],
                &self.head[s.value_at as usize..(s.value_at + s.value_len) as usize],
            )
        })
    }

    /// Whether a field of this name is present (`name` is lower case, as every `HeaderName` is).
    pub fn contains(&self, name: &HeaderName) -> bool {
        let want = name.as_str().as_bytes();
        self.iter().any(|(n, _)| n.eq_ignore_ascii_case(want))
    }

    /// Appends every field to `map`, except those whose name `map` already holds (this hop's values win).
    /// Values share the head's bytes.
    pub fn append_to(&self, map: &mut HeaderMap) {
        let set_here: Vec<HeaderName> = map.keys().cloned().collect();
        map.reserve(self.spans.len());
        for s in &self.spans {
            let name = &self.head[s.name_at as usize..(s.name_at + s.name_len) as usize];
            let Ok(name) = HeaderName::from_bytes(name) else {
                continue;
            };
            if set_here.contains(&name) {
                continue;
            }
            let value = self
                .head
                .slice(s.value_at as usize..(s.value_at + s.value_len) as usize);
            // The parser accepted the value, so this holds; a value it let through that `http` refuses is dropped
            // rather than failing a response that is already on its way.
            if let Ok(value) = HeaderValue::from_maybe_shared(value) {
                map.append(name, value);
            }
        }
    }

    /// The fields as a `HeaderMap` of their own.
    pub fn to_header_map(&self) -> HeaderMap {
        let mut map = HeaderMap::with_capacity(self.spans.len());
        self.append_to(&mut map);
        map
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a test reports failure by panicking
mod tests {
    use super::*;

    #[test]
    fn fields_keep_their_order_and_spelling() {
        let f = RawFields::from_lines("Content-Type: text/plain\r\nX-A: 1\r\nx-a: 2\r\n");
        let all: Vec<_> = f.iter().collect();
        assert_eq!(
            all,
            vec![
                (&b"Content-Type"[..], &b"text/plain"[..]),
                (&b"X-A"[..], &b"1"[..]),
                (&b"x-a"[..], &b"2"[..])
            ]
        );
        assert!(f.contains(&http::header::CONTENT_TYPE));
        assert!(!f.contains(&http::header::ETAG));
    }

    #[test]
    fn spans_outside_the_head_are_dropped() {
        let f = RawFields::new(Bytes::from_static(b"a: b"), [(0, 1, 3, 1), (0, 1, 3, 9)]);
        assert_eq!(f.len(), 1);
    }

    #[test]
    fn spans_a_parser_built_are_kept_when_inside_the_head() {
        let spans = vec![
            Span::new(0, 1, 3, 1).unwrap(),
            Span::new(0, 1, 3, 9).unwrap(),
            Span::new(9, 1, 0, 1).unwrap(),
        ];
        let f = RawFields::from_spans(Bytes::from_static(b"a: b"), spans);
        assert_eq!(f.iter().collect::<Vec<_>>(), vec![(&b"a"[..], &b"b"[..])]);
        assert!(Span::new(usize::MAX, 1, 0, 1).is_none());
    }
}
