//! Access and refresh tokens: HMAC-signed JWTs with the one configured algorithm, and the server-side
//! sessions that make refresh rotation and logout real.
//!
//! A login opens a session (`sid`). The access token (short-lived) and the refresh token both name it; an
//! access token is honoured only while its session is open, so logout revokes it at once. Each refresh
//! consumes the current refresh token (`jti`) and issues a new pair; presenting a consumed refresh token again
//! means it was copied, and closes the whole session. Sessions are kept in a bounded table.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::config::schema::AdminRole;

/// Sessions kept at most; when full, the one closest to expiry is closed to make room.
const MAX_SESSIONS: usize = 10_000;
const ISSUER: &str = "rampart";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenKind {
    Access,
    Refresh,
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    iss: String,
    sub: String,
    role: AdminRole,
    sid: String,
    jti: String,
    typ: TokenKind,
    iat: u64,
    exp: u64,
}

/// Who a verified token speaks for.
#[derive(Clone, Debug)]
pub struct Principal {
    pub user: String,
    pub role: AdminRole,
    pub sid: String,
}

/// A fresh token pair, as the login and refresh endpoints return it.
#[derive(Debug, Serialize)]
pub struct Issued {
    pub access_token: String,
    pub refresh_token: String,
    pub token_type: &'static str,
    /// Seconds the access token is valid.
    pub expires_in: u64,
    pub refresh_expires_in: u64,
    pub role: AdminRole,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("token expired")]
    Expired,
    #[error("token signature does not verify")]
    BadSignature,
    #[error("token algorithm is not the configured one")]
    WrongAlgorithm,
    #[error("malformed token: {0}")]
    Malformed(String),
    #[error("a {0:?} token cannot be used here")]
    WrongKind(TokenKind),
    #[error("session is closed (logged out, expired or replaced)")]
    Revoked,
    #[error("refresh token was already used; the session is closed")]
    Reused,
    #[error("cannot issue a token: {0}")]
    Issue(String),
}

struct Session {
    user: String,
    role: AdminRole,
    /// The refresh token that may be used next.
    refresh_jti: String,
    expires: u64,
}

pub struct Tokens {
    algorithm: Algorithm,
    encoding: EncodingKey,
    decoding: DecodingKey,
    access_ttl: Duration,
    refresh_ttl: Duration,
    sessions: Mutex<HashMap<String, Session>>,
}

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn random_id() -> Result<String, TokenError> {
    let mut b = [0u8; 16];
    getrandom::getrandom(&mut b).map_err(|e| TokenError::Issue(format!("no randomness: {e}")))?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

/// The configured name as an HMAC algorithm; config validation allows only these three.
pub fn algorithm(name: &str) -> Option<Algorithm> {
    match name {
        "HS256" => Some(Algorithm::HS256),
        "HS384" => Some(Algorithm::HS384),
        "HS512" => Some(Algorithm::HS512),
        _ => None,
    }
}

impl Tokens {
    pub fn new(algorithm: Algorithm, secret: &[u8], access_ttl: Duration, refresh_ttl: Duration) -> Self {
        Self {
            algorithm,
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            access_ttl,
            refresh_ttl,
            sessions: Mutex::new(HashMap::new()),
        }
    }

    /// Opens a session for `user` and returns its first token pair.
    pub fn open(&self, user: &str, role: AdminRole) -> Result<Issued, TokenError> {
        let sid = random_id()?;
        let now = now_secs();
        let refresh_jti = random_id()?;
        let issued = self.pair(user, role, &sid, &refresh_jti, now)?;
        let mut sessions = self.lock();
        sessions.retain(|_, s| s.expires > now);
        if sessions.len() >= MAX_SESSIONS
            && let Some(oldest) = sessions.iter().min_by_key(|(_, s)| s.expires).map(|(k, _)| k.clone())
        {
            sessions.remove(&oldest);
        }
        sessions.insert(
            sid,
            Session {
                user: user.to_owned(),
                role,
                refresh_jti,
                expires: now + self.refresh_ttl.as_secs(),
            },
        );
        Ok(issued)
    }

    /// Checks an access token: signature, algorithm, expiry, kind, and that its session is open.
    pub fn verify_access(&self, token: &str) -> Result<Principal, TokenError> {
        let c = self.decode(token)?;
        if c.typ != TokenKind::Access {
            return Err(TokenError::WrongKind(c.typ));
        }
        let sessions = self.lock();
        match sessions.get(&c.sid) {
            Some(s) if s.user == c.sub => Ok(Principal {
                user: c.sub,
                role: s.role,
                sid: c.sid,
            }),
            _ => Err(TokenError::Revoked),
        }
    }

    /// Rotation: consumes `refresh_token` and returns a new pair for the same session.
    pub fn refresh(&self, refresh_token: &str) -> Result<Issued, TokenError> {
        let c = self.decode(refresh_token)?;
        if c.typ != TokenKind::Refresh {
            return Err(TokenError::WrongKind(c.typ));
        }
        let now = now_secs();
        let next_jti = random_id()?;
        let mut sessions = self.lock();
        let Some(s) = sessions.get_mut(&c.sid) else {
            return Err(TokenError::Revoked);
        };
        if s.refresh_jti != c.jti || s.user != c.sub {
            // A consumed refresh token came back: someone holds a copy. Close the session for everyone.
            sessions.remove(&c.sid);
            return Err(TokenError::Reused);
        }
        let issued = self.pair(&s.user, s.role, &c.sid, &next_jti, now)?;
        s.refresh_jti = next_jti;
        s.expires = now + self.refresh_ttl.as_secs();
        Ok(issued)
    }

    /// Closes a session: its access and refresh tokens stop working at once.
    pub fn close(&self, sid: &str) -> bool {
        self.lock().remove(sid).is_some()
    }

    fn pair(&self, user: &str, role: AdminRole, sid: &str, refresh_jti: &str, now: u64) -> Result<Issued, TokenError> {
        let claims = |typ, jti: String, ttl: Duration| Claims {
            iss: ISSUER.into(),
            sub: user.to_owned(),
            role,
            sid: sid.to_owned(),
            jti,
            typ,
            iat: now,
            exp: now + ttl.as_secs(),
        };
        let header = Header::new(self.algorithm);
        let sign =
            |c: &Claims| jsonwebtoken::encode(&header, c, &self.encoding).map_err(|e| TokenError::Issue(e.to_string()));
        Ok(Issued {
            access_token: sign(&claims(TokenKind::Access, random_id()?, self.access_ttl))?,
            refresh_token: sign(&claims(TokenKind::Refresh, refresh_jti.to_owned(), self.refresh_ttl))?,
            token_type: "Bearer",
            expires_in: self.access_ttl.as_secs(),
            refresh_expires_in: self.refresh_ttl.as_secs(),
            role,
        })
    }

    fn decode(&self, token: &str) -> Result<Claims, TokenError> {
        // Only the configured algorithm: a token naming another (or "none", which the library cannot even
        // parse) is refused before its signature is looked at, so an HS/RS confusion cannot arise.
        let mut v = Validation::new(self.algorithm);
        v.algorithms = vec![self.algorithm];
        v.leeway = 0;
        v.set_issuer(&[ISSUER]);
        v.set_required_spec_claims(&["exp", "iss", "sub"]);
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &v)
            .map(|d| d.claims)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => TokenError::Expired,
                ErrorKind::InvalidSignature => TokenError::BadSignature,
                ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => TokenError::WrongAlgorithm,
                _ => TokenError::Malformed(e.to_string()),
            })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a test reports failure by panicking
mod tests {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;

    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn tokens() -> Tokens {
        Tokens::new(
            Algorithm::HS256,
            SECRET,
            Duration::from_secs(60),
            Duration::from_secs(600),
        )
    }

    fn claims_of(token: &str) -> serde_json::Value {
        let payload = token.split('.').nth(1).unwrap();
        serde_json::from_slice(&B64.decode(payload).unwrap()).unwrap()
    }

    #[test]
    fn an_issued_access_token_verifies_and_names_its_user() {
        let t = tokens();
        let pair = t.open("ops", AdminRole::Operator).unwrap();
        let p = t.verify_access(&pair.access_token).unwrap();
        assert_eq!((p.user.as_str(), p.role), ("ops", AdminRole::Operator));
        assert_eq!(
            t.verify_access(&pair.refresh_token).unwrap_err(),
            TokenError::WrongKind(TokenKind::Refresh)
        );
    }

    #[test]
    fn alg_none_and_other_algorithms_are_refused() {
        let t = tokens();
        let pair = t.open("ops", AdminRole::Admin).unwrap();
        let payload = pair.access_token.split('.').nth(1).unwrap();
        let none = format!("{}.{payload}.", B64.encode(br#"{"alg":"none","typ":"JWT"}"#));
        assert!(matches!(
            t.verify_access(&none),
            Err(TokenError::Malformed(_) | TokenError::WrongAlgorithm)
        ));
        // The same claims properly signed with the same secret but HS512: still refused.
        let claims: Claims = serde_json::from_value(claims_of(&pair.access_token)).unwrap();
        let hs512 = jsonwebtoken::encode(
            &Header::new(Algorithm::HS512),
            &claims,
            &EncodingKey::from_secret(SECRET),
        )
        .unwrap();
        assert_eq!(t.verify_access(&hs512).unwrap_err(), TokenError::WrongAlgorithm);
    }

    #[test]
    fn a_token_signed_with_another_secret_or_edited_is_refused() {
        let t = tokens();
        let pair = t.open("viewer", AdminRole::Viewer).unwrap();
        let mut claims: Claims = serde_json::from_value(claims_of(&pair.access_token)).unwrap();
        let forged = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(b"another secret another secret!!!"),
        )
        .unwrap();
        assert_eq!(t.verify_access(&forged).unwrap_err(), TokenError::BadSignature);
        // Raising the role in the payload breaks the signature.
        claims.role = AdminRole::Admin;
        let body = B64.encode(serde_json::to_vec(&claims).unwrap());
        let mut parts: Vec<&str> = pair.access_token.split('.').collect();
        parts[1] = &body;
        assert_eq!(t.verify_access(&parts.join(".")).unwrap_err(), TokenError::BadSignature);
    }

    #[test]
    fn an_expired_token_is_refused() {
        let t = tokens();
        let pair = t.open("ops", AdminRole::Operator).unwrap();
        let mut claims: Claims = serde_json::from_value(claims_of(&pair.access_token)).unwrap();
        claims.exp = now_secs() - 1;
        let old = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(SECRET),
        )
        .unwrap();
        assert_eq!(t.verify_access(&old).unwrap_err(), TokenError::Expired);
    }

    #[test]
    fn refresh_rotates_and_a_reused_refresh_token_closes_the_session() {
        let t = tokens();
        let first = t.open("ops", AdminRole::Operator).unwrap();
        let second = t.refresh(&first.refresh_token).unwrap();
        assert_ne!(second.refresh_token, first.refresh_token);
        t.verify_access(&second.access_token).unwrap();
        assert_eq!(t.refresh(&first.refresh_token).unwrap_err(), TokenError::Reused);
        assert_eq!(t.verify_access(&second.access_token).unwrap_err(), TokenError::Revoked);
        assert_eq!(t.refresh(&second.refresh_token).unwrap_err(), TokenError::Revoked);
    }

    #[test]
    fn closing_a_session_revokes_both_tokens() {
        let t = tokens();
        let pair = t.open("ops", AdminRole::Operator).unwrap();
        let sid = t.verify_access(&pair.access_token).unwrap().sid;
        assert!(t.close(&sid));
        assert_eq!(t.verify_access(&pair.access_token).unwrap_err(), TokenError::Revoked);
        assert_eq!(t.refresh(&pair.refresh_token).unwrap_err(), TokenError::Revoked);
    }
}
