//! `metrics`: Prometheus exposition and the health endpoint.

use serde::{Deserialize, Serialize};

use crate::config::types::Port;

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// Collect metrics. Default true.
    pub enabled: bool,
    pub prometheus: PrometheusConfig,
    pub custom_metrics: CustomMetricsConfig,
    pub health_checks: HealthEndpointConfig,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            prometheus: PrometheusConfig::default(),
            custom_metrics: CustomMetricsConfig::default(),
            health_checks: HealthEndpointConfig::default(),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PrometheusConfig {
    /// Serve Prometheus text. Default true.
    pub enabled: bool,
    /// A separate port for scraping; default none: served on the admin listener.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<Port>,
    /// Default `/metrics`.
    pub path: String,
    /// Default `default`.
    pub registry: RegistryKind,
}

impl Default for PrometheusConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            port: None,
            path: "/metrics".into(),
            registry: RegistryKind::Default,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RegistryKind {
    Default,
    Custom,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CustomMetricsConfig {
    /// Default false.
    pub enabled: bool,
    /// Default `/metrics/custom`.
    pub endpoint: String,
    /// Default `json`.
    pub format: MetricsFormat,
}

impl Default for CustomMetricsConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            endpoint: "/metrics/custom".into(),
            format: MetricsFormat::Json,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MetricsFormat {
    Prometheus,
    Json,
    Influxdb,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HealthEndpointConfig {
    /// Default true.
    pub enabled: bool,
    /// Default `/health`.
    pub endpoint: String,
    /// Include each component's status. Default true.
    pub detailed: bool,
}

impl Default for HealthEndpointConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            endpoint: "/health".into(),
            detailed: true,
        }
    }
}
