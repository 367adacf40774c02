//! `waf`: request inspection and the request checks around it.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::config::types::{ByteSize, Cidr, CountryCode, Fraction};

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
    /// Largest request body the detectors read. Bodies up to `server.max_request_size` are accepted; the part
    /// over this limit is handled by `body_overflow`. Default 128KB.
    pub body_inspection_limit: ByteSize,
    /// A body longer than `body_inspection_limit`: `block` refuses it (403), `inspect_prefix` inspects the first
    /// `body_inspection_limit` bytes and forwards the rest uninspected. Default `block`.
    pub body_overflow: BodyOverflow,
    pub limits: InspectionLimits,
    /// Requests (or single arguments) the detectors skip, to fix a false positive without turning a rule off.
    /// Default none.
    pub exclusions: Vec<WafExclusion>,
    pub block_response: BlockResponse,
    pub security_headers: SecurityHeaders,
    /// Where rule changes made through `PUT /admin/waf/rules/{name}` are kept, so they survive reloads and
    /// restarts. Default: `waf-rule-overrides.json` next to `xdp.record_file`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub overrides_file: Option<PathBuf>,
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
            body_inspection_limit: ByteSize::kib(128),
            body_overflow: BodyOverflow::Block,
            limits: InspectionLimits::default(),
            exclusions: Vec::new(),
            block_response: BlockResponse::default(),
            security_headers: SecurityHeaders::default(),
            overrides_file: None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BodyOverflow {
    Block,
    InspectPrefix,
}

/// Bounds on the work one request can cause, so that decoding and parsing cannot be made expensive.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InspectionLimits {
    /// URL-decoding passes per value (double and triple encoding). Default 3.
    pub decode_passes: u8,
    /// Deepest JSON or XML nesting parsed; deeper content is inspected as text. Default 32.
    pub max_depth: u16,
    /// Most values (arguments, headers, cookies, body fields) inspected per request; the rest is inspected as
    /// one raw block. Default 1024.
    pub max_targets: u32,
    /// Longest single value inspected; a longer one is inspected in its first and last part. Default 16KB.
    pub max_value_length: ByteSize,
    /// Bytes of each uploaded file's content inspected (file names are always inspected). Default 4KB.
    pub file_content_bytes: ByteSize,
}

impl Default for InspectionLimits {
    fn default() -> Self {
        Self {
            decode_passes: 3,
            max_depth: 32,
            max_targets: 1024,
            max_value_length: ByteSize::kib(16),
            file_content_bytes: ByteSize::kib(4),
        }
    }
}

/// One exclusion: where it applies (all given conditions must hold) and what it turns off there.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WafExclusion {
    /// Route name (`proxy.routes[].name`) the exclusion applies to. Default: any route.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    /// Path prefix the exclusion applies to. Default: any path.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path_prefix: Option<String>,
    /// Argument names (query, form, JSON key, cookie or header names, case-insensitive) skipped; empty means
    /// the whole request. Default none.
    pub args: Vec<String>,
    /// Rules not run there (names as in `owasp_protection.rules`); empty means every rule. Default none.
    pub rules: Vec<String>,
}

/// The answer to a blocked request.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BlockResponse {
    /// Status code. Default 403.
    pub status: u16,
    /// Body; `{request_id}` is replaced by the request id. Default a one-line plain-text refusal.
    pub body: String,
    /// Content type of `body`. Default `text/plain; charset=utf-8`.
    pub content_type: String,
}

impl Default for BlockResponse {
    fn default() -> Self {
        Self {
            status: 403,
            body: "403 Forbidden: this request was blocked by the web application firewall (request id {request_id})\n"
                .into(),
            content_type: "text/plain; charset=utf-8".into(),
        }
    }
}

/// Headers added to every proxied response that does not already carry them; an empty value adds nothing.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SecurityHeaders {
    /// Add the headers below. Default true.
    pub enabled: bool,
    /// `Content-Security-Policy`. Default empty (none: a policy must be written for the application).
    pub content_security_policy: String,
    /// `X-Content-Type-Options`. Default `nosniff`.
    pub x_content_type_options: String,
    /// `X-Frame-Options`. Default `SAMEORIGIN`.
    pub x_frame_options: String,
    /// `Referrer-Policy`. Default `strict-origin-when-cross-origin`.
    pub referrer_policy: String,
}

impl Default for SecurityHeaders {
    fn default() -> Self {
        Self {
            enabled: true,
            content_security_policy: String::new(),
            x_content_type_options: "nosniff".into(),
            x_frame_options: "SAMEORIGIN".into(),
            referrer_policy: "strict-origin-when-cross-origin".into(),
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
    /// Block when the confidences of all rules that matched (each at least 0.5) add up to this, even if no
    /// single rule reached its own threshold. Default 1.5.
    pub anomaly_threshold: f64,
    /// Per-rule settings over the built-in ones, by rule name (`sql_injection`, `xss`, `rce`,
    /// `path_traversal`, `ssrf`, `csrf`, `protocol`, `ssti`, `ssi`, `xxe`, `nosql_injection`, `ldap_injection`,
    /// `crlf_injection`, `mail_injection`, `open_redirect`, `scanner`, `graphql_introspection`, `log4shell`).
    /// Default none.
    pub rules: BTreeMap<String, RuleSetting>,
}

/// Settings of one built-in rule; unset fields keep the built-in value.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RuleSetting {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Confidence at or above which the rule acts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threshold: Option<Fraction>,
    /// What the rule does when it fires: `block`, `log` or `challenge` (`allow` turns it into a no-op).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<RuleAction>,
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
            anomaly_threshold: 1.5,
            rules: BTreeMap::new(),
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
    /// Origins (`https://app.example.com`) accepted besides the request's own host. Default none.
    pub allowed_origins: Vec<String>,
    /// Path prefixes whose state-changing requests must carry a token (with `token_validation`). Default none.
    pub token_paths: Vec<String>,
    /// Form or JSON field holding the token. Default `csrf_token`.
    pub token_field: String,
    /// Header holding the token (checked first). Default `x-csrf-token`.
    pub token_header: String,
}

impl Default for CsrfConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            token_validation: false,
            confidence_threshold: Fraction::new_const(0.8),
            allowed_origins: Vec::new(),
            token_paths: Vec::new(),
            token_field: "csrf_token".into(),
            token_header: "x-csrf-token".into(),
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
