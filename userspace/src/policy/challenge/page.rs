//! The challenge page: a small HTML document that solves the proof of work (or shows the CAPTCHA widget)
//! and posts the answer to `VERIFY_PATH`, whose answer sets the clearance cookie and sends the browser back
//! to where it was going. Its own Content-Security-Policy allows exactly its inline script (by nonce) and
//! the CAPTCHA provider's origin, whatever the site's policy says.

use crate::config::schema::CaptchaConfig;

/// Where challenge answers are posted. Reserved: requests to it never reach an upstream.
pub const VERIFY_PATH: &str = "/.rampart/challenge";

const POW_SCRIPT: &str = include_str!("pow.js");

/// Escapes text for an HTML attribute value or element content.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A path on this site to return to: only a local absolute path (no scheme, no `//host`, no backslash
/// tricks), at most 2048 bytes; anything else is `/`. This keeps the verify endpoint from being an open
/// redirect.
pub fn safe_return(target: &str) -> &str {
    let local = target.starts_with('/')
        && !target.starts_with("//")
        && !target.starts_with("/\\")
        && target.len() <= 2048
        && !target.bytes().any(|b| b.is_ascii_control() || b == b'\\');
    if local { target } else { "/" }
}

pub struct Page {
    pub html: String,
    pub csp: String,
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem;color:#222}";

fn document(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"robots\" content=\"noindex\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>{title}</title>\
         <style>{STYLE}</style></head><body>{body}</body></html>"
    )
}

/// The proof-of-work page for `nonce`.
pub fn proof_of_work(nonce: &str, difficulty: u8, return_to: &str, request_id: &str, script_nonce: &str) -> Page {
    let body = format!(
        "<h1>Checking your browser</h1><p>This takes a moment and needs JavaScript.</p>\
         <noscript><p>Please enable JavaScript to continue.</p></noscript>\
         <form id=\"rampart-challenge\" method=\"post\" action=\"{VERIFY_PATH}\" data-difficulty=\"{difficulty}\">\
         <input type=\"hidden\" name=\"nonce\" value=\"{}\"><input type=\"hidden\" name=\"solution\" value=\"\">\
         <input type=\"hidden\" name=\"return_to\" value=\"{}\"></form>\
         <p><small>Request id {}</small></p><script nonce=\"{script_nonce}\">{POW_SCRIPT}</script>",
        escape(nonce),
        escape(return_to),
        escape(request_id),
    );
    Page {
        html: document("Checking your browser", &body),
        csp: format!(
            "default-src 'none'; script-src 'nonce-{script_nonce}'; style-src 'unsafe-inline'; form-action 'self'; \
             base-uri 'none'; frame-ancestors 'none'"
        ),
    }
}

/// Scheme and authority of a URL (`https://host:port`), for the page's policy.
fn origin(url: &str) -> String {
    url.parse::<http::Uri>()
        .ok()
        .and_then(|u| Some(format!("{}://{}", u.scheme_str()?, u.authority()?)))
        .unwrap_or_default()
}

/// The CAPTCHA page: the provider's widget, whose callback posts its token with the nonce.
pub fn captcha(c: &CaptchaConfig, nonce: &str, return_to: &str, request_id: &str, script_nonce: &str) -> Page {
    let provider = origin(&c.script_url);
    let body = format!(
        "<h1>Please confirm you are human</h1>\
         <form id=\"rampart-challenge\" method=\"post\" action=\"{VERIFY_PATH}\">\
         <input type=\"hidden\" name=\"nonce\" value=\"{}\"><input type=\"hidden\" name=\"return_to\" value=\"{}\">\
         <div class=\"{}\" data-sitekey=\"{}\" data-callback=\"rampartSolved\"></div></form>\
         <p><small>Request id {}</small></p>\
         <script nonce=\"{script_nonce}\">function rampartSolved(){{document.getElementById('rampart-challenge').submit();}}</script>\
         <script nonce=\"{script_nonce}\" src=\"{}\" async defer></script>",
        escape(nonce),
        escape(return_to),
        escape(&c.widget_class),
        escape(&c.site_key),
        escape(request_id),
        escape(&c.script_url),
    );
    Page {
        html: document("Please confirm you are human", &body),
        csp: format!(
            "default-src 'none'; script-src 'nonce-{script_nonce}' {provider}; frame-src {provider}; \
             connect-src {provider}; style-src 'unsafe-inline' {provider}; img-src {provider}; form-action 'self'; \
             base-uri 'none'; frame-ancestors 'none'"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_returned_to() {
        assert_eq!(safe_return("/shop?item=1"), "/shop?item=1");
        for bad in [
            "https://evil.example/",
            "//evil.example/",
            "/\\evil.example",
            "evil",
            "/a\r\nb",
            "",
        ] {
            assert_eq!(safe_return(bad), "/", "{bad:?}");
        }
    }

    #[test]
    fn page_values_are_escaped() {
        let p = proof_of_work("n", 16, "/\"><script>alert(1)</script>", "id", "sn");
        assert!(!p.html.contains("<script>alert"));
        assert!(p.html.contains("&quot;&gt;&lt;script&gt;"));
        assert!(p.csp.contains("'nonce-sn'"));
    }

    #[test]
    fn the_captcha_page_allows_its_provider_only() {
        let c = CaptchaConfig {
            site_key: "site".into(),
            secret: "s".into(),
            verify_url: "https://captcha.example/siteverify".into(),
            script_url: "https://captcha.example:8443/api.js".into(),
            widget_class: "cf-turnstile".into(),
            response_field: "cf-turnstile-response".into(),
            timeout: 5,
        };
        let p = captcha(&c, "n", "/", "id", "sn");
        assert!(
            p.csp.contains("script-src 'nonce-sn' https://captcha.example:8443;"),
            "{}",
            p.csp
        );
        assert!(p.html.contains("data-sitekey=\"site\""));
    }
}
