//! The HTTP/1.1 wire format shared by the proxy's server side (`net::h1`) and its upstream client
//! (`proxy::upstream::h1`): chunked framing (RFC 9112 §7.1), Content-Length values, and writing fields.
//!
//! Pure byte manipulation over caller-owned buffers: no I/O, no allocation except the `Bytes` handed out, and
//! every limit explicit. Anything ambiguous is an error, because two parties that frame the same bytes
//! differently are how requests get smuggled.

pub mod chunked;
pub mod raw_fields;

use bytes::{BufMut, BytesMut};

/// Why bytes on the wire could not be framed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FramingError {
    #[error("bad chunk size line")]
    ChunkSize,
    #[error("chunk data not followed by CRLF")]
    ChunkEnd,
    #[error("framing line not ended by CRLF")]
    BareLf,
    #[error("framing line longer than {0} bytes")]
    LineTooLong(usize),
    #[error("trailers longer than {0} bytes")]
    TrailersTooLarge(usize),
    #[error("Content-Length `{0}` is not a decimal number")]
    ContentLength(String),
    #[error("conflicting Content-Length values")]
    ConflictingLength,
}

/// Parses one Content-Length field value into `length`, which holds what earlier fields said. A list of equal
/// values ("5, 5") is one length; differing values, or anything but digits, are errors (RFC 9110 §8.6).
pub fn content_length(value: &[u8], length: &mut Option<u64>) -> Result<(), FramingError> {
    let bad = || FramingError::ContentLength(String::from_utf8_lossy(value).into_owned());
    for part in value.split(|&b| b == b',') {
        let digits = part.trim_ascii();
        if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
            return Err(bad());
        }
        let n = digits.iter().fold(0u64, |n, &d| n * 10 + u64::from(d - b'0'));
        if length.is_some_and(|l| l != n) {
            return Err(FramingError::ConflictingLength);
        }
        *length = Some(n);
    }
    Ok(())
}

/// Whether the last coding of a Transfer-Encoding value is `chunked`.
pub fn ends_in_chunked(value: &[u8]) -> bool {
    value
        .rsplit(|&b| b == b',')
        .next()
        .is_some_and(|last| last.trim_ascii().eq_ignore_ascii_case(b"chunked"))
}

/// `name: value\r\n`.
pub fn put_field(out: &mut BytesMut, name: &[u8], value: &[u8]) {
    out.put_slice(name);
    out.put_slice(b": ");
    out.put_slice(value);
    out.put_slice(b"\r\n");
}

/// Decimal digits of `n` without the formatting machinery.
pub struct Digits {
    buf: [u8; 20],
    start: usize,
}

impl Digits {
    pub fn new(mut n: u64) -> Self {
        let mut d = Self {
            buf: [0; 20],
            start: 20,
        };
        loop {
            d.start -= 1;
            d.buf[d.start] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                return d;
            }
        }
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[self.start..]
    }
}

/// Lower-case hexadecimal digits of `n`, for chunk-size lines.
pub fn put_hex(out: &mut BytesMut, n: usize) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut buf = [0u8; 16];
    let mut i = buf.len();
    let mut n = n;
    loop {
        i -= 1;
        buf[i] = HEX[n & 0xf];
        n >>= 4;
        if n == 0 {
            break;
        }
    }
    out.put_slice(&buf[i..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_lengths_must_be_digits_and_agree() {
        let mut len = None;
        assert_eq!(content_length(b"42", &mut len), Ok(()));
        assert_eq!(len, Some(42));
        assert_eq!(content_length(b" 42 , 42", &mut len), Ok(()));
        assert_eq!(content_length(b"43", &mut len), Err(FramingError::ConflictingLength));
        for bad in [&b"+1"[..], b"-1", b"1e3", b"", b"0x10", b"99999999999999999999"] {
            assert!(
                content_length(bad, &mut None).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn only_a_final_chunked_coding_counts() {
        assert!(ends_in_chunked(b"chunked"));
        assert!(ends_in_chunked(b"gzip, Chunked"));
        assert!(!ends_in_chunked(b"chunked, gzip"));
        assert!(!ends_in_chunked(b"identity"));
    }

    #[test]
    fn numbers_are_written_like_formatting_does() {
        for n in [0u64, 7, 10, 99, 12345, u64::MAX] {
            assert_eq!(Digits::new(n).as_bytes(), n.to_string().as_bytes());
        }
        for n in [0usize, 9, 10, 255, 4096, 0xdead_beef] {
            let mut out = BytesMut::new();
            put_hex(&mut out, n);
            assert_eq!(&out[..], format!("{n:x}").as_bytes());
        }
    }
}
