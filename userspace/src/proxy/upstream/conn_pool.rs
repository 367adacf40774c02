//! Keep-alive connections to one upstream server. A connection is taken for one request and comes back only
//! when that request's response body has been read to exactly its end (`h1::BodyReader::into_reusable`); one
//! whose response was abandoned or broken is closed, because its state on the wire is unknown.
//!
//! Idle connections are bounded in number and age. The most recently returned connection is lent first (it is
//! the least likely to have been closed by the server), and each is checked for a close or stray bytes before
//! it is lent, at no cost while it is healthy.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::combinators::BoxBody;

use super::h1::Conn;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
pub type UpstreamBody = BoxBody<Bytes, BoxError>;

/// Idle connections kept per server; more are closed when they come back.
const MAX_IDLE: usize = 512;

#[derive(Default)]
pub struct ConnPool {
    /// Oldest at the front.
    idle: Mutex<VecDeque<(Conn, Instant)>>,
}

impl std::fmt::Debug for ConnPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnPool").field("idle", &self.idle()).finish()
    }
}

impl ConnPool {
    /// An idle connection younger than `idle_timeout` at `now` that the server has not closed, if there is one.
    /// (The caller passes the time it read for the request: a clock read here was one more per request.)
    pub fn checkout(&self, idle_timeout: Duration, now: Instant) -> Option<Conn> {
        let mut idle = self.lock();
        while let Some((mut conn, since)) = idle.pop_back() {
            if now.saturating_duration_since(since) <= idle_timeout && conn.is_usable() {
                return Some(conn);
            }
        }
        None
    }

    /// Takes back a connection whose response ended cleanly; expired ones are closed on the way.
    pub fn checkin(&self, conn: Conn, idle_timeout: Duration) {
        let now = crate::clock::coarse_now();
        let mut idle = self.lock();
        while idle
            .front()
            .is_some_and(|(_, since)| now.saturating_duration_since(*since) > idle_timeout)
        {
            idle.pop_front();
        }
        if idle.len() < MAX_IDLE {
            idle.push_back((conn, now));
        }
    }

    pub fn idle(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<(Conn, Instant)>> {
        self.idle.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncWriteExt;

    use super::*;

    #[tokio::test]
    async fn a_connection_the_server_closed_is_not_lent_again() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let pool = ConnPool::default();
        let live = Conn::connect(&addr).await.expect("connect");
        let (_kept, _) = listener.accept().await.expect("accept");
        let doomed = Conn::connect(&addr).await.expect("connect");
        let (closed, _) = listener.accept().await.expect("accept");
        pool.checkin(live, Duration::from_secs(60));
        pool.checkin(doomed, Duration::from_secs(60));
        drop(closed);
        // Let the reactor see the FIN.
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            pool.checkout(Duration::from_secs(60), Instant::now()).is_some(),
            "the live connection is lent"
        );
        assert!(
            pool.checkout(Duration::from_secs(60), Instant::now()).is_none(),
            "the closed one was not"
        );
    }

    #[tokio::test]
    async fn stray_bytes_and_age_retire_idle_connections() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let pool = ConnPool::default();
        let chatty = Conn::connect(&addr).await.expect("connect");
        let (mut server_side, _) = listener.accept().await.expect("accept");
        pool.checkin(chatty, Duration::from_secs(60));
        server_side.write_all(b"HTTP/1.1 200 OK\r\n\r\n").await.expect("write");
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            pool.checkout(Duration::from_secs(60), Instant::now()).is_none(),
            "a connection with unasked bytes was lent"
        );

        let old = Conn::connect(&addr).await.expect("connect");
        let (_s, _) = listener.accept().await.expect("accept");
        pool.checkin(old, Duration::from_millis(10));
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert!(
            pool.checkout(Duration::from_millis(10), Instant::now()).is_none(),
            "an expired connection was lent"
        );
    }
}
