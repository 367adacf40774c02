//! The rate-limit phase: asks the generation's `RateLimiter` about the request and turns a refusal into
//! 429 with `Retry-After` and the `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset` fields of
//! the IETF httpapi draft (seconds, as in its earlier revisions that clients implement). Allowed requests
//! pass untouched: no header is written on the common path.

use http::header::{self, HeaderName, HeaderValue};
use http::{Request, Response, StatusCode};

use tracing::warn;

use super::{RequestContext, ResponseBody, local_error};
use crate::config::schema::GeoBlockingConfig;
use crate::config::types::CountryCode;
use crate::policy::escalation::Offence;
use crate::policy::ratelimit::{Decision, RateLimiter, Refusal};

static RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("ratelimit-limit");
static RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("ratelimit-remaining");
static RATELIMIT_RESET: HeaderName = HeaderName::from_static("ratelimit-reset");

/// The geo policy at L7, for when XDP (which is authoritative) is not in force: `Some(403)` for a client
/// whose country is blocked, or not allowed in allowed-only mode (an unknown country is not allowed there).
pub fn geo(cfg: &GeoBlockingConfig, country: Option<&str>, ctx: &RequestContext) -> Option<Response<ResponseBody>> {
    if !cfg.enabled || cfg.whitelist_ips.iter().any(|c| c.contains(&ctx.client)) {
        return None;
    }
    let listed = |list: &[CountryCode]| country.is_some_and(|c| list.iter().any(|l| l.as_str() == c));
    let refused =
        listed(&cfg.blocked_countries) || (!cfg.allowed_countries.is_empty() && !listed(&cfg.allowed_countries));
    if !refused {
        return None;
    }
    warn!(
        target: "rampart::security",
        event_type = "security_block",
        client_ip = %ctx.client,
        client_country = country.unwrap_or(""),
        attack_type = "geo",
        action_taken = "blocked",
        request_id = %ctx.request_id.to_str().unwrap_or("-"),
        "request blocked by the geo policy (enforced at L7: XDP is not in force)"
    );
    Some(local_error(
        StatusCode::FORBIDDEN,
        "requests from this country are not accepted",
        ctx,
    ))
}

/// `None` when the request may go on; otherwise the answer and the offence it counts as.
pub async fn rate_limit<B>(
    limiter: &RateLimiter,
    req: &Request<B>,
    ctx: &RequestContext,
) -> Option<(Response<ResponseBody>, Offence)> {
    match limiter.check(ctx.client, req.uri().path(), req.headers()).await {
        Decision::Allow => None,
        Decision::Blacklisted => Some((
            local_error(
                StatusCode::TOO_MANY_REQUESTS,
                "this client is not allowed to send requests",
                ctx,
            ),
            Offence::Blocked,
        )),
        Decision::Limited(r) => Some((too_many(&r, ctx), Offence::RateLimited)),
    }
}

/// 429 for a refusal, with `Retry-After` and the `RateLimit-*` fields.
pub fn too_many(r: &Refusal, ctx: &RequestContext) -> Response<ResponseBody> {
    let mut resp = local_error(
        StatusCode::TOO_MANY_REQUESTS,
        &format!(
            "rate limit exceeded ({} limit); retry in {} s",
            r.scope, r.retry_after_secs
        ),
        ctx,
    );
    let h = resp.headers_mut();
    h.insert(header::RETRY_AFTER, HeaderValue::from(r.retry_after_secs));
    h.insert(RATELIMIT_LIMIT.clone(), HeaderValue::from(r.limit));
    h.insert(RATELIMIT_REMAINING.clone(), HeaderValue::from_static("0"));
    h.insert(RATELIMIT_RESET.clone(), HeaderValue::from(r.reset_secs));
    resp
}
