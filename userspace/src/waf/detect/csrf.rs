//! Cross-site request forgery, for state-changing methods: an `Origin` (or, without one, a `Referer`) naming
//! another site than the request's own host or a configured origin, and, on configured paths, a missing CSRF
//! token (header or body field). Requests without either header are not judged by origin: non-browser
//! clients send neither.

use super::Hit;
use crate::waf::request::RequestView;

/// The compiled `waf.owasp_protection.csrf_protection` settings.
#[derive(Clone, Debug, Default)]
pub struct CsrfSettings {
    /// Lower-cased `scheme://host[:port]` origins accepted besides the request's own host.
    pub allowed_origins: Vec<String>,
    pub token_validation: bool,
    pub token_paths: Vec<String>,
    pub token_field: String,
    pub token_header: String,
}

fn state_changing(method: &str) -> bool {
    matches!(method, "POST" | "PUT" | "PATCH" | "DELETE")
}

/// The host part of a URL or origin, lower-cased, with port.
fn host_of(url: &str) -> Option<String> {
    let rest = url.split_once("://").map(|(_, r)| r)?;
    let auth = rest.split(['/', '?', '#']).next()?;
    let host = auth.rsplit('@').next()?;
    Some(host.to_ascii_lowercase())
}

/// Checks the request; `token_in_body` is whether the body carried a non-empty `token_field`.
pub fn check(req: &RequestView<'_>, s: &CsrfSettings, token_in_body: bool) -> Option<Hit> {
    if !state_changing(req.method) {
        return None;
    }
    let own = req.header("host").map(str::to_ascii_lowercase);
    let claimed = req
        .header("origin")
        .filter(|o| *o != "null")
        .map(|o| (o, 0.9f32, "csrf.cross_origin"))
        .or_else(|| req.header("referer").map(|r| (r, 0.85, "csrf.cross_site_referer")));
    if let Some((url, c, rule)) = claimed {
        let host = host_of(url);
        let same = host.is_some() && host == own;
        let allowed = s
            .allowed_origins
            .iter()
            .any(|a| url.to_ascii_lowercase().starts_with(a.as_str()));
        if !same && !allowed {
            return Some(Hit::new(c, 0, 0, rule));
        }
    }
    if s.token_validation && s.token_paths.iter().any(|p| req.path.starts_with(p.as_str())) {
        let in_header = req.header(&s.token_header).is_some_and(|v| !v.trim().is_empty());
        if !in_header && !token_in_body {
            return Some(Hit::new(0.9, 0, 0, "csrf.missing_token"));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use http::{HeaderMap, HeaderValue};

    use super::*;

    fn view<'a>(h: &'a HeaderMap, method: &'a str, path: &'a str) -> RequestView<'a> {
        RequestView {
            method,
            path,
            query: "",
            headers: h,
            body: b"",
            body_truncated: false,
            client: IpAddr::V4(Ipv4Addr::LOCALHOST),
            route: None,
        }
    }

    #[test]
    fn a_post_from_another_origin_is_csrf_and_from_the_same_host_is_not() {
        let s = CsrfSettings::default();
        let mut h = HeaderMap::new();
        h.insert("host", HeaderValue::from_static("shop.example"));
        h.insert("origin", HeaderValue::from_static("https://evil.example"));
        assert!(check(&view(&h, "POST", "/buy"), &s, false).is_some());
        assert!(check(&view(&h, "GET", "/buy"), &s, false).is_none());
        h.insert("origin", HeaderValue::from_static("https://shop.example"));
        assert!(check(&view(&h, "POST", "/buy"), &s, false).is_none());
    }

    #[test]
    fn a_missing_token_on_a_protected_path_is_csrf() {
        let s = CsrfSettings {
            token_validation: true,
            token_paths: vec!["/account".into()],
            token_field: "csrf_token".into(),
            token_header: "x-csrf-token".into(),
            ..CsrfSettings::default()
        };
        let h = HeaderMap::new();
        assert!(check(&view(&h, "POST", "/account/email"), &s, false).is_some());
        assert!(check(&view(&h, "POST", "/account/email"), &s, true).is_none());
        assert!(check(&view(&h, "POST", "/other"), &s, false).is_none());
    }
}
