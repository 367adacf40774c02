//! The listeners: plain HTTP (HTTP/1.1 and HTTP/2 with prior knowledge, h2c) and TLS (HTTP/1.1 and h2 chosen by
//! ALPN) on the same code path, a cap on open connections, the PROXY protocol from trusted load balancers,
//! per-connection enforcement of the deny list when XDP is not in force, and graceful shutdown that lets
//! in-flight requests finish.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio_rustls::TlsAcceptor;
use tracing::{debug, info, warn};

use super::proxy_protocol::{self, Header};
use crate::access::{AccessLists, L7Verdict};
use crate::proxy::{Connection, Proxy};

/// Connection-level limits from `server`.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_connections: usize,
    pub keepalive_timeout: Duration,
    pub max_header_size: usize,
    pub shutdown_timeout: Duration,
    pub proxy_protocol: bool,
}

/// What a listener speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Plain,
    Tls,
}

/// How long a client may take to send the PROXY header or finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Binds with a clear error naming the address (the common failures are "in use" and "permission denied").
pub async fn bind(addr: SocketAddr, what: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {addr} for the {what}: {e}"))
}

/// Something that accepts client connections: tokio's listener (epoll), or an io_uring worker's
/// (`uring::UringListener`). Everything after the accept is the same code for both.
pub trait Accept {
    type Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    /// The next connection, with Nagle's algorithm already off (responses are written whole).
    fn accept(&self) -> impl Future<Output = io::Result<(Self::Stream, SocketAddr)>>;
}

impl Accept for TcpListener {
    type Stream = TcpStream;

    async fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let (stream, peer) = TcpListener::accept(self).await?;
        let _ = stream.set_nodelay(true);
        Ok((stream, peer))
    }
}

/// Serves until `shutdown` turns true, then stops accepting and waits up to `limits.shutdown_timeout` for
/// open connections to finish their in-flight requests. `slots` caps open connections; listeners that share
/// one cap (the io_uring workers) share one semaphore.
#[allow(clippy::too_many_arguments)] // one call per I/O engine; a struct would only rename these
pub async fn serve<L: Accept>(
    listener: L,
    transport: Transport,
    proxy: Arc<Proxy>,
    lists: Arc<AccessLists>,
    limits: Limits,
    slots: Arc<Semaphore>,
    mut shutdown: watch::Receiver<bool>,
) {
    let graceful = GracefulShutdown::new();
    let builder = Arc::new(http_builder(&limits));
    loop {
        // At the cap, stop accepting: new connections wait in the kernel backlog instead of being served badly.
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            _ = shutdown.changed() => break,
        };
        let (stream, peer) = tokio::select! {
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
        let (proxy, lists, builder, watcher) = (proxy.clone(), lists.clone(), builder.clone(), graceful.watcher());
        tokio::spawn(async move {
            if let Err(e) = connection(stream, peer, transport, proxy, lists, limits, builder, watcher).await {
                debug!(%peer, error = %e, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    info!(?transport, "listener closed; draining open connections");
    tokio::select! {
        _ = graceful.shutdown() => info!(?transport, "all connections drained"),
        _ = tokio::time::sleep(limits.shutdown_timeout) => warn!(?transport, "shutdown timeout reached; closing remaining connections"),
    }
}

fn http_builder(limits: &Limits) -> auto::Builder<TokioExecutor> {
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
        .keep_alive_interval(Some(limits.keepalive_timeout / 2))
        .max_header_list_size(u32::try_from(limits.max_header_size).unwrap_or(u32::MAX));
    builder
}

#[allow(clippy::too_many_arguments)] // one call site; bundling these into a struct would only rename them
async fn connection<S: AsyncRead + AsyncWrite + Unpin + Send + 'static>(
    mut stream: S,
    peer: SocketAddr,
    transport: Transport,
    proxy: Arc<Proxy>,
    lists: Arc<AccessLists>,
    limits: Limits,
    builder: Arc<auto::Builder<TokioExecutor>>,
    watcher: Watcher,
) -> anyhow::Result<()> {
    // A dual-stack listener reports IPv4 clients as `::ffff:a.b.c.d`; everything downstream (logs,
    // X-Forwarded-For, address lists) must see the plain IPv4 address.
    let peer = SocketAddr::new(peer.ip().to_canonical(), peer.port());
    let mut client = peer.ip();
    if limits.proxy_protocol {
        let runtime = proxy.live().load();
        if !runtime.trusted_proxies.iter().any(|c| c.contains(&peer.ip())) {
            anyhow::bail!("PROXY protocol header refused from untrusted peer {peer}");
        }
        match proxy_protocol::read_header(&mut stream, HANDSHAKE_TIMEOUT).await? {
            Header::Proxied { source, .. } => client = source.ip().to_canonical(),
            Header::Local => {}
        }
    }
    // Without XDP the deny list is enforced here, before a byte of HTTP is read: the closest L7 gets to a drop.
    if lists.l7_verdict(client) == L7Verdict::Deny {
        debug!(%client, "connection refused: source on the deny list (L7 enforcement)");
        return Ok(());
    }
    let conn = Connection {
        peer,
        client,
        tls: transport == Transport::Tls,
    };
    match transport {
        Transport::Plain => serve_http(stream, conn, proxy, &builder, watcher).await,
        Transport::Tls => {
            let Some(config) = proxy.live().load().tls.as_ref().map(|t| Arc::clone(&t.config)) else {
                anyhow::bail!("TLS connection on a listener whose configuration has no TLS");
            };
            let tls = tokio::time::timeout(HANDSHAKE_TIMEOUT, TlsAcceptor::from(config).accept(stream))
                .await
                .map_err(|_| anyhow::anyhow!("TLS handshake timed out"))??;
            serve_http(tls, conn, proxy, &builder, watcher).await
        }
    }
}

async fn serve_http<IO>(
    io: IO,
    conn: Connection,
    proxy: Arc<Proxy>,
    builder: &auto::Builder<TokioExecutor>,
    watcher: Watcher,
) -> anyhow::Result<()>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |req| {
        let proxy = proxy.clone();
        async move { Ok::<_, std::convert::Infallible>(proxy.handle(req, conn).await) }
    });
    let served = builder
        .serve_connection_with_upgrades(TokioIo::new(io), service)
        .into_owned();
    watcher.watch(served).await.map_err(|e| anyhow::anyhow!("{e}"))
}
