//! The durable record of allow and deny entries (embedded SQLite). The maps are rebuilt from it after a reboot
//! (when the pinned maps are gone) and reconciled with it on every start. Times are wall-clock Unix seconds,
//! since the kernel's monotonic clock restarts at boot.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rampart_common::EntrySource;
use rusqlite::{Connection, OptionalExtension, params};

use crate::config::types::Cidr;
use crate::xdp::ListKind;

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("access-list record {path}: {source}")]
    Sqlite {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("cannot create the directory for the access-list record {path}: {source}")]
    Dir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// One allow- or deny-list entry as recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    pub list: ListKind,
    pub cidr: Cidr,
    pub reason: String,
    pub source: EntrySource,
    pub created_at: SystemTime,
    pub expires_at: Option<SystemTime>,
}

pub struct Record {
    conn: Connection,
    path: PathBuf,
}

/// Maps an SQLite error to one naming the record file.
fn sqlite_error(path: &Path) -> impl Fn(rusqlite::Error) -> RecordError + use<> {
    let path = path.to_owned();
    move |source| RecordError::Sqlite {
        path: path.clone(),
        source,
    }
}

const UPSERT: &str = "INSERT INTO entries (list, cidr, reason, source, created_at, expires_at)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6)
     ON CONFLICT (list, cidr) DO UPDATE SET reason = ?3, source = ?4, created_at = ?5, expires_at = ?6";

/// The values for [`UPSERT`], in order.
fn row_params(row: &Row) -> (&'static str, String, &str, u32, i64, Option<i64>) {
    (
        list_name(row.list),
        row.cidr.to_string(),
        &row.reason,
        row.source as u32,
        unix(row.created_at),
        row.expires_at.map(unix),
    )
}

fn list_name(l: ListKind) -> &'static str {
    l.as_str()
}

fn unix(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn from_unix(s: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(u64::try_from(s).unwrap_or(0))
}

impl Record {
    pub fn open(path: &Path) -> Result<Self, RecordError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| RecordError::Dir {
                path: dir.to_owned(),
                source,
            })?;
        }
        let err = sqlite_error(path);
        let conn = Connection::open(path).map_err(&err)?;
        // WAL with full sync: a committed admin change survives a crash or power loss; writes are rare.
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = FULL;
             CREATE TABLE IF NOT EXISTS entries (
                 list TEXT NOT NULL CHECK (list IN ('allow', 'deny')),
                 cidr TEXT NOT NULL,
                 reason TEXT NOT NULL,
                 source INTEGER NOT NULL,
                 created_at INTEGER NOT NULL,
                 expires_at INTEGER,
                 PRIMARY KEY (list, cidr)
             );",
        )
        .map_err(&err)?;
        Ok(Self {
            conn,
            path: path.to_owned(),
        })
    }

    fn err(&self) -> impl Fn(rusqlite::Error) -> RecordError + use<> {
        sqlite_error(&self.path)
    }

    pub fn all(&self) -> Result<Vec<Row>, RecordError> {
        let mut stmt = self
            .conn
            .prepare("SELECT list, cidr, reason, source, created_at, expires_at FROM entries ORDER BY list, cidr")
            .map_err(self.err())?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, u32>(3)?,
                    r.get::<_, i64>(4)?,
                    r.get::<_, Option<i64>>(5)?,
                ))
            })
            .map_err(self.err())?;
        let mut out = Vec::new();
        for row in rows {
            let (list, cidr, reason, source, created, expires) = row.map_err(self.err())?;
            // A row this version cannot read (hand-edited file) is skipped, not fatal: the rest still loads.
            let Some(list) = (match list.as_str() {
                "allow" => Some(ListKind::Allow),
                "deny" => Some(ListKind::Deny),
                _ => None,
            }) else {
                continue;
            };
            let Ok(cidr) = cidr.parse::<Cidr>() else { continue };
            out.push(Row {
                list,
                cidr,
                reason,
                source: EntrySource::from_u32(source).unwrap_or(EntrySource::Admin),
                created_at: from_unix(created),
                expires_at: expires.map(from_unix),
            });
        }
        Ok(out)
    }

    /// Inserts or replaces a row inside a transaction that the caller commits with `finish` once the map write
    /// succeeded, so record and map change together or not at all.
    pub fn upsert(&mut self, row: &Row) -> Result<Pending<'_>, RecordError> {
        let (tx, path) = self.begin()?;
        tx.execute(UPSERT, row_params(row)).map_err(sqlite_error(&path))?;
        Ok(Pending { tx, path })
    }

    /// Deletes a row inside a transaction the caller commits with `finish`.
    pub fn delete(&mut self, list: ListKind, cidr: Cidr) -> Result<Pending<'_>, RecordError> {
        let (tx, path) = self.begin()?;
        tx.execute(
            "DELETE FROM entries WHERE list = ?1 AND cidr = ?2",
            params![list_name(list), cidr.to_string()],
        )
        .map_err(sqlite_error(&path))?;
        Ok(Pending { tx, path })
    }

    /// Makes the `config` rows exactly `rows` and deletes expired rows, in one transaction (a configuration
    /// can list hundreds of thousands of prefixes; one fsync per row would take minutes).
    pub fn replace_config_and_expire(&mut self, rows: &[Row], now: SystemTime) -> Result<(), RecordError> {
        let (tx, path) = self.begin()?;
        let err = sqlite_error(&path);
        tx.execute(
            "DELETE FROM entries WHERE source = ?1",
            params![EntrySource::Config as u32],
        )
        .map_err(&err)?;
        tx.execute(
            "DELETE FROM entries WHERE expires_at IS NOT NULL AND expires_at <= ?1",
            params![unix(now)],
        )
        .map_err(&err)?;
        {
            let mut stmt = tx.prepare(UPSERT).map_err(&err)?;
            for row in rows {
                stmt.execute(row_params(row)).map_err(&err)?;
            }
        }
        tx.commit().map_err(&err)
    }

    fn begin(&mut self) -> Result<(rusqlite::Transaction<'_>, PathBuf), RecordError> {
        let path = self.path.clone();
        let tx = self.conn.transaction().map_err(sqlite_error(&path))?;
        Ok((tx, path))
    }

    /// Whether a row exists (for tests and checks).
    pub fn contains(&self, list: ListKind, cidr: Cidr) -> Result<bool, RecordError> {
        self.conn
            .query_row(
                "SELECT 1 FROM entries WHERE list = ?1 AND cidr = ?2",
                params![list_name(list), cidr.to_string()],
                |_| Ok(()),
            )
            .optional()
            .map(|o| o.is_some())
            .map_err(self.err())
    }
}

/// A change written but not yet committed; dropped without `finish`, it rolls back.
pub struct Pending<'a> {
    tx: rusqlite::Transaction<'a>,
    path: PathBuf,
}

impl Pending<'_> {
    pub fn finish(self) -> Result<(), RecordError> {
        let path = self.path;
        self.tx.commit().map_err(|source| RecordError::Sqlite { path, source })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(cidr: &str, expires: Option<u64>) -> Row {
        Row {
            list: ListKind::Deny,
            cidr: cidr.parse().expect("valid"),
            reason: "test".into(),
            source: EntrySource::Admin,
            created_at: from_unix(1_700_000_000),
            expires_at: expires.map(|e| from_unix(e as i64)),
        }
    }

    #[test]
    fn rows_survive_reopening_and_uncommitted_changes_do_not() {
        let dir = std::env::temp_dir().join(format!("rampart-record-{}", std::process::id()));
        let path = dir.join("lists.db");
        let _ = std::fs::remove_dir_all(&dir);
        {
            let mut rec = Record::open(&path).expect("open");
            rec.upsert(&row("192.0.2.0/24", None))
                .expect("write")
                .finish()
                .expect("commit");
            rec.upsert(&row("2001:db8::/32", Some(1_800_000_000)))
                .expect("write")
                .finish()
                .expect("commit");
            // Not committed: rolled back when dropped.
            drop(rec.upsert(&row("198.51.100.1", None)).expect("write"));
        }
        let rec = Record::open(&path).expect("reopen");
        let rows = rec.all().expect("read");
        assert_eq!(
            rows,
            vec![row("192.0.2.0/24", None), row("2001:db8::/32", Some(1_800_000_000))]
        );
        assert!(
            !rec.contains(ListKind::Deny, "198.51.100.1".parse().expect("valid"))
                .expect("query")
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn replacing_config_rows_keeps_admin_rows_and_drops_expired_ones() {
        let dir = std::env::temp_dir().join(format!("rampart-record-cfg-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut rec = Record::open(&dir.join("lists.db")).expect("open");
        let config = |cidr: &str| Row {
            source: EntrySource::Config,
            reason: "config".into(),
            ..row(cidr, None)
        };
        rec.upsert(&row("192.0.2.1", None))
            .expect("write")
            .finish()
            .expect("commit");
        rec.upsert(&row("192.0.2.2", Some(1_000)))
            .expect("write")
            .finish()
            .expect("commit");
        rec.upsert(&config("192.0.2.3"))
            .expect("write")
            .finish()
            .expect("commit");
        rec.replace_config_and_expire(&[config("192.0.2.4")], from_unix(2_000))
            .expect("replace");
        let cidrs: Vec<String> = rec.all().expect("read").iter().map(|r| r.cidr.to_string()).collect();
        assert_eq!(cidrs, ["192.0.2.1/32", "192.0.2.4/32"]);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
