//! Keep-alive connections to one upstream server. A connection is taken for one request and comes back only
//! when that request's response body has been relayed to the end (`Pooled::release`); a connection whose
//! response was abandoned is dropped, and hyper closes it, because its state on the wire is unknown.
//! Idle connections are bounded in number and age.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::combinators::BoxBody;
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tracing::debug;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
pub type UpstreamBody = BoxBody<Bytes, BoxError>;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Idle connections kept per server; more are closed when they come back.
const MAX_IDLE: usize = 512;
/// How long a returned connection may wait to be ready before it is given up.
const READY_WAIT: Duration = Duration::from_millis(100);

/// Why no response came back from the server.
#[derive(Debug)]
pub enum SendError {
    /// No connection could be made: nothing reached the server.
    Connect(std::io::Error),
    /// The exchange failed after the request started.
    Exchange(hyper::Error),
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Connect(e) => write!(f, "connect: {e}"),
            Self::Exchange(e) => write!(f, "{e}"),
        }
    }
}

#[derive(Debug, Default)]
pub struct ConnPool {
    idle: Mutex<Vec<(SendRequest<UpstreamBody>, Instant)>>,
}

/// A connection lent out for one request.
pub struct Pooled {
    sender: SendRequest<UpstreamBody>,
}

impl ConnPool {
    /// Sends `req` to `authority` over an idle connection, or a new one.
    pub async fn send(
        &self,
        authority: &str,
        idle_timeout: Duration,
        req: Request<UpstreamBody>,
    ) -> Result<(Response<Incoming>, Pooled), SendError> {
        let mut sender = match self.checkout(idle_timeout).await {
            Some(s) => s,
            None => connect(authority).await?,
        };
        let resp = sender.send_request(req).await.map_err(SendError::Exchange)?;
        Ok((resp, Pooled { sender }))
    }

    async fn checkout(&self, idle_timeout: Duration) -> Option<SendRequest<UpstreamBody>> {
        loop {
            let (mut sender, since) = self.lock().pop()?;
            if sender.is_closed() || since.elapsed() > idle_timeout {
                continue;
            }
            match tokio::time::timeout(READY_WAIT, sender.ready()).await {
                Ok(Ok(())) => return Some(sender),
                _ => continue,
            }
        }
    }

    /// Takes back a connection whose response was relayed completely.
    pub fn release(&self, pooled: Pooled) {
        if pooled.sender.is_closed() {
            return;
        }
        let mut idle = self.lock();
        if idle.len() < MAX_IDLE {
            idle.push((pooled.sender, Instant::now()));
        }
    }

    pub fn idle(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(SendRequest<UpstreamBody>, Instant)>> {
        self.idle.lock().unwrap_or_else(|p| p.into_inner())
    }
}

async fn connect(authority: &str) -> Result<SendRequest<UpstreamBody>, SendError> {
    let stream = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(authority)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return Err(SendError::Connect(e)),
        Err(_) => {
            return Err(SendError::Connect(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "connect timed out",
            )));
        }
    };
    let _ = stream.set_nodelay(true);
    let (sender, conn) = http1::Builder::new()
        .handshake(TokioIo::new(stream))
        .await
        .map_err(SendError::Exchange)?;
    tokio::spawn(async move {
        // Upgrades (WebSocket) take the connection over; otherwise it serves requests until closed.
        if let Err(e) = conn.with_upgrades().await {
            debug!(error = %e, "upstream connection ended with an error");
        }
    });
    Ok(sender)
}
