//! The configuration schema: one YAML file with the sections of the seed specification's configuration
//! reference (`server`, `ssl`, `waf`, `proxy`, `admin`, `metrics`, `logging`) plus `xdp` and `fleet`.
//!
//! These types are the documentation: every field has a doc comment and a default (the `Default` impls), and
//! `config/rampart.example.yaml` is checked against them by a test. Unknown keys are rejected everywhere.
//! This module only describes shape and per-value rules; cross-field checks live in `config::validate`.

mod admin;
mod fleet;
mod logging;
mod metrics;
mod proxy;
mod server;
mod ssl;
mod waf;
mod xdp;

pub use admin::*;
pub use fleet::*;
pub use logging::*;
pub use metrics::*;
pub use proxy::*;
pub use server::*;
pub use ssl::*;
pub use waf::*;
pub use xdp::*;

use serde::{Deserialize, Serialize};

/// The whole configuration file.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Deployment environment; informational, included in logs and `/admin/system/status`.
    pub environment: Environment,
    /// Verbose diagnostics (debug-level logs for Rampart's own modules). Default false.
    pub debug: bool,
    /// Shorthand for `logging.level`; when set it wins over `logging.level`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_level: Option<LogLevel>,
    pub server: ServerConfig,
    pub ssl: SslConfig,
    pub waf: WafConfig,
    pub proxy: ProxyConfig,
    pub admin: AdminConfig,
    pub metrics: MetricsConfig,
    pub logging: LoggingConfig,
    pub xdp: XdpConfig,
    pub fleet: FleetConfig,
}

impl Config {
    /// The log level in force: `log_level` if set, else `logging.level`.
    pub fn effective_log_level(&self) -> LogLevel {
        self.log_level.unwrap_or(self.logging.level)
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    #[default]
    Production,
    Staging,
    Development,
}
