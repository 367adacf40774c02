//! TLS termination with rustls: certificates chosen by SNI (exact names, then one-label wildcards, then the
//! first configured certificate as the default), protocol versions and cipher suites from `ssl`, ALPN `h2` and
//! `http/1.1`, session resumption (tickets and a server-side cache sized from `ssl.session_cache.size`), and OCSP
//! responses stapled from `ocsp_response_file` (or fetched by `tls::ocsp`), and the tls-alpn-01 validation
//! certificate for handshakes offering only ALPN `acme-tls/1`.
//!
//! A `TlsSetup` is built from one configuration and is immutable: reloading certificates builds a new one and
//! swaps it in, so handshakes in progress finish with the old certificates and connections are never dropped.
//! Certificates from ACME live in the shared `tls::CertHub` instead, which the resolver consults at every
//! handshake, so a renewal needs no rebuild at all.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use http::HeaderValue;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert, ServerSessionMemoryCache};
use rustls::sign::CertifiedKey;
use rustls::{ServerConfig, SupportedCipherSuite};

use crate::config::schema::{SslConfig, TlsProtocol};
use crate::tls::challenge::ACME_TLS_ALPN;
use crate::tls::{CertHub, CertSet, CertSource, ServedCert};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("ssl.certificates[{index}]: cannot read {}: {message}", path.display())]
    Read {
        index: usize,
        path: PathBuf,
        message: String,
    },
    #[error("ssl.certificates[{index}]: {message}")]
    Certificate { index: usize, message: String },
    #[error(
        "ssl.ciphers: unknown cipher suite `{0}` (use IANA names like TLS13_AES_128_GCM_SHA256 or OpenSSL names like ECDHE-RSA-AES128-GCM-SHA256)"
    )]
    UnknownCipher(String),
    #[error("ssl: {0}")]
    Config(String),
}

/// Bytes a server-side session cache entry takes, for sizing the cache from `ssl.session_cache.size`.
const SESSION_ENTRY_BYTES: u64 = 512;

/// Everything the TLS listener needs from one configuration.
pub struct TlsSetup {
    pub config: Arc<ServerConfig>,
    /// The certificates from `ssl.certificates`.
    pub certs: Arc<CertSet>,
    /// `Strict-Transport-Security` for responses on TLS connections, when configured.
    pub hsts: Option<HeaderValue>,
    /// Files the setup was built from, watched for changes.
    pub files: Vec<PathBuf>,
}

/// Names → values by SNI rules: exact name, then a wildcard covering exactly one label, then the default.
#[derive(Debug)]
pub(crate) struct SniMap<T> {
    exact: HashMap<String, T>,
    /// `(".example.com", value)` for `*.example.com`.
    wildcard: Vec<(String, T)>,
    default: Option<T>,
}

impl<T: Clone> SniMap<T> {
    pub(crate) fn new() -> Self {
        Self {
            exact: HashMap::new(),
            wildcard: Vec::new(),
            default: None,
        }
    }

    pub(crate) fn insert(&mut self, domain: &str, value: T) {
        let d = domain.trim().to_ascii_lowercase();
        match d.strip_prefix('*') {
            Some(suffix) if suffix.starts_with('.') => self.wildcard.push((suffix.to_owned(), value.clone())),
            _ => {
                self.exact.insert(d, value.clone());
            }
        }
        self.default.get_or_insert(value);
    }

    #[cfg(test)]
    fn pick(&self, name: Option<&str>) -> Option<T> {
        name.and_then(|n| self.find(n)).or_else(|| self.default.clone())
    }

    /// The value for `name` by exact match, then a one-label wildcard; no default.
    pub(crate) fn find(&self, name: &str) -> Option<T> {
        let name = name.to_ascii_lowercase();
        if let Some(v) = self.exact.get(&name) {
            return Some(v.clone());
        }
        if let Some((_, rest)) = name.split_once('.') {
            let suffix = format!(".{rest}");
            if let Some((_, v)) = self.wildcard.iter().find(|(s, _)| *s == suffix) {
                return Some(v.clone());
            }
        }
        None
    }

    /// The first value inserted: what a handshake without a matching name gets.
    pub(crate) fn default_value(&self) -> Option<T> {
        self.default.clone()
    }
}

/// Chooses the certificate for a handshake by SNI: a configured file certificate for the name, else a
/// managed (ACME) one, else the first file certificate, else the first managed one. A handshake offering ALPN
/// `acme-tls/1` is a tls-alpn-01 validation and gets the challenge certificate for its name or nothing.
struct SniResolver {
    files: Arc<CertSet>,
    hub: Arc<CertHub>,
}

impl std::fmt::Debug for SniResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SniResolver").finish_non_exhaustive()
    }
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let name = hello.server_name();
        if self.hub.alpn_challenges
            && hello
                .alpn()
                .is_some_and(|mut offered| offered.any(|p| p == ACME_TLS_ALPN))
        {
            return name.and_then(|n| self.hub.challenges.tls_alpn01_cert(n));
        }
        let managed = self.hub.managed();
        let cert = name
            .and_then(|n| self.files.find(n).or_else(|| managed.find(n)))
            .or_else(|| self.files.default_cert())
            .or_else(|| managed.default_cert())?;
        Some(cert.for_handshake())
    }
}

fn provider(ssl: &SslConfig) -> Result<Arc<CryptoProvider>, TlsError> {
    let mut provider = rustls::crypto::aws_lc_rs::default_provider();
    if !ssl.ciphers.is_empty() {
        let mut chosen: Vec<SupportedCipherSuite> = Vec::new();
        for name in &ssl.ciphers {
            let wanted = iana_name(name);
            let suite = provider
                .cipher_suites
                .iter()
                .find(|s| s.suite().as_str().is_some_and(|n| n.eq_ignore_ascii_case(&wanted)))
                .ok_or_else(|| TlsError::UnknownCipher(name.clone()))?;
            chosen.push(*suite);
        }
        // TLS 1.3 suites are kept unless named: ciphers lists in configs written for nginx name only TLS 1.2 ones.
        if !chosen.iter().any(|s| s.version() == &rustls::version::TLS13) {
            chosen.extend(
                provider
                    .cipher_suites
                    .iter()
                    .filter(|s| s.version() == &rustls::version::TLS13)
                    .copied(),
            );
        }
        provider.cipher_suites = chosen;
    }
    Ok(Arc::new(provider))
}

/// OpenSSL cipher names as IANA names; IANA names pass through.
fn iana_name(name: &str) -> String {
    let n = name.trim();
    let mapped = match n.to_ascii_uppercase().as_str() {
        "ECDHE-ECDSA-AES128-GCM-SHA256" => "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384" => "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305" => "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
        "ECDHE-RSA-AES128-GCM-SHA256" => "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        "ECDHE-RSA-AES256-GCM-SHA384" => "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
        "ECDHE-RSA-CHACHA20-POLY1305" => "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
        _ => return n.to_owned(),
    };
    mapped.to_owned()
}

fn read(index: usize, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|e| TlsError::Read {
        index,
        path: path.to_owned(),
        message: e.to_string(),
    })
}

/// Builds the TLS setup of one configuration generation. `previous` is the running generation's, whose
/// fetched OCSP responses carry over to unchanged certificates.
pub fn build(ssl: &SslConfig, hub: &Arc<CertHub>, previous: Option<&TlsSetup>) -> Result<TlsSetup, TlsError> {
    let provider = provider(ssl)?;
    let mut certs = Vec::new();
    let mut files = Vec::new();
    for (index, cert) in ssl.certificates.iter().enumerate() {
        let cert_err = |message: String| TlsError::Certificate { index, message };
        let mut chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&read(index, &cert.cert_file)?)
            .collect::<Result<_, _>>()
            .map_err(|e| cert_err(format!("{}: {e}", cert.cert_file.display())))?;
        files.push(cert.cert_file.clone());
        if let Some(chain_file) = &cert.chain_file {
            let extra: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&read(index, chain_file)?)
                .collect::<Result<_, _>>()
                .map_err(|e| cert_err(format!("{}: {e}", chain_file.display())))?;
            chain.extend(extra);
            files.push(chain_file.clone());
        }
        if chain.is_empty() {
            return Err(cert_err(format!("{} holds no certificate", cert.cert_file.display())));
        }
        let key = PrivateKeyDer::from_pem_slice(&read(index, &cert.key_file)?)
            .map_err(|e| cert_err(format!("{}: {e}", cert.key_file.display())))?;
        files.push(cert.key_file.clone());
        let what = cert.cert_file.display().to_string();
        let served = ServedCert::new(
            chain,
            key,
            &provider,
            CertSource::File,
            Some(cert.cert_file.clone()),
            &what,
        )
        .map_err(|e| cert_err(e.to_string()))?;
        if let Some(ocsp) = &cert.ocsp_response_file {
            let der = read(index, ocsp)?;
            match crate::tls::ocsp::response_times(&der) {
                Ok((this_update, next_update)) => served.set_staple(der, this_update, next_update, true),
                Err(e) => {
                    tracing::warn!(file = %ocsp.display(), error = %e, "OCSP response file is not readable as OCSP; stapling it as it is");
                    served.set_staple(der, 0, None, true);
                }
            }
            files.push(ocsp.clone());
        }
        if let Some(old) = previous.and_then(|p| p.certs.with_leaf(served.leaf_der())) {
            served.inherit_staple(old);
        }
        let names = if cert.domains.is_empty() {
            served.info.names.clone()
        } else {
            cert.domains.clone()
        };
        certs.push((names, Arc::new(served)));
    }
    if certs.is_empty() && !ssl.auto_provision {
        return Err(TlsError::Config("no certificate configured".into()));
    }
    let certs = Arc::new(CertSet::new(certs));
    let versions: Vec<&'static rustls::SupportedProtocolVersion> = ssl
        .protocols
        .iter()
        .map(|p| match p {
            TlsProtocol::Tls12 => &rustls::version::TLS12,
            TlsProtocol::Tls13 => &rustls::version::TLS13,
        })
        .collect();
    let mut config = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&versions)
        .map_err(|e| TlsError::Config(format!("protocols {:?} with the chosen ciphers: {e}", ssl.protocols)))?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(SniResolver {
            files: Arc::clone(&certs),
            hub: Arc::clone(hub),
        }));
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    if hub.alpn_challenges {
        // Last: rustls picks the first of its own protocols the client offers, so only a client offering
        // nothing else (the ACME validator) negotiates it.
        config.alpn_protocols.push(ACME_TLS_ALPN.to_vec());
    }
    if ssl.session_cache.enabled {
        let entries = usize::try_from(ssl.session_cache.size.get() / SESSION_ENTRY_BYTES)
            .unwrap_or(usize::MAX)
            .max(256);
        config.session_storage = ServerSessionMemoryCache::new(entries);
        config.ticketer = rustls::crypto::aws_lc_rs::Ticketer::new()
            .map_err(|e| TlsError::Config(format!("session tickets: {e}")))?;
    } else {
        config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
        config.send_tls13_tickets = 0;
    }
    let sec = &ssl.security;
    let hsts = (sec.hsts_max_age > 0).then(|| {
        let mut v = format!("max-age={}", sec.hsts_max_age);
        if sec.hsts_include_subdomains {
            v.push_str("; includeSubDomains");
        }
        if sec.hsts_preload {
            v.push_str("; preload");
        }
        HeaderValue::from_str(&v).unwrap_or_else(|_| HeaderValue::from_static("max-age=0"))
    });
    Ok(TlsSetup {
        config: Arc::new(config),
        certs,
        hsts,
        files,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sni_picks_exact_then_one_label_wildcard_then_the_first_certificate() {
        let mut m = SniMap::new();
        m.insert("other.net", 0u8);
        m.insert("api.example.com", 1);
        m.insert("*.example.com", 2);
        assert_eq!(m.pick(Some("API.example.com")), Some(1));
        assert_eq!(m.pick(Some("www.example.com")), Some(2));
        assert_eq!(
            m.pick(Some("a.b.example.com")),
            Some(0),
            "a wildcard covers one label only"
        );
        assert_eq!(m.pick(Some("unknown.org")), Some(0));
        assert_eq!(m.pick(None), Some(0));
    }

    #[test]
    fn openssl_cipher_names_map_to_iana() {
        assert_eq!(
            iana_name("ECDHE-RSA-AES128-GCM-SHA256"),
            "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"
        );
        assert_eq!(iana_name("TLS13_AES_128_GCM_SHA256"), "TLS13_AES_128_GCM_SHA256");
    }
}
