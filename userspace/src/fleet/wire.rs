//! The fleet's Redis schema and the one rule that reconciles a node with it. Pure: no I/O.
//!
//! Keys (`<prefix>` is `fleet.key_prefix`, default `rampart`), in the seed specification's `area:name` style:
//! - `<prefix>:access:deny`, `<prefix>:access:allow` — HASH, field = the prefix (`192.0.2.0/24`), value = the
//!   last change to it as JSON: `{"node","list","cidr","op":"add","reason","source","created_at_ms",
//!   "expires_at_ms"}` or a tombstone `{"node","list","cidr","op":"remove","at_ms"}`. This is the durable list
//!   a node reads at start; tombstones make an unblock made while a node was away win over that node's
//!   older entry. Expired entries and tombstones older than [`TOMBSTONE_KEEP`] are deleted by any node.
//! - `<prefix>:access:changes` — pub/sub channel; every change is published there (the same JSON) in the
//!   same MULTI as its HSET.
//!
//! Conflicts are settled by last writer wins on wall-clock seconds (the record keeps seconds), so nodes need
//! synchronised clocks — which expiring entries need anyway.

use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rampart_common::EntrySource;
use serde::{Deserialize, Serialize};

use crate::access::{Change, Entry};
use crate::config::types::Cidr;
use crate::xdp::ListKind;

/// How long a removal is remembered, so a node that was offline for up to this long still learns of it.
pub const TOMBSTONE_KEEP: Duration = Duration::from_secs(7 * 24 * 3600);

/// The Redis names of one fleet.
#[derive(Clone, Debug)]
pub struct Keys {
    pub channel: String,
    allow: String,
    deny: String,
}

impl Keys {
    pub fn new(prefix: &str) -> Self {
        Self {
            channel: format!("{prefix}:access:changes"),
            allow: format!("{prefix}:access:allow"),
            deny: format!("{prefix}:access:deny"),
        }
    }

    pub fn list(&self, list: ListKind) -> &str {
        match list {
            ListKind::Allow => &self.allow,
            ListKind::Deny => &self.deny,
        }
    }
}

/// One change as stored in the hash and published on the channel.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Wire {
    /// The node that made the change.
    pub node: String,
    pub list: String,
    pub cidr: String,
    #[serde(flatten)]
    pub op: Op,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    Add {
        reason: String,
        source: String,
        created_at_ms: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expires_at_ms: Option<u64>,
    },
    Remove {
        at_ms: u64,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("not a fleet change ({0})")]
    Json(#[from] serde_json::Error),
    #[error("unknown list `{0}` (allow or deny)")]
    List(String),
    #[error("bad prefix `{0}`")]
    Cidr(String),
    #[error("source `{0}` is not shared between nodes")]
    Source(String),
}

fn ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn from_ms(v: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(v)
}

/// Whole seconds since the epoch: the precision the durable record keeps, so comparisons agree after a restart.
fn secs(t: SystemTime) -> u64 {
    ms(t) / 1000
}

fn shared_source(name: &str) -> Option<EntrySource> {
    match name {
        "admin" => Some(EntrySource::Admin),
        "auto_ban" => Some(EntrySource::AutoBan),
        "threat_feed" => Some(EntrySource::ThreatFeed),
        _ => None,
    }
}

impl Wire {
    pub fn from_change(node: &str, change: &Change) -> Self {
        match change {
            Change::Listed(e) => Self {
                node: node.to_owned(),
                list: e.list.as_str().to_owned(),
                cidr: e.cidr.to_string(),
                op: Op::Add {
                    reason: e.reason.clone(),
                    source: e.source.as_str().to_owned(),
                    created_at_ms: ms(e.created_at),
                    expires_at_ms: e.expires_at.map(ms),
                },
            },
            Change::Unlisted { list, cidr, at } => Self {
                node: node.to_owned(),
                list: list.as_str().to_owned(),
                cidr: cidr.to_string(),
                op: Op::Remove { at_ms: ms(*at) },
            },
        }
    }

    pub fn parse(bytes: &[u8]) -> Result<Self, WireError> {
        Ok(serde_json::from_slice(bytes)?)
    }

    pub fn to_json(&self) -> String {
        // A struct of strings and integers always serialises.
        serde_json::to_string(self).unwrap_or_default()
    }

    pub fn to_change(&self) -> Result<Change, WireError> {
        let list = match self.list.as_str() {
            "allow" => ListKind::Allow,
            "deny" => ListKind::Deny,
            other => return Err(WireError::List(other.to_owned())),
        };
        let cidr = Cidr::from_str(&self.cidr).map_err(|_| WireError::Cidr(self.cidr.clone()))?;
        Ok(match &self.op {
            Op::Add {
                reason,
                source,
                created_at_ms,
                expires_at_ms,
            } => Change::Listed(Entry {
                list,
                cidr,
                reason: reason.clone(),
                source: shared_source(source).ok_or_else(|| WireError::Source(source.clone()))?,
                created_at: from_ms(*created_at_ms),
                expires_at: expires_at_ms.map(from_ms),
            }),
            Op::Remove { at_ms } => Change::Unlisted {
                list,
                cidr,
                at: from_ms(*at_ms),
            },
        })
    }
}

/// What to do about one prefix, given this node's entry and the fleet's last change to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// The fleet's change is newer: apply it here (list it, or remove it).
    Apply,
    /// This node's entry is newer than anything Redis has (made while Redis was unreachable, or before the
    /// fleet existed): write it to Redis and publish it.
    Push,
    Nothing,
}

/// Last writer wins, on whole seconds; a tie goes to Redis, the shared truth. Entries from this node's
/// configuration are never touched nor pushed (each node's file lists its own).
pub fn decide(local: Option<&Entry>, remote: Option<&Change>, now: SystemTime) -> Action {
    if local.is_some_and(|l| l.source == EntrySource::Config) {
        return Action::Nothing;
    }
    let live = |e: &Entry| e.expires_at.is_none_or(|at| at > now);
    match (local, remote) {
        (None, None) | (None, Some(Change::Unlisted { .. })) => Action::Nothing,
        (Some(l), None) => {
            if live(l) {
                Action::Push
            } else {
                Action::Nothing
            }
        }
        (None, Some(Change::Listed(r))) => {
            if live(r) {
                Action::Apply
            } else {
                Action::Nothing
            }
        }
        (Some(l), Some(Change::Listed(r))) => {
            let same = secs(l.created_at) == secs(r.created_at)
                && l.expires_at.map(secs) == r.expires_at.map(secs)
                && l.reason == r.reason
                && l.source == r.source;
            if same {
                Action::Nothing
            } else if secs(r.created_at) >= secs(l.created_at) {
                Action::Apply
            } else if live(l) {
                Action::Push
            } else {
                Action::Nothing
            }
        }
        (Some(l), Some(Change::Unlisted { at, .. })) => {
            if secs(*at) >= secs(l.created_at) {
                Action::Apply
            } else if live(l) {
                Action::Push
            } else {
                Action::Nothing
            }
        }
    }
}

/// Whether a stored change can be deleted from the hash: an add that has expired, or an old tombstone.
pub fn is_stale(change: &Change, now: SystemTime) -> bool {
    match change {
        Change::Listed(e) => e.expires_at.is_some_and(|at| at <= now),
        Change::Unlisted { at, .. } => now.duration_since(*at).is_ok_and(|age| age > TOMBSTONE_KEEP),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(source: EntrySource, created: u64, expires: Option<u64>) -> Entry {
        Entry {
            list: ListKind::Deny,
            cidr: "192.0.2.7".parse().expect("valid"),
            reason: "r".into(),
            source,
            created_at: from_ms(created * 1000),
            expires_at: expires.map(|s| from_ms(s * 1000)),
        }
    }

    fn removed(at: u64) -> Change {
        Change::Unlisted {
            list: ListKind::Deny,
            cidr: "192.0.2.7".parse().expect("valid"),
            at: from_ms(at * 1000),
        }
    }

    const NOW: u64 = 1_000_000;

    fn decide_at(local: Option<&Entry>, remote: Option<&Change>) -> Action {
        decide(local, remote, from_ms(NOW * 1000))
    }

    #[test]
    fn a_change_survives_the_round_trip_through_json() {
        let change = Change::Listed(entry(EntrySource::AutoBan, 500, Some(900)));
        let wire = Wire::from_change("edge-1", &change);
        let back = Wire::parse(wire.to_json().as_bytes()).expect("parses");
        assert_eq!(back, wire);
        assert_eq!(back.to_change().expect("valid"), change);
        let json: serde_json::Value = serde_json::from_str(&wire.to_json()).expect("json");
        assert_eq!(json["op"], "add");
        assert_eq!(json["cidr"], "192.0.2.7/32");
        assert_eq!(json["source"], "auto_ban");
        let gone = Wire::from_change("edge-1", &removed(600));
        assert_eq!(gone.to_change().expect("valid"), removed(600));
    }

    #[test]
    fn bad_changes_are_refused_naming_what_is_wrong() {
        let mut w = Wire::from_change("n", &removed(1));
        w.list = "grey".into();
        assert!(w.to_change().expect_err("must be refused").to_string().contains("grey"));
        let mut w = Wire::from_change("n", &removed(1));
        w.cidr = "10.0.0.0/33".into();
        assert!(
            w.to_change()
                .expect_err("must be refused")
                .to_string()
                .contains("10.0.0.0/33")
        );
        let config = Wire::from_change("n", &Change::Listed(entry(EntrySource::Config, 1, None)));
        assert!(
            config
                .to_change()
                .expect_err("must be refused")
                .to_string()
                .contains("config")
        );
        assert!(Wire::parse(b"{\"op\":\"explode\"}").is_err());
    }

    #[test]
    fn the_newer_side_wins_and_ties_go_to_redis() {
        let old = entry(EntrySource::Admin, 100, None);
        let new = entry(EntrySource::Admin, 200, None);
        assert_eq!(decide_at(Some(&old), Some(&Change::Listed(new.clone()))), Action::Apply);
        assert_eq!(decide_at(Some(&new), Some(&Change::Listed(old.clone()))), Action::Push);
        assert_eq!(
            decide_at(Some(&new), Some(&Change::Listed(new.clone()))),
            Action::Nothing
        );
        let mut other_reason = new.clone();
        other_reason.reason = "other".into();
        assert_eq!(
            decide_at(Some(&new), Some(&Change::Listed(other_reason))),
            Action::Apply
        );
        // An unblock made while this node was away removes its older entry; a block made after it stays.
        assert_eq!(decide_at(Some(&old), Some(&removed(150))), Action::Apply);
        assert_eq!(decide_at(Some(&new), Some(&removed(150))), Action::Push);
        assert_eq!(
            decide_at(Some(&old), Some(&removed(100))),
            Action::Apply,
            "a tie goes to Redis"
        );
    }

    #[test]
    fn missing_sides_expired_entries_and_config_entries() {
        let live = entry(EntrySource::Admin, 100, Some(NOW + 60));
        let expired = entry(EntrySource::Admin, 100, Some(NOW - 1));
        assert_eq!(decide_at(None, Some(&Change::Listed(live.clone()))), Action::Apply);
        assert_eq!(decide_at(None, Some(&Change::Listed(expired.clone()))), Action::Nothing);
        assert_eq!(decide_at(Some(&live), None), Action::Push, "Redis never heard of it");
        assert_eq!(decide_at(Some(&expired), None), Action::Nothing);
        assert_eq!(decide_at(None, Some(&removed(5))), Action::Nothing);
        assert_eq!(decide_at(None, None), Action::Nothing);
        let config = entry(EntrySource::Config, 100, None);
        assert_eq!(decide_at(Some(&config), Some(&removed(500))), Action::Nothing);
        assert_eq!(
            decide_at(Some(&config), None),
            Action::Nothing,
            "config entries are never shared"
        );
    }

    #[test]
    fn expired_adds_and_old_tombstones_are_stale() {
        let now = from_ms(NOW * 1000);
        assert!(is_stale(
            &Change::Listed(entry(EntrySource::Admin, 1, Some(NOW - 1))),
            now
        ));
        assert!(!is_stale(&Change::Listed(entry(EntrySource::Admin, 1, None)), now));
        assert!(!is_stale(&removed(NOW - 60), now));
        assert!(is_stale(&removed(NOW - TOMBSTONE_KEEP.as_secs() - 1), now));
    }
}
