//! The `Cookie` header: `name=value` pairs split on `;`, each inspected (values form-decoded, `+` as a space,
//! as most frameworks do).

use std::borrow::Cow;

use super::{Location, Target};
use crate::waf::normalize::Encoding;

pub fn each(header: &[u8], f: &mut dyn FnMut(Target<'_>)) {
    for pair in header.split(|b| *b == b';') {
        let pair = pair.trim_ascii();
        if pair.is_empty() {
            continue;
        }
        let (name, value) = match memchr::memchr(b'=', pair) {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (&pair[..0], pair),
        };
        if !name.is_empty() {
            f(Target {
                location: Location::CookieName,
                name: Cow::Borrowed(""),
                value: name,
                encoding: Encoding::Percent,
            });
        }
        if !value.is_empty() {
            f(Target {
                location: Location::CookieValue,
                name: super::text(name),
                value,
                // Cookie values are decoded like form values by most frameworks (PHP's `urldecode`).
                encoding: Encoding::Form,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_cookie_is_a_named_value() {
        let mut seen = Vec::new();
        each(b"sessionid=abc; lang=de;  cart=%7B%7D", &mut |t| {
            if t.location == Location::CookieValue {
                seen.push((t.name.into_owned(), String::from_utf8_lossy(t.value).into_owned()));
            }
        });
        assert_eq!(
            seen,
            vec![
                ("sessionid".into(), "abc".into()),
                ("lang".into(), "de".into()),
                ("cart".into(), "%7B%7D".into())
            ]
        );
    }
}
