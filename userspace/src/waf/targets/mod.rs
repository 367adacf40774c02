//! What is inspected: the request split into named values (ModSecurity's *variables*). The path, every query
//! argument name and value, the headers that carry free text, every cookie, and the body parsed by its content
//! type (`form`, `json`, `multipart`, `xml`; anything else as one raw value).
//!
//! Parsing here is lenient (an attacker's malformed body is still inspected, as raw text) and bounded by
//! [`Limits`]; values are handed to a callback as slices of the request wherever possible, so walking a
//! request allocates nothing for values without escapes. Must not judge values: that is `detect`'s job.

pub mod cookies;
pub mod form;
pub mod json;
pub mod multipart;
pub mod xml;

use std::borrow::Cow;

use super::normalize::Encoding;
use super::request::RequestView;

/// Where a value was found; decides which detectors apply and how the value is decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Location {
    Path,
    QueryName,
    QueryValue,
    Header,
    UserAgent,
    CookieName,
    CookieValue,
    FormName,
    FormValue,
    JsonKey,
    JsonValue,
    MultipartValue,
    FileName,
    FileContent,
    XmlText,
    XmlAttribute,
    RawBody,
}

impl Location {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Path => "path",
            Self::QueryName => "query_name",
            Self::QueryValue => "query",
            Self::Header => "header",
            Self::UserAgent => "user_agent",
            Self::CookieName => "cookie_name",
            Self::CookieValue => "cookie",
            Self::FormName => "form_name",
            Self::FormValue => "form",
            Self::JsonKey => "json_key",
            Self::JsonValue => "json",
            Self::MultipartValue => "multipart",
            Self::FileName => "file_name",
            Self::FileContent => "file_content",
            Self::XmlText => "xml_text",
            Self::XmlAttribute => "xml_attribute",
            Self::RawBody => "body",
        }
    }

    /// A value an application uses as data (an argument), as opposed to protocol metadata.
    pub fn is_argument_value(self) -> bool {
        matches!(
            self,
            Self::QueryValue
                | Self::FormValue
                | Self::JsonValue
                | Self::MultipartValue
                | Self::CookieValue
                | Self::XmlText
                | Self::XmlAttribute
                | Self::RawBody
        )
    }

    /// A name (argument, key, cookie name).
    pub fn is_name(self) -> bool {
        matches!(
            self,
            Self::QueryName | Self::FormName | Self::JsonKey | Self::CookieName
        )
    }

    pub fn is_body(self) -> bool {
        matches!(
            self,
            Self::FormName
                | Self::FormValue
                | Self::JsonKey
                | Self::JsonValue
                | Self::MultipartValue
                | Self::FileName
                | Self::FileContent
                | Self::XmlText
                | Self::XmlAttribute
                | Self::RawBody
        )
    }
}

/// One value to inspect.
pub struct Target<'v> {
    pub location: Location,
    /// The argument, header or cookie name the value belongs to (raw); empty when there is none.
    pub name: Cow<'v, str>,
    pub value: &'v [u8],
    pub encoding: Encoding,
}

/// `bytes` as text, borrowed when valid UTF-8 (the usual case: `from_utf8` is several times faster than
/// `from_utf8_lossy` on short ASCII, and names and strings are short).
pub(crate) fn text(bytes: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => String::from_utf8_lossy(bytes),
    }
}

/// Bounds on body parsing.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_depth: usize,
    pub file_content_bytes: usize,
    /// Values the engine inspects one by one; parsers may stop producing values beyond this many.
    pub max_targets: usize,
}

/// Headers whose syntax is fixed by the protocol and never carries application data: not inspected as text
/// (the protocol checks still see them).
const STRUCTURED_HEADERS: &[&str] = &[
    "host",
    "content-length",
    "content-type",
    "content-encoding",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "accept",
    "accept-encoding",
    "accept-language",
    "accept-charset",
    "cache-control",
    "pragma",
    "upgrade-insecure-requests",
    "if-modified-since",
    "if-none-match",
    "if-match",
    "if-unmodified-since",
    "if-range",
    "range",
    "dnt",
    "te",
    "upgrade",
    "authorization",
    "proxy-authorization",
    "x-request-id",
    "priority",
    "purpose",
    "origin",
    "cookie",
];

/// Visits the head of the request: path, query arguments, headers, cookies.
pub fn each_in_head<'r>(req: &RequestView<'r>, limits: Limits, f: &mut dyn FnMut(Target<'_>)) {
    f(Target {
        location: Location::Path,
        name: Cow::Borrowed(""),
        value: req.path.as_bytes(),
        encoding: Encoding::Percent,
    });
    if !req.query.is_empty() {
        // One more than the limit, so that the engine sees it was exceeded.
        let max = limits.max_targets.saturating_add(1);
        form::each(req.query.as_bytes(), Location::QueryName, Location::QueryValue, max, f);
        whole_if_entity_encoded(req.query.as_bytes(), Location::QueryValue, f);
    }
    for (name, value) in req.headers {
        let n = name.as_str();
        if n == "cookie" {
            cookies::each(value.as_bytes(), f);
            continue;
        }
        if STRUCTURED_HEADERS.contains(&n) || n.starts_with("sec-") {
            continue;
        }
        let location = if n == "user-agent" {
            Location::UserAgent
        } else {
            Location::Header
        };
        let mut value = value.as_bytes();
        if n == "referer" || n == "origin" {
            value = after_own_origin(value, req.headers.get("host").map(|h| h.as_bytes()));
        }
        f(Target {
            location,
            name: Cow::Borrowed(n),
            value,
            encoding: Encoding::Percent,
        });
    }
}

/// A `Referer` or `Origin` naming the site itself (`http(s)://<Host>`) is the browser's own report of where
/// it was: only the part after the origin is inspected, or a site on an internal name (or loopback) would
/// see every same-site navigation as SSRF. A URL to any other host is inspected whole.
fn after_own_origin<'a>(value: &'a [u8], host: Option<&[u8]>) -> &'a [u8] {
    let Some(host) = host.filter(|h| !h.is_empty()) else {
        return value;
    };
    let rest = value
        .strip_prefix(b"https://")
        .or_else(|| value.strip_prefix(b"http://"));
    let Some(rest) = rest else {
        return value;
    };
    match rest.get(..host.len()) {
        Some(authority)
            if authority.eq_ignore_ascii_case(host)
                && rest.get(host.len()).is_none_or(|b| matches!(b, b'/' | b'?' | b'#')) =>
        {
            &rest[host.len()..]
        }
        _ => value,
    }
}

/// The kind of body, by content type and, without one, by its first bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyKind {
    Form,
    Json,
    Multipart,
    Xml,
    Raw,
}

/// What the body is, from `Content-Type` (and a sniff when that is absent or generic).
pub fn body_kind(content_type: Option<&str>, body: &[u8]) -> BodyKind {
    let ct = content_type.unwrap_or("");
    if ct.contains("multipart/") {
        return BodyKind::Multipart;
    }
    if ct.contains("json") {
        return BodyKind::Json;
    }
    if ct.contains("xml") || ct.contains("soap") {
        return BodyKind::Xml;
    }
    if ct.contains("x-www-form-urlencoded") {
        return BodyKind::Form;
    }
    let first = body.iter().find(|b| !b.is_ascii_whitespace()).copied();
    match first {
        Some(b'{' | b'[') => BodyKind::Json,
        Some(b'<') => BodyKind::Xml,
        _ => BodyKind::Raw,
    }
}

/// Visits the body's values. Returns whether the body parsed as its kind (a malformed body is also visited
/// as one raw value).
pub fn each_in_body(req: &RequestView<'_>, limits: Limits, f: &mut dyn FnMut(Target<'_>)) {
    if req.body.is_empty() {
        return;
    }
    let ct_header = req.header("content-type");
    let ct = ct_header.map(|c| c.to_ascii_lowercase());
    let parsed = match body_kind(ct.as_deref(), req.body) {
        BodyKind::Form => {
            let max = limits.max_targets.saturating_add(1);
            form::each(req.body, Location::FormName, Location::FormValue, max, f);
            whole_if_entity_encoded(req.body, Location::FormValue, f);
            true
        }
        BodyKind::Json => json::each(req.body, limits.max_depth, f).is_ok(),
        BodyKind::Multipart => ct_header
            .and_then(multipart::boundary)
            .is_some_and(|b| multipart::each(req.body, b, limits.file_content_bytes, f)),
        BodyKind::Xml => xml::each(req.body, limits.max_depth, f),
        BodyKind::Raw => false,
    };
    if !parsed {
        f(Target {
            location: Location::RawBody,
            name: Cow::Borrowed(""),
            value: req.body,
            encoding: Encoding::Text,
        });
    }
}

/// A raw `&#60;`-style character reference splits a form-encoded string at its `&`; an application that
/// reads the raw string (or a lenient parser) sees the markup whole, so such strings are also inspected whole.
fn whole_if_entity_encoded(data: &[u8], location: Location, f: &mut dyn FnMut(Target<'_>)) {
    if memchr::memmem::find(data, b"&#").is_some() {
        f(Target {
            location,
            name: Cow::Borrowed(""),
            value: data,
            encoding: Encoding::Form,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::after_own_origin;

    #[test]
    fn a_referer_to_the_site_itself_is_inspected_after_its_origin() {
        let host = Some(&b"127.0.0.1:8080"[..]);
        assert_eq!(after_own_origin(b"http://127.0.0.1:8080/page?q=1", host), b"/page?q=1");
        assert_eq!(after_own_origin(b"https://127.0.0.1:8080", host), b"");
        // Another host, a longer name sharing the prefix, or no Host: the whole value.
        assert_eq!(
            after_own_origin(b"http://127.0.0.1:6379/", host),
            b"http://127.0.0.1:6379/"
        );
        assert_eq!(
            after_own_origin(b"http://127.0.0.1:80801/", host),
            b"http://127.0.0.1:80801/"
        );
        assert_eq!(
            after_own_origin(b"http://127.0.0.1:8080/", None),
            b"http://127.0.0.1:8080/"
        );
    }
}
