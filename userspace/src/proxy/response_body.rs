//! The body of every response the proxy returns, and the upstream's header fields that travel with it raw.
//!
//! A relayed upstream body is held as it is (no box), and the upstream's fields ride along still raw
//! (`http1::raw_fields`) instead of in the response's `http::Extensions`: putting them there cost a map, a box
//! and a hash insert per request, and boxing the relayed body another allocation. Anything that needs the
//! fields in the response's `HeaderMap` (HTTP/2, route response rewrites, the cache) calls [`materialize`].

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::Response;
use http_body_util::BodyExt;
use http_body_util::combinators::BoxBody;
use hyper::body::{Body, Frame, SizeHint};

use super::forward::GuardedBody;
use super::upstream::conn_pool::BoxError;
use crate::http1::raw_fields::RawFields;

pub struct ResponseBody {
    inner: Inner,
    /// The upstream's fields not yet copied into the response's map.
    upstream_fields: Option<RawFields>,
}

enum Inner {
    Relayed(GuardedBody),
    Other(BoxBody<Bytes, BoxError>),
}

impl ResponseBody {
    /// Any body: generated locally, from the cache, or a relayed body the cache or the WAF wrapped.
    pub fn new<B>(body: B) -> Self
    where
        B: Body<Data = Bytes> + Send + Sync + 'static,
        B::Error: Into<BoxError>,
    {
        Self {
            inner: Inner::Other(body.map_err(Into::into).boxed()),
            upstream_fields: None,
        }
    }

    pub fn empty() -> Self {
        Self::new(http_body_util::Empty::<Bytes>::new())
    }

    /// An upstream's body as read off its connection, with the fields of its head.
    pub(super) fn relayed(body: GuardedBody, fields: RawFields) -> Self {
        Self {
            inner: Inner::Relayed(body),
            upstream_fields: Some(fields),
        }
    }

    /// Raw fields on a body of any kind, as a relayed body carries them.
    #[cfg(test)]
    pub fn with_upstream_fields(mut self, fields: RawFields) -> Self {
        self.upstream_fields = Some(fields);
        self
    }

    /// The upstream's fields that are not in the response's map yet.
    pub fn upstream_fields(&self) -> Option<&RawFields> {
        self.upstream_fields.as_ref()
    }
}

impl From<BoxBody<Bytes, BoxError>> for ResponseBody {
    fn from(body: BoxBody<Bytes, BoxError>) -> Self {
        Self {
            inner: Inner::Other(body),
            upstream_fields: None,
        }
    }
}

/// Copies the upstream's raw fields into the response's map. A field the map already holds (set by this hop)
/// keeps this hop's value, as `insert` would have made it.
pub fn materialize(resp: &mut Response<ResponseBody>) {
    if let Some(raw) = resp.body_mut().upstream_fields.take() {
        raw.append_to(resp.headers_mut());
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match &mut self.get_mut().inner {
            Inner::Relayed(b) => Pin::new(b).poll_frame(cx),
            Inner::Other(b) => Pin::new(b).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.inner {
            Inner::Relayed(b) => b.is_end_stream(),
            Inner::Other(b) => b.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            Inner::Relayed(b) => b.size_hint(),
            Inner::Other(b) => b.size_hint(),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a test reports failure by panicking
mod tests {
    use http::HeaderValue;

    use super::*;

    #[test]
    fn materializing_keeps_repeats_and_lets_this_hops_values_win() {
        let mut body = ResponseBody::empty();
        body.upstream_fields = Some(RawFields::from_lines(
            "X-Request-Id: theirs\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n",
        ));
        let mut resp = Response::new(body);
        resp.headers_mut()
            .insert("x-request-id", HeaderValue::from_static("ours"));
        materialize(&mut resp);
        assert!(resp.body().upstream_fields().is_none());
        let h = resp.headers();
        assert_eq!(h.get_all("x-request-id").iter().collect::<Vec<_>>(), vec!["ours"]);
        assert_eq!(h.get_all("set-cookie").iter().collect::<Vec<_>>(), vec!["a=1", "b=2"]);
    }
}
