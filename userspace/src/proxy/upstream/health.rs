//! Active health checks: each server of a pool with `health_check.enabled` is probed on its own timer — HTTP
//! (method, path, headers, expected statuses, expected body text), TCP connect, or a custom program (exit 0 =
//! healthy) — and marked unhealthy after `unhealthy_threshold` consecutive failures, healthy again after
//! `healthy_threshold` successes. An unhealthy server is probed with exponential backoff (up to 8× the interval)
//! so a dead fleet costs little. Checks never block requests; they only flip `Server::healthy`.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request};
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use super::{Server, UpstreamPool};
use crate::config::schema::{HealthCheckConfig, HealthCheckKind};

/// Response bodies read by HTTP checks at most (enough for an "OK" page, never a whole download).
const MAX_BODY: usize = 64 * 1024;
/// Backoff cap for unhealthy servers, as a multiple of the interval.
const MAX_BACKOFF_SHIFT: u32 = 3;

type ProbeClient = Client<HttpConnector, Empty<Bytes>>;

/// Starts one probe task per server of `pool` when checks are enabled; the caller aborts them on reload.
pub fn spawn(pool: &Arc<UpstreamPool>) -> Vec<JoinHandle<()>> {
    if !pool.health_check.enabled {
        return Vec::new();
    }
    let mut connector = HttpConnector::new();
    connector.set_connect_timeout(Some(Duration::from_secs(pool.health_check.timeout)));
    // A fresh connection per probe: a check must see whether the server accepts connections now.
    let client: ProbeClient = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(0)
        .build(connector);
    pool.servers
        .iter()
        .map(|server| {
            let (server, client, cfg, upstream) = (
                Arc::clone(server),
                client.clone(),
                pool.health_check.clone(),
                pool.name.clone(),
            );
            tokio::spawn(async move { probe_loop(upstream, server, cfg, client).await })
        })
        .collect()
}

async fn probe_loop(upstream: String, server: Arc<Server>, cfg: HealthCheckConfig, client: ProbeClient) {
    let interval = Duration::from_secs(cfg.interval.max(1));
    let (mut successes, mut failures) = (0u32, 0u32);
    loop {
        let result = probe(&server, &cfg, &client, &upstream).await;
        let healthy = server.healthy.load(Ordering::Relaxed);
        match result {
            Ok(()) => {
                successes += 1;
                failures = 0;
                if !healthy && successes >= cfg.healthy_threshold.max(1) {
                    server.healthy.store(true, Ordering::Relaxed);
                    info!(upstream, server = server.id, "upstream server healthy again");
                }
            }
            Err(reason) => {
                failures += 1;
                successes = 0;
                if healthy && failures >= cfg.unhealthy_threshold.max(1) {
                    server.healthy.store(false, Ordering::Relaxed);
                    warn!(
                        upstream,
                        server = server.id,
                        reason,
                        "upstream server marked unhealthy by health checks"
                    );
                }
            }
        }
        let backoff = if server.healthy.load(Ordering::Relaxed) {
            0
        } else {
            failures.saturating_sub(cfg.unhealthy_threshold).min(MAX_BACKOFF_SHIFT)
        };
        tokio::time::sleep(interval * (1 << backoff)).await;
    }
}

async fn probe(server: &Server, cfg: &HealthCheckConfig, client: &ProbeClient, upstream: &str) -> Result<(), String> {
    let timeout = Duration::from_secs(cfg.timeout.max(1));
    match cfg.kind {
        HealthCheckKind::Tcp => {
            let connect = Duration::from_secs(cfg.connect_timeout.unwrap_or(cfg.timeout).max(1));
            match tokio::time::timeout(
                connect,
                tokio::net::TcpStream::connect((server.host.as_str(), server.port)),
            )
            .await
            {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(e)) => Err(format!("connect failed: {e}")),
                Err(_) => Err("connect timed out".into()),
            }
        }
        HealthCheckKind::Http => {
            let uri = format!("http://{}{}", server.authority, cfg.path);
            let method = Method::from_bytes(cfg.method.as_bytes()).unwrap_or(Method::GET);
            let mut req = Request::builder().method(method).uri(&uri);
            for (k, v) in &cfg.headers {
                req = req.header(k.as_str(), v.as_str());
            }
            let req = req
                .body(Empty::new())
                .map_err(|e| format!("bad health check request {uri}: {e}"))?;
            let exchange = async {
                let resp = client.request(req).await.map_err(|e| format!("request failed: {e}"))?;
                let status = resp.status().as_u16();
                if !cfg.expected_status.contains(&status) {
                    return Err(format!("status {status}, expected one of {:?}", cfg.expected_status));
                }
                if let Some(want) = &cfg.expected_body {
                    let body = Limited::new(resp.into_body(), MAX_BODY)
                        .collect()
                        .await
                        .map_err(|e| format!("reading body: {e}"))?
                        .to_bytes();
                    if !String::from_utf8_lossy(&body).contains(want.as_str()) {
                        return Err(format!("body does not contain {want:?}"));
                    }
                }
                Ok(())
            };
            tokio::time::timeout(timeout, exchange)
                .await
                .unwrap_or_else(|_| Err("timed out".into()))
        }
        HealthCheckKind::Custom => {
            let Some(script) = &cfg.script else {
                return Err("no script configured".into());
            };
            let mut cmd = tokio::process::Command::new(script);
            cmd.env("RAMPART_UPSTREAM", upstream)
                .env("RAMPART_SERVER_HOST", &server.host)
                .env("RAMPART_SERVER_PORT", server.port.to_string())
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .kill_on_drop(true);
            let run = async {
                let status = cmd
                    .status()
                    .await
                    .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
                if status.success() {
                    Ok(())
                } else {
                    Err(format!("{} exited with {status}", script.display()))
                }
            };
            tokio::time::timeout(timeout, run)
                .await
                .unwrap_or_else(|_| Err("script timed out (killed)".into()))
        }
    }
}
