//! The request pipeline: what happens to a request between the listener and the upstream.
//!
//! Phases, in order, each a function below with its contract:
//! 0. `acme_challenge` — an ACME http-01 validation request for a token Rampart is waiting on is answered
//!    with its key authorization, before any limit, inspection, route or redirect can interfere; any other
//!    request (other paths, unknown tokens) goes on unchanged.
//! 1. `admit`    — size limits; may answer itself (413).
//!    `limit`    — rate limits and the rate-limit blacklist (`policy_phase`): 429 with `Retry-After` and
//!    `RateLimit-*` headers. Refusals here and blocks by the WAF phase are offences that escalation
//!    (`waf.auto_ban`) counts towards an XDP ban.
//! 2. `route`    — choose the route by host, path, method and conditions (404 when none matches); plain HTTP
//!    on a route with `ssl_redirect` is answered with a redirect to HTTPS.
//! 3. `waf`      — inspect the head, and the body up to `waf.body_inspection_limit` (`waf_phase`); a block is
//!    answered here (403 naming the request id) and logged as a security event. Nothing has been sent
//!    upstream yet.
//! 4. `cache`    — for a request a cache rule covers (`cache_phase`): answer from the response cache
//!    (memory, then Redis), or wait for a concurrent fetch of the same key; otherwise forward and store.
//!    After the WAF on purpose: a request the WAF refuses is never answered from the cache.
//! 5. `rewrite`  — the path (prefix strip/rewrite) and the request headers the route asks for.
//! 6. `forward`  — pick a server from the route's pool, send, retry idempotent requests on connection
//!    failures, relay the response; failures become 502/503/504 naming the request id.
//! 7. `respond`  — response header rewrites, security headers, `X-Request-Id`, HSTS on TLS, metrics.
//!
//! This module accepts no sockets (see `net`) and reads no files: it is handed the connection facts and the
//! request, and uses the configuration generation current when the request arrived.

pub mod added_fields;
mod body;
mod bot_phase;
pub mod cache;
mod cache_phase;
mod challenge_phase;
mod forward;
pub(crate) mod headers;
pub mod metrics;
mod policy_phase;
pub mod request_id;
pub mod response_body;
pub mod route;
pub mod runtime;
pub mod upstream;
mod waf_phase;
mod websocket;

use std::borrow::Cow;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Request, Response, StatusCode, Uri};
use http_body_util::Full;
use hyper::body::Body;

use crate::net::client_addr;
use crate::policy::bot::BotState;
use crate::policy::challenge::Challenges;
use crate::policy::escalation::{Escalation, Offence};
use crate::telemetry::request_log::{Outcome, RequestHead, RequestLogs};
pub use body::InspectedBody;
pub use challenge_phase::BotMetrics;
pub use forward::ForwardError;
use metrics::ProxyMetrics;
use route::{RequestFacts, RouteSettings};
pub use runtime::{LiveRuntime, ReloadError, Runtime};
use upstream::conn_pool::BoxError;
pub use waf_phase::{WafMetrics, WafStats};

pub use added_fields::AddedFields;
pub use response_body::ResponseBody;

/// What a request is answered with: the response, and the fields this hop adds to it, which the server side
/// writes (HTTP/1.1) or puts into the map (`into_response`, for HTTP/2).
pub struct Answer {
    pub response: Response<ResponseBody>,
    pub added: AddedFields,
}

impl Answer {
    /// The response with every field in its map.
    pub fn into_response(self) -> Response<ResponseBody> {
        let (mut parts, body) = self.response.into_parts();
        self.added.apply(&mut parts.headers, body.upstream_fields());
        let mut resp = Response::from_parts(parts, body);
        response_body::materialize(&mut resp);
        resp
    }
}

/// What the listener knows about the connection a request came on.
#[derive(Clone, Copy, Debug)]
pub struct Connection {
    /// The TCP peer.
    pub peer: SocketAddr,
    /// The client as far as the connection tells (the PROXY protocol source when one was sent).
    pub client: IpAddr,
    pub tls: bool,
}

/// Per-request state carried through the phases.
pub struct RequestContext {
    /// The client as decisions see it: resolved through trusted proxies' X-Forwarded-For.
    pub client: IpAddr,
    /// The address this hop received the request from (the TCP peer, or the PROXY protocol source): what
    /// X-Forwarded-For and `Forwarded` get appended, as every proxy appends its own previous hop.
    pub previous_hop: IpAddr,
    pub scheme: &'static str,
    pub request_id: HeaderValue,
    /// Microseconds in the WAF phase and waiting for the upstream's response head (performance log).
    pub waf_us: AtomicU64,
    pub upstream_us: AtomicU64,
}

pub struct Proxy {
    live: Arc<LiveRuntime>,
    forwarder: forward::Forwarder,
    metrics: Arc<ProxyMetrics>,
    /// Offence scores and auto-bans (`waf.auto_ban`); kept across configuration generations.
    escalation: Option<Arc<Escalation>>,
    /// XDP is not in force: the geo policy is enforced here instead.
    geo_at_l7: bool,
    /// The response cache's stores; kept across configuration generations (the rules are per generation).
    cache: Arc<cache::ResponseCache>,
    /// The access and performance logs.
    logs: RequestLogs,
    /// Bot detection's behaviour per client and DNS answers; kept across generations.
    bots: Arc<BotState>,
    /// The challenge signing key and CAPTCHA client; kept across generations.
    challenges: Arc<Challenges>,
}

impl Proxy {
    pub fn new(
        live: Arc<LiveRuntime>,
        metrics: Arc<ProxyMetrics>,
        escalation: Option<Arc<Escalation>>,
        geo_at_l7: bool,
        cache: Arc<cache::ResponseCache>,
    ) -> Self {
        let keepalive = std::time::Duration::from_secs(live.load().config.server.keepalive_timeout);
        let bots = Arc::new(BotState::new(&live.load().config.waf.bot_protection));
        Self {
            live,
            forwarder: forward::Forwarder::new(keepalive),
            metrics,
            escalation,
            geo_at_l7,
            cache,
            logs: RequestLogs::default(),
            bots,
            challenges: Arc::new(Challenges::ephemeral()),
        }
    }

    /// Signs challenges with the daemon's kept key (and checks CAPTCHAs) instead of a key of this process.
    #[must_use]
    pub fn with_challenges(mut self, challenges: Challenges) -> Self {
        self.challenges = Arc::new(challenges);
        self
    }

    /// Writes a record of every request to the access log, and of slow ones to the performance log.
    #[must_use]
    pub fn with_request_logs(mut self, logs: RequestLogs) -> Self {
        self.logs = logs;
        self
    }

    fn offence(&self, client: IpAddr, offence: Offence) {
        if let Some(e) = &self.escalation {
            e.record(client, offence);
        }
    }

    pub fn live(&self) -> &Arc<LiveRuntime> {
        &self.live
    }

    /// Runs the pipeline for one request. Never fails: every error is an HTTP answer. `B` is the body type of
    /// whichever server parsed the request (`net::h1` for HTTP/1.1, hyper for HTTP/2).
    // Not an `async fn`: one moves every argument out of the future's captures into a local of its own when
    // first polled, a ~250-byte copy of the request per level on the request path; an `async move` block uses
    // its captures in place.
    #[allow(clippy::manual_async_fn)]
    pub fn handle<B>(&self, req: Request<B>, conn: &Connection) -> impl Future<Output = Answer>
    where
        B: Body<Data = Bytes> + Send + Unpin + 'static,
        B::Error: Into<BoxError>,
    {
        async move {
            let started = Instant::now();
            let rt = self.live.load();
            let ctx = RequestContext {
                client: client_addr::resolve(conn.client, req.headers(), &rt.trusted_proxies),
                previous_hop: conn.client,
                scheme: if conn.tls { "https" } else { "http" },
                request_id: request_id::from_or_new(req.headers().get(&request_id::HEADER)),
                waf_us: AtomicU64::new(0),
                upstream_us: AtomicU64::new(0),
            };
            let head = self.logs.enabled().then(|| RequestHead::of(&req));
            let (resp, upstream) = self.pipeline(&rt, req, &ctx).await;
            let hsts = if conn.tls {
                rt.tls.as_ref().and_then(|t| t.hsts.clone())
            } else {
                None
            };
            if rt.bots.is_some() && rt.config.waf.bot_protection.behavioral_analysis {
                self.bots.behaviours.response(ctx.client, resp.status().as_u16());
            }
            let total = started.elapsed();
            self.metrics.observe(upstream.unwrap_or("-"), resp.status(), total);
            if let Some(head) = head
                && self.logs.wanted(total)
            {
                let micros = |slot: &AtomicU64| std::time::Duration::from_micros(slot.load(Ordering::Relaxed));
                self.logs.write(&head.record(Outcome {
                    client: ctx.client,
                    status: resp.status().as_u16(),
                    bytes: resp.body().size_hint().exact(),
                    upstream,
                    request_id: ctx.request_id.to_str().unwrap_or("-"),
                    total,
                    waf: micros(&ctx.waf_us),
                    upstream_wait: micros(&ctx.upstream_us),
                }));
            }
            Answer {
                response: resp,
                added: AddedFields {
                    security: Arc::clone(&rt.security_headers),
                    request_id: ctx.request_id,
                    hsts,
                },
            }
        }
    }

    // Not an `async fn`, for the reason given at `Proxy::handle`.
    #[allow(clippy::manual_async_fn)]
    fn pipeline<'a, B>(
        &'a self,
        rt: &'a Runtime,
        req: Request<B>,
        ctx: &RequestContext,
    ) -> impl Future<Output = (Response<ResponseBody>, Option<&'a str>)>
    where
        B: Body<Data = Bytes> + Send + Unpin + 'static,
        B::Error: Into<BoxError>,
    {
        async move {
            // Phases that most requests skip, or that are large, run boxed (`Box::pin`): an `async fn`'s state is
            // as large as its largest await, and this future is boxed, copied and touched whole on every request.
            // Inline, the cache and WAF phases made it ~10 KB for a proxied GET that uses neither.
            if let Some(answer) = acme_challenge(&req, &self.live.hub().challenges) {
                return (answer, None);
            }
            if let Some(answer) = admit(&req, rt.max_request_size, ctx) {
                return (answer, None);
            }
            let country = rt.country(ctx.client);
            if self.geo_at_l7
                && let Some(answer) = policy_phase::geo(&rt.config.waf.geo_blocking, country.as_deref(), ctx)
            {
                return (answer, None);
            }
            if let Some(limiter) = &rt.rate_limits
                && let Some((answer, offence)) = Box::pin(policy_phase::rate_limit(limiter, &req, ctx)).await
            {
                self.offence(ctx.client, offence);
                return (answer, None);
            }
            let challenger = challenge_phase::Challenger {
                challenges: &self.challenges,
                bot: &rt.config.waf.bot_protection,
                metrics: &self.metrics.bot,
            };
            if req.uri().path() == crate::policy::challenge::page::VERIFY_PATH {
                let (answer, offence) = Box::pin(challenge_phase::verify(&challenger, req, ctx)).await;
                if let Some(o) = offence {
                    self.offence(ctx.client, o);
                }
                return (answer, None);
            }
            let host = request_host(&req);
            if let Some(bots) = &rt.bots
                && let Some((answer, offence)) = Box::pin(bot_phase::screen(
                    bots,
                    &self.bots,
                    &challenger,
                    &req,
                    host.as_deref(),
                    ctx,
                ))
                .await
            {
                if let Some(o) = offence {
                    self.offence(ctx.client, o);
                }
                return (answer, None);
            }
            let facts = RequestFacts {
                host: host.as_deref(),
                path: req.uri().path(),
                query: req.uri().query(),
                method: req.method(),
                headers: req.headers(),
                client: ctx.client,
            };
            let Some(route) = rt.routes.find(&facts) else {
                return (
                    local_error(StatusCode::NOT_FOUND, "no route matches this request", ctx),
                    None,
                );
            };
            if route.ssl_redirect && ctx.scheme == "http" && rt.tls.is_some() {
                return (
                    https_redirect(&req, host.as_deref(), rt.config.ssl.port.get(), ctx),
                    Some(&*route.upstream),
                );
            }
            let Some(pool) = rt.upstreams.get(&route.upstream) else {
                return (
                    local_error(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "the route's upstream does not exist",
                        ctx,
                    ),
                    None,
                );
            };
            // A generation with the WAF off never holds an engine (`set_waf_rule` builds one only when it is
            // on): the flag spares the swap's load, atomic operations on every request.
            let engine = if rt.config.waf.enabled {
                rt.waf.load_full()
            } else {
                None
            };
            let mut req = match engine {
                Some(engine) => {
                    let custom_rules = rt.custom_rules.load();
                    let rule_limits = rt.rule_limits.load();
                    let rules = waf_phase::RulesContext {
                        rules: &custom_rules,
                        limits: &rule_limits,
                        now_ns: rt.now_ns(),
                        country: country.as_deref(),
                        challenger: &challenger,
                    };
                    let started = self.logs.enabled().then(Instant::now);
                    let outcome = Box::pin(waf_phase::inspect(
                        &engine,
                        &rules,
                        req,
                        Some(route.name.as_str()),
                        ctx,
                        &rt.block_response,
                        &self.metrics.waf,
                        rt.max_request_size,
                    ))
                    .await;
                    record_micros(&ctx.waf_us, started);
                    match outcome {
                        waf_phase::Outcome::Forward(req) => req,
                        waf_phase::Outcome::Refused(resp, offence) => {
                            self.offence(ctx.client, offence);
                            return (resp, Some(&*route.upstream));
                        }
                        waf_phase::Outcome::Answer(resp) => return (resp, Some(&*route.upstream)),
                    }
                }
                None => req.map(InspectedBody::Stream),
            };
            // The host is looked up again only when caching is configured: `req` has moved since.
            let plan = if rt.cache_rules.any() {
                rt.cache_rules.plan(&route.name, &req, request_host(&req).as_deref())
            } else {
                None
            };
            rewrite_path(&mut req, route);
            let started = self.logs.enabled().then(Instant::now);
            let outcome = match plan {
                Some(plan) => {
                    let fetch = cache_phase::Fetch {
                        cache: self.cache.clone(),
                        forwarder: self.forwarder,
                        route: route.clone(),
                        pool: pool.clone(),
                        max_body: rt.max_request_size,
                    };
                    Box::pin(cache_phase::handle(&fetch, plan, req, ctx)).await
                }
                None => self.forwarder.forward(req, ctx, route, pool, rt.max_request_size).await,
            };
            record_micros(&ctx.upstream_us, started);
            let resp = match outcome {
                Ok(resp) => resp,
                Err(e) => {
                    self.metrics.error(e.kind());
                    e.response(ctx, &route.upstream)
                }
            };
            let mut resp = resp;
            if !route.response_headers.is_empty() {
                response_body::materialize(&mut resp);
                route.response_headers.apply(resp.headers_mut());
            }
            (resp, Some(&*route.upstream))
        }
    }

    pub fn metrics(&self) -> &Arc<ProxyMetrics> {
        &self.metrics
    }
}

/// Keeps the time since `started` in `slot` (microseconds), for the performance log; nothing when no log
/// asked for timings (`started` is then `None`: the clock was not read).
fn record_micros(slot: &AtomicU64, started: Option<Instant>) {
    let Some(started) = started else { return };
    slot.store(
        u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
        Ordering::Relaxed,
    );
}

/// The key authorization for an http-01 validation of a token an open ACME order is waiting on.
fn acme_challenge<B>(req: &Request<B>, challenges: &crate::tls::Challenges) -> Option<Response<ResponseBody>> {
    let path = req.uri().path();
    if !path.starts_with(crate::tls::challenge::HTTP01_PREFIX) {
        return None;
    }
    let answer = challenges.http01_answer(path)?;
    let mut resp = local_response(StatusCode::OK, &answer);
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    Some(resp)
}

/// Refuses requests that declare a body over `server.max_request_size`; bodies without a length are
/// limited while streaming by `forward`.
fn admit<B>(req: &Request<B>, max: u64, ctx: &RequestContext) -> Option<Response<ResponseBody>> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match declared {
        Some(len) if len > max => Some(local_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("request body of {len} bytes exceeds the limit of {max} bytes"),
            ctx,
        )),
        _ => None,
    }
}

/// The request's host, lower-cased and without port: the Host header, else the URI authority (HTTP/2).
/// Borrowed when it is already lower case, as nearly every host is.
fn request_host<B>(req: &Request<B>) -> Option<Cow<'_, str>> {
    let raw = req
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| req.uri().host())?;
    let host = if raw.starts_with('[') {
        raw.find(']').map_or(raw, |end| &raw[..=end])
    } else {
        match raw.rsplit_once(':') {
            Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) => h,
            _ => raw,
        }
    };
    Some(if host.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(host.to_ascii_lowercase())
    } else {
        Cow::Borrowed(host)
    })
}

fn https_redirect<B>(req: &Request<B>, host: Option<&str>, port: u16, ctx: &RequestContext) -> Response<ResponseBody> {
    let Some(host) = host else {
        return local_error(
            StatusCode::BAD_REQUEST,
            "HTTPS is required and the request names no host",
            ctx,
        );
    };
    let authority = if port == 443 {
        host.to_owned()
    } else {
        format!("{host}:{port}")
    };
    let target = req.uri().path_and_query().map_or("/", |p| p.as_str());
    let location = format!("https://{authority}{target}");
    let mut resp = local_response(StatusCode::MOVED_PERMANENTLY, &format!("moved to {location}\n"));
    if let Ok(v) = HeaderValue::from_str(&location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp
}

/// Applies the route's `strip_prefix` and `prefix_rewrite` to the request path.
fn rewrite_path<B>(req: &mut Request<B>, route: &RouteSettings) {
    let path = req.uri().path();
    let mut new: Cow<'_, str> = Cow::Borrowed(path);
    if let Some(prefix) = &route.strip_prefix
        && let Some(rest) = strip_on_boundary(&new, prefix)
    {
        new = Cow::Owned(if rest.starts_with('/') {
            rest.to_owned()
        } else {
            format!("/{rest}")
        });
    }
    if let Some(rw) = &route.prefix_rewrite
        && let Some(rest) = strip_on_boundary(&new, &rw.from)
    {
        new = Cow::Owned(format!("{}{rest}", rw.to));
    }
    if new == path {
        return;
    }
    let target = match req.uri().query() {
        Some(q) => format!("{new}?{q}"),
        None => new.into_owned(),
    };
    if let Ok(uri) = target.parse::<Uri>() {
        *req.uri_mut() = uri;
    }
}

/// `path` without `prefix` when the prefix ends at a segment boundary (`/api` strips `/api/x`, not `/apix`).
fn strip_on_boundary<'a>(path: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = path.strip_prefix(prefix)?;
    (prefix.ends_with('/') || rest.is_empty() || rest.starts_with('/')).then_some(rest)
}

/// A small plain-text answer generated by Rampart itself.
pub fn local_response(status: StatusCode, body: &str) -> Response<ResponseBody> {
    let mut resp = Response::new(ResponseBody::new(Full::new(Bytes::from(body.to_owned()))));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

/// An error page naming the request id, so a user's report can be matched to the log.
pub fn local_error(status: StatusCode, message: &str, ctx: &RequestContext) -> Response<ResponseBody> {
    let id = ctx.request_id.to_str().unwrap_or("-");
    local_response(
        status,
        &format!(
            "{} {}: {message} (request id {id})\n",
            status.as_u16(),
            status.canonical_reason().unwrap_or("")
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_loses_its_port_and_case_and_falls_back_to_the_authority() {
        let host = |h: &str| {
            let req = Request::builder().header(header::HOST, h).body(()).expect("request");
            request_host(&req).map(Cow::into_owned)
        };
        assert_eq!(host("Example.COM:8080").as_deref(), Some("example.com"));
        assert_eq!(host("example.com").as_deref(), Some("example.com"));
        assert_eq!(host("[2001:DB8::1]:443").as_deref(), Some("[2001:db8::1]"));
        assert_eq!(host("example.com:x").as_deref(), Some("example.com:x"));
        let h2 = Request::builder()
            .uri("https://Api.Example.com/x")
            .body(())
            .expect("request");
        assert_eq!(request_host(&h2).as_deref(), Some("api.example.com"));
    }

    #[test]
    fn prefixes_are_stripped_only_on_segment_boundaries() {
        assert_eq!(strip_on_boundary("/api/users", "/api"), Some("/users"));
        assert_eq!(strip_on_boundary("/api", "/api"), Some(""));
        assert_eq!(strip_on_boundary("/apix", "/api"), None);
        assert_eq!(strip_on_boundary("/api/x", "/api/"), Some("x"));
    }

    /// A proxy (geo enforced at L7, no escalation) over the configuration in `yaml`, and its metrics registry.
    fn test_proxy(yaml: &str, hub: Arc<crate::tls::CertHub>) -> (Proxy, prometheus::Registry) {
        let config = crate::config::load_str(yaml, "test.yaml", Vec::new()).expect("config");
        let live = Arc::new(LiveRuntime::new(config, None, hub).expect("runtime"));
        let registry = prometheus::Registry::new();
        let cache = cache::ResponseCache::new(&live.load().config.proxy.caching, &registry).expect("cache");
        let metrics = Arc::new(ProxyMetrics::new(&registry).expect("metrics"));
        (Proxy::new(live, metrics, None, true, cache), registry)
    }

    /// A plain connection from 127.0.0.1.
    fn test_connection() -> Connection {
        Connection {
            peer: "127.0.0.1:40000".parse().expect("addr"),
            client: "127.0.0.1".parse().expect("addr"),
            tls: false,
        }
    }

    fn waf_inspected(registry: &prometheus::Registry) -> f64 {
        registry
            .gather()
            .iter()
            .filter(|f| f.name() == "rampart_waf_requests_total")
            .flat_map(|f| f.get_metric().iter().map(|m| m.get_counter().get_value()))
            .sum()
    }

    /// The request future is boxed and copied whole for every request, so it must stay small: the phases most
    /// requests skip (cache, WAF, bots, challenges, rate limits) run boxed. Inline they made it ~10 KB, whose
    /// copy cost more than the WAF-off pipeline's own work in profiles.
    #[test]
    fn the_request_future_stays_small() {
        let yaml =
            "proxy:\n  upstreams:\n    - {name: app, servers: [{host: 127.0.0.1, port: 9}]}\nxdp:\n  enabled: false\n";
        let (proxy, _registry) = test_proxy(yaml, Arc::new(crate::tls::CertHub::new(false)));
        let conn = test_connection();
        let req = Request::builder()
            .uri("/")
            .body(crate::net::h1::RequestBody::empty())
            .expect("request");
        let size = std::mem::size_of_val(&proxy.handle(req, &conn));
        // Release builds lay it out in ~4.4 KB; unoptimised test builds need more room for the same code.
        assert!(size <= 6 * 1024, "the request future grew to {size} bytes");
    }

    /// An http-01 validation is answered before every other phase: a limit, a redirect or the WAF (here in
    /// blocking mode, facing a query it blocks anywhere else) never sees it, and only tokens an order waits
    /// on are answered.
    #[tokio::test]
    async fn an_acme_challenge_is_answered_before_limits_routes_and_the_waf() {
        let yaml = "server:\n  max_request_size: 10\n\
                    proxy:\n  upstreams:\n    - {name: app, servers: [{host: 127.0.0.1, port: 9}]}\n\
                    \x20 routes:\n    - {pattern: /*, upstream: app}\n\
                    waf:\n  enabled: true\n  mode: block\n  overrides_file: /nonexistent/rampart-test-overrides.json\n\
                    xdp:\n  enabled: false\n";
        let hub = Arc::new(crate::tls::CertHub::new(false));
        hub.challenges.set_http01("tok-1", "tok-1.thumbprint");
        let (proxy, registry) = test_proxy(yaml, Arc::clone(&hub));
        let conn = test_connection();
        let attack = "?q=1%27%20UNION%20SELECT%20password%20FROM%20users--";
        let request = |path: String| {
            Request::builder()
                .uri(path)
                .header(header::HOST, "www.rampart.test")
                .header(header::CONTENT_LENGTH, "100")
                .body(Full::new(Bytes::from(vec![b'x'; 100])))
                .expect("request")
        };
        let resp = proxy
            .handle(request(format!("/.well-known/acme-challenge/tok-1{attack}")), &conn)
            .await
            .into_response();
        assert_eq!(resp.status(), StatusCode::OK);
        let body = http_body_util::BodyExt::collect(resp.into_body())
            .await
            .expect("body")
            .to_bytes();
        assert_eq!(&body[..], b"tok-1.thumbprint");
        assert_eq!(waf_inspected(&registry), 0.0, "the WAF saw the validation request");

        // Anything else goes through the pipeline: an unknown token meets the size limit, and without the
        // oversized body the WAF blocks the same query.
        let resp = proxy
            .handle(request(format!("/.well-known/acme-challenge/other{attack}")), &conn)
            .await
            .into_response();
        assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
        let resp = proxy
            .handle(
                Request::builder()
                    .uri(format!("/.well-known/acme-challenge/other{attack}"))
                    .header(header::HOST, "www.rampart.test")
                    .body(Full::new(Bytes::new()))
                    .expect("request"),
                &conn,
            )
            .await
            .into_response();
        assert_eq!(resp.status(), StatusCode::FORBIDDEN);
        assert_eq!(waf_inspected(&registry), 1.0);
        hub.challenges.clear_http01("tok-1");
        let resp = proxy
            .handle(request("/.well-known/acme-challenge/tok-1".into()), &conn)
            .await
            .into_response();
        assert_eq!(
            resp.status(),
            StatusCode::PAYLOAD_TOO_LARGE,
            "a cleared token is not answered"
        );
    }
}
