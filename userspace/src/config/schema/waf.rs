//! `waf`: request inspection and the request checks around it.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::config::types::{Cidr, CountryCode, Fraction};

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WafConfig {
    /// Inspect requests. Default true.
    pub enabled: bool,
    /// `block` enforces verdicts, `monitor` only logs them, `challenge` answers suspect requests with a
    /// challenge instead of a block. Default `block`.
    pub mode: WafMode,
    pub owasp_protection: OwaspConfig,
    pub bot_protection: BotConfig,
    pub rate_limiting: RateLimitingConfig,
    pub geo_blocking: GeoBlockingConfig,
    /// Operator rules, evaluated by ascending `priority`. Default none.
    pub custom_rules: Vec<CustomRule>,
}

impl Default for WafConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            mode: WafMode::Block,
            owasp_protection: OwaspConfig::default(),
            bot_protection: BotConfig::default(),
            rate_limiting: RateLimitingConfig::default(),
            geo_blocking: GeoBlockingConfig::default(),
            custom_rules: Vec::new(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WafMode {
    Monitor,
    Block,
    Challenge,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OwaspConfig {
    /// Run the OWASP detectors. Default true.
    pub enabled: bool,
    /// Block SQL injection at or above this confidence. Default 0.8.
    pub sql_injection_threshold: Fraction,
    /// Block cross-site scripting at or above this confidence. Default 0.8.
    pub xss_threshold: Fraction,
    /// Block remote code execution at or above this confidence. Default 0.9.
    pub rce_threshold: Fraction,
    /// Block path traversal at or above this confidence. Default 0.8.
    pub path_traversal_threshold: Fraction,
    pub csrf_protection: CsrfConfig,
}

impl Default for OwaspConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            sql_injection_threshold: Fraction::new_const(0.8),
            xss_threshold: Fraction::new_const(0.8),
            rce_threshold: Fraction::new_const(0.9),
            path_traversal_threshold: Fraction::new_const(0.8),
            csrf_protection: CsrfConfig::default(),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CsrfConfig {
    /// Check Origin/Referer on state-changing requests. Default false.
    pub enabled: bool,
    /// Also require a CSRF token on configured routes. Default false.
    pub token_validation: bool,
    /// Block at or above this confidence. Default 0.8.
    pub confidence_threshold: Fraction,
}

impl Default for CsrfConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            token_validation: false,
            confidence_threshold: Fraction::new_const(0.8),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BotConfig {
    /// Score clients as bots. Default false.
    pub enabled: bool,
    /// Block at or above this bot score. Default 0.7.
    pub detection_threshold: Fraction,
    /// Challenge at or above this bot score (and below `detection_threshold`). Default 0.5.
    pub challenge_threshold: Fraction,
    /// User-agent substrings always treated as bots (case-insensitive). Default none.
    pub blocked_user_agents: Vec<String>,
    /// User-agent substrings never treated as bots (case-insensitive). Default none.
    pub allowed_user_agents: Vec<String>,
    /// Score clients by behaviour over time, not only by single requests. Default true.
    pub behavioral_analysis: bool,
    /// Use the JavaScript proof-of-work challenge. Default true.
    pub javascript_challenge: bool,
}

impl Default for BotConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            detection_threshold: Fraction::new_const(0.7),
            challenge_threshold: Fraction::new_const(0.5),
            blocked_user_agents: Vec::new(),
            allowed_user_agents: Vec::new(),
            behavioral_analysis: true,
            javascript_challenge: true,
        }
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitingConfig {
    /// Limit across all clients. Default none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub global_limit: Option<RateLimit>,
    /// Limit per client address. Default none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub per_ip_limit: Option<RateLimit>,
    /// Limits for matching paths. Default none.
    #[serde(alias = "endpoint_limits")]
    pub per_endpoint_limits: Vec<EndpointLimit>,
    /// Clients never rate limited. Default none.
    pub whitelist_ips: Vec<Cidr>,
    /// Clients always refused with 429. Default none.
    pub blacklist_ips: Vec<Cidr>,
}

/// A rate over one or more windows; a request must fit every window that is set.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimit {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requests_per_second: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requests_per_minute: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requests_per_hour: Option<u64>,
    /// Requests allowed at once above the steady rate; default: one second's worth.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub burst: Option<u64>,
    /// Default `token_bucket`.
    pub algorithm: RateAlgorithm,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RateAlgorithm {
    #[default]
    TokenBucket,
    SlidingWindow,
    FixedWindow,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointLimit {
    /// Path pattern: exact, or a prefix ending in `*`.
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_per_second: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_per_minute: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_per_hour: Option<u64>,
    /// Default: one second's worth of the steadiest window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst: Option<u64>,
    /// Default `token_bucket`.
    #[serde(default)]
    pub algorithm: RateAlgorithm,
    /// Count per client address. Default false.
    #[serde(default)]
    pub per_ip: bool,
    /// Count per user (see `user_key`). Default false.
    #[serde(default)]
    pub per_user: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GeoBlockingConfig {
    /// Enforce country policy. Default false.
    pub enabled: bool,
    /// Countries refused. Default none.
    pub blocked_countries: Vec<CountryCode>,
    /// When not empty, only these countries are allowed. Default none.
    pub allowed_countries: Vec<CountryCode>,
    /// MaxMind country database (`.mmdb`). Required when `enabled`.
    #[serde(alias = "database", skip_serializing_if = "Option::is_none")]
    pub geoip_database: Option<PathBuf>,
    /// Seconds between checks for a changed database file. Default 86400.
    pub update_interval: u64,
    /// Addresses always allowed regardless of country. Default none.
    pub whitelist_ips: Vec<Cidr>,
}

impl Default for GeoBlockingConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            blocked_countries: Vec::new(),
            allowed_countries: Vec::new(),
            geoip_database: None,
            update_interval: 86_400,
            whitelist_ips: Vec::new(),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomRule {
    /// Unique name, used in logs and the admin API.
    pub name: String,
    /// Default true.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Lower runs first. Default 100.
    #[serde(default = "default_priority")]
    pub priority: i32,
    /// All conditions must hold for the rule to fire.
    pub conditions: Vec<RuleCondition>,
    pub action: RuleAction,
    /// Text for logs and the block page. Default none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

fn default_true() -> bool {
    true
}

fn default_priority() -> i32 {
    100
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleCondition {
    #[serde(rename = "type")]
    pub kind: ConditionKind,
    pub operator: ConditionOperator,
    pub value: String,
    /// Header name, for `type: header`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConditionKind {
    Path,
    Header,
    Ip,
    RateLimit,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConditionOperator {
    Equals,
    Contains,
    StartsWith,
    EndsWith,
    Regex,
    InSubnet,
    NotInSubnet,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleAction {
    Allow,
    Block,
    Challenge,
    Log,
}
