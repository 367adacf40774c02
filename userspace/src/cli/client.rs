//! A small HTTP client for the admin API: JSON in, JSON out, a bearer token from the token store, and one
//! refresh-and-retry when the access token has expired.

use std::time::Duration;

use anyhow::{Context, bail};
use bytes::Bytes;
use http::{Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

use super::token_store::{self, Stored};

const TIMEOUT: Duration = Duration::from_secs(10);
/// Longest answer read; the API's largest (a full log query) is far below this.
const MAX_BODY: usize = 16 << 20;

/// HTTP, or HTTPS trusting the system's roots plus the PEM file in `RAMPART_ADMIN_CA` (an admin listener
/// with `admin.tls` usually has a private CA's certificate).
fn connector() -> anyhow::Result<HttpsConnector<HttpConnector>> {
    Ok(hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls_config()?)
        .https_or_http()
        .enable_http1()
        .build())
}

/// The TLS client configuration the CLI uses for `https://` and `wss://` admin URLs.
pub fn tls_config() -> anyhow::Result<rustls::ClientConfig> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        // A system root rustls cannot parse is skipped, as every TLS client does.
        let _ = roots.add(cert);
    }
    if let Some(path) = std::env::var_os("RAMPART_ADMIN_CA") {
        let path = std::path::PathBuf::from(path);
        let pem = std::fs::read(&path).with_context(|| format!("RAMPART_ADMIN_CA: cannot read {}", path.display()))?;
        for cert in CertificateDer::pem_slice_iter(&pem) {
            let cert = cert.with_context(|| format!("RAMPART_ADMIN_CA: {} is not PEM certificates", path.display()))?;
            roots
                .add(cert)
                .with_context(|| format!("RAMPART_ADMIN_CA: a certificate in {} is not usable", path.display()))?;
        }
    }
    Ok(
        rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
            .with_safe_default_protocol_versions()
            .context("TLS client configuration")?
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

pub struct AdminClient {
    base: String,
    http: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    stored: Option<Stored>,
}

impl AdminClient {
    /// For `admin` (base URL); uses the stored tokens when they were issued by the same API.
    pub fn new(admin: &str) -> anyhow::Result<Self> {
        let base = admin.trim_end_matches('/').to_owned();
        let stored = token_store::load()?.filter(|s| s.admin == base);
        Ok(Self {
            base,
            http: Client::builder(TokioExecutor::new()).build(connector()?),
            stored,
        })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// One request without retry: status and JSON body (`Value::Null` when empty or not JSON).
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        token: Option<&str>,
    ) -> anyhow::Result<(StatusCode, Value)> {
        let url = format!("{}{path}", self.base);
        let mut req = Request::builder().method(method).uri(&url);
        if let Some(t) = token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        let payload = match body {
            Some(v) => {
                req = req.header(header::CONTENT_TYPE, "application/json");
                Bytes::from(serde_json::to_vec(v)?)
            }
            None => Bytes::new(),
        };
        let req = req
            .body(Full::new(payload))
            .with_context(|| format!("invalid URL `{url}`"))?;
        let resp = tokio::time::timeout(TIMEOUT, self.http.request(req))
            .await
            .with_context(|| format!("no answer from {url} within {} s", TIMEOUT.as_secs()))?
            .with_context(|| format!("cannot reach the admin API at {} (is rampart running?)", self.base))?;
        let status = resp.status();
        let bytes = http_body_util::Limited::new(resp.into_body(), MAX_BODY)
            .collect()
            .await
            .map_err(|e| anyhow::anyhow!("reading the answer from {url}: {e}"))?
            .to_bytes();
        Ok((status, serde_json::from_slice(&bytes).unwrap_or(Value::Null)))
    }

    /// An authenticated request; a 401 with stored tokens refreshes them once and retries. Non-2xx answers
    /// become errors carrying the API's message.
    pub async fn call(&mut self, method: Method, path: &str, body: Option<&Value>) -> anyhow::Result<Value> {
        let token = self.stored.as_ref().map(|s| s.access_token.clone());
        let (mut status, mut v) = self.raw(method.clone(), path, body, token.as_deref()).await?;
        if status == StatusCode::UNAUTHORIZED
            && let Some(s) = self.stored.clone()
        {
            let (rs, rv) = self
                .raw(Method::POST, "/admin/auth/refresh", None, Some(&s.refresh_token))
                .await?;
            if rs.is_success()
                && let (Some(a), Some(r)) = (rv["access_token"].as_str(), rv["refresh_token"].as_str())
            {
                let renewed = Stored {
                    access_token: a.to_owned(),
                    refresh_token: r.to_owned(),
                    ..s
                };
                token_store::save(&renewed)?;
                (status, v) = self.raw(method, path, body, Some(a)).await?;
                self.stored = Some(renewed);
            }
        }
        if !status.is_success() {
            let msg = v["error"].as_str().map_or_else(|| v.to_string(), str::to_owned);
            if status == StatusCode::UNAUTHORIZED {
                bail!("{path}: {status}: {msg} (run `rampart login`)");
            }
            bail!("{path}: {status}: {msg}");
        }
        Ok(v)
    }
}
