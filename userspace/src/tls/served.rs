//! A certificate as the TLS listener serves it: the rustls `CertifiedKey`, the facts the lifecycle needs
//! (`CertInfo` of the leaf and of its issuer), where it came from, and the OCSP response currently stapled
//! to it, which can be replaced or dropped while the certificate is in use.
//!
//! A `ServedCert` never does I/O: files are read by `net::tls` or `tls::store`, OCSP responses fetched by
//! `tls::ocsp`; this only holds what they produced and answers "what does this handshake get".

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use arc_swap::ArcSwapOption;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;

use super::certinfo::{CertInfo, CertParseError, unix_seconds};
use crate::net::tls::SniMap;

/// Where a served certificate came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CertSource {
    /// `ssl.certificates`.
    File,
    /// Issued by the ACME server and kept under `ssl.storage.path`.
    Acme,
    /// Self-signed stand-in while no certificate exists at all; never stored.
    Fallback,
}

impl CertSource {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::File => "file",
            Self::Acme => "acme",
            Self::Fallback => "self-signed-fallback",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ServedError {
    #[error("{what}: the chain holds no certificate")]
    Empty { what: String },
    #[error("{what}: the private key does not match the certificate: {message}")]
    KeyMismatch { what: String, message: String },
    #[error(transparent)]
    Parse(#[from] CertParseError),
}

/// An OCSP response stapled to a certificate.
#[derive(Debug)]
pub struct Staple {
    /// Unix seconds.
    pub this_update: i64,
    /// Unix seconds; `None` when the response gives none (a file that could not be read as OCSP).
    pub next_update: Option<i64>,
    pub from_file: bool,
    pub len: usize,
    /// The certificate with this response attached, ready for handshakes.
    certified: Arc<CertifiedKey>,
}

impl Staple {
    /// A response is served until its `nextUpdate`; after that clients would reject it.
    pub fn is_fresh(&self, now: i64) -> bool {
        self.next_update.is_none_or(|next| now < next)
    }
}

/// When the OCSP refresher next looks at this certificate, and how often it failed in a row.
#[derive(Debug, Default)]
pub struct OcspSchedule {
    pub next_fetch: Option<i64>,
    pub failures: u32,
    pub last_error: Option<String>,
}

pub struct ServedCert {
    /// Without an OCSP response.
    key: Arc<CertifiedKey>,
    pub info: CertInfo,
    /// The certificate after the leaf in the chain, when the chain has one.
    pub issuer: Option<CertInfo>,
    pub source: CertSource,
    /// The file the certificate was read from, when it came from one.
    pub path: Option<PathBuf>,
    staple: ArcSwapOption<Staple>,
    /// Owned by `tls::ocsp`.
    pub ocsp: Mutex<OcspSchedule>,
}

impl std::fmt::Debug for ServedCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServedCert")
            .field("names", &self.info.names)
            .field("serial", &self.info.serial_hex)
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

impl ServedCert {
    /// `what` names the certificate in errors (a file path or a domain).
    pub fn new(
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
        provider: &CryptoProvider,
        source: CertSource,
        path: Option<PathBuf>,
        what: &str,
    ) -> Result<Self, ServedError> {
        let Some(leaf) = chain.first() else {
            return Err(ServedError::Empty { what: what.to_owned() });
        };
        let info = CertInfo::parse(leaf, what)?;
        let issuer = match chain.get(1) {
            Some(c) => Some(CertInfo::parse(c, &format!("{what} (issuer)"))?),
            None => None,
        };
        let key = CertifiedKey::from_der(chain, key, provider).map_err(|e| ServedError::KeyMismatch {
            what: what.to_owned(),
            message: e.to_string(),
        })?;
        Ok(Self {
            key: Arc::new(key),
            info,
            issuer,
            source,
            path,
            staple: ArcSwapOption::empty(),
            ocsp: Mutex::new(OcspSchedule::default()),
        })
    }

    pub fn with_path(self, path: Option<PathBuf>) -> Self {
        Self { path, ..self }
    }

    /// What a handshake gets now: the certificate with its OCSP response while that is fresh.
    pub fn for_handshake(&self) -> Arc<CertifiedKey> {
        let staple = self.staple.load();
        match staple.as_ref() {
            Some(s) if s.is_fresh(unix_seconds(SystemTime::now())) => Arc::clone(&s.certified),
            _ => Arc::clone(&self.key),
        }
    }

    pub fn leaf_der(&self) -> &[u8] {
        self.key.cert.first().map_or(&[], |c| c.as_ref())
    }

    pub fn staple(&self) -> Option<Arc<Staple>> {
        self.staple.load_full()
    }

    /// Staples `der` from now on.
    pub fn set_staple(&self, der: Vec<u8>, this_update: i64, next_update: Option<i64>, from_file: bool) {
        let mut certified = (*self.key).clone();
        let len = der.len();
        certified.ocsp = Some(der);
        self.staple.store(Some(Arc::new(Staple {
            this_update,
            next_update,
            from_file,
            len,
            certified: Arc::new(certified),
        })));
    }

    /// Takes over the staple of an earlier copy of the same certificate (a configuration reload rebuilds
    /// the served set; a response fetched for the old copy is just as valid for the new one).
    pub fn inherit_staple(&self, from: &ServedCert) {
        if self.leaf_der() == from.leaf_der()
            && self.staple.load().is_none()
            && let Some(s) = from.staple.load_full()
        {
            self.staple.store(Some(s));
        }
    }

    pub fn clear_staple(&self) {
        self.staple.store(None);
    }
}

/// Served certificates chosen by SNI: exact names, then one-label wildcards, then the first as default.
pub struct CertSet {
    sni: SniMap<Arc<ServedCert>>,
    pub all: Vec<Arc<ServedCert>>,
}

impl CertSet {
    pub fn new(certs: Vec<(Vec<String>, Arc<ServedCert>)>) -> Self {
        let mut sni = SniMap::new();
        let mut all = Vec::new();
        for (names, cert) in certs {
            for n in &names {
                sni.insert(n, Arc::clone(&cert));
            }
            all.push(cert);
        }
        Self { sni, all }
    }

    pub fn empty() -> Self {
        Self::new(Vec::new())
    }

    /// The certificate for `name` (exact, then wildcard); no default.
    pub fn find(&self, name: &str) -> Option<Arc<ServedCert>> {
        self.sni.find(name)
    }

    pub fn default_cert(&self) -> Option<Arc<ServedCert>> {
        self.sni.default_value()
    }

    /// The copy of the certificate with this leaf, if the set holds one.
    pub fn with_leaf(&self, leaf: &[u8]) -> Option<&Arc<ServedCert>> {
        self.all.iter().find(|c| c.leaf_der() == leaf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn served() -> ServedCert {
        let (chain, key) = crate::tls::keys::self_signed_fallback(&["a.test".into()]).expect("cert");
        ServedCert::new(chain, key, &crate::tls::provider(), CertSource::Acme, None, "test").expect("served")
    }

    #[test]
    fn a_staple_is_served_until_its_next_update_and_dropped_after() {
        let cert = served();
        let now = unix_seconds(SystemTime::now());
        assert!(cert.for_handshake().ocsp.is_none());
        cert.set_staple(vec![1, 2, 3], now - 10, Some(now + 60), false);
        assert_eq!(cert.for_handshake().ocsp.as_deref(), Some(&[1u8, 2, 3][..]));
        cert.set_staple(vec![4], now - 120, Some(now - 1), false);
        assert!(cert.for_handshake().ocsp.is_none(), "a stale response is never stapled");
        let s = cert.staple().expect("kept until the refresher clears it");
        assert!(!s.is_fresh(now) && s.is_fresh(now - 2));
        cert.set_staple(vec![5], 0, None, true);
        assert_eq!(
            cert.for_handshake().ocsp.as_deref(),
            Some(&[5u8][..]),
            "no nextUpdate: always fresh"
        );
    }

    #[test]
    fn a_reloaded_copy_of_the_same_certificate_keeps_its_fetched_staple() {
        let (chain, key) = crate::tls::keys::self_signed_fallback(&["a.test".into()]).expect("cert");
        let a = ServedCert::new(
            chain.clone(),
            key.clone_key(),
            &crate::tls::provider(),
            CertSource::File,
            None,
            "a",
        )
        .expect("a");
        let b = ServedCert::new(chain, key, &crate::tls::provider(), CertSource::File, None, "b").expect("b");
        a.set_staple(vec![9], 0, None, false);
        b.inherit_staple(&a);
        assert_eq!(b.for_handshake().ocsp.as_deref(), Some(&[9u8][..]));
        let other = served();
        other.inherit_staple(&a);
        assert!(other.staple().is_none(), "only the same certificate inherits");
    }
}
