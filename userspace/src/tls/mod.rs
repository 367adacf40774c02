//! The certificate lifecycle: certificates obtained from an ACME server and renewed before they expire,
//! OCSP responses fetched and refreshed, and the state the TLS listener reads at every handshake.
//!
//! - `certinfo` reads what the lifecycle needs from a certificate (names, validity, serial, OCSP URL).
//! - `served` is a certificate as served (`ServedCert`, with a replaceable OCSP staple) and `CertSet`, a
//!   set of them chosen by SNI.
//! - `challenge` holds the answers to open ACME challenges (http-01, tls-alpn-01, the dns-01 hook).
//! - `store` keeps the ACME account and issued certificates on disk (secrets 0600), with backups.
//! - `keys` makes certificate keys of the configured type, CSRs and the self-signed fallback.
//! - `acme` talks to the ACME server: account, order, challenges, finalisation, download.
//! - `renew` decides when to renew (and when to retry after a failure), installs new certificates and runs
//!   the post-renewal script; `ocsp` fetches, checks and refreshes stapled responses; `der` is the little
//!   DER OCSP needs; `expiry` is the `rampart_ssl_certificate_expiry_seconds` metric.
//!
//! `CertHub` is shared by every configuration generation: certificates installed here are seen by the next
//! handshake without rebuilding the TLS configuration, and connections already open are never touched.
//! Nothing here accepts connections or parses configuration files.

pub mod acme;
pub mod certinfo;
pub mod challenge;
pub mod der;
pub mod expiry;
pub mod keys;
pub mod ocsp;
pub mod renew;
pub mod served;
pub mod store;

use std::sync::{Arc, OnceLock};

use arc_swap::ArcSwap;
use rustls::crypto::CryptoProvider;

pub use challenge::Challenges;
pub use served::{CertSet, CertSource, ServedCert};

/// The crypto provider used to load signing keys (aws-lc-rs, as the TLS listener uses).
pub fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    Arc::clone(PROVIDER.get_or_init(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider())))
}

/// Certificate state shared across configuration generations.
pub struct CertHub {
    /// Certificates from the ACME server (or the fallback standing in for them).
    managed: ArcSwap<CertSet>,
    pub challenges: Challenges,
    /// Whether the TLS listener should offer `acme-tls/1` (tls-alpn-01 validation).
    pub alpn_challenges: bool,
}

impl CertHub {
    pub fn new(alpn_challenges: bool) -> Self {
        Self {
            managed: ArcSwap::from_pointee(CertSet::empty()),
            challenges: Challenges::default(),
            alpn_challenges,
        }
    }

    pub fn managed(&self) -> Arc<CertSet> {
        self.managed.load_full()
    }

    /// Replaces the managed certificates; the next handshake sees them.
    pub fn install(&self, certs: Vec<Arc<ServedCert>>) {
        let set = certs.into_iter().map(|c| (c.info.names.clone(), c)).collect();
        self.managed.store(Arc::new(CertSet::new(set)));
    }
}
