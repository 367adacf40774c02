//! JSON bodies: every key and every string value, at any depth up to the limit, with escapes (`\u0027`,
//! surrogate pairs) decoded. A hand-written scanner rather than `serde_json::Value`: it borrows every string
//! that has no escape, builds no tree, and stops at the depth limit instead of recursing without bound.

use std::borrow::Cow;

use super::{Location, Target};
use crate::waf::normalize::Encoding;

#[derive(Debug, PartialEq, Eq)]
pub enum JsonError {
    Syntax(usize),
    TooDeep,
}

struct Scanner<'a, 'f> {
    b: &'a [u8],
    /// The body as text when it is valid UTF-8 (checked once, not once per string): strings end at an
    /// ASCII `"`, so their spans are character boundaries.
    text: Option<&'a str>,
    i: usize,
    max_depth: usize,
    f: &'f mut dyn FnMut(Target<'_>),
}

/// Visits every key and string of `body`; an error means the body is not (entirely) valid JSON within the
/// limits, and the caller also inspects it as raw text.
pub fn each(body: &[u8], max_depth: usize, f: &mut dyn FnMut(Target<'_>)) -> Result<(), JsonError> {
    let mut s = Scanner {
        b: body,
        text: std::str::from_utf8(body).ok(),
        i: 0,
        max_depth,
        f,
    };
    s.ws();
    s.value(0, "")?;
    s.ws();
    if s.i != s.b.len() {
        return Err(JsonError::Syntax(s.i));
    }
    Ok(())
}

impl<'a> Scanner<'a, '_> {
    fn ws(&mut self) {
        while self.i < self.b.len() && matches!(self.b[self.i], b' ' | b'\t' | b'\n' | b'\r') {
            self.i += 1;
        }
    }

    fn expect(&mut self, c: u8) -> Result<(), JsonError> {
        self.ws();
        if self.b.get(self.i) == Some(&c) {
            self.i += 1;
            Ok(())
        } else {
            Err(JsonError::Syntax(self.i))
        }
    }

    fn value(&mut self, depth: usize, key: &str) -> Result<(), JsonError> {
        self.ws();
        match self.b.get(self.i) {
            Some(b'{') => {
                if depth >= self.max_depth {
                    return Err(JsonError::TooDeep);
                }
                self.i += 1;
                self.ws();
                if self.b.get(self.i) == Some(&b'}') {
                    self.i += 1;
                    return Ok(());
                }
                loop {
                    self.ws();
                    let k = self.string()?;
                    let name = k.clone();
                    (self.f)(Target {
                        location: Location::JsonKey,
                        name: Cow::Borrowed(""),
                        value: k.as_bytes(),
                        encoding: Encoding::Text,
                    });
                    self.expect(b':')?;
                    self.value(depth + 1, &name)?;
                    self.ws();
                    match self.b.get(self.i) {
                        Some(b',') => self.i += 1,
                        Some(b'}') => {
                            self.i += 1;
                            return Ok(());
                        }
                        _ => return Err(JsonError::Syntax(self.i)),
                    }
                }
            }
            Some(b'[') => {
                if depth >= self.max_depth {
                    return Err(JsonError::TooDeep);
                }
                self.i += 1;
                self.ws();
                if self.b.get(self.i) == Some(&b']') {
                    self.i += 1;
                    return Ok(());
                }
                loop {
                    self.value(depth + 1, key)?;
                    self.ws();
                    match self.b.get(self.i) {
                        Some(b',') => self.i += 1,
                        Some(b']') => {
                            self.i += 1;
                            return Ok(());
                        }
                        _ => return Err(JsonError::Syntax(self.i)),
                    }
                }
            }
            Some(b'"') => {
                let s = self.string()?;
                (self.f)(Target {
                    location: Location::JsonValue,
                    name: Cow::Borrowed(key),
                    value: s.as_bytes(),
                    encoding: Encoding::Text,
                });
                Ok(())
            }
            Some(c) if c.is_ascii_digit() || *c == b'-' || c.is_ascii_alphabetic() => {
                // Numbers and literals carry no text to inspect.
                while self.i < self.b.len()
                    && (self.b[self.i].is_ascii_alphanumeric() || matches!(self.b[self.i], b'.' | b'-' | b'+'))
                {
                    self.i += 1;
                }
                Ok(())
            }
            _ => Err(JsonError::Syntax(self.i)),
        }
    }

    /// A string at the cursor, borrowed when it has no escapes.
    fn string(&mut self) -> Result<Cow<'a, str>, JsonError> {
        if self.b.get(self.i) != Some(&b'"') {
            return Err(JsonError::Syntax(self.i));
        }
        let start = self.i + 1;
        let Some(end) = memchr::memchr2(b'"', b'\\', &self.b[start..]).map(|p| start + p) else {
            return Err(JsonError::Syntax(self.i));
        };
        if self.b[end] == b'"' {
            self.i = end + 1;
            if let Some(t) = self.text.and_then(|t| t.get(start..end)) {
                return Ok(Cow::Borrowed(t));
            }
            return Ok(super::text(&self.b[start..end]));
        }
        let mut out: Vec<u8> = self.b[start..end].to_vec();
        let mut i = end;
        while i < self.b.len() {
            match self.b[i] {
                b'"' => {
                    self.i = i + 1;
                    return Ok(Cow::Owned(String::from_utf8_lossy(&out).into_owned()));
                }
                b'\\' => {
                    let Some(&e) = self.b.get(i + 1) else { break };
                    i += 2;
                    let c = match e {
                        b'n' => '\n',
                        b't' => '\t',
                        b'r' => '\r',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'u' => {
                            let hi = self.hex4(i).ok_or(JsonError::Syntax(i))?;
                            i += 4;
                            if (0xd800..0xdc00).contains(&hi)
                                && self.b.get(i) == Some(&b'\\')
                                && self.b.get(i + 1) == Some(&b'u')
                                && let Some(lo) = self.hex4(i + 2)
                                && (0xdc00..0xe000).contains(&lo)
                            {
                                i += 6;
                                char::from_u32(0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00)).unwrap_or('\u{fffd}')
                            } else {
                                char::from_u32(hi).unwrap_or('\u{fffd}')
                            }
                        }
                        other => char::from(other),
                    };
                    let mut tmp = [0u8; 4];
                    out.extend_from_slice(c.encode_utf8(&mut tmp).as_bytes());
                }
                c => {
                    out.push(c);
                    i += 1;
                }
            }
        }
        Err(JsonError::Syntax(self.i))
    }

    fn hex4(&self, at: usize) -> Option<u32> {
        let d = self.b.get(at..at + 4)?;
        std::str::from_utf8(d)
            .ok()
            .and_then(|s| u32::from_str_radix(s, 16).ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Seen = Vec<(Location, String, String)>;

    fn strings(body: &str, depth: usize) -> (Seen, Result<(), JsonError>) {
        let mut seen = Vec::new();
        let r = each(body.as_bytes(), depth, &mut |t| {
            seen.push((
                t.location,
                t.name.into_owned(),
                String::from_utf8_lossy(t.value).into_owned(),
            ));
        });
        (seen, r)
    }

    #[test]
    fn nested_keys_and_strings_are_visited_with_their_key() {
        let (seen, r) = strings(r#"{"a": {"b": ["x", 1, true, {"c": "y"}]}, "d": null}"#, 32);
        assert!(r.is_ok());
        assert!(seen.contains(&(Location::JsonValue, "b".into(), "x".into())));
        assert!(seen.contains(&(Location::JsonValue, "c".into(), "y".into())));
        assert!(seen.contains(&(Location::JsonKey, String::new(), "d".into())));
    }

    #[test]
    fn json_unicode_escapes_are_decoded() {
        let (seen, _) = strings(r#"{"q": "\u0027 OR 1=1 \ud83d\ude00 \"x\""}"#, 32);
        assert_eq!(seen[1].2, "' OR 1=1 😀 \"x\"");
    }

    #[test]
    fn nesting_beyond_the_limit_is_an_error_not_a_stack_overflow() {
        let deep = "[".repeat(100_000);
        let (_, r) = strings(&deep, 32);
        assert_eq!(r, Err(JsonError::TooDeep));
    }

    #[test]
    fn malformed_json_is_an_error() {
        assert!(strings(r#"{"a": "b""#, 32).1.is_err());
        assert!(strings(r#"{"a" "b"}"#, 32).1.is_err());
    }
}
