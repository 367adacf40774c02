//! On-disk state of automatic certificates under `ssl.storage.path`:
//!
//! ```text
//! <path>/acme-account-<hash of directory URL>.json   account credentials (mode 0600)
//! <path>/<name>/fullchain.pem                          issued certificate and chain
//! <path>/<name>/privkey.pem                            its private key (mode 0600)
//! <path>/<name>/meta.json                              domains, key type and directory it was issued for
//! <backup>/<name>/<unix time>-<serial>/{fullchain,privkey}.pem   the certificate it replaced
//! ```
//!
//! Directories are made 0700. Every file is written to a temporary name and renamed, so a crash never
//! leaves half a key. Holds bytes only: it never talks to the ACME server and never logs a key or the
//! account credentials.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha1::{Digest, Sha1};

use crate::config::schema::{CertStorageConfig, KeyType};

#[derive(Debug, thiserror::Error)]
#[error("certificate storage {}: {message}", path.display())]
pub struct StoreError {
    pub path: PathBuf,
    pub message: String,
}

fn err(path: &Path, e: impl std::fmt::Display) -> StoreError {
    StoreError {
        path: path.to_owned(),
        message: e.to_string(),
    }
}

/// What a stored certificate was issued for: a change in any of these means a new order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertMeta {
    pub domains: Vec<String>,
    pub key_type: KeyType,
    pub directory_url: String,
}

/// A certificate as stored: PEM text, and the metadata it was issued under.
pub struct StoredCert {
    pub chain_pem: String,
    pub key_pem: String,
    pub meta: CertMeta,
    pub chain_path: PathBuf,
    pub key_path: PathBuf,
}

#[derive(Clone, Debug)]
pub struct CertStore {
    root: PathBuf,
    backup: Option<PathBuf>,
}

impl CertStore {
    pub fn new(cfg: &CertStorageConfig) -> Self {
        let backup = cfg
            .backup_enabled
            .then(|| cfg.backup_path.clone().unwrap_or_else(|| cfg.path.join("backup")));
        Self {
            root: cfg.path.clone(),
            backup,
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The directory a certificate for these domains lives in: named after the first domain.
    pub fn cert_dir(&self, domains: &[String]) -> PathBuf {
        let first = domains.first().map_or("default", String::as_str);
        self.root.join(first.replace('*', "_wildcard_").replace('/', "_"))
    }

    fn account_path(&self, directory_url: &str) -> PathBuf {
        let digest = Sha1::digest(directory_url.as_bytes());
        let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
        self.root.join(format!("acme-account-{hex}.json"))
    }

    /// The stored account for this directory, if any (serialised `instant_acme::AccountCredentials`).
    pub fn load_account(&self, directory_url: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let path = self.account_path(directory_url);
        match fs::read(&path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(err(&path, e)),
        }
    }

    pub fn save_account(&self, directory_url: &str, credentials: &[u8]) -> Result<PathBuf, StoreError> {
        ensure_dir(&self.root)?;
        let path = self.account_path(directory_url);
        write_atomic(&path, credentials, 0o600)?;
        Ok(path)
    }

    /// The stored certificate for these domains, if there is one; `Ok(None)` also when its files are
    /// incomplete (a new order replaces them).
    pub fn load_cert(&self, domains: &[String]) -> Result<Option<StoredCert>, StoreError> {
        let dir = self.cert_dir(domains);
        let (chain_path, key_path, meta_path) = (
            dir.join("fullchain.pem"),
            dir.join("privkey.pem"),
            dir.join("meta.json"),
        );
        let read = |p: &Path| match fs::read_to_string(p) {
            Ok(s) => Ok(Some(s)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(err(p, e)),
        };
        let (Some(chain_pem), Some(key_pem), Some(meta)) = (read(&chain_path)?, read(&key_path)?, read(&meta_path)?)
        else {
            return Ok(None);
        };
        let meta: CertMeta = serde_json::from_str(&meta).map_err(|e| err(&meta_path, e))?;
        Ok(Some(StoredCert {
            chain_pem,
            key_pem,
            meta,
            chain_path,
            key_path,
        }))
    }

    /// Stores a newly issued certificate, first copying the one it replaces to the backup directory.
    /// Returns the paths of the chain and key files.
    pub fn save_cert(
        &self,
        meta: &CertMeta,
        chain_pem: &str,
        key_pem: &str,
        previous_serial: Option<&str>,
    ) -> Result<(PathBuf, PathBuf), StoreError> {
        let dir = self.cert_dir(&meta.domains);
        ensure_dir(&self.root)?;
        ensure_dir(&dir)?;
        let (chain_path, key_path) = (dir.join("fullchain.pem"), dir.join("privkey.pem"));
        if let Some(backup) = &self.backup
            && chain_path.exists()
            && key_path.exists()
        {
            let name = dir
                .file_name()
                .map_or_else(|| "default".into(), |n| n.to_string_lossy().into_owned());
            let stamp = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            let target = backup
                .join(name)
                .join(format!("{stamp}-{}", previous_serial.unwrap_or("unknown")));
            ensure_dir(backup)?;
            ensure_dir(&target)?;
            let old_chain = fs::read(&chain_path).map_err(|e| err(&chain_path, e))?;
            let old_key = fs::read(&key_path).map_err(|e| err(&key_path, e))?;
            write_atomic(&target.join("fullchain.pem"), &old_chain, 0o644)?;
            write_atomic(&target.join("privkey.pem"), &old_key, 0o600)?;
        }
        // Key first: a crash between the two renames leaves a new key with the old chain, which fails to load
        // as a pair and so leads to a new order, never to serving a mismatched pair.
        write_atomic(&key_path, key_pem.as_bytes(), 0o600)?;
        write_atomic(&chain_path, chain_pem.as_bytes(), 0o644)?;
        let meta_json = serde_json::to_vec_pretty(meta).map_err(|e| err(&dir, e))?;
        write_atomic(&dir.join("meta.json"), &meta_json, 0o644)?;
        Ok((chain_path, key_path))
    }
}

/// Creates `dir` (and parents) with mode 0700 when it does not exist yet.
fn ensure_dir(dir: &Path) -> Result<(), StoreError> {
    if dir.is_dir() {
        return Ok(());
    }
    fs::create_dir_all(dir).map_err(|e| err(dir, e))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(|e| err(dir, e))
}

/// Writes `bytes` to `path` through a temporary file created with `mode`, then renames it into place.
fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<(), StoreError> {
    let tmp = path.with_extension("tmp");
    let _ = fs::remove_file(&tmp);
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .map_err(|e| err(&tmp, e))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(|e| err(&tmp, e))?;
    // The umask may have cleared bits of `mode`; never more than asked, but make sure of exactly it.
    fs::set_permissions(&tmp, fs::Permissions::from_mode(mode)).map_err(|e| err(&tmp, e))?;
    fs::rename(&tmp, path).map_err(|e| err(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(tag: &str) -> (CertStore, PathBuf) {
        let dir = std::env::temp_dir().join(format!("rampart-store-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let cfg = CertStorageConfig {
            path: dir.join("certs"),
            backup_enabled: true,
            backup_path: None,
        };
        (CertStore::new(&cfg), dir)
    }

    fn mode(p: &Path) -> u32 {
        fs::metadata(p).expect("exists").permissions().mode() & 0o777
    }

    #[test]
    fn account_credentials_and_keys_are_readable_by_the_owner_only() {
        let (s, dir) = store("perm");
        let account = s.save_account("https://ca.test/dir", b"{\"secret\":1}").expect("saved");
        assert_eq!(mode(&account), 0o600);
        assert_eq!(mode(s.root()), 0o700);
        assert_eq!(
            s.load_account("https://ca.test/dir").expect("read").as_deref(),
            Some(&b"{\"secret\":1}"[..])
        );
        assert_eq!(s.load_account("https://other.test/dir").expect("read"), None);
        let meta = CertMeta {
            domains: vec!["a.test".into()],
            key_type: KeyType::Ecdsa256,
            directory_url: "https://ca.test/dir".into(),
        };
        let (chain, key) = s.save_cert(&meta, "CHAIN", "KEY", None).expect("saved");
        assert_eq!(mode(&key), 0o600);
        assert_eq!(mode(&chain), 0o644);
        let _ = fs::remove_dir_all(dir);
    }

    #[test]
    fn a_replaced_certificate_is_kept_in_the_backup_directory() {
        let (s, dir) = store("backup");
        let meta = CertMeta {
            domains: vec!["*.a.test".into(), "a.test".into()],
            key_type: KeyType::Rsa2048,
            directory_url: "https://ca.test/dir".into(),
        };
        s.save_cert(&meta, "OLD CHAIN", "OLD KEY", None).expect("first");
        s.save_cert(&meta, "NEW CHAIN", "NEW KEY", Some("0A")).expect("second");
        let stored = s.load_cert(&meta.domains).expect("read").expect("present");
        assert_eq!(
            (stored.chain_pem.as_str(), stored.key_pem.as_str()),
            ("NEW CHAIN", "NEW KEY")
        );
        assert_eq!(stored.meta, meta);
        let backups: Vec<PathBuf> = fs::read_dir(dir.join("certs/backup/_wildcard_.a.test"))
            .expect("backup dir")
            .map(|e| e.expect("entry").path())
            .collect();
        assert_eq!(backups.len(), 1);
        assert!(backups[0].to_string_lossy().ends_with("-0A"));
        assert_eq!(
            fs::read_to_string(backups[0].join("fullchain.pem")).expect("chain"),
            "OLD CHAIN"
        );
        assert_eq!(mode(&backups[0].join("privkey.pem")), 0o600);
        let _ = fs::remove_dir_all(dir);
    }

    #[test]
    fn a_missing_certificate_is_none_not_an_error() {
        let (s, dir) = store("missing");
        assert!(s.load_cert(&["a.test".into()]).expect("no error").is_none());
        let _ = fs::remove_dir_all(dir);
    }
}
