//! The fields this hop adds to every response: the configured security headers where the response lacks
//! them, `X-Request-Id`, and HSTS on TLS.
//!
//! Kept beside the response instead of inserted into its `HeaderMap`, so that the HTTP/1.1 writer appends
//! them as wire lines (the security headers pre-rendered once per generation) while it copies the response's
//! own fields, and classifies each of those in the same pass. Inserting them cost a map allocation and a hash
//! lookup and insert per field on every request. HTTP/2 gets them in the map (`apply`).

use std::sync::Arc;

use bytes::{BufMut, BytesMut};
use http::HeaderValue;
use http::header::{self, HeaderMap};

use super::request_id;
use crate::http1::put_field;
use crate::http1::raw_fields::RawFields;
use crate::waf::headers::{Present, ResponseHeaders};

pub struct AddedFields {
    /// Added where the response does not set them.
    pub security: Arc<ResponseHeaders>,
    /// Replace any the response carries.
    pub request_id: HeaderValue,
    pub hsts: Option<HeaderValue>,
}

/// What a field of the response is to this hop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// A field this hop writes its own value for: the response's is dropped.
    Replaced,
    /// One of the security headers: the response's value stands, this hop adds none.
    Security(Present),
    Other,
}

impl AddedFields {
    /// `name` in any case.
    pub fn role(&self, name: &[u8]) -> Role {
        match name.len() {
            12 if name.eq_ignore_ascii_case(request_id::HEADER.as_str().as_bytes()) => Role::Replaced,
            25 if self.hsts.is_some() && name.eq_ignore_ascii_case(b"strict-transport-security") => Role::Replaced,
            _ => match self.security.bit_of(name) {
                0 => Role::Other,
                bit => Role::Security(bit),
            },
        }
    }

    /// Bytes `put` writes at most.
    pub fn wire_len(&self) -> usize {
        const NAMES: usize = 12 + 25 + 2 * 4;
        NAMES + self.security.wire_len() + self.request_id.len() + self.hsts.as_ref().map_or(0, HeaderValue::len)
    }

    /// Writes the fields as wire lines; `present` are the security headers the response set itself.
    pub fn put(&self, out: &mut BytesMut, present: Present) {
        self.security.put_missing(out, present);
        put_field(out, request_id::HEADER.as_str().as_bytes(), self.request_id.as_bytes());
        if let Some(hsts) = &self.hsts {
            out.put_slice(b"strict-transport-security: ");
            out.put_slice(hsts.as_bytes());
            out.put_slice(b"\r\n");
        }
    }

    /// Puts the fields into `headers`, for a server that writes fields from the map only (HTTP/2). `raw` are
    /// the upstream's fields not yet in the map, which count as the response's own.
    pub fn apply(self, headers: &mut HeaderMap, raw: Option<&RawFields>) {
        self.security.apply(headers, raw);
        headers.insert(request_id::HEADER, self.request_id);
        if let Some(hsts) = self.hsts {
            headers.insert(header::STRICT_TRANSPORT_SECURITY, hsts);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a test reports failure by panicking
mod tests {
    use super::*;
    use crate::config::schema::SecurityHeaders;

    fn added(hsts: bool) -> AddedFields {
        AddedFields {
            security: Arc::new(ResponseHeaders::build(&SecurityHeaders::default()).unwrap()),
            request_id: HeaderValue::from_static("abc"),
            hsts: hsts.then(|| HeaderValue::from_static("max-age=60")),
        }
    }

    #[test]
    fn fields_are_classified_by_name_in_any_case() {
        let a = added(false);
        assert_eq!(a.role(b"X-Request-ID"), Role::Replaced);
        assert_eq!(a.role(b"Strict-Transport-Security"), Role::Other, "no HSTS without TLS");
        assert_eq!(added(true).role(b"strict-transport-security"), Role::Replaced);
        assert!(matches!(a.role(b"X-Frame-Options"), Role::Security(b) if b != 0));
        assert_eq!(a.role(b"content-type"), Role::Other);
        assert_eq!(a.role(b"x-request-ix"), Role::Other);
    }

    #[test]
    fn written_lines_match_what_the_map_would_hold() {
        let a = added(true);
        let mut out = BytesMut::new();
        let frame = a.role(b"x-frame-options");
        let Role::Security(bit) = frame else {
            panic!("{frame:?}")
        };
        a.put(&mut out, bit);
        let text = String::from_utf8(out.to_vec()).unwrap();
        assert!(!text.contains("x-frame-options"), "{text}");
        assert!(text.contains("x-content-type-options: nosniff\r\n"), "{text}");
        assert!(
            text.ends_with("x-request-id: abc\r\nstrict-transport-security: max-age=60\r\n"),
            "{text}"
        );
        assert!(text.len() <= a.wire_len());

        let mut map = HeaderMap::new();
        map.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("SAMEORIGIN"));
        map.insert(request_id::HEADER, HeaderValue::from_static("theirs"));
        added(true).apply(&mut map, None);
        assert_eq!(map[header::X_FRAME_OPTIONS], "SAMEORIGIN");
        assert_eq!(map[request_id::HEADER], "abc");
        assert_eq!(map[header::STRICT_TRANSPORT_SECURITY], "max-age=60");
        assert_eq!(map[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    }
}
