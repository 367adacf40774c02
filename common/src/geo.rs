//! Country indices and the per-country policy. A country code `AB` maps to index `(A-'A')*26 + (B-'A')`, so
//! the kernel needs no table; two extra slots hold the policy for addresses the database does not know and for
//! addresses exempt from geo policy (whitelisted or private ranges).

/// Number of two-letter codes.
pub const COUNTRIES: u16 = 26 * 26;
/// Index for an address that no loaded prefix covers.
pub const UNKNOWN: u16 = COUNTRIES;
/// Index for whitelisted and local (private, loopback, link-local) prefixes: always passes.
pub const EXEMPT: u16 = COUNTRIES + 1;
/// Length of the `GEO_POLICY` array.
pub const POLICY_LEN: u32 = COUNTRIES as u32 + 2;

/// Policy values.
pub const PASS: u8 = 0;
pub const DROP: u8 = 1;

/// The index of a two-letter upper-case code; `None` for anything else.
pub const fn country_index(code: [u8; 2]) -> Option<u16> {
    let [a, b] = code;
    if a.is_ascii_uppercase() && b.is_ascii_uppercase() {
        Some((a - b'A') as u16 * 26 + (b - b'A') as u16)
    } else {
        None
    }
}

/// The code for an index below [`COUNTRIES`].
pub const fn country_code(index: u16) -> Option<[u8; 2]> {
    if index < COUNTRIES {
        Some([b'A' + (index / 26) as u8, b'A' + (index % 26) as u8])
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indices_round_trip_for_every_code() {
        for i in 0..COUNTRIES {
            let code = country_code(i).expect("in range");
            assert_eq!(country_index(code), Some(i));
        }
        assert_eq!(country_index(*b"DE"), Some(3 * 26 + 4));
        assert_eq!(country_index(*b"de"), None);
        assert_eq!(country_code(UNKNOWN), None);
    }
}
