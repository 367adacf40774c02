//! One stored response (status, fields, body, lifetime, the request values it varies on) and its byte
//! encoding for the shared Redis level, checked on decode so a corrupt or foreign value is a miss, never a
//! wrong answer.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::{BufMut, Bytes, BytesMut};
use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::{HeaderMap as Map, StatusCode};

use super::policy::Lifetime;

const MAGIC: &[u8; 4] = b"RCE1";
/// Fields kept per entry at most (a response head has at most 64 KiB of them anyway).
const MAX_FIELDS: usize = 256;

/// Milliseconds since the Unix epoch: entries are shared between nodes, so times are wall-clock.
pub fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[derive(Clone, Debug)]
pub struct Entry {
    pub status: StatusCode,
    /// The upstream's fields, less hop-by-hop ones and those this hop writes (`Date`, `Content-Length`).
    pub headers: HeaderMap,
    /// As stored: deflate-compressed when `compressed`.
    pub body: Bytes,
    pub compressed: bool,
    pub stored_at_ms: u64,
    pub fresh_until_ms: u64,
    pub revalidate_until_ms: u64,
    pub if_error_until_ms: u64,
    /// The request's values of the headers the response varies on (`None`: the header was absent).
    pub vary: Vec<(HeaderName, Option<HeaderValue>)>,
}

/// Where an entry stands at one moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Freshness {
    Fresh,
    /// Past fresh, within stale-while-revalidate: serve and refresh in the background.
    Revalidate,
    /// Past both, within stale-if-error: serve only when the upstream fails.
    IfError,
    Expired,
}

/// Fields never stored: they describe one connection or are written by this hop.
fn skipped(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
            | "content-length"
            | "date"
            | "age"
            | "x-request-id"
            | "x-cache"
    )
}

impl Entry {
    pub fn new(
        status: StatusCode,
        upstream: &HeaderMap,
        request: &HeaderMap,
        body: Bytes,
        compressed: bool,
        lifetime: Lifetime,
        now: SystemTime,
    ) -> Self {
        let mut headers = HeaderMap::with_capacity(upstream.len());
        for (n, v) in upstream.iter().filter(|(n, _)| !skipped(n)).take(MAX_FIELDS) {
            headers.append(n.clone(), v.clone());
        }
        let mut vary = Vec::new();
        for v in upstream.get_all(http::header::VARY) {
            let Ok(v) = v.to_str() else { continue };
            for name in v.split(',') {
                if let Ok(name) = HeaderName::from_bytes(name.trim().to_ascii_lowercase().as_bytes())
                    && !vary.iter().any(|(n, _)| *n == name)
                {
                    let value = request.get(&name).cloned();
                    vary.push((name, value));
                }
            }
        }
        let at = |d: Duration| unix_ms(now + d);
        Self {
            status,
            headers,
            body,
            compressed,
            stored_at_ms: unix_ms(now),
            fresh_until_ms: at(lifetime.fresh),
            revalidate_until_ms: at(lifetime.fresh + lifetime.stale_while_revalidate),
            if_error_until_ms: at(lifetime.fresh + lifetime.stale_if_error),
            vary,
        }
    }

    /// Bytes this entry holds, roughly: what the memory limit counts.
    pub fn size(&self) -> usize {
        let fields: usize = self.headers.iter().map(|(n, v)| n.as_str().len() + v.len() + 32).sum();
        self.body.len() + fields + 128
    }

    pub fn freshness(&self, now_ms: u64) -> Freshness {
        if now_ms < self.fresh_until_ms {
            Freshness::Fresh
        } else if now_ms < self.revalidate_until_ms {
            Freshness::Revalidate
        } else if now_ms < self.if_error_until_ms {
            Freshness::IfError
        } else {
            Freshness::Expired
        }
    }

    /// Until when the entry is worth keeping at all.
    pub fn keep_until_ms(&self) -> u64 {
        self.fresh_until_ms
            .max(self.revalidate_until_ms)
            .max(self.if_error_until_ms)
    }

    /// Whether this request has the same values as the one the entry was stored for, on every varied header.
    pub fn vary_matches(&self, request: &Map) -> bool {
        self.vary
            .iter()
            .all(|(name, value)| request.get(name) == value.as_ref())
    }

    /// Seconds since the entry was stored, for `Age`.
    pub fn age_secs(&self, now_ms: u64) -> u64 {
        now_ms.saturating_sub(self.stored_at_ms) / 1000
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = BytesMut::with_capacity(self.size() + 64);
        out.put_slice(MAGIC);
        out.put_u16(self.status.as_u16());
        out.put_u8(u8::from(self.compressed));
        for t in [
            self.stored_at_ms,
            self.fresh_until_ms,
            self.revalidate_until_ms,
            self.if_error_until_ms,
        ] {
            out.put_u64(t);
        }
        put_len(&mut out, self.vary.len());
        for (n, v) in &self.vary {
            put_bytes(&mut out, n.as_str().as_bytes());
            match v {
                Some(v) => {
                    out.put_u8(1);
                    put_bytes(&mut out, v.as_bytes());
                }
                None => out.put_u8(0),
            }
        }
        put_len(&mut out, self.headers.len());
        for (n, v) in &self.headers {
            put_bytes(&mut out, n.as_str().as_bytes());
            put_bytes(&mut out, v.as_bytes());
        }
        put_bytes(&mut out, &self.body);
        out.to_vec()
    }

    /// `None` for anything that is not a complete, valid entry.
    pub fn decode(bytes: &[u8], max_body: usize) -> Option<Self> {
        let mut r = Reader(bytes);
        if r.take(4)? != MAGIC {
            return None;
        }
        let status = StatusCode::from_u16(r.u16()?).ok()?;
        let compressed = match r.u8()? {
            0 => false,
            1 => true,
            _ => return None,
        };
        let (stored_at_ms, fresh_until_ms, revalidate_until_ms, if_error_until_ms) =
            (r.u64()?, r.u64()?, r.u64()?, r.u64()?);
        let n = r.len()?;
        if n > MAX_FIELDS {
            return None;
        }
        let mut vary = Vec::with_capacity(n);
        for _ in 0..n {
            let name = HeaderName::from_bytes(r.bytes()?).ok()?;
            let value = match r.u8()? {
                0 => None,
                1 => Some(HeaderValue::from_bytes(r.bytes()?).ok()?),
                _ => return None,
            };
            vary.push((name, value));
        }
        let n = r.len()?;
        if n > MAX_FIELDS {
            return None;
        }
        let mut headers = HeaderMap::with_capacity(n);
        for _ in 0..n {
            let name = HeaderName::from_bytes(r.bytes()?).ok()?;
            let value = HeaderValue::from_bytes(r.bytes()?).ok()?;
            headers.append(name, value);
        }
        let body = r.bytes()?;
        if body.len() > max_body || !r.0.is_empty() {
            return None;
        }
        Some(Self {
            status,
            headers,
            body: Bytes::copy_from_slice(body),
            compressed,
            stored_at_ms,
            fresh_until_ms,
            revalidate_until_ms,
            if_error_until_ms,
            vary,
        })
    }
}

fn put_len(out: &mut BytesMut, n: usize) {
    out.put_u32(u32::try_from(n).unwrap_or(u32::MAX));
}

fn put_bytes(out: &mut BytesMut, b: &[u8]) {
    put_len(out, b.len());
    out.put_slice(b);
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }
    fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }
    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_be_bytes(self.take(2)?.try_into().ok()?))
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_be_bytes(self.take(8)?.try_into().ok()?))
    }
    fn len(&mut self) -> Option<usize> {
        usize::try_from(u32::from_be_bytes(self.take(4)?.try_into().ok()?)).ok()
    }
    fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = self.len()?;
        self.take(n)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a test reports failure by panicking
mod tests {
    use super::*;

    #[test]
    fn an_entry_survives_encoding_and_a_truncated_one_is_refused() {
        let mut up = HeaderMap::new();
        up.insert("etag", "\"x\"".parse().unwrap());
        up.insert("vary", "Accept-Encoding".parse().unwrap());
        up.insert("connection", "close".parse().unwrap());
        let mut req = HeaderMap::new();
        req.insert("accept-encoding", "gzip".parse().unwrap());
        let life = Lifetime {
            fresh: Duration::from_secs(10),
            stale_while_revalidate: Duration::from_secs(5),
            stale_if_error: Duration::ZERO,
        };
        let e = Entry::new(
            StatusCode::OK,
            &up,
            &req,
            Bytes::from_static(b"hello"),
            false,
            life,
            SystemTime::now(),
        );
        assert!(
            !e.headers.contains_key("connection"),
            "hop-by-hop fields are not stored"
        );
        let bytes = e.encode();
        let d = Entry::decode(&bytes, 1024).unwrap();
        assert_eq!(d.status, StatusCode::OK);
        assert_eq!(&d.body[..], b"hello");
        assert_eq!(d.headers.get("etag").unwrap(), "\"x\"");
        assert_eq!(d.fresh_until_ms, e.fresh_until_ms);
        assert!(d.vary_matches(&req));
        assert!(!d.vary_matches(&HeaderMap::new()));
        assert!(Entry::decode(&bytes[..bytes.len() - 1], 1024).is_none());
        assert!(Entry::decode(&bytes, 4).is_none(), "a body over the limit is refused");
        assert!(Entry::decode(b"junk", 1024).is_none());
        assert_eq!(d.freshness(d.fresh_until_ms - 1), Freshness::Fresh);
        assert_eq!(d.freshness(d.fresh_until_ms), Freshness::Revalidate);
        assert_eq!(d.freshness(d.revalidate_until_ms), Freshness::Expired);
    }
}
