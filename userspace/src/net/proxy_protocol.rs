//! The HAProxy PROXY protocol (v1 text, v2 binary) at the start of a connection from a trusted load balancer,
//! which names the real client. Reads exactly the header's bytes — everything after it is the client's request
//! and stays in the stream — with a bound on size and time, so a slow or hostile peer cannot hold a connection
//! open or make us read without limit.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Header {
    /// A proxied connection: the original client and the address it connected to.
    Proxied {
        source: SocketAddr,
        destination: SocketAddr,
    },
    /// v1 UNKNOWN, v2 LOCAL, or an address family without IP (health checks from the balancer itself).
    Local,
}

#[derive(Debug, thiserror::Error)]
pub enum ProxyProtocolError {
    #[error("connection does not start with a PROXY protocol header")]
    NotProxyProtocol,
    #[error("PROXY v1 line longer than 107 bytes")]
    V1TooLong,
    #[error("malformed PROXY v1 header: {0}")]
    V1Malformed(String),
    #[error("PROXY v2: unsupported version/command byte {0:#04x}")]
    V2Version(u8),
    #[error("PROXY v2: address block of {got} bytes is shorter than family {family:#04x} requires ({need})")]
    V2Short { family: u8, got: usize, need: usize },
    #[error("PROXY v2: header length {0} exceeds the 1024-byte limit")]
    V2TooLong(usize),
    #[error("timed out waiting for the PROXY protocol header")]
    Timeout,
    #[error("reading the PROXY protocol header: {0}")]
    Io(#[from] std::io::Error),
}

const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";
const V1_MAX: usize = 107;
const V2_MAX_LEN: usize = 1024;

/// Reads one PROXY header (v1 or v2, told apart by the first bytes) from `stream`.
pub async fn read_header<S: AsyncRead + Unpin>(
    stream: &mut S,
    timeout: Duration,
) -> Result<Header, ProxyProtocolError> {
    tokio::time::timeout(timeout, read_inner(stream))
        .await
        .map_err(|_| ProxyProtocolError::Timeout)?
}

async fn read_inner<S: AsyncRead + Unpin>(stream: &mut S) -> Result<Header, ProxyProtocolError> {
    // Five bytes decide: "PROXY" (v1) or the start of the v2 signature. Nothing more is consumed on a mismatch.
    let mut start = [0u8; 5];
    stream.read_exact(&mut start).await?;
    if &start == b"PROXY" {
        let mut line = start.to_vec();
        let mut byte = [0u8; 1];
        while !line.ends_with(b"\r\n") {
            if line.len() >= V1_MAX {
                return Err(ProxyProtocolError::V1TooLong);
            }
            stream.read_exact(&mut byte).await?;
            line.push(byte[0]);
        }
        return parse_v1(&line);
    }
    if start != V2_SIGNATURE[..5] {
        return Err(ProxyProtocolError::NotProxyProtocol);
    }
    let mut fixed = [0u8; 16];
    fixed[..5].copy_from_slice(&start);
    stream.read_exact(&mut fixed[5..]).await?;
    if fixed[..12] != V2_SIGNATURE {
        return Err(ProxyProtocolError::NotProxyProtocol);
    }
    let len = usize::from(u16::from_be_bytes([fixed[14], fixed[15]]));
    if len > V2_MAX_LEN {
        return Err(ProxyProtocolError::V2TooLong(len));
    }
    let mut whole = fixed.to_vec();
    whole.resize(16 + len, 0);
    stream.read_exact(&mut whole[16..]).await?;
    parse_v2(&whole)
}

/// Parses a complete v1 line, CRLF included.
pub fn parse_v1(line: &[u8]) -> Result<Header, ProxyProtocolError> {
    let bad = |why: &str| ProxyProtocolError::V1Malformed(why.to_owned());
    if line.len() > V1_MAX {
        return Err(ProxyProtocolError::V1TooLong);
    }
    let text = std::str::from_utf8(line).map_err(|_| bad("not ASCII"))?;
    let text = text.strip_suffix("\r\n").ok_or_else(|| bad("missing CRLF"))?;
    let parts: Vec<&str> = text.split(' ').collect();
    match parts.as_slice() {
        ["PROXY", "UNKNOWN", ..] => Ok(Header::Local),
        ["PROXY", family @ ("TCP4" | "TCP6"), src, dst, sport, dport] => {
            let ip = |s: &str| -> Result<IpAddr, ProxyProtocolError> {
                let ip: IpAddr = s.parse().map_err(|_| bad(&format!("invalid address `{s}`")))?;
                match (*family, ip) {
                    ("TCP4", IpAddr::V4(_)) | ("TCP6", IpAddr::V6(_)) => Ok(ip),
                    _ => Err(bad(&format!("address `{s}` does not match {family}"))),
                }
            };
            let port = |s: &str| -> Result<u16, ProxyProtocolError> {
                if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(bad(&format!("invalid port `{s}`")));
                }
                s.parse().map_err(|_| bad(&format!("invalid port `{s}`")))
            };
            Ok(Header::Proxied {
                source: SocketAddr::new(ip(src)?, port(sport)?),
                destination: SocketAddr::new(ip(dst)?, port(dport)?),
            })
        }
        _ => Err(bad("expected `PROXY TCP4|TCP6 src dst sport dport` or `PROXY UNKNOWN`")),
    }
}

/// Parses a complete v2 header: 16-byte fixed part, then addresses and TLVs.
pub fn parse_v2(header: &[u8]) -> Result<Header, ProxyProtocolError> {
    if header.len() < 16 || header[..12] != V2_SIGNATURE {
        return Err(ProxyProtocolError::NotProxyProtocol);
    }
    let version_command = header[12];
    if version_command >> 4 != 2 {
        return Err(ProxyProtocolError::V2Version(version_command));
    }
    let len = usize::from(u16::from_be_bytes([header[14], header[15]]));
    if len > V2_MAX_LEN {
        return Err(ProxyProtocolError::V2TooLong(len));
    }
    let block = header.get(16..16 + len).ok_or(ProxyProtocolError::V2Short {
        family: header[13],
        got: header.len() - 16,
        need: len,
    })?;
    match version_command & 0x0f {
        0 => return Ok(Header::Local),
        1 => {}
        _ => return Err(ProxyProtocolError::V2Version(version_command)),
    }
    let family = header[13];
    let short = |need: usize| ProxyProtocolError::V2Short {
        family,
        got: block.len(),
        need,
    };
    match family {
        0x11 | 0x12 => {
            let a = block.get(..12).ok_or_else(|| short(12))?;
            let src = Ipv4Addr::new(a[0], a[1], a[2], a[3]);
            let dst = Ipv4Addr::new(a[4], a[5], a[6], a[7]);
            Ok(Header::Proxied {
                source: SocketAddr::new(IpAddr::V4(src), u16::from_be_bytes([a[8], a[9]])),
                destination: SocketAddr::new(IpAddr::V4(dst), u16::from_be_bytes([a[10], a[11]])),
            })
        }
        0x21 | 0x22 => {
            let a = block.get(..36).ok_or_else(|| short(36))?;
            let octets = |s: &[u8]| <[u8; 16]>::try_from(s).map(Ipv6Addr::from).map_err(|_| short(36));
            Ok(Header::Proxied {
                source: SocketAddr::new(IpAddr::V6(octets(&a[..16])?), u16::from_be_bytes([a[32], a[33]])),
                destination: SocketAddr::new(IpAddr::V6(octets(&a[16..32])?), u16::from_be_bytes([a[34], a[35]])),
            })
        }
        // UNSPEC and UNIX sockets carry no IP address: the socket peer stands.
        _ => Ok(Header::Local),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v2(command: u8, family: u8, addrs: &[u8], tlvs: &[u8]) -> Vec<u8> {
        let mut h = V2_SIGNATURE.to_vec();
        h.push(0x20 | command);
        h.push(family);
        h.extend_from_slice(&((addrs.len() + tlvs.len()) as u16).to_be_bytes());
        h.extend_from_slice(addrs);
        h.extend_from_slice(tlvs);
        h
    }

    fn sa(s: &str) -> SocketAddr {
        s.parse().expect("socket address")
    }

    #[test]
    fn v1_tcp4_tcp6_and_unknown() {
        assert_eq!(
            parse_v1(b"PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n").expect("valid"),
            Header::Proxied {
                source: sa("192.0.2.1:56324"),
                destination: sa("198.51.100.2:443")
            }
        );
        assert_eq!(
            parse_v1(b"PROXY TCP6 2001:db8::1 2001:db8::2 1 2\r\n").expect("valid"),
            Header::Proxied {
                source: sa("[2001:db8::1]:1"),
                destination: sa("[2001:db8::2]:2")
            }
        );
        assert_eq!(parse_v1(b"PROXY UNKNOWN\r\n").expect("valid"), Header::Local);
    }

    #[test]
    fn malformed_v1_is_rejected() {
        for bad in [
            &b"PROXY TCP4 192.0.2.1 198.51.100.2 1 2\n"[..],
            b"PROXY TCP4  192.0.2.1 198.51.100.2 1 2\r\n",
            b"PROXY TCP4 192.0.2.1 198.51.100.2 70000 2\r\n",
            b"PROXY TCP4 2001:db8::1 198.51.100.2 1 2\r\n",
            b"PROXY TCP4 192.0.2.1 198.51.100.2 +1 2\r\n",
            b"PROXY SCTP 1 2 3 4\r\n",
        ] {
            assert!(parse_v1(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
        let long = format!("PROXY TCP4 {}\r\n", "1".repeat(110));
        assert!(matches!(parse_v1(long.as_bytes()), Err(ProxyProtocolError::V1TooLong)));
    }

    #[test]
    fn v2_families_commands_and_tlvs() {
        let v4 = [192, 0, 2, 1, 198, 51, 100, 2, 0xdc, 0x04, 0x01, 0xbb];
        let h = parse_v2(&v2(1, 0x11, &v4, &[0x04, 0x00, 0x01, 0xff])).expect("valid");
        assert_eq!(
            h,
            Header::Proxied {
                source: sa("192.0.2.1:56324"),
                destination: sa("198.51.100.2:443")
            }
        );
        let mut v6 = Vec::new();
        v6.extend_from_slice(&"2001:db8::1".parse::<Ipv6Addr>().expect("ip").octets());
        v6.extend_from_slice(&"2001:db8::2".parse::<Ipv6Addr>().expect("ip").octets());
        v6.extend_from_slice(&[0, 1, 0, 2]);
        assert_eq!(
            parse_v2(&v2(1, 0x21, &v6, &[])).expect("valid"),
            Header::Proxied {
                source: sa("[2001:db8::1]:1"),
                destination: sa("[2001:db8::2]:2")
            }
        );
        assert_eq!(parse_v2(&v2(0, 0x11, &v4, &[])).expect("valid"), Header::Local);
        assert_eq!(parse_v2(&v2(1, 0x31, &[0; 216], &[])).expect("valid"), Header::Local);
        assert!(matches!(
            parse_v2(&v2(1, 0x21, &v4, &[])),
            Err(ProxyProtocolError::V2Short { .. })
        ));
        let mut bad_version = v2(1, 0x11, &v4, &[]);
        bad_version[12] = 0x11;
        assert!(matches!(
            parse_v2(&bad_version),
            Err(ProxyProtocolError::V2Version(0x11))
        ));
        let mut too_long = v2(1, 0x11, &v4, &[]);
        too_long[14..16].copy_from_slice(&2000u16.to_be_bytes());
        assert!(matches!(parse_v2(&too_long), Err(ProxyProtocolError::V2TooLong(2000))));
    }

    #[tokio::test]
    async fn the_request_after_the_header_stays_in_the_stream() {
        for header in [
            b"PROXY TCP4 192.0.2.1 198.51.100.2 1 2\r\n".to_vec(),
            v2(1, 0x11, &[192, 0, 2, 1, 198, 51, 100, 2, 0, 1, 0, 2], &[]),
        ] {
            let mut data = header.clone();
            data.extend_from_slice(b"GET / HTTP/1.1\r\n\r\n");
            let mut reader = &data[..];
            let h = read_header(&mut reader, Duration::from_secs(1)).await.expect("valid");
            assert!(matches!(h, Header::Proxied { .. }));
            assert_eq!(reader, b"GET / HTTP/1.1\r\n\r\n");
        }
    }

    #[tokio::test]
    async fn plain_http_is_refused_after_five_bytes_and_silence_times_out() {
        let data = b"GET / HTTP/1.1\r\n\r\n".to_vec();
        let mut reader = &data[..];
        assert!(matches!(
            read_header(&mut reader, Duration::from_secs(1)).await,
            Err(ProxyProtocolError::NotProxyProtocol)
        ));
        assert_eq!(reader.len(), data.len() - 5);
        let (mut quiet, _keep_open) = tokio::io::duplex(64);
        let r = read_header(&mut quiet, Duration::from_millis(50)).await;
        assert!(matches!(r, Err(ProxyProtocolError::Timeout)), "{r:?}");
    }
}
