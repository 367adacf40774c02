//! Folding of the Unicode forms that back-ends (or their normalisation) read as ASCII: full-width forms
//! (`＜ｓｃｒｉｐｔ＞`), the ideographic space, and a few look-alikes of quote and angle characters. Not a general
//! NFKC: only what turns into syntax.

/// Whether `s` may contain something to fold (every folded character is outside ASCII).
pub fn may_contain(s: &str) -> bool {
    !s.is_ascii()
}

fn fold_char(c: char) -> Option<char> {
    let cp = c as u32;
    match cp {
        // Full-width ASCII variants.
        0xff01..=0xff5e => char::from_u32(cp - 0xff01 + 0x21),
        0x3000 => Some(' '),
        // Quotation look-alikes MySQL and some ORMs fold to `'` / `"`.
        0x2018 | 0x2019 | 0x02bc | 0x02b9 | 0x2032 => Some('\''),
        0x201c | 0x201d | 0x2033 => Some('"'),
        // Angle brackets.
        0x2039 | 0x2329 | 0x27e8 | 0x3008 | 0xfe64 => Some('<'),
        0x203a | 0x232a | 0x27e9 | 0x3009 | 0xfe65 => Some('>'),
        // Small forms and the like.
        0xfe50 => Some(','),
        0xfe52 => Some('.'),
        0xfe54 => Some(';'),
        0xfe59 => Some('('),
        0xfe5a => Some(')'),
        0x2215 | 0x2044 => Some('/'),
        0x2216 | 0xfe68 => Some('\\'),
        0x3002 | 0xff61 => Some('.'),
        // Enclosed alphanumerics (`①②⑦.⓪.⓪.⓪`), which IDNA maps to ASCII.
        0x2460..=0x2468 => char::from_u32(cp - 0x2460 + u32::from(b'1')),
        0x24ea => Some('0'),
        0x24b6..=0x24cf => char::from_u32(cp - 0x24b6 + u32::from(b'a')),
        0x24d0..=0x24e9 => char::from_u32(cp - 0x24d0 + u32::from(b'a')),
        _ => None,
    }
}

/// Folds `input` into `out` (cleared first); false when nothing changed.
pub fn fold(input: &str, out: &mut String) -> bool {
    if !may_contain(input) || !input.chars().any(|c| fold_char(c).is_some()) {
        return false;
    }
    out.clear();
    out.extend(input.chars().map(|c| fold_char(c).unwrap_or(c)));
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_width_forms_fold_to_ascii() {
        let mut out = String::new();
        assert!(fold("＜ｓｃｒｉｐｔ＞ＳＥＬＥＣＴ", &mut out));
        assert_eq!(out, "<script>SELECT");
    }

    #[test]
    fn other_scripts_are_left_alone() {
        let mut out = String::new();
        assert!(!fold("Фёдор 冯街 עלי", &mut out));
    }
}
