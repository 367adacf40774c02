//! The answers to ACME challenges while an order is open: http-01 key authorizations by token (answered by
//! the proxy pipeline's first phase), tls-alpn-01 certificates by domain (answered by the TLS listener's
//! certificate resolver for ALPN `acme-tls/1`), and the dns-01 hook that publishes TXT records.
//!
//! Holds answers only while `tls::acme` has them set; it never talks to the ACME server and never serves
//! anything for a token or name it was not given.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::sign::CertifiedKey;

/// The ALPN protocol of tls-alpn-01 validation (RFC 8737).
pub const ACME_TLS_ALPN: &[u8] = b"acme-tls/1";

/// The path prefix of http-01 validation requests (RFC 8555 section 8.3).
pub const HTTP01_PREFIX: &str = "/.well-known/acme-challenge/";

/// How long a DNS hook may take for one record.
const DNS_HOOK_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum ChallengeError {
    #[error("tls-alpn-01 certificate for {domain}: {message}")]
    AlpnCert { domain: String, message: String },
    #[error("dns hook {hook} {action} {record}: {message}")]
    DnsHook {
        hook: String,
        action: &'static str,
        record: String,
        message: String,
    },
}

#[derive(Default)]
pub struct Challenges {
    http01: RwLock<HashMap<String, String>>,
    alpn: RwLock<HashMap<String, Arc<CertifiedKey>>>,
}

impl Challenges {
    /// The key authorization for an http-01 request path, if it is one we are waiting to have checked.
    pub fn http01_answer(&self, path: &str) -> Option<String> {
        let token = path.strip_prefix(HTTP01_PREFIX)?;
        read(&self.http01).get(token).cloned()
    }

    pub fn set_http01(&self, token: &str, key_authorization: &str) {
        write(&self.http01).insert(token.to_owned(), key_authorization.to_owned());
    }

    pub fn clear_http01(&self, token: &str) {
        write(&self.http01).remove(token);
    }

    /// Makes and holds the tls-alpn-01 certificate for `domain`: self-signed, naming only `domain`, with the
    /// critical acmeIdentifier extension carrying the SHA-256 of the key authorization.
    pub fn set_tls_alpn01(
        &self,
        domain: &str,
        key_authorization_digest: &[u8],
        provider: &rustls::crypto::CryptoProvider,
    ) -> Result<(), ChallengeError> {
        let err = |message: String| ChallengeError::AlpnCert {
            domain: domain.to_owned(),
            message,
        };
        let mut params = rcgen::CertificateParams::new(vec![domain.to_owned()]).map_err(|e| err(e.to_string()))?;
        params.custom_extensions = vec![rcgen::CustomExtension::new_acme_identifier(key_authorization_digest)];
        let key = rcgen::KeyPair::generate().map_err(|e| err(e.to_string()))?;
        let cert = params.self_signed(&key).map_err(|e| err(e.to_string()))?;
        let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        // Not `CertifiedKey::from_der`: its key check parses the certificate with webpki, which refuses the
        // critical acmeIdentifier extension; the pair is consistent by construction here.
        let signing_key = provider
            .key_provider
            .load_private_key(key_der)
            .map_err(|e| err(e.to_string()))?;
        let certified = CertifiedKey::new(vec![cert.der().clone()], signing_key);
        write(&self.alpn).insert(domain.to_ascii_lowercase(), Arc::new(certified));
        Ok(())
    }

    pub fn clear_tls_alpn01(&self, domain: &str) {
        write(&self.alpn).remove(&domain.to_ascii_lowercase());
    }

    /// The validation certificate for a handshake that offered `acme-tls/1` for `name`.
    pub fn tls_alpn01_cert(&self, name: &str) -> Option<Arc<CertifiedKey>> {
        read(&self.alpn).get(&name.to_ascii_lowercase()).cloned()
    }
}

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    // A panic while holding the lock cannot leave a map half-updated: inserts and removes are single calls.
    l.read().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Runs `hook set|clear <record> <value>` and waits for it (bounded by a timeout).
pub async fn dns_hook(hook: &Path, action: &'static str, record: &str, value: &str) -> Result<(), ChallengeError> {
    let err = |message: String| ChallengeError::DnsHook {
        hook: hook.display().to_string(),
        action,
        record: record.to_owned(),
        message,
    };
    let child = tokio::process::Command::new(hook)
        .args([action, record, value])
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(DNS_HOOK_TIMEOUT, child)
        .await
        .map_err(|_| err(format!("did not finish within {}s", DNS_HOOK_TIMEOUT.as_secs())))?
        .map_err(|e| err(format!("cannot run: {e}")))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(err(format!("exited with {}: {}", out.status, stderr.trim())));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_known_tokens_under_the_challenge_path_are_answered() {
        let c = Challenges::default();
        c.set_http01("tok123", "tok123.thumb");
        assert_eq!(
            c.http01_answer("/.well-known/acme-challenge/tok123").as_deref(),
            Some("tok123.thumb")
        );
        assert_eq!(c.http01_answer("/.well-known/acme-challenge/other"), None);
        assert_eq!(c.http01_answer("/tok123"), None);
        c.clear_http01("tok123");
        assert_eq!(c.http01_answer("/.well-known/acme-challenge/tok123"), None);
    }

    #[test]
    fn a_tls_alpn_certificate_is_held_per_domain_until_cleared() {
        let c = Challenges::default();
        let provider = rustls::crypto::aws_lc_rs::default_provider();
        c.set_tls_alpn01("A.test", &[7u8; 32], &provider).expect("cert");
        let cert = c.tls_alpn01_cert("a.test").expect("held");
        let info = super::super::certinfo::CertInfo::parse(&cert.cert[0], "alpn").expect("parses");
        assert_eq!(info.names, ["a.test"]);
        assert!(c.tls_alpn01_cert("b.test").is_none());
        c.clear_tls_alpn01("a.test");
        assert!(c.tls_alpn01_cert("a.test").is_none());
    }
}
