//! The matchers: one module per attack family, each a pure function from a canonical (decoded, lower-cased)
//! value to an optional [`Hit`] with a confidence 0.0–1.0. Each module also lists the literal fragments that
//! any attack it detects must contain (`FRAGMENTS`); the engine's Aho-Corasick prefilter runs a detector only
//! on values containing one of its fragments, so a fragment list must be complete for what its detector can
//! find. Request-level checks (`protocol`, `csrf`, `scanner`) look at the request instead of single values.
//!
//! Detectors never decide: thresholds, exclusions and actions are `policy`'s. They never allocate on a value
//! they do not match, except where noted.

pub mod crlf;
pub mod csrf;
pub mod graphql;
pub mod ldap;
pub mod log4shell;
pub mod mail;
pub mod nosql;
pub mod protocol;
pub mod rce;
pub mod redirect;
pub mod scanner;
pub mod sqli;
pub mod ssi;
pub mod ssrf;
pub mod ssti;
pub mod traversal;
pub mod xss;
pub mod xxe;

use super::family::Family;
use super::targets::Location;

/// What a detector knows about the value besides its text.
#[derive(Clone, Copy, Debug)]
pub struct Ctx {
    pub location: Location,
}

/// A match: how sure the detector is, where in the canonical value, and which of its rules matched.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Hit {
    pub confidence: f32,
    pub start: usize,
    pub end: usize,
    pub rule: &'static str,
}

impl Hit {
    pub fn new(confidence: f32, start: usize, end: usize, rule: &'static str) -> Self {
        Self {
            confidence,
            start,
            end,
            rule,
        }
    }

    /// The more confident of two hits.
    pub fn max(a: Option<Hit>, b: Hit) -> Option<Hit> {
        match a {
            Some(a) if a.confidence >= b.confidence => Some(a),
            _ => Some(b),
        }
    }
}

/// The families whose detectors look at single values, with their prefilter fragments.
pub fn value_families() -> impl Iterator<Item = (Family, &'static [&'static str])> {
    [
        (Family::SqlInjection, sqli::FRAGMENTS),
        (Family::Xss, xss::FRAGMENTS),
        (Family::Rce, rce::FRAGMENTS),
        (Family::PathTraversal, traversal::FRAGMENTS),
        (Family::Ssrf, ssrf::FRAGMENTS),
        (Family::Ssti, ssti::FRAGMENTS),
        (Family::Ssi, ssi::FRAGMENTS),
        (Family::Xxe, xxe::FRAGMENTS),
        (Family::NosqlInjection, nosql::FRAGMENTS),
        (Family::LdapInjection, ldap::FRAGMENTS),
        (Family::CrlfInjection, crlf::FRAGMENTS),
        (Family::MailInjection, mail::FRAGMENTS),
        (Family::OpenRedirect, redirect::FRAGMENTS),
        (Family::GraphqlIntrospection, graphql::FRAGMENTS),
        (Family::Log4shell, log4shell::FRAGMENTS),
    ]
    .into_iter()
}

/// Whether `family`'s value detector applies to values found at `location`.
pub fn applies(family: Family, location: Location) -> bool {
    use Location as L;
    match family {
        // Structural attacks on the application's data, not its metadata.
        Family::Ssrf | Family::OpenRedirect => location.is_argument_value() || location == L::Header,
        Family::NosqlInjection => location.is_argument_value() || location.is_name() || location == L::Path,
        Family::CrlfInjection => !matches!(location, L::FileContent),
        Family::Xxe => location.is_body() || location.is_argument_value(),
        // A user agent is free text; only the families that attack through it are run on it.
        _ if location == L::UserAgent => matches!(
            family,
            Family::SqlInjection | Family::Xss | Family::Rce | Family::Log4shell | Family::Ssti | Family::PathTraversal
        ),
        _ => true,
    }
}

/// Runs `family`'s value detector on canonical text `s`.
pub fn run(family: Family, s: &str, ctx: &Ctx) -> Option<Hit> {
    match family {
        Family::SqlInjection => sqli::detect(s, ctx),
        Family::Xss => xss::detect(s, ctx),
        Family::Rce => rce::detect(s, ctx),
        Family::PathTraversal => traversal::detect(s, ctx),
        Family::Ssrf => ssrf::detect(s, ctx),
        Family::Ssti => ssti::detect(s, ctx),
        Family::Ssi => ssi::detect(s, ctx),
        Family::Xxe => xxe::detect(s, ctx),
        Family::NosqlInjection => nosql::detect(s, ctx),
        Family::LdapInjection => ldap::detect(s, ctx),
        Family::CrlfInjection => crlf::detect(s, ctx),
        Family::MailInjection => mail::detect(s, ctx),
        Family::OpenRedirect => redirect::detect(s, ctx),
        Family::GraphqlIntrospection => graphql::detect(s, ctx),
        Family::Log4shell => log4shell::detect(s, ctx),
        Family::Protocol | Family::Csrf | Family::Scanner => None,
    }
}

/// Compiles every detector's patterns now (they are compiled once per process), so that the first request
/// after start-up does not pay for it.
pub fn warm_up() {
    let ctx = Ctx {
        location: Location::QueryValue,
    };
    for (family, _) in value_families() {
        let _ = run(
            family,
            "warm-up ' <a x=1> ${x} {{x}} ; id ../ http://x/ \n\r(a=1) $ne",
            &ctx,
        );
    }
}

/// A family's signature regexes, matched in one pass by a `RegexSet`; only the ones that match are run again
/// for their position.
pub(crate) struct Signatures {
    set: regex::RegexSet,
    rules: Vec<(regex::Regex, f32, &'static str)>,
}

impl Signatures {
    pub(crate) fn new(list: &[(&str, f32, &'static str)]) -> Self {
        let set = regex::RegexSet::new(list.iter().map(|(p, _, _)| ascii_boundaries(p)))
            .unwrap_or_else(|e| panic!("built-in signature patterns are invalid: {e}"));
        Self {
            set,
            rules: list.iter().map(|(p, c, r)| (regex(p), *c, *r)).collect(),
        }
    }

    /// The most confident matching signature.
    pub(crate) fn best(&self, s: &str) -> Option<Hit> {
        let matched = self.set.matches(s);
        let mut best = None;
        for i in matched.iter() {
            let (re, c, rule) = &self.rules[i];
            if let Some(m) = re.find(s) {
                best = Hit::max(best, Hit::new(*c, m.start(), m.end(), rule));
            }
        }
        best
    }
}

/// A compiled regex from a pattern known at compile time to be valid (checked by every detector's tests).
pub(crate) fn regex(pattern: &str) -> regex::Regex {
    let pattern = ascii_boundaries(pattern);
    regex::Regex::new(&pattern).unwrap_or_else(|e| panic!("built-in pattern {pattern:?} is invalid: {e}"))
}

/// `\b` as an ASCII word boundary. A Unicode one makes the regex engine leave its DFA for the PikeVM on any
/// non-ASCII input, which costs milliseconds on a long value; values are matched lower-cased, and every
/// keyword the patterns bound is ASCII.
fn ascii_boundaries(pattern: &str) -> String {
    pattern.replace(r"\b", r"(?-u:\b)")
}

#[cfg(test)]
pub(crate) mod test_support {
    use super::*;

    /// The confidence of `family` on `raw` as a query value (after the normaliser's canonical form).
    pub fn confidence(family: Family, raw: &str) -> f32 {
        confidence_at(family, raw, Location::QueryValue)
    }

    pub fn confidence_at(family: Family, raw: &str, location: Location) -> f32 {
        let mut buf = crate::waf::normalize::Buffers::default();
        let c = crate::waf::normalize::canonical(raw.as_bytes(), crate::waf::normalize::Encoding::Percent, 3, &mut buf);
        run(family, c.text, &Ctx { location }).map_or(0.0, |h| h.confidence)
    }
}
