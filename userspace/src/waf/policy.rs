//! What confidences lead to (ModSecurity's *actions*): per-rule enable, threshold and action, the anomaly
//! threshold over all rules, exclusions by route, path and argument, and the mode. Built from `WafConfig`
//! with the runtime overrides (`PUT /admin/waf/rules/{name}`) applied on top, so an override survives a
//! reload: the next generation is built from the new file *and* the same overrides.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::family::Family;
use crate::config::schema::{RuleAction, RuleSetting, WafConfig, WafMode};

/// What a rule does when it fires, strongest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Block,
    Challenge,
    Log,
    Allow,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Block => "block",
            Action::Challenge => "challenge",
            Action::Log => "log",
            Action::Allow => "allow",
        }
    }
}

impl From<RuleAction> for Action {
    fn from(a: RuleAction) -> Self {
        match a {
            RuleAction::Block => Action::Block,
            RuleAction::Challenge => Action::Challenge,
            RuleAction::Log => Action::Log,
            RuleAction::Allow => Action::Allow,
        }
    }
}

impl From<Action> for RuleAction {
    fn from(a: Action) -> Self {
        match a {
            Action::Block => RuleAction::Block,
            Action::Challenge => RuleAction::Challenge,
            Action::Log => RuleAction::Log,
            Action::Allow => RuleAction::Allow,
        }
    }
}

/// One rule as it is in force.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct RuleState {
    pub enabled: bool,
    pub threshold: f64,
    pub action: Action,
}

/// Rule settings changed at run time, by rule name; persisted by the daemon.
pub type Overrides = BTreeMap<String, RuleSetting>;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PolicyError {
    #[error("{path}: unknown rule `{name}` (rules: {known})")]
    UnknownRule { path: String, name: String, known: String },
    #[error("waf.owasp_protection.anomaly_threshold: must be above 0, got {0}")]
    AnomalyThreshold(f64),
}

fn known_rules() -> String {
    Family::ALL.map(Family::name).join(", ")
}

/// An exclusion as compiled for matching.
#[derive(Clone, Debug)]
struct Exclusion {
    route: Option<String>,
    path_prefix: Option<String>,
    /// Lower-cased argument names; empty: the whole request.
    args: Vec<String>,
    /// Families turned off there (bit per family).
    mask: u32,
}

/// The exclusions that apply to one request.
#[derive(Clone, Copy, Debug, Default)]
pub struct Excluded<'p> {
    /// Families off for the whole request.
    pub whole: u32,
    policy: Option<&'p Policy>,
    route: Option<&'p str>,
    path: &'p str,
}

impl Excluded<'_> {
    /// Families off for the value named `name` (on top of `whole`).
    pub fn for_arg(&self, name: &str) -> u32 {
        let Some(p) = self.policy else { return self.whole };
        if name.is_empty() || p.arg_exclusions == 0 {
            return self.whole;
        }
        let mut m = self.whole;
        for e in &p.exclusions {
            if e.args.is_empty() || !e.matches(self.route, self.path) {
                continue;
            }
            if e.args.iter().any(|a| a.eq_ignore_ascii_case(name)) {
                m |= e.mask;
            }
        }
        m
    }
}

impl Exclusion {
    fn matches(&self, route: Option<&str>, path: &str) -> bool {
        self.route.as_deref().is_none_or(|r| route == Some(r))
            && self.path_prefix.as_deref().is_none_or(|p| path.starts_with(p))
    }
}

/// The compiled policy of one configuration generation.
#[derive(Clone, Debug)]
pub struct Policy {
    pub mode: WafMode,
    pub rules: [RuleState; Family::COUNT],
    pub anomaly_threshold: f64,
    exclusions: Vec<Exclusion>,
    arg_exclusions: usize,
}

const ALL_FAMILIES: u32 = (1 << Family::COUNT) - 1;

impl Policy {
    pub fn build(cfg: &WafConfig, overrides: &Overrides) -> Result<Self, PolicyError> {
        let o = &cfg.owasp_protection;
        if o.anomaly_threshold.is_nan() || o.anomaly_threshold <= 0.0 {
            return Err(PolicyError::AnomalyThreshold(o.anomaly_threshold));
        }
        let mut rules = Family::ALL.map(|f| RuleState {
            enabled: o.enabled || f == Family::Protocol,
            threshold: f.default_threshold(),
            action: Action::Block,
        });
        rules[Family::SqlInjection.index()].threshold = o.sql_injection_threshold.get();
        rules[Family::Xss.index()].threshold = o.xss_threshold.get();
        rules[Family::Rce.index()].threshold = o.rce_threshold.get();
        rules[Family::PathTraversal.index()].threshold = o.path_traversal_threshold.get();
        let csrf = &mut rules[Family::Csrf.index()];
        csrf.enabled = o.enabled && o.csrf_protection.enabled;
        csrf.threshold = o.csrf_protection.confidence_threshold.get();
        for (layer, settings) in [("waf.owasp_protection.rules", &o.rules), ("admin override", overrides)] {
            for (name, s) in settings {
                let f = Family::parse(name).ok_or_else(|| PolicyError::UnknownRule {
                    path: format!("{layer}.{name}"),
                    name: name.clone(),
                    known: known_rules(),
                })?;
                let r = &mut rules[f.index()];
                if let Some(e) = s.enabled {
                    r.enabled = e;
                }
                if let Some(t) = s.threshold {
                    r.threshold = t.get();
                }
                if let Some(a) = s.action {
                    r.action = a.into();
                }
            }
        }
        let mut exclusions = Vec::new();
        for (i, e) in cfg.exclusions.iter().enumerate() {
            let mut mask = 0;
            for name in &e.rules {
                let f = Family::parse(name).ok_or_else(|| PolicyError::UnknownRule {
                    path: format!("waf.exclusions[{i}].rules"),
                    name: name.clone(),
                    known: known_rules(),
                })?;
                mask |= f.bit();
            }
            exclusions.push(Exclusion {
                route: e.route.clone(),
                path_prefix: e.path_prefix.clone(),
                args: e.args.iter().map(|a| a.to_ascii_lowercase()).collect(),
                mask: if mask == 0 { ALL_FAMILIES } else { mask },
            });
        }
        let arg_exclusions = exclusions.iter().filter(|e| !e.args.is_empty()).count();
        Ok(Self {
            mode: cfg.mode,
            rules,
            anomaly_threshold: o.anomaly_threshold,
            exclusions,
            arg_exclusions,
        })
    }

    pub fn rule(&self, f: Family) -> &RuleState {
        &self.rules[f.index()]
    }

    /// Families whose detectors run at all.
    pub fn enabled_mask(&self) -> u32 {
        Family::ALL
            .iter()
            .filter(|f| self.rules[f.index()].enabled && self.rules[f.index()].action != Action::Allow)
            .fold(0, |m, f| m | f.bit())
    }

    /// The exclusions in force for a request on `route` and `path`.
    pub fn excluded<'p>(&'p self, route: Option<&'p str>, path: &'p str) -> Excluded<'p> {
        let whole = self
            .exclusions
            .iter()
            .filter(|e| e.args.is_empty() && e.matches(route, path))
            .fold(0, |m, e| m | e.mask);
        Excluded {
            whole,
            policy: Some(self),
            route,
            path,
        }
    }

    /// What the mode makes of an action.
    pub fn apply_mode(&self, family: Family, action: Action) -> Action {
        match (self.mode, action) {
            (WafMode::Monitor, Action::Block | Action::Challenge) => Action::Log,
            (WafMode::Challenge, Action::Block) if !family.always_blocks() => Action::Challenge,
            (_, a) => a,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::schema::WafExclusion;
    use crate::config::types::Fraction;

    #[test]
    fn seed_thresholds_then_config_rules_then_overrides_apply_in_that_order() {
        let mut cfg = WafConfig::default();
        cfg.owasp_protection.sql_injection_threshold = Fraction::new_const(0.7);
        let p = Policy::build(&cfg, &Overrides::new()).expect("valid");
        assert_eq!(p.rule(Family::SqlInjection).threshold, 0.7);
        cfg.owasp_protection.rules.insert(
            "sql_injection".into(),
            RuleSetting {
                threshold: Some(Fraction::new_const(0.6)),
                ..RuleSetting::default()
            },
        );
        assert_eq!(
            Policy::build(&cfg, &Overrides::new())
                .expect("valid")
                .rule(Family::SqlInjection)
                .threshold,
            0.6
        );
        let mut o = Overrides::new();
        o.insert(
            "owasp_sql_injection".into(),
            RuleSetting {
                enabled: Some(false),
                action: Some(RuleAction::Log),
                ..RuleSetting::default()
            },
        );
        let p = Policy::build(&cfg, &o).expect("valid");
        assert!(!p.rule(Family::SqlInjection).enabled);
        assert_eq!(p.rule(Family::SqlInjection).action, Action::Log);
        assert_eq!(p.enabled_mask() & Family::SqlInjection.bit(), 0);
    }

    #[test]
    fn an_unknown_rule_name_is_an_error_naming_where_it_was() {
        let mut cfg = WafConfig::default();
        cfg.owasp_protection.rules.insert("sqli".into(), RuleSetting::default());
        let e = Policy::build(&cfg, &Overrides::new()).expect_err("unknown rule");
        assert!(e.to_string().contains("waf.owasp_protection.rules.sqli"), "{e}");
    }

    #[test]
    fn exclusions_apply_per_route_path_and_argument() {
        let mut cfg = WafConfig::default();
        cfg.exclusions.push(WafExclusion {
            path_prefix: Some("/cms".into()),
            args: vec!["Body".into()],
            rules: vec!["xss".into()],
            ..WafExclusion::default()
        });
        cfg.exclusions.push(WafExclusion {
            route: Some("internal".into()),
            ..WafExclusion::default()
        });
        let p = Policy::build(&cfg, &Overrides::new()).expect("valid");
        let e = p.excluded(None, "/cms/post");
        assert_eq!(e.whole, 0);
        assert_eq!(e.for_arg("body"), Family::Xss.bit());
        assert_eq!(e.for_arg("title"), 0);
        assert_eq!(p.excluded(None, "/other").for_arg("body"), 0);
        assert_eq!(p.excluded(Some("internal"), "/x").whole, ALL_FAMILIES);
    }

    #[test]
    fn monitor_mode_turns_blocks_into_logs_and_challenge_mode_into_challenges() {
        let mut cfg = WafConfig {
            mode: WafMode::Monitor,
            ..WafConfig::default()
        };
        let p = Policy::build(&cfg, &Overrides::new()).expect("valid");
        assert_eq!(p.apply_mode(Family::Xss, Action::Block), Action::Log);
        cfg.mode = WafMode::Challenge;
        let p = Policy::build(&cfg, &Overrides::new()).expect("valid");
        assert_eq!(p.apply_mode(Family::Xss, Action::Block), Action::Challenge);
        assert_eq!(p.apply_mode(Family::Protocol, Action::Block), Action::Block);
    }
}
