//! Signed, expiring, client-bound strings: the challenge a page carries (`nonce`) and the clearance cookie
//! that solving it earns. Both are stateless (an HMAC-SHA256 over what they claim), so they cost no memory,
//! survive restarts (the key is kept on disk) and are accepted by every node that shares the key.
//!
//! The binding is the client address (IPv6 by its /64, which one host's privacy addresses share) and its
//! user agent: a cookie copied to another machine, or to a script with another agent, is worthless.

use std::net::IpAddr;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Who a token is for.
#[derive(Clone, Copy, Debug)]
pub struct Binding<'a> {
    pub client: IpAddr,
    pub user_agent: &'a [u8],
}

impl Binding<'_> {
    fn address_key(&self) -> [u8; 16] {
        match self.client {
            IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
            IpAddr::V6(v6) => {
                let mut o = v6.octets();
                if v6.to_ipv4_mapped().is_none() {
                    o[8..].fill(0);
                }
                o
            }
        }
    }
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("not a token of this format")]
    Malformed,
    #[error("signature does not match (forged, or for another client)")]
    Forged,
    #[error("expired")]
    Expired,
}

pub struct Signer {
    key: [u8; 32],
}

impl Signer {
    pub fn new(key: [u8; 32]) -> Self {
        Self { key }
    }

    fn mac(&self, kind: &[u8], fields: &[&[u8]], b: &Binding<'_>) -> [u8; 32] {
        // new_from_slice fails only for key lengths HMAC cannot take; 32 bytes is always accepted.
        let mut m = <HmacSha256 as Mac>::new_from_slice(&self.key).unwrap_or_else(|_| unreachable!());
        m.update(kind);
        for f in fields {
            m.update(&(f.len() as u32).to_be_bytes());
            m.update(f);
        }
        m.update(&b.address_key());
        m.update(b.user_agent);
        m.finalize().into_bytes().into()
    }

    /// `c1.<expires>.<difficulty>.<salt>.<mac>`; the salt makes every challenge distinct.
    pub fn nonce(&self, b: &Binding<'_>, expires: u64, difficulty: u8) -> String {
        let mut salt = [0u8; 9];
        // getrandom fails only without an entropy source; the salt is for distinctness, not secrecy.
        let _ = getrandom::getrandom(&mut salt);
        let salt = URL_SAFE_NO_PAD.encode(salt);
        let e = expires.to_string();
        let d = difficulty.to_string();
        let mac = self.mac(b"nonce", &[e.as_bytes(), d.as_bytes(), salt.as_bytes()], b);
        format!("c1.{e}.{d}.{salt}.{}", URL_SAFE_NO_PAD.encode(mac))
    }

    /// The difficulty a valid, unexpired nonce for `b` asks for.
    pub fn check_nonce(&self, nonce: &str, b: &Binding<'_>, now: u64) -> Result<u8, TokenError> {
        let mut p = nonce.split('.');
        let (Some("c1"), Some(e), Some(d), Some(salt), Some(mac), None) =
            (p.next(), p.next(), p.next(), p.next(), p.next(), p.next())
        else {
            return Err(TokenError::Malformed);
        };
        let expires: u64 = e.parse().map_err(|_| TokenError::Malformed)?;
        let difficulty: u8 = d.parse().map_err(|_| TokenError::Malformed)?;
        let want = self.mac(b"nonce", &[e.as_bytes(), d.as_bytes(), salt.as_bytes()], b);
        verify(mac, &want)?;
        if now > expires {
            return Err(TokenError::Expired);
        }
        Ok(difficulty)
    }

    /// `v1.<expires>.<mac>`: the clearance cookie's value.
    pub fn clearance(&self, b: &Binding<'_>, expires: u64) -> String {
        let e = expires.to_string();
        let mac = self.mac(b"clearance", &[e.as_bytes()], b);
        format!("v1.{e}.{}", URL_SAFE_NO_PAD.encode(mac))
    }

    pub fn check_clearance(&self, value: &str, b: &Binding<'_>, now: u64) -> Result<(), TokenError> {
        let mut p = value.split('.');
        let (Some("v1"), Some(e), Some(mac), None) = (p.next(), p.next(), p.next(), p.next()) else {
            return Err(TokenError::Malformed);
        };
        let expires: u64 = e.parse().map_err(|_| TokenError::Malformed)?;
        verify(mac, &self.mac(b"clearance", &[e.as_bytes()], b))?;
        if now > expires {
            return Err(TokenError::Expired);
        }
        Ok(())
    }
}

/// Constant-time comparison of a presented MAC with the expected one.
fn verify(presented: &str, want: &[u8; 32]) -> Result<(), TokenError> {
    let got = URL_SAFE_NO_PAD.decode(presented).map_err(|_| TokenError::Malformed)?;
    if got.len() != want.len() {
        return Err(TokenError::Forged);
    }
    let diff = got.iter().zip(want).fold(0u8, |acc, (a, b)| acc | (a ^ b));
    if diff == 0 { Ok(()) } else { Err(TokenError::Forged) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b<'a>(ip: &str, ua: &'a str) -> Binding<'a> {
        Binding {
            client: ip.parse().expect("ip"),
            user_agent: ua.as_bytes(),
        }
    }

    #[test]
    fn a_clearance_holds_for_its_client_until_it_expires() {
        let s = Signer::new([7; 32]);
        let c = s.clearance(&b("192.0.2.1", "UA"), 1000);
        assert_eq!(s.check_clearance(&c, &b("192.0.2.1", "UA"), 999), Ok(()));
        assert_eq!(
            s.check_clearance(&c, &b("192.0.2.1", "UA"), 1001),
            Err(TokenError::Expired)
        );
        assert_eq!(
            s.check_clearance(&c, &b("192.0.2.2", "UA"), 999),
            Err(TokenError::Forged)
        );
        assert_eq!(
            s.check_clearance(&c, &b("192.0.2.1", "curl/8"), 999),
            Err(TokenError::Forged)
        );
        assert_eq!(
            Signer::new([8; 32]).check_clearance(&c, &b("192.0.2.1", "UA"), 999),
            Err(TokenError::Forged)
        );
        let later = c.replace("v1.1000.", "v1.9999.");
        assert_eq!(
            s.check_clearance(&later, &b("192.0.2.1", "UA"), 999),
            Err(TokenError::Forged)
        );
        assert_eq!(
            s.check_clearance("v1.x", &b("192.0.2.1", "UA"), 0),
            Err(TokenError::Malformed)
        );
    }

    #[test]
    fn ipv6_clients_are_bound_by_their_64() {
        let s = Signer::new([1; 32]);
        let c = s.clearance(&b("2001:db8:1:2::10", "UA"), 50);
        assert_eq!(s.check_clearance(&c, &b("2001:db8:1:2:aaaa::1", "UA"), 1), Ok(()));
        assert_eq!(
            s.check_clearance(&c, &b("2001:db8:1:3::10", "UA"), 1),
            Err(TokenError::Forged)
        );
    }

    #[test]
    fn nonces_carry_their_difficulty_and_are_distinct() {
        let s = Signer::new([3; 32]);
        let n1 = s.nonce(&b("192.0.2.1", "UA"), 100, 18);
        let n2 = s.nonce(&b("192.0.2.1", "UA"), 100, 18);
        assert_ne!(n1, n2);
        assert_eq!(s.check_nonce(&n1, &b("192.0.2.1", "UA"), 10), Ok(18));
        assert_eq!(s.check_nonce(&n1, &b("192.0.2.1", "UA"), 101), Err(TokenError::Expired));
        let easier = n1.replacen(".18.", ".1.", 1);
        assert_eq!(
            s.check_nonce(&easier, &b("192.0.2.1", "UA"), 10),
            Err(TokenError::Forged)
        );
    }
}
