//! Security headers added to responses (`waf.security_headers`): compiled once per generation into header
//! pairs, applied to a response only where the upstream did not set its own. Also rendered once as the
//! `name: value` lines the HTTP/1.1 writer appends whole when the response sets none of them itself.

use bytes::{BufMut, BytesMut};
use http::{HeaderMap, HeaderName, HeaderValue};

use crate::config::schema::SecurityHeaders;
use crate::http1::raw_fields::RawFields;

/// The headers to add, validated.
#[derive(Clone, Debug, Default)]
pub struct ResponseHeaders {
    headers: Vec<(HeaderName, HeaderValue)>,
    /// Every header as wire lines, in order.
    wire: Vec<u8>,
    /// The names, as bytes at hand (a `HeaderName` of a standard header is spelled out by a table lookup).
    names: Vec<&'static [u8]>,
}

/// Which of the configured headers a response sets itself: bit `i` for the `i`th.
pub type Present = u8;

#[derive(Debug, thiserror::Error)]
#[error("waf.security_headers.{key}: not a valid header value: {value:?}")]
pub struct HeaderError {
    pub key: &'static str,
    pub value: String,
}

impl ResponseHeaders {
    pub fn build(cfg: &SecurityHeaders) -> Result<Self, HeaderError> {
        let mut headers = Vec::new();
        let mut names = Vec::new();
        if !cfg.enabled {
            return Ok(Self::default());
        }
        for (key, name, value) in [
            (
                "content_security_policy",
                "content-security-policy",
                &cfg.content_security_policy,
            ),
            (
                "x_content_type_options",
                "x-content-type-options",
                &cfg.x_content_type_options,
            ),
            ("x_frame_options", "x-frame-options", &cfg.x_frame_options),
            ("referrer_policy", "referrer-policy", &cfg.referrer_policy),
        ] {
            if value.is_empty() {
                continue;
            }
            let v = HeaderValue::from_str(value).map_err(|_| HeaderError {
                key,
                value: value.clone(),
            })?;
            headers.push((HeaderName::from_static(name), v));
            names.push(name.as_bytes());
        }
        let mut wire = Vec::new();
        for (name, value) in &headers {
            wire.extend_from_slice(name.as_str().as_bytes());
            wire.extend_from_slice(b": ");
            wire.extend_from_slice(value.as_bytes());
            wire.extend_from_slice(b"\r\n");
        }
        Ok(Self { headers, wire, names })
    }

    /// Bytes `put_missing` writes at most.
    pub fn wire_len(&self) -> usize {
        self.wire.len()
    }

    /// The `Present` bit of a field name (any case) that is one of the configured headers.
    pub fn bit_of(&self, name: &[u8]) -> Present {
        // At most four names: a length check first keeps a typical field to a few compares.
        let mut bit = 1;
        for n in &self.names {
            if n.len() == name.len() && n.eq_ignore_ascii_case(name) {
                return bit;
            }
            bit <<= 1;
        }
        0
    }

    /// Writes the configured headers that the response does not set (`present`), as wire lines.
    pub fn put_missing(&self, out: &mut BytesMut, present: Present) {
        if present == 0 {
            out.put_slice(&self.wire);
            return;
        }
        for (i, (name, value)) in self.headers.iter().enumerate() {
            if present & (1 << i) == 0 {
                crate::http1::put_field(out, name.as_str().as_bytes(), value.as_bytes());
            }
        }
    }

    /// Adds each header the response lacks, looking in its map and in the upstream's raw fields.
    pub fn apply(&self, h: &mut HeaderMap, upstream: Option<&RawFields>) {
        for (name, value) in &self.headers {
            if !h.contains_key(name) && !upstream.is_some_and(|f| f.contains(name)) {
                h.insert(name.clone(), value.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The defaults plus a Content-Security-Policy, so that every header is configured.
    fn with_csp() -> ResponseHeaders {
        ResponseHeaders::build(&SecurityHeaders {
            content_security_policy: "default-src 'self'".into(),
            ..SecurityHeaders::default()
        })
        .expect("valid")
    }

    #[test]
    fn configured_headers_are_added_unless_the_upstream_set_them() {
        let rh = with_csp();
        let mut h = HeaderMap::new();
        h.insert("x-frame-options", HeaderValue::from_static("DENY"));
        rh.apply(&mut h, None);
        assert_eq!(h["x-frame-options"], "DENY");
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert_eq!(h["content-security-policy"], "default-src 'self'");
        assert!(h.contains_key("referrer-policy"));
    }

    #[test]
    fn wire_lines_are_written_for_the_headers_the_response_lacks() {
        let rh = with_csp();
        let mut all = BytesMut::new();
        rh.put_missing(&mut all, 0);
        let text = String::from_utf8(all.to_vec()).expect("ascii");
        assert!(
            text.starts_with("content-security-policy: default-src 'self'\r\n"),
            "{text}"
        );
        assert_eq!(text.matches("\r\n").count(), 4, "{text}");
        assert_eq!(rh.wire_len(), text.len());

        let present = rh.bit_of(b"X-Frame-Options") | rh.bit_of(b"Content-Security-Policy");
        assert_ne!(present, 0);
        assert_eq!(rh.bit_of(b"x-frame-option"), 0);
        assert_eq!(rh.bit_of(b"server"), 0);
        let mut some = BytesMut::new();
        rh.put_missing(&mut some, present);
        let text = String::from_utf8(some.to_vec()).expect("ascii");
        assert!(
            !text.contains("x-frame-options") && !text.contains("content-security-policy"),
            "{text}"
        );
        assert!(text.contains("x-content-type-options: nosniff\r\n") && text.contains("referrer-policy: "));
    }

    #[test]
    fn an_invalid_value_names_its_key() {
        let e = ResponseHeaders::build(&SecurityHeaders {
            x_frame_options: "bad\nvalue".into(),
            ..SecurityHeaders::default()
        })
        .expect_err("invalid");
        assert!(e.to_string().contains("x_frame_options"));
    }
}
