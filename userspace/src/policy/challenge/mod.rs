//! Challenges for suspect clients (bot scores between the thresholds, custom rules and WAF verdicts with
//! action `challenge`): a JavaScript proof of work by default, or a CAPTCHA provider. A client that passes
//! gets a clearance cookie (signed, expiring, bound to its address and user agent) and is not challenged
//! again until it expires.
//!
//! The pieces: `token` signs nonces and cookies, `pow` checks the work, `page` renders the page,
//! `captcha` asks the provider. This module holds the signing key and the form/cookie parsing; the proxy's
//! `challenge_phase` does the HTTP.

pub mod captcha;
pub mod page;
pub mod pow;
pub mod token;

use std::io::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use http::HeaderMap;
use http::header;
use sha2::{Digest, Sha256};

use crate::config::Config;
use crate::config::schema::{BotConfig, ChallengeConfig};
use captcha::CaptchaClient;
use token::{Binding, Signer};

/// What a client is asked to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    ProofOfWork,
    Captcha,
}

/// The kind of challenge the configuration offers: the proof of work with `javascript_challenge`, else the
/// CAPTCHA when one is configured, else none (a challenge is then a block).
pub fn kind(c: &BotConfig) -> Option<Kind> {
    if c.javascript_challenge {
        Some(Kind::ProofOfWork)
    } else if c.challenge.captcha.is_some() {
        Some(Kind::Captcha)
    } else {
        None
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ChallengeError {
    #[error("challenge key {}: {source}", path.display())]
    Key { path: PathBuf, source: std::io::Error },
    #[error("challenge key {}: not 64 hexadecimal digits", path.display())]
    BadKey { path: PathBuf },
    #[error("{0}")]
    Captcha(#[from] captcha::CaptchaError),
}

/// The state challenges keep across configuration generations: the key kept on disk and the CAPTCHA
/// provider's client.
pub struct Challenges {
    file_key: [u8; 32],
    pub captcha: Option<CaptchaClient>,
}

/// `challenge.key` next to `xdp.record_file` (the daemon's state directory).
pub fn key_path(config: &Config) -> PathBuf {
    config
        .xdp
        .record_file
        .parent()
        .unwrap_or_else(|| Path::new("."))
        .join("challenge.key")
}

fn parse_hex_key(text: &str) -> Option<[u8; 32]> {
    let t = text.trim();
    if t.len() != 64 {
        return None;
    }
    let mut key = [0u8; 32];
    for (i, k) in key.iter_mut().enumerate() {
        *k = u8::from_str_radix(t.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(key)
}

/// Reads the key at `path`, or makes one there (mode 0600) when there is none.
fn load_or_create_key(path: &Path) -> Result<[u8; 32], ChallengeError> {
    let err = |source| ChallengeError::Key {
        path: path.to_owned(),
        source,
    };
    match std::fs::read_to_string(path) {
        Ok(text) => parse_hex_key(&text).ok_or_else(|| ChallengeError::BadKey { path: path.to_owned() }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut key = [0u8; 32];
            getrandom::getrandom(&mut key).map_err(|e| err(std::io::Error::other(e.to_string())))?;
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(err)?;
            }
            let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
            use std::os::unix::fs::OpenOptionsExt as _;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .map_err(err)?;
            f.write_all(format!("{hex}\n").as_bytes()).map_err(err)?;
            f.sync_all().map_err(err)?;
            Ok(key)
        }
        Err(e) => Err(err(e)),
    }
}

impl Challenges {
    /// The daemon's: the key from `challenge.key` (made on first start), the CAPTCHA client when a provider
    /// is configured. A key that cannot be read or made stops the start, naming the file.
    pub fn load(config: &Config) -> Result<Self, ChallengeError> {
        let c = &config.waf.bot_protection.challenge;
        let file_key = if c.secret.is_some() {
            [0; 32]
        } else {
            load_or_create_key(&key_path(config))?
        };
        let captcha = c.captcha.as_ref().map(|_| CaptchaClient::new()).transpose()?;
        Ok(Self { file_key, captcha })
    }

    /// A process-lifetime random key and no CAPTCHA client (proxies built without a daemon, as in tests).
    pub fn ephemeral() -> Self {
        let mut file_key = [0u8; 32];
        // Without an entropy source the key is all zeros: cookies still work, but are forgeable; only tests
        // build proxies this way.
        let _ = getrandom::getrandom(&mut file_key);
        Self {
            file_key,
            captcha: None,
        }
    }

    pub fn signer(&self, c: &ChallengeConfig) -> Signer {
        match &c.secret {
            Some(secret) => Signer::new(Sha256::digest(secret.as_bytes()).into()),
            None => Signer::new(self.file_key),
        }
    }
}

/// Seconds since the Unix epoch: tokens must mean the same after a restart and on every node.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

pub fn binding<'a>(client: IpAddr, headers: &'a HeaderMap) -> Binding<'a> {
    Binding {
        client,
        user_agent: headers
            .get(header::USER_AGENT)
            .map(|v| v.as_bytes())
            .unwrap_or_default(),
    }
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (k, v) = pair.trim().split_once('=')?;
            (k == name).then_some(v.trim_matches('"'))
        })
}

/// Whether the request carries a valid clearance for its client.
pub fn cleared(challenges: &Challenges, c: &ChallengeConfig, headers: &HeaderMap, client: IpAddr) -> bool {
    cookie(headers, &c.cookie_name).is_some_and(|v| {
        challenges
            .signer(c)
            .check_clearance(v, &binding(client, headers), unix_now())
            .is_ok()
    })
}

/// Decodes an `application/x-www-form-urlencoded` value (`+` is a space); invalid escapes stay as they are.
fn form_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |at: usize| b.get(at).and_then(|c| char::from(*c).to_digit(16));
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if hex(i + 1).is_some() && hex(i + 2).is_some() => {
                let v = hex(i + 1).unwrap_or(0) * 16 + hex(i + 2).unwrap_or(0);
                out.push(u8::try_from(v).unwrap_or(b'?'));
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Field `name` of a form body.
pub fn form_field(body: &[u8], name: &str) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    text.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (form_decode(k) == name).then(|| form_decode(v))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_fields_are_decoded() {
        let body = b"nonce=c1.2.16.ab.cd&solution=123&return_to=%2Fshop%3Fa%3D1+2&bad=%zz%4";
        assert_eq!(form_field(body, "nonce").as_deref(), Some("c1.2.16.ab.cd"));
        assert_eq!(form_field(body, "return_to").as_deref(), Some("/shop?a=1 2"));
        assert_eq!(form_field(body, "bad").as_deref(), Some("%zz%4"));
        assert_eq!(form_field(body, "missing"), None);
    }

    #[test]
    fn cookies_are_found_among_others() {
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            "a=1; rampart_clearance=v1.5.xyz".parse().expect("value"),
        );
        h.append(header::COOKIE, "b=2".parse().expect("value"));
        assert_eq!(cookie(&h, "rampart_clearance"), Some("v1.5.xyz"));
        assert_eq!(cookie(&h, "b"), Some("2"));
        assert_eq!(cookie(&h, "c"), None);
    }

    #[test]
    fn the_key_is_made_once_and_kept() {
        let dir = std::env::temp_dir().join(format!("rampart-challenge-key-{}", std::process::id()));
        let path = dir.join("challenge.key");
        let _ = std::fs::remove_dir_all(&dir);
        let first = load_or_create_key(&path).expect("made");
        let second = load_or_create_key(&path).expect("read");
        assert_eq!(first, second);
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        std::fs::write(&path, "short").expect("write");
        assert!(matches!(load_or_create_key(&path), Err(ChallengeError::BadKey { .. })));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
