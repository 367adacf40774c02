//! XML external entities: a document type declaration that defines entities, external (`SYSTEM`/`PUBLIC`) or
//! parameter (`%name;`) ones above all, and XInclude. Runs on values and on the raw prolog of XML bodies
//! (`prolog` below), since XML targets skip declarations.

use std::sync::LazyLock;

use super::{Ctx, Hit, Signatures};

pub const FRAGMENTS: &[&str] = &[
    "<!entity",
    "<!doctype",
    "xinclude",
    "xi:include",
    "<!element",
    "<!attlist",
    "system \"",
    "system '",
    "<xsl:",
];

static RULES: LazyLock<Signatures> = LazyLock::new(|| {
    Signatures::new(&[
        (
            r"<!entity\s+%?\s*[\w.:-]+\s+(?:system|public)\b",
            0.97,
            "xxe.external_entity",
        ),
        (r"<!entity\s+%\s*[\w.:-]+", 0.95, "xxe.parameter_entity"),
        (r"<!entity\s+[\w.:-]+\s+['\x22]", 0.85, "xxe.internal_entity"),
        (
            r"<!doctype\s+[\w.:-]+\s+(?:system|public)\s+['\x22]",
            0.9,
            "xxe.external_dtd",
        ),
        (r"<!doctype\s+[\w.:-]+\s*\[", 0.85, "xxe.internal_subset"),
        (
            r"<xi:include\b|xmlns:xi\s*=\s*['\x22]http://www\.w3\.org/2001/xinclude",
            0.9,
            "xxe.xinclude",
        ),
        (
            r"<xsl:(?:value-of|copy-of)[^>]*(?:system-property|document|unparsed-text)\s*\(",
            0.88,
            "xxe.xslt_read",
        ),
        (r"<!(?:element|attlist)\s+[\w.:-]+", 0.8, "xxe.dtd_declaration"),
    ])
});

pub fn detect(s: &str, _ctx: &Ctx) -> Option<Hit> {
    let mut best: Option<Hit> = None;
    if let Some(h) = RULES.best(s) {
        best = Hit::max(best, h);
    }
    best
}

/// The part of an XML body before its root element (declarations live there), lower-cased, bounded.
pub fn prolog(body: &[u8]) -> Option<String> {
    let head = &body[..body.len().min(16 * 1024)];
    let text = String::from_utf8_lossy(head);
    let lower = text.to_ascii_lowercase();
    (lower.contains("<!doctype") || lower.contains("<!entity") || lower.contains("xinclude") || lower.contains("<xsl:"))
        .then_some(lower)
}

#[cfg(test)]
mod tests {
    use crate::waf::detect::test_support::confidence;
    use crate::waf::family::Family;

    fn c(s: &str) -> f32 {
        confidence(Family::Xxe, s)
    }

    #[test]
    fn external_and_parameter_entities_are_xxe() {
        assert!(c("<!DOCTYPE foo [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]><foo>&xxe;</foo>") >= 0.9);
        assert!(c("<!DOCTYPE x [ <!ENTITY % y SYSTEM \"//y/y\" > %y; ]>") >= 0.9);
        assert!(
            c("<foo xmlns:xi=\"http://www.w3.org/2001/XInclude\"><xi:include href=\"file:///etc/passwd\"/></foo>")
                >= 0.9
        );
    }

    #[test]
    fn plain_xml_passes() {
        assert!(c("<?xml version=\"1.0\"?><order><id>5</id></order>") < 0.5);
    }
}
