//! The WAF phase of the pipeline: runs the engine of the current generation on the request head and, when
//! there is one, its body (read up to `waf.body_inspection_limit`, then forwarded as read), and turns the
//! verdict into an answer, a security event and metrics. A request without a body and with a clean head
//! costs the engine's inspection only: no copy of anything.
//!
//! This is the proxy's I/O around the engine; the engine itself (`crate::waf`) does none.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Request, Response, StatusCode};
use hyper::body::Body;
use prometheus::{Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts, Registry};
use tracing::warn;

use super::body::{InspectedBody, Prefix, read_prefix};
use super::challenge_phase::{Challenged, Challenger};
use super::upstream::conn_pool::BoxError;
use super::{RequestContext, ResponseBody, local_response};
use crate::config::schema::CustomRule;
use crate::config::schema::{BlockResponse, BodyOverflow};
use crate::policy::escalation::Offence;
use crate::policy::ratelimit::Refusal;
use crate::policy::ratelimit::store::{Key, Store};
use crate::waf::engine::{Inspection, Verdict};
use crate::waf::event::SecurityEvent;
use crate::waf::rules::{self, CustomRules, Decision, RuleInput};
use crate::waf::{Engine, Family, RequestView};

/// `rampart_waf_requests_total{action}`, `rampart_waf_blocked_requests_total{attack_type}` and
/// `rampart_waf_request_duration_seconds{phase}`. Labels are closed sets (actions, families, phases).
pub struct WafMetrics {
    blocked: IntCounterVec,
    /// The series every request touches, resolved once: a label lookup hashes and takes a lock.
    by_action: [IntCounter; 4],
    head: Histogram,
    body: Histogram,
}

/// Which part of a request a verdict is about (the `phase` label).
#[derive(Clone, Copy)]
enum Phase {
    Head,
    Body,
}

const ACTIONS: [&str; 4] = ["allowed", "blocked", "challenged", "logged"];

fn action_index(verdict: &Verdict) -> usize {
    match verdict {
        Verdict::Allow => 0,
        Verdict::Block(_) => 1,
        Verdict::Challenge(_) => 2,
        Verdict::Log(_) => 3,
    }
}

impl WafMetrics {
    pub fn new(registry: &Registry) -> prometheus::Result<Self> {
        let requests = IntCounterVec::new(
            Opts::new(
                "rampart_waf_requests_total",
                "Requests inspected by the WAF, by outcome.",
            ),
            &["action"],
        )?;
        let blocked = IntCounterVec::new(
            Opts::new(
                "rampart_waf_blocked_requests_total",
                "Requests blocked (or challenged) by the WAF, by attack type.",
            ),
            &["attack_type"],
        )?;
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "rampart_waf_request_duration_seconds",
                "Time the WAF engine spent inspecting a request (excluding reading the body).",
            )
            .buckets(vec![
                0.000_002, 0.000_005, 0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.0025, 0.01,
            ]),
            &["phase"],
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(blocked.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        // Every label value is known up front: export zeros, so a dashboard sees the series before the first
        // attack.
        let by_action = ACTIONS.map(|a| requests.with_label_values(&[a]));
        for f in Family::ALL {
            blocked.with_label_values(&[f.name()]);
        }
        Ok(Self {
            head: duration.with_label_values(&["head"]),
            body: duration.with_label_values(&["body"]),
            blocked,
            by_action,
        })
    }

    /// Totals since start, for `GET /admin/waf/stats` (read from the same counters Prometheus scrapes).
    pub fn stats(&self) -> WafStats {
        let inspected = self.head.get_sample_count();
        let seconds = self.head.get_sample_sum() + self.body.get_sample_sum();
        WafStats {
            inspected,
            by_action: std::array::from_fn(|i| (ACTIONS[i], self.by_action[i].get())),
            by_attack: Family::ALL
                .iter()
                .map(|f| (f.name(), self.blocked.with_label_values(&[f.name()]).get()))
                .filter(|(_, n)| *n > 0)
                .collect(),
            avg_ms: if inspected == 0 {
                0.0
            } else {
                seconds * 1000.0 / inspected as f64
            },
        }
    }

    fn observe(&self, verdict: &Verdict, took: Duration, phase: Phase) {
        self.by_action[action_index(verdict)].inc();
        if let Verdict::Block(f) | Verdict::Challenge(f) = verdict {
            self.blocked.with_label_values(&[f.family.name()]).inc();
        }
        match phase {
            Phase::Head => &self.head,
            Phase::Body => &self.body,
        }
        .observe(took.as_secs_f64());
    }
}

/// What the WAF has done since start.
pub struct WafStats {
    /// Requests whose head was inspected.
    pub inspected: u64,
    /// Verdicts by action (a request with a body has a head and a body verdict).
    pub by_action: [(&'static str, u64); 4],
    /// Blocked or challenged requests by attack type, only those seen.
    pub by_attack: Vec<(&'static str, u64)>,
    /// Mean inspection time per request, head and body together.
    pub avg_ms: f64,
}

/// The request after the WAF phase: on its way (with the body as it will be forwarded), answered by the
/// WAF's refusal (an offence that escalation counts), or answered otherwise (an unreadable body).
pub enum Outcome<B> {
    Forward(Request<InspectedBody<B>>),
    Refused(Response<ResponseBody>, Offence),
    Answer(Response<ResponseBody>),
}

/// The custom rules of the generation with what they need besides the request: the counters of
/// `rate_limit` rules, the time, and the client's country.
pub struct RulesContext<'a> {
    pub rules: &'a CustomRules,
    pub limits: &'a Store,
    pub now_ns: u64,
    pub country: Option<&'a str>,
    /// How `challenge` verdicts are answered.
    pub challenger: &'a Challenger<'a>,
}

/// What the custom rules made of the request.
enum RulesOutcome {
    /// Inspect as usual.
    Inspect,
    /// An `allow` rule matched: forward without running the detectors.
    Skip,
    Answer(Response<ResponseBody>, Offence),
    /// A challenge page: not an offence (failing it is).
    Challenge(Response<ResponseBody>),
}

/// Runs the custom rules; logs the security event of every rule that fired.
fn custom_rules(
    rc: &RulesContext<'_>,
    view: &RequestView<'_>,
    declared_body: Option<u64>,
    ctx: &RequestContext,
    block: &BlockResponse,
) -> RulesOutcome {
    if rc.rules.is_empty() {
        return RulesOutcome::Inspect;
    }
    let input = RuleInput {
        view,
        country: rc.country,
        declared_body,
    };
    let client_key = rules::client_key(ctx.client);
    let windows = rc.rules.windows();
    let decision = rc.rules.evaluate(
        &input,
        |rule| rule_event(rule, "security_detection", "logged", view, ctx, rc.country),
        |id, window| {
            let a = rc.limits.admit(
                Key {
                    window: id,
                    client: client_key,
                },
                window,
                rc.now_ns,
                windows,
            );
            (!a.allowed).then(|| Refusal {
                scope: "custom_rule",
                limit: window.limit,
                reset_secs: a.reset_ns.div_ceil(1_000_000_000),
                retry_after_secs: a.retry_after_ns.div_ceil(1_000_000_000).max(1),
            })
        },
    );
    let request_id = ctx.request_id.to_str().unwrap_or("-");
    match decision {
        Decision::Continue => RulesOutcome::Inspect,
        Decision::Allow(_) => RulesOutcome::Skip,
        Decision::Block(rule) => {
            rule_event(rule, "security_block", "blocked", view, ctx, rc.country);
            RulesOutcome::Answer(block_page(block, request_id), Offence::Blocked)
        }
        Decision::Challenge(rule) => {
            match rc
                .challenger
                .respond(view.method, view.path, view.query, view.headers, ctx)
            {
                // Cleared clients are not challenged again; the detectors still inspect the request.
                Challenged::Cleared => RulesOutcome::Inspect,
                Challenged::Page(page) => {
                    rule_event(rule, "security_challenge", "challenged", view, ctx, rc.country);
                    RulesOutcome::Challenge(*page)
                }
                Challenged::Unavailable => {
                    rule_event(rule, "security_block", "blocked", view, ctx, rc.country);
                    RulesOutcome::Answer(block_page(block, request_id), Offence::Blocked)
                }
            }
        }
        Decision::Limited(rule, refusal) => {
            rule_event(rule, "security_rate_limit", "rate_limited", view, ctx, rc.country);
            RulesOutcome::Answer(super::policy_phase::too_many(&refusal, ctx), Offence::RateLimited)
        }
    }
}

fn rule_event(
    rule: &CustomRule,
    event_type: &'static str,
    action: &'static str,
    view: &RequestView<'_>,
    ctx: &RequestContext,
    country: Option<&str>,
) {
    warn!(
        target: "rampart::security",
        event_type,
        client_ip = %ctx.client,
        client_country = country.unwrap_or(""),
        attack_type = "custom_rule",
        rule_name = %rule.name,
        message = rule.message.as_deref().unwrap_or(""),
        method = %view.method,
        path = %view.path.chars().take(256).collect::<String>(),
        action_taken = action,
        request_id = %ctx.request_id.to_str().unwrap_or("-"),
        "request {action} by custom rule {}",
        rule.name
    );
}

/// Whether a request has a body to read (a declared length above 0, chunked encoding, or an h2 stream that
/// is still open).
fn has_body(headers: &http::HeaderMap, body: &impl Body) -> bool {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match declared {
        Some(n) => n > 0,
        None => headers.contains_key(header::TRANSFER_ENCODING) || !body.is_end_stream(),
    }
}

/// Runs the custom rules and then the engine on `req`. `route` is the chosen route's name (for exclusions).
#[allow(clippy::too_many_arguments)] // the phase's inputs, each from a different owner; a struct would only rename them
pub async fn inspect<B>(
    engine: &Engine,
    rules: &RulesContext<'_>,
    req: Request<B>,
    route: Option<&str>,
    ctx: &RequestContext,
    block: &BlockResponse,
    metrics: &WafMetrics,
    max_body: u64,
) -> Outcome<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    let (parts, body) = req.into_parts();
    let has = has_body(&parts.headers, &body);
    if !has {
        let v = view(&parts, b"", false, ctx, route);
        match custom_rules(rules, &v, None, ctx, block) {
            RulesOutcome::Inspect => {}
            RulesOutcome::Skip => return Outcome::Forward(Request::from_parts(parts, InspectedBody::Stream(body))),
            RulesOutcome::Answer(resp, offence) => return Outcome::Refused(resp, offence),
            RulesOutcome::Challenge(resp) => return Outcome::Answer(resp),
        }
        let started = Instant::now();
        let inspection = engine.inspect(&v);
        let took = started.elapsed();
        metrics.observe(&inspection.verdict, took, Phase::Head);
        if let Some(outcome) = answer(&inspection, &parts, ctx, block, rules) {
            return outcome;
        }
        return Outcome::Forward(Request::from_parts(parts, InspectedBody::Stream(body)));
    }
    let limit = engine.body_limit().min(usize::try_from(max_body).unwrap_or(usize::MAX));
    let prefix = match read_prefix(body, limit).await {
        Ok(p) => p,
        Err(_) => {
            return Outcome::Answer(local_response(
                StatusCode::BAD_REQUEST,
                "400 Bad Request: the request body could not be read\n",
            ));
        }
    };
    let (bytes, rest): (Bytes, Option<B>) = match prefix {
        Prefix::Whole(b) => (b, None),
        Prefix::Over(b, rest) => (b, Some(rest)),
    };
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let forward = |parts, bytes, rest: Option<B>| {
        let body = match rest {
            None => InspectedBody::Buffered(Some(bytes)),
            Some(rest) => InspectedBody::Prefixed(Some(bytes), rest),
        };
        Outcome::Forward(Request::from_parts(parts, body))
    };
    let inspected = &bytes[..bytes.len().min(limit)];
    match custom_rules(
        rules,
        &view(&parts, inspected, rest.is_some(), ctx, route),
        declared,
        ctx,
        block,
    ) {
        RulesOutcome::Inspect => {}
        RulesOutcome::Skip => return forward(parts, bytes, rest),
        RulesOutcome::Answer(resp, offence) => return Outcome::Refused(resp, offence),
        RulesOutcome::Challenge(resp) => return Outcome::Answer(resp),
    }
    if rest.is_some() && engine.body_overflow() == BodyOverflow::Block {
        let len = parts
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(bytes.len() as u64);
        let inspection = Inspection {
            verdict: engine.overflow_verdict(len),
            findings: Vec::new(),
            anomaly_score: 0.0,
            targets: 0,
        };
        metrics.observe(&inspection.verdict, Duration::ZERO, Phase::Body);
        if let Some(outcome) = answer(&inspection, &parts, ctx, block, rules) {
            return outcome;
        }
    } else {
        let started = Instant::now();
        let inspection = engine.inspect(&view(&parts, inspected, rest.is_some(), ctx, route));
        metrics.observe(&inspection.verdict, started.elapsed(), Phase::Body);
        if let Some(outcome) = answer(&inspection, &parts, ctx, block, rules) {
            return outcome;
        }
    }
    forward(parts, bytes, rest)
}

fn view<'a>(
    parts: &'a http::request::Parts,
    body: &'a [u8],
    truncated: bool,
    ctx: &RequestContext,
    route: Option<&'a str>,
) -> RequestView<'a> {
    RequestView {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: parts.uri.query().unwrap_or(""),
        headers: &parts.headers,
        body,
        body_truncated: truncated,
        client: ctx.client,
        route,
    }
}

/// Logs the security event of a non-`Allow` verdict and returns the outcome when the request stops here
/// (a block is an offence, a challenge page is not; a cleared client is not challenged again).
fn answer<B>(
    i: &Inspection,
    parts: &http::request::Parts,
    ctx: &RequestContext,
    block: &BlockResponse,
    rules: &RulesContext<'_>,
) -> Option<Outcome<B>> {
    let country = rules.country;
    let request_id = ctx.request_id.to_str().unwrap_or("-");
    let event = SecurityEvent::from_inspection(i, ctx.client, parts.method.as_str(), parts.uri.path(), request_id)?;
    warn!(
        target: "rampart::security",
        event_type = event.event_type,
        client_ip = %event.client_ip,
        client_country = country.unwrap_or(""),
        attack_type = event.attack_type,
        pattern_matched = %event.pattern_matched,
        confidence = event.confidence,
        rule_name = %event.rule_name,
        detector = event.detector,
        method = %event.method,
        path = %event.path,
        location = event.location,
        argument = %event.argument,
        anomaly_score = event.anomaly_score,
        action_taken = event.action_taken,
        request_id = %event.request_id,
        "request {} by the WAF",
        event.action_taken
    );
    crate::telemetry::events::publish(crate::telemetry::events::SECURITY, &event);
    let refuse = || Some(Outcome::Refused(block_page(block, request_id), Offence::Blocked));
    match i.verdict {
        Verdict::Allow | Verdict::Log(_) => None,
        Verdict::Block(_) => refuse(),
        Verdict::Challenge(_) => match rules.challenger.respond(
            parts.method.as_str(),
            parts.uri.path(),
            parts.uri.query().unwrap_or(""),
            &parts.headers,
            ctx,
        ) {
            Challenged::Cleared => None,
            Challenged::Page(page) => Some(Outcome::Answer(*page)),
            Challenged::Unavailable => refuse(),
        },
    }
}

fn block_page(block: &BlockResponse, request_id: &str) -> Response<ResponseBody> {
    let status = StatusCode::from_u16(block.status).unwrap_or(StatusCode::FORBIDDEN);
    let mut resp = local_response(status, &block.body.replace("{request_id}", request_id));
    if let Ok(ct) = HeaderValue::from_str(&block.content_type) {
        resp.headers_mut().insert(header::CONTENT_TYPE, ct);
    }
    resp
}
