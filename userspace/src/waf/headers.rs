//! Security headers added to responses (`waf.security_headers`): compiled once per generation into header
//! pairs, applied to a response only where the upstream did not set its own.

use http::{HeaderMap, HeaderName, HeaderValue};

use crate::config::schema::SecurityHeaders;
use crate::http1::raw_fields::RawFields;

/// The headers to add, validated.
#[derive(Clone, Debug, Default)]
pub struct ResponseHeaders {
    headers: Vec<(HeaderName, HeaderValue)>,
}

#[derive(Debug, thiserror::Error)]
#[error("waf.security_headers.{key}: not a valid header value: {value:?}")]
pub struct HeaderError {
    pub key: &'static str,
    pub value: String,
}

impl ResponseHeaders {
    pub fn build(cfg: &SecurityHeaders) -> Result<Self, HeaderError> {
        let mut headers = Vec::new();
        if !cfg.enabled {
            return Ok(Self { headers });
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
        }
        Ok(Self { headers })
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

    #[test]
    fn configured_headers_are_added_unless_the_upstream_set_them() {
        let rh = ResponseHeaders::build(&SecurityHeaders {
            content_security_policy: "default-src 'self'".into(),
            ..SecurityHeaders::default()
        })
        .expect("valid");
        let mut h = HeaderMap::new();
        h.insert("x-frame-options", HeaderValue::from_static("DENY"));
        rh.apply(&mut h, None);
        assert_eq!(h["x-frame-options"], "DENY");
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert_eq!(h["content-security-policy"], "default-src 'self'");
        assert!(h.contains_key("referrer-policy"));
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
