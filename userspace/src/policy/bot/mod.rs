//! Bot detection (`waf.bot_protection`): a score in 0..=1 per request from what its headers say
//! (`agent`) and what its client has been doing (`behaviour`), with crawlers that name themselves confirmed
//! by DNS (`verify`). At or above `detection_threshold` the request is blocked, at or above
//! `challenge_threshold` the client is challenged (`policy::challenge`), below it goes on.
//!
//! The lists come first: `allowed_user_agents` is never scored, `blocked_user_agents` is always blocked,
//! a verified crawler is let through. The per-generation part (`BotPolicy`) is rebuilt on reload; the state
//! over time (`BotState`) lives as long as the daemon.

pub mod agent;
pub mod behaviour;
pub mod signal;
pub mod verify;

use std::net::IpAddr;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use http::HeaderMap;
use http::header;

use crate::config::schema::{BotConfig, VerifiedBot};
use behaviour::Behaviours;
pub use signal::{Reason, Reasons};
use verify::Verifier;

#[derive(Debug, thiserror::Error)]
#[error("waf.bot_protection.{what}: {error}")]
pub struct BotError {
    what: &'static str,
    error: String,
}

/// What is done with a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BotVerdict {
    Human,
    /// A crawler confirmed by DNS; the index is into `verified_bots`.
    Verified(usize),
    Challenge,
    Block,
}

impl BotVerdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Human => "human",
            Self::Verified(_) => "verified",
            Self::Challenge => "challenged",
            Self::Block => "blocked",
        }
    }
}

#[derive(Clone, Copy, Debug)]
pub struct Assessment {
    pub score: f64,
    pub reasons: Reasons,
    pub verdict: BotVerdict,
}

/// The state kept across generations: behaviour per client and DNS answers.
pub struct BotState {
    pub behaviours: Behaviours,
    verifier: Verifier,
}

impl BotState {
    pub fn new(c: &BotConfig) -> Self {
        Self {
            behaviours: Behaviours::new(c.max_tracked_clients),
            verifier: Verifier::default(),
        }
    }
}

/// `waf.bot_protection` of one generation, compiled.
pub struct BotPolicy {
    detection: f64,
    challenge: f64,
    blocked: Option<AhoCorasick>,
    allowed: Option<AhoCorasick>,
    crawlers: Vec<VerifiedBot>,
    crawler_names: Option<AhoCorasick>,
    behavioural: bool,
}

fn matcher(patterns: impl IntoIterator<Item = String>, what: &'static str) -> Result<Option<AhoCorasick>, BotError> {
    let patterns: Vec<String> = patterns.into_iter().filter(|p| !p.is_empty()).collect();
    if patterns.is_empty() {
        return Ok(None);
    }
    AhoCorasickBuilder::new()
        .ascii_case_insensitive(true)
        .match_kind(MatchKind::LeftmostFirst)
        .build(&patterns)
        .map(Some)
        .map_err(|e| BotError {
            what,
            error: e.to_string(),
        })
}

impl BotPolicy {
    /// `None` unless bot protection is enabled.
    pub fn build(c: &BotConfig) -> Result<Option<Self>, BotError> {
        if !c.enabled {
            return Ok(None);
        }
        Ok(Some(Self {
            detection: c.detection_threshold.get(),
            challenge: c.challenge_threshold.get(),
            blocked: matcher(c.blocked_user_agents.iter().cloned(), "blocked_user_agents")?,
            allowed: matcher(c.allowed_user_agents.iter().cloned(), "allowed_user_agents")?,
            crawler_names: matcher(c.verified_bots.iter().map(|b| b.user_agent.clone()), "verified_bots")?,
            crawlers: c.verified_bots.clone(),
            behavioural: c.behavioral_analysis,
        }))
    }

    /// Scores a request. `secure` is whether browsers treat the origin as secure (HTTPS or a loopback
    /// host), which decides whether fetch metadata and client hints are expected.
    pub async fn assess(
        &self,
        state: &BotState,
        headers: &HeaderMap,
        path: &str,
        client: IpAddr,
        secure: bool,
    ) -> Assessment {
        let ua = headers
            .get(header::USER_AGENT)
            .map(|v| v.as_bytes())
            .unwrap_or_default();
        let mut reasons = Reasons::default();
        if self.allowed.as_ref().is_some_and(|m| m.is_match(ua)) {
            return Assessment {
                score: 0.0,
                reasons,
                verdict: BotVerdict::Human,
            };
        }
        if self.blocked.as_ref().is_some_and(|m| m.is_match(ua)) {
            reasons.add(Reason::BlockedAgent);
        }
        if !reasons.contains(Reason::BlockedAgent)
            && let Some(index) = self
                .crawler_names
                .as_ref()
                .and_then(|m| m.find(ua))
                .map(|m| m.pattern().as_usize())
            && let Some(crawler) = self.crawlers.get(index)
        {
            if state.verifier.verify(client, &crawler.domains).await {
                return Assessment {
                    score: 0.0,
                    reasons,
                    verdict: BotVerdict::Verified(index),
                };
            }
            reasons.add(Reason::ForgedCrawler);
        }
        agent::analyse(headers, secure, &mut reasons);
        if self.behavioural {
            state.behaviours.request(client, path, &mut reasons);
        }
        let score = reasons.score();
        let verdict = if score >= self.detection {
            BotVerdict::Block
        } else if score >= self.challenge {
            BotVerdict::Challenge
        } else {
            BotVerdict::Human
        };
        Assessment {
            score,
            reasons,
            verdict,
        }
    }

    pub fn crawler_name(&self, index: usize) -> &str {
        self.crawlers.get(index).map_or("", |c| c.name.as_str())
    }
}

#[cfg(test)]
mod tests;
