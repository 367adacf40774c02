//! OCSP stapling from the issuer's responder (RFC 6960): for every served certificate whose AIA names an
//! `http://` responder and whose chain carries its issuer, build the request, POST it, check the answer
//! (signed by the issuer or by a responder certificate the issuer signed for OCSP, for this certificate,
//! status good, current), staple it, and fetch again half-way to its `nextUpdate`. A response past its
//! `nextUpdate` is dropped; a failed fetch keeps the current one until then and retries with backoff.
//!
//! Only loopback-or-wherever-the-certificate-says HTTP GET/POST of OCSP; it never changes which certificate
//! is served, only what is stapled to it.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use sha1::{Digest, Sha1};
use tokio::sync::watch;
use tracing::{debug, error, info, warn};

use super::certinfo::{CertInfo, unix_seconds};
use super::der::{self, DerError, Reader, Tlv};
use super::served::{CertSource, ServedCert};
use crate::config::schema::OcspStaplingConfig;

/// `1.3.14.3.2.26`, SHA-1, as CertID hashes use it (the hash every responder supports).
const OID_SHA1: &[u8] = &[0x2b, 0x0e, 0x03, 0x02, 0x1a];
/// `1.3.6.1.5.5.7.48.1.1`, id-pkix-ocsp-basic.
const OID_OCSP_BASIC: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x01];
/// How often the refresher looks at the served certificates (fetches happen only when due).
const POLL: Duration = Duration::from_secs(2);
/// Clock skew tolerated on `thisUpdate`.
const SKEW: i64 = 300;
/// The largest OCSP response accepted.
const MAX_RESPONSE: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum OcspError {
    #[error(transparent)]
    Der(#[from] DerError),
    #[error("OCSP responder {url}: {message}")]
    Fetch { url: String, message: String },
    #[error("OCSP response: {0}")]
    Invalid(String),
}

/// The status an OCSP response gives a certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CertStatus {
    Good,
    Revoked,
    Unknown,
}

/// A checked response for one certificate.
#[derive(Debug)]
pub struct Checked {
    pub status: CertStatus,
    pub this_update: i64,
    pub next_update: Option<i64>,
}

/// The DER OCSP request for `leaf`, issued by `issuer`.
pub fn request(leaf: &CertInfo, issuer: &CertInfo) -> Result<Vec<u8>, OcspError> {
    let (name_hash, key_hash) = issuer_hashes(issuer)?;
    let alg = der::sequence(&[&der::tlv(der::OID, OID_SHA1), &der::tlv(der::NULL, &[])]);
    let cert_id = der::sequence(&[
        &alg,
        &der::tlv(der::OCTET_STRING, &name_hash),
        &der::tlv(der::OCTET_STRING, &key_hash),
        &der::tlv(der::INTEGER, &leaf.serial),
    ]);
    let request = der::sequence(&[&cert_id]);
    let request_list = der::sequence(&[&request]);
    let tbs = der::sequence(&[&request_list]);
    Ok(der::sequence(&[&tbs]))
}

/// SHA-1 of the issuer's name and of its public key bits, as a CertID carries them.
fn issuer_hashes(issuer: &CertInfo) -> Result<(Vec<u8>, Vec<u8>), OcspError> {
    let (_, key_bits) = spki_parts(&issuer.spki_der)?;
    Ok((
        Sha1::digest(&issuer.subject_der).to_vec(),
        Sha1::digest(key_bits).to_vec(),
    ))
}

/// A SubjectPublicKeyInfo as (algorithm identifier contents, public key bits).
fn spki_parts(spki: &[u8]) -> Result<(&[u8], &[u8]), DerError> {
    let seq = Reader(spki).next(der::SEQUENCE, "SubjectPublicKeyInfo")?;
    let mut r = seq.children();
    let alg = r.next(der::SEQUENCE, "SPKI algorithm")?;
    let bits = r.next(der::BIT_STRING, "SPKI key")?;
    let key = bits.value.split_first().map(|(_, k)| k).ok_or(DerError("empty key"))?;
    Ok((alg.value, key))
}

/// The parts of an OCSP response the checks need.
struct Parsed<'a> {
    tbs: Tlv<'a>,
    sig_alg: &'a [u8],
    signature: &'a [u8],
    certs: Vec<&'a [u8]>,
    responses: Vec<Single<'a>>,
}

struct Single<'a> {
    hash_alg: &'a [u8],
    name_hash: &'a [u8],
    key_hash: &'a [u8],
    serial: &'a [u8],
    status: CertStatus,
    this_update: i64,
    next_update: Option<i64>,
}

fn parse(der_bytes: &[u8]) -> Result<Parsed<'_>, OcspError> {
    let outer = Reader(der_bytes).next(der::SEQUENCE, "OCSPResponse")?;
    let mut r = outer.children();
    let status = r.next(der::ENUMERATED, "responseStatus")?;
    if status.value != [0] {
        return Err(OcspError::Invalid(format!(
            "responder answered status {:?} (not successful)",
            status.value
        )));
    }
    let bytes = r.next(0xa0, "responseBytes")?;
    let mut rb = bytes.children().next(der::SEQUENCE, "ResponseBytes")?.children();
    if rb.next(der::OID, "responseType")?.value != OID_OCSP_BASIC {
        return Err(OcspError::Invalid("not a basic OCSP response".into()));
    }
    let basic = rb.next(der::OCTET_STRING, "response")?;
    let mut b = Reader(basic.value).next(der::SEQUENCE, "BasicOCSPResponse")?.children();
    let tbs = b.next(der::SEQUENCE, "tbsResponseData")?;
    let sig_alg = b.next(der::SEQUENCE, "signatureAlgorithm")?.value;
    let sig = b.next(der::BIT_STRING, "signature")?;
    let signature = sig
        .value
        .split_first()
        .map(|(_, s)| s)
        .ok_or(DerError("empty signature"))?;
    let mut certs = Vec::new();
    if let Some(c) = b.next_if(0xa0)? {
        let mut list = c.children().next(der::SEQUENCE, "certs")?.children();
        while !list.is_empty() {
            certs.push(list.next(der::SEQUENCE, "certificate")?.raw);
        }
    }
    let mut t = tbs.children();
    let _version = t.next_if(0xa0)?;
    let responder = t.next_any()?;
    if responder.tag != 0xa1 && responder.tag != 0xa2 {
        return Err(DerError("responderID").into());
    }
    let _produced = t.next(der::GENERALIZED_TIME, "producedAt")?;
    let mut list = t.next(der::SEQUENCE, "responses")?.children();
    let mut responses = Vec::new();
    while !list.is_empty() {
        let mut s = list.next(der::SEQUENCE, "SingleResponse")?.children();
        let mut id = s.next(der::SEQUENCE, "CertID")?.children();
        let hash_alg = id.next(der::SEQUENCE, "hashAlgorithm")?;
        let hash_alg = hash_alg.children().next(der::OID, "hash OID")?.value;
        let name_hash = id.next(der::OCTET_STRING, "issuerNameHash")?.value;
        let key_hash = id.next(der::OCTET_STRING, "issuerKeyHash")?.value;
        let serial = id.next(der::INTEGER, "serialNumber")?.value;
        let status = match s.next_any()?.tag {
            0x80 => CertStatus::Good,
            0xa1 => CertStatus::Revoked,
            0x82 => CertStatus::Unknown,
            _ => return Err(DerError("certStatus").into()),
        };
        let this_update = der::generalized_time(s.next(der::GENERALIZED_TIME, "thisUpdate")?.value)?;
        let next_update = match s.next_if(0xa0)? {
            Some(n) => Some(der::generalized_time(
                n.children().next(der::GENERALIZED_TIME, "nextUpdate")?.value,
            )?),
            None => None,
        };
        responses.push(Single {
            hash_alg,
            name_hash,
            key_hash,
            serial,
            status,
            this_update,
            next_update,
        });
    }
    Ok(Parsed {
        tbs,
        sig_alg,
        signature,
        certs,
        responses,
    })
}

/// `thisUpdate` and `nextUpdate` of the first answer in a response, unchecked (for `ocsp_response_file`,
/// which is stapled as the operator gave it, but dropped once stale).
pub fn response_times(der_bytes: &[u8]) -> Result<(i64, Option<i64>), OcspError> {
    let parsed = parse(der_bytes)?;
    let first = parsed
        .responses
        .first()
        .ok_or_else(|| OcspError::Invalid("no responses".into()))?;
    Ok((first.this_update, first.next_update))
}

/// Verifies `signature` over `message` by the key in `spki` with the algorithm `sig_alg` names.
fn verify_signature(spki: &[u8], sig_alg: &[u8], message: &[u8], signature: &[u8]) -> Result<(), OcspError> {
    let (key_alg, key) = spki_parts(spki)?;
    let provider = super::provider();
    let alg = provider
        .signature_verification_algorithms
        .all
        .iter()
        .find(|a| a.signature_alg_id().as_ref() == sig_alg && a.public_key_alg_id().as_ref() == key_alg)
        .ok_or_else(|| OcspError::Invalid("signature algorithm not supported for this key".into()))?;
    alg.verify_signature(key, message, signature)
        .map_err(|_| OcspError::Invalid("bad signature".into()))
}

/// Checks `der_bytes` as the answer for `leaf` issued by `issuer` at time `now`.
pub fn check(der_bytes: &[u8], leaf: &CertInfo, issuer: &CertInfo, now: i64) -> Result<Checked, OcspError> {
    let parsed = parse(der_bytes)?;
    let mut signed = verify_signature(&issuer.spki_der, parsed.sig_alg, parsed.tbs.raw, parsed.signature).is_ok();
    if !signed {
        // A delegated responder: its certificate must be signed by the issuer and allowed to sign OCSP.
        for cert in &parsed.certs {
            let Ok(info) = CertInfo::parse(cert, "OCSP responder") else {
                continue;
            };
            let mut c = Reader(cert).next(der::SEQUENCE, "certificate")?.children();
            let tbs = c.next(der::SEQUENCE, "tbsCertificate")?;
            let alg = c.next(der::SEQUENCE, "signatureAlgorithm")?.value;
            let sig = c.next(der::BIT_STRING, "signature")?;
            let sig = sig.value.split_first().map_or(&[][..], |(_, s)| s);
            if info.ocsp_signing
                && verify_signature(&issuer.spki_der, alg, tbs.raw, sig).is_ok()
                && verify_signature(&info.spki_der, parsed.sig_alg, parsed.tbs.raw, parsed.signature).is_ok()
            {
                signed = true;
                break;
            }
        }
    }
    if !signed {
        return Err(OcspError::Invalid(
            "not signed by the issuer or a responder it authorised".into(),
        ));
    }
    let (name_hash, key_hash) = issuer_hashes(issuer)?;
    let single = parsed
        .responses
        .iter()
        .find(|s| {
            s.hash_alg == OID_SHA1 && s.name_hash == name_hash && s.key_hash == key_hash && s.serial == leaf.serial
        })
        .ok_or_else(|| OcspError::Invalid(format!("no answer for serial {}", leaf.serial_hex)))?;
    if single.this_update > now + SKEW {
        return Err(OcspError::Invalid("thisUpdate is in the future".into()));
    }
    if let Some(next) = single.next_update
        && next <= now
    {
        return Err(OcspError::Invalid("already stale (nextUpdate has passed)".into()));
    }
    Ok(Checked {
        status: single.status,
        this_update: single.this_update,
        next_update: single.next_update,
    })
}

/// When to fetch again after a good response: half-way to `nextUpdate` (hourly without one), not sooner
/// than a few seconds from now.
pub fn refresh_at(this_update: i64, next_update: Option<i64>, now: i64) -> i64 {
    let at = match next_update {
        Some(next) => this_update + (next - this_update).max(0) / 2,
        None => now + 3600,
    };
    at.max(now + 5)
}

/// The wait after `failures` failed fetches in a row: 10 s doubling, at most an hour.
pub fn retry_after(failures: u32) -> i64 {
    (10i64 << failures.saturating_sub(1).min(9)).min(3600)
}

/// POSTs `request` to `url` and returns the body (bounded in time and size).
async fn fetch(url: &str, request: Vec<u8>, timeout: Duration) -> Result<Vec<u8>, OcspError> {
    let err = |message: String| OcspError::Fetch {
        url: url.to_owned(),
        message,
    };
    let uri: http::Uri = url.parse().map_err(|e| err(format!("bad URL: {e}")))?;
    if uri.scheme_str() != Some("http") {
        return Err(err("only http:// responders are supported".into()));
    }
    let req = http::Request::post(uri)
        .header(http::header::CONTENT_TYPE, "application/ocsp-request")
        .body(Full::new(Bytes::from(request)))
        .map_err(|e| err(e.to_string()))?;
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let body = async {
        let resp = client.request(req).await.map_err(|e| err(e.to_string()))?;
        if !resp.status().is_success() {
            return Err(err(format!("answered {}", resp.status())));
        }
        Limited::new(resp.into_body(), MAX_RESPONSE)
            .collect()
            .await
            .map(|b| b.to_bytes().to_vec())
            .map_err(|e| err(e.to_string()))
    };
    tokio::time::timeout(timeout, body)
        .await
        .map_err(|_| err(format!("no answer within {}s", timeout.as_secs())))?
}

/// Keeps the stapled responses of `served()` fresh until `shutdown`.
pub async fn run<F>(cfg: OcspStaplingConfig, served: F, mut shutdown: watch::Receiver<bool>)
where
    F: Fn() -> Vec<Arc<ServedCert>> + Send + 'static,
{
    let timeout = Duration::from_secs(cfg.timeout.max(1));
    let budget = usize::try_from(cfg.cache_size.get()).unwrap_or(usize::MAX);
    loop {
        let certs = served();
        for cert in &certs {
            refresh_one(cert, &certs, timeout, budget).await;
        }
        tokio::select! {
            _ = tokio::time::sleep(POLL) => {}
            _ = shutdown.changed() => return,
        }
    }
}

async fn refresh_one(cert: &Arc<ServedCert>, all: &[Arc<ServedCert>], timeout: Duration, budget: usize) {
    let now = unix_seconds(SystemTime::now());
    let names = cert.info.names.join(", ");
    if let Some(s) = cert.staple()
        && !s.is_fresh(now)
    {
        cert.clear_staple();
        warn!(names = %names, "OCSP response passed its nextUpdate; no longer stapled");
    }
    if cert.source == CertSource::Fallback {
        return;
    }
    let (Some(url), Some(issuer)) = (cert.info.ocsp_url.clone(), cert.issuer.as_ref()) else {
        return;
    };
    {
        let mut sched = cert.ocsp.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let due = *sched.next_fetch.get_or_insert_with(|| match cert.staple() {
            Some(s) if s.is_fresh(now) => refresh_at(s.this_update, s.next_update, now),
            _ => now,
        });
        if now < due {
            return;
        }
    }
    let outcome = match request(&cert.info, issuer) {
        Ok(req) => match fetch(&url, req, timeout).await {
            Ok(body) => check(&body, &cert.info, issuer, now).map(|c| (c, body)),
            Err(e) => Err(e),
        },
        Err(e) => Err(e),
    };
    let mut sched = cert.ocsp.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    match outcome {
        Ok((c, body)) if c.status == CertStatus::Good => {
            let others: usize = all
                .iter()
                .filter(|o| !Arc::ptr_eq(o, cert))
                .filter_map(|o| o.staple().map(|s| s.len))
                .sum();
            if others + body.len() > budget {
                warn!(names = %names, "OCSP response not stapled: ssl.ocsp_stapling.cache_size is full");
            } else {
                cert.set_staple(body, c.this_update, c.next_update, false);
                info!(names = %names, responder = %url, this_update = c.this_update, next_update = ?c.next_update, "OCSP response fetched and stapled");
            }
            sched.failures = 0;
            sched.last_error = None;
            sched.next_fetch = Some(refresh_at(c.this_update, c.next_update, now));
        }
        Ok((c, _)) => {
            cert.clear_staple();
            error!(names = %names, serial = %cert.info.serial_hex, status = ?c.status, "OCSP responder does not vouch for this certificate; not stapling");
            sched.last_error = Some(format!("status {:?}", c.status));
            sched.next_fetch = Some(now + 3600);
        }
        Err(e) => {
            sched.failures += 1;
            let wait = retry_after(sched.failures);
            let kept = cert.staple().is_some();
            warn!(names = %names, error = %e, retry_in_seconds = wait, kept_current_response = kept, "OCSP refresh failed");
            sched.last_error = Some(e.to_string());
            sched.next_fetch = Some(now + wait);
        }
    }
    debug!(names = %names, next_fetch = ?sched.next_fetch, "OCSP schedule");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issuer_and_leaf() -> (CertInfo, CertInfo) {
        let ca_key = rcgen::KeyPair::generate().expect("key");
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca_cert = ca.self_signed(&ca_key).expect("ca");
        let issuer = rcgen::Issuer::new(ca, ca_key);
        let leaf_key = rcgen::KeyPair::generate().expect("key");
        let mut leaf = rcgen::CertificateParams::new(vec!["a.test".to_owned()]).expect("params");
        leaf.serial_number = Some(rcgen::SerialNumber::from_slice(&[0x42]));
        let leaf_cert = leaf.signed_by(&leaf_key, &issuer).expect("leaf");
        (
            CertInfo::parse(ca_cert.der(), "ca").expect("ca parses"),
            CertInfo::parse(leaf_cert.der(), "leaf").expect("leaf parses"),
        )
    }

    /// An unsigned basic response with one answer (good, for `serial`), for the parser and time checks.
    fn response(issuer: &CertInfo, serial: &[u8], this: &[u8], next: Option<&[u8]>) -> Vec<u8> {
        let (nh, kh) = issuer_hashes(issuer).expect("hashes");
        let alg = der::sequence(&[&der::tlv(der::OID, OID_SHA1), &der::tlv(der::NULL, &[])]);
        let cert_id = der::sequence(&[
            &alg,
            &der::tlv(der::OCTET_STRING, &nh),
            &der::tlv(der::OCTET_STRING, &kh),
            &der::tlv(der::INTEGER, serial),
        ]);
        let mut single = vec![cert_id, vec![0x80, 0x00], der::tlv(der::GENERALIZED_TIME, this)];
        if let Some(n) = next {
            single.push(der::tlv(0xa0, &der::tlv(der::GENERALIZED_TIME, n)));
        }
        let single: Vec<&[u8]> = single.iter().map(Vec::as_slice).collect();
        let responder = der::tlv(0xa2, &der::tlv(der::OCTET_STRING, &kh));
        let tbs = der::sequence(&[
            &responder,
            &der::tlv(der::GENERALIZED_TIME, this),
            &der::sequence(&[&der::sequence(&single)]),
        ]);
        let sig_alg = der::sequence(&[&der::tlv(der::OID, &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02])]);
        let basic = der::sequence(&[&tbs, &sig_alg, &der::tlv(der::BIT_STRING, &[0, 1, 2, 3])]);
        let bytes = der::sequence(&[
            &der::tlv(der::OID, OID_OCSP_BASIC),
            &der::tlv(der::OCTET_STRING, &basic),
        ]);
        der::sequence(&[&der::tlv(der::ENUMERATED, &[0]), &der::tlv(0xa0, &bytes)])
    }

    #[test]
    fn a_request_names_the_certificate_by_issuer_hashes_and_serial() {
        let (issuer, leaf) = issuer_and_leaf();
        let req = request(&leaf, &issuer).expect("request");
        let mut r = Reader(&req).next(der::SEQUENCE, "req").expect("OCSPRequest").children();
        let tbs = r.next(der::SEQUENCE, "tbs").expect("tbs");
        let list = tbs.children().next(der::SEQUENCE, "list").expect("list");
        let one = list.children().next(der::SEQUENCE, "request").expect("request");
        let id = one.children().next(der::SEQUENCE, "certid").expect("certid");
        let mut f = id.children();
        f.next(der::SEQUENCE, "alg").expect("alg");
        assert_eq!(f.next(der::OCTET_STRING, "nh").expect("nh").value.len(), 20);
        assert_eq!(f.next(der::OCTET_STRING, "kh").expect("kh").value.len(), 20);
        assert_eq!(f.next(der::INTEGER, "serial").expect("serial").value, &[0x42]);
    }

    #[test]
    fn response_times_are_read_and_a_response_past_next_update_is_stale() {
        let (issuer, leaf) = issuer_and_leaf();
        let resp = response(&issuer, &leaf.serial, b"20300101000000Z", Some(b"20300101010000Z"));
        let (this, next) = response_times(&resp).expect("times");
        assert_eq!(next, Some(this + 3600));
        assert_eq!(refresh_at(this, next, this), this + 1800);
        assert_eq!(
            refresh_at(this, next, this + 1799),
            this + 1804,
            "never sooner than 5 s from now"
        );
    }

    #[test]
    fn an_unsigned_or_foreign_response_is_refused() {
        let (issuer, leaf) = issuer_and_leaf();
        let resp = response(&issuer, &leaf.serial, b"20300101000000Z", Some(b"20300101010000Z"));
        let now = der::generalized_time(b"20300101000100Z").expect("time");
        let e = check(&resp, &leaf, &issuer, now).expect_err("bad signature");
        assert!(e.to_string().contains("not signed"), "{e}");
        assert!(
            check(b"\x30\x03\x0a\x01\x06", &leaf, &issuer, now).is_err(),
            "status unauthorized"
        );
    }

    #[test]
    fn retries_back_off_to_an_hour() {
        assert_eq!(retry_after(1), 10);
        assert_eq!(retry_after(2), 20);
        assert_eq!(retry_after(30), 3600);
    }
}
