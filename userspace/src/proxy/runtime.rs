//! The proxy's configuration-dependent state as one immutable generation, and the atomic swap that replaces
//! it on reload. Every request takes the current generation when it starts and keeps it to the end, so
//! in-flight requests finish on the configuration they started with.
//!
//! Reload is validate → build → swap, or nothing changes: a configuration that fails to load, fails to build
//! (say a certificate does not parse), or changes something only a restart can apply (listen addresses, XDP,
//! the admin listener) leaves the running generation untouched and says why.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arc_swap::ArcSwap;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use super::route::RouteTable;
use super::upstream::{Upstreams, health};
use crate::config::types::Cidr;
use crate::config::{self, Config};
use crate::net::tls::{self, TlsSetup};

/// One generation of configuration-dependent state.
pub struct Runtime {
    pub version: u64,
    pub config: Config,
    pub routes: RouteTable,
    pub upstreams: Upstreams,
    pub tls: Option<TlsSetup>,
    pub trusted_proxies: Vec<Cidr>,
    pub max_request_size: u64,
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
}

impl Runtime {
    /// Builds a generation; state of upstream servers carries over from `previous` where settings match.
    fn build(config: Config, previous: Option<&Runtime>, version: u64) -> Result<Self, ReloadError> {
        let tls = if config.ssl.enabled {
            Some(tls::build(&config.ssl)?)
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
}

impl LiveRuntime {
    pub fn new(config: Config, source: Option<PathBuf>) -> Result<Self, ReloadError> {
        let first = Runtime::build(config, None, 1)?;
        Ok(Self {
            current: ArcSwap::from_pointee(first),
            source,
            next_version: AtomicU64::new(2),
        })
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
        let next = Runtime::build(config, Some(&current), version)?;
        self.current.store(Arc::new(next));
        Ok(version)
    }
}

/// The first setting that differs and cannot change while running, if any.
fn needs_restart(old: &Config, new: &Config) -> Option<&'static str> {
    // Sections are compared through their serialised form: the schema types need not implement `PartialEq`.
    fn json<T: serde::Serialize>(v: &T) -> serde_json::Value {
        serde_json::to_value(v).unwrap_or(serde_json::Value::Null)
    }
    let checks: [(&'static str, bool); 9] = [
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
    ];
    checks.into_iter().find(|(_, changed)| *changed).map(|(what, _)| what)
}
