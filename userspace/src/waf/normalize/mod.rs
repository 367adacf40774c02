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
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
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
    if is_plain(raw, encoding == Encoding::Form, lowercase)
        && let Ok(text) = std::str::from_utf8(raw)
    {
        // Most values: nothing any stage below would change.
        return Canonical {
            text,
            anomalies: Anomalies::default(),
        };
    }
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

/// Bytes that make some stage of [`decoded`] act: `%` (and `+` in forms) for percent-decoding, `&` for
/// character references, NUL, and anything non-ASCII (invalid UTF-8 or a Unicode fold). Upper case only
/// matters when lower-casing.
const fn special_bytes(plus: bool, upper: bool) -> [bool; 256] {
    let mut t = [false; 256];
    let mut b = 0x80;
    while b < 256 {
        t[b] = true;
        b += 1;
    }
    t[0] = true;
    t[b'%' as usize] = true;
    t[b'&' as usize] = true;
    if plus {
        t[b'+' as usize] = true;
    }
    if upper {
        let mut c = b'A';
        while c <= b'Z' {
            t[c as usize] = true;
            c += 1;
        }
    }
    t
}

const SPECIAL: [[bool; 256]; 4] = [
    special_bytes(false, false),
    special_bytes(true, false),
    special_bytes(false, true),
    special_bytes(true, true),
];

/// Whether no stage of [`decoded`] would change `raw`: one pass over a byte table instead of one per stage.
fn is_plain(raw: &[u8], plus: bool, lowercase: bool) -> bool {
    let table = &SPECIAL[usize::from(plus) | usize::from(lowercase) << 1];
    !raw.iter().any(|&b| table[usize::from(b)])
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
    fn the_plain_shortcut_agrees_with_every_stage() {
        // Each of these has one byte that some stage acts on; the shortcut must not take them.
        for (raw, enc, want) in [
            ("a+b", Encoding::Form, "a b"),
            ("a+b", Encoding::Percent, "a+b"),
            ("%41", Encoding::Percent, "a"),
            ("&lt;", Encoding::Text, "<"),
            ("S\0E", Encoding::Percent, "se"),
            ("ＳＥＬＥＣＴ", Encoding::Percent, "select"),
            ("Plain-Value_1.2", Encoding::Form, "plain-value_1.2"),
        ] {
            assert_eq!(canon(raw, enc), want, "{raw:?} as {enc:?}");
        }
        let mut buf = Buffers::default();
        let c = decoded(b"A\0B", Encoding::Percent, 3, &mut buf, false);
        assert_eq!(c.text, "AB", "a NUL byte is removed even when case is kept");
        let raw = b"MixedCase";
        let c = decoded(raw, Encoding::Form, 3, &mut buf, false);
        assert_eq!(c.text.as_ptr(), raw.as_ptr(), "nothing to do: borrowed");
    }

    #[test]
    fn invalid_utf8_is_replaced_and_flagged() {
        let mut buf = Buffers::default();
        let c = canonical(b"%ff%fe", Encoding::Percent, 3, &mut buf);
        assert!(c.anomalies.invalid_utf8);
        assert!(c.text.contains('\u{fffd}'));
    }
}
