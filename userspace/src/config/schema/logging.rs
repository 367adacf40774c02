//! `logging`: the daemon's own log, and the security, access and performance logs.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::config::types::ByteSize;

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LoggingConfig {
    /// Default `info`.
    pub level: LogLevel,
    /// `json` (one object per line), `text` (human-readable) or `structured` (same as `json`). Default `json`.
    pub format: LogFormat,
    /// `stdout`, `stderr` or file paths. Default `[stdout]`.
    pub outputs: Vec<String>,
    pub security_log: SecurityLogConfig,
    pub access_log: AccessLogConfig,
    pub performance_log: PerformanceLogConfig,
}

impl Default for LoggingConfig {
    fn default() -> Self {
        Self {
            level: LogLevel::Info,
            format: LogFormat::Json,
            outputs: vec!["stdout".into()],
            security_log: SecurityLogConfig::default(),
            access_log: AccessLogConfig::default(),
            performance_log: PerformanceLogConfig::default(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    #[serde(alias = "DEBUG", alias = "Debug")]
    Debug,
    #[serde(alias = "INFO", alias = "Info")]
    Info,
    #[serde(alias = "WARN", alias = "Warn", alias = "warning", alias = "WARNING")]
    Warn,
    #[serde(alias = "ERROR", alias = "Error")]
    Error,
}

impl LogLevel {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Debug => "debug",
            Self::Info => "info",
            Self::Warn => "warn",
            Self::Error => "error",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Json,
    Text,
    Structured,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SecurityLogConfig {
    /// Default true.
    pub enabled: bool,
    /// Default: the main log outputs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<PathBuf>,
    /// Rotate when the file reaches this size. Default 100MB.
    pub max_size: ByteSize,
    /// Also rotate when the UTC day or week changes: `daily`, `weekly`, or `size` (size only). Default `daily`.
    pub rotation: Rotation,
    /// Rotated files older than this many days are deleted. Default 30.
    pub retention_days: u32,
    /// At most this many rotated files are kept. Default 30.
    pub max_files: u32,
}

impl Default for SecurityLogConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            file: None,
            max_size: ByteSize::mib(100),
            rotation: Rotation::Daily,
            retention_days: 30,
            max_files: 30,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Rotation {
    Daily,
    Weekly,
    Size,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AccessLogConfig {
    /// Default true.
    pub enabled: bool,
    /// Default: the main log outputs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<PathBuf>,
    /// Default `json`.
    pub format: AccessLogFormat,
    /// Template for `format: custom`. Default none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub custom_format: Option<String>,
    /// Rotate when the file reaches this size. Default 100MB.
    pub max_size: ByteSize,
    /// Also rotate when the UTC day or week changes: `daily`, `weekly`, or `size` (size only). Default `daily`.
    pub rotation: Rotation,
    /// Rotated files older than this many days are deleted. Default 30.
    pub retention_days: u32,
    /// At most this many rotated files are kept. Default 30.
    pub max_files: u32,
}

impl Default for AccessLogConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            file: None,
            format: AccessLogFormat::Json,
            custom_format: None,
            max_size: ByteSize::mib(100),
            rotation: Rotation::Daily,
            retention_days: 30,
            max_files: 30,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AccessLogFormat {
    Combined,
    Common,
    Json,
    Custom,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PerformanceLogConfig {
    /// Default false.
    pub enabled: bool,
    /// Default: the main log outputs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<PathBuf>,
    /// Log requests slower than this many milliseconds. Default 1000.
    pub slow_request_threshold: u64,
    /// Rotate when the file reaches this size. Default 100MB.
    pub max_size: ByteSize,
    /// Also rotate when the UTC day or week changes: `daily`, `weekly`, or `size` (size only). Default `daily`.
    pub rotation: Rotation,
    /// Rotated files older than this many days are deleted. Default 30.
    pub retention_days: u32,
    /// At most this many rotated files are kept. Default 30.
    pub max_files: u32,
}

impl Default for PerformanceLogConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            file: None,
            slow_request_threshold: 1000,
            max_size: ByteSize::mib(100),
            rotation: Rotation::Daily,
            retention_days: 30,
            max_files: 30,
        }
    }
}
