//! The cache on the request path, between the WAF phase and forwarding (a blocked request never reaches it):
//! answer from memory or Redis, coalesce concurrent misses, forward the rest and store what may be stored.
//!
//! Only bodies up to `memory_cache.max_object_size` are read whole to be stored; a longer one streams on to
//! the client (what was read, then the rest) and is not stored. Answers carry `X-Cache` (`HIT`, `MISS`,
//! `STALE`) and, from the cache, `Age`; conditional requests get 304 from a stored response.

use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{Empty, Full};
use hyper::body::Body;
use tracing::debug;

use super::body::{self, InspectedBody, Prefix};
use super::cache::entry::{Entry, Freshness, unix_ms};
use super::cache::policy::{self, Conditional, RequestMode, Rule};
use super::cache::{Flight, FlightGuard, Level, Plan, ResponseCache};
use super::forward::{ForwardError, Forwarder};
use super::route::RouteSettings;
use super::upstream::UpstreamPool;
use super::upstream::conn_pool::BoxError;
use super::{RequestContext, ResponseBody};

pub const X_CACHE: HeaderName = HeaderName::from_static("x-cache");

/// Everything a fetch needs, owned, so that a background refresh can run on its own.
#[derive(Clone)]
pub struct Fetch {
    pub cache: Arc<ResponseCache>,
    pub forwarder: Forwarder,
    pub route: Arc<RouteSettings>,
    pub pool: Arc<UpstreamPool>,
    pub max_body: u64,
}

/// Answers a request that a cache rule covers. Errors are the forwarding errors the caller turns into 5xx.
pub async fn handle<B>(
    f: &Fetch,
    plan: Plan<'_>,
    req: Request<InspectedBody<B>>,
    ctx: &RequestContext,
) -> Result<Response<ResponseBody>, ForwardError>
where
    B: Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<BoxError>,
{
    let cache = &f.cache;
    let head = req.method() == Method::HEAD;
    let mut stale: Option<Arc<Entry>> = None;
    let mut guard: Option<FlightGuard> = None;
    if plan.mode == RequestMode::Lookup {
        if let Some(e) = cache.get_memory(&plan.key, req.headers()) {
            match e.freshness(now_ms()) {
                Freshness::Fresh => {
                    cache.hit(Level::Memory);
                    return Ok(answer(cache, &e, req.headers(), head, "HIT"));
                }
                Freshness::Revalidate => {
                    cache.stale_served();
                    if let Flight::Leader(g) = cache.begin(&plan.key) {
                        refresh_in_background(f.clone(), plan.rule.clone(), plan.key.clone(), &req, ctx, g);
                    }
                    return Ok(answer(cache, &e, req.headers(), head, "STALE"));
                }
                Freshness::IfError => stale = Some(e),
                Freshness::Expired => {}
            }
        }
        match cache.begin(&plan.key) {
            Flight::Leader(g) => {
                if let Some(e) = cache.get_redis(&plan.key, req.headers()).await
                    && e.freshness(now_ms()) == Freshness::Fresh
                {
                    cache.hit(Level::Redis);
                    return Ok(answer(cache, &e, req.headers(), head, "HIT"));
                }
                guard = Some(g);
            }
            Flight::Follower(mut rx) => {
                // Woken when the leader is done (its sender dropped); bounded by the route's timeout.
                let _ = tokio::time::timeout(f.route.timeout, rx.changed()).await;
                if let Some(e) = cache.get_memory(&plan.key, req.headers())
                    && e.freshness(now_ms()) == Freshness::Fresh
                {
                    cache.hit(Level::Memory);
                    return Ok(answer(cache, &e, req.headers(), head, "HIT"));
                }
            }
            Flight::Alone => {}
        }
    }
    cache.miss();
    let (mut parts, body) = req.into_parts();
    let client_headers = parts.headers.clone();
    if !head {
        // The stored copy must be the full response; the client's own condition is answered from it.
        strip_conditions(&mut parts.headers);
    }
    let outcome = f
        .forwarder
        .forward(Request::from_parts(parts, body), ctx, &f.route, &f.pool, f.max_body)
        .await;
    let resp = match outcome {
        Ok(resp) if resp.status().is_server_error() && usable_on_error(stale.as_ref()) => {
            return Ok(serve_stale(cache, stale, &client_headers, head));
        }
        Ok(resp) => resp,
        Err(e) if usable_on_error(stale.as_ref()) => {
            debug!(
                error = e.kind(),
                "upstream failed: serving a stale copy (stale-if-error)"
            );
            return Ok(serve_stale(cache, stale, &client_headers, head));
        }
        Err(e) => return Err(e),
    };
    if head {
        return Ok(mark(resp, "MISS"));
    }
    let kept = keep(f, plan.rule, plan.key, &client_headers, resp).await?;
    drop(guard);
    Ok(match kept {
        Kept::Stored(e) => answer(cache, &e, &client_headers, false, "MISS"),
        Kept::Passed(resp) => mark(*resp, "MISS"),
    })
}

fn usable_on_error(stale: Option<&Arc<Entry>>) -> bool {
    stale.is_some_and(|e| e.freshness(now_ms()) != Freshness::Expired)
}

fn serve_stale(
    cache: &ResponseCache,
    stale: Option<Arc<Entry>>,
    request: &HeaderMap,
    head: bool,
) -> Response<ResponseBody> {
    cache.stale_served();
    match stale {
        Some(e) => answer(cache, &e, request, head, "STALE"),
        None => super::local_response(StatusCode::BAD_GATEWAY, "no stale copy\n"),
    }
}

enum Kept {
    Stored(Arc<Entry>),
    /// Not storable (or too large): the response as it came, body streaming.
    Passed(Box<Response<ResponseBody>>),
}

/// Stores the upstream's response when the rules allow and its body fits.
async fn keep(
    f: &Fetch,
    rule: &Rule,
    key: String,
    request: &HeaderMap,
    mut resp: Response<ResponseBody>,
) -> Result<Kept, ForwardError> {
    super::response_body::materialize(&mut resp);
    let now = SystemTime::now();
    let lifetime = match policy::storable(&Method::GET, request, resp.status(), resp.headers(), rule, now) {
        Ok(l) => l,
        Err(why) => {
            debug!(?why, "response not stored");
            return Ok(Kept::Passed(Box::new(resp)));
        }
    };
    if resp
        .body()
        .size_hint()
        .exact()
        .is_some_and(|n| n > f.cache.max_object as u64)
    {
        return Ok(Kept::Passed(Box::new(resp)));
    }
    let (parts, body) = resp.into_parts();
    match body::read_prefix(body, f.cache.max_object).await {
        Ok(Prefix::Whole(bytes)) => {
            let (stored, compressed) = f.cache.pack(bytes);
            let e = Arc::new(Entry::new(
                parts.status,
                &parts.headers,
                request,
                stored,
                compressed,
                lifetime,
                now,
            ));
            f.cache.store(key, e.clone());
            Ok(Kept::Stored(e))
        }
        Ok(Prefix::Over(read, rest)) => Ok(Kept::Passed(Box::new(Response::from_parts(
            parts,
            ResponseBody::new(InspectedBody::Prefixed(Some(read), rest)),
        )))),
        Err(e) => {
            debug!(error = %e, "upstream body failed while being read for the cache");
            Err(ForwardError::Unreachable)
        }
    }
}

/// Refetches a stale entry while the stale copy is served; the guard keeps other refreshes of it away.
fn refresh_in_background<B>(
    f: Fetch,
    rule: Rule,
    key: String,
    req: &Request<B>,
    ctx: &RequestContext,
    guard: FlightGuard,
) {
    let mut headers = req.headers().clone();
    strip_conditions(&mut headers);
    let client_headers = req.headers().clone();
    let mut builder = Request::builder().method(Method::GET).uri(req.uri().clone());
    if let Some(h) = builder.headers_mut() {
        *h = headers;
    }
    let Ok(upstream_req) = builder.body(Empty::<Bytes>::new()) else {
        return;
    };
    let ctx = RequestContext {
        client: ctx.client,
        previous_hop: ctx.previous_hop,
        scheme: ctx.scheme,
        request_id: ctx.request_id.clone(),
        // A background refresh is nobody's request: its times are not logged.
        waf_us: std::sync::atomic::AtomicU64::new(0),
        upstream_us: std::sync::atomic::AtomicU64::new(0),
    };
    tokio::spawn(async move {
        if let Ok(resp) = f
            .forwarder
            .forward(upstream_req, &ctx, &f.route, &f.pool, f.max_body)
            .await
        {
            let _ = keep(&f, &rule, key, &client_headers, resp).await;
        }
        drop(guard);
    });
}

fn strip_conditions(h: &mut HeaderMap) {
    for name in [
        header::IF_NONE_MATCH,
        header::IF_MODIFIED_SINCE,
        header::IF_MATCH,
        header::IF_UNMODIFIED_SINCE,
        header::IF_RANGE,
    ] {
        h.remove(name);
    }
}

fn now_ms() -> u64 {
    unix_ms(SystemTime::now())
}

fn mark(mut resp: Response<ResponseBody>, word: &'static str) -> Response<ResponseBody> {
    resp.headers_mut().insert(X_CACHE, HeaderValue::from_static(word));
    resp
}

/// The client's answer from a stored entry: 304 when its condition holds, else the stored response.
fn answer(
    cache: &ResponseCache,
    e: &Entry,
    request: &HeaderMap,
    head: bool,
    word: &'static str,
) -> Response<ResponseBody> {
    let age = HeaderValue::from(e.age_secs(now_ms()));
    if e.status == StatusCode::OK && policy::conditional(request, &e.headers) == Conditional::NotModified {
        let mut resp = Response::new(ResponseBody::empty());
        *resp.status_mut() = StatusCode::NOT_MODIFIED;
        let h = resp.headers_mut();
        for name in [
            header::ETAG,
            header::LAST_MODIFIED,
            header::CACHE_CONTROL,
            header::EXPIRES,
            header::VARY,
            header::CONTENT_LOCATION,
        ] {
            for v in e.headers.get_all(&name) {
                h.append(name.clone(), v.clone());
            }
        }
        h.insert(header::AGE, age);
        h.insert(X_CACHE, HeaderValue::from_static(word));
        return resp;
    }
    let Some(body) = cache.unpack(e) else {
        return super::local_response(StatusCode::BAD_GATEWAY, "a stored response could not be read\n");
    };
    let len = body.len();
    let mut resp = if head {
        Response::new(ResponseBody::empty())
    } else {
        Response::new(ResponseBody::new(Full::new(body)))
    };
    *resp.status_mut() = e.status;
    let h = resp.headers_mut();
    *h = e.headers.clone();
    h.insert(header::AGE, age);
    h.insert(X_CACHE, HeaderValue::from_static(word));
    if head {
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    }
    resp
}
