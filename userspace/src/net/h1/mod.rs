//! Serving HTTP/1.1 on one client connection: the proxy's own server side, as `proxy::upstream::h1` is its own
//! client side. HTTP/2 (h2c prior knowledge, or h2 by ALPN) is handed to hyper by the listener.
//!
//! Why not hyper's HTTP/1.1 server: per request it parsed into its own state machine, boxed a timer, and kept
//! each connection's read and write buffers and the pipeline's state allocated while idle (~35 KB per idle
//! keep-alive connection). Here one task runs the loop — read a head, run the pipeline, write the answer — and
//! an idle connection holds little more than its socket and a small read buffer.
//!
//! The loop, per request: read until a complete head (bounded by `max_header_size` → 431, by
//! `keepalive_timeout` for an idle or slow client → close), refuse ambiguous heads (`request`), hand the body
//! over whole when it arrived with the head or pump it from the socket while the pipeline runs (`body`), write
//! the response (`response`), then keep the connection or close it. Requests on one connection are answered
//! in order (pipelining is allowed, not parallel). After `101 Switching Protocols` the socket is handed to the
//! upgrade (`OnUpgrade`). On shutdown an idle connection closes at once; a busy one finishes its request and
//! closes.

mod body;
mod request;
mod response;

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::{Method, Request, StatusCode};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{oneshot, watch};
use tokio::time::Instant;
use tracing::debug;

pub use body::RequestBody;
use request::BodyFraming;
use response::{After, Answering};

use crate::proxy::{Connection, Proxy};

/// First read of a request goes into this much room; the buffer grows for larger heads. Released between
/// requests.
const READ_CHUNK: usize = 4096;
/// The HTTP/2 connection preface (RFC 9113 §3.4): a plain connection starting with it speaks h2c.
pub const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Largest request head; larger is 431.
    pub max_header_size: usize,
    /// How long an idle connection waits for its next request, and a client may take to send a head.
    pub keepalive_timeout: Duration,
}

/// Waits until a stream has bytes to read without lending it a buffer, so that an idle keep-alive connection
/// holds no read buffer (nginx frees its buffers the same way). Streams that cannot tell, or may hold decrypted
/// bytes already (TLS), answer at once and are read into a buffer as before.
pub trait ReadReady {
    fn read_ready(&self) -> impl Future<Output = std::io::Result<()>> + Send;
}

impl ReadReady for tokio::net::TcpStream {
    fn read_ready(&self) -> impl Future<Output = std::io::Result<()>> + Send {
        // `poll_read_ready` waits in the socket's own reader slot; `readable()` joined a locked waiter list,
        // which cost eight atomic operations per request on a keep-alive connection.
        std::future::poll_fn(|cx| self.poll_read_ready(cx))
    }
}

impl<S> ReadReady for tokio_rustls::server::TlsStream<S> {
    fn read_ready(&self) -> impl Future<Output = std::io::Result<()>> + Send {
        std::future::ready(Ok(()))
    }
}

/// A client connection, boxed for its life after an upgrade.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// The client's side of an upgraded connection, and the bytes it sent after the handshake that were already
/// read.
pub struct Upgraded {
    pub io: Box<dyn Io>,
    pub read_ahead: Bytes,
}

/// In a request's extensions when it is an upgrade handshake: resolves to the connection once the `101` has
/// been written to the client. (Extensions must be `Clone`; only the first clone to ask gets the connection.)
#[derive(Clone)]
pub struct OnUpgrade(Arc<std::sync::Mutex<Option<oneshot::Receiver<Upgraded>>>>);

impl OnUpgrade {
    pub async fn upgraded(self) -> Option<Upgraded> {
        let rx = self.0.lock().unwrap_or_else(|p| p.into_inner()).take()?;
        rx.await.ok()
    }
}

/// How a connection ended.
pub enum Ended<S> {
    Closed,
    /// A plain connection opened with the HTTP/2 preface: the socket and every byte read so far, for h2c.
    H2(S, BytesMut),
}

/// Serves requests on `io` until the client or the server ends the connection. `detect_h2` looks for the
/// HTTP/2 preface at the start (plain listeners; TLS chooses by ALPN before this is called).
pub async fn serve<S>(
    mut io: S,
    conn: Connection,
    proxy: Arc<Proxy>,
    limits: Limits,
    mut shutdown: watch::Receiver<bool>,
    detect_h2: bool,
) -> std::io::Result<Ended<S>>
where
    S: AsyncRead + AsyncWrite + ReadReady + Unpin + Send + 'static,
{
    // From here on `has_changed` tells whether shutdown began since (see the keep-alive decision below).
    let down_at_start = *shutdown.borrow_and_update();
    let mut buf = BytesMut::new();
    let mut out = BytesMut::new();
    let mut first = true;
    let idle = tokio::time::sleep(limits.keepalive_timeout);
    tokio::pin!(idle);
    let mut idle_deadline = idle.deadline();
    // One wait for shutdown for the connection's life: a `changed()` made for every read joined and left the
    // watch's waiter list (a lock and a list insert) on every request. It completes once, and the connection
    // returns when it does, so it is never polled again after that.
    let mut stop = shutdown.clone();
    let changed = async move {
        // An error means the daemon dropped the sender: it is going away, which is a shutdown too.
        let _ = stop.changed().await;
    };
    let stopping = registered_once(changed, shutdown.clone());
    tokio::pin!(stopping);
    loop {
        // A complete head, or the end of the connection.
        let head = loop {
            if first && detect_h2 && !buf.is_empty() && H2_PREFACE.starts_with(&buf[..buf.len().min(H2_PREFACE.len())])
            {
                if buf.len() >= H2_PREFACE.len() {
                    return Ok(Ended::H2(io, buf));
                }
            } else if !buf.is_empty() {
                match request::parse(&mut buf) {
                    Ok(Some(head)) => break head,
                    Ok(None) => {}
                    Err(refusal) => {
                        debug!(client = %conn.client, status = %refusal.status, reason = %refusal.reason, "request refused");
                        refuse(&mut io, &mut out, refusal.status, &refusal.reason).await;
                        return Ok(Ended::Closed);
                    }
                }
            }
            if buf.len() >= limits.max_header_size {
                let reason = format!("request head larger than {} bytes", limits.max_header_size);
                refuse(&mut io, &mut out, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, &reason).await;
                return Ok(Ended::Closed);
            }
            if buf.capacity() == 0 {
                // Idle: wait for the next request before giving the connection a buffer to read it into.
                tokio::select! {
                    biased;
                    ready = io.read_ready() => ready?,
                    () = crate::clock::reached(idle.as_mut(), idle_deadline) => return Ok(Ended::Closed),
                    () = &mut stopping => return Ok(Ended::Closed),
                }
            }
            buf.reserve(READ_CHUNK);
            tokio::select! {
                biased;
                read = io.read_buf(&mut buf) => match read {
                    Ok(0) => return Ok(Ended::Closed),
                    Ok(_) => {}
                    Err(e) => return Err(e),
                },
                () = crate::clock::reached(idle.as_mut(), idle_deadline) => return Ok(Ended::Closed),
                // Shutting down: an idle connection goes at once; one mid-head gets to finish its request.
                () = &mut stopping, if buf.is_empty() => return Ok(Ended::Closed),
            }
        };
        first = false;

        let answering = Answering {
            head_request: head.parts.method == Method::HEAD,
            version: head.parts.version,
            keep_alive: head.keep_alive,
        };
        let (body, pump) = match head.framing {
            BodyFraming::None => (RequestBody::empty(), None),
            BodyFraming::Length(n) if !head.expect_continue && buf.len() as u64 >= n => {
                (RequestBody::full(buf.split_to(n as usize).freeze()), None)
            }
            framing => {
                let (body, pump) = RequestBody::streaming(framing, head.expect_continue);
                (body, Some(pump))
            }
        };
        let mut req = Request::from_parts(head.parts, body);
        let upgrade = head.upgrade.then(|| {
            let (tx, rx) = oneshot::channel();
            req.extensions_mut()
                .insert(OnUpgrade(Arc::new(std::sync::Mutex::new(Some(rx)))));
            tx
        });

        // Boxed so that an idle connection does not carry the pipeline's state between requests. Written into
        // a fresh allocation: what is copied in is the future's captures, which sit together at its start
        // (hence `&conn`: a `Connection` by value was laid out at the far end of the ~4 KB state, and the copy
        // spanned all of it on every request).
        let mut handling = Box::into_pin(Box::write(Box::new_uninit(), proxy.handle(req, &conn)));
        let (answer, body_complete) = match pump {
            None => ((&mut handling).await, true),
            Some(mut pump) => {
                let resp = loop {
                    if pump.finished() {
                        break (&mut handling).await;
                    }
                    tokio::select! {
                        biased;
                        resp = &mut handling => break resp,
                        () = pump.step(&mut io, &mut buf) => {}
                    }
                };
                (resp, pump.complete(&mut buf))
            }
        };
        drop(handling);

        let answering = Answering {
            // A body left unread means the next bytes are not a request: the connection must close.
            // `has_changed` reads the version without the value's lock; the only change ever sent is the
            // shutdown, and a dropped sender (`Err`) is one too.
            keep_alive: answering.keep_alive
                && body_complete
                && !down_at_start
                && !shutdown.has_changed().unwrap_or(true),
            ..answering
        };
        let upgrade = upgrade.filter(|_| answer.response.status() == StatusCode::SWITCHING_PROTOCOLS);
        match response::write(&mut io, &mut out, answer.response, Some(&answer.added), answering).await? {
            After::Upgraded => {
                if let Some(tx) = upgrade {
                    let _ = tx.send(Upgraded {
                        io: Box::new(io),
                        read_ahead: buf.freeze(),
                    });
                }
                return Ok(Ended::Closed);
            }
            After::Close => {
                let _ = io.shutdown().await;
                return Ok(Ended::Closed);
            }
            After::KeepAlive => {}
        }
        // The timer is not moved per request: it fires at the deadline it was armed with and is re-armed then
        // if the connection was busy since (`clock::reached`), so a request costs no timer-wheel update.
        idle_deadline = Instant::from_std(crate::clock::coarse_now()) + limits.keepalive_timeout;
        // Between requests the connection gives its buffers back (pipelined bytes already read are kept): with
        // 10,000 idle keep-alive connections this is most of the proxy's memory.
        if buf.is_empty() {
            buf = BytesMut::new();
        }
        out = BytesMut::new();
    }
}

/// `changed`, a wait for the shutdown signal, polled only when it may be ready. Re-polling the watch's
/// `changed()` on every idle wait of a keep-alive connection took a lock round trip on its waiter entry each
/// time, though the entry registered on the first poll already holds this task's waker. Later polls by the
/// same task read the watch's version (a plain load) and poll `changed` only once it moved; a poll under
/// another waker re-registers.
fn registered_once(changed: impl Future<Output = ()>, probe: watch::Receiver<bool>) -> impl Future<Output = ()> {
    let mut changed = Box::pin(changed);
    let mut waker: Option<std::task::Waker> = None;
    std::future::poll_fn(move |cx| {
        if let Some(w) = &waker
            && w.will_wake(cx.waker())
            && matches!(probe.has_changed(), Ok(false))
        {
            return std::task::Poll::Pending;
        }
        let polled = changed.as_mut().poll(cx);
        waker = polled.is_pending().then(|| cx.waker().clone());
        polled
    })
}

/// Answers a request that cannot be served, and closes (a refused head leaves the stream in no known state).
async fn refuse<S: AsyncWrite + Unpin>(io: &mut S, out: &mut BytesMut, status: StatusCode, reason: &str) {
    let body = format!(
        "{} {}: {reason}\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    );
    let mut resp = crate::proxy::local_response(status, &body);
    resp.headers_mut()
        .insert(http::header::CONNECTION, http::HeaderValue::from_static("close"));
    let answering = Answering {
        head_request: false,
        version: http::Version::HTTP_11,
        keep_alive: false,
    };
    let _ = response::write(io, out, resp, None, answering).await;
    let _ = io.shutdown().await;
}

#[cfg(test)]
mod tests {
    use std::task::{Context, Poll, Waker};
    use std::time::Duration;

    use tokio::sync::watch;

    use super::registered_once;

    fn shutdown_wait(rx: &watch::Receiver<bool>) -> impl Future<Output = ()> + use<> {
        let mut waiting = rx.clone();
        registered_once(
            async move {
                let _ = waiting.changed().await;
            },
            rx.clone(),
        )
    }

    /// Fails unless `wait` wakes its task by itself: a timeout wrapper would poll it again when the deadline
    /// passes, and so hide a wake that never came.
    async fn woken_before_a_deadline(wait: impl Future<Output = ()>) {
        tokio::select! {
            biased;
            () = tokio::time::sleep(Duration::from_secs(5)) => panic!("the wait was never woken"),
            () = wait => {}
        }
    }

    /// Polled once by another waker and then by this task, the wait must still wake this task on shutdown:
    /// the cheap path is taken only for the waker that is registered.
    #[tokio::test]
    async fn the_shutdown_wait_wakes_the_task_that_polls_it_last() {
        let (tx, rx) = watch::channel(false);
        let mut stopping = std::pin::pin!(shutdown_wait(&rx));
        let mut elsewhere = Context::from_waker(Waker::noop());
        assert!(stopping.as_mut().poll(&mut elsewhere).is_pending());
        for _ in 0..3 {
            let polled = std::future::poll_fn(|cx| Poll::Ready(stopping.as_mut().poll(cx))).await;
            assert!(polled.is_pending(), "nothing was sent yet");
        }
        let sender = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            tx.send_replace(true);
            tx
        });
        woken_before_a_deadline(stopping).await;
        drop(sender.await);
    }

    /// A dropped sender is a shutdown too.
    #[tokio::test]
    async fn the_shutdown_wait_ends_when_the_sender_is_gone() {
        let (tx, rx) = watch::channel(false);
        let mut stopping = std::pin::pin!(shutdown_wait(&rx));
        assert!(
            std::future::poll_fn(|cx| Poll::Ready(stopping.as_mut().poll(cx)))
                .await
                .is_pending()
        );
        drop(tx);
        woken_before_a_deadline(stopping).await;
    }
}
