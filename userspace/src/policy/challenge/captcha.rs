//! Checking a CAPTCHA token with its provider: a form POST of `secret`, `response` and `remoteip` to the
//! configured siteverify URL (the protocol Turnstile, hCaptcha and reCAPTCHA share), whose JSON answer says
//! `success`. HTTPS trusts the system's roots. Every check has a deadline; a provider that does not answer
//! in time fails the check (the client can try again), it never lets the client through.

use std::net::IpAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::config::schema::CaptchaConfig;

/// Longest provider answer read.
const MAX_ANSWER: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum CaptchaError {
    #[error("siteverify request: {0}")]
    Request(String),
    #[error("siteverify answered {0}")]
    Status(http::StatusCode),
    #[error("siteverify took longer than {0:?}")]
    Timeout(Duration),
    #[error("siteverify answer is not the expected JSON: {0}")]
    Answer(String),
}

pub struct CaptchaClient {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
}

impl CaptchaClient {
    pub fn new() -> Result<Self, CaptchaError> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls_native_certs::load_native_certs().certs {
            // A system root rustls cannot parse is skipped, as every TLS client does.
            let _ = roots.add(cert);
        }
        let tls = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| CaptchaError::Request(format!("TLS client configuration: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .build();
        Ok(Self {
            client: Client::builder(TokioExecutor::new()).build(connector),
        })
    }
}

fn form_encode(pairs: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        for (j, part) in [k, v].iter().enumerate() {
            if j == 1 {
                out.push('=');
            }
            for b in part.bytes() {
                if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                    out.push(char::from(b));
                } else {
                    out.push_str(&format!("%{b:02X}"));
                }
            }
        }
    }
    out
}

impl CaptchaClient {
    /// Whether the provider accepts `token` from `client`.
    pub async fn verify(&self, c: &CaptchaConfig, token: &str, client: IpAddr) -> Result<bool, CaptchaError> {
        let ip = client.to_string();
        let body = form_encode(&[("secret", &c.secret), ("response", token), ("remoteip", &ip)]);
        let req = Request::builder()
            .method(Method::POST)
            .uri(&c.verify_url)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::ACCEPT, "application/json")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| CaptchaError::Request(e.to_string()))?;
        let deadline = Duration::from_secs(c.timeout);
        let exchange = async {
            let resp = self
                .client
                .request(req)
                .await
                .map_err(|e| CaptchaError::Request(e.to_string()))?;
            if !resp.status().is_success() {
                return Err(CaptchaError::Status(resp.status()));
            }
            let bytes = Limited::new(resp.into_body(), MAX_ANSWER)
                .collect()
                .await
                .map_err(|e| CaptchaError::Request(e.to_string()))?
                .to_bytes();
            let answer: serde_json::Value =
                serde_json::from_slice(&bytes).map_err(|e| CaptchaError::Answer(e.to_string()))?;
            answer
                .get("success")
                .and_then(serde_json::Value::as_bool)
                .ok_or_else(|| CaptchaError::Answer("no boolean `success`".into()))
        };
        tokio::time::timeout(deadline, exchange)
            .await
            .map_err(|_| CaptchaError::Timeout(deadline))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_percent_encoded() {
        assert_eq!(form_encode(&[("a", "x y&z"), ("b", "é")]), "a=x%20y%26z&b=%C3%A9");
    }
}
