//! The lifecycle of the automatic certificate: at start, serve the stored certificate when it still fits the
//! configuration (no order then), else order one, standing in a self-signed fallback only when there is no
//! certificate at all; then check every `ssl.renewal.check_interval` and renew `days_before_expiry` ahead.
//! A failed attempt keeps the current certificate in service and is retried with exponential backoff and
//! jitter; until one succeeds `/health` says `degraded: acme`. A new certificate is stored (the old one
//! backed up), swapped into `CertHub` for the next handshake, and announced to `post_renewal_script`.
//!
//! The timing rules are pure functions (`renew_at`, `backoff`) so they can be tested without a clock.
//! Nothing here speaks ACME (that is `tls::acme`) or touches the TLS listener.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde::Serialize;
use tokio::sync::{Notify, watch};
use tracing::{error, info, warn};

use super::acme::{AcmeClient, Issued};
use super::certinfo::{rfc3339, unix_seconds};
use super::served::{CertSource, ServedCert};
use super::store::{CertMeta, CertStore, StoredCert};
use super::{CertHub, keys};
use crate::config::schema::{AcmeConfig, RenewalConfig, SslConfig};

/// Logs that `served` is in service for `domains`, with its serial, expiry and when it will be renewed.
fn announce(domains: &str, served: &ServedCert, days_before_expiry: u32, what: &str) {
    let due = renew_at(served.info.not_before, served.info.not_after, days_before_expiry);
    info!(
        domains = %domains,
        serial = %served.info.serial_hex,
        not_after = %rfc3339(served.info.not_after),
        renew_at = %rfc3339(due),
        "{what}"
    );
}

/// When a certificate valid from `not_before` to `not_after` (Unix seconds) is due for renewal:
/// `days_before_expiry` ahead of expiry, but never before half its lifetime has passed, so a lifetime shorter
/// than `days_before_expiry` does not make every check renew again.
pub fn renew_at(not_before: i64, not_after: i64, days_before_expiry: u32) -> i64 {
    let by_days = not_after.saturating_sub(i64::from(days_before_expiry) * 86_400);
    let half_life = not_before + (not_after - not_before).max(0) / 2;
    by_days.max(half_life)
}

/// The wait before retry number `failures` (1 for the first retry): `initial` doubled per further failure,
/// capped at `max`, with "equal jitter": half of it fixed and half drawn from `random`, so a fleet that
/// failed together does not retry together, and no retry comes sooner than half the step.
pub fn backoff(failures: u32, initial: Duration, max: Duration, random: u64) -> Duration {
    let doublings = failures.saturating_sub(1).min(30);
    let step = initial.saturating_mul(1u32 << doublings).min(max);
    let half = step / 2;
    let spread = u64::try_from(step.saturating_sub(half).as_millis()).unwrap_or(u64::MAX);
    half + Duration::from_millis(random % spread.saturating_add(1))
}

fn random_u64() -> u64 {
    let mut b = [0u8; 8];
    // Jitter only needs to differ between processes; a failing RNG falls back to the clock.
    if super::provider().secure_random.fill(&mut b).is_err() {
        return SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos().into());
    }
    u64::from_le_bytes(b)
}

fn now() -> i64 {
    unix_seconds(SystemTime::now())
}

/// What `/health`, `GET /admin/ssl/certificates` and `rampart ssl status` report about renewal.
#[derive(Clone, Debug, Default, Serialize)]
pub struct RenewStatus {
    pub in_progress: bool,
    pub consecutive_failures: u32,
    pub last_error: Option<String>,
    pub rate_limited: bool,
    /// RFC 3339 times.
    pub last_attempt: Option<String>,
    pub last_success: Option<String>,
    pub next_retry: Option<String>,
    pub renew_at: Option<String>,
    pub serving_fallback: bool,
    #[serde(skip)]
    next_retry_unix: Option<i64>,
}

impl RenewStatus {
    /// Why ACME is degraded, if it is.
    pub fn degraded(&self) -> Option<String> {
        if self.consecutive_failures > 0 {
            Some(format!(
                "{} failed attempt(s); last error: {}",
                self.consecutive_failures,
                self.last_error.as_deref().unwrap_or("unknown")
            ))
        } else if self.serving_fallback {
            Some("no certificate issued yet: serving a self-signed fallback".into())
        } else {
            None
        }
    }
}

pub struct Renewer {
    acme: AcmeConfig,
    renewal: RenewalConfig,
    client: AcmeClient,
    store: CertStore,
    hub: Arc<CertHub>,
    trigger: Notify,
    status: Mutex<RenewStatus>,
}

impl Renewer {
    /// Serves the stored certificate if it fits the configuration, else (when `files_exist` is false) a
    /// self-signed fallback. Ordering happens in `run`.
    pub fn start(ssl: &SslConfig, hub: Arc<CertHub>, files_exist: bool) -> Arc<Self> {
        let store = CertStore::new(&ssl.storage);
        let r = Arc::new(Self {
            acme: ssl.acme.clone(),
            renewal: ssl.renewal.clone(),
            client: AcmeClient::new(ssl.acme.clone(), store.clone(), Arc::clone(&hub)),
            store,
            hub,
            trigger: Notify::new(),
            status: Mutex::new(RenewStatus::default()),
        });
        let domains = r.domains().join(", ");
        match r.store.load_cert(r.domains()) {
            Ok(Some(stored)) => match r.usable(&stored) {
                Ok(served) => {
                    announce(
                        &domains,
                        &served,
                        r.renewal.days_before_expiry,
                        "serving the stored certificate; no order until it is due for renewal",
                    );
                    r.hub.install(vec![Arc::new(served)]);
                }
                Err(why) => {
                    info!(domains = %domains, reason = %why, "the stored certificate does not fit; ordering a new one")
                }
            },
            Ok(None) => info!(domains = %domains, "no stored certificate; ordering one"),
            Err(e) => warn!(domains = %domains, error = %e, "cannot read the stored certificate; ordering a new one"),
        }
        if r.hub.managed().all.is_empty() && !files_exist {
            match keys::self_signed_fallback(r.domains())
                .map_err(|e| e.to_string())
                .and_then(|(chain, key)| {
                    ServedCert::new(chain, key, &super::provider(), CertSource::Fallback, None, "fallback")
                        .map_err(|e| e.to_string())
                }) {
                Ok(fallback) => {
                    error!(
                        domains = %domains,
                        "NO CERTIFICATE EXISTS: serving a SELF-SIGNED FALLBACK until the ACME server issues one; \
                         clients will reject it (it is never stored)"
                    );
                    r.hub.install(vec![Arc::new(fallback)]);
                    r.lock().serving_fallback = true;
                }
                Err(e) => {
                    error!(domains = %domains, error = %e, "cannot make a fallback certificate; TLS handshakes fail until one is issued")
                }
            }
        }
        r
    }

    pub fn domains(&self) -> &[String] {
        &self.acme.domains
    }

    pub fn acme_config(&self) -> &AcmeConfig {
        &self.acme
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, RenewStatus> {
        self.status.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn status(&self) -> RenewStatus {
        let mut s = self.lock().clone();
        s.renew_at = self.current().map(|c| {
            rfc3339(renew_at(
                c.info.not_before,
                c.info.not_after,
                self.renewal.days_before_expiry,
            ))
        });
        s
    }

    /// Asks for a renewal now (the admin endpoint), whatever the schedule says.
    pub fn renew_now(&self) {
        self.trigger.notify_one();
    }

    /// The issued certificate in service (not the fallback).
    fn current(&self) -> Option<Arc<ServedCert>> {
        self.hub
            .managed()
            .all
            .iter()
            .find(|c| c.source == CertSource::Acme)
            .cloned()
    }

    fn meta(&self) -> CertMeta {
        CertMeta {
            domains: self.acme.domains.clone(),
            key_type: self.acme.key_type,
            directory_url: self.acme.directory_url.clone(),
        }
    }

    /// The stored certificate as served, when it was issued for exactly this configuration and has not expired.
    fn usable(&self, stored: &StoredCert) -> Result<ServedCert, String> {
        let want = self.meta();
        let mut have_domains = stored.meta.domains.clone();
        let mut want_domains = want.domains.clone();
        have_domains.sort();
        want_domains.sort();
        if have_domains != want_domains {
            return Err(format!("issued for {:?}", stored.meta.domains));
        }
        if stored.meta.key_type != want.key_type {
            return Err(format!("key type is {:?}", stored.meta.key_type));
        }
        if stored.meta.directory_url != want.directory_url {
            return Err(format!("issued by {}", stored.meta.directory_url));
        }
        let served = parse_served(
            &stored.chain_pem,
            &stored.key_pem,
            &stored.chain_path.display().to_string(),
        )?;
        let served = served.with_path(Some(stored.chain_path.clone()));
        if !served.info.covers_exactly(&want.domains) {
            return Err(format!("names {:?}", served.info.names));
        }
        if served.info.not_after <= now() {
            return Err(format!("expired at {}", rfc3339(served.info.not_after)));
        }
        Ok(served)
    }

    /// Runs the schedule until `shutdown`.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let check = Duration::from_secs(self.renewal.check_interval.max(1));
        let mut forced = false;
        loop {
            let t = now();
            let (failing, next_retry) = {
                let s = self.lock();
                (s.consecutive_failures > 0, s.next_retry_unix)
            };
            let current = self.current();
            let due_at = current
                .as_ref()
                .map(|c| renew_at(c.info.not_before, c.info.not_after, self.renewal.days_before_expiry));
            let reason = if forced {
                Some("renewal requested through the admin API")
            } else if failing {
                next_retry.is_some_and(|r| t >= r).then_some("retrying after a failure")
            } else {
                match due_at {
                    None => Some("no certificate issued yet"),
                    Some(d) if t >= d => Some("certificate due for renewal"),
                    Some(_) => None,
                }
            };
            forced = false;
            if let Some(reason) = reason {
                self.attempt(reason).await;
                continue;
            }
            // Wake for the next check, the retry, or the renewal time, whichever is first.
            let until = |at: i64| Duration::from_secs(u64::try_from(at - t).unwrap_or(0).max(1));
            let wait = match (failing, next_retry, due_at) {
                (true, Some(r), _) => until(r),
                (false, _, Some(d)) => until(d).min(check),
                _ => check,
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = self.trigger.notified() => forced = true,
                _ = shutdown.changed() => return,
            }
        }
    }

    async fn attempt(&self, reason: &str) {
        let domains = self.domains().join(", ");
        info!(domains = %domains, reason, directory = %self.acme.directory_url, "requesting a certificate from the ACME server");
        {
            let mut s = self.lock();
            s.in_progress = true;
            s.last_attempt = Some(rfc3339(now()));
        }
        let outcome = match self.client.issue(self.domains()).await {
            Ok(issued) => self.install(issued).map_err(|e| (e, false)),
            Err(e) => {
                let limited = e.is_rate_limited();
                Err((e.to_string(), limited))
            }
        };
        match outcome {
            Ok(served) => {
                announce(
                    &domains,
                    &served,
                    self.renewal.days_before_expiry,
                    "new certificate installed: new connections get it, open connections keep theirs",
                );
                {
                    let mut s = self.lock();
                    *s = RenewStatus {
                        last_attempt: s.last_attempt.clone(),
                        last_success: Some(rfc3339(now())),
                        ..RenewStatus::default()
                    };
                }
                self.post_renewal(&served).await;
            }
            Err((message, rate_limited)) => {
                let mut s = self.lock();
                s.in_progress = false;
                s.consecutive_failures += 1;
                s.rate_limited = rate_limited;
                let wait = backoff(
                    s.consecutive_failures,
                    Duration::from_secs(self.renewal.retry_initial.max(1)),
                    Duration::from_secs(self.renewal.retry_max.max(1)),
                    random_u64(),
                );
                let at = now() + i64::try_from(wait.as_secs()).unwrap_or(i64::MAX / 2).max(1);
                s.next_retry_unix = Some(at);
                s.next_retry = Some(rfc3339(at));
                s.last_error = Some(message.clone());
                warn!(
                    domains = %domains,
                    error = %message,
                    rate_limited,
                    failures = s.consecutive_failures,
                    retry_in_seconds = wait.as_secs(),
                    "certificate request failed; the current certificate stays in service; retrying with backoff"
                );
            }
        }
    }

    /// Checks the issued pair, stores it (backing up the one it replaces) and swaps it in.
    fn install(&self, issued: Issued) -> Result<Arc<ServedCert>, String> {
        let served = parse_served(&issued.chain_pem, &issued.key_pem, &self.domains().join(", "))?;
        let previous = self.current();
        let stored = self.store.save_cert(
            &self.meta(),
            &issued.chain_pem,
            &issued.key_pem,
            previous.as_ref().map(|p| p.info.serial_hex.as_str()),
        );
        let path = match stored {
            Ok((chain, _)) => Some(chain),
            Err(e) => {
                // The certificate is good: serve it, and say that a restart will order again.
                error!(error = %e, "cannot store the new certificate; serving it anyway (a restart will order a new one)");
                None
            }
        };
        let served = Arc::new(served.with_path(path));
        self.hub.install(vec![Arc::clone(&served)]);
        Ok(served)
    }

    /// Runs `post_renewal_script`, bounded by `post_renewal_timeout`; its failure is logged, never fatal.
    async fn post_renewal(&self, served: &ServedCert) {
        let Some(script) = &self.renewal.post_renewal_script else {
            return;
        };
        let dir = self.store.cert_dir(self.domains());
        let limit = Duration::from_secs(self.renewal.post_renewal_timeout.max(1));
        let child = tokio::process::Command::new(script)
            .env("RAMPART_CERT_DOMAINS", self.domains().join(","))
            .env("RAMPART_CERT_FILE", dir.join("fullchain.pem"))
            .env("RAMPART_KEY_FILE", dir.join("privkey.pem"))
            .env("RAMPART_CERT_SERIAL", &served.info.serial_hex)
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true)
            .output();
        match tokio::time::timeout(limit, child).await {
            Ok(Ok(out)) if out.status.success() => info!(script = %script.display(), "post-renewal script succeeded"),
            Ok(Ok(out)) => warn!(
                script = %script.display(),
                status = %out.status,
                stderr = %String::from_utf8_lossy(&out.stderr).trim(),
                "post-renewal script failed (the new certificate is in service regardless)"
            ),
            Ok(Err(e)) => warn!(script = %script.display(), error = %e, "cannot run the post-renewal script"),
            Err(_) => warn!(
                script = %script.display(),
                seconds = limit.as_secs(),
                "post-renewal script timed out and was killed"
            ),
        }
    }
}

/// A PEM chain and key as a served ACME certificate; `what` names it in errors.
fn parse_served(chain_pem: &str, key_pem: &str, what: &str) -> Result<ServedCert, String> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(chain_pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{what}: certificate chain: {e}"))?;
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|e| format!("{what}: private key: {e}"))?;
    ServedCert::new(chain, key, &super::provider(), CertSource::Acme, None, what).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400;

    #[test]
    fn renewal_is_due_days_before_expiry_for_a_long_lived_certificate() {
        let (nb, na) = (1_000_000, 1_000_000 + 90 * DAY);
        assert_eq!(renew_at(nb, na, 30), na - 30 * DAY);
        assert_eq!(renew_at(nb, na, 0), na);
    }

    #[test]
    fn a_lifetime_shorter_than_the_renewal_window_renews_half_way_not_in_a_loop() {
        let (nb, na) = (1_000_000, 1_000_000 + 60);
        assert_eq!(renew_at(nb, na, 30), nb + 30);
        let (nb, na) = (0, 6 * DAY);
        assert_eq!(renew_at(nb, na, 30), 3 * DAY);
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_and_jitter_stays_within_half_to_full_step() {
        let (initial, max) = (Duration::from_secs(10), Duration::from_secs(300));
        for (failures, step) in [(1u32, 10u64), (2, 20), (3, 40), (5, 160), (6, 300), (40, 300)] {
            let step = Duration::from_secs(step);
            for random in [0u64, 1, 4_999, 5_000, 123_456_789, u64::MAX] {
                let d = backoff(failures, initial, max, random);
                assert!(
                    d >= step / 2 && d <= step,
                    "failures {failures}: {d:?} outside [{:?}, {step:?}]",
                    step / 2
                );
            }
            assert_eq!(backoff(failures, initial, max, 0), step / 2);
        }
        let spread: std::collections::HashSet<_> = (0..50u64).map(|r| backoff(3, initial, max, r * 7919)).collect();
        assert!(spread.len() > 10, "jitter spreads retries: {spread:?}");
    }

    #[test]
    fn degraded_names_the_failure_or_the_fallback() {
        let mut s = RenewStatus::default();
        assert_eq!(s.degraded(), None);
        s.serving_fallback = true;
        assert!(s.degraded().is_some_and(|d| d.contains("fallback")));
        s.consecutive_failures = 2;
        s.last_error = Some("ACME server https://ca.test/dir: connection refused".into());
        assert!(
            s.degraded()
                .is_some_and(|d| d.contains("connection refused") && d.starts_with("2 failed"))
        );
    }
}
