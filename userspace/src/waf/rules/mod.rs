//! Custom rules (`waf.custom_rules` and the admin API): operator-written rules in the same anatomy as the
//! built-in detectors — target, transform, matcher (`condition`), action — compiled once per rule set and
//! evaluated in ascending priority before the detectors. Pure, like the rest of `waf/`: the clock and the
//! counters of `rate_limit` rules belong to the caller, who is asked through a callback.

mod condition;

use std::net::IpAddr;

use condition::{Condition, ConditionError};

use super::request::RequestView;
use crate::config::schema::{Combine, ConditionGroup, ConditionItem, CustomAction, CustomRule};
use crate::policy::ratelimit::algorithm::Window;
use crate::policy::ratelimit::{RateLimitError, compile_windows};

#[derive(Debug, thiserror::Error)]
pub enum RuleError {
    #[error("custom rule `{rule}`, condition {index}: {error}")]
    Condition {
        rule: String,
        index: usize,
        error: ConditionError,
    },
    #[error("custom rule `{0}`: action rate_limit needs a `rate_limit` limit")]
    MissingLimit(String),
    #[error("custom rule `{rule}`: {error}")]
    Limit { rule: String, error: RateLimitError },
    #[error("custom rule `{0}` has no conditions (it would match every request)")]
    Empty(String),
    #[error("custom rule names must be unique: `{0}` appears twice")]
    Duplicate(String),
    #[error("a custom rule name must be 1 to 64 characters of letters, digits, `_`, `-` or `.`: `{0}`")]
    BadName(String),
}

/// The request as custom rules see it: the engine's view plus the client's country, when known.
pub struct RuleInput<'a> {
    pub view: &'a RequestView<'a>,
    pub country: Option<&'a str>,
    /// The declared body size (Content-Length), when the body is not all in `view.body`.
    pub declared_body: Option<u64>,
}

impl RuleInput<'_> {
    fn body_size(&self) -> u64 {
        self.declared_body.unwrap_or(self.view.body.len() as u64)
    }
}

enum Node {
    Leaf(Condition),
    All(Vec<Condition>),
    Any(Vec<Condition>),
}

impl Node {
    fn holds(&self, req: &RuleInput<'_>) -> bool {
        match self {
            Node::Leaf(c) => c.holds(req),
            Node::All(cs) => cs.iter().all(|c| c.holds(req)),
            Node::Any(cs) => cs.iter().any(|c| c.holds(req)),
        }
    }
}

pub struct Compiled {
    pub rule: CustomRule,
    nodes: Vec<Node>,
    /// Window ids into `CustomRules::windows` of a `rate_limit` rule.
    windows: std::ops::Range<u32>,
}

impl Compiled {
    fn matches(&self, req: &RuleInput<'_>) -> bool {
        match self.rule.combine {
            Combine::All => self.nodes.iter().all(|n| n.holds(req)),
            Combine::Any => self.nodes.iter().any(|n| n.holds(req)),
        }
    }
}

/// What the custom rules decided.
pub enum Decision<'r> {
    /// No deciding rule matched (log rules may have): the detectors run.
    Continue,
    /// An `allow` rule matched: skip the detectors.
    Allow(&'r CustomRule),
    Block(&'r CustomRule),
    Challenge(&'r CustomRule),
    /// A `rate_limit` rule's limit refused the request; the callback's refusal is carried back.
    Limited(&'r CustomRule, crate::policy::ratelimit::Refusal),
}

#[derive(Default)]
pub struct CustomRules {
    rules: Vec<Compiled>,
    windows: Vec<Window>,
}

fn valid_name(n: &str) -> bool {
    (1..=64).contains(&n.len()) && n.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
}

impl CustomRules {
    /// Compiles the enabled rules, ordered by priority (ties keep their given order).
    pub fn build(rules: &[CustomRule]) -> Result<Self, RuleError> {
        let mut seen = std::collections::HashSet::new();
        let mut out = Self::default();
        for r in rules {
            if !valid_name(&r.name) {
                return Err(RuleError::BadName(r.name.clone()));
            }
            if !seen.insert(r.name.as_str()) {
                return Err(RuleError::Duplicate(r.name.clone()));
            }
            let compiled = Self::compile(r, &mut out.windows)?;
            if r.enabled {
                out.rules.push(compiled);
            }
        }
        out.rules.sort_by_key(|c| c.rule.priority);
        Ok(out)
    }

    /// Checks one rule as the admin API receives it.
    pub fn check(rule: &CustomRule) -> Result<(), RuleError> {
        if !valid_name(&rule.name) {
            return Err(RuleError::BadName(rule.name.clone()));
        }
        Self::compile(rule, &mut Vec::new()).map(|_| ())
    }

    fn compile(r: &CustomRule, windows: &mut Vec<Window>) -> Result<Compiled, RuleError> {
        if r.conditions.is_empty() {
            return Err(RuleError::Empty(r.name.clone()));
        }
        let err = |index| {
            move |error| RuleError::Condition {
                rule: r.name.clone(),
                index,
                error,
            }
        };
        let nodes = r
            .conditions
            .iter()
            .enumerate()
            .map(|(i, item)| {
                Ok(match item {
                    ConditionItem::Condition(c) => Node::Leaf(Condition::compile(c).map_err(err(i))?),
                    ConditionItem::Group(ConditionGroup::All(cs)) => Node::All(
                        cs.iter()
                            .map(|c| Condition::compile(c).map_err(err(i)))
                            .collect::<Result<_, _>>()?,
                    ),
                    ConditionItem::Group(ConditionGroup::Any(cs)) => Node::Any(
                        cs.iter()
                            .map(|c| Condition::compile(c).map_err(err(i)))
                            .collect::<Result<_, _>>()?,
                    ),
                })
            })
            .collect::<Result<Vec<_>, RuleError>>()?;
        let first = u32::try_from(windows.len()).unwrap_or(u32::MAX);
        if r.action == CustomAction::RateLimit {
            let limit = r
                .rate_limit
                .as_ref()
                .ok_or_else(|| RuleError::MissingLimit(r.name.clone()))?;
            let ws = compile_windows(limit, &format!("waf.custom_rules.{}.rate_limit", r.name)).map_err(|error| {
                RuleError::Limit {
                    rule: r.name.clone(),
                    error,
                }
            })?;
            windows.extend(ws);
        }
        let last = u32::try_from(windows.len()).unwrap_or(u32::MAX);
        Ok(Compiled {
            rule: r.clone(),
            nodes,
            windows: first..last,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Every window of every `rate_limit` rule, indexed by the ids `evaluate` passes to its callback.
    pub fn windows(&self) -> &[Window] {
        &self.windows
    }

    /// Evaluates the rules in priority order. `log` rules that match are handed to `on_log`; a matching
    /// `rate_limit` rule asks `limit(window id, window)` for each of its windows (a refusal decides, else
    /// evaluation goes on); the first matching `allow`, `block` or `challenge` rule decides.
    pub fn evaluate<'r>(
        &'r self,
        req: &RuleInput<'_>,
        mut on_log: impl FnMut(&'r CustomRule),
        mut limit: impl FnMut(u32, &Window) -> Option<crate::policy::ratelimit::Refusal>,
    ) -> Decision<'r> {
        for c in &self.rules {
            if !c.matches(req) {
                continue;
            }
            match c.rule.action {
                CustomAction::Log => on_log(&c.rule),
                CustomAction::Allow => return Decision::Allow(&c.rule),
                CustomAction::Block => return Decision::Block(&c.rule),
                CustomAction::Challenge => return Decision::Challenge(&c.rule),
                CustomAction::RateLimit => {
                    for id in c.windows.clone() {
                        if let Some(w) = self.windows.get(usize::try_from(id).unwrap_or(usize::MAX))
                            && let Some(refusal) = limit(id, w)
                        {
                            return Decision::Limited(&c.rule, refusal);
                        }
                    }
                }
            }
        }
        Decision::Continue
    }
}

/// The client address as the rules' rate limits key it.
pub fn client_key(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(v4.to_ipv6_mapped()),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

#[cfg(test)]
mod tests;
