//! Who the user of a request is, for `per_user` endpoint limits: a header's value, or the `sub` claim of
//! the JWT it carries. A JWT is trusted only when its HS256 signature checks out with the configured
//! secret (and it has not expired), or when the configuration explicitly accepts unverified tokens;
//! otherwise the header's raw value is the key, so forging a `sub` cannot move a client to another's quota.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use http::HeaderMap;
use http::header::HeaderName;
use sha2::Sha256;

use crate::config::schema::UserKey;

pub struct UserKeyReader {
    header: Option<HeaderName>,
    jwt: Option<JwtMode>,
}

enum JwtMode {
    Verified(Vec<u8>),
    Unverified,
}

impl UserKeyReader {
    pub fn new(c: &UserKey) -> Self {
        let jwt = match (&c.jwt_sub, &c.jwt_hs256_secret, c.jwt_insecure_unverified) {
            (false, _, _) => None,
            (true, Some(secret), _) => Some(JwtMode::Verified(secret.as_bytes().to_vec())),
            (true, None, true) => Some(JwtMode::Unverified),
            (true, None, false) => None,
        };
        Self {
            header: HeaderName::from_bytes(c.header.as_bytes()).ok(),
            jwt,
        }
    }

    /// The user's key bytes, or `None` when the request names no user.
    pub fn read(&self, headers: &HeaderMap) -> Option<Vec<u8>> {
        let value = headers.get(self.header.as_ref()?)?.as_bytes();
        if value.is_empty() {
            return None;
        }
        if let Some(mode) = &self.jwt {
            let token = value.strip_prefix(b"Bearer ").unwrap_or(value);
            if let Some(sub) = jwt_sub(token, mode, now_secs()) {
                let mut key = b"sub:".to_vec();
                key.extend_from_slice(sub.as_bytes());
                return Some(key);
            }
        }
        Some(value.to_vec())
    }
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The `sub` of a compact JWT, when `mode` accepts the token.
fn jwt_sub(token: &[u8], mode: &JwtMode, now: u64) -> Option<String> {
    let text = std::str::from_utf8(token).ok()?;
    let mut parts = text.split('.');
    let (head, payload, sig) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    if let JwtMode::Verified(secret) = mode {
        let header: serde_json::Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(head).ok()?).ok()?;
        if header.get("alg")?.as_str()? != "HS256" {
            return None;
        }
        let mut mac = Hmac::<Sha256>::new_from_slice(secret).ok()?;
        mac.update(head.as_bytes());
        mac.update(b".");
        mac.update(payload.as_bytes());
        mac.verify_slice(&URL_SAFE_NO_PAD.decode(sig).ok()?).ok()?;
    }
    let claims: serde_json::Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
    if let Some(exp) = claims.get("exp").and_then(serde_json::Value::as_u64)
        && exp <= now
    {
        return None;
    }
    Some(claims.get("sub")?.as_str()?.to_owned())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a test reports failure by panicking
mod tests {
    use super::*;

    fn sign(claims: &str, secret: &[u8]) -> String {
        let head = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
        let body = URL_SAFE_NO_PAD.encode(claims.as_bytes());
        let mut mac = Hmac::<Sha256>::new_from_slice(secret).unwrap();
        mac.update(format!("{head}.{body}").as_bytes());
        let sig = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        format!("{head}.{body}.{sig}")
    }

    #[test]
    fn a_verified_jwt_names_its_subject_and_a_forged_one_does_not() {
        let mode = JwtMode::Verified(b"k3y".to_vec());
        let good = sign(r#"{"sub":"alice","exp":4000000000}"#, b"k3y");
        assert_eq!(jwt_sub(good.as_bytes(), &mode, 1000).as_deref(), Some("alice"));
        let forged = sign(r#"{"sub":"alice"}"#, b"other");
        assert_eq!(jwt_sub(forged.as_bytes(), &mode, 1000), None);
        let expired = sign(r#"{"sub":"alice","exp":999}"#, b"k3y");
        assert_eq!(jwt_sub(expired.as_bytes(), &mode, 1000), None);
        assert_eq!(
            jwt_sub(forged.as_bytes(), &JwtMode::Unverified, 1000).as_deref(),
            Some("alice"),
            "only when the configuration accepts unverified tokens"
        );
    }

    #[test]
    fn the_reader_falls_back_to_the_header_value() {
        let reader = UserKeyReader::new(&UserKey {
            jwt_sub: true,
            jwt_hs256_secret: Some("k3y".into()),
            ..UserKey::default()
        });
        let mut h = HeaderMap::new();
        h.insert(
            "authorization",
            format!("Bearer {}", sign(r#"{"sub":"bob"}"#, b"k3y")).parse().unwrap(),
        );
        assert_eq!(reader.read(&h).unwrap(), b"sub:bob");
        h.insert("authorization", "Bearer not.a.jwt".parse().unwrap());
        assert_eq!(reader.read(&h).unwrap(), b"Bearer not.a.jwt");
        assert_eq!(reader.read(&HeaderMap::new()), None);
    }
}
