//! `application/x-www-form-urlencoded` (bodies and query strings): `name=value` pairs split on `&`, left
//! encoded (the normaliser decodes them, `+` included).

use std::borrow::Cow;

use super::{Location, Target};
use crate::waf::normalize::Encoding;

/// Visits every name and value, at most `max` of them (the engine inspects no more than its target limit
/// anyway, and a query of 20,000 pairs should not cost 20,000 visits); a piece without `=` is a name with
/// an empty value.
pub fn each(data: &[u8], name_loc: Location, value_loc: Location, max: usize, f: &mut dyn FnMut(Target<'_>)) {
    let mut visited = 0usize;
    for pair in data.split(|b| *b == b'&') {
        if pair.is_empty() {
            continue;
        }
        if visited >= max {
            return;
        }
        let (name, value) = match memchr::memchr(b'=', pair) {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, &pair[pair.len()..]),
        };
        let name_text = super::text(name);
        // Counted as produced: a bare name is one value, not two, or a query of bare names would stop
        // before the engine saw its limit exceeded and the rest would go uninspected.
        visited += usize::from(!name.is_empty()) + usize::from(!value.is_empty());
        if !name.is_empty() {
            f(Target {
                location: name_loc,
                name: Cow::Borrowed(""),
                value: name,
                encoding: Encoding::Form,
            });
        }
        if !value.is_empty() {
            f(Target {
                location: value_loc,
                name: name_text,
                value,
                encoding: Encoding::Form,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_names_and_bare_names_are_visited() {
        let mut seen = Vec::new();
        each(
            b"a=1&b=&c&&d=x%3Dy",
            Location::QueryName,
            Location::QueryValue,
            usize::MAX,
            &mut |t| {
                seen.push((
                    t.location,
                    t.name.into_owned(),
                    String::from_utf8_lossy(t.value).into_owned(),
                ));
            },
        );
        let values: Vec<_> = seen.iter().filter(|s| s.0 == Location::QueryValue).collect();
        assert_eq!(values.len(), 2);
        assert_eq!(values[1].1, "d");
        assert_eq!(values[1].2, "x%3Dy");
        assert_eq!(seen.iter().filter(|s| s.0 == Location::QueryName).count(), 4);
    }

    #[test]
    fn visits_stop_once_the_limit_is_reached() {
        let mut n = 0;
        each(
            b"a=1&b=2&c=3&d=4",
            Location::QueryName,
            Location::QueryValue,
            3,
            &mut |_| n += 1,
        );
        assert_eq!(n, 4, "whole pairs, until at least the limit");
        let mut n = 0;
        each(b"a&b&c&d&e", Location::QueryName, Location::QueryValue, 3, &mut |_| {
            n += 1
        });
        assert_eq!(n, 3, "bare names are one value each");
    }
}
