//! The ACME conversation (RFC 8555, through `instant-acme`): load or create the account (credentials kept
//! by `tls::store`), place an order for the configured names, answer each authorization's challenge through
//! `tls::challenge` (http-01, tls-alpn-01, or dns-01 through the hook — always dns-01 for wildcards), wait
//! for validation, finalise with a CSR for a fresh key of the configured type, and download the chain.
//!
//! One call of `AcmeClient::issue` is one bounded attempt (`ssl.acme.order_timeout`); deciding when to
//! call it, retrying and installing the result belong to `tls::renew`. Never logs the account key.

use std::sync::Arc;
use std::time::Duration;

use instant_acme::{
    Account, AccountBuilder, AccountCredentials, AuthorizationStatus, ChallengeType as AcmeChallenge, Identifier,
    NewAccount, NewOrder, Order, OrderStatus, RetryPolicy,
};
use tracing::{info, warn};

use super::CertHub;
use super::challenge::{ChallengeError, dns_hook};
use super::keys::{self, KeyError};
use super::store::{CertStore, StoreError};
use crate::config::schema::{AcmeConfig, ChallengeType};

const ACCOUNT_DOES_NOT_EXIST: &str = "urn:ietf:params:acme:error:accountDoesNotExist";
const RATE_LIMITED: &str = "urn:ietf:params:acme:error:rateLimited";

#[derive(Debug, thiserror::Error)]
pub enum AcmeError {
    #[error("ACME server {url}: {message}")]
    Server {
        url: String,
        message: String,
        rate_limited: bool,
    },
    #[error("ACME order for {domains}: {message}")]
    Order { domains: String, message: String },
    #[error("ACME order for {domains} did not complete within {secs}s")]
    Timeout { domains: String, secs: u64 },
    #[error("ACME account for {url}: {message}")]
    Account { url: String, message: String },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error(transparent)]
    Challenge(#[from] ChallengeError),
}

impl AcmeError {
    pub fn is_rate_limited(&self) -> bool {
        matches!(self, Self::Server { rate_limited: true, .. })
    }
}

/// A certificate as the ACME server issued it, with the key made for it.
pub struct Issued {
    pub chain_pem: String,
    pub key_pem: String,
}

/// Which challenge answers an authorization: wildcards can only be validated through DNS.
fn challenge_for(wildcard: bool, configured: ChallengeType) -> AcmeChallenge {
    match (wildcard, configured) {
        (true, _) | (false, ChallengeType::Dns01) => AcmeChallenge::Dns01,
        (false, ChallengeType::Http01) => AcmeChallenge::Http01,
        (false, ChallengeType::TlsAlpn01) => AcmeChallenge::TlsAlpn01,
    }
}

/// Challenge answers set during an order, removed when it ends however it ends.
#[derive(Default)]
struct Answered {
    http: Vec<String>,
    alpn: Vec<String>,
    dns: Vec<(String, String)>,
}

pub struct AcmeClient {
    cfg: AcmeConfig,
    store: CertStore,
    hub: Arc<CertHub>,
    account: tokio::sync::Mutex<Option<Account>>,
}

impl AcmeClient {
    pub fn new(cfg: AcmeConfig, store: CertStore, hub: Arc<CertHub>) -> Self {
        Self {
            cfg,
            store,
            hub,
            account: tokio::sync::Mutex::new(None),
        }
    }

    fn server_err(&self, e: &instant_acme::Error) -> AcmeError {
        let rate_limited = matches!(e, instant_acme::Error::Api(p) if p.r#type.as_deref() == Some(RATE_LIMITED));
        AcmeError::Server {
            url: self.cfg.directory_url.clone(),
            message: error_chain(e),
            rate_limited,
        }
    }

    fn builder(&self) -> Result<AccountBuilder, AcmeError> {
        let built = match &self.cfg.ca_file {
            Some(ca) => Account::builder_with_root(ca),
            None => Account::builder(),
        };
        built.map_err(|e| AcmeError::Account {
            url: self.cfg.directory_url.clone(),
            message: format!("cannot set up the HTTPS client: {}", error_chain(&e)),
        })
    }

    /// The account: cached, else the stored one, else a new one (whose credentials are stored).
    async fn account(&self, fresh: bool) -> Result<Account, AcmeError> {
        let mut slot = self.account.lock().await;
        if fresh {
            *slot = None;
        } else if let Some(a) = slot.as_ref() {
            return Ok(a.clone());
        }
        let url = &self.cfg.directory_url;
        let stored = if fresh { None } else { self.store.load_account(url)? };
        let account = match stored.map(|b| serde_json::from_slice::<AccountCredentials>(&b)) {
            Some(Ok(creds)) => {
                let a = self
                    .builder()?
                    .from_credentials(creds)
                    .await
                    .map_err(|e| self.server_err(&e))?;
                info!(directory = %url, account = a.id(), "using the stored ACME account");
                a
            }
            other => {
                if let Some(Err(e)) = other {
                    warn!(directory = %url, error = %e, "the stored ACME account cannot be read; creating a new one");
                }
                self.create_account().await?
            }
        };
        *slot = Some(account.clone());
        Ok(account)
    }

    async fn create_account(&self) -> Result<Account, AcmeError> {
        let url = &self.cfg.directory_url;
        let contact: Vec<String> = self.cfg.email.iter().map(|e| format!("mailto:{e}")).collect();
        let contact: Vec<&str> = contact.iter().map(String::as_str).collect();
        let new = NewAccount {
            contact: &contact,
            terms_of_service_agreed: true,
            only_return_existing: false,
        };
        let (account, creds) = self
            .builder()?
            .create(&new, url.clone(), None)
            .await
            .map_err(|e| self.server_err(&e))?;
        let bytes = serde_json::to_vec(&creds).map_err(|e| AcmeError::Account {
            url: url.clone(),
            message: format!("cannot serialise the credentials: {e}"),
        })?;
        let path = self.store.save_account(url, &bytes)?;
        info!(directory = %url, account = account.id(), file = %path.display(), "created an ACME account; credentials stored with mode 0600");
        Ok(account)
    }

    /// One attempt to obtain a certificate for `domains`, bounded by `ssl.acme.order_timeout`.
    pub async fn issue(&self, domains: &[String]) -> Result<Issued, AcmeError> {
        let secs = self.cfg.order_timeout.max(1);
        let mut answered = Answered::default();
        let result = tokio::time::timeout(Duration::from_secs(secs), self.issue_inner(domains, &mut answered)).await;
        self.clean_up(answered).await;
        result.unwrap_or_else(|_| {
            Err(AcmeError::Timeout {
                domains: domains.join(", "),
                secs,
            })
        })
    }

    async fn issue_inner(&self, domains: &[String], answered: &mut Answered) -> Result<Issued, AcmeError> {
        let order_err = |message: String| AcmeError::Order {
            domains: domains.join(", "),
            message,
        };
        let identifiers: Vec<Identifier> = domains.iter().map(|d| Identifier::Dns(d.clone())).collect();
        let account = self.account(false).await?;
        let mut order = match account.new_order(&NewOrder::new(&identifiers)).await {
            Ok(o) => o,
            Err(instant_acme::Error::Api(p)) if p.r#type.as_deref() == Some(ACCOUNT_DOES_NOT_EXIST) => {
                warn!(directory = %self.cfg.directory_url, "the ACME server does not know the stored account; creating a new one");
                let account = self.account(true).await?;
                account
                    .new_order(&NewOrder::new(&identifiers))
                    .await
                    .map_err(|e| self.server_err(&e))?
            }
            Err(e) => return Err(self.server_err(&e)),
        };
        info!(domains = %domains.join(", "), order = order.url(), "ACME order placed");

        // Pass 1: put every answer in place (DNS records take a while to be visible).
        let mut pending = 0usize;
        let mut authorizations = order.authorizations();
        while let Some(authz) = authorizations.next().await {
            let mut authz = authz.map_err(|e| self.server_err(&e))?;
            match authz.status {
                AuthorizationStatus::Valid => continue,
                AuthorizationStatus::Pending => {}
                other => {
                    return Err(order_err(format!(
                        "authorization for {} is {other:?}",
                        authz.identifier()
                    )));
                }
            }
            let name = authz.identifier().to_string();
            let Identifier::Dns(domain) = authz.identifier().identifier.clone() else {
                return Err(order_err(format!("authorization for {name} is not for a DNS name")));
            };
            let kind = challenge_for(authz.wildcard, self.cfg.challenge_type);
            let challenge = authz
                .challenge(kind.clone())
                .ok_or_else(|| order_err(format!("the server offers no {kind:?} challenge for {name}")))?;
            let key_auth = challenge.key_authorization();
            match kind {
                AcmeChallenge::Http01 => {
                    self.hub.challenges.set_http01(&challenge.token, key_auth.as_str());
                    answered.http.push(challenge.token.clone());
                }
                AcmeChallenge::TlsAlpn01 => {
                    self.hub
                        .challenges
                        .set_tls_alpn01(&domain, key_auth.digest().as_ref(), &super::provider())?;
                    answered.alpn.push(domain.clone());
                }
                _ => {
                    let hook =
                        self.cfg.dns_hook.as_ref().ok_or_else(|| {
                            order_err(format!("{name} needs dns-01 and ssl.acme.dns_hook is not set"))
                        })?;
                    let record = format!("_acme-challenge.{domain}");
                    let value = key_auth.dns_value();
                    dns_hook(hook, "set", &record, &value).await?;
                    answered.dns.push((record, value));
                }
            }
            info!(name = %name, challenge = ?kind, "ACME challenge answer in place");
            pending += 1;
        }
        if !answered.dns.is_empty() && self.cfg.dns_propagation_delay > 0 {
            info!(
                seconds = self.cfg.dns_propagation_delay,
                "waiting for the dns-01 records to propagate"
            );
            tokio::time::sleep(Duration::from_secs(self.cfg.dns_propagation_delay)).await;
        }
        // Pass 2: tell the server to look. The authorizations are cached, so this walk costs no requests.
        let mut authorizations = order.authorizations();
        while let Some(authz) = authorizations.next().await {
            let mut authz = authz.map_err(|e| self.server_err(&e))?;
            if authz.status != AuthorizationStatus::Pending {
                continue;
            }
            let kind = challenge_for(authz.wildcard, self.cfg.challenge_type);
            if let Some(mut challenge) = authz.challenge(kind) {
                challenge.set_ready().await.map_err(|e| self.server_err(&e))?;
            }
        }
        let retry = RetryPolicy::new()
            .initial_delay(Duration::from_millis(250))
            .backoff(1.5)
            .timeout(Duration::from_secs(self.cfg.order_timeout.max(1)));
        if pending > 0 {
            info!(domains = %domains.join(", "), "waiting for the ACME server to validate");
        }
        let status = match order.poll_ready(&retry).await {
            Ok(s) => s,
            Err(instant_acme::Error::Api(p)) => {
                return Err(order_err(format!("{p}{}", invalid_reasons(&mut order).await)));
            }
            Err(e) => return Err(self.server_err(&e)),
        };
        if status != OrderStatus::Ready {
            return Err(order_err(format!(
                "order is {status:?}{}",
                invalid_reasons(&mut order).await
            )));
        }
        // RSA 4096 takes seconds to generate: off the runtime threads, so serving never stalls meanwhile.
        let (key_type, names) = (self.cfg.key_type, domains.to_vec());
        let (key, csr) = tokio::task::spawn_blocking(move || {
            let key = keys::generate(key_type)?;
            let csr = keys::csr(&names, &key)?;
            Ok::<_, KeyError>((key, csr))
        })
        .await
        .map_err(|e| order_err(format!("key generation stopped: {e}")))??;
        order.finalize_csr(&csr).await.map_err(|e| self.server_err(&e))?;
        let chain_pem = order.poll_certificate(&retry).await.map_err(|e| self.server_err(&e))?;
        info!(domains = %domains.join(", "), key_type = ?self.cfg.key_type, "ACME order complete; certificate downloaded");
        Ok(Issued {
            chain_pem,
            key_pem: key.serialize_pem(),
        })
    }

    async fn clean_up(&self, answered: Answered) {
        for token in &answered.http {
            self.hub.challenges.clear_http01(token);
        }
        for domain in &answered.alpn {
            self.hub.challenges.clear_tls_alpn01(domain);
        }
        if let Some(hook) = &self.cfg.dns_hook {
            for (record, value) in &answered.dns {
                if let Err(e) = dns_hook(hook, "clear", record, value).await {
                    warn!(error = %e, "clearing a dns-01 record failed; remove it by hand");
                }
            }
        }
    }
}

/// Why the server refused: each failed challenge's error, fetched after the order went invalid.
async fn invalid_reasons(order: &mut Order) -> String {
    let mut reasons = Vec::new();
    let mut authorizations = order.authorizations();
    while let Some(Ok(mut authz)) = authorizations.next().await {
        if authz.refresh().await.is_err() {
            continue;
        }
        let name = authz.identifier().to_string();
        for c in &authz.challenges {
            if let Some(p) = &c.error {
                reasons.push(format!("{name} ({:?}): {p}", c.r#type));
            }
        }
    }
    if reasons.is_empty() {
        String::new()
    } else {
        format!(": {}", reasons.join("; "))
    }
}

/// An error and its sources on one line ("client error (Connect): tcp connect error: Connection refused").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    let mut depth = 0;
    while let Some(s) = source
        && depth < 8
    {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
        depth += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_always_go_through_dns_and_other_names_use_the_configured_challenge() {
        assert_eq!(challenge_for(true, ChallengeType::Http01), AcmeChallenge::Dns01);
        assert_eq!(challenge_for(true, ChallengeType::TlsAlpn01), AcmeChallenge::Dns01);
        assert_eq!(challenge_for(false, ChallengeType::Http01), AcmeChallenge::Http01);
        assert_eq!(challenge_for(false, ChallengeType::TlsAlpn01), AcmeChallenge::TlsAlpn01);
        assert_eq!(challenge_for(false, ChallengeType::Dns01), AcmeChallenge::Dns01);
    }
}
