//! HTTP/1.1 to upstream servers: the proxy's own client, written for its one use — send a request head and
//! body on a keep-alive connection, read the response head, and stream the response body from the socket
//! straight into the client's response.
//!
//! Why not hyper's client: it drives each connection in a task of its own and hands requests, responses and
//! body chunks across channels. Here the request's own task does the I/O — no connection task, no channels —
//! which removed about a third of the proxy's user-space CPU per request in profiles.
//!
//! Framing follows RFC 9112 §6. The request: Content-Length when the body's size is known, chunked when it is
//! not, nothing when there is no body. The response: no body for HEAD, 1xx, 204 and 304; chunked when
//! Transfer-Encoding ends in chunked; else Content-Length (several must agree); else the body runs until the
//! server closes. A response that cannot be framed unambiguously is an error, never a guess: a proxy that
//! guesses at framing is a request-smuggling target. A connection is reusable only when its response ended
//! exactly where the framing said and both sides agreed to keep it open.
//!
//! Must not: follow redirects, decompress, or look at anything beyond framing and connection management.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use http::{Method, StatusCode, request};
use http_body_util::BodyExt;
use hyper::body::Body;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::conn_pool::BoxError;
use crate::http1::raw_fields::{RawFields, Span};
use crate::http1::{Digits, FramingError, chunked, content_length, ends_in_chunked, put_field, put_hex};
use crate::proxy::headers::{Forwarding, is_hop_by_hop, write_request_headers};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest response head accepted; larger is an invalid response (502).
const MAX_HEAD: usize = 64 * 1024;
/// Most response headers accepted.
const MAX_HEADERS: usize = 100;
/// Request bytes gathered before a write: small requests go out in one write, large bodies stream.
const WRITE_CHUNK: usize = 64 * 1024;
/// Room a connection's request buffer starts with: a typical request head.
const WRITE_HEAD_ROOM: usize = 1024;
/// Bytes asked of the socket per read.
const READ_CHUNK: usize = 16 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum H1Error {
    #[error("connect: {0}")]
    Connect(io::Error),
    #[error("writing the request: {0}")]
    Write(io::Error),
    #[error("request body: {0}")]
    RequestBody(BoxError),
    #[error("the server closed the connection without answering")]
    ClosedBeforeResponse,
    #[error("reading the response: {0}")]
    Read(io::Error),
    #[error("the server closed the connection inside the response body")]
    Truncated,
    #[error("invalid response: {0}")]
    Invalid(String),
    #[error("invalid response framing: {0}")]
    Framing(#[from] FramingError),
    #[error("the server did not answer by the deadline")]
    TimedOut,
}

impl H1Error {
    /// A failure that a stale keep-alive connection explains: the server had closed it before this request,
    /// so nothing was processed and the request can go again on a fresh connection.
    pub fn is_stale_connection(&self) -> bool {
        match self {
            Self::ClosedBeforeResponse => true,
            Self::Write(e) | Self::Read(e) => matches!(
                e.kind(),
                io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted
            ),
            _ => false,
        }
    }

    /// The request body failed because it exceeded the proxy's size limit.
    pub fn is_length_limit(&self) -> bool {
        match self {
            Self::RequestBody(e) => {
                let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e.as_ref());
                while let Some(s) = source {
                    if s.is::<http_body_util::LengthLimitError>() {
                        return true;
                    }
                    source = s.source();
                }
                false
            }
            _ => false,
        }
    }
}

fn invalid(what: impl Into<String>) -> H1Error {
    H1Error::Invalid(what.into())
}

/// One keep-alive connection to a server and the bytes read from it but not yet used.
///
/// Boxed once, when connected: the connection travels inside every relayed response's body, which is moved
/// several times on its way to the client, and a pointer moves cheaper than a socket and two buffers.
pub struct Conn(Box<ConnState>);

pub struct ConnState {
    stream: TcpStream,
    buf: BytesMut,
    /// The request being written: kept with the connection, so a pooled connection's requests reuse it.
    out: BytesMut,
    /// Requests completed on this connection; a reused connection can be stale (see `is_stale_connection`).
    pub served: u32,
    /// The deadline timer of the request in flight, kept for the connection's life (`send_by`), and the
    /// thread that made it (`clock::thread_mark`).
    timer: Option<(usize, Pin<Box<tokio::time::Sleep>>)>,
}

impl std::ops::Deref for Conn {
    type Target = ConnState;
    fn deref(&self) -> &ConnState {
        &self.0
    }
}

impl std::ops::DerefMut for Conn {
    fn deref_mut(&mut self) -> &mut ConnState {
        &mut self.0
    }
}

impl Conn {
    pub async fn connect(authority: &str) -> Result<Self, H1Error> {
        let stream = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(authority)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Err(H1Error::Connect(e)),
            Err(_) => {
                return Err(H1Error::Connect(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "connect timed out",
                )));
            }
        };
        // Heads and bodies are written whole; Nagle would only delay the last segment.
        let _ = stream.set_nodelay(true);
        Ok(Self(Box::new(ConnState {
            stream,
            buf: BytesMut::new(),
            out: BytesMut::with_capacity(WRITE_HEAD_ROOM),
            served: 0,
            timer: None,
        })))
    }

    /// `connect`, by `deadline`.
    pub async fn connect_by(authority: &str, deadline: tokio::time::Instant) -> Result<Self, H1Error> {
        tokio::time::timeout_at(deadline, Self::connect(authority))
            .await
            .map_err(|_| H1Error::TimedOut)?
    }

    /// The socket and the bytes already read past the response head, for a tunnel after `101`.
    pub fn into_parts(self) -> (TcpStream, BytesMut) {
        let state = *self.0;
        (state.stream, state.buf)
    }
}

impl ConnState {
    /// Whether an idle connection is still usable: the server has neither closed it nor sent anything
    /// unasked. Costs no system call unless the reactor saw the socket become readable.
    pub fn is_usable(&mut self) -> bool {
        if !self.buf.is_empty() {
            return false;
        }
        let mut probe = [0u8; 1];
        matches!(self.stream.try_read(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
    }

    /// `send`, by `deadline`: `H1Error::TimedOut` after it.
    ///
    /// The timer is the connection's own and is not moved per request: deadlines on one connection only grow,
    /// so the timer fires at the deadline it was armed with and is re-armed then if the request in flight
    /// has a later one (`clock::reached`). A timer per request cost a registration and a removal in the
    /// runtime's timer wheel each time, ten atomic operations among them.
    pub async fn send_by<B>(
        &mut self,
        deadline: tokio::time::Instant,
        parts: &request::Parts,
        fwd: &Forwarding<'_>,
        body: B,
    ) -> Result<ResponseHead, H1Error>
    where
        B: Body<Data = Bytes> + Unpin,
        B::Error: Into<BoxError>,
    {
        let here = crate::clock::thread_mark();
        let mut timer = match self.timer.take() {
            // A later timer (a shorter route timeout since) cannot wait lazily: it is moved now.
            Some((made, mut t)) if made == here && t.deadline() > deadline => {
                t.as_mut().reset(deadline);
                t
            }
            Some((made, t)) if made == here => t,
            // None yet, or made on another thread: that thread's runtime may have its own timer driver
            // (io_uring workers each run one), which may stop before this one does.
            _ => Box::pin(tokio::time::sleep_until(deadline)),
        };
        let sent = tokio::select! {
            biased;
            head = self.send(parts, fwd, body) => head,
            () = crate::clock::reached(timer.as_mut(), deadline) => Err(H1Error::TimedOut),
        };
        self.timer = Some((here, timer));
        sent
    }

    /// Sends the request and reads the response head, skipping interim (1xx) responses other than 101.
    pub async fn send<B>(
        &mut self,
        parts: &request::Parts,
        fwd: &Forwarding<'_>,
        mut body: B,
    ) -> Result<ResponseHead, H1Error>
    where
        B: Body<Data = Bytes> + Unpin,
        B::Error: Into<BoxError>,
    {
        let out = &mut self.out;
        out.clear();
        if out.capacity() > WRITE_CHUNK + WRITE_HEAD_ROOM {
            // A large body went out on this connection before: do not keep its room while pooled.
            *out = BytesMut::with_capacity(WRITE_HEAD_ROOM);
        }
        let chunked = encode_head(parts, &body, fwd, out);
        while !body.is_end_stream() {
            let Some(frame) = body.frame().await else { break };
            let frame = frame.map_err(|e| H1Error::RequestBody(e.into()))?;
            let Ok(data) = frame.into_data() else { continue };
            if data.is_empty() {
                continue;
            }
            if chunked {
                put_hex(out, data.len());
                out.put_slice(b"\r\n");
                out.put_slice(&data);
                out.put_slice(b"\r\n");
            } else {
                out.put_slice(&data);
            }
            if out.len() >= WRITE_CHUNK {
                self.stream.write_all(out).await.map_err(H1Error::Write)?;
                out.clear();
            }
        }
        if chunked {
            out.put_slice(b"0\r\n\r\n");
        }
        self.stream.write_all(out).await.map_err(H1Error::Write)?;
        let is_head = parts.method == Method::HEAD;
        loop {
            if let Some(head) = parse_head(&mut self.buf, is_head)? {
                if head.status.is_informational() && head.status != StatusCode::SWITCHING_PROTOCOLS {
                    continue;
                }
                return Ok(head);
            }
            if self.buf.len() > MAX_HEAD {
                return Err(invalid(format!("response head larger than {MAX_HEAD} bytes")));
            }
            self.buf.reserve(READ_CHUNK);
            match self.stream.read_buf(&mut self.buf).await {
                Ok(0) if self.buf.is_empty() => return Err(H1Error::ClosedBeforeResponse),
                Ok(0) => return Err(invalid("connection closed inside the response head")),
                Ok(_) => {}
                Err(e) => return Err(H1Error::Read(e)),
            }
        }
    }

    /// Reads more bytes into the buffer; `Ok(0)` is end of stream.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        self.buf.reserve(READ_CHUNK);
        loop {
            ready!(self.stream.poll_read_ready(cx))?;
            match self.stream.try_read_buf(&mut self.buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                other => return Poll::Ready(other),
            }
        }
    }
}

/// Writes the request line and header block (see `headers::write_request_headers`), with framing chosen from
/// the body; true when the body goes chunked.
fn encode_head(parts: &request::Parts, body: &impl Body, fwd: &Forwarding<'_>, out: &mut BytesMut) -> bool {
    out.put_slice(parts.method.as_str().as_bytes());
    out.put_u8(b' ');
    out.put_slice(parts.uri.path_and_query().map_or("/", |p| p.as_str()).as_bytes());
    out.put_slice(b" HTTP/1.1\r\n");
    write_request_headers(out, &parts.headers, fwd);
    let chunked = match (body.is_end_stream(), body.size_hint().exact()) {
        (true, _) | (false, Some(0)) => {
            // An empty body is still declared for methods whose servers expect one.
            if matches!(parts.method, Method::POST | Method::PUT | Method::PATCH) {
                out.put_slice(b"content-length: 0\r\n");
            }
            false
        }
        (false, Some(len)) => {
            put_field(out, b"content-length", Digits::new(len).as_bytes());
            false
        }
        (false, None) => {
            out.put_slice(b"transfer-encoding: chunked\r\n");
            true
        }
    };
    out.put_slice(b"\r\n");
    chunked
}

/// How the response body is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    Empty,
    Length(u64),
    Chunked,
    UntilClose,
}

#[derive(Debug)]
pub struct ResponseHead {
    pub status: StatusCode,
    /// Hop-by-hop fields removed (RFC 9110 §7.6.1), including those the Connection header names; kept raw,
    /// for the client side to copy or materialize (`http1::raw_fields`).
    pub fields: RawFields,
    pub framing: Framing,
    /// Both sides may use the connection for another request once this response has ended.
    pub keep_alive: bool,
}

/// Parses a response head at the start of `buf`: `Ok(None)` while incomplete; when complete, the head is taken
/// off the buffer and its field values share its bytes (no copy per value).
pub fn parse_head(buf: &mut BytesMut, request_was_head: bool) -> Result<Option<ResponseHead>, H1Error> {
    // Left uninitialised: zeroing room for every possible field cost more than parsing the head.
    let mut fields = [const { std::mem::MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut []);
    let used = match httparse::ParserConfig::default().parse_response_with_uninit_headers(&mut resp, buf, &mut fields) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(invalid(format!("unparseable head: {e}"))),
    };
    let code = resp.code.unwrap_or(0);
    let status = StatusCode::from_u16(code).map_err(|_| invalid(format!("status code {code}")))?;
    let http11 = resp.version == Some(1);

    let mut close = false;
    let mut keep_alive_token = false;
    // Where the field names listed in `Connection` sit in `buf` (rare: nearly every `Connection` says only
    // keep-alive or close, and this then never allocates).
    let mut named: Vec<(usize, usize)> = Vec::new();
    let mut chunked_last = None::<bool>;
    let mut length = None::<u64>;
    let base = buf.as_ptr() as usize;
    let at = |b: &[u8]| b.as_ptr() as usize - base;
    for f in resp.headers.iter() {
        let name = f.name.as_bytes();
        if name.eq_ignore_ascii_case(b"connection") {
            for token in f.value.split(|&b| b == b',').map(<[u8]>::trim_ascii) {
                if token.eq_ignore_ascii_case(b"close") {
                    close = true;
                } else if token.eq_ignore_ascii_case(b"keep-alive") {
                    keep_alive_token = true;
                } else if !token.is_empty() {
                    named.push((at(token), token.len()));
                }
            }
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            chunked_last = Some(ends_in_chunked(f.value));
        } else if name.eq_ignore_ascii_case(b"content-length") {
            content_length(f.value, &mut length)?;
        }
    }
    let upgrade = status == StatusCode::SWITCHING_PROTOCOLS;
    // The fields the client may see, as spans into `buf`, which the head is split off from below.
    let mut spans = Vec::with_capacity(resp.headers.len());
    for f in resp.headers.iter() {
        let name = f.name.as_bytes();
        let connection_named = !named.is_empty()
            && named
                .iter()
                .any(|&(at, len)| buf[at..at + len].eq_ignore_ascii_case(name))
            && !(upgrade && name.eq_ignore_ascii_case(b"upgrade"));
        // With Transfer-Encoding, Content-Length is meaningless and must not reach the client (RFC 9112 §6.3).
        let stale_length = chunked_last.is_some() && name.eq_ignore_ascii_case(b"content-length");
        if is_hop_by_hop(name, upgrade) || connection_named || stale_length {
            continue;
        }
        if let Some(span) = Span::new(at(name), name.len(), at(f.value), f.value.len()) {
            spans.push(span);
        }
    }
    let fields = RawFields::from_spans(buf.split_to(used).freeze(), spans);

    let no_body = request_was_head
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED;
    let framing = if no_body {
        Framing::Empty
    } else {
        match (chunked_last, length) {
            (Some(true), _) => Framing::Chunked,
            (Some(false), _) => Framing::UntilClose,
            (None, Some(0)) => Framing::Empty,
            (None, Some(n)) => Framing::Length(n),
            (None, None) => Framing::UntilClose,
        }
    };
    let keep_alive = framing != Framing::UntilClose && !upgrade && !close && (http11 || keep_alive_token);
    Ok(Some(ResponseHead {
        status,
        fields,
        framing,
        keep_alive,
    }))
}

/// Reads a response body from its connection as the client side asks for it.
pub struct BodyReader {
    conn: Conn,
    state: Reading,
    keep_alive: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reading {
    Length(u64),
    Chunked(chunked::Decoder),
    UntilClose,
    Done,
}

impl BodyReader {
    pub fn new(conn: Conn, head: &ResponseHead) -> Self {
        let state = match head.framing {
            Framing::Empty => Reading::Done,
            Framing::Length(n) => Reading::Length(n),
            Framing::Chunked => Reading::Chunked(chunked::Decoder::new()),
            Framing::UntilClose => Reading::UntilClose,
        };
        Self {
            conn,
            state,
            keep_alive: head.keep_alive,
        }
    }

    pub fn is_done(&self) -> bool {
        self.state == Reading::Done
    }

    pub fn remaining(&self) -> Option<u64> {
        match self.state {
            Reading::Length(n) => Some(n),
            Reading::Done => Some(0),
            _ => None,
        }
    }

    /// The connection, when the body ended cleanly and the connection may carry another request.
    pub fn into_reusable(self) -> Option<Conn> {
        let mut conn = self.conn;
        (self.state == Reading::Done && self.keep_alive && conn.buf.is_empty()).then(|| {
            conn.served += 1;
            conn
        })
    }

    /// The next piece of body: `None` at its end.
    pub fn poll_data(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, H1Error>>> {
        loop {
            match self.step() {
                Ok(Step::Data(b)) => return Poll::Ready(Some(Ok(b))),
                Ok(Step::Done) => return Poll::Ready(None),
                Ok(Step::NeedMore) => {}
                Err(e) => {
                    self.keep_alive = false;
                    return Poll::Ready(Some(Err(e)));
                }
            }
            match ready!(self.conn.poll_fill(cx)) {
                Ok(0) if self.state == Reading::UntilClose => self.state = Reading::Done,
                Ok(0) => {
                    self.keep_alive = false;
                    return Poll::Ready(Some(Err(H1Error::Truncated)));
                }
                Ok(_) => {}
                Err(e) => {
                    self.keep_alive = false;
                    return Poll::Ready(Some(Err(H1Error::Read(e))));
                }
            }
        }
    }

    /// Decodes what is buffered without reading.
    fn step(&mut self) -> Result<Step, H1Error> {
        let buf = &mut self.conn.buf;
        match &mut self.state {
            Reading::Done => Ok(Step::Done),
            Reading::Length(_) | Reading::UntilClose if buf.is_empty() => Ok(Step::NeedMore),
            Reading::Length(n) => {
                let take = usize::try_from(*n).unwrap_or(usize::MAX).min(buf.len());
                *n -= take as u64;
                if *n == 0 {
                    self.state = Reading::Done;
                }
                Ok(Step::Data(buf.split_to(take).freeze()))
            }
            Reading::UntilClose => Ok(Step::Data(buf.split().freeze())),
            Reading::Chunked(decoder) => Ok(match decoder.decode(buf)? {
                chunked::Decoded::Data(b) => Step::Data(b),
                chunked::Decoded::NeedMore => Step::NeedMore,
                chunked::Decoded::Done => {
                    self.state = Reading::Done;
                    Step::Done
                }
            }),
        }
    }
}

enum Step {
    Data(Bytes),
    NeedMore,
    Done,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a test reports failure by panicking
mod tests {
    use super::super::conn_pool::UpstreamBody;
    use super::*;
    use crate::proxy::headers::Overrides;
    use http::HeaderValue;

    fn parse(raw: &[u8], request_was_head: bool) -> Result<Option<ResponseHead>, H1Error> {
        parse_head(&mut BytesMut::from(raw), request_was_head)
    }

    /// The parsed head, its fields materialized for inspection.
    fn head(raw: &str) -> Parsed {
        let h = parse(raw.as_bytes(), false).expect("valid").expect("complete");
        Parsed {
            headers: h.fields.to_header_map(),
            head: h,
        }
    }

    struct Parsed {
        head: ResponseHead,
        headers: http::HeaderMap,
    }

    impl std::ops::Deref for Parsed {
        type Target = ResponseHead;
        fn deref(&self) -> &ResponseHead {
            &self.head
        }
    }

    #[test]
    fn content_length_frames_the_body_and_keeps_the_connection() {
        let h = head("HTTP/1.1 200 OK\r\nContent-Length: 12\r\nX-A: b\r\n\r\n");
        assert_eq!(h.framing, Framing::Length(12));
        assert!(h.keep_alive);
        assert_eq!(h.headers["content-length"], "12");
        assert_eq!(h.headers["x-a"], "b");
    }

    #[test]
    fn chunked_wins_over_content_length_and_the_length_is_not_forwarded() {
        let h = head("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n");
        assert_eq!(h.framing, Framing::Chunked);
        assert!(!h.headers.contains_key("content-length"));
        assert!(!h.headers.contains_key("transfer-encoding"));
    }

    #[test]
    fn conflicting_content_lengths_are_an_invalid_response() {
        let r = parse(
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
            false,
        );
        assert!(
            matches!(r, Err(H1Error::Framing(FramingError::ConflictingLength))),
            "{r:?}"
        );
        let r = parse(b"HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\n", false);
        assert!(
            matches!(r, Err(H1Error::Framing(FramingError::ContentLength(_)))),
            "{r:?}"
        );
        // The same value twice is one length.
        let h = head("HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\n");
        assert_eq!(h.framing, Framing::Length(5));
    }

    #[test]
    fn no_length_means_until_close_and_no_reuse() {
        let h = head("HTTP/1.1 200 OK\r\n\r\n");
        assert_eq!(h.framing, Framing::UntilClose);
        assert!(!h.keep_alive);
        let h = head("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n");
        assert_eq!(h.framing, Framing::UntilClose);
    }

    #[test]
    fn head_204_and_304_have_no_body_whatever_they_declare() {
        let h = parse(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n", true)
            .unwrap()
            .unwrap();
        assert_eq!(h.framing, Framing::Empty);
        assert_eq!(head("HTTP/1.1 204 No Content\r\n\r\n").framing, Framing::Empty);
        assert_eq!(
            head("HTTP/1.1 304 Not Modified\r\nContent-Length: 7\r\n\r\n").framing,
            Framing::Empty
        );
    }

    #[test]
    fn connection_close_and_http10_without_keep_alive_prevent_reuse() {
        assert!(!head("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nConnection: close\r\n\r\n").keep_alive);
        assert!(!head("HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n").keep_alive);
        assert!(head("HTTP/1.0 200 OK\r\nContent-Length: 1\r\nConnection: keep-alive\r\n\r\n").keep_alive);
    }

    #[test]
    fn hop_by_hop_fields_and_those_connection_names_are_removed() {
        let h = head(
            "HTTP/1.1 200 OK\r\nConnection: x-secret, keep-alive\r\nX-Secret: 1\r\nKeep-Alive: timeout=5\r\n\
             Upgrade: h2c\r\nX-Kept: 2\r\nContent-Length: 0\r\n\r\n",
        );
        for gone in ["connection", "x-secret", "keep-alive", "upgrade"] {
            assert!(!h.headers.contains_key(gone), "{gone} was forwarded");
        }
        assert_eq!(h.headers["x-kept"], "2");
    }

    #[test]
    fn switching_protocols_keeps_upgrade_and_is_not_reusable() {
        let h = head("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n");
        assert_eq!(h.headers["upgrade"], "websocket");
        assert!(!h.keep_alive);
        assert_eq!(h.framing, Framing::Empty);
    }

    #[test]
    fn an_incomplete_head_asks_for_more() {
        assert!(parse(b"HTTP/1.1 200 OK\r\nContent-Le", false).unwrap().is_none());
    }

    /// Feeds a body through a real socket pair in pieces of every size, to exercise every split point.
    async fn read_body(framing: Framing, wire: &[u8], piece: usize) -> (Result<Vec<u8>, String>, bool) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let wire = wire.to_vec();
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            for p in wire.chunks(piece) {
                s.write_all(p).await.unwrap();
                s.flush().await.unwrap();
                tokio::task::yield_now().await;
            }
            // Keep the socket open briefly so "until close" is distinguishable from the end of a framed body.
            tokio::time::sleep(Duration::from_millis(20)).await;
        });
        let conn = Conn::connect(&addr.to_string()).await.unwrap();
        let head = ResponseHead {
            status: StatusCode::OK,
            fields: RawFields::default(),
            framing,
            keep_alive: true,
        };
        let mut reader = BodyReader::new(conn, &head);
        let mut got = Vec::new();
        let result = loop {
            match std::future::poll_fn(|cx| reader.poll_data(cx)).await {
                Some(Ok(b)) => got.extend_from_slice(&b),
                Some(Err(e)) => break Err(e.to_string()),
                None => break Ok(got),
            }
        };
        let reusable = reader.into_reusable().is_some();
        server.await.unwrap();
        (result, reusable)
    }

    #[tokio::test]
    async fn chunked_bodies_decode_at_every_split_point() {
        let wire = b"5\r\nhello\r\n1;ext=1\r\n \r\n6\r\nworld!\r\n0\r\nTrailer: x\r\n\r\n";
        for piece in 1..wire.len() {
            let (body, reusable) = read_body(Framing::Chunked, wire, piece).await;
            assert_eq!(body.as_deref(), Ok(&b"hello world!"[..]), "split every {piece} bytes");
            assert!(reusable, "split every {piece} bytes");
        }
    }

    #[tokio::test]
    async fn a_truncated_chunked_body_is_an_error_and_the_connection_is_not_reused() {
        let (body, reusable) = read_body(Framing::Chunked, b"5\r\nhel", 2).await;
        assert!(body.is_err());
        assert!(!reusable);
    }

    #[tokio::test]
    async fn chunk_data_without_crlf_is_refused() {
        let (body, reusable) = read_body(Framing::Chunked, b"5\r\nhelloXX0\r\n\r\n", 64).await;
        assert!(body.is_err());
        assert!(!reusable);
    }

    #[tokio::test]
    async fn a_length_body_ends_exactly_at_its_length() {
        let (body, reusable) = read_body(Framing::Length(5), b"hello", 2).await;
        assert_eq!(body.as_deref(), Ok(&b"hello"[..]));
        assert!(reusable);
        // Bytes past the declared length mean the server is broken: never reuse such a connection.
        let (body, reusable) = read_body(Framing::Length(5), b"helloEXTRA", 64).await;
        assert_eq!(body.as_deref(), Ok(&b"hello"[..]));
        assert!(!reusable);
    }

    /// What a plain-HTTP hop from a documentation address forwards, with request id `id`.
    fn test_forwarding(overridden: &Overrides) -> Forwarding<'_> {
        static ID: HeaderValue = HeaderValue::from_static("id");
        Forwarding {
            previous_hop: "192.0.2.1".parse().unwrap(),
            scheme: "http",
            request_id: &ID,
            upgrade: false,
            overridden,
        }
    }

    #[tokio::test]
    async fn requests_are_framed_by_the_body_they_carry() {
        use http_body_util::Full;
        let encode = |method: Method, body: UpstreamBody| {
            let (mut parts, ()) = http::Request::builder()
                .method(method)
                .uri("/p?q=1")
                .header("host", "h")
                .header("content-length", "999")
                .header("cookie", "a=1")
                .header("cookie", "b=2")
                .body(())
                .unwrap()
                .into_parts();
            parts.headers.insert("x", HeaderValue::from_static("y"));
            let overridden = Overrides::default();
            let fwd = test_forwarding(&overridden);
            let mut out = BytesMut::new();
            let chunked = encode_head(&parts, &body, &fwd, &mut out);
            (String::from_utf8(out.to_vec()).unwrap(), chunked)
        };
        let full = |s: &'static str| -> UpstreamBody { Full::new(Bytes::from(s)).map_err(|n| match n {}).boxed() };
        let (head, chunked) = encode(Method::POST, full("abc"));
        assert!(!chunked);
        assert!(head.starts_with("POST /p?q=1 HTTP/1.1\r\n"));
        assert!(head.contains("content-length: 3\r\n"), "{head}");
        assert!(!head.contains("999"), "the client's framing leaked: {head}");
        assert!(head.contains("cookie: a=1; b=2\r\n"), "{head}");
        assert!(head.ends_with("\r\n\r\n"));
        let (head, _) = encode(Method::GET, full(""));
        assert!(!head.contains("content-length"), "{head}");
        let stream: UpstreamBody = UnknownSize(false).boxed();
        let (head, chunked) = encode(Method::POST, stream);
        assert!(chunked);
        assert!(head.contains("transfer-encoding: chunked\r\n"), "{head}");
    }

    /// The connection's own timer: a request answered in time leaves it armed for a far deadline, and the
    /// next request on the connection still times out at its own, nearer one (not the earlier request's);
    /// a request given more time than the timer was armed for is not cut short by it.
    #[tokio::test]
    async fn each_request_on_a_connection_times_out_at_its_own_deadline() {
        use tokio::io::AsyncReadExt as _;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        // Answers the first request and the third, stays silent on the second.
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = vec![0u8; 4096];
            for answer in [true, false, true] {
                let mut got = Vec::new();
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    let n = s.read(&mut buf).await.unwrap();
                    assert!(n > 0, "client closed");
                    got.extend_from_slice(&buf[..n]);
                }
                if answer {
                    s.write_all(b"HTTP/1.1 204 No Content\r\n\r\n").await.unwrap();
                }
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        });
        let (parts, ()) = http::Request::builder()
            .uri("/")
            .header("host", "h")
            .body(())
            .unwrap()
            .into_parts();
        let overridden = Overrides::default();
        let fwd = test_forwarding(&overridden);
        let empty = || http_body_util::Empty::<Bytes>::new();
        let mut conn = Conn::connect(&addr.to_string()).await.unwrap();
        let now = tokio::time::Instant::now;
        let head = conn
            .send_by(now() + Duration::from_secs(30), &parts, &fwd, empty())
            .await;
        assert_eq!(head.unwrap().status, StatusCode::NO_CONTENT);

        let started = now();
        let silent = conn
            .send_by(started + Duration::from_millis(150), &parts, &fwd, empty())
            .await;
        assert!(matches!(silent, Err(H1Error::TimedOut)), "{silent:?}");
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(140) && took < Duration::from_secs(5),
            "{took:?}"
        );

        // The timer is now armed for 150 ms after `started`, which has passed; this request has longer.
        let mut conn = conn;
        let late = conn
            .send_by(now() + Duration::from_secs(30), &parts, &fwd, empty())
            .await;
        assert_eq!(late.unwrap().status, StatusCode::NO_CONTENT);
        server.abort();
    }

    /// A one-frame body whose size is not known in advance, like a client's chunked upload.
    struct UnknownSize(bool);

    impl Body for UnknownSize {
        type Data = Bytes;
        type Error = BoxError;

        fn poll_frame(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<hyper::body::Frame<Bytes>, BoxError>>> {
            if self.0 {
                return Poll::Ready(None);
            }
            self.0 = true;
            Poll::Ready(Some(Ok(hyper::body::Frame::data(Bytes::from_static(b"x")))))
        }
    }
}
