//! What the certificate lifecycle needs to know about a served certificate, read once from its DER: names,
//! validity, serial, the OCSP responder it names (AIA), and the issuer facts an OCSP request is built from.
//!
//! Parsing only: nothing here decides whether a certificate is trusted (rustls and the clients do that).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::{FromDer, X509Certificate};

/// `id-ad-ocsp`, the access method of an OCSP responder in the AIA extension.
const OID_AD_OCSP: &str = "1.3.6.1.5.5.7.48.1";

#[derive(Debug, thiserror::Error)]
#[error("{what}: not a parseable X.509 certificate: {message}")]
pub struct CertParseError {
    pub what: String,
    pub message: String,
}

/// Facts about one certificate.
#[derive(Clone, Debug)]
pub struct CertInfo {
    /// DNS names in the subjectAltName extension (the CN when there is none).
    pub names: Vec<String>,
    /// Unix seconds.
    pub not_before: i64,
    pub not_after: i64,
    /// Upper-case hex, as `openssl x509 -serial` prints it.
    pub serial_hex: String,
    /// The serial's content octets (for OCSP).
    pub serial: Vec<u8>,
    /// The first `http://` OCSP responder named in the AIA extension.
    pub ocsp_url: Option<String>,
    /// DER of the subject name (an issuer's name is hashed into OCSP requests).
    pub subject_der: Vec<u8>,
    pub issuer_name: String,
    /// DER of the SubjectPublicKeyInfo.
    pub spki_der: Vec<u8>,
    /// Whether the extended key usage allows signing OCSP responses (delegated responders).
    pub ocsp_signing: bool,
}

impl CertInfo {
    /// Parses `der`; `what` names the certificate in the error (a file, a domain).
    pub fn parse(der: &[u8], what: &str) -> Result<Self, CertParseError> {
        let err = |message: String| CertParseError {
            what: what.to_owned(),
            message,
        };
        let (_, cert) = X509Certificate::from_der(der).map_err(|e| err(e.to_string()))?;
        let mut names = Vec::new();
        if let Ok(Some(san)) = cert.subject_alternative_name() {
            for n in &san.value.general_names {
                if let GeneralName::DNSName(d) = n {
                    names.push(d.to_ascii_lowercase());
                }
            }
        }
        if names.is_empty()
            && let Some(cn) = cert.subject().iter_common_name().next().and_then(|c| c.as_str().ok())
        {
            names.push(cn.to_ascii_lowercase());
        }
        let mut ocsp_url = None;
        for ext in cert.extensions() {
            if let ParsedExtension::AuthorityInfoAccess(aia) = ext.parsed_extension() {
                ocsp_url = aia
                    .accessdescs
                    .iter()
                    .filter(|d| d.access_method.to_id_string() == OID_AD_OCSP)
                    .find_map(|d| match &d.access_location {
                        GeneralName::URI(u) if u.starts_with("http://") => Some((*u).to_owned()),
                        _ => None,
                    });
            }
        }
        let ocsp_signing = matches!(cert.extended_key_usage(), Ok(Some(eku)) if eku.value.ocsp_signing);
        let serial = cert.raw_serial().to_vec();
        Ok(Self {
            names,
            not_before: cert.validity().not_before.timestamp(),
            not_after: cert.validity().not_after.timestamp(),
            serial_hex: serial_hex(&serial),
            serial,
            ocsp_url,
            subject_der: cert.subject().as_raw().to_vec(),
            issuer_name: cert.issuer().to_string(),
            spki_der: cert.tbs_certificate.subject_pki.raw.to_vec(),
            ocsp_signing,
        })
    }

    pub fn not_after_time(&self) -> SystemTime {
        unix_time(self.not_after)
    }

    pub fn not_before_time(&self) -> SystemTime {
        unix_time(self.not_before)
    }

    /// Seconds until expiry; negative once expired.
    pub fn seconds_left(&self, now: SystemTime) -> i64 {
        self.not_after - unix_seconds(now)
    }

    /// Whether the certificate names exactly these domains (order and case aside).
    pub fn covers_exactly(&self, domains: &[String]) -> bool {
        let mut a: Vec<String> = self.names.clone();
        let mut b: Vec<String> = domains.iter().map(|d| d.to_ascii_lowercase()).collect();
        a.sort();
        a.dedup();
        b.sort();
        b.dedup();
        a == b
    }
}

/// Serial octets as upper-case hex without leading zero octets (openssl's form).
fn serial_hex(serial: &[u8]) -> String {
    let trimmed = match serial.iter().position(|b| *b != 0) {
        Some(i) => &serial[i..],
        None => &serial[serial.len().saturating_sub(1)..],
    };
    trimmed.iter().map(|b| format!("{b:02X}")).collect()
}

pub fn unix_seconds(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

pub fn unix_time(secs: i64) -> SystemTime {
    if secs >= 0 {
        UNIX_EPOCH + Duration::from_secs(secs.unsigned_abs())
    } else {
        UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs())
    }
}

/// RFC 3339 in UTC, for the admin API and logs.
pub fn rfc3339(secs: i64) -> String {
    humantime::format_rfc3339_seconds(unix_time(secs)).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_certificate_reads_back_its_names_validity_and_serial() {
        let key = rcgen::KeyPair::generate().expect("key");
        let mut params = rcgen::CertificateParams::new(vec!["a.test".to_owned(), "B.test".to_owned()]).expect("params");
        params.not_before = time::OffsetDateTime::from_unix_timestamp(1_700_000_000).expect("time");
        params.not_after = time::OffsetDateTime::from_unix_timestamp(1_700_086_400).expect("time");
        params.serial_number = Some(rcgen::SerialNumber::from_slice(&[0x00, 0x0a, 0xbc]));
        let cert = params.self_signed(&key).expect("cert");
        let info = CertInfo::parse(cert.der(), "test").expect("parses");
        assert_eq!(info.names, ["a.test", "b.test"]);
        assert_eq!((info.not_before, info.not_after), (1_700_000_000, 1_700_086_400));
        assert_eq!(info.serial_hex, "0ABC");
        assert!(info.covers_exactly(&["b.test".into(), "A.TEST".into()]));
        assert!(!info.covers_exactly(&["a.test".into()]));
        assert_eq!(info.ocsp_url, None);
        assert_eq!(info.seconds_left(unix_time(1_700_086_000)), 400);
    }

    #[test]
    fn garbage_is_an_error_naming_the_certificate() {
        let e = CertParseError::to_string(&CertInfo::parse(b"nope", "/etc/x.pem").expect_err("garbage"));
        assert!(e.starts_with("/etc/x.pem: "), "{e}");
    }
}
