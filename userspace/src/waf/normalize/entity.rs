//! HTML character references (`&lt;`, `&#60;`, `&#x3c;`, with or without the `;` browsers forgive), so an
//! entity-encoded payload reads as the markup it becomes. Only a small named set: the characters that matter
//! to HTML, JavaScript and SQL syntax.

const NAMED: &[(&str, char)] = &[
    ("lt", '<'),
    ("gt", '>'),
    ("amp", '&'),
    ("quot", '"'),
    ("apos", '\''),
    ("nbsp", ' '),
    ("colon", ':'),
    ("semi", ';'),
    ("tab", '\t'),
    ("newline", '\n'),
    ("lpar", '('),
    ("rpar", ')'),
    ("sol", '/'),
    ("bsol", '\\'),
    ("equals", '='),
    ("num", '#'),
    ("excl", '!'),
    ("period", '.'),
    ("comma", ','),
    ("grave", '`'),
    ("lsqb", '['),
    ("rsqb", ']'),
    ("lcub", '{'),
    ("rcub", '}'),
    ("dollar", '$'),
    ("percnt", '%'),
    ("plus", '+'),
    ("ast", '*'),
    ("vert", '|'),
    ("quest", '?'),
];

/// Whether `s` may contain a character reference.
pub fn may_contain(s: &str) -> bool {
    memchr::memchr(b'&', s.as_bytes()).is_some()
}

/// Whether `s` has a numeric character reference to `<` (`&#60;`, `&#x3C`, `&#0000060`): markup spelled so
/// that a filter looking for `<` misses it. Editors write `&lt;`, not this.
pub fn encodes_angle(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    while let Some(p) = memchr::memchr(b'&', &b[i..]) {
        let at = i + p;
        if b.get(at + 1) == Some(&b'#')
            && let Some(('<', _)) = reference(&s[at + 1..])
        {
            return true;
        }
        i = at + 1;
    }
    false
}

/// Decodes character references of `input` into `out` (cleared first); false when there were none.
pub fn decode(input: &str, out: &mut String) -> bool {
    if !may_contain(input) {
        return false;
    }
    out.clear();
    let b = input.as_bytes();
    let mut changed = false;
    let mut i = 0;
    let mut copied = 0;
    while let Some(p) = memchr::memchr(b'&', &b[i..]) {
        let at = i + p;
        if let Some((ch, len)) = reference(&input[at + 1..]) {
            out.push_str(&input[copied..at]);
            out.push(ch);
            copied = at + 1 + len;
            i = copied;
            changed = true;
        } else {
            i = at + 1;
        }
    }
    if changed {
        out.push_str(&input[copied..]);
    }
    changed
}

/// The character a reference after `&` stands for and the bytes it used (including a `;`).
fn reference(s: &str) -> Option<(char, usize)> {
    let b = s.as_bytes();
    if b.first() == Some(&b'#') {
        let (radix, start) = if matches!(b.get(1), Some(b'x' | b'X')) {
            (16, 2)
        } else {
            (10, 1)
        };
        // Leading zeros are a known padding trick (`&#0000060`); cap the digits read.
        let digits = b[start..]
            .iter()
            .take(12)
            .take_while(|c| (c.is_ascii_digit()) || (radix == 16 && c.is_ascii_hexdigit()))
            .count();
        if digits == 0 {
            return None;
        }
        let cp = u32::from_str_radix(&s[start..start + digits], radix).ok()?;
        let ch = char::from_u32(cp).unwrap_or('\u{fffd}');
        let mut len = start + digits;
        if b.get(len) == Some(&b';') {
            len += 1;
        }
        return Some((ch, len));
    }
    let name_len = b.iter().take(10).take_while(|c| c.is_ascii_alphabetic()).count();
    // Every known name has 2 to 7 letters; `&a=1&b=2` (every form field) is rejected without a lookup.
    if !(2..=7).contains(&name_len) {
        return None;
    }
    let name = &s[..name_len];
    let (_, ch) = NAMED.iter().find(|(n, _)| n.eq_ignore_ascii_case(name))?;
    let mut len = name_len;
    if b.get(len) == Some(&b';') {
        len += 1;
    } else if !matches!(name.to_ascii_lowercase().as_str(), "lt" | "gt" | "amp" | "quot") {
        // Browsers only forgive a missing `;` for the legacy references.
        return None;
    }
    Some((*ch, len))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(s: &str) -> String {
        let mut out = String::new();
        if decode(s, &mut out) { out } else { s.to_owned() }
    }

    #[test]
    fn named_decimal_and_hex_references_are_decoded() {
        assert_eq!(dec("&lt;script&gt;"), "<script>");
        assert_eq!(dec("&#60;&#x3C;&#X3c"), "<<<");
        assert_eq!(dec("java&Tab;script&colon;"), "java\tscript:");
    }

    #[test]
    fn zero_padded_references_are_decoded() {
        assert_eq!(dec("&#0000060img"), "<img");
    }

    #[test]
    fn every_known_name_is_within_the_lengths_looked_up() {
        assert!(NAMED.iter().all(|(n, _)| (2..=7).contains(&n.len())));
    }

    #[test]
    fn ampersands_in_prose_are_left_alone() {
        assert_eq!(dec("AT&T and Q&A &copy"), "AT&T and Q&A &copy");
    }
}
