//! What can make a client look like a bot, each with the weight it adds. Weights combine as independent
//! evidence (`1 - Π(1 - w)`): two weak signals make a stronger one, and no number of them passes 1.
//!
//! The weights put one tool signature (curl, python-requests, Go's client: 0.75) at or above the default
//! block threshold (0.7), a headless browser (0.6) between the challenge and block thresholds, and a single
//! missing browser header (0.25–0.3) below the challenge threshold, so that one proxy or privacy extension
//! stripping a header never challenges a person.

/// One reason, with its bit in `Reasons`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Reason {
    /// `waf.bot_protection.blocked_user_agents` matched.
    BlockedAgent,
    EmptyAgent,
    /// Attack and reconnaissance tools (sqlmap, nikto, nuclei, …).
    ScannerTool,
    /// HTTP libraries and command-line clients (curl, python-requests, Go-http-client, …).
    HttpLibrary,
    /// Headless browsers and automation frameworks (HeadlessChrome, PhantomJS, Selenium, …).
    Headless,
    /// No `product/version` token, control characters, or an implausible length.
    MalformedAgent,
    /// The agent says it is a crawler.
    SelfDeclaredBot,
    /// The agent names a verified crawler, but the address is not that crawler's.
    ForgedCrawler,
    NoAccept,
    NoAcceptLanguage,
    NoAcceptEncoding,
    /// A Chromium browser that should send `sec-ch-ua` here but did not.
    NoClientHints,
    /// `sec-ch-ua` names another major version than the user agent.
    ClientHintsMismatch,
    /// Firefox or Safari do not send client hints; a client that does is not what it claims.
    ClientHintsOnNonChromium,
    /// `sec-ch-ua-platform` names another operating system than the user agent.
    PlatformMismatch,
    /// `sec-ch-ua-mobile: ?1` with a desktop user agent.
    MobileMismatch,
    /// A browser that should send `Sec-Fetch-Mode` here but did not.
    NoFetchMetadata,
    /// Behaviour: more requests per ten seconds than a person's page loads make.
    HighRate,
    /// Behaviour: gaps between requests as even as a timer's.
    RegularTiming,
    /// Behaviour: almost every request to a new path.
    Crawling,
    /// Behaviour: most answers are client errors (probing for paths that do not exist).
    ErrorRatio,
}

impl Reason {
    pub const ALL: [Reason; 21] = [
        Reason::BlockedAgent,
        Reason::EmptyAgent,
        Reason::ScannerTool,
        Reason::HttpLibrary,
        Reason::Headless,
        Reason::MalformedAgent,
        Reason::SelfDeclaredBot,
        Reason::ForgedCrawler,
        Reason::NoAccept,
        Reason::NoAcceptLanguage,
        Reason::NoAcceptEncoding,
        Reason::NoClientHints,
        Reason::ClientHintsMismatch,
        Reason::ClientHintsOnNonChromium,
        Reason::PlatformMismatch,
        Reason::MobileMismatch,
        Reason::NoFetchMetadata,
        Reason::HighRate,
        Reason::RegularTiming,
        Reason::Crawling,
        Reason::ErrorRatio,
    ];

    pub fn weight(self) -> f64 {
        match self {
            Self::BlockedAgent => 1.0,
            Self::ScannerTool => 0.95,
            Self::ForgedCrawler => 0.9,
            Self::EmptyAgent | Self::HttpLibrary => 0.75,
            Self::Headless => 0.6,
            Self::SelfDeclaredBot | Self::ClientHintsMismatch | Self::ClientHintsOnNonChromium => 0.5,
            Self::MalformedAgent | Self::PlatformMismatch => 0.4,
            Self::RegularTiming => 0.35,
            Self::NoAccept
            | Self::NoAcceptLanguage
            | Self::NoClientHints
            | Self::NoFetchMetadata
            | Self::MobileMismatch
            | Self::HighRate
            | Self::ErrorRatio => 0.3,
            Self::NoAcceptEncoding => 0.25,
            Self::Crawling => 0.2,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::BlockedAgent => "blocked_user_agent",
            Self::EmptyAgent => "empty_user_agent",
            Self::ScannerTool => "scanner_tool",
            Self::HttpLibrary => "http_library",
            Self::Headless => "headless_browser",
            Self::MalformedAgent => "malformed_user_agent",
            Self::SelfDeclaredBot => "self_declared_bot",
            Self::ForgedCrawler => "forged_crawler",
            Self::NoAccept => "no_accept",
            Self::NoAcceptLanguage => "no_accept_language",
            Self::NoAcceptEncoding => "no_accept_encoding",
            Self::NoClientHints => "no_client_hints",
            Self::ClientHintsMismatch => "client_hints_mismatch",
            Self::ClientHintsOnNonChromium => "client_hints_on_non_chromium",
            Self::PlatformMismatch => "platform_mismatch",
            Self::MobileMismatch => "mobile_mismatch",
            Self::NoFetchMetadata => "no_fetch_metadata",
            Self::HighRate => "high_rate",
            Self::RegularTiming => "regular_timing",
            Self::Crawling => "crawling",
            Self::ErrorRatio => "error_ratio",
        }
    }
}

/// A set of reasons (a bit per `Reason`): collecting them allocates nothing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Reasons(u32);

impl Reasons {
    pub fn add(&mut self, r: Reason) {
        self.0 |= 1 << (r as u8);
    }

    pub fn contains(self, r: Reason) -> bool {
        self.0 & (1 << (r as u8)) != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn iter(self) -> impl Iterator<Item = Reason> {
        Reason::ALL.into_iter().filter(move |r| self.contains(*r))
    }

    /// The combined score in 0..=1.
    pub fn score(self) -> f64 {
        1.0 - self.iter().map(|r| 1.0 - r.weight()).product::<f64>()
    }

    /// Comma-separated names, for logs.
    pub fn names(self) -> String {
        self.iter().map(Reason::name).collect::<Vec<_>>().join(",")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_are_distinct_and_fit() {
        let mut all = Reasons::default();
        for r in Reason::ALL {
            assert!(!all.contains(r), "{r:?} shares a bit");
            all.add(r);
        }
        assert_eq!(all.iter().count(), Reason::ALL.len());
        assert!(all.score() <= 1.0);
    }

    #[test]
    fn evidence_combines_without_passing_one() {
        let mut r = Reasons::default();
        assert_eq!(r.score(), 0.0);
        r.add(Reason::NoAccept);
        assert!((r.score() - 0.3).abs() < 1e-9);
        r.add(Reason::NoAcceptLanguage);
        assert!((r.score() - 0.51).abs() < 1e-9);
        assert_eq!(r.names(), "no_accept,no_accept_language");
    }
}
