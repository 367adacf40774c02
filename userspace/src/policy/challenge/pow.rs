//! The proof of work: find a decimal counter `i` such that SHA-256(`nonce:i`) starts with `difficulty` zero
//! bits. Checking costs one hash; finding costs 2^difficulty on average, which a browser pays once per
//! clearance and a flood pays per request. The browser's side is `pow.js`.

use sha2::{Digest, Sha256};

/// Longest counter accepted: more digits than any search reaches.
const MAX_SOLUTION_DIGITS: usize = 15;

pub fn leading_zero_bits(hash: &[u8]) -> u32 {
    let mut bits = 0;
    for b in hash {
        if *b == 0 {
            bits += 8;
        } else {
            return bits + b.leading_zeros();
        }
    }
    bits
}

pub fn solved(nonce: &str, solution: &str, difficulty: u8) -> bool {
    if solution.is_empty() || solution.len() > MAX_SOLUTION_DIGITS || !solution.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let mut h = Sha256::new();
    h.update(nonce.as_bytes());
    h.update(b":");
    h.update(solution.as_bytes());
    leading_zero_bits(&h.finalize()) >= u32::from(difficulty)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn solve(nonce: &str, difficulty: u8) -> String {
        (0u64..)
            .map(|i| i.to_string())
            .find(|s| solved(nonce, s, difficulty))
            .unwrap_or_default()
    }

    #[test]
    fn a_found_counter_is_accepted_and_others_are_not() {
        let nonce = "c1.1.12.abc.def";
        let s = solve(nonce, 12);
        assert!(solved(nonce, &s, 12));
        assert!(!solved("c1.1.12.abc.deg", &s, 12) || !solved("c1.1.12.abc.deg", &s, 20));
        assert!(!solved(nonce, "", 1));
        assert!(!solved(nonce, "12a", 1));
        assert!(!solved(nonce, "1234567890123456", 0));
    }

    /// The value the browser script computes for the same nonce (node on pow.js: 33749 for 18 bits).
    #[test]
    fn the_rust_and_javascript_sides_agree() {
        let nonce = "c1.1700000000.18.AAAAAAAAAAAA.xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx";
        assert!(solved(nonce, "33749", 18));
        assert_eq!(solve(nonce, 18), "33749");
    }

    #[test]
    fn zero_bits_are_counted_across_bytes() {
        assert_eq!(leading_zero_bits(&[0, 0, 0x10, 0xff]), 19);
        assert_eq!(leading_zero_bits(&[0x80]), 0);
        assert_eq!(leading_zero_bits(&[0, 0]), 16);
    }
}
