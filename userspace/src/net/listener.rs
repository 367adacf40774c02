//! The plain-HTTP listener: HTTP/1.1 and HTTP/2 with prior knowledge (h2c) on one port, a cap on open
//! connections, and graceful shutdown that lets in-flight requests finish.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tracing::{debug, info, warn};

use crate::access::{AccessLists, L7Verdict};
use crate::proxy::{Proxy, RequestContext};

/// Connection-level limits from `server`.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_connections: usize,
    pub keepalive_timeout: Duration,
    pub max_header_size: usize,
    pub shutdown_timeout: Duration,
}

/// Binds with a clear error naming the address (the common failures are "in use" and "permission denied").
pub async fn bind(addr: SocketAddr, what: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {addr} for the {what}: {e}"))
}

/// Serves until `shutdown` turns true, then stops accepting and waits up to `limits.shutdown_timeout` for
/// open connections to finish their in-flight requests.
pub async fn serve(
    listener: TcpListener,
    proxy: Arc<Proxy>,
    lists: Arc<AccessLists>,
    limits: Limits,
    mut shutdown: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .keep_alive(true)
        // Also bounds how long an idle keep-alive connection waits for its next request.
        .header_read_timeout(limits.keepalive_timeout)
        .max_buf_size(limits.max_header_size.max(8192));
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(limits.max_header_size).unwrap_or(u32::MAX));
    let builder = Arc::new(builder);

    loop {
        // At the cap, stop accepting: new connections wait in the kernel backlog instead of being served badly.
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            _ = shutdown.changed() => break,
        };
        let (stream, client) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // EMFILE and friends: back off briefly instead of spinning.
                    warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => break,
        };
        // A dual-stack listener reports IPv4 clients as `::ffff:a.b.c.d`; everything downstream (logs,
        // X-Forwarded-For, address lists) must see the plain IPv4 address.
        let client = SocketAddr::new(client.ip().to_canonical(), client.port());
        // Without XDP the deny list is enforced here, before a byte is read: the closest L7 gets to a drop.
        if lists.l7_verdict(client.ip()) == L7Verdict::Deny {
            debug!(%client, "connection refused: source on the deny list (L7 enforcement)");
            continue;
        }
        if let Err(e) = stream.set_nodelay(true) {
            debug!(error = %e, "TCP_NODELAY failed");
        }
        let proxy = proxy.clone();
        let service = service_fn(move |req| {
            let proxy = proxy.clone();
            async move {
                let ctx = RequestContext { client, scheme: "http" };
                Ok::<_, std::convert::Infallible>(proxy.handle(req, ctx).await)
            }
        });
        let conn = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), service)
            .into_owned();
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                debug!(%client, error = %e, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    info!("proxy listener closed; draining open connections");
    tokio::select! {
        _ = graceful.shutdown() => info!("all connections drained"),
        _ = tokio::time::sleep(limits.shutdown_timeout) => warn!("shutdown timeout reached; closing remaining connections"),
    }
}
