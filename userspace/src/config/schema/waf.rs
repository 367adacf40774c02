//! `waf`: request inspection and the request checks around it.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::config::patterns::PathPattern;
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
    pub auto_ban: AutoBanConfig,
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
            auto_ban: AutoBanConfig::default(),
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
    /// Crawlers that may identify themselves by user agent, each confirmed by reverse and forward DNS of the
    /// client address. A client naming one that fails the check scores as a forger. Default none (no DNS
    /// lookups).
    pub verified_bots: Vec<VerifiedBot>,
    pub challenge: ChallengeConfig,
    /// Clients whose behaviour is followed at once; the least recently seen go first. Default 100000.
    pub max_tracked_clients: u64,
}

/// A crawler confirmed by DNS: its `user_agent` substring (case-insensitive) is believed only when the
/// client address resolves (PTR) to a name under one of `domains` that resolves back to the address.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifiedBot {
    pub name: String,
    pub user_agent: String,
    /// Domain suffixes, e.g. `googlebot.com`.
    pub domains: Vec<String>,
}

/// The challenge a suspect client must pass: a JavaScript proof of work, or a CAPTCHA when `captcha` is set
/// and `javascript_challenge` is false. Passing sets a clearance cookie bound to the client address and user
/// agent.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChallengeConfig {
    /// Leading zero bits of SHA-256 the proof of work needs (each bit doubles the work: 16 is about 65,000
    /// hashes, a fraction of a second in a browser). Default 16.
    pub difficulty: u8,
    /// Seconds a clearance cookie is good for. Default 3600.
    pub clearance_ttl: u64,
    /// Seconds a challenge may take to be answered. Default 300.
    pub challenge_ttl: u64,
    /// Name of the clearance cookie. Default `rampart_clearance`.
    pub cookie_name: String,
    /// Key that signs challenges and cookies; at least 32 characters. Nodes that share it accept each other's
    /// cookies. Default: a random key kept in `challenge.key` next to `xdp.record_file`, so cookies survive
    /// restarts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub captcha: Option<CaptchaConfig>,
}

impl Default for ChallengeConfig {
    fn default() -> Self {
        Self {
            difficulty: 16,
            clearance_ttl: 3600,
            challenge_ttl: 300,
            cookie_name: "rampart_clearance".into(),
            secret: None,
            captcha: None,
        }
    }
}

/// A Turnstile/hCaptcha-style provider: the page loads `script_url` and shows the widget for `site_key`;
/// the token it yields is checked by posting `secret`, `response` and `remoteip` to `verify_url`, which
/// answers JSON with `success`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaptchaConfig {
    pub site_key: String,
    pub secret: String,
    /// e.g. `https://challenges.cloudflare.com/turnstile/v0/siteverify`.
    pub verify_url: String,
    /// e.g. `https://challenges.cloudflare.com/turnstile/v0/api.js`.
    pub script_url: String,
    /// CSS class of the widget element (`cf-turnstile`, `h-captcha`). Default `cf-turnstile`.
    #[serde(default = "default_widget_class")]
    pub widget_class: String,
    /// Form field the widget fills with its token. Default `cf-turnstile-response`.
    #[serde(default = "default_response_field")]
    pub response_field: String,
    /// Seconds to wait for `verify_url`. Default 5.
    #[serde(default = "default_verify_timeout")]
    pub timeout: u64,
}

fn default_widget_class() -> String {
    "cf-turnstile".into()
}

fn default_response_field() -> String {
    "cf-turnstile-response".into()
}

fn default_verify_timeout() -> u64 {
    5
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
            verified_bots: Vec::new(),
            challenge: ChallengeConfig::default(),
            max_tracked_clients: 100_000,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
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
    /// Clients never rate limited (nor auto-banned). Default none.
    pub whitelist_ips: Vec<Cidr>,
    /// Clients always refused with 429. Default none.
    pub blacklist_ips: Vec<Cidr>,
    /// How `per_user` endpoint limits name the user. Default: the `authorization` header's value.
    pub user_key: UserKey,
    /// Most counters kept in memory (one per client and window); past it the idle ones go first, then
    /// arbitrary ones, so a flood of distinct sources cannot exhaust memory. Default 1000000.
    pub max_tracked_keys: u64,
    /// Redis (`redis://host:port/db`) holding the counters, shared by every node that names it. When Redis
    /// cannot be reached the local counters are used and a warning is logged. Default none (local only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redis_url: Option<String>,
}

impl Default for RateLimitingConfig {
    fn default() -> Self {
        Self {
            global_limit: None,
            per_ip_limit: None,
            per_endpoint_limits: Vec::new(),
            whitelist_ips: Vec::new(),
            blacklist_ips: Vec::new(),
            user_key: UserKey::default(),
            max_tracked_keys: 1_000_000,
            redis_url: None,
        }
    }
}

/// Where a per-user limit finds the user.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UserKey {
    /// Header whose value names the user (an API key, a session token). With `jwt_sub`, the header holding
    /// the bearer token. Default `authorization`.
    pub header: String,
    /// Read the user from the `sub` claim of the JWT in `header` (`Bearer <token>`). Default false.
    pub jwt_sub: bool,
    /// HS256 secret the JWT must be signed with. Without it the `sub` is taken unverified only when
    /// `jwt_insecure_unverified` says so; otherwise requests are counted per header value. Default none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwt_hs256_secret: Option<String>,
    /// Accept an unverified JWT's `sub` (only where tokens are verified by the upstream anyway). Default false.
    pub jwt_insecure_unverified: bool,
}

impl Default for UserKey {
    fn default() -> Self {
        Self {
            header: "authorization".into(),
            jwt_sub: false,
            jwt_hs256_secret: None,
            jwt_insecure_unverified: false,
        }
    }
}

/// A rate over one or more windows; a request must fit every window that is set.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimit {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requests_per_second: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requests_per_minute: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requests_per_hour: Option<u64>,
    /// Token bucket only: requests allowed at once in the shortest window set (its bucket's capacity);
    /// longer windows hold their whole count. Default: the shortest window's count.
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
    /// Path pattern as in routes: exact, prefix (`/api/*`), glob or `~regex`.
    pub path: PathPattern,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_per_second: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_per_minute: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_per_hour: Option<u64>,
    /// As in `RateLimit::burst`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst: Option<u64>,
    /// Default `token_bucket`.
    #[serde(default)]
    pub algorithm: RateAlgorithm,
    /// Count per client address. Default false.
    #[serde(default)]
    pub per_ip: bool,
    /// Count per user (see `user_key`). Default false; with neither, one counter for all clients.
    #[serde(default)]
    pub per_user: bool,
}

/// Repeat offenders into the XDP deny list: each blocked, rate-limited or failed-challenge request adds to
/// its client's score, which halves every `half_life` seconds; at `threshold` the client is denied in XDP
/// for `duration` seconds (reason `auto-ban`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AutoBanConfig {
    /// Default false.
    pub enabled: bool,
    /// Score at which a client is banned. Default 20.
    pub threshold: f64,
    /// Seconds a ban lasts. Default 3600.
    pub duration: u64,
    /// Seconds in which a score halves. Default 60.
    pub half_life: u64,
    /// Added for a request blocked by the WAF, a custom rule or bot detection. Default 1.
    pub block_weight: f64,
    /// Added for a request refused by a rate limit. Default 0.5.
    pub rate_limit_weight: f64,
    /// Added for a failed challenge (a wrong or forged solution). Default 2.
    pub challenge_failure_weight: f64,
    /// Clients never banned, besides `rate_limiting.whitelist_ips` and `xdp.allow`. Default none.
    pub whitelist_ips: Vec<Cidr>,
    /// Most clients with a score kept in memory; past it the lowest scores go. Default 100000.
    pub max_tracked_ips: u64,
}

impl Default for AutoBanConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            threshold: 20.0,
            duration: 3600,
            half_life: 60,
            block_weight: 1.0,
            rate_limit_weight: 0.5,
            challenge_failure_weight: 2.0,
            whitelist_ips: Vec::new(),
            max_tracked_ips: 100_000,
        }
    }
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

/// An operator rule: conditions over the request (target, optional transforms, operator, value) and what to
/// do when they hold. Custom rules run in ascending `priority` before the built-in detectors; the first
/// rule whose action is `allow`, `block` or `challenge` decides, `log` rules record and go on, and a
/// `rate_limit` rule counts the request against its own limit (refusing with 429 when over it).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
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
    /// How `conditions` combine: `all` must hold (default) or `any` one.
    #[serde(default, rename = "match")]
    pub combine: Combine,
    /// Conditions, or groups `{any: [...]}` / `{all: [...]}` of them.
    pub conditions: Vec<ConditionItem>,
    pub action: CustomAction,
    /// The limit of a `rate_limit` rule, counted per client address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimit>,
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

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Combine {
    #[default]
    All,
    Any,
}

/// One condition, or a group of them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ConditionItem {
    Condition(RuleCondition),
    Group(ConditionGroup),
}

/// A group: every condition in `all`, or at least one in `any`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "lowercase")]
pub enum ConditionGroup {
    All(Vec<RuleCondition>),
    Any(Vec<RuleCondition>),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleCondition {
    /// The target: what part of the request is looked at.
    #[serde(rename = "type")]
    pub kind: ConditionKind,
    pub operator: ConditionOperator,
    /// The operand; not needed for `exists`. `in_subnet`/`not_in_subnet` take a comma-separated CIDR list,
    /// `gt`/`lt` a size in bytes (compared with the target's length).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Header, query argument or cookie name, for `type: header`, `query` and `cookie`. Without it `query`
    /// is the whole query string and `cookie` the whole Cookie header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Transformations applied to the target before matching, in order. Default none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub transforms: Vec<Transform>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConditionKind {
    Path,
    Method,
    Header,
    Query,
    Cookie,
    Body,
    Ip,
    Country,
    UserAgent,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConditionOperator {
    Equals,
    Contains,
    StartsWith,
    EndsWith,
    Regex,
    Glob,
    InSubnet,
    NotInSubnet,
    Exists,
    Gt,
    Lt,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transform {
    Lowercase,
    UrlDecode,
    Trim,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CustomAction {
    Allow,
    Block,
    Challenge,
    Log,
    RateLimit,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleAction {
    Allow,
    Block,
    Challenge,
    Log,
}
