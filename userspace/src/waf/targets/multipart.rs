//! `multipart/form-data`: each part's field value (named by its `name`), each file's name, and the first
//! `file_content_bytes` of each file when it is text (binary uploads are not text to inspect). CRLF and bare
//! LF line ends are both accepted, as lenient servers do.

use std::borrow::Cow;

use memchr::memmem;

use super::{Location, Target};
use crate::waf::normalize::Encoding;

/// The boundary parameter of a `Content-Type` header.
pub fn boundary(content_type: &str) -> Option<&str> {
    let at = content_type.to_ascii_lowercase().find("boundary=")?;
    let rest = &content_type[at + "boundary=".len()..];
    let b = if let Some(q) = rest.strip_prefix('"') {
        q.split('"').next()?
    } else {
        rest.split(';').next()?.trim()
    };
    (!b.is_empty() && b.len() <= 200).then_some(b)
}

/// Visits the parts of `body`; false when no part was found (the caller inspects the body raw).
pub fn each(body: &[u8], boundary: &str, file_bytes: usize, f: &mut dyn FnMut(Target<'_>)) -> bool {
    let delim = format!("--{boundary}");
    let finder = memmem::Finder::new(delim.as_bytes());
    let mut starts = finder.find_iter(body).peekable();
    let mut parts = 0;
    while let Some(s) = starts.next() {
        let from = s + delim.len();
        let to = starts.peek().copied().unwrap_or(body.len());
        if body[from..].starts_with(b"--") {
            break;
        }
        let part = trim_line_end(&body[from..to]);
        let part = strip_leading_newline(part);
        let (head, content) = split_head(part);
        parts += 1;
        let head_text = String::from_utf8_lossy(head);
        let name = param(&head_text, "name").unwrap_or_default();
        match param(&head_text, "filename") {
            Some(file) => {
                f(Target {
                    location: Location::FileName,
                    name: Cow::Borrowed(name.as_str()),
                    value: file.as_bytes(),
                    encoding: Encoding::Percent,
                });
                let prefix = &content[..content.len().min(file_bytes)];
                if is_text(prefix) {
                    f(Target {
                        location: Location::FileContent,
                        name: Cow::Borrowed(name.as_str()),
                        value: prefix,
                        encoding: Encoding::Text,
                    });
                }
            }
            None => f(Target {
                location: Location::MultipartValue,
                name: Cow::Borrowed(name.as_str()),
                value: content,
                encoding: Encoding::Text,
            }),
        }
    }
    parts > 0
}

fn strip_leading_newline(b: &[u8]) -> &[u8] {
    b.strip_prefix(b"\r\n").or_else(|| b.strip_prefix(b"\n")).unwrap_or(b)
}

fn trim_line_end(b: &[u8]) -> &[u8] {
    b.strip_suffix(b"\r\n").or_else(|| b.strip_suffix(b"\n")).unwrap_or(b)
}

/// Splits a part at the blank line after its headers.
fn split_head(part: &[u8]) -> (&[u8], &[u8]) {
    if let Some(i) = memmem::find(part, b"\r\n\r\n") {
        return (&part[..i], &part[i + 4..]);
    }
    if let Some(i) = memmem::find(part, b"\n\n") {
        return (&part[..i], &part[i + 2..]);
    }
    (part, &part[part.len()..])
}

/// A `key="value"` (or unquoted) parameter of the part headers.
fn param(head: &str, key: &str) -> Option<String> {
    let lower = head.to_ascii_lowercase();
    let mut from = 0;
    while let Some(p) = lower[from..].find(key) {
        let at = from + p;
        let before_ok = at == 0 || matches!(lower.as_bytes()[at - 1], b' ' | b';' | b'\t');
        let rest = &head[at + key.len()..];
        if before_ok && let Some(v) = rest.strip_prefix('=') {
            let v = if let Some(q) = v.strip_prefix('"') {
                q.split('"').next().unwrap_or("")
            } else {
                v.split([';', '\r', '\n']).next().unwrap_or("").trim()
            };
            return Some(v.to_owned());
        }
        from = at + key.len();
    }
    None
}

/// Mostly printable UTF-8 text (not an image or archive).
fn is_text(b: &[u8]) -> bool {
    if b.is_empty() {
        return false;
    }
    let bad = b
        .iter()
        .filter(|c| **c < 0x09 || (**c > 0x0d && **c < 0x20) || **c == 0x7f)
        .count();
    bad * 20 < b.len() && std::str::from_utf8(b).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundary_is_read_quoted_or_not() {
        assert_eq!(boundary("multipart/form-data; boundary=----X1"), Some("----X1"));
        assert_eq!(boundary("multipart/form-data; boundary=\"a b\"; x=y"), Some("a b"));
        assert_eq!(boundary("multipart/form-data"), None);
    }

    #[test]
    fn fields_file_names_and_text_file_content_are_visited() {
        let body = b"--B\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nhello\r\n--B\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a.txt\"\r\nContent-Type: text/plain\r\n\r\nsome text\r\n--B\r\nContent-Disposition: form-data; name=\"img\"; filename=\"x.png\"\r\n\r\n\x89PNG\x00\x00\x01\x02\x03\r\n--B--\r\n";
        let mut seen = Vec::new();
        assert!(each(body, "B", 4096, &mut |t| {
            seen.push((
                t.location,
                t.name.into_owned(),
                String::from_utf8_lossy(t.value).into_owned(),
            ));
        }));
        assert!(seen.contains(&(Location::MultipartValue, "title".into(), "hello".into())));
        assert!(seen.contains(&(Location::FileName, "f".into(), "a.txt".into())));
        assert!(seen.contains(&(Location::FileContent, "f".into(), "some text".into())));
        assert!(seen.contains(&(Location::FileName, "img".into(), "x.png".into())));
        assert!(!seen.iter().any(|s| s.0 == Location::FileContent && s.1 == "img"));
    }

    #[test]
    fn bare_lf_line_ends_are_accepted() {
        let body = b"--B\nContent-Disposition: form-data; name=\"a\"\n\nvalue\n--B--\n";
        let mut seen = Vec::new();
        each(body, "B", 10, &mut |t| {
            seen.push(String::from_utf8_lossy(t.value).into_owned())
        });
        assert_eq!(seen, vec!["value"]);
    }
}
