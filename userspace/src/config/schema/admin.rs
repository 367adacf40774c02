//! `admin`: the management API listener, its authentication, CORS and rate limit.

use std::net::{IpAddr, Ipv4Addr};

use serde::{Deserialize, Serialize};

use crate::config::types::Port;

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdminConfig {
    /// Serve the admin API, `/health` and `/metrics`. Default true.
    pub enabled: bool,
    /// Listen address; loopback by default so the API is never exposed by accident. Default `127.0.0.1`.
    pub host: IpAddr,
    /// Default 8081.
    pub port: Port,
    pub auth: AdminAuthConfig,
    pub cors: CorsConfig,
    pub rate_limiting: AdminRateLimitConfig,
    /// Serve the admin listener over TLS with this certificate. Default none (plain HTTP, loopback).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<AdminTlsConfig>,
}

/// A certificate for the admin listener.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminTlsConfig {
    /// PEM certificate chain, leaf first.
    pub cert_file: std::path::PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: std::path::PathBuf,
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: Port::new_const(8081),
            auth: AdminAuthConfig::default(),
            cors: CorsConfig::default(),
            rate_limiting: AdminRateLimitConfig::default(),
            tls: None,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdminAuthConfig {
    /// Require a bearer token on admin routes. Default false, which is accepted only while `admin.host` is a
    /// loopback address: then every local process may manage Rampart, as with a root-owned Unix socket.
    pub enabled: bool,
    /// HMAC secret for tokens; at least 32 bytes. Prefer `RAMPART_ADMIN__AUTH__JWT_SECRET`. Default none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwt_secret: Option<String>,
    /// The only algorithm accepted. Default `HS256`.
    pub jwt_algorithm: String,
    /// Access-token lifetime in seconds. Default 900.
    pub token_expiry: u64,
    /// Refresh-token lifetime in seconds. Default 86400.
    pub refresh_token_expiry: u64,
    /// Failed logins before the account is locked. Default 5.
    pub max_login_attempts: u32,
    /// Seconds an account stays locked. Default 900.
    pub lockout_duration: u64,
    /// Who may sign in. Required (at least one) when `enabled` is true. Default none.
    pub users: Vec<AdminUser>,
}

/// One admin account. The password is stored only as an argon2 PHC string (`rampart admin hash-password`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminUser {
    pub username: String,
    /// `$argon2id$v=19$...`; plain-text passwords are refused.
    pub password_hash: String,
    pub role: AdminRole,
}

/// What an account may do; each role includes the ones before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AdminRole {
    /// Reads state, statistics and lists.
    Viewer,
    /// Also manages block/allow lists, WAF rules, upstream servers and the cache.
    Operator,
    /// Also reloads configuration and reads the user list.
    Admin,
}

impl AdminRole {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Viewer => "viewer",
            Self::Operator => "operator",
            Self::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "viewer" => Some(Self::Viewer),
            "operator" => Some(Self::Operator),
            "admin" => Some(Self::Admin),
            _ => None,
        }
    }
}

impl Default for AdminAuthConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            jwt_secret: None,
            jwt_algorithm: "HS256".into(),
            token_expiry: 900,
            refresh_token_expiry: 86_400,
            max_login_attempts: 5,
            lockout_duration: 900,
            users: Vec::new(),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CorsConfig {
    /// Default false.
    pub enabled: bool,
    pub allow_origins: Vec<String>,
    pub allow_methods: Vec<String>,
    pub allow_headers: Vec<String>,
    pub expose_headers: Vec<String>,
    /// Default false.
    pub allow_credentials: bool,
    /// Seconds browsers may cache a preflight answer. Default 600.
    pub max_age: u64,
}

impl Default for CorsConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            allow_origins: Vec::new(),
            allow_methods: Vec::new(),
            allow_headers: Vec::new(),
            expose_headers: Vec::new(),
            allow_credentials: false,
            max_age: 600,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdminRateLimitConfig {
    /// Default true.
    pub enabled: bool,
    /// Default 300.
    pub requests_per_minute: u32,
    /// Count per client address rather than globally. Default true.
    pub per_ip: bool,
}

impl Default for AdminRateLimitConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            requests_per_minute: 300,
            per_ip: true,
        }
    }
}
