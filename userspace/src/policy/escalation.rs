//! Escalation from L7 to XDP (`waf.auto_ban`): each offence (a request blocked, rate-limited, or a failed
//! challenge) adds its weight to the client's score, which decays exponentially with `half_life`. At
//! `threshold` the client is denied through `AccessLists` (XDP deny map and SQLite record, source
//! `auto-ban`, expiring after `duration`), so from then on its packets are dropped in the driver (or its
//! connections refused at L7 when XDP is not in force). Whitelisted clients are never banned.
//!
//! Scores live in a sharded map bounded by `max_tracked_ips`; a full shard forgets its lowest scores first.
//! Recording an offence never waits: the ban itself (a SQLite write) runs on a blocking thread.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use rampart_common::EntrySource;
use tracing::{error, warn};

use crate::access::{AccessLists, NewEntry};
use crate::config::Config;
use crate::config::types::Cidr;
use crate::xdp::ListKind;

const SHARDS: usize = 32;

/// What a client did wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Offence {
    /// Blocked by the WAF, a custom rule, bot detection or the rate-limit blacklist.
    Blocked,
    RateLimited,
    ChallengeFailed,
}

impl Offence {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Blocked => "blocked",
            Self::RateLimited => "rate_limited",
            Self::ChallengeFailed => "challenge_failed",
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Score {
    value: f64,
    at_ns: u64,
    banned: bool,
}

/// Where bans go; `AccessLists` in the daemon.
pub trait Banner: Send + Sync + 'static {
    fn ban(&self, ip: IpAddr, reason: String, ttl: Duration) -> Result<(), String>;
}

impl Banner for AccessLists {
    fn ban(&self, ip: IpAddr, reason: String, ttl: Duration) -> Result<(), String> {
        let cidr = Cidr::from(ip);
        self.add(
            ListKind::Deny,
            NewEntry {
                cidr,
                reason,
                source: EntrySource::AutoBan,
                ttl: Some(ttl),
            },
        )
        .map(|_| ())
        .map_err(|e| e.to_string())
    }
}

pub struct Escalation {
    threshold: f64,
    duration: Duration,
    half_life_ns: f64,
    weights: [f64; 3],
    whitelist: Vec<Cidr>,
    shards: Box<[Mutex<HashMap<IpAddr, Score>>]>,
    per_shard: usize,
    hasher: RandomState,
    banner: Arc<dyn Banner>,
    origin: Instant,
}

impl Escalation {
    /// `None` unless `waf.auto_ban.enabled`.
    pub fn build(config: &Config, banner: Arc<dyn Banner>) -> Option<Self> {
        let c = &config.waf.auto_ban;
        if !c.enabled {
            return None;
        }
        let whitelist = c
            .whitelist_ips
            .iter()
            .chain(&config.waf.rate_limiting.whitelist_ips)
            .chain(&config.xdp.allow)
            .copied()
            .collect();
        let per_shard = usize::try_from(c.max_tracked_ips.div_ceil(SHARDS as u64))
            .unwrap_or(usize::MAX)
            .max(1);
        Some(Self {
            threshold: c.threshold,
            duration: Duration::from_secs(c.duration),
            half_life_ns: (c.half_life.max(1) as f64) * 1e9,
            weights: [c.block_weight, c.rate_limit_weight, c.challenge_failure_weight],
            whitelist,
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            per_shard,
            hasher: RandomState::new(),
            banner,
            origin: Instant::now(),
        })
    }

    fn now_ns(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    fn decayed(&self, s: &Score, now: u64) -> f64 {
        let dt = now.saturating_sub(s.at_ns) as f64;
        s.value * (-std::f64::consts::LN_2 * dt / self.half_life_ns).exp()
    }

    /// Adds `offence` to `ip`'s score; bans it (once) when the score reaches the threshold. Returns the
    /// score after the offence.
    pub fn record(&self, ip: IpAddr, offence: Offence) -> f64 {
        let weight = self.weights[offence as usize];
        if weight <= 0.0 || self.whitelist.iter().any(|c| c.contains(&ip)) {
            return 0.0;
        }
        let now = self.now_ns();
        let shard = &self.shards[usize::try_from(self.hasher.hash_one(ip) % SHARDS as u64).unwrap_or(0)];
        let (score, ban) = {
            let mut map = shard.lock().unwrap_or_else(PoisonError::into_inner);
            if !map.contains_key(&ip) && map.len() >= self.per_shard {
                self.make_room(&mut map, now);
            }
            let s = map.entry(ip).or_insert(Score {
                value: 0.0,
                at_ns: now,
                banned: false,
            });
            let value = self.decayed(s, now) + weight;
            *s = Score {
                value,
                at_ns: now,
                banned: s.banned,
            };
            let ban = value >= self.threshold && !s.banned;
            if ban {
                s.banned = true;
            }
            (value, ban)
        };
        if ban {
            self.ban(ip, score, offence);
        }
        score
    }

    /// Drops the lowest quarter of a full shard's scores (after decay), so a flood of sources cannot grow
    /// it; the banned ones are in the deny list already and go first.
    fn make_room(&self, map: &mut HashMap<IpAddr, Score>, now: u64) {
        let mut scores: Vec<(f64, IpAddr)> = map
            .iter()
            .map(|(ip, s)| (if s.banned { -1.0 } else { self.decayed(s, now) }, *ip))
            .collect();
        scores.sort_by(|a, b| a.0.total_cmp(&b.0));
        for (_, ip) in scores.iter().take(map.len().div_ceil(4)) {
            map.remove(ip);
        }
    }

    fn ban(&self, ip: IpAddr, score: f64, last: Offence) {
        warn!(
            target: "rampart::security",
            event_type = "auto_ban",
            client_ip = %ip,
            score,
            threshold = self.threshold,
            last_offence = last.as_str(),
            duration_secs = self.duration.as_secs(),
            action_taken = "banned",
            "client banned: its offence score reached the auto-ban threshold; XDP drops it from now on"
        );
        let banner = self.banner.clone();
        let ttl = self.duration;
        let reason = format!("auto-ban: offence score {score:.1} (last: {})", last.as_str());
        let work = move || {
            if let Err(e) = banner.ban(ip, reason, ttl) {
                error!(client_ip = %ip, error = %e, "auto-ban could not be written to the deny list");
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(h) => {
                h.spawn_blocking(work);
            }
            Err(_) => work(),
        }
    }

    /// Forgets scores that have decayed below a hundredth of the threshold (and bans past their duration).
    pub fn sweep(&self) -> usize {
        let now = self.now_ns();
        let floor = self.threshold / 100.0;
        let banned_for = u64::try_from(self.duration.as_nanos()).unwrap_or(u64::MAX);
        self.shards
            .iter()
            .map(|s| {
                let mut map = s.lock().unwrap_or_else(PoisonError::into_inner);
                let before = map.len();
                map.retain(|_, s| {
                    if s.banned {
                        now.saturating_sub(s.at_ns) < banned_for
                    } else {
                        self.decayed(s, now) >= floor
                    }
                });
                before - map.len()
            })
            .sum()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a test reports failure by panicking
mod tests {
    use super::*;

    #[derive(Default)]
    struct Recorder(Mutex<Vec<(IpAddr, String, Duration)>>);

    impl Banner for Recorder {
        fn ban(&self, ip: IpAddr, reason: String, ttl: Duration) -> Result<(), String> {
            self.0.lock().unwrap().push((ip, reason, ttl));
            Ok(())
        }
    }

    fn escalation(yaml: &str) -> (Escalation, Arc<Recorder>) {
        let upstream =
            "proxy:\n  upstreams:\n    - name: app\n      servers:\n        - {host: 127.0.0.1, port: 8080}\n";
        let config = crate::config::load_str(&format!("{upstream}{yaml}"), "test.yaml", Vec::new()).unwrap();
        let rec = Arc::new(Recorder::default());
        (Escalation::build(&config, rec.clone()).unwrap(), rec)
    }

    #[test]
    fn the_threshold_bans_once_and_whitelisted_clients_never() {
        let (e, rec) = escalation(
            "waf:\n  auto_ban: {enabled: true, threshold: 5, duration: 120, whitelist_ips: [192.0.2.0/24]}\n",
        );
        let attacker: IpAddr = "198.51.100.7".parse().unwrap();
        for _ in 0..4 {
            e.record(attacker, Offence::Blocked);
        }
        assert!(rec.0.lock().unwrap().is_empty(), "4 < 5: not yet");
        e.record(attacker, Offence::Blocked);
        e.record(attacker, Offence::Blocked);
        let bans = rec.0.lock().unwrap().clone();
        assert_eq!(bans.len(), 1, "banned exactly once: {bans:?}");
        assert_eq!(bans[0].0, attacker);
        assert_eq!(bans[0].2, Duration::from_secs(120));
        assert!(bans[0].1.starts_with("auto-ban"), "{}", bans[0].1);
        let friend: IpAddr = "192.0.2.9".parse().unwrap();
        for _ in 0..100 {
            assert_eq!(e.record(friend, Offence::Blocked), 0.0);
        }
        assert_eq!(rec.0.lock().unwrap().len(), 1, "a whitelisted client is never banned");
    }

    #[test]
    fn scores_decay_with_the_half_life() {
        let (e, _) = escalation("waf:\n  auto_ban: {enabled: true, threshold: 100, half_life: 1}\n");
        let s = Score {
            value: 8.0,
            at_ns: 0,
            banned: false,
        };
        assert!((e.decayed(&s, 1_000_000_000) - 4.0).abs() < 1e-9);
        assert!((e.decayed(&s, 3_000_000_000) - 1.0).abs() < 1e-9);
    }

    #[test]
    fn tracked_clients_are_bounded() {
        let (e, _) = escalation("waf:\n  auto_ban: {enabled: true, threshold: 1000, max_tracked_ips: 320}\n");
        for i in 0..10_000u32 {
            e.record(IpAddr::from(i.to_be_bytes()), Offence::RateLimited);
        }
        let held: usize = e.shards.iter().map(|s| s.lock().unwrap().len()).sum();
        assert!(held <= 320, "{held}");
    }
}
