//! The request body as the proxy forwards it: the client's stream untouched, a body the WAF phase read
//! whole, or the prefix it read followed by the rest of the stream (`waf.body_overflow: inspect_prefix`).
//! One type, so forwarding does not care which.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, Incoming, SizeHint};

pub enum RequestBody {
    Stream(Incoming),
    Buffered(Option<Bytes>),
    Prefixed(Option<Bytes>, Incoming),
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match self.get_mut() {
            RequestBody::Stream(s) => Pin::new(s).poll_frame(cx),
            RequestBody::Buffered(b) => Poll::Ready(b.take().filter(|b| !b.is_empty()).map(|b| Ok(Frame::data(b)))),
            RequestBody::Prefixed(prefix, rest) => match prefix.take() {
                Some(p) if !p.is_empty() => Poll::Ready(Some(Ok(Frame::data(p)))),
                _ => Pin::new(rest).poll_frame(cx),
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            RequestBody::Stream(s) => s.is_end_stream(),
            RequestBody::Buffered(b) => b.as_ref().is_none_or(Bytes::is_empty),
            RequestBody::Prefixed(p, rest) => p.as_ref().is_none_or(Bytes::is_empty) && rest.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            RequestBody::Stream(s) => s.size_hint(),
            RequestBody::Buffered(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
            RequestBody::Prefixed(p, rest) => {
                let extra = p.as_ref().map_or(0, |b| b.len() as u64);
                let h = rest.size_hint();
                let mut out = SizeHint::new();
                out.set_lower(h.lower() + extra);
                if let Some(u) = h.upper() {
                    out.set_upper(u + extra);
                }
                out
            }
        }
    }
}

/// What reading the start of a body gave.
pub enum Prefix {
    /// The whole body, which fitted in the limit.
    Whole(Bytes),
    /// More than `limit` bytes: what was read (at least `limit + 1` bytes) and the rest of the stream.
    Over(Bytes, Incoming),
}

/// Reads `body` until it ends or more than `limit` bytes have arrived. Trailers are dropped.
pub async fn read_prefix(mut body: Incoming, limit: usize) -> Result<Prefix, hyper::Error> {
    let mut buf = BytesMut::new();
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame?.into_data() {
            buf.extend_from_slice(&data);
            if buf.len() > limit {
                return Ok(Prefix::Over(buf.freeze(), body));
            }
        }
    }
    Ok(Prefix::Whole(buf.freeze()))
}
