//! Parsing a request head off the front of the connection's buffer into `http::request::Parts` and the facts
//! the connection needs (body framing, keep-alive, Expect, Upgrade).
//!
//! Strict where leniency is a smuggling risk (RFC 9112 §6.3, §11.2): Transfer-Encoding with Content-Length,
//! Transfer-Encoding that does not end in chunked, Transfer-Encoding on HTTP/1.0, conflicting or malformed
//! Content-Length, and a missing or repeated Host on HTTP/1.1 are all refused with 400 before any byte reaches
//! an upstream. Pure: no I/O.

use std::mem::MaybeUninit;

use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode, Uri, Version, request};

use crate::http1::{FramingError, content_length, ends_in_chunked};

/// Most request header fields accepted; more is 431.
const MAX_FIELDS: usize = 100;

/// How the request's body is delimited on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyFraming {
    None,
    Length(u64),
    Chunked,
}

/// A parsed request head.
#[derive(Debug)]
pub struct Head {
    pub parts: request::Parts,
    pub framing: BodyFraming,
    /// The client lets the connection carry another request after this one.
    pub keep_alive: bool,
    /// `Expect: 100-continue`: the client waits for an interim answer before sending the body.
    pub expect_continue: bool,
    /// An HTTP/1.1 upgrade handshake (`Connection: upgrade` with `Upgrade`).
    pub upgrade: bool,
}

/// Why a request head was refused, as the status to answer with and a short reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status}: {reason}")]
pub struct Refusal {
    pub status: StatusCode,
    pub reason: String,
}

fn refuse(status: StatusCode, reason: impl Into<String>) -> Refusal {
    Refusal {
        status,
        reason: reason.into(),
    }
}

fn bad(reason: impl Into<String>) -> Refusal {
    refuse(StatusCode::BAD_REQUEST, reason)
}

impl From<FramingError> for Refusal {
    fn from(e: FramingError) -> Self {
        bad(e.to_string())
    }
}

/// Parses a head at the start of `buf`. `Ok(None)` while incomplete (the caller bounds how large `buf` may
/// grow); when complete, the head is taken off `buf` and field values share its bytes.
pub fn parse(buf: &mut BytesMut) -> Result<Option<Head>, Refusal> {
    // Left uninitialised: zeroing room for every possible field would cost more than parsing the head.
    let mut fields = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_FIELDS];
    let mut req = httparse::Request::new(&mut []);
    let used = match req.parse_with_uninit_headers(buf, &mut fields) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(refuse(
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                format!("more than {MAX_FIELDS} header fields"),
            ));
        }
        // A request line with more than two spaces (a raw space in the target) reaches the version check
        // with garbage: that is a malformed request, not an unsupported version.
        Err(httparse::Error::Version) if request_line_spaces(buf) == 2 => {
            return Err(refuse(
                StatusCode::HTTP_VERSION_NOT_SUPPORTED,
                "only HTTP/1.0 and HTTP/1.1 are served",
            ));
        }
        Err(e) => return Err(bad(format!("malformed request head: {e}"))),
    };
    let version = if req.version == Some(1) {
        Version::HTTP_11
    } else {
        Version::HTTP_10
    };
    let method = Method::from_bytes(req.method.unwrap_or("").as_bytes()).map_err(|_| bad("invalid method"))?;
    if method == Method::CONNECT {
        return Err(refuse(StatusCode::METHOD_NOT_ALLOWED, "CONNECT is not proxied"));
    }

    let base = buf.as_ptr() as usize;
    let path = req.path.unwrap_or("");
    let target = (path.as_ptr() as usize - base, path.len());
    let mut close = false;
    let mut keep_alive_token = false;
    let mut upgrade_token = false;
    let mut chunked = None::<bool>;
    let mut length = None::<u64>;
    let mut hosts = 0;
    let mut expect_continue = false;
    let mut spans = Vec::with_capacity(req.headers.len());
    for f in req.headers.iter() {
        spans.push((
            f.name.as_ptr() as usize - base,
            f.name.len(),
            f.value.as_ptr() as usize - base,
            f.value.len(),
        ));
        let name = f.name.as_bytes();
        if name.eq_ignore_ascii_case(b"connection") {
            for token in f.value.split(|&b| b == b',').map(<[u8]>::trim_ascii) {
                close |= token.eq_ignore_ascii_case(b"close");
                keep_alive_token |= token.eq_ignore_ascii_case(b"keep-alive");
                upgrade_token |= token.eq_ignore_ascii_case(b"upgrade");
            }
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            // Several fields form one list: its last coding is the last field's last coding.
            chunked = Some(ends_in_chunked(f.value));
        } else if name.eq_ignore_ascii_case(b"content-length") {
            content_length(f.value, &mut length)?;
        } else if name.eq_ignore_ascii_case(b"host") {
            hosts += 1;
        } else if name.eq_ignore_ascii_case(b"expect") {
            if f.value.trim_ascii().eq_ignore_ascii_case(b"100-continue") {
                expect_continue = true;
            } else {
                return Err(refuse(
                    StatusCode::EXPECTATION_FAILED,
                    "only Expect: 100-continue is understood",
                ));
            }
        }
    }
    if version == Version::HTTP_11 && hosts != 1 {
        return Err(bad(if hosts == 0 {
            "HTTP/1.1 request without Host"
        } else {
            "more than one Host field"
        }));
    }
    let framing = match (chunked, length) {
        (Some(_), Some(_)) => return Err(bad("both Transfer-Encoding and Content-Length")),
        (Some(_), None) if version == Version::HTTP_10 => return Err(bad("Transfer-Encoding on HTTP/1.0")),
        (Some(false), None) => return Err(bad("Transfer-Encoding that does not end in chunked")),
        (Some(true), None) => BodyFraming::Chunked,
        (None, Some(0)) | (None, None) => BodyFraming::None,
        (None, Some(n)) => BodyFraming::Length(n),
    };

    let head = buf.split_to(used).freeze();
    let target = target.0..target.0 + target.1;
    let uri = match Uri::from_maybe_shared(head.slice(target.clone())) {
        Ok(uri) => uri,
        Err(e) => escaped_target(&head[target])
            .and_then(|t| Uri::from_maybe_shared(t).ok())
            .ok_or_else(|| bad(format!("invalid request target: {e}")))?,
    };
    let mut headers = HeaderMap::with_capacity(spans.len());
    for (name_at, name_len, value_at, value_len) in spans {
        let name = HeaderName::from_bytes(&head[name_at..name_at + name_len]).map_err(|_| bad("invalid field name"))?;
        let value = HeaderValue::from_maybe_shared(head.slice(value_at..value_at + value_len))
            .map_err(|_| bad(format!("invalid value in field `{name}`")))?;
        headers.append(name, value);
    }
    let upgrade = version == Version::HTTP_11 && upgrade_token && headers.contains_key(header::UPGRADE);
    let keep_alive = !close && (version == Version::HTTP_11 || keep_alive_token);
    let (mut parts, ()) = http::Request::new(()).into_parts();
    parts.method = method;
    parts.uri = uri;
    parts.version = version;
    parts.headers = headers;
    Ok(Some(Head {
        parts,
        framing,
        keep_alive,
        expect_continue: expect_continue && version == Version::HTTP_11,
        upgrade,
    }))
}

/// Bytes that clients send raw in a target though RFC 3986 wants them escaped (curl, scripts, scanners: `"`,
/// `<`, `{`, `|`, backslashes; bytes over 0x7f where the head parser lets them through). nginx and HAProxy accept them, so refusing them would break
/// clients that work behind those and, worse, answer an attack with a parser's 400 instead of inspecting it.
/// They are escaped here, as a browser would have sent them; the WAF decodes the escapes as it decodes any, and
/// the upstream receives the same resource in its canonical spelling.
const ESCAPED_IN_TARGET: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0x80;
    while b < 256 {
        t[b] = true;
        b += 1;
    }
    let raw = b"\"<>\\^`{|}";
    let mut i = 0;
    while i < raw.len() {
        t[raw[i] as usize] = true;
        i += 1;
    }
    t
};

/// The target with `ESCAPED_IN_TARGET` bytes percent-encoded, or `None` when none was there or the target is
/// neither origin form (`/path`) nor absolute form (`http://host/path`): it was refused for a reason escaping
/// would not mend.
fn escaped_target(raw: &[u8]) -> Option<Bytes> {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let absolute = |scheme: &[u8]| raw.get(..scheme.len()).is_some_and(|s| s.eq_ignore_ascii_case(scheme));
    if !(raw.first() == Some(&b'/') || absolute(b"http://") || absolute(b"https://")) {
        return None;
    }
    let extra = raw.iter().filter(|&&b| ESCAPED_IN_TARGET[usize::from(b)]).count();
    if extra == 0 {
        return None;
    }
    let mut out = Vec::with_capacity(raw.len() + 2 * extra);
    for &b in raw {
        if ESCAPED_IN_TARGET[usize::from(b)] {
            out.extend_from_slice(&[b'%', HEX[usize::from(b >> 4)], HEX[usize::from(b & 0xf)]]);
        } else {
            out.push(b);
        }
    }
    Some(Bytes::from(out))
}

fn request_line_spaces(buf: &[u8]) -> usize {
    let line = buf.split(|&b| b == b'\n').next().unwrap_or(&[]);
    line.iter().filter(|&&b| b == b' ').count()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a test reports failure by panicking
mod tests {
    use super::*;

    fn parse_str(raw: &str) -> Result<Option<Head>, Refusal> {
        parse(&mut BytesMut::from(raw.as_bytes()))
    }

    fn head(raw: &str) -> Head {
        parse_str(raw).expect("valid").expect("complete")
    }

    fn status(raw: &str) -> StatusCode {
        parse_str(raw).expect_err("refused").status
    }

    #[test]
    fn a_plain_get_parses_and_keeps_the_rest_of_the_buffer() {
        let mut buf = BytesMut::from(&b"GET /a?b=c HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n\r\nGET /next"[..]);
        let h = parse(&mut buf).unwrap().unwrap();
        assert_eq!(h.parts.method, Method::GET);
        assert_eq!(h.parts.uri, "/a?b=c");
        assert_eq!(h.parts.headers["x-a"], "1");
        assert_eq!(h.framing, BodyFraming::None);
        assert!(h.keep_alive && !h.upgrade && !h.expect_continue);
        assert_eq!(&buf[..], b"GET /next", "a pipelined request stays in the buffer");
    }

    #[test]
    fn raw_bytes_clients_send_in_targets_are_escaped_not_refused() {
        let h = head("GET /a\\b<c>?q=\"<script>{x}|`^ HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(h.parts.uri, "/a%5Cb%3Cc%3E?q=%22%3Cscript%3E%7Bx%7D%7C%60%5E");
        assert_eq!(
            head("GET /plain?a=b HTTP/1.1\r\nHost: x\r\n\r\n").parts.uri,
            "/plain?a=b"
        );
        assert_eq!(
            head("GET http://h/<x> HTTP/1.1\r\nHost: h\r\n\r\n").parts.uri,
            "http://h/%3Cx%3E"
        );
        // Not mended by escaping: a target that is not a path at all.
        assert_eq!(status("GET a<b HTTP/1.1\r\nHost: x\r\n\r\n"), StatusCode::BAD_REQUEST);
    }

    #[test]
    fn incomplete_heads_ask_for_more() {
        assert!(parse_str("GET / HTTP/1.1\r\nHost: x\r\n").unwrap().is_none());
    }

    #[test]
    fn bodies_are_framed_by_length_or_chunked() {
        assert_eq!(
            head("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 12\r\n\r\n").framing,
            BodyFraming::Length(12)
        );
        assert_eq!(
            head("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n").framing,
            BodyFraming::None
        );
        assert_eq!(
            head("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n").framing,
            BodyFraming::Chunked
        );
    }

    #[test]
    fn smuggling_shapes_are_refused_with_400() {
        for raw in [
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5 5\r\n\r\n",
            "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
            "GET / HTTP/1.1\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: x\r\nX-Folded: a\r\n b\r\n\r\n",
            "GET / HTTP/1.1\r\nHost : x\r\n\r\n",
            "GET /a b HTTP/1.1\r\nHost: x\r\n\r\n",
        ] {
            assert_eq!(status(raw), StatusCode::BAD_REQUEST, "{raw:?}");
        }
    }

    #[test]
    fn connect_unknown_expectations_and_other_versions_get_their_own_status() {
        assert_eq!(
            status("CONNECT a:443 HTTP/1.1\r\nHost: a\r\n\r\n"),
            StatusCode::METHOD_NOT_ALLOWED
        );
        assert_eq!(
            status("POST / HTTP/1.1\r\nHost: x\r\nExpect: magic\r\n\r\n"),
            StatusCode::EXPECTATION_FAILED
        );
        assert_eq!(
            status("GET / HTTP/2.0\r\nHost: x\r\n\r\n"),
            StatusCode::HTTP_VERSION_NOT_SUPPORTED
        );
        let many: String = (0..150).map(|i| format!("X-{i}: v\r\n")).collect();
        assert_eq!(
            status(&format!("GET / HTTP/1.1\r\nHost: x\r\n{many}\r\n")),
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
        );
    }

    #[test]
    fn keep_alive_follows_the_version_and_connection_tokens() {
        assert!(!head("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").keep_alive);
        assert!(!head("GET / HTTP/1.0\r\n\r\n").keep_alive);
        assert!(head("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").keep_alive);
    }

    #[test]
    fn expect_continue_and_upgrades_are_recognised() {
        assert!(
            head("POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n").expect_continue
        );
        let ws = head("GET /ws HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\r\n");
        assert!(ws.upgrade);
        assert!(
            !head("GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n").upgrade,
            "Connection must name it"
        );
    }

    #[test]
    fn absolute_form_targets_keep_their_authority() {
        let h = head("GET http://example.com/p HTTP/1.1\r\nHost: example.com\r\n\r\n");
        assert_eq!(h.parts.uri.host(), Some("example.com"));
        assert_eq!(h.parts.uri.path(), "/p");
    }
}
