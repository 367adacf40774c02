//! The proxy's configuration-dependent state as one immutable generation, and the atomic swap that replaces
//! it on reload. Every request takes the current generation when it starts and keeps it to the end, so
//! in-flight requests finish on the configuration they started with.
//!
//! Reload is validate → build → swap, or nothing changes: a configuration that fails to load, fails to build
//! (say a certificate does not parse), or changes something only a restart can apply (listen addresses, XDP,
//! the admin listener) leaves the running generation untouched and says why.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use arc_swap::{ArcSwap, ArcSwapOption};
use tokio::task::JoinHandle;
use tracing::{info, warn};

use super::route::RouteTable;
use super::upstream::{Upstreams, health};
use crate::config::schema::CustomRule;
use crate::config::schema::{BlockResponse, RuleSetting};
use crate::config::types::Cidr;
use crate::config::{self, Config};
use crate::net::tls::{self, TlsSetup};
use crate::policy::bot::{BotError, BotPolicy};
use crate::policy::ratelimit::store::Store;
use crate::policy::ratelimit::{RateLimitError, RateLimiter};
use crate::tls::{CertHub, ServedCert};
use crate::waf::headers::{HeaderError, ResponseHeaders};
use crate::waf::policy::RuleState;
use crate::waf::rules::{CustomRules, RuleError};
use crate::waf::{Engine, Family, Overrides, PolicyError};
use crate::xdp::geo::CountryLookup;

/// One generation of configuration-dependent state.
pub struct Runtime {
    pub version: u64,
    pub config: Config,
    pub routes: RouteTable,
    pub upstreams: Upstreams,
    pub tls: Option<TlsSetup>,
    pub trusted_proxies: Vec<Cidr>,
    pub max_request_size: u64,
    /// The WAF engine of this generation (`None` with `waf.enabled: false`). Swappable on its own, so that a
    /// rule change through the admin API takes effect without rebuilding the rest of the generation.
    pub waf: ArcSwapOption<Engine>,
    /// Security headers added to responses.
    pub security_headers: Arc<ResponseHeaders>,
    pub block_response: BlockResponse,
    /// `waf.rate_limiting` compiled (`None` when nothing is limited); its counters start afresh with each
    /// generation.
    pub rate_limits: Option<RateLimiter>,
    /// The custom rules in force: the configuration's with the admin API's changes on top. Swappable on
    /// its own, so a rule change applies at once without rebuilding the generation.
    pub custom_rules: ArcSwap<CustomRules>,
    /// Counters of `rate_limit` custom rules (window ids are the rule set's; a rule change starts afresh).
    pub rule_limits: ArcSwap<Store>,
    /// The MaxMind database of `waf.geo_blocking.geoip_database`, for the client's country at L7.
    pub countries: Option<Arc<CountryLookup>>,
    /// `waf.bot_protection` compiled (`None` when it is off).
    pub bots: Option<BotPolicy>,
    /// `proxy.caching.cache_rules` and routes' `cache_ttl`, compiled.
    pub cache_rules: super::cache::CacheRules,
    origin: Instant,
    health_tasks: Vec<JoinHandle<()>>,
}

impl Drop for Runtime {
    fn drop(&mut self) {
        for t in &self.health_tasks {
            t.abort();
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("{0}")]
    Config(#[from] config::ConfigError),
    #[error("{0}")]
    Tls(#[from] tls::TlsError),
    #[error("{0}")]
    NeedsRestart(String),
    #[error("{0}")]
    Waf(#[from] PolicyError),
    #[error("{0}")]
    SecurityHeaders(#[from] HeaderError),
    #[error("{0}")]
    RateLimit(#[from] RateLimitError),
    #[error("{0}")]
    CustomRule(#[from] RuleError),
    #[error("{0}")]
    Bot(#[from] BotError),
}

impl Runtime {
    /// Nanoseconds since this generation was built: the clock of its rule counters.
    pub fn now_ns(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// The client's country (ISO code) from the GeoIP database, when there is one and it knows the address.
    pub fn country(&self, ip: std::net::IpAddr) -> Option<String> {
        self.countries.as_ref()?.country(ip)
    }

    /// Builds a generation; state of upstream servers carries over from `previous` where settings match.
    fn build(
        config: Config,
        previous: Option<&Runtime>,
        version: u64,
        overrides: &Overrides,
        custom: &CustomOverlay,
        hub: &Arc<CertHub>,
    ) -> Result<Self, ReloadError> {
        let custom_rules = CustomRules::build(&custom.apply(&config.waf.custom_rules))?;
        let countries = match &config.waf.geo_blocking.geoip_database {
            Some(db) => match CountryLookup::open(db) {
                Ok(c) => Some(Arc::new(c)),
                Err(e) => {
                    warn!(error = %e, "the GeoIP database cannot be read: client countries are unknown at L7");
                    None
                }
            },
            None => None,
        };
        let waf = if config.waf.enabled {
            Some(Arc::new(Engine::build(&config.waf, overrides)?))
        } else {
            None
        };
        let security_headers = Arc::new(ResponseHeaders::build(&config.waf.security_headers)?);
        let rate_limits = RateLimiter::build(&config.waf.rate_limiting)?;
        let bots = BotPolicy::build(&config.waf.bot_protection)?;
        let tls = if config.ssl.enabled {
            Some(tls::build(&config.ssl, hub, previous.and_then(|p| p.tls.as_ref()))?)
        } else {
            None
        };
        let upstreams = Upstreams::build(&config.proxy.upstreams, previous.map(|p| &p.upstreams));
        let health_tasks = upstreams.iter().flat_map(health::spawn).collect();
        Ok(Self {
            version,
            routes: RouteTable::build(&config),
            upstreams,
            tls,
            trusted_proxies: config.server.trusted_proxies.clone(),
            max_request_size: config.server.max_request_size.get(),
            waf: ArcSwapOption::new(waf),
            security_headers,
            block_response: config.waf.block_response.clone(),
            rate_limits,
            rule_limits: ArcSwap::from_pointee(Store::new(config.waf.rate_limiting.max_tracked_keys)),
            custom_rules: ArcSwap::from_pointee(custom_rules),
            countries,
            bots,
            cache_rules: super::cache::CacheRules::build(&config),
            origin: Instant::now(),
            health_tasks,
            config,
        })
    }
}

/// The current generation, and how to make the next.
pub struct LiveRuntime {
    current: ArcSwap<Runtime>,
    /// The file the configuration came from; `None` for the embedded default (nothing to re-read).
    source: Option<PathBuf>,
    next_version: AtomicU64,
    /// Rule changes made at run time (`PUT /admin/waf/rules/{name}`), applied over every generation's
    /// configuration, and where they are kept across restarts.
    waf_overrides: Mutex<Overrides>,
    overrides_file: PathBuf,
    /// Custom rules added, changed or deleted through the admin API, over the configuration's, and the
    /// file they are kept in.
    custom: Mutex<CustomOverlay>,
    custom_file: PathBuf,
    /// Certificate state every generation shares (ACME certificates, challenge answers).
    hub: Arc<CertHub>,
}

/// Custom rule changes made at run time: rules set (added or replacing a configured one by name) and
/// configured rules deleted. Applied over every generation's `waf.custom_rules`; saved as JSON.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct CustomOverlay {
    pub set: std::collections::BTreeMap<String, CustomRule>,
    pub deleted: std::collections::BTreeSet<String>,
}

impl CustomOverlay {
    /// The configured rules with the changes applied: replaced in place, deleted ones gone, new ones after.
    pub fn apply(&self, configured: &[CustomRule]) -> Vec<CustomRule> {
        let mut out: Vec<CustomRule> = configured
            .iter()
            .filter(|r| !self.deleted.contains(&r.name))
            .map(|r| self.set.get(&r.name).unwrap_or(r).clone())
            .collect();
        for (name, r) in &self.set {
            if !configured.iter().any(|c| &c.name == name) {
                out.push(r.clone());
            }
        }
        out
    }
}

/// How a custom rule change through the admin API is made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CustomChange {
    /// `POST`: the name must be new.
    Create,
    /// `PUT`: the name must exist.
    Replace,
}

/// Why a rule change was refused.
#[derive(Debug, thiserror::Error)]
pub enum RuleChangeError {
    #[error("unknown rule `{0}`")]
    UnknownRule(String),
    #[error("{0}")]
    Build(#[from] PolicyError),
    #[error("the change is in force but could not be saved to {path}: {error}")]
    Persist { path: String, error: std::io::Error },
    #[error("{0}")]
    CustomRule(#[from] RuleError),
    #[error("a custom rule named `{0}` exists already")]
    Exists(String),
}

impl LiveRuntime {
    pub fn new(config: Config, source: Option<PathBuf>, hub: Arc<CertHub>) -> Result<Self, ReloadError> {
        let overrides_file = overrides_path(&config);
        let overrides = load_overrides(&overrides_file);
        let custom_file = overrides_file.with_file_name("custom-rules.json");
        let custom = load_json::<CustomOverlay>(&custom_file);
        let first = Runtime::build(config, None, 1, &overrides, &custom, &hub)?;
        Ok(Self {
            current: ArcSwap::from_pointee(first),
            source,
            next_version: AtomicU64::new(2),
            waf_overrides: Mutex::new(overrides),
            overrides_file,
            custom: Mutex::new(custom),
            custom_file,
            hub,
        })
    }

    pub fn hub(&self) -> &Arc<CertHub> {
        &self.hub
    }

    /// Every certificate the TLS listener can serve now: the current generation's files, then the managed ones.
    pub fn served_certificates(&self) -> Vec<Arc<ServedCert>> {
        let rt = self.load();
        let mut all: Vec<Arc<ServedCert>> = rt.tls.iter().flat_map(|t| t.certs.all.iter().cloned()).collect();
        all.extend(self.hub.managed().all.iter().cloned());
        all
    }

    /// The WAF rules as in force (`None` when the WAF is off).
    pub fn waf_rules(&self) -> Option<Vec<(Family, RuleState)>> {
        let engine = self.load().waf.load_full()?;
        Some(engine.rules().map(|(f, r)| (f, *r)).collect())
    }

    /// The custom rules in force (configuration plus admin changes), in configuration order.
    pub fn custom_rules(&self) -> Vec<CustomRule> {
        let custom = self.custom.lock().unwrap_or_else(|p| p.into_inner());
        custom.apply(&self.load().config.waf.custom_rules)
    }

    /// Adds or replaces a custom rule: checked, applied to the running generation at once, kept for every
    /// later one and saved. `Ok(false)` for `Replace` of a rule that does not exist (nothing changed).
    pub fn put_custom_rule(&self, rule: CustomRule, how: CustomChange) -> Result<bool, RuleChangeError> {
        CustomRules::check(&rule)?;
        let mut custom = self.custom.lock().unwrap_or_else(|p| p.into_inner());
        let rt = self.load();
        let exists = custom
            .apply(&rt.config.waf.custom_rules)
            .iter()
            .any(|r| r.name == rule.name);
        match (how, exists) {
            (CustomChange::Create, true) => return Err(RuleChangeError::Exists(rule.name)),
            (CustomChange::Replace, false) => return Ok(false),
            _ => {}
        }
        let mut next = custom.clone();
        next.deleted.remove(&rule.name);
        let name = rule.name.clone();
        next.set.insert(name.clone(), rule);
        self.swap_custom(&rt, &mut custom, next)?;
        info!(rule = %name, "custom rule {} through the admin API", if how == CustomChange::Create { "added" } else { "replaced" });
        Ok(true)
    }

    /// Deletes a custom rule; `Ok(false)` when there is none by that name.
    pub fn delete_custom_rule(&self, name: &str) -> Result<bool, RuleChangeError> {
        let mut custom = self.custom.lock().unwrap_or_else(|p| p.into_inner());
        let rt = self.load();
        if !custom.apply(&rt.config.waf.custom_rules).iter().any(|r| r.name == name) {
            return Ok(false);
        }
        let mut next = custom.clone();
        next.set.remove(name);
        if rt.config.waf.custom_rules.iter().any(|r| r.name == name) {
            next.deleted.insert(name.to_owned());
        }
        self.swap_custom(&rt, &mut custom, next)?;
        info!(rule = %name, "custom rule deleted through the admin API");
        Ok(true)
    }

    /// Builds `next` over the running generation's configuration, swaps it in, then saves it.
    fn swap_custom(
        &self,
        rt: &Runtime,
        current: &mut CustomOverlay,
        next: CustomOverlay,
    ) -> Result<(), RuleChangeError> {
        let rules = CustomRules::build(&next.apply(&rt.config.waf.custom_rules))?;
        rt.custom_rules.store(Arc::new(rules));
        rt.rule_limits
            .store(Arc::new(Store::new(rt.config.waf.rate_limiting.max_tracked_keys)));
        *current = next;
        save_json(&self.custom_file, &*current).map_err(|error| RuleChangeError::Persist {
            path: self.custom_file.display().to_string(),
            error,
        })
    }

    /// Changes one WAF rule: merged into the overrides, applied to the running engine at once, kept for
    /// every later generation and saved to the overrides file.
    pub fn set_waf_rule(&self, name: &str, change: &RuleSetting) -> Result<Option<RuleState>, RuleChangeError> {
        let family = Family::parse(name).ok_or_else(|| RuleChangeError::UnknownRule(name.to_owned()))?;
        let mut overrides = self.waf_overrides.lock().unwrap_or_else(|p| p.into_inner());
        let mut next = overrides.clone();
        let entry = next.entry(family.name().to_owned()).or_default();
        if change.enabled.is_some() {
            entry.enabled = change.enabled;
        }
        if change.threshold.is_some() {
            entry.threshold = change.threshold;
        }
        if change.action.is_some() {
            entry.action = change.action;
        }
        let rt = self.load();
        let state = if rt.config.waf.enabled {
            let engine = Engine::build(&rt.config.waf, &next)?;
            let state = *engine.policy().rule(family);
            rt.waf.store(Some(Arc::new(engine)));
            Some(state)
        } else {
            None
        };
        *overrides = next;
        info!(rule = family.name(), ?change, "WAF rule changed through the admin API");
        save_overrides(&self.overrides_file, &overrides).map_err(|error| RuleChangeError::Persist {
            path: self.overrides_file.display().to_string(),
            error,
        })?;
        Ok(state)
    }

    pub fn load(&self) -> Arc<Runtime> {
        self.current.load_full()
    }

    /// Files whose change should trigger a reload: the configuration and the TLS material it names.
    pub fn watched_files(&self) -> Vec<PathBuf> {
        let rt = self.load();
        self.source
            .iter()
            .cloned()
            .chain(rt.tls.iter().flat_map(|t| t.files.iter().cloned()))
            .collect()
    }

    /// Re-reads the configuration and swaps in a new generation; on any error nothing changes.
    pub fn reload(&self, why: &str) -> Result<u64, ReloadError> {
        let result = self.try_reload();
        match &result {
            Ok(v) => info!(trigger = why, version = v, "configuration reloaded"),
            Err(e) => warn!(trigger = why, error = %e, "configuration reload refused; the running configuration stays"),
        }
        result
    }

    fn try_reload(&self) -> Result<u64, ReloadError> {
        let config = match &self.source {
            Some(path) => config::load_file(path)?,
            None => config::load_default()?,
        };
        let current = self.load();
        if let Some(what) = needs_restart(&current.config, &config) {
            return Err(ReloadError::NeedsRestart(format!(
                "{what} changed; that takes a restart (nothing was changed)"
            )));
        }
        let unsupported = crate::daemon::unsupported(&config);
        if !unsupported.fatal.is_empty() {
            return Err(ReloadError::NeedsRestart(unsupported.fatal.join("; ")));
        }
        let version = self.next_version.fetch_add(1, Ordering::Relaxed);
        // Held until the swap: a rule change through the admin API meanwhile would otherwise be lost.
        let overrides = self.waf_overrides.lock().unwrap_or_else(|p| p.into_inner());
        let custom = self.custom.lock().unwrap_or_else(|p| p.into_inner());
        let next = Runtime::build(config, Some(&current), version, &overrides, &custom, &self.hub)?;
        self.current.store(Arc::new(next));
        drop(custom);
        drop(overrides);
        Ok(version)
    }
}

/// The first setting that differs and cannot change while running, if any.
fn needs_restart(old: &Config, new: &Config) -> Option<&'static str> {
    // Sections are compared through their serialised form: the schema types need not implement `PartialEq`.
    fn json<T: serde::Serialize>(v: &T) -> serde_json::Value {
        serde_json::to_value(v).unwrap_or(serde_json::Value::Null)
    }
    let acme = |c: &Config| {
        (
            c.ssl.auto_provision,
            json(&c.ssl.acme),
            json(&c.ssl.storage),
            json(&c.ssl.renewal),
            json(&c.ssl.ocsp_stapling),
        )
    };
    let checks: [(&'static str, bool); 14] = [
        ("server.host", old.server.host != new.server.host),
        ("server.port", old.server.port != new.server.port),
        ("server.workers", old.server.workers != new.server.workers),
        ("server.io", old.server.io != new.server.io),
        (
            "server.proxy_protocol",
            old.server.proxy_protocol != new.server.proxy_protocol,
        ),
        (
            "ssl.enabled / ssl.port",
            old.ssl.enabled != new.ssl.enabled || old.ssl.port != new.ssl.port,
        ),
        ("admin", json(&old.admin) != json(&new.admin)),
        ("xdp", json(&old.xdp) != json(&new.xdp)),
        ("metrics", json(&old.metrics) != json(&new.metrics)),
        // Log files and formats are opened once, at start.
        ("logging", json(&old.logging) != json(&new.logging)),
        // Scores and bans outlive generations, so their settings are fixed at start.
        ("waf.auto_ban", json(&old.waf.auto_ban) != json(&new.waf.auto_ban)),
        // The stores outlive generations (a reload keeps what is cached); rules reload.
        (
            "proxy.caching.memory_cache",
            json(&old.proxy.caching.memory_cache) != json(&new.proxy.caching.memory_cache),
        ),
        (
            "proxy.caching.redis_cache",
            json(&old.proxy.caching.redis_cache) != json(&new.proxy.caching.redis_cache),
        ),
        (
            "ssl.auto_provision / ssl.acme / ssl.storage / ssl.renewal / ssl.ocsp_stapling",
            acme(old) != acme(new),
        ),
    ];
    checks.into_iter().find(|(_, changed)| *changed).map(|(what, _)| what)
}

/// `waf.overrides_file`, else `waf-rule-overrides.json` next to `xdp.record_file` (the daemon's state directory).
fn overrides_path(config: &Config) -> PathBuf {
    config.waf.overrides_file.clone().unwrap_or_else(|| {
        config
            .xdp
            .record_file
            .parent()
            .unwrap_or_else(|| Path::new("."))
            .join("waf-rule-overrides.json")
    })
}

/// The saved overrides; a missing file is none, an unreadable one is reported and ignored (the configured
/// rules, all of them in force, are the safe side).
fn load_overrides(path: &Path) -> Overrides {
    match std::fs::read(path) {
        Ok(bytes) => match serde_json::from_slice::<Overrides>(&bytes) {
            Ok(o) => {
                if !o.is_empty() {
                    info!(file = %path.display(), rules = o.len(), "WAF rule overrides from the admin API restored");
                }
                o
            }
            Err(e) => {
                warn!(file = %path.display(), error = %e, "WAF rule overrides file unreadable; ignoring it");
                Overrides::new()
            }
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Overrides::new(),
        Err(e) => {
            warn!(file = %path.display(), error = %e, "cannot read the WAF rule overrides file; ignoring it");
            Overrides::new()
        }
    }
}

/// A saved JSON state file; missing is the default, unreadable is reported and taken as the default.
fn load_json<T: serde::de::DeserializeOwned + Default>(path: &Path) -> T {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            warn!(file = %path.display(), error = %e, "state file unreadable; ignoring it");
            T::default()
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => T::default(),
        Err(e) => {
            warn!(file = %path.display(), error = %e, "cannot read the state file; ignoring it");
            T::default()
        }
    }
}

/// Writes JSON atomically (temporary file, then rename).
fn save_json<T: serde::Serialize>(path: &Path, value: &T) -> std::io::Result<()> {
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("json.tmp");
    let text = serde_json::to_vec_pretty(value).map_err(std::io::Error::other)?;
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}

/// Writes the overrides atomically (temporary file, then rename).
fn save_overrides(path: &Path, o: &Overrides) -> std::io::Result<()> {
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("json.tmp");
    let text = serde_json::to_vec_pretty(o).map_err(std::io::Error::other)?;
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}
