//! A log file that rotates itself: when it reaches `max_size`, or when the day (or week) it was opened in is
//! over, it is renamed to `<name>.<UTC time>` and a new one is opened; rotated files older than the retention
//! or beyond the count limit are deleted. The disk a log can take is bounded by `max_size × (max_files + 1)`.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::config::schema::Rotation;

/// How a log file rotates and what is kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    /// Rotate when a write would take the file past this many bytes (always checked, whatever `rotation`).
    pub max_size: u64,
    /// Also rotate when the UTC day (`Daily`) or week (`Weekly`, weeks starting on Monday) changes.
    pub rotation: Rotation,
    /// Rotated files last modified longer ago than this are deleted.
    pub retention: Duration,
    /// At most this many rotated files are kept, the newest.
    pub max_files: usize,
}

pub struct RotatingFile {
    path: PathBuf,
    policy: Policy,
    file: File,
    size: u64,
    /// The day or week number the file was opened in (`None` when rotating by size only).
    period: Option<u64>,
}

/// The period a time falls in, for time-based rotation: days since the epoch, or weeks starting on Monday
/// (1970-01-01 was a Thursday, so weeks are counted from Monday 1969-12-29).
fn period_of(rotation: Rotation, t: SystemTime) -> Option<u64> {
    let days = t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs() / 86_400;
    match rotation {
        Rotation::Size => None,
        Rotation::Daily => Some(days),
        Rotation::Weekly => Some((days + 3) / 7),
    }
}

/// `20261202-013005` for a UTC time: sorts the way time goes.
fn stamp(t: SystemTime) -> String {
    let dt = super::request_log::utc(t);
    format!(
        "{:04}{:02}{:02}-{:02}{:02}{:02}",
        dt.year(),
        u8::from(dt.month()),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second()
    )
}

fn open_append(path: &Path) -> io::Result<File> {
    let mut o = OpenOptions::new();
    o.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // Logs hold client addresses and request lines: not for every local user.
        o.mode(0o640);
    }
    o.open(path)
}

impl RotatingFile {
    /// Opens (or creates, with its directory) the log at `path`, appending to what is there.
    pub fn open(path: &Path, policy: Policy) -> io::Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir)?;
        }
        let file = open_append(path)?;
        let meta = file.metadata()?;
        // A file kept from before a restart belongs to the period it was last written in.
        let opened = meta.modified().unwrap_or_else(|_| SystemTime::now());
        Ok(Self {
            path: path.to_owned(),
            policy,
            size: meta.len(),
            period: period_of(policy.rotation, opened),
            file,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Rotates first when `next` more bytes would pass the size limit or the period has changed. A single
    /// record bigger than the limit still goes into a file of its own rather than being lost.
    fn rotate_if_due(&mut self, next: usize, now: SystemTime) -> io::Result<()> {
        let too_big = self.size > 0 && self.size.saturating_add(next as u64) > self.policy.max_size;
        let new_period = self.period.is_some() && self.period != period_of(self.policy.rotation, now);
        if too_big || (new_period && self.size > 0) {
            self.rotate(now)?;
        } else if new_period {
            self.period = period_of(self.policy.rotation, now);
        }
        Ok(())
    }

    /// Renames the current file aside, opens a fresh one and deletes what the policy no longer keeps.
    pub fn rotate(&mut self, now: SystemTime) -> io::Result<()> {
        self.file.flush()?;
        let base = format!("{}.{}", self.path.display(), stamp(now));
        let mut target = PathBuf::from(&base);
        let mut n = 1;
        while target.exists() {
            target = PathBuf::from(format!("{base}.{n}"));
            n += 1;
        }
        fs::rename(&self.path, &target)?;
        self.file = open_append(&self.path)?;
        self.size = 0;
        self.period = period_of(self.policy.rotation, now);
        self.prune(now);
        Ok(())
    }

    /// Rotated files of this log, newest first.
    pub fn rotated(&self) -> Vec<(PathBuf, SystemTime)> {
        let Some(dir) = self
            .path
            .parent()
            .map(|d| if d.as_os_str().is_empty() { Path::new(".") } else { d })
        else {
            return Vec::new();
        };
        let Some(name) = self.path.file_name().and_then(|n| n.to_str()) else {
            return Vec::new();
        };
        let prefix = format!("{name}.");
        let mut out: Vec<(PathBuf, SystemTime)> = fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| {
                e.file_name().to_str().is_some_and(|n| {
                    n.strip_prefix(&prefix)
                        .is_some_and(|rest| rest.len() >= 15 && rest.as_bytes()[..8].iter().all(u8::is_ascii_digit))
                })
            })
            .filter_map(|e| Some((e.path(), e.metadata().ok()?.modified().ok()?)))
            .collect();
        // Names sort by rotation time; the modification time breaks no ties the name does not.
        out.sort_by(|a, b| b.0.cmp(&a.0));
        out
    }

    fn prune(&self, now: SystemTime) {
        for (i, (path, modified)) in self.rotated().into_iter().enumerate() {
            let old = now.duration_since(modified).unwrap_or_default() > self.policy.retention;
            if (i >= self.policy.max_files || old)
                && let Err(e) = fs::remove_file(&path)
            {
                // Only stderr: the log itself may be what is failing.
                eprintln!("rampart: cannot delete the rotated log {}: {e}", path.display());
            }
        }
    }

    /// Writes one or more whole records (rotation never splits a write).
    pub fn write_records(&mut self, bytes: &[u8], now: SystemTime) -> io::Result<()> {
        self.rotate_if_due(bytes.len(), now)?;
        self.file.write_all(bytes)?;
        self.size += bytes.len() as u64;
        Ok(())
    }

    /// Time-based rotation and retention on a quiet log, where no write would trigger them.
    pub fn tick(&mut self, now: SystemTime) -> io::Result<()> {
        self.rotate_if_due(0, now)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a test reports failure by panicking
mod tests {
    use super::*;

    fn policy(max_size: u64, max_files: usize) -> Policy {
        Policy {
            max_size,
            rotation: Rotation::Size,
            retention: Duration::from_secs(30 * 86_400),
            max_files,
        }
    }

    fn dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("rampart-rotating-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn a_file_rotates_at_its_size_limit_without_splitting_a_record_and_keeps_max_files() {
        let d = dir("size");
        let path = d.join("access.log");
        let mut f = RotatingFile::open(&path, policy(100, 2)).unwrap();
        let t0 = SystemTime::now();
        let line = [b'x'; 39];
        for i in 0..10u64 {
            let mut rec = line.to_vec();
            rec.push(b'\n');
            f.write_records(&rec, t0 + Duration::from_secs(i)).unwrap();
        }
        // 40-byte records, 100-byte limit: two per file.
        assert_eq!(fs::metadata(&path).unwrap().len(), 80);
        let rotated = f.rotated();
        assert_eq!(rotated.len(), 2, "{rotated:?}");
        for (p, _) in &rotated {
            assert_eq!(fs::metadata(p).unwrap().len(), 80, "{}", p.display());
            let name = p.file_name().unwrap().to_str().unwrap();
            assert!(name.starts_with("access.log.20"), "{name}");
        }
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn rotated_files_older_than_the_retention_are_deleted() {
        let d = dir("age");
        let path = d.join("security.log");
        let mut f = RotatingFile::open(
            &path,
            Policy {
                retention: Duration::from_secs(86_400),
                ..policy(10, 100)
            },
        )
        .unwrap();
        let now = SystemTime::now();
        f.write_records(b"first record\n", now).unwrap();
        f.rotate(now).unwrap();
        let (old, _) = f.rotated().pop().unwrap();
        File::options()
            .write(true)
            .open(&old)
            .unwrap()
            .set_modified(now - Duration::from_secs(2 * 86_400))
            .unwrap();
        f.write_records(b"second record\n", now).unwrap();
        f.write_records(b"third record\n", now + Duration::from_secs(1))
            .unwrap();
        let left: Vec<_> = f.rotated().into_iter().map(|(p, _)| p).collect();
        assert!(!left.contains(&old), "{left:?}");
        assert_eq!(left.len(), 1, "{left:?}");
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn daily_rotation_starts_a_new_file_when_the_utc_day_changes() {
        let d = dir("daily");
        let path = d.join("perf.log");
        let mut f = RotatingFile::open(
            &path,
            Policy {
                rotation: Rotation::Daily,
                ..policy(1 << 20, 10)
            },
        )
        .unwrap();
        let now = SystemTime::now();
        f.write_records(b"today\n", now).unwrap();
        f.tick(now).unwrap();
        assert!(f.rotated().is_empty());
        f.tick(now + Duration::from_secs(86_400)).unwrap();
        assert_eq!(f.rotated().len(), 1);
        assert_eq!(fs::metadata(&path).unwrap().len(), 0);
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn weeks_start_on_monday() {
        // Day 20786 since the epoch is Sunday 2026-11-29.
        let days = 20_786u64;
        assert_eq!(
            (days + 4) % 7,
            0,
            "the fixture day is a Sunday (1970-01-01 was a Thursday)"
        );
        let sunday = UNIX_EPOCH + Duration::from_secs(days * 86_400 + 3600);
        let monday = sunday + Duration::from_secs(86_400);
        assert_ne!(period_of(Rotation::Weekly, sunday), period_of(Rotation::Weekly, monday));
        assert_eq!(
            period_of(Rotation::Weekly, monday),
            period_of(Rotation::Weekly, monday + Duration::from_secs(6 * 86_400))
        );
    }
}
