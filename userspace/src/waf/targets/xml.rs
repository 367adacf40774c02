//! XML bodies (and SOAP): text content, CDATA content and attribute values, each a value; entity references
//! are left for the normaliser. Declarations (`<?xml`, `<!DOCTYPE`) are skipped here: the XXE detector reads
//! the body's prolog itself. A lenient scanner, not a validating parser: malformed XML is still walked.

use std::borrow::Cow;

use memchr::memmem;

use super::{Location, Target};
use crate::waf::normalize::Encoding;

/// Visits text and attribute values; false when the body had no element at all.
///
/// Text and CDATA sections that follow each other are one value (`<![CDATA[<]]>script<![CDATA[>]]>` is
/// `<script>` to whoever reads the text), and each start tag is also a value as written, so markup that an
/// XML document carries for an HTML page is seen as markup.
pub fn each(body: &[u8], max_depth: usize, f: &mut dyn FnMut(Target<'_>)) -> bool {
    let mut i = 0;
    let mut depth = 0usize;
    let mut elements = 0;
    let mut element_name: &[u8] = b"";
    let mut pending: Vec<u8> = Vec::new();
    let flush = |pending: &mut Vec<u8>, element: &[u8], f: &mut dyn FnMut(Target<'_>)| {
        text(pending, element, f);
        pending.clear();
    };
    while i < body.len() {
        let Some(p) = memchr::memchr(b'<', &body[i..]) else {
            pending.extend_from_slice(&body[i..]);
            break;
        };
        let lt = i + p;
        pending.extend_from_slice(&body[i..lt]);
        let rest = &body[lt..];
        if rest.starts_with(b"<!--") {
            i = memmem::find(rest, b"-->").map_or(body.len(), |e| lt + e + 3);
        } else if rest.starts_with(b"<![CDATA[") {
            let end = memmem::find(rest, b"]]>").unwrap_or(rest.len());
            pending.extend_from_slice(&rest[9.min(end)..end]);
            i = (lt + end + 3).min(body.len());
        } else if rest.starts_with(b"<?") {
            i = memmem::find(rest, b"?>").map_or(body.len(), |e| lt + e + 2);
        } else if rest.starts_with(b"<!") {
            i = declaration_end(rest).map_or(body.len(), |e| lt + e);
        } else if rest.starts_with(b"</") {
            flush(&mut pending, element_name, f);
            depth = depth.saturating_sub(1);
            i = memchr::memchr(b'>', rest).map_or(body.len(), |e| lt + e + 1);
        } else {
            flush(&mut pending, element_name, f);
            let end = tag_end(rest).unwrap_or(rest.len());
            let tag = &rest[1..end.saturating_sub(1).max(1)];
            let name_len = tag
                .iter()
                .take_while(|c| !c.is_ascii_whitespace() && **c != b'/' && **c != b'>')
                .count();
            element_name = &tag[..name_len];
            elements += 1;
            f(Target {
                location: Location::XmlText,
                name: String::from_utf8_lossy(element_name),
                value: &rest[..end],
                encoding: Encoding::Text,
            });
            if depth < max_depth {
                attributes(&tag[name_len..], f);
            }
            if !tag.ends_with(b"/") {
                depth += 1;
            }
            i = lt + end;
        }
    }
    flush(&mut pending, element_name, f);
    elements > 0
}

fn text(t: &[u8], element: &[u8], f: &mut dyn FnMut(Target<'_>)) {
    let t = t.trim_ascii();
    if !t.is_empty() {
        f(Target {
            location: Location::XmlText,
            name: String::from_utf8_lossy(element),
            value: t,
            encoding: Encoding::Text,
        });
    }
}

/// End (exclusive) of a tag, honouring quoted attribute values that contain `>`.
fn tag_end(s: &[u8]) -> Option<usize> {
    let mut quote = 0u8;
    for (i, &c) in s.iter().enumerate().skip(1) {
        match (quote, c) {
            (0, b'"' | b'\'') => quote = c,
            (q, c) if q != 0 && c == q => quote = 0,
            (0, b'>') => return Some(i + 1),
            _ => {}
        }
    }
    None
}

/// End of `<!DOCTYPE ... [ ... ]>` including an internal subset.
fn declaration_end(s: &[u8]) -> Option<usize> {
    let mut bracket = 0i32;
    for (i, &c) in s.iter().enumerate() {
        match c {
            b'[' => bracket += 1,
            b']' => bracket -= 1,
            b'>' if bracket <= 0 => return Some(i + 1),
            _ => {}
        }
    }
    None
}

fn attributes(mut s: &[u8], f: &mut dyn FnMut(Target<'_>)) {
    loop {
        let Some(eq) = memchr::memchr(b'=', s) else { return };
        let name = s[..eq].trim_ascii();
        let rest = s[eq + 1..].trim_ascii_start();
        let (value, next) = match rest.first() {
            Some(&q @ (b'"' | b'\'')) => match memchr::memchr(q, &rest[1..]) {
                Some(e) => (&rest[1..1 + e], &rest[e + 2..]),
                None => (&rest[1..], &rest[rest.len()..]),
            },
            _ => {
                let e = rest.iter().position(|c| c.is_ascii_whitespace()).unwrap_or(rest.len());
                (&rest[..e], &rest[e..])
            }
        };
        if !value.is_empty() {
            f(Target {
                location: Location::XmlAttribute,
                name: Cow::Owned(String::from_utf8_lossy(name).into_owned()),
                value,
                encoding: Encoding::Text,
            });
        }
        s = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_cdata_and_attributes_are_visited_and_declarations_skipped() {
        let body = br#"<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x "y">]><a id="1"><b>hello &amp; bye</b><![CDATA[<raw>]]><!-- c --><c k='v>w'/></a>"#;
        let mut seen = Vec::new();
        assert!(each(body, 32, &mut |t| seen
            .push((t.location, String::from_utf8_lossy(t.value).into_owned()))));
        assert!(seen.contains(&(Location::XmlAttribute, "1".into())));
        assert!(seen.contains(&(Location::XmlText, "hello &amp; bye".into())));
        assert!(seen.contains(&(Location::XmlText, "<raw>".into())));
        assert!(seen.contains(&(Location::XmlAttribute, "v>w".into())));
        assert!(!seen.iter().any(|s| s.1.contains("ENTITY")));
    }

    #[test]
    fn text_split_by_cdata_sections_is_one_value() {
        let body = b"<a><![CDATA[<]]>script<![CDATA[>]]>alert(1)</a>";
        let mut seen = Vec::new();
        each(body, 32, &mut |t| {
            seen.push(String::from_utf8_lossy(t.value).into_owned())
        });
        assert!(seen.contains(&"<script>alert(1)".to_owned()), "{seen:?}");
    }

    #[test]
    fn a_body_without_elements_is_reported() {
        assert!(!each(b"just text", 32, &mut |_| {}));
    }
}
