//! Decoding and canonicalisation: every value is turned into the one form an attack in it would take once the
//! application has decoded it, and the detectors match that form. The steps, in order: percent-decoding
//! (repeated, `%u`, overlong UTF-8; `url`), invalid UTF-8 replaced, Unicode folding (full-width forms;
//! `unicode`), HTML character references (`entity`), NUL bytes removed, ASCII lower-casing. Base64 (`base64`)
//! and path canonicalisation (`path`) are applied by the caller where a value calls for them.
//!
//! Bounded in work (a fixed number of passes, each linear) and allocation-free after warm-up: every stage
//! writes into a buffer of [`Buffers`], which the engine reuses from value to value, and a stage that has
//! nothing to do borrows its input. Must not know about attack families.

pub mod base64;
pub mod entity;
pub mod path;
pub mod unicode;
pub mod url;

pub use url::UrlAnomalies;

/// Reusable scratch space for [`canonical`]; one per inspection (or per thread).
#[derive(Default)]
pub struct Buffers {
    bytes: Vec<u8>,
    scratch: Vec<u8>,
    utf8: String,
    folded: String,
    entities: String,
    entities_again: String,
    lower: String,
}

/// What canonicalisation noticed, beyond the text itself.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Anomalies {
    pub url: UrlAnomalies,
    /// Invalid UTF-8 after decoding.
    pub invalid_utf8: bool,
    /// Full-width or other folded Unicode forms were present.
    pub folded_unicode: bool,
    /// A numeric character reference to `<`.
    pub encoded_angle: bool,
}

/// A value in canonical form: lower-cased, decoded text.
pub struct Canonical<'x> {
    pub text: &'x str,
    pub anomalies: Anomalies,
}

/// How a value arrived, which decides how it is decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    /// Form or query encoding: `+` is a space, then percent-decoding.
    Form,
    /// Percent-encoding without `+` (paths, cookies, headers).
    Percent,
    /// Already decoded text (JSON strings, XML text): percent-decoding is still tried, since applications
    /// decode again.
    Text,
}

/// The canonical form of `raw`, using `buf` for every intermediate step.
pub fn canonical<'x>(raw: &'x [u8], encoding: Encoding, passes: u8, buf: &'x mut Buffers) -> Canonical<'x> {
    decoded(raw, encoding, passes, buf, true)
}

/// Like [`canonical`], but leaves ASCII case alone when `lowercase` is false (for callers that match
/// case-insensitively first and lower the text only when a detector will read it).
pub fn decoded<'x>(
    raw: &'x [u8],
    encoding: Encoding,
    passes: u8,
    buf: &'x mut Buffers,
    lowercase: bool,
) -> Canonical<'x> {
    let mut anomalies = Anomalies::default();
    let Buffers {
        bytes,
        scratch,
        utf8,
        folded,
        entities,
        entities_again,
        lower,
    } = buf;
    let plus = encoding == Encoding::Form;
    let decoded: &[u8] = if url::decode(raw, plus, passes.max(1), bytes, scratch, &mut anomalies.url) {
        bytes
    } else {
        raw
    };
    let text: &str = match std::str::from_utf8(decoded) {
        Ok(s) => s,
        Err(_) => {
            anomalies.invalid_utf8 = true;
            utf8.clear();
            utf8.push_str(&String::from_utf8_lossy(decoded));
            utf8
        }
    };
    let text: &str = if unicode::fold(text, folded) {
        anomalies.folded_unicode = true;
        folded
    } else {
        text
    };
    anomalies.encoded_angle = text.contains("&#") && entity::encodes_angle(text);
    let text: &str = if entity::decode(text, entities) {
        // Double-encoded references (`&amp;lt;`) are a common bypass: one more pass when one produced `&`.
        if entities.contains('&') && entity::decode(entities, entities_again) {
            entities_again
        } else {
            entities
        }
    } else {
        text
    };
    let text: &str = if lowercase && text.bytes().any(|b| b.is_ascii_uppercase() || b == 0) {
        lower.clear();
        lower.extend(text.chars().filter(|c| *c != '\0').map(|c| c.to_ascii_lowercase()));
        lower
    } else if text.as_bytes().contains(&0) {
        lower.clear();
        lower.extend(text.chars().filter(|c| *c != '\0'));
        lower
    } else {
        text
    };
    Canonical { text, anomalies }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(raw: &str, enc: Encoding) -> String {
        let mut buf = Buffers::default();
        canonical(raw.as_bytes(), enc, 3, &mut buf).text.to_owned()
    }

    #[test]
    fn every_stage_applies_in_order() {
        assert_eq!(canon("%253Cscript%253E", Encoding::Percent), "<script>");
        assert_eq!(canon("%EF%BC%9Cscript%EF%BC%9E", Encoding::Percent), "<script>");
        assert_eq!(canon("&lt;IMG+SRC%3Dx&gt;", Encoding::Form), "<img src=x>");
        assert_eq!(canon("SEL%00ECT", Encoding::Percent), "select");
    }

    #[test]
    fn a_clean_lowercase_value_is_borrowed_not_copied() {
        let mut buf = Buffers::default();
        let raw = b"hello-world";
        let c = canonical(raw, Encoding::Form, 3, &mut buf);
        assert_eq!(c.text.as_ptr(), raw.as_ptr());
    }

    #[test]
    fn invalid_utf8_is_replaced_and_flagged() {
        let mut buf = Buffers::default();
        let c = canonical(b"%ff%fe", Encoding::Percent, 3, &mut buf);
        assert!(c.anomalies.invalid_utf8);
        assert!(c.text.contains('\u{fffd}'));
    }
}
