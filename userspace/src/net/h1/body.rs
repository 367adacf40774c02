//! The request body as the pipeline sees it, and the pump that feeds it from the connection.
//!
//! Most requests carry no body, or one that arrived whole with the head: those are handed over as they are,
//! without a channel. A body still on the wire is read by the connection's own task (`Pump`) while the
//! pipeline runs, and passed through a small bounded channel, so a slow reader upstream slows the client
//! instead of filling memory. With `Expect: 100-continue` nothing is read, and no interim answer sent, until
//! the pipeline first asks for the body — a request refused on its head never makes the client upload.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use hyper::body::{Body, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{Notify, mpsc};

use crate::http1::chunked;
use crate::proxy::upstream::conn_pool::BoxError;

/// Pieces in flight between the pump and the pipeline; each is at most one read.
const CHANNEL_DEPTH: usize = 2;
/// Bytes asked of the socket per read of a body.
const READ_CHUNK: usize = 16 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("the client closed the connection inside the request body")]
    Truncated,
    #[error("reading the request body: {0}")]
    Io(#[from] std::io::Error),
    #[error("request body framing: {0}")]
    Framing(#[from] crate::http1::FramingError),
}

pub struct RequestBody {
    kind: Kind,
}

enum Kind {
    Empty,
    Full(Option<Bytes>),
    Streaming {
        rx: mpsc::Receiver<Result<Bytes, BoxError>>,
        /// Tells the pump the pipeline wants the body (for `Expect: 100-continue`).
        wanted: Arc<Notify>,
        asked: bool,
        /// Bytes still to come when the length is known.
        remaining: Option<u64>,
        ended: bool,
    },
}

impl RequestBody {
    pub fn empty() -> Self {
        Self { kind: Kind::Empty }
    }

    pub fn full(bytes: Bytes) -> Self {
        Self {
            kind: Kind::Full((!bytes.is_empty()).then_some(bytes)),
        }
    }

    /// A body still to be read from the connection: the body, and the pump that reads it.
    pub fn streaming(framing: super::request::BodyFraming, expect_continue: bool) -> (Self, Pump) {
        let (tx, rx) = mpsc::channel(CHANNEL_DEPTH);
        let wanted = Arc::new(Notify::new());
        let remaining = match framing {
            super::request::BodyFraming::Length(n) => Some(n),
            _ => None,
        };
        let reading = match framing {
            super::request::BodyFraming::Length(n) => Reading::Length(n),
            super::request::BodyFraming::Chunked => Reading::Chunked(chunked::Decoder::new()),
            super::request::BodyFraming::None => Reading::Done,
        };
        let pump = Pump {
            tx: Some(tx),
            reading,
            wanted: expect_continue.then(|| wanted.clone()),
            complete: matches!(reading, Reading::Done),
        };
        let body = Self {
            kind: Kind::Streaming {
                rx,
                wanted,
                asked: false,
                remaining,
                ended: false,
            },
        };
        (body, pump)
    }
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match &mut self.kind {
            Kind::Empty => Poll::Ready(None),
            Kind::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            Kind::Streaming {
                rx,
                wanted,
                asked,
                remaining,
                ended,
            } => {
                if !*asked {
                    *asked = true;
                    wanted.notify_one();
                }
                match rx.poll_recv(cx) {
                    Poll::Ready(Some(Ok(data))) => {
                        if let Some(r) = remaining {
                            *r = r.saturating_sub(data.len() as u64);
                        }
                        Poll::Ready(Some(Ok(Frame::data(data))))
                    }
                    Poll::Ready(Some(Err(e))) => {
                        *ended = true;
                        Poll::Ready(Some(Err(e)))
                    }
                    Poll::Ready(None) => {
                        *ended = true;
                        Poll::Ready(None)
                    }
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Empty => true,
            Kind::Full(bytes) => bytes.is_none(),
            Kind::Streaming { ended, remaining, .. } => *ended || *remaining == Some(0),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Empty => SizeHint::with_exact(0),
            Kind::Full(bytes) => SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64)),
            Kind::Streaming { remaining: Some(n), .. } => SizeHint::with_exact(*n),
            Kind::Streaming { .. } => SizeHint::default(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reading {
    Length(u64),
    Chunked(chunked::Decoder),
    Done,
}

/// Reads a request body off the connection into its channel, one piece per `step`.
pub struct Pump {
    tx: Option<mpsc::Sender<Result<Bytes, BoxError>>>,
    reading: Reading,
    /// Present until the interim `100 Continue` has been sent.
    wanted: Option<Arc<Notify>>,
    /// The body was read to exactly its end: the connection may carry another request.
    complete: bool,
}

impl Pump {
    /// Nothing more to do: the body ended, failed, or its reader went away.
    pub fn finished(&self) -> bool {
        self.tx.is_none()
    }

    /// The whole body was read off the wire, so the next bytes are the next request. Pieces already in `buf`
    /// are consumed first: the pipeline may answer before the pump's last step has run (or after it stopped
    /// taking the body), and a connection whose body ended in its buffer can still carry another request.
    pub fn complete(&mut self, buf: &mut BytesMut) -> bool {
        if !self.complete && self.wanted.is_none() {
            while let Ok(Some(_)) = self.next_buffered(buf) {}
        }
        self.complete || self.reading == Reading::Done
    }

    /// Reads and hands over the next piece of body. Returns once it is accepted by the channel (or the body is
    /// finished); cancelling it loses at most a piece nobody is waiting for any more.
    pub async fn step<S: AsyncRead + AsyncWrite + Unpin>(&mut self, io: &mut S, buf: &mut BytesMut) {
        if let Some(wanted) = &self.wanted {
            wanted.notified().await;
            self.wanted = None;
            if io.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").await.is_err() || io.flush().await.is_err() {
                self.fail(BodyError::Truncated).await;
                return;
            }
        }
        let piece = loop {
            match self.next_buffered(buf) {
                Ok(Some(piece)) => break piece,
                Ok(None) if self.reading == Reading::Done => {
                    self.complete = true;
                    self.tx = None;
                    return;
                }
                Ok(None) => {}
                Err(e) => return self.fail(e).await,
            }
            buf.reserve(READ_CHUNK);
            match io.read_buf(buf).await {
                Ok(0) => return self.fail(BodyError::Truncated).await,
                Ok(_) => {}
                Err(e) => return self.fail(BodyError::Io(e)).await,
            }
        };
        let Some(tx) = &self.tx else { return };
        if tx.send(Ok(piece)).await.is_err() {
            // The pipeline dropped the body: the rest is never read, so the connection cannot be reused.
            self.tx = None;
        }
    }

    /// The next piece that is already in `buf`, if any.
    fn next_buffered(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, BodyError> {
        match &mut self.reading {
            Reading::Done => Ok(None),
            Reading::Length(_) if buf.is_empty() => Ok(None),
            Reading::Length(n) => {
                let take = usize::try_from(*n).unwrap_or(usize::MAX).min(buf.len());
                *n -= take as u64;
                if *n == 0 {
                    self.reading = Reading::Done;
                }
                Ok(Some(buf.split_to(take).freeze()))
            }
            Reading::Chunked(decoder) => match decoder.decode(buf)? {
                chunked::Decoded::Data(b) => Ok(Some(b)),
                chunked::Decoded::NeedMore => Ok(None),
                chunked::Decoded::Done => {
                    self.reading = Reading::Done;
                    Ok(None)
                }
            },
        }
    }

    async fn fail(&mut self, e: BodyError) {
        if let Some(tx) = self.tx.take() {
            let _ = tx.send(Err(Box::new(e))).await;
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a test reports failure by panicking
mod tests {
    use http_body_util::BodyExt;

    use super::super::request::BodyFraming;
    use super::*;

    /// Pumps `wire` through a socket pair into a streaming body and collects what the pipeline would see.
    async fn pumped(
        framing: BodyFraming,
        wire: &'static [u8],
        expect: bool,
    ) -> (Result<Vec<u8>, String>, bool, Vec<u8>) {
        let (mut client, mut server) = tokio::io::duplex(64);
        let writer = tokio::spawn(async move {
            for piece in wire.chunks(7) {
                client.write_all(piece).await.unwrap();
            }
            let mut interim = Vec::new();
            // Whatever the server wrote back (the interim answer, if any).
            let _ = tokio::time::timeout(std::time::Duration::from_millis(50), client.read_to_end(&mut interim)).await;
            interim
        });
        let (mut body, mut pump) = RequestBody::streaming(framing, expect);
        let mut buf = BytesMut::new();
        let collect = async {
            let mut got = Vec::new();
            loop {
                match body.frame().await {
                    Some(Ok(f)) => got.extend_from_slice(&f.into_data().unwrap()),
                    Some(Err(e)) => return Err(e.to_string()),
                    None => return Ok(got),
                }
            }
        };
        tokio::pin!(collect);
        let result = loop {
            if pump.finished() {
                break collect.await;
            }
            tokio::select! {
                r = &mut collect => break r,
                () = pump.step(&mut server, &mut buf) => {}
            }
        };
        drop(server);
        (result, pump.complete(&mut buf), writer.await.unwrap())
    }

    #[tokio::test]
    async fn a_length_body_arrives_whole_and_leaves_the_connection_reusable() {
        let (body, complete, interim) = pumped(BodyFraming::Length(11), b"hello world", false).await;
        assert_eq!(body.unwrap(), b"hello world");
        assert!(complete);
        assert!(interim.is_empty(), "no interim answer without Expect");
    }

    #[tokio::test]
    async fn a_chunked_body_is_decoded_for_the_pipeline() {
        let (body, complete, _) = pumped(BodyFraming::Chunked, b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", false).await;
        assert_eq!(body.unwrap(), b"hello world");
        assert!(complete);
    }

    #[test]
    fn a_body_already_buffered_completes_even_when_the_pipeline_answered_first() {
        let (_body, mut pump) = RequestBody::streaming(BodyFraming::Length(5), false);
        let mut buf = BytesMut::from(&b"helloGET / HTTP/1.1\r\n"[..]);
        assert!(pump.complete(&mut buf));
        assert_eq!(
            &buf[..],
            b"GET / HTTP/1.1\r\n",
            "the next request is left for the connection"
        );
        let (_body, mut pump) = RequestBody::streaming(BodyFraming::Length(9), false);
        let mut buf = BytesMut::from(&b"hello"[..]);
        assert!(!pump.complete(&mut buf), "four bytes of body are still on the wire");
        let (_body, mut pump) = RequestBody::streaming(BodyFraming::Chunked, false);
        let mut buf = BytesMut::from(&b"5\r\nhello\r\n0\r\n\r\nNEXT"[..]);
        assert!(pump.complete(&mut buf));
        assert_eq!(&buf[..], b"NEXT");
    }

    #[tokio::test]
    async fn a_body_cut_short_is_an_error_and_not_complete() {
        let (body, complete, _) = pumped(BodyFraming::Length(100), b"too short", false).await;
        assert!(
            body.unwrap_err()
                .contains("closed the connection inside the request body")
        );
        assert!(!complete);
    }

    #[tokio::test]
    async fn expect_continue_sends_the_interim_answer_once_the_body_is_wanted() {
        let (body, _, interim) = pumped(BodyFraming::Length(2), b"ok", true).await;
        assert_eq!(body.unwrap(), b"ok");
        assert_eq!(interim, b"HTTP/1.1 100 Continue\r\n\r\n");
    }

    #[test]
    fn whole_bodies_report_their_exact_size() {
        assert_eq!(
            RequestBody::full(Bytes::from_static(b"abc")).size_hint().exact(),
            Some(3)
        );
        assert!(RequestBody::empty().is_end_stream());
        let (streaming, _) = RequestBody::streaming(BodyFraming::Length(9), false);
        assert_eq!(streaming.size_hint().exact(), Some(9));
        let (chunked, _) = RequestBody::streaming(BodyFraming::Chunked, false);
        assert_eq!(chunked.size_hint().exact(), None);
    }
}
