//! Where `rampart login` keeps its tokens: `$RAMPART_TOKEN_FILE`, else `$XDG_CONFIG_HOME/rampart/token`,
//! else `~/.config/rampart/token`. The file is created with mode 0600 (and its directory 0700) before anything
//! is written to it, so the tokens are never readable by another user, even for a moment.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::PathBuf;

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Stored {
    /// The admin API the tokens belong to.
    pub admin: String,
    pub username: String,
    pub access_token: String,
    pub refresh_token: String,
}

pub fn path() -> anyhow::Result<PathBuf> {
    if let Some(p) = std::env::var_os("RAMPART_TOKEN_FILE") {
        return Ok(PathBuf::from(p));
    }
    let base = match std::env::var_os("XDG_CONFIG_HOME") {
        Some(x) => PathBuf::from(x),
        None => PathBuf::from(std::env::var_os("HOME").context("neither RAMPART_TOKEN_FILE nor HOME is set")?)
            .join(".config"),
    };
    Ok(base.join("rampart").join("token"))
}

pub fn save(s: &Stored) -> anyhow::Result<PathBuf> {
    let p = path()?;
    if let Some(dir) = p.parent()
        && !dir.as_os_str().is_empty()
    {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("creating {}", dir.display()))?;
    }
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&p)
        .with_context(|| format!("opening {}", p.display()))?;
    // An existing file keeps its old mode on open; make sure it is 0600 before the tokens go in.
    f.set_permissions(fs::Permissions::from_mode(0o600))
        .with_context(|| format!("restricting {}", p.display()))?;
    f.write_all(serde_json::to_string(s)?.as_bytes())
        .with_context(|| format!("writing {}", p.display()))?;
    Ok(p)
}

/// The stored tokens, if `rampart login` was run; refuses a file others can read.
pub fn load() -> anyhow::Result<Option<Stored>> {
    let p = path()?;
    let meta = match fs::metadata(&p) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("reading {}", p.display())),
    };
    if meta.permissions().mode() & 0o077 != 0 {
        bail!("{} is readable by other users; remove it and log in again", p.display());
    }
    let text = fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?;
    serde_json::from_str(&text)
        .map(Some)
        .with_context(|| format!("{} is not a token file; remove it and log in again", p.display()))
}
