//! The io_uring listener mode (`server.io: io_uring`): client sockets are accepted, read and written through
//! io_uring (tokio-uring) instead of epoll readiness, on worker threads of their own.
//!
//! Why tokio-uring and not compio: tokio-uring runs its ring inside a current-thread tokio runtime, so on an
//! io_uring worker everything else a request touches — the upstream connection pool, timers, TLS
//! (tokio-rustls), hyper's executor — is the same tokio code as in epoll mode, on the same thread. compio is
//! better maintained but is a runtime of its own: the whole pipeline would have to be ported to it, or every
//! upstream read would wake across runtimes.
//!
//! `UringStream` adapts tokio-uring's owned-buffer operations to tokio's `AsyncRead`/`AsyncWrite`, so the
//! listener code (PROXY protocol, TLS, HTTP/1.1, h2, upgrades) is shared with epoll mode unchanged. Reads go
//! into a buffer owned by the stream and are copied out; a write copies the caller's bytes and completes in
//! the background, and the next write or flush waits for it — the semantics of a one-buffer `BufWriter`.
//!
//! This module must not be used outside an io_uring worker thread: a `UringStream` is bound to the thread that
//! accepted it (see `send_wrapper`), which is always that worker, because its runtime is single-threaded.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use send_wrapper::SendWrapper;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{Semaphore, watch};
use tracing::{error, info};

use super::listener::{self, Limits, Transport};
use crate::access::AccessLists;
use crate::proxy::Proxy;

/// The most one io_uring read or write moves at once.
const BUF_SIZE: usize = 16 * 1024;
/// What a connection's read buffer starts at and returns to once reads are small again, and the largest
/// write buffer kept between writes. An idle keep-alive connection always has a read in flight, which owns
/// its buffer: keeping that small is what keeps 10,000 idle connections cheap (nginx's idle connections hold
/// about 1 KB); a body arriving fast fills the buffer and the next read gets `BUF_SIZE`.
const BUF_SMALL: usize = 4 * 1024;

/// The buffer for the next read after one that returned `n` bytes into `buf`.
fn next_read_buffer(mut buf: Vec<u8>, n: usize) -> Vec<u8> {
    if n == buf.capacity() && buf.capacity() < BUF_SIZE {
        Vec::with_capacity(BUF_SIZE)
    } else if n < BUF_SMALL && buf.capacity() > BUF_SMALL {
        Vec::with_capacity(BUF_SMALL)
    } else {
        buf.clear();
        buf
    }
}

/// The write buffer to keep once a write has completed: large ones are given back.
fn kept_write_buffer(buf: Vec<u8>) -> Vec<u8> {
    if buf.capacity() > BUF_SMALL { Vec::new() } else { buf }
}

type ReadOp = Pin<Box<dyn Future<Output = (io::Result<usize>, Vec<u8>)>>>;
type WriteOp = Pin<Box<dyn Future<Output = (io::Result<()>, Vec<u8>)>>>;

enum ReadState {
    /// `buf[pos..]` holds bytes read but not yet handed out.
    Idle {
        buf: Vec<u8>,
        pos: usize,
    },
    Busy(ReadOp),
}

enum WriteState {
    Idle(Vec<u8>),
    Busy(WriteOp),
}

struct Inner {
    socket: Rc<tokio_uring::net::TcpStream>,
    read: ReadState,
    write: WriteState,
}

/// A client connection driven by io_uring, usable wherever tokio's I/O traits are expected.
///
/// `Send` only in name: hyper requires upgradable connections to be `Send`, and tokio-uring's sockets are
/// not. `SendWrapper` makes any use from another thread a panic instead of a data race; none happens,
/// because every task touching the stream runs on the worker's current-thread runtime.
pub struct UringStream {
    inner: SendWrapper<Inner>,
}

impl UringStream {
    pub fn new(socket: tokio_uring::net::TcpStream) -> Self {
        Self {
            inner: SendWrapper::new(Inner {
                socket: Rc::new(socket),
                read: ReadState::Idle {
                    buf: Vec::with_capacity(BUF_SMALL),
                    pos: 0,
                },
                write: WriteState::Idle(Vec::new()),
            }),
        }
    }
}

impl Inner {
    /// Waits for the write in flight, if any; its buffer becomes reusable.
    fn poll_write_done(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let WriteState::Busy(op) = &mut self.write {
            let (result, buf) = ready!(op.as_mut().poll(cx));
            self.write = WriteState::Idle(kept_write_buffer(buf));
            result?;
        }
        Poll::Ready(Ok(()))
    }
}

/// io_uring reads complete into owned buffers; readiness without a read is not on offer.
impl crate::net::h1::ReadReady for UringStream {
    fn read_ready(&self) -> impl Future<Output = io::Result<()>> + Send {
        std::future::ready(Ok(()))
    }
}

impl AsyncRead for UringStream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, out: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let inner = &mut *self.get_mut().inner;
        loop {
            match &mut inner.read {
                ReadState::Idle { buf, pos } if *pos < buf.len() => {
                    let n = out.remaining().min(buf.len() - *pos);
                    out.put_slice(&buf[*pos..*pos + n]);
                    *pos += n;
                    return Poll::Ready(Ok(()));
                }
                ReadState::Idle { buf, .. } => {
                    // Everything handed out: `buf.len()` is what the last read returned.
                    let last = buf.len();
                    let buf = next_read_buffer(std::mem::take(buf), last);
                    let socket = Rc::clone(&inner.socket);
                    inner.read = ReadState::Busy(Box::pin(async move { socket.read(buf).await }));
                }
                ReadState::Busy(op) => {
                    let (result, buf) = ready!(op.as_mut().poll(cx));
                    inner.read = ReadState::Idle { buf, pos: 0 };
                    // Zero bytes read is end of stream: returning with nothing put into `out` says so.
                    if result? == 0 {
                        return Poll::Ready(Ok(()));
                    }
                }
            }
        }
    }
}

impl AsyncWrite for UringStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let inner = &mut *self.get_mut().inner;
        ready!(inner.poll_write_done(cx))?;
        // No write is in flight now: the state is idle and holds the buffer.
        let mut buf = match std::mem::replace(&mut inner.write, WriteState::Idle(Vec::new())) {
            WriteState::Idle(buf) => buf,
            WriteState::Busy(_) => Vec::new(),
        };
        buf.clear();
        let n = data.len().min(BUF_SIZE);
        // Exactly what this write needs: a small response leaves a small buffer behind.
        buf.reserve_exact(n);
        buf.extend_from_slice(&data[..n]);
        let socket = Rc::clone(&inner.socket);
        let mut op: WriteOp = Box::pin(async move { socket.write_all(buf).await });
        // Poll once so the operation is submitted now rather than at the next flush.
        match op.as_mut().poll(cx) {
            Poll::Ready((result, buf)) => {
                inner.write = WriteState::Idle(kept_write_buffer(buf));
                result?;
            }
            Poll::Pending => inner.write = WriteState::Busy(op),
        }
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().inner.poll_write_done(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let inner = &mut *self.get_mut().inner;
        ready!(inner.poll_write_done(cx))?;
        match inner.socket.shutdown(std::net::Shutdown::Write) {
            // The peer may have closed first; shutting down our half is then moot.
            Err(e) if e.kind() == io::ErrorKind::NotConnected => Poll::Ready(Ok(())),
            other => Poll::Ready(other),
        }
    }
}

/// Whether this kernel lets the process create an io_uring (it may be missing, disabled by
/// `kernel.io_uring_disabled`, or forbidden by a seccomp policy, as container runtimes often do).
pub fn available() -> io::Result<()> {
    tokio_uring::uring_builder().build(8).map(drop)
}

/// A worker's runtime. COOP_TASKRUN: a completion's task work waits for the worker's next transition into
/// the kernel instead of an IPI interrupting it. Under TLS at 50 connections 27% of the worker's CPU went to
/// spinning on a socket lock (perf), likely because the IPI made it run that work while the loopback softirq
/// still held the lock; with the flag, io_uring TLS went from 0.70–0.78x nginx to 1.03x (benches/l7, same-run
/// A/B).
/// Kernels before 5.19 lack the flag: the ring is then built without it.
fn new_runtime() -> io::Result<tokio_uring::Runtime> {
    let mut urb = tokio_uring::uring_builder();
    urb.setup_coop_taskrun();
    tokio_uring::Runtime::new(tokio_uring::builder().uring_builder(&urb))
        .or_else(|_| tokio_uring::Runtime::new(&tokio_uring::builder()))
}

/// Starts `workers` threads, each with its own io_uring runtime accepting from clones of every listening
/// socket in `sockets`, and returns a future that ends once every worker has drained its connections and
/// stopped (after `shutdown`). Each listener's connection cap is shared by all workers. Call `available`
/// first: a worker whose ring cannot be created logs why and stops.
pub fn start(
    sockets: Vec<(std::net::TcpListener, Transport)>,
    proxy: Arc<Proxy>,
    lists: Arc<AccessLists>,
    limits: Limits,
    shutdown: watch::Receiver<bool>,
    workers: usize,
) -> io::Result<impl Future<Output = ()> + Send> {
    let mut shared = Vec::with_capacity(sockets.len());
    for (socket, transport) in sockets {
        // io_uring honours O_NONBLOCK by failing with EAGAIN instead of waiting; the ring does the waiting.
        socket.set_nonblocking(false)?;
        shared.push((socket, transport, Arc::new(Semaphore::new(limits.max_connections))));
    }
    let mut handles = Vec::with_capacity(workers);
    for i in 0..workers.max(1) {
        let mine = shared
            .iter()
            .map(|(socket, transport, slots)| Ok((socket.try_clone()?, *transport, slots.clone())))
            .collect::<io::Result<Vec<_>>>()?;
        let (proxy, lists, shutdown) = (proxy.clone(), lists.clone(), shutdown.clone());
        let handle = std::thread::Builder::new()
            .name(format!("rampart-uring-{i}"))
            .spawn(move || {
                let runtime = match new_runtime() {
                    Ok(rt) => rt,
                    Err(e) => {
                        error!(worker = i, error = %e, "io_uring worker could not create its ring; it serves nothing");
                        return;
                    }
                };
                runtime.block_on(async move {
                    let serving = mine.into_iter().map(|(socket, transport, slots)| {
                        let (proxy, lists, shutdown) = (proxy.clone(), lists.clone(), shutdown.clone());
                        tokio_uring::spawn(async move {
                            listener::serve(
                                UringListener::new(socket),
                                transport,
                                proxy,
                                lists,
                                limits,
                                slots,
                                shutdown,
                            )
                            .await;
                        })
                    });
                    for task in serving.collect::<Vec<_>>() {
                        let _ = task.await;
                    }
                });
            })?;
        handles.push(handle);
    }
    info!(
        workers = handles.len(),
        listeners = shared.len(),
        "io_uring workers started"
    );
    Ok(async move {
        let _ = tokio::task::spawn_blocking(move || {
            for h in handles {
                let _ = h.join();
            }
        })
        .await;
    })
}

/// Accepts on one io_uring worker from a clone of the proxy's listening socket.
pub struct UringListener {
    inner: tokio_uring::net::TcpListener,
}

impl UringListener {
    /// Must be called on the worker thread, inside its tokio-uring runtime.
    pub fn new(socket: std::net::TcpListener) -> Self {
        Self {
            inner: tokio_uring::net::TcpListener::from_std(socket),
        }
    }
}

impl super::listener::Accept for UringListener {
    type Stream = UringStream;

    async fn accept(&self) -> io::Result<(UringStream, SocketAddr)> {
        let (stream, peer) = self.inner.accept().await?;
        let _ = stream.set_nodelay(true);
        Ok((UringStream::new(stream), peer))
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;
    use crate::net::listener::Accept;

    #[test]
    fn read_buffers_grow_when_filled_and_shrink_when_reads_are_small_again() {
        let small = Vec::with_capacity(BUF_SMALL);
        let grown = next_read_buffer(small, BUF_SMALL);
        assert!(grown.capacity() >= BUF_SIZE, "a full read asks for a large buffer");
        let kept = next_read_buffer(grown, BUF_SIZE / 2);
        assert!(kept.capacity() >= BUF_SIZE, "a large read keeps it");
        let shrunk = next_read_buffer(kept, 100);
        assert!(
            shrunk.capacity() < BUF_SIZE,
            "a small read gives it back: {}",
            shrunk.capacity()
        );
        assert!(next_read_buffer(shrunk, 100).capacity() >= BUF_SMALL.min(100));
    }

    #[test]
    fn only_small_write_buffers_are_kept_between_writes() {
        assert_eq!(kept_write_buffer(Vec::with_capacity(BUF_SIZE)).capacity(), 0);
        assert!(kept_write_buffer(Vec::with_capacity(200)).capacity() >= 200);
    }

    /// Runs `f` on a fresh tokio-uring runtime; the kernel of this machine kind supports io_uring.
    fn on_uring<F: Future<Output = ()>>(f: F) {
        tokio_uring::start(f);
    }

    #[test]
    fn bytes_written_by_a_peer_are_read_back_in_order_and_eof_is_seen() {
        on_uring(async {
            let std_listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            let addr = std_listener.local_addr().expect("addr");
            let listener = UringListener::new(std_listener);
            let payload: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
            let expected = payload.clone();
            let writer = std::thread::spawn(move || {
                use std::io::Write;
                let mut s = std::net::TcpStream::connect(addr).expect("connect");
                s.write_all(&payload).expect("write");
            });
            let (mut stream, _) = listener.accept().await.expect("accept");
            let mut got = Vec::new();
            stream.read_to_end(&mut got).await.expect("read");
            writer.join().expect("writer thread");
            assert_eq!(got.len(), expected.len());
            assert!(got == expected, "bytes came back altered or out of order");
        });
    }

    #[test]
    fn writes_larger_than_the_buffer_all_arrive_after_flush_and_shutdown() {
        on_uring(async {
            let std_listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            let addr = std_listener.local_addr().expect("addr");
            let listener = UringListener::new(std_listener);
            let reader = std::thread::spawn(move || {
                use std::io::Read;
                let mut s = std::net::TcpStream::connect(addr).expect("connect");
                let mut got = Vec::new();
                s.read_to_end(&mut got).expect("read");
                got
            });
            let (mut stream, _) = listener.accept().await.expect("accept");
            let payload: Vec<u8> = (0..100_000u32).map(|i| (i % 253) as u8).collect();
            stream.write_all(&payload).await.expect("write");
            stream.flush().await.expect("flush");
            stream.shutdown().await.expect("shutdown");
            drop(stream);
            let got = reader.join().expect("reader thread");
            assert!(
                got == payload,
                "the peer received {} of {} bytes or altered ones",
                got.len(),
                payload.len()
            );
        });
    }
}
