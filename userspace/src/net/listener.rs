//! The listeners: plain HTTP (HTTP/1.1 and HTTP/2 with prior knowledge, h2c) and TLS (HTTP/1.1 and h2 chosen by
//! ALPN) on the same code path, a cap on open connections, the PROXY protocol from trusted load balancers,
//! per-connection enforcement of the deny list when XDP is not in force, and graceful shutdown that lets
//! in-flight requests finish.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http2;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio_rustls::TlsAcceptor;
use tracing::{debug, info, warn};

use super::h1;
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
    type Stream: AsyncRead + AsyncWrite + h1::ReadReady + Unpin + Send + 'static;
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
    let h2 = Arc::new(h2_builder(&limits));
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
        let serving = Serving {
            proxy: proxy.clone(),
            lists: lists.clone(),
            limits,
            h2: h2.clone(),
            watcher: graceful.watcher(),
            shutdown: shutdown.clone(),
        };
        tokio::spawn(async move {
            if let Err(e) = connection(stream, peer, transport, serving).await {
                debug!(%peer, error = %e, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    info!(?transport, "listener closed; draining open connections");
    // HTTP/2 connections are told to finish (GOAWAY); HTTP/1.1 ones close once idle. Every connection holds a
    // slot, so all slots being free again means every connection is gone.
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    let drained = async {
        // A closed semaphore (never, here) would also mean nothing is left to wait for.
        let ((), _all_free) = tokio::join!(graceful.shutdown(), slots.acquire_many(all));
    };
    tokio::select! {
        () = drained => info!(?transport, "all connections drained"),
        _ = tokio::time::sleep(limits.shutdown_timeout) => warn!(?transport, "shutdown timeout reached; closing remaining connections"),
    }
}

fn h2_builder(limits: &Limits) -> http2::Builder<TokioExecutor> {
    let mut builder = http2::Builder::new(TokioExecutor::new());
    builder
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(limits.keepalive_timeout / 2))
        .max_header_list_size(u32::try_from(limits.max_header_size).unwrap_or(u32::MAX));
    builder
}

/// What a connection task needs besides its socket.
struct Serving {
    proxy: Arc<Proxy>,
    lists: Arc<AccessLists>,
    limits: Limits,
    h2: Arc<http2::Builder<TokioExecutor>>,
    watcher: Watcher,
    shutdown: watch::Receiver<bool>,
}

async fn connection<S: AsyncRead + AsyncWrite + h1::ReadReady + Unpin + Send + 'static>(
    mut stream: S,
    peer: SocketAddr,
    transport: Transport,
    serving: Serving,
) -> anyhow::Result<()> {
    let Serving {
        proxy,
        lists,
        limits,
        h2,
        watcher,
        shutdown,
    } = serving;
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
    let h1_limits = h1::Limits {
        max_header_size: limits.max_header_size,
        keepalive_timeout: limits.keepalive_timeout,
    };
    // The TLS and HTTP/2 paths run boxed: a connection task's state is as large as its largest await, and
    // inline they tripled what every idle plain HTTP/1.1 connection holds.
    match transport {
        Transport::Plain => match h1::serve(stream, conn, proxy.clone(), h1_limits, shutdown, true).await? {
            h1::Ended::Closed => Ok(()),
            h1::Ended::H2(io, read) => {
                Box::pin(serve_h2(Prefixed::new(io, read.freeze()), conn, proxy, &h2, watcher)).await
            }
        },
        Transport::Tls => Box::pin(serve_tls(stream, conn, proxy, h1_limits, shutdown, &h2, watcher)).await,
    }
}

/// A TLS connection: the handshake, then HTTP/1.1 or h2 as ALPN chose, or nothing after a tls-alpn-01
/// validation handshake.
async fn serve_tls<S: AsyncRead + AsyncWrite + Unpin + Send + 'static>(
    stream: S,
    conn: Connection,
    proxy: Arc<Proxy>,
    h1_limits: h1::Limits,
    shutdown: watch::Receiver<bool>,
    h2: &http2::Builder<TokioExecutor>,
    watcher: Watcher,
) -> anyhow::Result<()> {
    let Some(config) = proxy.live().load().tls.as_ref().map(|t| Arc::clone(&t.config)) else {
        anyhow::bail!("TLS connection on a listener whose configuration has no TLS");
    };
    let tls = tokio::time::timeout(HANDSHAKE_TIMEOUT, TlsAcceptor::from(config).accept(stream))
        .await
        .map_err(|_| anyhow::anyhow!("TLS handshake timed out"))??;
    if tls.get_ref().1.alpn_protocol() == Some(crate::tls::challenge::ACME_TLS_ALPN) {
        // A tls-alpn-01 validation: the handshake itself was the answer (RFC 8737); no HTTP follows.
        debug!(peer = %conn.peer, "tls-alpn-01 validation handshake answered");
        let mut tls = tls;
        let _ = tokio::io::AsyncWriteExt::shutdown(&mut tls).await;
        return Ok(());
    }
    if tls.get_ref().1.alpn_protocol() == Some(b"h2") {
        serve_h2(tls, conn, proxy, h2, watcher).await
    } else {
        h1::serve(tls, conn, proxy, h1_limits, shutdown, false).await?;
        Ok(())
    }
}

/// HTTP/2 on one connection, by hyper; each stream runs the same pipeline.
async fn serve_h2<IO>(
    io: IO,
    conn: Connection,
    proxy: Arc<Proxy>,
    builder: &http2::Builder<TokioExecutor>,
    watcher: Watcher,
) -> anyhow::Result<()>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |req| {
        let proxy = proxy.clone();
        async move {
            // hyper writes HTTP/2 fields from the map only.
            let resp = proxy.handle(req, &conn).await.into_response();
            Ok::<_, std::convert::Infallible>(resp)
        }
    });
    let served = builder.serve_connection(TokioIo::new(io), service);
    watcher.watch(served).await.map_err(|e| anyhow::anyhow!("{e}"))
}

/// A stream whose first bytes were already read (the HTTP/2 preface): they are read again first.
struct Prefixed<S> {
    read: bytes::Bytes,
    inner: S,
}

impl<S> Prefixed<S> {
    fn new(inner: S, read: bytes::Bytes) -> Self {
        Self { read, inner }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Prefixed<S> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        if !self.read.is_empty() {
            let n = self.read.len().min(buf.remaining());
            let first = self.read.split_to(n);
            buf.put_slice(&first);
            return std::task::Poll::Ready(Ok(()));
        }
        std::pin::Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Prefixed<S> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        data: &[u8],
    ) -> std::task::Poll<io::Result<usize>> {
        std::pin::Pin::new(&mut self.inner).poll_write(cx, data)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
