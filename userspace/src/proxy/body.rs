//! The request body as the proxy forwards it: the client's stream untouched, a body the WAF phase read
//! whole, or the prefix it read followed by the rest of the stream (`waf.body_overflow: inspect_prefix`).
//! One type, so forwarding does not care which.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, SizeHint};

use super::upstream::conn_pool::BoxError;

/// `B` is the body type of the server that parsed the request (`net::h1` or hyper's HTTP/2).
pub enum InspectedBody<B> {
    Stream(B),
    Buffered(Option<Bytes>),
    Prefixed(Option<Bytes>, B),
}

impl<B> Body for InspectedBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            InspectedBody::Stream(s) => Pin::new(s).poll_frame(cx).map_err(Into::into),
            InspectedBody::Buffered(b) => Poll::Ready(b.take().filter(|b| !b.is_empty()).map(|b| Ok(Frame::data(b)))),
            InspectedBody::Prefixed(prefix, rest) => match prefix.take() {
                Some(p) if !p.is_empty() => Poll::Ready(Some(Ok(Frame::data(p)))),
                _ => Pin::new(rest).poll_frame(cx).map_err(Into::into),
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            InspectedBody::Stream(s) => s.is_end_stream(),
            InspectedBody::Buffered(b) => b.as_ref().is_none_or(Bytes::is_empty),
            InspectedBody::Prefixed(p, rest) => p.as_ref().is_none_or(Bytes::is_empty) && rest.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            InspectedBody::Stream(s) => s.size_hint(),
            InspectedBody::Buffered(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
            InspectedBody::Prefixed(p, rest) => {
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
pub enum Prefix<B> {
    /// The whole body, which fitted in the limit.
    Whole(Bytes),
    /// More than `limit` bytes: what was read (at least `limit + 1` bytes) and the rest of the stream.
    Over(Bytes, B),
}

/// Reads `body` until it ends or more than `limit` bytes have arrived. Trailers are dropped.
pub async fn read_prefix<B>(mut body: B, limit: usize) -> Result<Prefix<B>, BoxError>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    // A body that arrived whole (`net::h1` hands those over as one piece) is taken as it is, without a copy.
    if body.size_hint().exact().is_some_and(|n| n as usize <= limit) {
        let mut whole: Option<Bytes> = None;
        let mut buf = BytesMut::new();
        while let Some(frame) = body.frame().await {
            if let Ok(data) = frame.map_err(Into::into)?.into_data() {
                match whole.take() {
                    None if buf.is_empty() => whole = Some(data),
                    first => {
                        if let Some(f) = first {
                            buf.extend_from_slice(&f);
                        }
                        buf.extend_from_slice(&data);
                    }
                }
            }
        }
        return Ok(Prefix::Whole(whole.unwrap_or_else(|| buf.freeze())));
    }
    let mut buf = BytesMut::new();
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame.map_err(Into::into)?.into_data() {
            buf.extend_from_slice(&data);
            if buf.len() > limit {
                return Ok(Prefix::Over(buf.freeze(), body));
            }
        }
    }
    Ok(Prefix::Whole(buf.freeze()))
}
