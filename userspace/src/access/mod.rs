//! IP access lists: the record of allow and deny entries and the single place that changes them. Every change
//! goes to the record and to the XDP maps under one lock, so the two never disagree.
//!
//! The record is in memory in this build; entries from `xdp.allow`/`xdp.deny` are reloaded at start.
//! This module decides nothing about *whether* to list an address: callers (admin API, config) do.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use rampart_common::{EntrySource, ListEntry};

use crate::config::types::Cidr;
use crate::xdp::{self, ListKind, XdpMaps};

/// A listed prefix with what is known about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listed {
    pub list: ListKind,
    pub cidr: Cidr,
    /// Free text from the operator (or `config`).
    pub reason: String,
    pub source: EntrySource,
    pub created_at: SystemTime,
    /// `None` for permanent entries.
    pub expires_at: Option<SystemTime>,
    /// The same expiry on the kernel's monotonic clock; 0 = never.
    expires_mono_ns: u64,
}

impl Listed {
    fn is_live(&self, now_mono_ns: u64) -> bool {
        self.expires_mono_ns == 0 || now_mono_ns < self.expires_mono_ns
    }
}

/// A request to list a prefix.
#[derive(Clone, Debug)]
pub struct NewEntry {
    pub cidr: Cidr,
    pub reason: String,
    pub source: EntrySource,
    /// `None` = permanent.
    pub ttl: Option<Duration>,
}

#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    #[error("XDP is not active, so a {0} entry could not be enforced; nothing was changed")]
    NotEnforceable(&'static str),
    #[error("refusing to deny {cidr}: it contains {addr}, {what}")]
    Protected {
        cidr: Cidr,
        addr: IpAddr,
        what: &'static str,
    },
    #[error("writing the {list} list to the XDP map failed: {source}")]
    Map {
        list: &'static str,
        #[source]
        source: aya::maps::MapError,
    },
}

/// Addresses a deny entry must never cover, with what they are (e.g. the admin listener).
pub type Protected = Vec<(IpAddr, &'static str)>;

pub struct AccessLists {
    record: Mutex<BTreeMap<(ListKindKey, Cidr), Listed>>,
    maps: Option<Arc<XdpMaps>>,
    protected: Protected,
}

/// `ListKind` ordered for use in the record's key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct ListKindKey(u8);

impl From<ListKind> for ListKindKey {
    fn from(k: ListKind) -> Self {
        Self(match k {
            ListKind::Allow => 0,
            ListKind::Deny => 1,
        })
    }
}

impl AccessLists {
    /// `maps` is `None` when XDP is not active; changes are then refused rather than silently unenforced.
    pub fn new(maps: Option<Arc<XdpMaps>>, protected: Protected) -> Self {
        Self {
            record: Mutex::new(BTreeMap::new()),
            maps,
            protected,
        }
    }

    /// Lists `entry` (replacing an entry for the same prefix) and returns what was stored.
    pub fn add(&self, list: ListKind, entry: NewEntry) -> Result<Listed, AccessError> {
        if list == ListKind::Deny
            && let Some((addr, what)) = self.protected.iter().find(|(a, _)| entry.cidr.contains(a))
        {
            return Err(AccessError::Protected {
                cidr: entry.cidr,
                addr: *addr,
                what,
            });
        }
        let maps = self.maps.as_ref().ok_or(AccessError::NotEnforceable(list.as_str()))?;
        let expires_mono_ns = xdp::expiry_after(entry.ttl);
        let now = SystemTime::now();
        let listed = Listed {
            list,
            cidr: entry.cidr,
            reason: entry.reason,
            source: entry.source,
            created_at: now,
            expires_at: entry.ttl.map(|ttl| now + ttl),
            expires_mono_ns,
        };
        let mut record = self.lock_record();
        lock(&maps.lists)
            .insert(list, entry.cidr, ListEntry::new(entry.source, expires_mono_ns))
            .map_err(|source| AccessError::Map {
                list: list.as_str(),
                source,
            })?;
        record.insert((list.into(), entry.cidr), listed.clone());
        Ok(listed)
    }

    /// Removes an exact prefix; `Ok(None)` when it was not listed.
    pub fn remove(&self, list: ListKind, cidr: Cidr) -> Result<Option<Listed>, AccessError> {
        let maps = self.maps.as_ref().ok_or(AccessError::NotEnforceable(list.as_str()))?;
        let mut record = self.lock_record();
        // The map is cleared even for a prefix the record lacks, so a stray kernel entry can always be removed.
        let in_map = lock(&maps.lists)
            .remove(list, cidr)
            .map_err(|source| AccessError::Map {
                list: list.as_str(),
                source,
            })?;
        let listed = record.remove(&(list.into(), cidr));
        Ok(if in_map { listed } else { None })
    }

    /// Live entries of one list as the kernel holds them, in prefix order, with the record's metadata. Reading
    /// the map (not only the record) means a listing shows exactly what is enforced; a kernel entry the record
    /// lacks is still shown, with reason `unknown`.
    pub fn entries(&self, list: ListKind) -> Result<Vec<Listed>, AccessError> {
        let Some(maps) = self.maps.as_ref() else {
            return Ok(Vec::new());
        };
        let now = xdp::monotonic_ns();
        let record = self.lock_record();
        let in_kernel = lock(&maps.lists).entries(list).map_err(|source| AccessError::Map {
            list: list.as_str(),
            source,
        })?;
        let mut out: Vec<Listed> = in_kernel
            .into_iter()
            .filter(|(_, entry)| entry.is_live(now))
            .map(|(cidr, entry)| match record.get(&(list.into(), cidr)) {
                Some(listed) => listed.clone(),
                None => Listed {
                    list,
                    cidr,
                    reason: "unknown".into(),
                    source: EntrySource::from_u32(entry.source).unwrap_or(EntrySource::Admin),
                    created_at: SystemTime::UNIX_EPOCH,
                    expires_at: None,
                    expires_mono_ns: entry.expires_at_ns,
                },
            })
            .collect();
        out.sort_by_key(|l| l.cidr);
        Ok(out)
    }

    /// Deletes expired entries from the maps and the record; returns how many went. The kernel already
    /// ignores them, so this only reclaims map space.
    pub fn sweep(&self) -> Result<usize, AccessError> {
        let Some(maps) = self.maps.as_ref() else { return Ok(0) };
        let now = xdp::monotonic_ns();
        let mut record = self.lock_record();
        let expired: Vec<_> = record
            .iter()
            .filter(|(_, l)| !l.is_live(now))
            .map(|(k, l)| (*k, l.list))
            .collect();
        let mut lists = lock(&maps.lists);
        for ((kind, cidr), list) in &expired {
            lists.remove(*list, *cidr).map_err(|source| AccessError::Map {
                list: list.as_str(),
                source,
            })?;
            record.remove(&(*kind, *cidr));
        }
        Ok(expired.len())
    }

    pub fn is_enforced(&self) -> bool {
        self.maps.is_some()
    }

    fn lock_record(&self) -> MutexGuard<'_, BTreeMap<(ListKindKey, Cidr), Listed>> {
        lock(&self.record)
    }
}

/// A poisoned lock means a panic mid-update elsewhere; the data is still the last consistent write (both
/// writes happen under the lock and neither panics), so carry on rather than take the admin API down.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
