//! Sending a request to a server of the route's pool over a pooled keep-alive connection (see
//! `upstream::conn_pool`), and relaying the answer. Idempotent requests are retried on another server when the
//! connection fails or the server does not answer in time, with a short backoff; a request whose body has
//! already been streamed is never retried — such bodies are buffered first (up to `MAX_RETRY_BODY`) when the
//! route allows retries.
//!
//! Every attempt is tracked on the server from pick to the end of the response body (`InFlight`), which is
//! what least-connections balancing and `max_connections` see, and its outcome feeds the server's breaker.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::{Body, Frame};
use tracing::debug;

use super::headers::Forwarding;
use super::route::RouteSettings;
use super::upstream::conn_pool::BoxError;
use super::upstream::h1::{self, BodyReader, Conn};
use super::upstream::{Outcome, Server, UpstreamPool};
use super::{RequestContext, ResponseBody, local_error, websocket};
use crate::net::h1::OnUpgrade;

/// Largest body buffered so that an idempotent request can be retried.
const MAX_RETRY_BODY: u64 = 1024 * 1024;
const RETRY_BACKOFF: Duration = Duration::from_millis(25);

/// Why a request got no upstream response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForwardError {
    NoServer,
    Timeout,
    Unreachable,
    BodyTooLarge(u64),
}

impl ForwardError {
    pub fn kind(self) -> &'static str {
        match self {
            Self::NoServer => "no_server",
            Self::Timeout => "timeout",
            Self::Unreachable => "unreachable",
            Self::BodyTooLarge(_) => "body_too_large",
        }
    }

    pub fn response(self, ctx: &RequestContext, upstream: &str) -> Response<ResponseBody> {
        let (status, message) = match self {
            Self::NoServer => (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("no healthy server in upstream `{upstream}`"),
            ),
            Self::Timeout => (
                StatusCode::GATEWAY_TIMEOUT,
                format!("upstream `{upstream}` did not answer in time"),
            ),
            Self::Unreachable => (
                StatusCode::BAD_GATEWAY,
                format!("upstream `{upstream}` could not be reached"),
            ),
            Self::BodyTooLarge(max) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("request body exceeds the limit of {max} bytes"),
            ),
        };
        local_error(status, &message, ctx)
    }
}

#[derive(Clone, Copy)]
pub struct Forwarder {
    /// How long a pooled upstream connection may sit idle before it is not reused.
    idle_timeout: Duration,
}

/// The request body as it can be sent: once (streaming) or any number of times (buffered).
enum Payload<B> {
    Stream(Option<Limited<B>>),
    Buffered(Bytes),
}

/// The body of one attempt, without boxing: a copy of a buffered body, or the client's stream.
pub enum AttemptBody<B> {
    Bytes(Option<Bytes>),
    Stream(Limited<B>),
}

impl<B> Body for AttemptBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match &mut *self {
            Self::Bytes(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            Self::Stream(stream) => Pin::new(stream).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Self::Bytes(bytes) => bytes.is_none(),
            Self::Stream(stream) => stream.is_end_stream(),
        }
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        match self {
            Self::Bytes(bytes) => hyper::body::SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64)),
            Self::Stream(stream) => stream.size_hint(),
        }
    }
}

impl Forwarder {
    pub fn new(idle_timeout: Duration) -> Self {
        Self { idle_timeout }
    }

    // Not an `async fn`, for the reason given at `Proxy::handle`.
    #[allow(clippy::manual_async_fn)]
    pub fn forward<B>(
        &self,
        mut req: Request<B>,
        ctx: &RequestContext,
        route: &RouteSettings,
        pool: &UpstreamPool,
        max_body: u64,
    ) -> impl Future<Output = Result<Response<ResponseBody>, ForwardError>>
    where
        B: Body<Data = Bytes> + Send + Unpin + 'static,
        B::Error: Into<BoxError>,
    {
        async move {
            let upgrade = if websocket::is_upgrade(&req) {
                req.extensions_mut().remove::<OnUpgrade>()
            } else {
                None
            };
            let (mut parts, body) = req.into_parts();
            // HTTP/2 requests carry the host in the URI authority; HTTP/1.1 upstreams need it as a header.
            if let Some(authority) = parts.uri.authority()
                && !parts.headers.contains_key(header::HOST)
                && let Ok(h) = HeaderValue::from_str(authority.as_str())
            {
                parts.headers.insert(header::HOST, h);
            }
            if !route.request_headers.is_empty() {
                route.request_headers.apply(&mut parts.headers);
            }
            let fwd = Forwarding {
                previous_hop: ctx.previous_hop,
                scheme: ctx.scheme,
                request_id: &ctx.request_id,
                upgrade: upgrade.is_some(),
                overridden: &route.forwarding_overrides,
            };
            // Upstream connections are HTTP/1.1 whatever the client spoke (an h2 request keeps its semantics);
            // `h1` writes the request target in origin form.
            let limit = usize::try_from(max_body).unwrap_or(usize::MAX);

            let attempts = if upgrade.is_none() && is_idempotent(&parts.method) {
                route.retry_attempts
            } else {
                0
            };
            let mut payload = if body.is_end_stream() {
                Payload::Buffered(Bytes::new())
            } else if attempts > 0 && body_fits(&parts.headers) {
                match Limited::new(body, limit).collect().await {
                    Ok(collected) => Payload::Buffered(collected.to_bytes()),
                    Err(e) if e.is::<LengthLimitError>() => return Err(ForwardError::BodyTooLarge(max_body)),
                    Err(_) => return Err(ForwardError::Unreachable),
                }
            } else {
                Payload::Stream(Some(Limited::new(body, limit)))
            };

            let mut tried = Tried::default();
            let mut last = ForwardError::NoServer;
            for attempt in 0..=attempts {
                if attempt > 0 {
                    tokio::time::sleep(RETRY_BACKOFF * (1 << (attempt - 1).min(5))).await;
                }
                let Some((index, server)) = pool.pick(ctx.client, tried.as_slice()) else {
                    break;
                };
                tried.push(index);
                let guard = InFlight::start(Arc::clone(&server));
                let started = Instant::now();
                let deadline = tokio::time::Instant::from_std(started) + route.timeout;
                match self
                    .exchange(&server, &parts, &fwd, &mut payload, started, deadline)
                    .await
                {
                    Ok((head, conn)) => {
                        let latency = started.elapsed();
                        return Ok(match upgrade {
                            Some(client_side) if head.status == StatusCode::SWITCHING_PROTOCOLS => {
                                websocket::tunnel(head, conn, client_side, guard, latency)
                            }
                            _ => relay(head, conn, guard, latency, self.idle_timeout),
                        });
                    }
                    Err(e) if e.is_length_limit() => {
                        guard.finish(Outcome::Cancelled, None);
                        return Err(ForwardError::BodyTooLarge(max_body));
                    }
                    Err(h1::H1Error::TimedOut) => {
                        guard.finish(Outcome::Failure, None);
                        last = ForwardError::Timeout;
                    }
                    Err(e) => {
                        debug!(upstream = pool.name, server = server.id, error = %e, "upstream request failed");
                        guard.finish(Outcome::Failure, None);
                        last = ForwardError::Unreachable;
                    }
                }
                if matches!(payload, Payload::Stream(None)) {
                    // The body is gone with the failed attempt: nothing is left to retry with.
                    break;
                }
            }
            Err(last)
        }
    }

    /// One attempt on one server, all of it by `deadline` (`H1Error::TimedOut` after): a pooled connection (or
    /// a new one), the request, the response head. A pooled
    /// connection that turns out to have been closed by the server is replaced by a fresh one once, when the
    /// request can be sent again — the server never saw it.
    async fn exchange<B>(
        &self,
        server: &Server,
        parts: &http::request::Parts,
        fwd: &Forwarding<'_>,
        payload: &mut Payload<B>,
        now: Instant,
        deadline: tokio::time::Instant,
    ) -> Result<(h1::ResponseHead, Conn), h1::H1Error>
    where
        B: Body<Data = Bytes> + Send + Unpin + 'static,
        B::Error: Into<BoxError>,
    {
        let pooled = server.pool.checkout(self.idle_timeout, now);
        let reused = pooled.is_some();
        let mut conn = match pooled {
            Some(c) => c,
            None => Conn::connect_by(&server.authority, deadline).await?,
        };
        let Some(body) = payload.body() else {
            return Err(h1::H1Error::RequestBody(
                "the request body was consumed by an earlier attempt".into(),
            ));
        };
        match conn.send_by(deadline, parts, fwd, body).await {
            Ok(head) => Ok((head, conn)),
            Err(e) if reused && e.is_stale_connection() && payload.replayable() => {
                debug!(
                    server = server.id,
                    "pooled connection was closed by the server; sending on a new one"
                );
                let mut conn = Conn::connect_by(&server.authority, deadline).await?;
                let body = payload.body().ok_or(e)?;
                let head = conn.send_by(deadline, parts, fwd, body).await?;
                Ok((head, conn))
            }
            Err(e) => Err(e),
        }
    }
}

/// The servers already tried for one request, on the stack for the usual few attempts.
#[derive(Default)]
struct Tried {
    first: [usize; TRIED_INLINE],
    len: usize,
    /// Every tried server once there are more than `TRIED_INLINE` (long retry lists).
    all: Vec<usize>,
}

const TRIED_INLINE: usize = 4;

impl Tried {
    fn push(&mut self, index: usize) {
        if self.len < TRIED_INLINE {
            self.first[self.len] = index;
        } else {
            if self.all.is_empty() {
                self.all.extend_from_slice(&self.first);
            }
            self.all.push(index);
        }
        self.len += 1;
    }

    fn as_slice(&self) -> &[usize] {
        if self.len <= TRIED_INLINE {
            &self.first[..self.len]
        } else {
            &self.all
        }
    }
}

impl<B> Payload<B> {
    /// The body for one attempt: a copy of a buffered body, or the stream itself (once).
    fn body(&mut self) -> Option<AttemptBody<B>> {
        match self {
            Payload::Buffered(bytes) => Some(AttemptBody::Bytes((!bytes.is_empty()).then(|| bytes.clone()))),
            Payload::Stream(stream) => stream.take().map(AttemptBody::Stream),
        }
    }

    /// Whether the body can be sent again: buffered, or an empty stream that nobody has read from.
    fn replayable(&self) -> bool {
        match self {
            Payload::Buffered(_) => true,
            Payload::Stream(_) => false,
        }
    }
}

/// Builds the client's response from the upstream's head and ties the in-flight guard and the connection to its
/// body: the request ends, and the connection goes back to the pool, when the body has been read to its end.
pub(super) fn relay(
    head: h1::ResponseHead,
    conn: Conn,
    mut guard: InFlight,
    latency: Duration,
    idle_timeout: Duration,
) -> Response<ResponseBody> {
    guard.set_latency(latency);
    let reader = BodyReader::new(conn, &head);
    let mut body = GuardedBody {
        reader: Some(reader),
        guard,
        idle_timeout,
    };
    if body.reader.as_ref().is_some_and(BodyReader::is_done) {
        // An empty body is complete already: hand the connection back now.
        body.release();
    }
    // The map starts empty (no allocation): the upstream's fields stay raw with the body, and `net::h1`
    // copies them to the client without building a map (`http1::raw_fields`).
    let mut resp = Response::new(ResponseBody::relayed(body, head.fields));
    *resp.status_mut() = head.status;
    resp
}

fn is_idempotent(m: &Method) -> bool {
    matches!(
        *m,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::PUT | Method::DELETE | Method::TRACE
    )
}

/// Whether the declared body is small enough to buffer for retries (no declared length: only if chunked is
/// absent, i.e. no body).
fn body_fits(headers: &http::HeaderMap) -> bool {
    match headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
    {
        Some(len) => len <= MAX_RETRY_BODY,
        None => !headers.contains_key(header::TRANSFER_ENCODING),
    }
}

/// A request in flight on a server: counted from pick until the response body ends (or the client goes away).
pub struct InFlight {
    server: Arc<Server>,
    latency: Option<Duration>,
    done: bool,
}

impl InFlight {
    fn start(server: Arc<Server>) -> Self {
        server.begin();
        Self {
            server,
            latency: None,
            done: false,
        }
    }

    /// Time to the response head, recorded into the server's latency average when the request ends.
    pub fn set_latency(&mut self, latency: Duration) {
        self.latency = Some(latency);
    }

    pub fn finish(mut self, outcome: Outcome, latency: Option<Duration>) {
        self.done = true;
        self.server
            .end(outcome, latency.or(self.latency), crate::clock::coarse_now);
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if !self.done {
            // The response head arrived, so the server did its part, whatever happened to the body later.
            self.server
                .end(Outcome::Success, self.latency, crate::clock::coarse_now);
        }
    }
}

/// A response body that keeps its request counted on the server until it is fully sent or dropped, and
/// returns the connection to the pool when it ends.
pub(super) struct GuardedBody {
    reader: Option<BodyReader>,
    guard: InFlight,
    idle_timeout: Duration,
}

impl GuardedBody {
    fn release(&mut self) {
        if let Some(conn) = self.reader.take().and_then(BodyReader::into_reusable) {
            self.guard.server.pool.checkin(conn, self.idle_timeout);
        }
    }
}

impl Body for GuardedBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let Some(reader) = self.reader.as_mut() else {
            return Poll::Ready(None);
        };
        match ready!(reader.poll_data(cx)) {
            Some(Ok(data)) => {
                if reader.is_done() {
                    self.release();
                }
                Poll::Ready(Some(Ok(Frame::data(data))))
            }
            None => {
                self.release();
                Poll::Ready(None)
            }
            Some(Err(e)) => {
                // A broken body leaves the connection in an unknown state: it is closed, never reused.
                self.reader = None;
                Poll::Ready(Some(Err(Box::new(e))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.reader.as_ref().is_none_or(BodyReader::is_done)
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        match self.reader.as_ref().map_or(Some(0), BodyReader::remaining) {
            Some(n) => hyper::body::SizeHint::with_exact(n),
            None => hyper::body::SizeHint::default(),
        }
    }
}
