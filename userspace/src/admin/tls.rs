//! Optional TLS on the admin listener (`admin.tls`): the same axum application served over rustls, for an
//! admin API reached from another host. Handshakes run on their own tasks with a deadline, so a client that
//! stalls mid-handshake holds up nobody; the client address reaches the handlers as `ConnectInfo`, as on the
//! plain listener (the admin rate limit keys on it). On shutdown open connections finish their requests.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::graceful::GracefulShutdown;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tower::Service;
use tracing::{debug, warn};

use crate::config::schema::AdminTlsConfig;

const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum AdminTlsError {
    #[error("admin.tls.{key}: cannot read {path}: {message}")]
    Read {
        key: &'static str,
        path: String,
        message: String,
    },
    #[error("admin.tls: the certificate and key do not make a TLS configuration: {0}")]
    Config(String),
}

/// The rustls server configuration from `admin.tls` (TLS 1.2 and 1.3, HTTP/1.1 only: the API, the event
/// WebSocket and the dashboard need nothing else).
pub fn server_config(cfg: &AdminTlsConfig) -> Result<Arc<rustls::ServerConfig>, AdminTlsError> {
    let read = |key: &'static str, path: &std::path::Path| {
        std::fs::read(path).map_err(|e| AdminTlsError::Read {
            key,
            path: path.display().to_string(),
            message: e.to_string(),
        })
    };
    let chain_pem = read("cert_file", &cfg.cert_file)?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&chain_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| AdminTlsError::Read {
            key: "cert_file",
            path: cfg.cert_file.display().to_string(),
            message: format!("not PEM certificates: {e}"),
        })?;
    if chain.is_empty() {
        return Err(AdminTlsError::Read {
            key: "cert_file",
            path: cfg.cert_file.display().to_string(),
            message: "no certificate in the file".into(),
        });
    }
    let key = PrivateKeyDer::from_pem_slice(&read("key_file", &cfg.key_file)?).map_err(|e| AdminTlsError::Read {
        key: "key_file",
        path: cfg.key_file.display().to_string(),
        message: format!("no PEM private key: {e}"),
    })?;
    let mut config =
        rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| AdminTlsError::Config(e.to_string()))?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(|e| AdminTlsError::Config(e.to_string()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Serves `app` over TLS on `listener` until `shutdown` changes, then lets open connections finish (bounded).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    tls: Arc<rustls::ServerConfig>,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let acceptor = TlsAcceptor::from(tls);
    let graceful = GracefulShutdown::new();
    let http = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    loop {
        let (tcp, peer) = tokio::select! {
            _ = shutdown.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of descriptors and the like: wait rather than spin.
                    warn!(error = %e, "admin listener: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let acceptor = acceptor.clone();
        let app = app.clone();
        let http = http.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    debug!(client = %peer, error = %e, "admin TLS handshake failed");
                    return;
                }
                Err(_) => {
                    debug!(client = %peer, "admin TLS handshake timed out");
                    return;
                }
            };
            let service = hyper::service::service_fn(move |mut req: http::Request<Incoming>| {
                req.extensions_mut().insert(ConnectInfo::<SocketAddr>(peer));
                let mut app = app.clone();
                async move { app.call(req.map(axum::body::Body::new)).await }
            });
            let conn = http.serve_connection_with_upgrades(TokioIo::new(stream), service);
            if let Err(e) = watcher.watch(conn.into_owned()).await {
                debug!(client = %peer, error = %e, "admin TLS connection ended with an error");
            }
        });
    }
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown()).await.is_err() {
        warn!("admin connections still open after {DRAIN_TIMEOUT:?}; closing them");
    }
    Ok(())
}
