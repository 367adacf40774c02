//! Writing a response to an HTTP/1.1 client: status line, fields, framing chosen from the body, then the
//! body, gathered into as few writes as the body allows.
//!
//! The head and the first piece of body go out in one write when the body has it ready (the common case for
//! a proxied response, whose first bytes arrived with the upstream's head); when the body is not ready, what
//! is buffered is flushed before waiting, so streamed responses (server-sent events, long polls) reach the
//! client as they are produced.

use std::cell::RefCell;
use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::task::Poll;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::{BufMut, BytesMut};
use http::{Response, StatusCode, Version};
use hyper::body::Body;
use tokio::io::{AsyncWrite, AsyncWriteExt};

use crate::http1::raw_fields::RawFields;
use crate::http1::{Digits, put_field, put_hex};
use crate::proxy::ResponseBody;
use crate::proxy::added_fields::{AddedFields, Role};
use crate::waf::headers::Present;

/// Buffered response bytes are written once they reach this much; larger pieces of body go out directly.
const WRITE_CHUNK: usize = 64 * 1024;

/// What the connection needs to know about the request being answered.
#[derive(Clone, Copy, Debug)]
pub struct Answering {
    pub head_request: bool,
    pub version: Version,
    /// The connection may stay open after this response (the client and the server both agree).
    pub keep_alive: bool,
}

/// Whether the connection is still usable after the response.
#[derive(Debug, PartialEq, Eq)]
pub enum After {
    KeepAlive,
    Close,
    /// `101 Switching Protocols` was written: the connection now belongs to the upgrade.
    Upgraded,
}

/// Writes `resp` and its body, with the fields this hop adds (`added`: none on a refused request). An error
/// means the connection is in an unknown state and must be closed.
pub async fn write<S: AsyncWrite + Unpin>(
    io: &mut S,
    out: &mut BytesMut,
    resp: Response<ResponseBody>,
    added: Option<&AddedFields>,
    req: Answering,
) -> io::Result<After> {
    let (parts, mut body) = resp.into_parts();
    out.clear();
    out.reserve(room_needed(&parts, &body, added));
    let status = parts.status;
    let upgraded = status == StatusCode::SWITCHING_PROTOCOLS;
    let no_body = req.head_request
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED;
    // A HEAD or 304 answer keeps the length the full answer would have had; anything else is framed here.
    let keep_length = req.head_request || status == StatusCode::NOT_MODIFIED;
    put_status_line(out, status);
    let mut has_date = false;
    // The security headers the response sets itself, so that this hop does not add its own.
    let mut present: Present = 0;
    // Whether a field is written: not one this hop frames or replaces.
    let mut keep = |name: &[u8]| {
        if skip_field(name, upgraded, keep_length) {
            return false;
        }
        match added.map_or(Role::Other, |a| a.role(name)) {
            Role::Replaced => return false,
            Role::Security(bit) => present |= bit,
            Role::Other => {}
        }
        has_date |= name.eq_ignore_ascii_case(b"date");
        true
    };
    for (name, value) in &parts.headers {
        if keep(name.as_str().as_bytes()) {
            put_field(out, name.as_str().as_bytes(), value.as_bytes());
        }
    }
    if let Some(raw) = body.upstream_fields() {
        for (name, value) in raw.iter() {
            // A field this hop set in the map replaces the upstream's.
            let in_map = !parts.headers.is_empty()
                && parts
                    .headers
                    .keys()
                    .any(|n| n.as_str().as_bytes().eq_ignore_ascii_case(name));
            if !in_map && keep(name) {
                put_field(out, name, value);
            }
        }
    }
    if let Some(added) = added {
        added.put(out, present);
    }
    if !has_date {
        put_date(out);
    }
    let mut keep_alive = req.keep_alive;
    let mut chunked = false;
    if upgraded {
        out.put_slice(b"connection: upgrade\r\n");
    } else if !no_body {
        match body.size_hint().exact() {
            Some(n) => put_field(out, b"content-length", Digits::new(n).as_bytes()),
            None if req.version == Version::HTTP_11 => {
                out.put_slice(b"transfer-encoding: chunked\r\n");
                chunked = true;
            }
            // An HTTP/1.0 client learns the end of an unsized body from the connection closing.
            None => keep_alive = false,
        }
    }
    if !upgraded {
        if !keep_alive {
            out.put_slice(b"connection: close\r\n");
        } else if req.version == Version::HTTP_10 {
            out.put_slice(b"connection: keep-alive\r\n");
        }
    }
    out.put_slice(b"\r\n");

    if no_body || upgraded {
        io.write_all(out).await?;
        io.flush().await?;
        return Ok(if upgraded {
            After::Upgraded
        } else if keep_alive {
            After::KeepAlive
        } else {
            After::Close
        });
    }
    loop {
        let polled = poll_fn(|cx| Poll::Ready(Pin::new(&mut body).poll_frame(cx))).await;
        let next = match polled {
            Poll::Ready(next) => next,
            Poll::Pending => {
                if !out.is_empty() {
                    io.write_all(out).await?;
                    io.flush().await?;
                    out.clear();
                }
                poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await
            }
        };
        let frame = match next {
            None => break,
            Some(Ok(frame)) => frame,
            // The body broke part-way: the client must see a truncated response, never a complete-looking one.
            Some(Err(e)) => return Err(io::Error::other(e)),
        };
        let Ok(data) = frame.into_data() else { continue };
        if data.is_empty() {
            continue;
        }
        if chunked {
            put_hex(out, data.len());
            out.put_slice(b"\r\n");
        }
        if out.len() + data.len() <= WRITE_CHUNK {
            out.put_slice(&data);
        } else {
            io.write_all(out).await?;
            out.clear();
            io.write_all(&data).await?;
        }
        if chunked {
            out.put_slice(b"\r\n");
        }
        if out.len() >= WRITE_CHUNK {
            io.write_all(out).await?;
            out.clear();
        }
    }
    if chunked {
        out.put_slice(b"0\r\n\r\n");
    }
    io.write_all(out).await?;
    io.flush().await?;
    Ok(if keep_alive { After::KeepAlive } else { After::Close })
}

/// Room for the head and a small body known to be complete, so that a typical response is gathered with one
/// allocation instead of growing field by field.
fn room_needed(parts: &http::response::Parts, body: &ResponseBody, added: Option<&AddedFields>) -> usize {
    /// Status line, Date, framing and connection fields.
    const FIXED: usize = 128;
    let map: usize = parts.headers.iter().map(|(n, v)| n.as_str().len() + v.len() + 4).sum();
    let raw = body.upstream_fields().map_or(0, RawFields::wire_len);
    let added = added.map_or(0, AddedFields::wire_len);
    let small_body = body
        .size_hint()
        .exact()
        .filter(|&n| n <= INLINE_BODY as u64)
        .unwrap_or(0) as usize;
    FIXED + map + raw + added + small_body
}

/// Bodies up to this size are gathered with the head.
const INLINE_BODY: usize = 16 * 1024;

/// Fields this hop writes itself (`Content-Length` unless kept), or that describe the previous hop's
/// connection. `name` in any case: raw upstream names keep their spelling.
fn skip_field(name: &[u8], upgraded: bool, keep_length: bool) -> bool {
    (!keep_length && name.eq_ignore_ascii_case(b"content-length"))
        || crate::proxy::headers::is_hop_by_hop(name, upgraded)
}

fn put_status_line(out: &mut BytesMut, status: StatusCode) {
    out.put_slice(b"HTTP/1.1 ");
    out.put_slice(status.as_str().as_bytes());
    out.put_u8(b' ');
    out.put_slice(status.canonical_reason().unwrap_or("Unknown").as_bytes());
    out.put_slice(b"\r\n");
}

thread_local! {
    /// The `Date` field for the current second, formatted once per second per thread.
    static DATE: RefCell<(u64, [u8; 29])> = const { RefCell::new((u64::MAX, [0; 29])) };
}

fn put_date(out: &mut BytesMut) {
    let now = SystemTime::now();
    let secs = now.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO).as_secs();
    DATE.with(|cell| {
        let mut cached = cell.borrow_mut();
        if cached.0 != secs {
            let text = httpdate::fmt_http_date(now);
            let bytes = text.as_bytes();
            if bytes.len() == 29 {
                cached.1.copy_from_slice(bytes);
                cached.0 = secs;
            } else {
                put_field(out, b"date", bytes);
                return;
            }
        }
        put_field(out, b"date", &cached.1);
    });
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a test reports failure by panicking
mod tests {
    use std::sync::Arc;

    use bytes::Bytes;
    use http_body_util::Full;

    use super::*;

    async fn written(resp: Response<ResponseBody>, req: Answering) -> (String, After) {
        let mut wire = Vec::new();
        let mut out = BytesMut::new();
        let after = write(&mut wire, &mut out, resp, None, req).await.unwrap();
        (String::from_utf8(wire).unwrap(), after)
    }

    fn full(status: u16, body: &'static str) -> Response<ResponseBody> {
        let mut r = Response::new(ResponseBody::new(Full::new(Bytes::from_static(body.as_bytes()))));
        *r.status_mut() = StatusCode::from_u16(status).unwrap();
        r.headers_mut().insert("x-kept", "1".parse().unwrap());
        r.headers_mut()
            .insert("connection", "keep-alive, x-kept".parse().unwrap());
        r.headers_mut().insert("content-length", "999".parse().unwrap());
        r
    }

    /// A body of unknown size that hands out its pieces (from the back) one per poll.
    struct Pieces(Vec<&'static [u8]>);

    impl Body for Pieces {
        type Data = Bytes;
        type Error = crate::proxy::upstream::conn_pool::BoxError;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
            Poll::Ready(
                self.0
                    .pop()
                    .map(|p| Ok(hyper::body::Frame::data(Bytes::from_static(p)))),
            )
        }
    }

    const H11: Answering = Answering {
        head_request: false,
        version: Version::HTTP_11,
        keep_alive: true,
    };

    #[tokio::test]
    async fn a_sized_body_is_framed_by_its_own_length_in_one_write() {
        let (wire, after) = written(full(200, "hello"), H11).await;
        assert!(wire.starts_with("HTTP/1.1 200 OK\r\n"), "{wire}");
        assert!(
            wire.contains("content-length: 5\r\n"),
            "the body's own length, not a stale field: {wire}"
        );
        assert!(!wire.contains("999"), "{wire}");
        assert!(wire.contains("x-kept: 1\r\n") && wire.contains("\r\ndate: "), "{wire}");
        assert!(!wire.contains("connection"), "{wire}");
        assert!(wire.ends_with("\r\n\r\nhello"), "{wire}");
        assert_eq!(after, After::KeepAlive);
    }

    #[tokio::test]
    async fn an_unsized_body_is_chunked_for_http11_and_close_delimited_for_http10() {
        let stream = || Response::new(ResponseBody::new(Pieces(vec![&b"cde"[..], b"ab"])));
        let (wire, after) = written(stream(), H11).await;
        assert!(wire.contains("transfer-encoding: chunked\r\n"), "{wire}");
        assert!(wire.ends_with("\r\n\r\n2\r\nab\r\n3\r\ncde\r\n0\r\n\r\n"), "{wire}");
        assert_eq!(after, After::KeepAlive);
        let (wire, after) = written(
            stream(),
            Answering {
                version: Version::HTTP_10,
                ..H11
            },
        )
        .await;
        assert!(
            !wire.contains("chunked") && wire.contains("connection: close\r\n"),
            "{wire}"
        );
        assert!(wire.ends_with("abcde"), "{wire}");
        assert_eq!(after, After::Close);
    }

    #[tokio::test]
    async fn head_and_304_answers_keep_the_length_and_send_no_body() {
        let mut r = full(200, "");
        r.headers_mut().insert("content-length", "42".parse().unwrap());
        let (wire, _) = written(
            r,
            Answering {
                head_request: true,
                ..H11
            },
        )
        .await;
        assert!(
            wire.contains("content-length: 42\r\n") && wire.ends_with("\r\n\r\n"),
            "{wire}"
        );
        let (wire, _) = written(full(204, ""), H11).await;
        assert!(!wire.contains("content-length"), "{wire}");
    }

    #[tokio::test]
    async fn keep_alive_is_announced_to_http10_clients_and_close_when_ending() {
        let (wire, _) = written(
            full(200, "x"),
            Answering {
                version: Version::HTTP_10,
                ..H11
            },
        )
        .await;
        assert!(wire.contains("connection: keep-alive\r\n"), "{wire}");
        let (wire, after) = written(
            full(200, "x"),
            Answering {
                keep_alive: false,
                ..H11
            },
        )
        .await;
        assert!(wire.contains("connection: close\r\n"), "{wire}");
        assert_eq!(after, After::Close);
    }

    #[tokio::test]
    async fn raw_upstream_fields_are_copied_unless_this_hop_set_the_name() {
        let head = Bytes::from_static(b"X-Request-Id: theirs\r\nDate: Mon, 01 Jan 2024 00:00:00 GMT\r\nContent-Length: 7\r\nETag: \"e\"\r\nConnection: close\r\n");
        let spans = [
            (0, 12, 14, 6),
            (22, 4, 28, 29),
            (59, 14, 75, 1),
            (78, 4, 84, 3),
            (89, 10, 101, 5),
        ];
        let raw = crate::http1::raw_fields::RawFields::new(head, spans);
        let names: Vec<_> = raw.iter().map(|(n, v)| (n.to_vec(), v.to_vec())).collect();
        assert_eq!(names[4], (b"Connection".to_vec(), b"close".to_vec()), "spans as meant");
        let mut r = Response::new(ResponseBody::new(Full::new(Bytes::from_static(b"hello"))).with_upstream_fields(raw));
        r.headers_mut().insert("x-request-id", "ours".parse().unwrap());
        let (wire, after) = written(r, H11).await;
        assert!(
            wire.contains("x-request-id: ours\r\n") && !wire.contains("theirs"),
            "{wire}"
        );
        assert!(wire.contains("ETag: \"e\"\r\n"), "{wire}");
        assert_eq!(
            wire.matches("ate: ").count(),
            1,
            "the upstream's Date is the only one: {wire}"
        );
        assert!(wire.contains("Date: Mon, 01 Jan 2024"), "{wire}");
        assert!(
            !wire.contains("Content-Length") && wire.contains("content-length: 5\r\n"),
            "{wire}"
        );
        assert!(
            !wire.contains("Connection"),
            "the upstream's connection fields are its own: {wire}"
        );
        assert_eq!(after, After::KeepAlive);
    }

    /// The fields this hop adds are written after the response's own: a security header the upstream set
    /// keeps the upstream's value and is not added again, while the upstream's request id and HSTS give way.
    #[tokio::test]
    async fn added_fields_follow_the_responses_own_and_replace_only_their_names() {
        let raw = RawFields::from_lines(
            "X-Frame-Options: SAMEORIGIN\r\nX-Request-Id: theirs\r\nStrict-Transport-Security: max-age=1\r\n",
        );
        let added = AddedFields {
            security: Arc::new(
                crate::waf::headers::ResponseHeaders::build(&crate::config::schema::SecurityHeaders::default())
                    .unwrap(),
            ),
            request_id: "ours".parse().unwrap(),
            hsts: Some("max-age=60".parse().unwrap()),
        };
        let r = Response::new(ResponseBody::new(Full::new(Bytes::from_static(b"hello"))).with_upstream_fields(raw));
        let mut wire = Vec::new();
        let mut out = BytesMut::new();
        write(&mut wire, &mut out, r, Some(&added), H11).await.unwrap();
        let wire = String::from_utf8(wire).unwrap();
        let lower = wire.to_ascii_lowercase();
        assert_eq!(lower.matches("x-frame-options:").count(), 1, "{wire}");
        assert!(wire.contains("X-Frame-Options: SAMEORIGIN\r\n"), "{wire}");
        assert!(wire.contains("x-content-type-options: nosniff\r\n"), "{wire}");
        assert!(
            wire.contains("x-request-id: ours\r\n") && !wire.contains("theirs"),
            "{wire}"
        );
        assert_eq!(lower.matches("strict-transport-security:").count(), 1, "{wire}");
        assert!(wire.contains("strict-transport-security: max-age=60\r\n"), "{wire}");
        assert!(wire.ends_with("\r\n\r\nhello"), "{wire}");
    }
}
