//! Who may use the admin API: accounts from `admin.auth.users` (argon2 hashes), roles, tokens, lockout,
//! and the guard that every route passes through with the role it needs.
//!
//! With `admin.auth.enabled: false` (allowed by config validation only on a loopback listener) the guard lets
//! every request through as the local administrator, as a root-owned Unix socket would. Nothing here logs a
//! password, a hash, a token or the secret.

mod guard;
mod handlers;
mod lockout;
pub mod password;
pub mod token;

use std::time::{Duration, Instant};

use tracing::warn;

use crate::config::schema::{AdminAuthConfig, AdminRole, AdminUser};

pub use guard::{Access, guard};
pub use handlers::{login, logout, refresh, users};
pub use token::{Issued, Principal, TokenError, Tokens};

/// Longest username or password read from a login; longer ones are refused before hashing.
const MAX_CREDENTIAL_LEN: usize = 1024;

pub struct Auth {
    mode: Mode,
}

enum Mode {
    /// Loopback listener without accounts: everyone local is the administrator.
    Open,
    Tokens(Box<Enabled>),
}

struct Enabled {
    users: Vec<AdminUser>,
    tokens: Tokens,
    lockout: lockout::Lockout,
}

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("invalid username or password")]
    Invalid,
    #[error("account locked after too many failed logins; try again in {} s", .0.as_secs().max(1))]
    Locked(Duration),
    #[error("authentication is disabled (admin.auth.enabled: false): no login is needed on this listener")]
    Disabled,
    #[error("{0}")]
    Token(#[from] TokenError),
}

impl Auth {
    /// From `admin.auth`; config validation has already checked secret, algorithm and users.
    pub fn new(config: &AdminAuthConfig) -> Result<Self, String> {
        if !config.enabled {
            return Ok(Self { mode: Mode::Open });
        }
        let algorithm = token::algorithm(&config.jwt_algorithm)
            .ok_or_else(|| format!("admin.auth.jwt_algorithm `{}` is not supported", config.jwt_algorithm))?;
        let secret = config
            .jwt_secret
            .as_deref()
            .ok_or("admin.auth.jwt_secret is required when admin.auth.enabled is true")?;
        Ok(Self {
            mode: Mode::Tokens(Box::new(Enabled {
                users: config.users.clone(),
                tokens: Tokens::new(
                    algorithm,
                    secret.as_bytes(),
                    Duration::from_secs(config.token_expiry),
                    Duration::from_secs(config.refresh_token_expiry),
                ),
                lockout: lockout::Lockout::new(config.max_login_attempts, Duration::from_secs(config.lockout_duration)),
            })),
        })
    }

    pub fn enabled(&self) -> bool {
        matches!(self.mode, Mode::Tokens(_))
    }

    /// Checks a bearer token; with auth disabled every caller is the local administrator.
    pub fn authenticate(&self, bearer: Option<&str>) -> Result<Principal, TokenError> {
        match &self.mode {
            Mode::Open => Ok(Principal {
                user: "local".into(),
                role: AdminRole::Admin,
                sid: String::new(),
            }),
            Mode::Tokens(e) => e
                .tokens
                .verify_access(bearer.ok_or(TokenError::Malformed("no bearer token".into()))?),
        }
    }

    /// Checks a password (on a blocking thread: argon2 is slow on purpose) and opens a session.
    pub async fn login(&self, username: &str, password: &str) -> Result<Issued, LoginError> {
        let Mode::Tokens(e) = &self.mode else {
            return Err(LoginError::Disabled);
        };
        if username.len() > MAX_CREDENTIAL_LEN || password.len() > MAX_CREDENTIAL_LEN {
            return Err(LoginError::Invalid);
        }
        if let Some(left) = e.lockout.locked_for(username, Instant::now()) {
            return Err(LoginError::Locked(left));
        }
        let user = e.users.iter().find(|u| u.username == username);
        let phc = user.map_or_else(|| password::decoy().to_owned(), |u| u.password_hash.clone());
        let pw = password.to_owned();
        let ok = tokio::task::spawn_blocking(move || password::verify(&pw, &phc))
            .await
            .unwrap_or(false);
        match user {
            Some(u) if ok => {
                e.lockout.succeeded(username);
                Ok(e.tokens.open(&u.username, u.role)?)
            }
            _ => {
                if e.lockout.failed(username, Instant::now()) {
                    // The username is what an operator needs to act on; it is not a secret.
                    warn!(user = %username, "admin account locked after repeated failed logins");
                }
                Err(LoginError::Invalid)
            }
        }
    }

    pub fn refresh(&self, refresh_token: &str) -> Result<Issued, LoginError> {
        match &self.mode {
            Mode::Open => Err(LoginError::Disabled),
            Mode::Tokens(e) => Ok(e.tokens.refresh(refresh_token)?),
        }
    }

    pub fn logout(&self, principal: &Principal) -> bool {
        match &self.mode {
            Mode::Open => false,
            Mode::Tokens(e) => e.tokens.close(&principal.sid),
        }
    }

    /// Accounts without their hashes, for `GET /admin/auth/users`.
    pub fn user_list(&self) -> Vec<(String, AdminRole)> {
        match &self.mode {
            Mode::Open => Vec::new(),
            Mode::Tokens(e) => e.users.iter().map(|u| (u.username.clone(), u.role)).collect(),
        }
    }
}
