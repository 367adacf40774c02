//! The request as the engine sees it: borrowed views of what the proxy (or the corpus replayer) already has.
//! Nothing is copied to build one.

use std::net::IpAddr;

use http::HeaderMap;

/// One request to inspect. `path` and `query` are raw, as on the wire (still percent-encoded).
#[derive(Clone, Copy)]
pub struct RequestView<'a> {
    pub method: &'a str,
    pub path: &'a str,
    /// Without the `?`; empty when there is none.
    pub query: &'a str,
    pub headers: &'a HeaderMap,
    /// The body, or the prefix of it that is inspected (see `body_truncated`); empty for none.
    pub body: &'a [u8],
    /// `body` is only the first part of a longer body (`waf.body_overflow: inspect_prefix`).
    pub body_truncated: bool,
    pub client: IpAddr,
    /// The name of the route the request takes, when known (for exclusions by route).
    pub route: Option<&'a str>,
}

impl<'a> RequestView<'a> {
    /// The first value of header `name` as text, if it is valid visible ASCII/UTF-8.
    pub fn header(&self, name: &str) -> Option<&'a str> {
        self.headers
            .get(name)
            .and_then(|v| std::str::from_utf8(v.as_bytes()).ok())
    }

    /// The media type of the body, lower-cased, without parameters (`application/json`).
    pub fn content_type(&self) -> Option<String> {
        self.header("content-type")
            .map(|ct| ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
    }
}
