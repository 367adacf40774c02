//! IP access lists: the durable record of allow and deny entries and the single place that changes them.
//! Every change goes to the record (SQLite) and to the XDP maps together: the record's transaction commits only
//! after the map write succeeded, so the two never disagree.
//!
//! When XDP is not running (no privileges, an interface that refuses, or `xdp.enabled: false`), the same lists
//! are enforced at L7 by [`AccessLists::l7_verdict`], which the listener consults for every connection.
//! This module decides nothing about *whether* to list an address: callers (admin API, config) do.
//!
//! Changes made here by a caller (admin API, auto-ban) are also handed to the fleet publisher when one is
//! attached ([`AccessLists::publish_to`]); changes that arrive from other nodes come in through
//! [`AccessLists::apply_remote`], which never hands them on, so a change travels one hop and never loops.

mod matcher;
pub mod record;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, RwLock};
use std::time::{Duration, SystemTime};

use aya::maps::MapError;
use rampart_common::maps::names;
use rampart_common::{EntrySource, ListEntry};
use tokio::sync::mpsc;
use tracing::{info, warn};

use crate::config::types::Cidr;
use crate::xdp::{self, ListKind, XdpMaps};
use matcher::PrefixSet;
use record::{Record, RecordError};

pub use record::Row as Entry;

/// A listed prefix: the recorded entry and its expiry on the kernel's monotonic clock (0 = never), which is
/// what the kernel and the L7 matcher compare against.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listed {
    pub entry: Entry,
    expires_mono_ns: u64,
}

impl Listed {
    fn is_live(&self, now_mono_ns: u64) -> bool {
        self.expires_mono_ns == 0 || now_mono_ns < self.expires_mono_ns
    }

    /// Wall-clock expiry → monotonic: the kernel's clock restarted at boot, the record's did not.
    fn from_entry(entry: Entry) -> Self {
        let expires_mono_ns = match entry.expires_at {
            None => 0,
            Some(at) => xdp::expiry_after(Some(at.duration_since(SystemTime::now()).unwrap_or(Duration::ZERO))),
        };
        Self { entry, expires_mono_ns }
    }

    fn kernel_value(&self) -> ListEntry {
        ListEntry::new(self.entry.source, self.expires_mono_ns)
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
    #[error("refusing to deny {cidr}: it contains {addr}, {what}")]
    Protected {
        cidr: Cidr,
        addr: IpAddr,
        what: &'static str,
    },
    #[error("the {list} list is full ({max} prefixes); remove entries first")]
    Full { list: &'static str, max: u32 },
    #[error("writing the {list} list to the XDP map failed: {source}")]
    Map {
        list: &'static str,
        #[source]
        source: MapError,
    },
    #[error(transparent)]
    Record(#[from] RecordError),
}

/// A change to the lists, as other nodes of a fleet need to hear about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// The prefix is listed (added, or replaced) with this entry.
    Listed(Entry),
    /// The prefix was removed from `list` at `at`.
    Unlisted { list: ListKind, cidr: Cidr, at: SystemTime },
}

/// Entries that are per node and never shared: each node's configuration file lists its own.
fn is_shared(source: EntrySource) -> bool {
    source != EntrySource::Config
}

/// Addresses a deny entry must never cover, with what they are (e.g. the admin listener).
pub type Protected = Vec<(IpAddr, &'static str)>;

type Key = (ListKind, Cidr);

struct State {
    record: Record,
    entries: BTreeMap<Key, Listed>,
}

/// What an L7 check decided for a client address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum L7Verdict {
    Allow,
    Deny,
    None,
}

pub struct AccessLists {
    state: Mutex<State>,
    maps: Option<Arc<XdpMaps>>,
    /// Present when the lists must be enforced at L7 (XDP not covering every configured interface).
    l7: Option<RwLock<(PrefixSet, PrefixSet)>>,
    protected: Protected,
    /// Where local changes go to be published to the fleet (set once, when the fleet is enabled).
    publish: OnceLock<mpsc::Sender<Change>>,
}

impl AccessLists {
    /// Opens the record at `record_file`, replaces its `config` entries with `configured`, drops expired
    /// entries, and makes the maps (when XDP is loaded) hold exactly the record: entries the kernel has that the
    /// record lacks are removed, every record entry is written. With `enforce_l7`, the lists are also checked
    /// per connection in userspace.
    pub fn open(
        record_file: &Path,
        maps: Option<Arc<XdpMaps>>,
        enforce_l7: bool,
        protected: Protected,
        configured: &[(ListKind, Cidr)],
    ) -> Result<Self, AccessError> {
        let mut record = Record::open(record_file)?;
        let now = SystemTime::now();
        let config_rows: Vec<Entry> = configured
            .iter()
            .map(|&(list, cidr)| Entry {
                list,
                cidr,
                reason: "config".into(),
                source: EntrySource::Config,
                created_at: now,
                expires_at: None,
            })
            .collect();
        // Config entries are replaced wholesale (one removed from the file is removed here); expired ones go.
        record.replace_config_and_expire(&config_rows, now)?;
        let entries = record
            .all()?
            .into_iter()
            .map(|e| ((e.list, e.cidr), Listed::from_entry(e)))
            .collect();
        let lists = Self {
            state: Mutex::new(State { record, entries }),
            maps,
            l7: enforce_l7.then(|| RwLock::new((PrefixSet::default(), PrefixSet::default()))),
            protected,
            publish: OnceLock::new(),
        };
        lists.sync_maps()?;
        lists.refresh_derived(&lists.lock_state());
        Ok(lists)
    }

    /// Makes each map hold exactly the record's live entries.
    fn sync_maps(&self) -> Result<(), AccessError> {
        let Some(maps) = &self.maps else { return Ok(()) };
        let state = self.lock_state();
        let mut kernel = xdp::lock(&maps.lists);
        let mut removed = 0usize;
        for list in [ListKind::Allow, ListKind::Deny] {
            for (cidr, _) in kernel.entries(list).map_err(map_failure(list))? {
                if !state.entries.contains_key(&(list, cidr)) {
                    kernel.remove(list, cidr).map_err(map_failure(list))?;
                    removed += 1;
                }
            }
        }
        for l in state.entries.values() {
            kernel
                .insert(l.entry.list, l.entry.cidr, l.kernel_value())
                .map_err(|e| map_error(l.entry.list, e))?;
        }
        info!(
            written = state.entries.len(),
            removed, "access lists loaded into the XDP maps from the record"
        );
        Ok(())
    }

    /// From now on, every change a caller makes to a shared entry (not `config`) is also sent to `tx`. A full
    /// channel loses the change for the fleet (logged); the periodic resync repairs what it can.
    pub fn publish_to(&self, tx: mpsc::Sender<Change>) {
        if self.publish.set(tx).is_err() {
            warn!("the access lists already have a fleet publisher; ignoring a second one");
        }
    }

    fn announce(&self, change: Change) {
        if let Some(tx) = self.publish.get()
            && let Err(e) = tx.try_send(change)
        {
            warn!(error = %e, "a list change was not handed to the fleet publisher; other nodes learn it at the next resync");
        }
    }

    /// Lists `entry` (replacing an entry for the same prefix) and returns what was stored.
    pub fn add(&self, list: ListKind, new: NewEntry) -> Result<Listed, AccessError> {
        let now = SystemTime::now();
        let listed = Listed {
            entry: Entry {
                list,
                cidr: new.cidr,
                reason: new.reason,
                source: new.source,
                created_at: now,
                expires_at: new.ttl.map(|ttl| now + ttl),
            },
            expires_mono_ns: xdp::expiry_after(new.ttl),
        };
        self.store(&listed)?;
        if is_shared(listed.entry.source) {
            self.announce(Change::Listed(listed.entry.clone()));
        }
        Ok(listed)
    }

    /// Writes `listed` to record, map and memory (the record commits only after the map write succeeded).
    fn store(&self, listed: &Listed) -> Result<(), AccessError> {
        let (list, cidr) = (listed.entry.list, listed.entry.cidr);
        if list == ListKind::Deny
            && let Some((addr, what)) = self.protected.iter().find(|(a, _)| cidr.contains(a))
        {
            return Err(AccessError::Protected {
                cidr,
                addr: *addr,
                what,
            });
        }
        let mut state = self.lock_state();
        let pending = state.record.upsert(&listed.entry)?;
        if let Some(maps) = &self.maps {
            xdp::lock(&maps.lists)
                .insert(list, cidr, listed.kernel_value())
                .map_err(|e| map_error(list, e))?;
        }
        pending.finish()?;
        state.entries.insert((list, cidr), listed.clone());
        self.refresh_derived(&state);
        Ok(())
    }

    /// Applies a change another node made, without announcing it (it came from the fleet; announcing it would
    /// echo it back). An entry that has already expired means the prefix is no longer listed: it is removed
    /// here rather than written. Returns whether anything changed.
    pub fn apply_remote(&self, change: &Change) -> Result<bool, AccessError> {
        let (list, cidr) = match change {
            Change::Listed(entry) if entry.expires_at.is_none_or(|at| at > SystemTime::now()) => {
                self.store(&Listed::from_entry(entry.clone()))?;
                return Ok(true);
            }
            Change::Listed(entry) => (entry.list, entry.cidr),
            Change::Unlisted { list, cidr, .. } => (*list, *cidr),
        };
        let mut state = self.lock_state();
        let removed = self.delete(&mut state, list, cidr)?;
        self.refresh_derived(&state);
        Ok(removed.is_some())
    }

    /// The recorded entry for exactly this prefix, if any (expired or not).
    pub fn get(&self, list: ListKind, cidr: Cidr) -> Option<Entry> {
        self.lock_state().entries.get(&(list, cidr)).map(|l| l.entry.clone())
    }

    /// Every recorded entry that is shared with a fleet (all but `config`), both lists.
    pub fn shared_entries(&self) -> Vec<Entry> {
        self.lock_state()
            .entries
            .values()
            .filter(|l| is_shared(l.entry.source))
            .map(|l| l.entry.clone())
            .collect()
    }

    /// Removes an exact prefix; `Ok(None)` when it was not listed.
    pub fn remove(&self, list: ListKind, cidr: Cidr) -> Result<Option<Listed>, AccessError> {
        let removed = {
            let mut state = self.lock_state();
            let removed = self.delete(&mut state, list, cidr)?;
            self.refresh_derived(&state);
            removed
        };
        // Removing a prefix this node did not have is still announced: other nodes may have it.
        if removed.as_ref().is_none_or(|l| is_shared(l.entry.source)) {
            self.announce(Change::Unlisted {
                list,
                cidr,
                at: SystemTime::now(),
            });
        }
        Ok(removed)
    }

    /// Deletes from record, map and memory, in that order of commitment: the record's deletion commits only
    /// once the map entry is gone. The map is cleared even for a prefix the record lacks, so a stray kernel
    /// entry can always be removed.
    fn delete(&self, state: &mut State, list: ListKind, cidr: Cidr) -> Result<Option<Listed>, AccessError> {
        let pending = state.record.delete(list, cidr)?;
        if let Some(maps) = &self.maps {
            xdp::lock(&maps.lists).remove(list, cidr).map_err(map_failure(list))?;
        }
        pending.finish()?;
        Ok(state.entries.remove(&(list, cidr)))
    }

    /// Live entries of one list, in prefix order. With XDP loaded this reads the tries themselves and joins
    /// the record's metadata, so a listing shows exactly what the kernel enforces; a kernel entry the record
    /// lacks is shown with reason `unknown`.
    pub fn entries(&self, list: ListKind) -> Result<Vec<Listed>, AccessError> {
        let now = xdp::monotonic_ns();
        let state = self.lock_state();
        let Some(maps) = &self.maps else {
            return Ok(state
                .entries
                .values()
                .filter(|l| l.entry.list == list && l.is_live(now))
                .cloned()
                .collect());
        };
        let in_kernel = xdp::lock(&maps.lists).entries(list).map_err(map_failure(list))?;
        let mut out: Vec<Listed> = in_kernel
            .into_iter()
            .filter(|(_, value)| value.is_live(now))
            .map(|(cidr, value)| match state.entries.get(&(list, cidr)) {
                Some(listed) => listed.clone(),
                None => Listed {
                    entry: Entry {
                        list,
                        cidr,
                        reason: "unknown".into(),
                        source: EntrySource::from_u32(value.source).unwrap_or(EntrySource::Admin),
                        created_at: SystemTime::UNIX_EPOCH,
                        expires_at: None,
                    },
                    expires_mono_ns: value.expires_at_ns,
                },
            })
            .collect();
        out.sort_by_key(|l| l.entry.cidr);
        Ok(out)
    }

    /// Deletes expired entries from the record and the maps; returns how many went. The kernel already
    /// ignores them, so this reclaims space and keeps listings and the record clean.
    pub fn sweep(&self) -> Result<usize, AccessError> {
        let now = xdp::monotonic_ns();
        let mut state = self.lock_state();
        let expired: Vec<Key> = state
            .entries
            .iter()
            .filter(|(_, l)| !l.is_live(now))
            .map(|(k, _)| *k)
            .collect();
        for &(list, cidr) in &expired {
            self.delete(&mut state, list, cidr)?;
        }
        if !expired.is_empty() {
            self.refresh_derived(&state);
        }
        Ok(expired.len())
    }

    /// Whether connections are checked against the lists in userspace.
    pub fn is_enforced_at_l7(&self) -> bool {
        self.l7.is_some()
    }

    /// The L7 decision for a client (only when L7 enforcement is on; otherwise always `None`). Allow beats
    /// deny, as in the kernel.
    pub fn l7_verdict(&self, ip: IpAddr) -> L7Verdict {
        let Some(l7) = &self.l7 else { return L7Verdict::None };
        let sets = l7.read().unwrap_or_else(|p| p.into_inner());
        let live = |hit: Option<(Cidr, u64)>| hit.is_some_and(|(_, exp)| exp == 0 || xdp::monotonic_ns() < exp);
        if live(sets.0.longest_match(ip)) {
            L7Verdict::Allow
        } else if live(sets.1.longest_match(ip)) {
            L7Verdict::Deny
        } else {
            L7Verdict::None
        }
    }

    /// Rebuilds what is derived from the entries: the L7 matchers and the map entry counts.
    fn refresh_derived(&self, state: &State) {
        let of_list = |list: ListKind| state.entries.values().filter(move |l| l.entry.list == list);
        if let Some(l7) = &self.l7 {
            let set = |list| PrefixSet::from_entries(of_list(list).map(|l| (l.entry.cidr, l.expires_mono_ns)));
            *l7.write().unwrap_or_else(|p| p.into_inner()) = (set(ListKind::Allow), set(ListKind::Deny));
        }
        if let Some(maps) = &self.maps {
            for (list, v4, v6) in [
                (ListKind::Allow, names::ALLOW_V4, names::ALLOW_V6),
                (ListKind::Deny, names::DENY_V4, names::DENY_V6),
            ] {
                let n4 = of_list(list).filter(|l| l.entry.cidr.net().addr().is_ipv4()).count();
                maps.set_count(v4, n4);
                maps.set_count(v6, of_list(list).count() - n4);
            }
        }
    }

    fn lock_state(&self) -> MutexGuard<'_, State> {
        xdp::lock(&self.state)
    }
}

fn map_failure(list: ListKind) -> impl Fn(MapError) -> AccessError {
    move |source| AccessError::Map {
        list: list.as_str(),
        source,
    }
}

/// Like [`map_failure`], but a full trie (the kernel refuses inserts with ENOSPC) gets its own error.
fn map_error(list: ListKind, source: MapError) -> AccessError {
    if let MapError::SyscallError(e) = &source
        && e.io_error.raw_os_error() == Some(libc::ENOSPC)
    {
        let max = match list {
            ListKind::Allow => rampart_common::maps::ALLOW_MAX_ENTRIES,
            ListKind::Deny => rampart_common::maps::DENY_MAX_ENTRIES,
        };
        return AccessError::Full {
            list: list.as_str(),
            max,
        };
    }
    map_failure(list)(source)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lists(dir: &Path, configured: &[(ListKind, Cidr)]) -> AccessLists {
        AccessLists::open(&dir.join("lists.db"), None, true, Vec::new(), configured).expect("open")
    }

    fn entry(cidr: &str, ttl: Option<Duration>) -> NewEntry {
        NewEntry {
            cidr: cidr.parse().expect("valid"),
            reason: "test".into(),
            source: EntrySource::Admin,
            ttl,
        }
    }

    #[test]
    fn expired_entries_are_swept_from_the_record_and_stop_matching() {
        let dir = std::env::temp_dir().join(format!("rampart-access-sweep-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let l = lists(&dir, &[]);
        l.add(ListKind::Deny, entry("192.0.2.1", Some(Duration::from_millis(50))))
            .expect("add");
        l.add(ListKind::Deny, entry("192.0.2.2", None)).expect("add");
        assert_eq!(l.l7_verdict("192.0.2.1".parse().expect("ip")), L7Verdict::Deny);
        std::thread::sleep(Duration::from_millis(80));
        assert_eq!(
            l.l7_verdict("192.0.2.1".parse().expect("ip")),
            L7Verdict::None,
            "expired entries stop matching"
        );
        assert_eq!(l.sweep().expect("sweep"), 1);
        let record = Record::open(&dir.join("lists.db")).expect("reopen");
        let left: Vec<String> = record.all().expect("read").iter().map(|r| r.cidr.to_string()).collect();
        assert_eq!(left, ["192.0.2.2/32"]);
        drop(l);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn config_entries_follow_the_configuration_and_admin_entries_survive_restarts() {
        let dir = std::env::temp_dir().join(format!("rampart-access-config-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let c = |s: &str| s.parse::<Cidr>().expect("valid");
        {
            let l = lists(&dir, &[(ListKind::Deny, c("198.51.100.0/24"))]);
            l.add(ListKind::Deny, entry("192.0.2.9", None)).expect("add");
        }
        // Restart with a different configured entry: the old config entry goes, the admin entry stays.
        let l = lists(&dir, &[(ListKind::Allow, c("203.0.113.5"))]);
        let deny: Vec<String> = l
            .entries(ListKind::Deny)
            .expect("list")
            .iter()
            .map(|e| e.entry.cidr.to_string())
            .collect();
        assert_eq!(deny, ["192.0.2.9/32"]);
        assert_eq!(l.l7_verdict("203.0.113.5".parse().expect("ip")), L7Verdict::Allow);
        assert_eq!(l.l7_verdict("198.51.100.1".parse().expect("ip")), L7Verdict::None);
        drop(l);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_admin_address_cannot_be_denied() {
        let dir = std::env::temp_dir().join(format!("rampart-access-protect-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let l = AccessLists::open(
            &dir.join("lists.db"),
            None,
            true,
            vec![("127.0.0.1".parse().expect("ip"), "the admin API's listen address")],
            &[],
        )
        .expect("open");
        let err = l
            .add(ListKind::Deny, entry("127.0.0.0/8", None))
            .expect_err("must refuse");
        assert!(err.to_string().contains("127.0.0.1"), "{err}");
        l.add(ListKind::Allow, entry("127.0.0.0/8", None))
            .expect("allowing is fine");
        drop(l);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
