//! Percent-decoding as servers behind a WAF actually do it: repeated (double and triple encoding), IIS-style
//! `%uXXXX`, and overlong UTF-8 (`%c0%ae` for `.`), which no valid client sends and which is therefore both
//! decoded (so the detectors see the `.` it stands for) and reported as an anomaly.
//!
//! Bounded: at most `passes` passes, each linear in the input; never allocates when there is nothing to do.

/// What decoding noticed about a value.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UrlAnomalies {
    /// An overlong UTF-8 sequence was decoded (a classic filter bypass).
    pub overlong_utf8: bool,
    /// Still percent-encoded after the last allowed pass.
    pub too_deep: bool,
    /// `%00` or a raw NUL.
    pub null_byte: bool,
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Whether `s` has anything one decoding pass would change (`plus` also counts `+`).
pub fn needs_decoding(s: &[u8], plus: bool) -> bool {
    let mut i = 0;
    while let Some(p) = memchr::memchr2(b'%', if plus { b'+' } else { b'%' }, &s[i..]) {
        let at = i + p;
        if s[at] == b'+' {
            return true;
        }
        if let (Some(a), Some(b)) = (s.get(at + 1), s.get(at + 2))
            && hex(*a).is_some()
            && hex(*b).is_some()
        {
            return true;
        }
        if matches!(s.get(at + 1), Some(b'u' | b'U'))
            && s.len() >= at + 6
            && s[at + 2..at + 6].iter().all(|c| hex(*c).is_some())
        {
            return true;
        }
        i = at + 1;
    }
    false
}

/// One decoding pass of `input` into `out` (cleared first). `plus`: `+` means space (form encoding).
fn decode_once(input: &[u8], plus: bool, out: &mut Vec<u8>) {
    out.clear();
    out.reserve(input.len());
    let mut i = 0;
    while i < input.len() {
        let b = input[i];
        if b == b'%' {
            if let (Some(h), Some(l)) = (
                input.get(i + 1).and_then(|c| hex(*c)),
                input.get(i + 2).and_then(|c| hex(*c)),
            ) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
            if matches!(input.get(i + 1), Some(b'u' | b'U')) && input.len() >= i + 6 {
                let digits = &input[i + 2..i + 6];
                if let Some(cp) = digits
                    .iter()
                    .try_fold(0u32, |acc, c| hex(*c).map(|v| acc << 4 | u32::from(v)))
                {
                    let ch = char::from_u32(cp).unwrap_or('\u{fffd}');
                    let mut tmp = [0u8; 4];
                    out.extend_from_slice(ch.encode_utf8(&mut tmp).as_bytes());
                    i += 6;
                    continue;
                }
            }
        } else if b == b'+' && plus {
            out.push(b' ');
            i += 1;
            continue;
        }
        out.push(b);
        i += 1;
    }
}

/// Rewrites overlong UTF-8 sequences in `buf` to the ASCII byte they encode; true if there was one.
fn fold_overlong(buf: &mut Vec<u8>) -> bool {
    let mut found = false;
    let mut w = 0;
    let mut r = 0;
    while r < buf.len() {
        let b = buf[r];
        // 2 bytes: C0/C1 + continuation encode 0x00-0x7F.
        if (b == 0xc0 || b == 0xc1) && r + 1 < buf.len() && buf[r + 1] & 0xc0 == 0x80 {
            buf[w] = ((b & 0x1f) << 6) | (buf[r + 1] & 0x3f);
            found = true;
            w += 1;
            r += 2;
            continue;
        }
        // 3 bytes: E0 80..9F xx.
        if b == 0xe0 && r + 2 < buf.len() && (0x80..0xa0).contains(&buf[r + 1]) && buf[r + 2] & 0xc0 == 0x80 {
            let cp = (u32::from(buf[r + 1] & 0x3f) << 6) | u32::from(buf[r + 2] & 0x3f);
            if cp < 0x80 {
                buf[w] = cp as u8;
                found = true;
                w += 1;
                r += 3;
                continue;
            }
        }
        // 4 bytes: F0 80..8F xx xx.
        if b == 0xf0
            && r + 3 < buf.len()
            && (0x80..0x90).contains(&buf[r + 1])
            && buf[r + 2] & 0xc0 == 0x80
            && buf[r + 3] & 0xc0 == 0x80
        {
            let cp = (u32::from(buf[r + 1] & 0x3f) << 12)
                | (u32::from(buf[r + 2] & 0x3f) << 6)
                | u32::from(buf[r + 3] & 0x3f);
            if cp < 0x80 {
                buf[w] = cp as u8;
                found = true;
                w += 1;
                r += 4;
                continue;
            }
        }
        buf[w] = b;
        w += 1;
        r += 1;
    }
    buf.truncate(w);
    found
}

/// Decodes `input` up to `passes` times into `out`; returns false (and leaves `out` untouched) when nothing
/// needed decoding. `plus` applies to the first pass only (a `+` produced by decoding `%2b` is a plus).
pub fn decode(
    input: &[u8],
    plus: bool,
    passes: u8,
    out: &mut Vec<u8>,
    scratch: &mut Vec<u8>,
    an: &mut UrlAnomalies,
) -> bool {
    if !needs_decoding(input, plus) {
        if memchr::memchr(0, input).is_some() {
            an.null_byte = true;
        }
        return false;
    }
    if memchr::memmem::find(input, b"%00").is_some() {
        an.null_byte = true;
    }
    decode_once(input, plus, out);
    let mut n = 1;
    while needs_decoding(out, false) {
        if n >= passes {
            an.too_deep = true;
            break;
        }
        if memchr::memmem::find(out, b"%00").is_some() {
            an.null_byte = true;
        }
        std::mem::swap(out, scratch);
        decode_once(scratch, false, out);
        n += 1;
    }
    if fold_overlong(out) {
        an.overlong_utf8 = true;
        // An overlong `%` can hide one more encoding level (`%c0%25` + `2e`).
        if n < passes && needs_decoding(out, false) {
            std::mem::swap(out, scratch);
            decode_once(scratch, false, out);
        }
    }
    if memchr::memchr(0, out).is_some() {
        an.null_byte = true;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(s: &str, plus: bool) -> (String, UrlAnomalies) {
        let (mut out, mut scratch, mut an) = (Vec::new(), Vec::new(), UrlAnomalies::default());
        if decode(s.as_bytes(), plus, 3, &mut out, &mut scratch, &mut an) {
            (String::from_utf8_lossy(&out).into_owned(), an)
        } else {
            (s.to_owned(), an)
        }
    }

    #[test]
    fn double_and_triple_encoding_are_undone() {
        assert_eq!(dec("%2527", false).0, "'");
        assert_eq!(dec("%25252e%25252e%25252f", false).0, "../");
    }

    #[test]
    fn plus_is_a_space_only_in_form_encoding_and_only_on_the_first_pass() {
        assert_eq!(dec("a+b", true).0, "a b");
        assert_eq!(dec("a+b", false).0, "a+b");
        assert_eq!(dec("a%2bb", true).0, "a+b");
    }

    #[test]
    fn iis_percent_u_encoding_is_decoded() {
        assert_eq!(dec("%u003cscript%u003e", false).0, "<script>");
        assert_eq!(dec("%uff1cscript", false).0, "\u{ff1c}script");
    }

    #[test]
    fn overlong_utf8_is_decoded_and_flagged() {
        let (s, an) = dec("%c0%ae%c0%ae%c0%af", false);
        assert_eq!(s, "../");
        assert!(an.overlong_utf8);
        let (s, an) = dec("%e0%80%ae%f0%80%80%ae/", false);
        assert_eq!(s, "../");
        assert!(an.overlong_utf8);
    }

    #[test]
    fn null_bytes_are_flagged() {
        assert!(dec("file.php%00.jpg", false).1.null_byte);
        assert!(!dec("plain", false).1.null_byte);
    }

    #[test]
    fn clean_input_is_left_alone() {
        let (mut out, mut scratch, mut an) = (Vec::new(), Vec::new(), UrlAnomalies::default());
        assert!(!decode(b"hello world 100%", true, 3, &mut out, &mut scratch, &mut an) || out == b"hello world 100%");
        assert!(!needs_decoding(b"100% sure", false));
    }

    #[test]
    fn decoding_stops_after_the_allowed_passes() {
        let (mut out, mut scratch, mut an) = (Vec::new(), Vec::new(), UrlAnomalies::default());
        decode(b"%2525252527", false, 3, &mut out, &mut scratch, &mut an);
        assert!(an.too_deep);
    }
}
