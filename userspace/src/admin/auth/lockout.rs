//! Login lockout: after `max_login_attempts` failed logins for one username, that username is refused for
//! `lockout_duration`, whatever the password. Counted per username (known or not, so a probe cannot tell
//! accounts apart by lockout behaviour), in a bounded table.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Usernames tracked at most; past this, entries without a lock are dropped first, so a flood of invented
/// names cannot grow memory or unlock a real account.
const MAX_TRACKED: usize = 10_000;

pub struct Lockout {
    max_attempts: u32,
    duration: Duration,
    table: Mutex<HashMap<String, Failures>>,
}

#[derive(Clone, Copy)]
struct Failures {
    count: u32,
    locked_until: Option<Instant>,
}

impl Lockout {
    pub fn new(max_attempts: u32, duration: Duration) -> Self {
        Self {
            max_attempts: max_attempts.max(1),
            duration,
            table: Mutex::new(HashMap::new()),
        }
    }

    /// How long `user` stays locked, if it is.
    pub fn locked_for(&self, user: &str, now: Instant) -> Option<Duration> {
        let mut table = self.table.lock().unwrap_or_else(|p| p.into_inner());
        let f = table.get(user)?;
        match f.locked_until {
            Some(until) if until > now => Some(until - now),
            Some(_) => {
                // The lock ran out: the account starts afresh.
                table.remove(user);
                None
            }
            None => None,
        }
    }

    /// Records a failed login; returns true when this failure locked the account.
    pub fn failed(&self, user: &str, now: Instant) -> bool {
        let mut table = self.table.lock().unwrap_or_else(|p| p.into_inner());
        if table.len() >= MAX_TRACKED && !table.contains_key(user) {
            table.retain(|_, f| f.locked_until.is_some_and(|u| u > now));
            if table.len() >= MAX_TRACKED {
                return false;
            }
        }
        let f = table.entry(user.to_owned()).or_insert(Failures {
            count: 0,
            locked_until: None,
        });
        f.count = f.count.saturating_add(1);
        if f.count >= self.max_attempts && f.locked_until.is_none() {
            f.locked_until = Some(now + self.duration);
            return true;
        }
        false
    }

    /// A successful login clears the count.
    pub fn succeeded(&self, user: &str) {
        self.table.lock().unwrap_or_else(|p| p.into_inner()).remove(user);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_nth_failure_locks_until_the_duration_passes() {
        let l = Lockout::new(3, Duration::from_secs(60));
        let t = Instant::now();
        assert!(!l.failed("ops", t));
        assert!(!l.failed("ops", t));
        assert!(l.locked_for("ops", t).is_none());
        assert!(l.failed("ops", t), "the third failure locks");
        assert!(l.locked_for("ops", t + Duration::from_secs(59)).is_some());
        assert!(l.locked_for("other", t).is_none(), "only that username");
        assert!(l.locked_for("ops", t + Duration::from_secs(61)).is_none());
        assert!(!l.failed("ops", t + Duration::from_secs(61)), "counting starts again");
    }

    #[test]
    fn success_clears_the_count() {
        let l = Lockout::new(2, Duration::from_secs(60));
        let t = Instant::now();
        l.failed("ops", t);
        l.succeeded("ops");
        assert!(!l.failed("ops", t));
    }
}
