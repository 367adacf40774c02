//! Base64, but only where a value looks encoded: long enough, of the base64 alphabet only, not plainly a word,
//! a number or a hex token, and decoding to mostly printable text. Attacks sent base64-encoded (to an
//! application that decodes them) are then inspected; session ids and binary uploads are not turned into noise.

/// Shortest value worth trying.
const MIN_LEN: usize = 12;
/// Longest value decoded (the limit on work).
const MAX_LEN: usize = 8192;

fn value(c: u8) -> Option<u8> {
    match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' | b'-' => Some(62),
        b'/' | b'_' => Some(63),
        _ => None,
    }
}

/// Whether `s` has the shape of base64 text.
pub fn looks_encoded(s: &str) -> bool {
    let b = s.trim_end_matches('=').as_bytes();
    if b.len() < MIN_LEN || b.len() > MAX_LEN || s.len() - b.len() > 2 {
        return false;
    }
    if !b.iter().all(|c| value(*c).is_some()) {
        return false;
    }
    let upper = b.iter().filter(|c| c.is_ascii_uppercase()).count();
    let lower = b.iter().filter(|c| c.is_ascii_lowercase()).count();
    let digit = b.iter().filter(|c| c.is_ascii_digit()).count();
    // Hex ids, numbers and lowercase words are not base64 in practice; real base64 mixes cases.
    upper > 0 && lower > 0 && digit + upper >= 2 && !b.iter().all(|c| c.is_ascii_hexdigit())
}

/// Decodes base64 (standard or URL alphabet, padding optional) into `out`; true when it decoded to text
/// that is at least 90% printable.
pub fn decode_text(s: &str, out: &mut Vec<u8>) -> bool {
    out.clear();
    let mut acc = 0u32;
    let mut bits = 0;
    for c in s.trim_end_matches('=').bytes() {
        let Some(v) = value(c) else { return false };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    if out.len() < 6 {
        return false;
    }
    let printable = out
        .iter()
        .filter(|b| matches!(b, 0x20..=0x7e | b'\n' | b'\r' | b'\t'))
        .count();
    printable * 10 >= out.len() * 9
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_of_text_is_decoded() {
        let mut out = Vec::new();
        assert!(looks_encoded("PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg=="));
        assert!(decode_text("PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==", &mut out));
        assert_eq!(out, b"<script>alert(1)</script>");
    }

    #[test]
    fn words_numbers_and_hex_ids_are_not_taken_for_base64() {
        assert!(!looks_encoded("internationalization"));
        assert!(!looks_encoded("3b451e4b17e6056de35d395398a1a936"));
        assert!(!looks_encoded("12345678901234"));
    }

    #[test]
    fn binary_content_does_not_decode_to_text() {
        let mut out = Vec::new();
        assert!(!decode_text("iVBORw0KGgoAAAANSUhEUgAAAAEAAAAB", &mut out));
    }
}
