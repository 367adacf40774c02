//! Certificate keys of the configured type (`ssl.acme.key_type`), the CSR an ACME order is finalised with,
//! and the self-signed fallback certificate served while no real certificate exists.
//!
//! Keys leave this module as PEM for `tls::store` and as DER for rustls; nothing here writes or logs them.

use rcgen::{CertificateParams, DistinguishedName, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::config::schema::KeyType;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("generating a {key_type:?} key: {message}")]
    Generate { key_type: KeyType, message: String },
    #[error("certificate request for {domains:?}: {message}")]
    Csr { domains: Vec<String>, message: String },
    #[error("self-signed fallback for {domains:?}: {message}")]
    Fallback { domains: Vec<String>, message: String },
}

/// A new key pair of `key_type`.
pub fn generate(key_type: KeyType) -> Result<KeyPair, KeyError> {
    let made = match key_type {
        KeyType::Ecdsa256 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256),
        KeyType::Ecdsa384 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384),
        KeyType::Rsa2048 => KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048),
        KeyType::Rsa4096 => KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_4096),
    };
    made.map_err(|e| KeyError::Generate {
        key_type,
        message: e.to_string(),
    })
}

/// A DER CSR naming `domains` as subjectAltNames (the subject stays empty, as ACME CAs ignore it).
pub fn csr(domains: &[String], key: &KeyPair) -> Result<Vec<u8>, KeyError> {
    let err = |e: rcgen::Error| KeyError::Csr {
        domains: domains.to_vec(),
        message: e.to_string(),
    };
    let mut params = CertificateParams::new(domains.to_vec()).map_err(err)?;
    params.distinguished_name = DistinguishedName::new();
    Ok(params.serialize_request(key).map_err(err)?.der().to_vec())
}

/// A self-signed certificate for `domains`, valid for a week; only for when nothing else can be served.
pub fn self_signed_fallback(
    domains: &[String],
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), KeyError> {
    let err = |e: rcgen::Error| KeyError::Fallback {
        domains: domains.to_vec(),
        message: e.to_string(),
    };
    let mut params = CertificateParams::new(domains.to_vec()).map_err(err)?;
    let mut dn = DistinguishedName::new();
    dn.push(
        rcgen::DnType::CommonName,
        "Rampart self-signed fallback (not a real certificate)",
    );
    params.distinguished_name = dn;
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::minutes(5);
    params.not_after = now + time::Duration::days(7);
    let key = KeyPair::generate().map_err(err)?;
    let cert = params.self_signed(&key).map_err(err)?;
    let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    Ok((vec![cert.der().clone()], key_der))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_configured_key_type_makes_a_key_that_signs_a_csr() {
        // RSA 4096 takes seconds to generate in a debug build; the three others show the mapping.
        for kt in [KeyType::Ecdsa256, KeyType::Ecdsa384, KeyType::Rsa2048] {
            let key = generate(kt).expect("key");
            let der = csr(&["a.test".into(), "b.test".into()], &key).expect("csr");
            assert!(der.len() > 100, "{kt:?}");
            let pem = key.serialize_pem();
            assert!(KeyPair::from_pem(&pem).is_ok(), "{kt:?} key reads back from PEM");
        }
    }

    #[test]
    fn the_fallback_names_the_domains_and_says_what_it_is() {
        let (chain, _) = self_signed_fallback(&["a.test".into()]).expect("fallback");
        let info = super::super::certinfo::CertInfo::parse(&chain[0], "fallback").expect("parses");
        assert_eq!(info.names, ["a.test"]);
        assert!(info.issuer_name.contains("fallback"), "{}", info.issuer_name);
        assert!(info.not_after - info.not_before <= 7 * 86_400 + 300);
    }
}
