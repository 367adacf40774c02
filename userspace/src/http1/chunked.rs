//! Decoding a chunked body (RFC 9112 §7.1) from a buffer that fills as bytes arrive: sizes in hexadecimal,
//! extensions ignored, data handed out without copying, trailers skipped within a limit. Strict about CRLF:
//! a bare LF or a missing CRLF after chunk data is an error, since lenient parsers disagree on where such a
//! body ends.

use bytes::{Buf, Bytes, BytesMut};

use super::FramingError;

/// Longest chunk-size or trailer line; real ones are a few bytes.
const MAX_LINE: usize = 4096;
/// Most trailer bytes skipped after the last chunk.
const MAX_TRAILERS: usize = 16 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Size,
    Data(u64),
    DataEnd,
    Trailers { seen: usize },
    Done,
}

/// Where the decoder is in one chunked body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decoder {
    state: State,
}

/// What the buffered bytes yielded.
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded {
    Data(Bytes),
    /// The buffer holds no complete next piece; read more and call again.
    NeedMore,
    /// The last chunk and the trailers are consumed; the bytes after them belong to the next message.
    Done,
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new()
    }
}

impl Decoder {
    pub fn new() -> Self {
        Self { state: State::Size }
    }

    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Consumes framing from the front of `buf` until it can hand out data, needs more bytes, or is done.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Decoded, FramingError> {
        loop {
            match self.state {
                State::Done => return Ok(Decoded::Done),
                State::Size => {
                    let Some(line) = take_line(buf)? else {
                        return Ok(Decoded::NeedMore);
                    };
                    let size = parse_size(&line)?;
                    self.state = if size == 0 {
                        State::Trailers { seen: 0 }
                    } else {
                        State::Data(size)
                    };
                }
                State::Data(n) => {
                    if buf.is_empty() {
                        return Ok(Decoded::NeedMore);
                    }
                    let take = usize::try_from(n).unwrap_or(usize::MAX).min(buf.len());
                    let left = n - take as u64;
                    self.state = if left == 0 { State::DataEnd } else { State::Data(left) };
                    return Ok(Decoded::Data(buf.split_to(take).freeze()));
                }
                State::DataEnd => {
                    if buf.len() < 2 {
                        return Ok(Decoded::NeedMore);
                    }
                    if &buf[..2] != b"\r\n" {
                        return Err(FramingError::ChunkEnd);
                    }
                    buf.advance(2);
                    self.state = State::Size;
                }
                State::Trailers { seen } => {
                    let Some(line) = take_line(buf)? else {
                        return Ok(Decoded::NeedMore);
                    };
                    if line.is_empty() {
                        self.state = State::Done;
                    } else if seen + line.len() > MAX_TRAILERS {
                        return Err(FramingError::TrailersTooLarge(MAX_TRAILERS));
                    } else {
                        self.state = State::Trailers {
                            seen: seen + line.len(),
                        };
                    }
                }
            }
        }
    }
}

/// Takes one CRLF-terminated line (without the CRLF) off the front of `buf`.
fn take_line(buf: &mut BytesMut) -> Result<Option<BytesMut>, FramingError> {
    match buf.iter().position(|&b| b == b'\n') {
        Some(i) if i > 0 && buf[i - 1] == b'\r' => {
            let mut line = buf.split_to(i + 1);
            line.truncate(i - 1);
            Ok(Some(line))
        }
        Some(_) => Err(FramingError::BareLf),
        None if buf.len() > MAX_LINE => Err(FramingError::LineTooLong(MAX_LINE)),
        None => Ok(None),
    }
}

/// The hexadecimal size at the start of a chunk-size line; extensions after `;` are ignored.
fn parse_size(line: &[u8]) -> Result<u64, FramingError> {
    let digits = line.split(|&b| b == b';').next().unwrap_or(&[]);
    let digits = digits.trim_ascii_end();
    if digits.is_empty() || digits.len() > 15 {
        return Err(FramingError::ChunkSize);
    }
    let mut n: u64 = 0;
    for &b in digits {
        let d = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            b'A'..=b'F' => b - b'A' + 10,
            _ => return Err(FramingError::ChunkSize),
        };
        n = n * 16 + u64::from(d);
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes `wire` fed `piece` bytes at a time; the body, and what is left after it.
    fn decode_in_pieces(wire: &[u8], piece: usize) -> Result<(Vec<u8>, Vec<u8>), FramingError> {
        let mut d = Decoder::new();
        let mut buf = BytesMut::new();
        let mut body = Vec::new();
        let mut rest = wire.chunks(piece);
        loop {
            match d.decode(&mut buf)? {
                Decoded::Data(b) => body.extend_from_slice(&b),
                Decoded::Done => {
                    let mut left = buf.to_vec();
                    left.extend(rest.flatten());
                    return Ok((body, left));
                }
                Decoded::NeedMore => match rest.next() {
                    Some(p) => buf.extend_from_slice(p),
                    None => return Err(FramingError::ChunkEnd),
                },
            }
        }
    }

    #[test]
    fn bodies_decode_the_same_at_every_split_point_and_leave_the_next_message() {
        let wire = b"5\r\nhello\r\n1;ext=1\r\n \r\n6\r\nworld!\r\n0\r\nTrailer: x\r\n\r\nGET / HTTP/1.1\r\n";
        for piece in 1..wire.len() {
            let (body, rest) = decode_in_pieces(wire, piece).expect("valid body");
            assert_eq!(body, b"hello world!", "split every {piece}");
            assert_eq!(rest, b"GET / HTTP/1.1\r\n", "split every {piece}");
        }
    }

    #[test]
    fn sloppy_framing_is_refused() {
        for bad in [
            &b"5\nhello\r\n0\r\n\r\n"[..],
            b"5\r\nhelloXX0\r\n\r\n",
            b"-1\r\n",
            b"0x10\r\n",
            b"\r\n",
            b"1234567890abcdef0\r\n",
            b"zz\r\n",
        ] {
            assert!(decode_in_pieces(bad, 64).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn endless_lines_and_trailers_are_bounded() {
        let long = vec![b'1'; MAX_LINE + 10];
        assert_eq!(decode_in_pieces(&long, 1024), Err(FramingError::LineTooLong(MAX_LINE)));
        let mut trailers = b"0\r\n".to_vec();
        for _ in 0..2000 {
            trailers.extend_from_slice(b"X-Trailer: yyyyyyyy\r\n");
        }
        assert!(matches!(
            decode_in_pieces(&trailers, 4096),
            Err(FramingError::TrailersTooLarge(_))
        ));
    }
}
