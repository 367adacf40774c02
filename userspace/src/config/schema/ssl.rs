//! `ssl`: TLS termination, certificates and automatic provisioning.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::config::types::{ByteSize, Port};

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SslConfig {
    /// Terminate TLS on `port`. Default false.
    pub enabled: bool,
    /// Port of the TLS listener (the plain listener stays on `server.port`). Default 8443.
    pub port: Port,
    /// Obtain and renew a certificate for `acme.domains` automatically (needs `enabled`). Default false.
    pub auto_provision: bool,
    /// Certificates loaded from files, chosen by SNI. Default none.
    pub certificates: Vec<CertificateConfig>,
    pub acme: AcmeConfig,
    /// Enabled protocol versions. Default `[TLSv1.2, TLSv1.3]`.
    pub protocols: Vec<TlsProtocol>,
    /// Allowed cipher suites (IANA or OpenSSL names); empty means the library's secure defaults. Default empty.
    pub ciphers: Vec<String>,
    pub session_cache: SessionCacheConfig,
    pub ocsp_stapling: OcspStaplingConfig,
    pub security: TlsSecurityConfig,
    pub storage: CertStorageConfig,
    pub renewal: RenewalConfig,
}

impl Default for SslConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            port: Port::new_const(8443),
            auto_provision: false,
            certificates: Vec::new(),
            acme: AcmeConfig::default(),
            protocols: vec![TlsProtocol::Tls12, TlsProtocol::Tls13],
            ciphers: Vec::new(),
            session_cache: SessionCacheConfig::default(),
            ocsp_stapling: OcspStaplingConfig::default(),
            security: TlsSecurityConfig::default(),
            storage: CertStorageConfig::default(),
            renewal: RenewalConfig::default(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TlsProtocol {
    #[serde(rename = "TLSv1.2")]
    Tls12,
    #[serde(rename = "TLSv1.3")]
    Tls13,
}

/// One certificate and the names it serves. No defaults: every field but `chain_file` is required.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertificateConfig {
    /// Names served with this certificate; `*.example.com` matches one label.
    pub domains: Vec<String>,
    /// PEM certificate (leaf first, optionally followed by the chain).
    pub cert_file: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
    /// PEM intermediate chain, when not appended to `cert_file`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chain_file: Option<PathBuf>,
    /// DER OCSP response to staple, refreshed when the file changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ocsp_response_file: Option<PathBuf>,
}

/// Automatic certificates from an ACME server (Let's Encrypt or any RFC 8555 CA), used when
/// `ssl.auto_provision` is true. One SAN certificate covers every name in `domains`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AcmeConfig {
    /// ACME directory. Default Let's Encrypt production.
    pub directory_url: String,
    /// Account contact address. Default none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Names to obtain one certificate for; `*.example.com` needs `dns_hook` (wildcards are validated by
    /// dns-01 only). Default none.
    pub domains: Vec<String>,
    /// Challenge to answer for non-wildcard names: `http-01` on the plain listener (`server.port`, which the
    /// CA reaches on port 80), `tls-alpn-01` on the TLS listener (`ssl.port`, reached on 443) or `dns-01`
    /// through `dns_hook`. Default `http-01`.
    pub challenge_type: ChallengeType,
    /// Key algorithm of issued certificates. Default `ecdsa256`.
    pub key_type: KeyType,
    /// PEM CA certificate to trust for the ACME server's own HTTPS (for private or test CAs). Default: the
    /// system roots.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// Program that publishes dns-01 TXT records, run as `HOOK set <record> <value>` before validation and
    /// `HOOK clear <record> <value>` after it (record is `_acme-challenge.<domain>`); exit status 0 means
    /// done. Needed for dns-01 and for wildcard names. Default none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dns_hook: Option<PathBuf>,
    /// Seconds to wait after the hook set the records before asking the CA to look (DNS propagation).
    /// Default 10.
    pub dns_propagation_delay: u64,
    /// Seconds one issuance (order, validation, finalisation, download) may take before it counts as a
    /// failure. Default 120.
    pub order_timeout: u64,
}

impl Default for AcmeConfig {
    fn default() -> Self {
        Self {
            directory_url: "https://acme-v02.api.letsencrypt.org/directory".into(),
            email: None,
            domains: Vec::new(),
            challenge_type: ChallengeType::Http01,
            key_type: KeyType::Ecdsa256,
            ca_file: None,
            dns_hook: None,
            dns_propagation_delay: 10,
            order_timeout: 120,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChallengeType {
    #[serde(rename = "http-01")]
    Http01,
    #[serde(rename = "dns-01")]
    Dns01,
    #[serde(rename = "tls-alpn-01")]
    TlsAlpn01,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyType {
    Rsa2048,
    Rsa4096,
    Ecdsa256,
    Ecdsa384,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SessionCacheConfig {
    /// Resume TLS sessions (tickets and a server-side cache). Default true.
    pub enabled: bool,
    /// Memory for the server-side session cache. Default 10MB.
    pub size: ByteSize,
    /// Seconds a session stays resumable. Default 300.
    pub timeout: u64,
}

impl Default for SessionCacheConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            size: ByteSize::mib(10),
            timeout: 300,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OcspStaplingConfig {
    /// Fetch OCSP responses from the responder each certificate names (its AIA extension), staple them, and
    /// refresh them half-way to their `nextUpdate`; a response past its `nextUpdate` is no longer stapled.
    /// Responses from `ocsp_response_file` are stapled either way. Default false.
    pub enabled: bool,
    /// Memory for cached responses; responses beyond it are not stapled. Default 1MB.
    pub cache_size: ByteSize,
    /// Seconds allowed for a responder query. Default 10.
    pub timeout: u64,
}

impl Default for OcspStaplingConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            cache_size: ByteSize::mib(1),
            timeout: 10,
        }
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsSecurityConfig {
    /// `Strict-Transport-Security` max-age in seconds on TLS responses; 0 sends no header. Default 0.
    pub hsts_max_age: u64,
    /// Add `includeSubDomains` to the HSTS header. Default false.
    pub hsts_include_subdomains: bool,
    /// Add `preload` to the HSTS header. Default false.
    pub hsts_preload: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CertStorageConfig {
    /// Directory for issued certificates, keys and the ACME account (keys and account written with mode
    /// 0600, directories 0700). Default `/var/lib/rampart/certs`.
    pub path: PathBuf,
    /// Copy the previous certificate and key aside before a new one replaces them. Default true.
    pub backup_enabled: bool,
    /// Where backups go; default `<path>/backup`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backup_path: Option<PathBuf>,
}

impl Default for CertStorageConfig {
    fn default() -> Self {
        Self {
            path: "/var/lib/rampart/certs".into(),
            backup_enabled: true,
            backup_path: None,
        }
    }
}

/// When automatic certificates are renewed, and what happens after.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RenewalConfig {
    /// Renew this many days before expiry, but never before half of the certificate's lifetime has passed
    /// (so short-lived certificates are not renewed in a loop). Default 30.
    pub days_before_expiry: u32,
    /// Seconds between expiry checks. Default 86400.
    pub check_interval: u64,
    /// Seconds before the first retry after a failed renewal; each further failure doubles it (with
    /// jitter) up to `retry_max`. Default 60.
    pub retry_initial: u64,
    /// Longest wait between retries, in seconds. Default 3600.
    pub retry_max: u64,
    /// Program run after a certificate is installed, with `RAMPART_CERT_DOMAINS`, `RAMPART_CERT_FILE` and
    /// `RAMPART_KEY_FILE` in its environment. Its failure is logged, never fatal. Default none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub post_renewal_script: Option<PathBuf>,
    /// Seconds `post_renewal_script` may run before it is killed. Default 60.
    pub post_renewal_timeout: u64,
}

impl Default for RenewalConfig {
    fn default() -> Self {
        Self {
            days_before_expiry: 30,
            check_interval: 86_400,
            retry_initial: 60,
            retry_max: 3600,
            post_renewal_script: None,
            post_renewal_timeout: 60,
        }
    }
}
