//! Sending a request to an upstream server over a pooled keep-alive connection and relaying the answer.

use std::error::Error as _;
use std::time::Duration;

use http::header::{self, HeaderValue};
use http::{Request, Response, StatusCode, Uri, Version};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tracing::debug;

use super::headers::{add_forwarded, strip_hop_by_hop};
use super::upstream::Server;
use super::{RequestContext, ResponseBody, local_response};

/// Request body as sent upstream: streamed, never buffered, cut off past `server.max_request_size`.
type UpstreamBody = Limited<Incoming>;

/// Idle connections kept per upstream server; beyond this, finished connections are closed.
const MAX_IDLE_PER_SERVER: usize = 512;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

pub struct Forwarder {
    client: Client<HttpConnector, UpstreamBody>,
    timeout: Duration,
}

impl Forwarder {
    /// `timeout` bounds the wait for the response head; `idle` is how long a pooled connection may sit idle.
    pub fn new(timeout: Duration, idle: Duration) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(CONNECT_TIMEOUT));
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(idle)
            .pool_max_idle_per_host(MAX_IDLE_PER_SERVER)
            .build(connector);
        Self { client, timeout }
    }

    pub async fn forward(
        &self,
        req: Request<Incoming>,
        ctx: &RequestContext,
        server: &Server,
        max_body: u64,
    ) -> Response<ResponseBody> {
        let (mut parts, body) = req.into_parts();
        let host = parts
            .headers
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .or_else(|| parts.uri.authority().map(|a| a.to_string()));
        let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        parts.uri = match format!("http://{}{path}", server.authority).parse::<Uri>() {
            Ok(uri) => uri,
            Err(_) => return local_response(StatusCode::BAD_REQUEST, "request target is not a valid URI\n"),
        };
        // Upstream connections are HTTP/1.1 whatever the client spoke (an h2 request keeps its semantics).
        parts.version = Version::HTTP_11;
        strip_hop_by_hop(&mut parts.headers, false);
        add_forwarded(&mut parts.headers, ctx.client.ip(), ctx.scheme, host.as_deref());
        if let Some(h) = host.as_deref().and_then(|h| HeaderValue::from_str(h).ok()) {
            parts.headers.insert(header::HOST, h);
        }
        let limit = usize::try_from(max_body).unwrap_or(usize::MAX);
        let upstream_req = Request::from_parts(parts, Limited::new(body, limit));

        match tokio::time::timeout(self.timeout, self.client.request(upstream_req)).await {
            Err(_) => local_response(
                StatusCode::GATEWAY_TIMEOUT,
                &format!(
                    "upstream `{}` ({}) did not answer in time\n",
                    server.upstream, server.authority
                ),
            ),
            Ok(Err(e)) if caused_by_length_limit(&e) => local_response(
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!("request body exceeds the limit of {max_body} bytes\n"),
            ),
            Ok(Err(e)) => {
                debug!(upstream = server.upstream, server = server.authority, error = %e, "upstream request failed");
                local_response(
                    StatusCode::BAD_GATEWAY,
                    &format!(
                        "upstream `{}` ({}) could not be reached\n",
                        server.upstream, server.authority
                    ),
                )
            }
            Ok(Ok(resp)) => {
                let (mut parts, body) = resp.into_parts();
                strip_hop_by_hop(&mut parts.headers, false);
                Response::from_parts(parts, body.boxed())
            }
        }
    }
}

fn caused_by_length_limit(e: &hyper_util::client::legacy::Error) -> bool {
    let mut source = e.source();
    while let Some(s) = source {
        if s.is::<LengthLimitError>() {
            return true;
        }
        source = s.source();
    }
    false
}
