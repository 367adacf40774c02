//! The bot phase: scores the request (`policy::bot`) and blocks it (403, an offence) or challenges it
//! (`challenge_phase`) by its score; a verified crawler or a client below the challenge threshold goes on.
//! Every verdict other than human is a security event with the score and its reasons.

use http::{Request, StatusCode};
use tracing::{info, warn};

use super::challenge_phase::{Challenged, Challenger};
use super::{RequestContext, ResponseBody, local_error};
use crate::policy::bot::{BotPolicy, BotState, BotVerdict};
use crate::policy::escalation::Offence;

/// `None` when the request goes on; otherwise the answer and the offence it is, if any.
pub async fn screen<B>(
    policy: &BotPolicy,
    state: &BotState,
    challenger: &Challenger<'_>,
    req: &Request<B>,
    host: Option<&str>,
    ctx: &RequestContext,
) -> Option<(http::Response<ResponseBody>, Option<Offence>)> {
    let secure = ctx.scheme == "https" || host.is_some_and(is_loopback_host);
    let a = policy
        .assess(state, req.headers(), req.uri().path(), ctx.client, secure)
        .await;
    challenger.metrics.verdict(a.verdict.as_str());
    let event = |action: &str| {
        warn!(
            target: "rampart::security",
            event_type = if action == "blocked" { "security_block" } else { "security_challenge" },
            client_ip = %ctx.client,
            attack_type = "bot",
            confidence = a.score,
            pattern_matched = %a.reasons.names(),
            user_agent = %req.headers().get(http::header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or(""),
            method = %req.method(),
            path = %req.uri().path().chars().take(256).collect::<String>(),
            action_taken = action,
            request_id = %ctx.request_id.to_str().unwrap_or("-"),
            "request {action} as a bot (score {:.2}: {})",
            a.score,
            a.reasons.names()
        );
    };
    match a.verdict {
        BotVerdict::Human => None,
        BotVerdict::Verified(i) => {
            info!(client_ip = %ctx.client, crawler = policy.crawler_name(i), "verified crawler");
            None
        }
        BotVerdict::Challenge => {
            match challenger.respond(
                req.method().as_str(),
                req.uri().path(),
                req.uri().query().unwrap_or(""),
                req.headers(),
                ctx,
            ) {
                Challenged::Cleared => None,
                Challenged::Page(page) => {
                    event("challenged");
                    Some((*page, None))
                }
                Challenged::Unavailable => {
                    event("blocked");
                    Some((blocked(ctx), Some(Offence::Blocked)))
                }
            }
        }
        BotVerdict::Block => {
            event("blocked");
            Some((blocked(ctx), Some(Offence::Blocked)))
        }
    }
}

fn blocked(ctx: &RequestContext) -> http::Response<ResponseBody> {
    local_error(StatusCode::FORBIDDEN, "automated clients are not allowed here", ctx)
}

/// Browsers treat loopback origins as secure contexts (they get fetch metadata and client hints there).
fn is_loopback_host(host: &str) -> bool {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    h == "localhost" || h.ends_with(".localhost") || h.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts_are_secure_contexts() {
        assert!(is_loopback_host("127.0.0.1"));
        assert!(is_loopback_host("localhost"));
        assert!(is_loopback_host("[::1]"));
        assert!(!is_loopback_host("www.example.com"));
        assert!(!is_loopback_host("192.0.2.1"));
    }
}
