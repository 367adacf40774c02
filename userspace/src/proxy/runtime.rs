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

use arc_swap::{ArcSwap, ArcSwapOption};
use tokio::task::JoinHandle;
use tracing::{info, warn};

use super::route::RouteTable;
use super::upstream::{Upstreams, health};
use crate::config::schema::{BlockResponse, RuleSetting};
use crate::config::types::Cidr;
use crate::config::{self, Config};
use crate::net::tls::{self, TlsSetup};
use crate::tls::{CertHub, ServedCert};
use crate::waf::headers::{HeaderError, ResponseHeaders};
use crate::waf::policy::RuleState;
use crate::waf::{Engine, Family, Overrides, PolicyError};

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
    pub security_headers: ResponseHeaders,
    pub block_response: BlockResponse,
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
}

impl Runtime {
    /// Builds a generation; state of upstream servers carries over from `previous` where settings match.
    fn build(
        config: Config,
        previous: Option<&Runtime>,
        version: u64,
        overrides: &Overrides,
        hub: &Arc<CertHub>,
    ) -> Result<Self, ReloadError> {
        let waf = if config.waf.enabled {
            Some(Arc::new(Engine::build(&config.waf, overrides)?))
        } else {
            None
        };
        let security_headers = ResponseHeaders::build(&config.waf.security_headers)?;
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
    /// Certificate state every generation shares (ACME certificates, challenge answers).
    hub: Arc<CertHub>,
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
}

impl LiveRuntime {
    pub fn new(config: Config, source: Option<PathBuf>, hub: Arc<CertHub>) -> Result<Self, ReloadError> {
        let overrides_file = overrides_path(&config);
        let overrides = load_overrides(&overrides_file);
        let first = Runtime::build(config, None, 1, &overrides, &hub)?;
        Ok(Self {
            current: ArcSwap::from_pointee(first),
            source,
            next_version: AtomicU64::new(2),
            waf_overrides: Mutex::new(overrides),
            overrides_file,
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
        let next = Runtime::build(config, Some(&current), version, &overrides, &self.hub)?;
        self.current.store(Arc::new(next));
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
    let checks: [(&'static str, bool); 10] = [
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
