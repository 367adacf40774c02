//! Challenges over HTTP: the page a suspect client gets (`Challenger::respond`), and the endpoint its
//! answer is posted to (`verify`, at `policy::challenge::page::VERIFY_PATH`), which checks the proof of work
//! or asks the CAPTCHA provider, and on success sets the clearance cookie and redirects back.
//!
//! A challenge shown is not an offence; a wrong or forged answer is (`Offence::ChallengeFailed`, towards
//! an auto-ban). An expired challenge is simply shown again.

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Body;
use prometheus::{IntCounterVec, Opts, Registry};
use tracing::{info, warn};

use super::upstream::conn_pool::BoxError;
use super::{RequestContext, ResponseBody, local_error};
use crate::config::schema::BotConfig;
use crate::policy::challenge::token::TokenError;
use crate::policy::challenge::{self, Challenges, Kind, page, pow};
use crate::policy::escalation::Offence;

/// Largest answer body read: a nonce, a solution or CAPTCHA token, and a return path.
const MAX_ANSWER: usize = 8 * 1024;

/// `rampart_bot_challenges_total{result}` and `rampart_bot_requests_total{verdict}`.
pub struct BotMetrics {
    challenges: IntCounterVec,
    verdicts: IntCounterVec,
}

impl BotMetrics {
    pub fn new(registry: &Registry) -> prometheus::Result<Self> {
        let challenges = IntCounterVec::new(
            Opts::new(
                "rampart_bot_challenges_total",
                "Challenges shown to clients, and answers that passed or failed.",
            ),
            &["result"],
        )?;
        let verdicts = IntCounterVec::new(
            Opts::new(
                "rampart_bot_requests_total",
                "Requests scored by bot detection, by verdict.",
            ),
            &["verdict"],
        )?;
        registry.register(Box::new(challenges.clone()))?;
        registry.register(Box::new(verdicts.clone()))?;
        for r in ["issued", "passed", "failed", "cleared"] {
            challenges.with_label_values(&[r]);
        }
        for v in ["human", "verified", "challenged", "blocked"] {
            verdicts.with_label_values(&[v]);
        }
        Ok(Self { challenges, verdicts })
    }

    pub fn verdict(&self, v: &str) {
        self.verdicts.with_label_values(&[v]).inc();
    }

    fn challenge(&self, result: &str) {
        self.challenges.with_label_values(&[result]).inc();
    }
}

/// What a challenge decision came to.
pub enum Challenged {
    /// The client holds a valid clearance: it is not challenged again.
    Cleared,
    /// The page to answer with.
    Page(Box<Response<ResponseBody>>),
    /// No challenge is configured (`javascript_challenge: false` and no `captcha`): the request is blocked.
    Unavailable,
}

/// What is needed to challenge a request of this generation.
pub struct Challenger<'a> {
    pub challenges: &'a Challenges,
    pub bot: &'a BotConfig,
    pub metrics: &'a BotMetrics,
}

fn script_nonce() -> String {
    let mut b = [0u8; 12];
    let _ = getrandom::getrandom(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn html(status: StatusCode, page: page::Page) -> Response<ResponseBody> {
    let mut resp = Response::new(ResponseBody::new(Full::new(Bytes::from(page.html))));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store, private"));
    if let Ok(csp) = HeaderValue::from_str(&page.csp) {
        h.insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    resp
}

impl Challenger<'_> {
    /// The challenge page for a request to `return_to`, unless the client is cleared.
    pub fn respond(
        &self,
        method: &str,
        path: &str,
        query: &str,
        headers: &HeaderMap,
        ctx: &RequestContext,
    ) -> Challenged {
        let c = &self.bot.challenge;
        if challenge::cleared(self.challenges, c, headers, ctx.client) {
            self.metrics.challenge("cleared");
            return Challenged::Cleared;
        }
        let Some(kind) = challenge::kind(self.bot) else {
            return Challenged::Unavailable;
        };
        // A GET comes back to the same URL; other methods to the path (their bodies cannot be replayed).
        let target = if matches!(method, "GET" | "HEAD") && !query.is_empty() {
            format!("{path}?{query}")
        } else {
            path.to_owned()
        };
        self.metrics.challenge("issued");
        Challenged::Page(Box::new(self.page(kind, page::safe_return(&target), headers, ctx)))
    }

    fn page(&self, kind: Kind, return_to: &str, headers: &HeaderMap, ctx: &RequestContext) -> Response<ResponseBody> {
        let c = &self.bot.challenge;
        let signer = self.challenges.signer(c);
        let binding = challenge::binding(ctx.client, headers);
        let expires = challenge::unix_now() + c.challenge_ttl;
        let nonce = signer.nonce(&binding, expires, c.difficulty);
        let id = ctx.request_id.to_str().unwrap_or("-");
        let p = match (kind, &c.captcha) {
            (Kind::Captcha, Some(cap)) => page::captcha(cap, &nonce, return_to, id, &script_nonce()),
            _ => page::proof_of_work(&nonce, c.difficulty, return_to, id, &script_nonce()),
        };
        html(StatusCode::FORBIDDEN, p)
    }
}

fn failed(ch: &Challenger<'_>, ctx: &RequestContext, why: &str) -> (Response<ResponseBody>, Option<Offence>) {
    ch.metrics.challenge("failed");
    warn!(
        target: "rampart::security",
        event_type = "security_challenge_failed",
        client_ip = %ctx.client,
        attack_type = "bot",
        reason = why,
        action_taken = "blocked",
        request_id = %ctx.request_id.to_str().unwrap_or("-"),
        "challenge answer refused: {why}"
    );
    (
        local_error(StatusCode::FORBIDDEN, &format!("challenge failed: {why}"), ctx),
        Some(Offence::ChallengeFailed),
    )
}

/// Answers a post to the verify endpoint: 303 to the return path with the clearance cookie, a fresh
/// challenge when the old one expired, 403 and an offence for a wrong or forged answer.
pub async fn verify<B>(
    ch: &Challenger<'_>,
    req: Request<B>,
    ctx: &RequestContext,
) -> (Response<ResponseBody>, Option<Offence>)
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    if req.method() != Method::POST {
        let mut resp = local_error(StatusCode::METHOD_NOT_ALLOWED, "challenge answers are posted", ctx);
        resp.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
        return (resp, None);
    }
    let Some(kind) = challenge::kind(ch.bot) else {
        return (
            local_error(StatusCode::NOT_FOUND, "no challenge is configured", ctx),
            None,
        );
    };
    let (parts, body) = req.into_parts();
    let body = match Limited::new(body, MAX_ANSWER).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return failed(ch, ctx, "the answer is too large or could not be read"),
    };
    let field = |name: &str| challenge::form_field(&body, name);
    let c = &ch.bot.challenge;
    let binding = challenge::binding(ctx.client, &parts.headers);
    let signer = ch.challenges.signer(c);
    let return_to = field("return_to").unwrap_or_else(|| "/".into());
    let return_to = page::safe_return(&return_to).to_owned();
    let nonce = field("nonce").unwrap_or_default();
    let difficulty = match signer.check_nonce(&nonce, &binding, challenge::unix_now()) {
        Ok(d) => d,
        Err(TokenError::Expired) => {
            ch.metrics.challenge("issued");
            return (ch.page(kind, &return_to, &parts.headers, ctx), None);
        }
        Err(e) => return failed(ch, ctx, &format!("challenge {e}")),
    };
    let passed = match kind {
        Kind::ProofOfWork => {
            // A nonce for an easier difficulty than configured now (issued before a reload) is still
            // honoured: it was signed as issued.
            pow::solved(&nonce, &field("solution").unwrap_or_default(), difficulty)
        }
        Kind::Captcha => {
            let (Some(cap), Some(client)) = (&c.captcha, &ch.challenges.captcha) else {
                return (
                    local_error(StatusCode::NOT_FOUND, "no CAPTCHA is configured", ctx),
                    None,
                );
            };
            let token = field(&cap.response_field).unwrap_or_default();
            if token.is_empty() {
                false
            } else {
                match client.verify(cap, &token, ctx.client).await {
                    Ok(ok) => ok,
                    Err(e) => {
                        warn!(error = %e, "the CAPTCHA provider could not check an answer; the client is challenged again");
                        ch.metrics.challenge("issued");
                        return (ch.page(kind, &return_to, &parts.headers, ctx), None);
                    }
                }
            }
        }
    };
    if !passed {
        return failed(ch, ctx, "wrong solution");
    }
    ch.metrics.challenge("passed");
    info!(
        target: "rampart::security",
        event_type = "security_challenge_passed",
        client_ip = %ctx.client,
        action_taken = "cleared",
        request_id = %ctx.request_id.to_str().unwrap_or("-"),
        "challenge passed"
    );
    let value = signer.clearance(&binding, challenge::unix_now() + c.clearance_ttl);
    let secure = if ctx.scheme == "https" { "; Secure" } else { "" };
    let cookie = format!(
        "{}={value}; Path=/; Max-Age={}; HttpOnly; SameSite=Lax{secure}",
        c.cookie_name, c.clearance_ttl
    );
    let mut resp = super::local_response(StatusCode::SEE_OTHER, "");
    let h = resp.headers_mut();
    if let (Ok(cookie), Ok(location)) = (HeaderValue::from_str(&cookie), HeaderValue::from_str(&return_to)) {
        h.insert(header::SET_COOKIE, cookie);
        h.insert(header::LOCATION, location);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    (resp, None)
}
