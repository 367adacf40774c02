//! Just enough DER to build an OCSP request and read an OCSP response (RFC 6960): tag-length-value
//! reading over a borrowed buffer and writing of the few types a request needs.
//!
//! It checks lengths against the buffer and nothing else: it never interprets what it reads (that is the
//! caller's job) and never allocates while reading. Certificates are parsed with `x509-parser`, not here.

/// A DER parse failure: what was expected where.
#[derive(Debug, thiserror::Error)]
#[error("malformed DER: {0}")]
pub struct DerError(pub &'static str);

pub const SEQUENCE: u8 = 0x30;
pub const INTEGER: u8 = 0x02;
pub const BIT_STRING: u8 = 0x03;
pub const OCTET_STRING: u8 = 0x04;
pub const NULL: u8 = 0x05;
pub const OID: u8 = 0x06;
pub const ENUMERATED: u8 = 0x0a;
pub const GENERALIZED_TIME: u8 = 0x18;

/// One element: its tag, its contents, and the whole encoding (tag and length included).
#[derive(Clone, Copy, Debug)]
pub struct Tlv<'a> {
    pub tag: u8,
    pub value: &'a [u8],
    pub raw: &'a [u8],
}

impl<'a> Tlv<'a> {
    /// The elements inside a constructed value.
    pub fn children(&self) -> Reader<'a> {
        Reader(self.value)
    }

    /// Context-specific tag `[n]`, constructed (EXPLICIT or a constructed IMPLICIT type).
    pub fn is_context(&self, n: u8) -> bool {
        self.tag == 0xa0 | n
    }
}

/// Reads consecutive elements from a buffer.
#[derive(Clone, Copy, Debug)]
pub struct Reader<'a>(pub &'a [u8]);

impl<'a> Reader<'a> {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The next element, whatever its tag.
    pub fn next_any(&mut self) -> Result<Tlv<'a>, DerError> {
        let buf = self.0;
        let (&tag, rest) = buf.split_first().ok_or(DerError("unexpected end"))?;
        if tag & 0x1f == 0x1f {
            return Err(DerError("multi-byte tags are not used by OCSP"));
        }
        let (&first, rest) = rest.split_first().ok_or(DerError("missing length"))?;
        let (len, rest) = if first < 0x80 {
            (usize::from(first), rest)
        } else {
            let n = usize::from(first & 0x7f);
            if n == 0 || n > 4 || rest.len() < n {
                return Err(DerError("bad length"));
            }
            let len = rest[..n].iter().fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
            (len, &rest[n..])
        };
        if rest.len() < len {
            return Err(DerError("length beyond the end"));
        }
        let header = buf.len() - rest.len();
        let tlv = Tlv {
            tag,
            value: &rest[..len],
            raw: &buf[..header + len],
        };
        self.0 = &rest[len..];
        Ok(tlv)
    }

    /// The next element, which must have `tag`.
    pub fn next(&mut self, tag: u8, what: &'static str) -> Result<Tlv<'a>, DerError> {
        let tlv = self.next_any()?;
        if tlv.tag != tag {
            return Err(DerError(what));
        }
        Ok(tlv)
    }

    /// The next element if it has `tag` (for OPTIONAL and DEFAULT fields).
    pub fn next_if(&mut self, tag: u8) -> Result<Option<Tlv<'a>>, DerError> {
        match self.0.first() {
            Some(&t) if t == tag => self.next_any().map(Some),
            _ => Ok(None),
        }
    }
}

/// Encodes one element.
pub fn tlv(tag: u8, value: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = value.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(value);
    out
}

/// A SEQUENCE of already encoded elements.
pub fn sequence(parts: &[&[u8]]) -> Vec<u8> {
    tlv(SEQUENCE, &parts.concat())
}

/// `GeneralizedTime` (`YYYYMMDDHHMMSS[.fff]Z`, as DER requires) as Unix seconds.
pub fn generalized_time(value: &[u8]) -> Result<i64, DerError> {
    let s = std::str::from_utf8(value).map_err(|_| DerError("time is not ASCII"))?;
    let s = s.strip_suffix('Z').ok_or(DerError("time is not in UTC"))?;
    let whole = s.split('.').next().unwrap_or(s);
    if whole.len() != 14 || !whole.bytes().all(|b| b.is_ascii_digit()) {
        return Err(DerError("time is not YYYYMMDDHHMMSS"));
    }
    let num = |r: std::ops::Range<usize>| whole[r].parse::<i64>().map_err(|_| DerError("time digits"));
    let (y, mo, d) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (h, mi, sec) = (num(8..10)?, num(10..12)?, num(12..14)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return Err(DerError("time out of range"));
    }
    Ok(days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + sec)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_written_reads_back_with_short_and_long_lengths() {
        let long = vec![7u8; 300];
        let enc = sequence(&[&tlv(INTEGER, &[5]), &tlv(OCTET_STRING, &long)]);
        let mut r = Reader(&enc);
        let seq = r.next(SEQUENCE, "seq").expect("sequence");
        assert!(r.is_empty());
        let mut inner = seq.children();
        assert_eq!(inner.next(INTEGER, "int").expect("int").value, &[5]);
        assert_eq!(inner.next(OCTET_STRING, "octets").expect("octets").value, &long[..]);
        assert!(inner.is_empty());
    }

    #[test]
    fn a_length_past_the_end_is_an_error_not_a_panic() {
        assert!(Reader(&[0x30, 0x05, 0x02]).next_any().is_err());
        assert!(Reader(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]).next_any().is_err());
        assert!(Reader(&[]).next_any().is_err());
    }

    #[test]
    fn generalized_time_reads_as_unix_seconds() {
        assert_eq!(generalized_time(b"19700101000000Z").expect("epoch"), 0);
        assert_eq!(generalized_time(b"20240229123456Z").expect("leap day"), 1_709_210_096);
        assert_eq!(
            generalized_time(b"20240229123456.123Z").expect("fraction"),
            1_709_210_096
        );
        assert!(generalized_time(b"20241329123456Z").is_err());
        assert!(generalized_time(b"20240229123456").is_err());
    }
}
