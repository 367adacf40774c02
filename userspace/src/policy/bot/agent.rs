//! Signals in a single request's headers: the user agent's own words (tools, headless browsers, crawlers,
//! garbage), and whether the other headers are the ones the browser it names always sends.
//!
//! Browsers are told apart by what they must send, not by what they may: `Accept`, `Accept-Language` and
//! `Accept-Encoding` everywhere; Chromium ≥ 90 adds `sec-ch-ua` and Chrome ≥ 80, Firefox ≥ 90 and Safari ≥
//! 16.4 add `Sec-Fetch-Mode`, but only to secure origins (HTTPS, or a loopback host), so those two are
//! only expected there.

use std::sync::LazyLock;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use http::HeaderMap;
use http::header;

use super::signal::{Reason, Reasons};

/// Substrings of tools' user agents, with what each is. Matched case-insensitively.
const SIGNATURES: &[(&str, Reason)] = &[
    ("sqlmap", Reason::ScannerTool),
    ("nikto", Reason::ScannerTool),
    ("nmap", Reason::ScannerTool),
    ("masscan", Reason::ScannerTool),
    ("zgrab", Reason::ScannerTool),
    ("nuclei", Reason::ScannerTool),
    ("gobuster", Reason::ScannerTool),
    ("dirbuster", Reason::ScannerTool),
    ("feroxbuster", Reason::ScannerTool),
    ("wfuzz", Reason::ScannerTool),
    ("fuzz faster u fool", Reason::ScannerTool),
    ("hydra", Reason::ScannerTool),
    ("acunetix", Reason::ScannerTool),
    ("nessus", Reason::ScannerTool),
    ("openvas", Reason::ScannerTool),
    ("w3af", Reason::ScannerTool),
    ("whatweb", Reason::ScannerTool),
    ("wpscan", Reason::ScannerTool),
    ("arachni", Reason::ScannerTool),
    ("skipfish", Reason::ScannerTool),
    ("netsparker", Reason::ScannerTool),
    ("commix", Reason::ScannerTool),
    ("xsstrike", Reason::ScannerTool),
    ("havij", Reason::ScannerTool),
    ("zmeu", Reason::ScannerTool),
    ("curl/", Reason::HttpLibrary),
    ("libcurl", Reason::HttpLibrary),
    ("wget/", Reason::HttpLibrary),
    ("python-requests", Reason::HttpLibrary),
    ("python-urllib", Reason::HttpLibrary),
    ("python-httpx", Reason::HttpLibrary),
    ("aiohttp", Reason::HttpLibrary),
    ("go-http-client", Reason::HttpLibrary),
    ("java/", Reason::HttpLibrary),
    ("okhttp", Reason::HttpLibrary),
    ("apache-httpclient", Reason::HttpLibrary),
    ("libwww-perl", Reason::HttpLibrary),
    ("lwp::", Reason::HttpLibrary),
    ("node-fetch", Reason::HttpLibrary),
    ("axios/", Reason::HttpLibrary),
    ("undici", Reason::HttpLibrary),
    ("httpie", Reason::HttpLibrary),
    ("powershell", Reason::HttpLibrary),
    ("scrapy", Reason::HttpLibrary),
    ("colly", Reason::HttpLibrary),
    ("guzzlehttp", Reason::HttpLibrary),
    ("reqwest", Reason::HttpLibrary),
    ("mechanize", Reason::HttpLibrary),
    ("winhttp", Reason::HttpLibrary),
    ("restsharp", Reason::HttpLibrary),
    ("headlesschrome", Reason::Headless),
    ("phantomjs", Reason::Headless),
    ("slimerjs", Reason::Headless),
    ("selenium", Reason::Headless),
    ("puppeteer", Reason::Headless),
    ("playwright", Reason::Headless),
    ("htmlunit", Reason::Headless),
    ("splash", Reason::Headless),
    ("bot", Reason::SelfDeclaredBot),
    ("crawl", Reason::SelfDeclaredBot),
    ("spider", Reason::SelfDeclaredBot),
    ("slurp", Reason::SelfDeclaredBot),
    ("facebookexternalhit", Reason::SelfDeclaredBot),
    ("archiver", Reason::SelfDeclaredBot),
];

static MATCHER: LazyLock<Option<AhoCorasick>> = LazyLock::new(|| {
    AhoCorasickBuilder::new()
        .ascii_case_insensitive(true)
        .match_kind(MatchKind::Standard)
        .build(SIGNATURES.iter().map(|(s, _)| s))
        .ok()
});

/// What a user agent says it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Claimed {
    Chromium {
        major: u32,
    },
    Firefox {
        major: u32,
    },
    /// Safari, or any iOS browser (all use WebKit and send what Safari sends). `version` is Safari's
    /// `Version/` as major * 100 + minor, 0 when absent.
    WebKit {
        version: u32,
    },
    Other,
}

/// The operating system a user agent names, in `sec-ch-ua-platform`'s words.
fn platform(ua: &str) -> Option<&'static str> {
    if ua.contains("iPhone") || ua.contains("iPad") {
        Some("iOS")
    } else if ua.contains("Android") {
        Some("Android")
    } else if ua.contains("Windows NT") {
        Some("Windows")
    } else if ua.contains("Macintosh") || ua.contains("Mac OS X") {
        Some("macOS")
    } else if ua.contains("CrOS") {
        Some("Chrome OS")
    } else if ua.contains("Linux") {
        Some("Linux")
    } else {
        None
    }
}

/// The number after `token` (e.g. `Chrome/`) up to the first non-digit.
fn version_after(ua: &str, token: &str) -> Option<u32> {
    let at = ua.find(token)? + token.len();
    let digits = ua[at..].bytes().take_while(u8::is_ascii_digit).count();
    ua[at..at + digits].parse().ok()
}

pub fn claimed(ua: &str) -> Claimed {
    if !ua.starts_with("Mozilla/5.0") {
        return Claimed::Other;
    }
    let ios = ua.contains("iPhone") || ua.contains("iPad");
    if !ios && let Some(major) = version_after(ua, "Chrome/") {
        return Claimed::Chromium { major };
    }
    if !ios && let Some(major) = version_after(ua, "Firefox/") {
        return Claimed::Firefox { major };
    }
    if ua.contains("AppleWebKit/") && ua.contains("Safari/") {
        let version = version_after(ua, "Version/").map_or(0, |major| {
            let minor = ua
                .find("Version/")
                .and_then(|i| {
                    let rest = &ua[i + 8..];
                    let dot = rest.find('.')?;
                    version_after(&rest[dot..], ".")
                })
                .unwrap_or(0);
            major * 100 + minor.min(99)
        });
        return Claimed::WebKit { version };
    }
    Claimed::Other
}

/// The major version `sec-ch-ua` gives the Chromium brand (or Chrome's, Edge's), and whether it lists a
/// headless brand. Format: `"Brand";v="N", ...`.
fn client_hints(value: &str) -> (Option<u32>, bool) {
    let mut major = None;
    let mut headless = false;
    for entry in value.split(',') {
        let mut parts = entry.split(';');
        let brand = parts.next().unwrap_or("").trim().trim_matches('"');
        let v = parts
            .find_map(|p| p.trim().strip_prefix("v="))
            .map(|v| v.trim_matches('"'))
            .and_then(|v| v.split('.').next())
            .and_then(|v| v.parse::<u32>().ok());
        if brand.contains("Headless") {
            headless = true;
        }
        if matches!(brand, "Chromium" | "Google Chrome" | "Microsoft Edge") && major.is_none() {
            major = v;
        }
    }
    (major, headless)
}

fn text<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// Reasons in one request's headers. `secure` is whether the origin is a secure context for browsers
/// (HTTPS or a loopback host), where fetch metadata and client hints are sent.
pub fn analyse(h: &HeaderMap, secure: bool, out: &mut Reasons) -> Claimed {
    let ua = h.get(header::USER_AGENT).map(|v| v.as_bytes()).unwrap_or_default();
    let Ok(ua) = std::str::from_utf8(ua) else {
        out.add(Reason::MalformedAgent);
        return Claimed::Other;
    };
    let ua = ua.trim();
    if ua.is_empty() || ua == "-" {
        out.add(Reason::EmptyAgent);
        return Claimed::Other;
    }
    if ua.len() > 1024 || ua.bytes().any(|b| b.is_ascii_control()) || !ua.contains('/') || ua == "Mozilla/5.0" {
        out.add(Reason::MalformedAgent);
    }
    if let Some(m) = MATCHER.as_ref() {
        for found in m.find_overlapping_iter(ua) {
            if let Some((_, reason)) = SIGNATURES.get(found.pattern().as_usize()) {
                out.add(*reason);
            }
        }
    }
    let claimed = claimed(ua);
    if claimed == Claimed::Other {
        return claimed;
    }
    // A browser: the headers it always sends.
    if !h.contains_key(header::ACCEPT) {
        out.add(Reason::NoAccept);
    }
    if !h.contains_key(header::ACCEPT_LANGUAGE) {
        out.add(Reason::NoAcceptLanguage);
    }
    if !h.contains_key(header::ACCEPT_ENCODING) {
        out.add(Reason::NoAcceptEncoding);
    }
    let hints = text(h, "sec-ch-ua");
    match claimed {
        Claimed::Chromium { major } => {
            match hints.map(client_hints) {
                Some((hinted, headless)) => {
                    if headless {
                        out.add(Reason::Headless);
                    }
                    if hinted.is_some_and(|v| v != major) {
                        out.add(Reason::ClientHintsMismatch);
                    }
                }
                None if secure && major >= 90 => out.add(Reason::NoClientHints),
                None => {}
            }
            if let (Some(hinted), Some(named)) = (text(h, "sec-ch-ua-platform"), platform(ua)) {
                let hinted = hinted.trim_matches('"');
                let same = hinted == named || (named == "Chrome OS" && hinted == "Chromium OS");
                if !same {
                    out.add(Reason::PlatformMismatch);
                }
            }
            if text(h, "sec-ch-ua-mobile") == Some("?1") && !ua.contains("Mobile") && !ua.contains("Android") {
                out.add(Reason::MobileMismatch);
            }
        }
        Claimed::Firefox { .. } | Claimed::WebKit { .. } => {
            if hints.is_some() {
                out.add(Reason::ClientHintsOnNonChromium);
            }
        }
        Claimed::Other => {}
    }
    let fetch_metadata_expected = match claimed {
        Claimed::Chromium { major } => major >= 80,
        Claimed::Firefox { major } => major >= 90,
        Claimed::WebKit { version } => version >= 1604,
        Claimed::Other => false,
    };
    if secure && fetch_metadata_expected && !h.contains_key("sec-fetch-mode") {
        out.add(Reason::NoFetchMetadata);
    }
    claimed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_agents_say_what_they_claim() {
        let chrome = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
        assert_eq!(claimed(chrome), Claimed::Chromium { major: 131 });
        let firefox = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0";
        assert_eq!(claimed(firefox), Claimed::Firefox { major: 133 });
        let safari = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15";
        assert_eq!(claimed(safari), Claimed::WebKit { version: 1801 });
        let crios = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/120.0 Mobile/15E148 Safari/604.1";
        assert_eq!(claimed(crios), Claimed::WebKit { version: 0 });
        assert_eq!(claimed("curl/8.5.0"), Claimed::Other);
        assert_eq!(platform(chrome), Some("Windows"));
    }

    #[test]
    fn client_hints_give_the_chromium_major_and_headless_brands() {
        assert_eq!(
            client_hints(r#""Google Chrome";v="131", "Chromium";v="131", "Not_A Brand";v="24""#),
            (Some(131), false)
        );
        assert_eq!(
            client_hints(r#""HeadlessChrome";v="120", "Chromium";v="120""#),
            (Some(120), true)
        );
        assert_eq!(client_hints("garbage"), (None, false));
    }
}
