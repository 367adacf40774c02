//! Sending a request to a server of the route's pool over a pooled keep-alive connection (see
//! `upstream::conn_pool`), and relaying the answer. Idempotent requests are retried on another server when the
//! connection fails or the server does not answer in time, with a short backoff; a request whose body has
//! already been streamed is never retried — such bodies are buffered first (up to `MAX_RETRY_BODY`) when the
//! route allows retries.
//!
//! Every attempt is tracked on the server from pick to the end of the response body (`InFlight`), which is
//! what least-connections balancing and `max_connections` see, and its outcome feeds the server's breaker.

use std::error::Error as _;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::uri::PathAndQuery;
use http::{Method, Request, Response, StatusCode, Uri, Version};
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::{Body, Frame, Incoming};
use tracing::debug;

use super::headers::{add_forwarded, rewrite, strip_hop_by_hop};
use super::route::RouteSettings;
use super::upstream::conn_pool::{BoxError, Pooled, SendError, UpstreamBody};
use super::upstream::{Outcome, Server, UpstreamPool};
use super::{RequestContext, ResponseBody, local_error, websocket};

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

pub struct Forwarder {
    /// How long a pooled upstream connection may sit idle before it is not reused.
    idle_timeout: Duration,
}

/// The request body as it can be sent: once (streaming) or any number of times (buffered).
enum Payload {
    Stream(Option<Limited<Incoming>>),
    Buffered(Bytes),
}

impl Forwarder {
    pub fn new(idle_timeout: Duration) -> Self {
        Self { idle_timeout }
    }

    pub async fn forward(
        &self,
        mut req: Request<Incoming>,
        ctx: &RequestContext,
        route: &RouteSettings,
        pool: &UpstreamPool,
        max_body: u64,
    ) -> Result<Response<ResponseBody>, ForwardError> {
        let upgrade = websocket::is_upgrade(&req).then(|| hyper::upgrade::on(&mut req));
        let (mut parts, body) = req.into_parts();
        // HTTP/2 requests carry the host in the URI authority; HTTP/1.1 upstreams need it as a header.
        if !parts.headers.contains_key(header::HOST)
            && let Some(h) = parts
                .uri
                .authority()
                .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
        {
            parts.headers.insert(header::HOST, h);
        }
        let host = parts
            .headers
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        strip_hop_by_hop(&mut parts.headers, upgrade.is_some());
        add_forwarded(&mut parts.headers, ctx.previous_hop, ctx.scheme, host.as_deref());
        parts.headers.insert(super::request_id::HEADER, ctx.request_id.clone());
        rewrite(&mut parts.headers, &route.request_headers);
        // Upstream connections are HTTP/1.1 whatever the client spoke (an h2 request keeps its semantics), and
        // the request target is sent in origin form.
        parts.version = Version::HTTP_11;
        parts.uri = Uri::from(
            parts
                .uri
                .path_and_query()
                .cloned()
                .unwrap_or_else(|| PathAndQuery::from_static("/")),
        );
        let limit = usize::try_from(max_body).unwrap_or(usize::MAX);

        let attempts = if upgrade.is_none() && is_idempotent(&parts.method) {
            route.retry_attempts
        } else {
            0
        };
        let mut payload = if attempts > 0 && body_fits(&parts.headers) {
            match Limited::new(body, limit).collect().await {
                Ok(collected) => Payload::Buffered(collected.to_bytes()),
                Err(e) if e.is::<LengthLimitError>() => return Err(ForwardError::BodyTooLarge(max_body)),
                Err(_) => return Err(ForwardError::Unreachable),
            }
        } else {
            Payload::Stream(Some(Limited::new(body, limit)))
        };

        let mut tried = Vec::new();
        let mut last = ForwardError::NoServer;
        for attempt in 0..=attempts {
            if attempt > 0 {
                tokio::time::sleep(RETRY_BACKOFF * (1 << (attempt - 1).min(5))).await;
            }
            let Some((index, server)) = pool.pick(ctx.client, &tried) else {
                break;
            };
            tried.push(index);
            let body: UpstreamBody = match &mut payload {
                Payload::Buffered(bytes) => Full::new(bytes.clone()).map_err(|never| match never {}).boxed(),
                Payload::Stream(stream) => match stream.take() {
                    Some(s) => s.map_err(|e| e as BoxError).boxed(),
                    None => break,
                },
            };
            // The last possible attempt takes the parts; earlier ones need them again after a failure.
            let attempt_parts = if attempt == attempts {
                std::mem::replace(&mut parts, blank_parts())
            } else {
                parts.clone()
            };
            let guard = InFlight::start(Arc::clone(&server));
            let started = Instant::now();
            let exchange = server.pool.send(
                &server.authority,
                self.idle_timeout,
                Request::from_parts(attempt_parts, body),
            );
            match tokio::time::timeout(route.timeout, exchange).await {
                Ok(Ok((resp, pooled))) => {
                    let latency = started.elapsed();
                    return Ok(match upgrade {
                        Some(client_side) => websocket::relay(resp, client_side, guard, pooled, latency),
                        None => relay(resp, guard, pooled, latency),
                    });
                }
                Ok(Err(SendError::Exchange(e))) if caused_by_length_limit(&e) => {
                    guard.finish(Outcome::Cancelled, None);
                    return Err(ForwardError::BodyTooLarge(max_body));
                }
                Ok(Err(e)) => {
                    debug!(upstream = pool.name, server = server.id, error = %e, "upstream request failed");
                    guard.finish(Outcome::Failure, None);
                    last = ForwardError::Unreachable;
                }
                Err(_) => {
                    guard.finish(Outcome::Failure, None);
                    last = ForwardError::Timeout;
                }
            }
        }
        Err(last)
    }
}

/// Strips hop-by-hop headers from the upstream response and ties the in-flight guard and the connection to its
/// body: the request ends, and the connection goes back to the pool, when the body has been relayed.
pub(super) fn relay(
    resp: Response<Incoming>,
    mut guard: InFlight,
    pooled: Pooled,
    latency: Duration,
) -> Response<ResponseBody> {
    let (mut parts, body) = resp.into_parts();
    strip_hop_by_hop(&mut parts.headers, false);
    guard.set_latency(latency);
    let mut body = GuardedBody {
        inner: body,
        guard,
        pooled: Some(pooled),
    };
    if body.inner.is_end_stream() {
        // An empty body is complete already: hand the connection back now.
        body.release();
    }
    Response::from_parts(parts, body.boxed())
}

fn blank_parts() -> http::request::Parts {
    Request::new(()).into_parts().0
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

fn caused_by_length_limit(e: &hyper::Error) -> bool {
    let mut source = e.source();
    while let Some(s) = source {
        if s.is::<LengthLimitError>() {
            return true;
        }
        source = s.source();
    }
    false
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
        self.server.end(outcome, latency.or(self.latency), Instant::now());
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if !self.done {
            // The response head arrived, so the server did its part, whatever happened to the body later.
            self.server.end(Outcome::Success, self.latency, Instant::now());
        }
    }
}

/// A response body that keeps its request counted on the server until it is fully sent or dropped, and
/// returns the connection to the pool when it ends.
struct GuardedBody {
    inner: Incoming,
    guard: InFlight,
    pooled: Option<Pooled>,
}

impl GuardedBody {
    fn release(&mut self) {
        if let Some(p) = self.pooled.take() {
            self.guard.server.pool.release(p);
        }
    }
}

impl Body for GuardedBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(None) => self.release(),
            Poll::Ready(Some(Ok(_))) if self.inner.is_end_stream() => self.release(),
            // A broken body leaves the connection in an unknown state: it must not be reused.
            Poll::Ready(Some(Err(_))) => self.pooled = None,
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}
