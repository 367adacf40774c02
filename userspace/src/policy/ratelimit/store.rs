//! The local counter store: a sharded hash map from (window, client key) to a [`Cell`], bounded in entries.
//! Each shard is a short-held `std::sync::Mutex` (never across an await), so clients on different shards
//! never contend. A full shard first forgets its idle cells (which changes no decision); if that frees too
//! little it drops arbitrary cells, so a flood of distinct keys costs a bounded amount of memory.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::Mutex;

use super::algorithm::{Admission, Cell, Window};

const SHARDS: usize = 64;

/// Which window of which limit, and whose counter: a client address as 128 bits, or a hash of a user key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Key {
    pub window: u32,
    pub client: u128,
}

struct Shard {
    cells: HashMap<Key, Cell, RandomState>,
}

pub struct Store {
    shards: Box<[Mutex<Shard>]>,
    per_shard: usize,
    hasher: RandomState,
}

impl Store {
    /// A store holding at most about `max_keys` cells (rounded up to a multiple of the shard count).
    pub fn new(max_keys: u64) -> Self {
        let per_shard = usize::try_from(max_keys.div_ceil(SHARDS as u64))
            .unwrap_or(usize::MAX)
            .max(1);
        let shards = (0..SHARDS)
            .map(|_| {
                Mutex::new(Shard {
                    cells: HashMap::with_hasher(RandomState::new()),
                })
            })
            .collect();
        Self {
            shards,
            per_shard,
            hasher: RandomState::new(),
        }
    }

    fn shard(&self, key: &Key) -> &Mutex<Shard> {
        let i = usize::try_from(self.hasher.hash_one(key) % SHARDS as u64).unwrap_or(0);
        &self.shards[i]
    }

    /// Admits one request against `window` for `key` at `now`. `windows` resolves the window id of any
    /// stored cell, so a full shard can tell which of its cells are idle.
    pub fn admit(&self, key: Key, window: &Window, now: u64, windows: &[Window]) -> Admission {
        let mut shard = self
            .shard(&key)
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !shard.cells.contains_key(&key) && shard.cells.len() >= self.per_shard {
            shard.make_room(self.per_shard, now, windows);
        }
        let cell = shard.cells.entry(key).or_default();
        window.admit(cell, now)
    }

    /// Forgets every idle cell; returns how many went. Run periodically so idle keys free their memory even
    /// in a shard that never fills.
    pub fn sweep(&self, now: u64, windows: &[Window]) -> usize {
        self.shards
            .iter()
            .map(|s| {
                let mut s = s.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                let before = s.cells.len();
                s.cells.retain(|k, cell| !idle(windows, k.window, cell, now));
                before - s.cells.len()
            })
            .sum()
    }

    /// Cells held.
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(std::sync::PoisonError::into_inner).cells.len())
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn idle(windows: &[Window], id: u32, cell: &Cell, now: u64) -> bool {
    windows
        .get(usize::try_from(id).unwrap_or(usize::MAX))
        .is_none_or(|w| w.is_idle(cell, now))
}

impl Shard {
    /// Frees at least an eighth of the shard: idle cells first, then arbitrary ones. Amortised, each insert
    /// into a full shard costs O(1).
    fn make_room(&mut self, cap: usize, now: u64, windows: &[Window]) {
        self.cells.retain(|k, cell| !idle(windows, k.window, cell, now));
        let target = cap - cap.div_ceil(8);
        if self.cells.len() > target {
            let excess = self.cells.len() - target;
            let victims: Vec<Key> = self.cells.keys().take(excess).copied().collect();
            for k in victims {
                self.cells.remove(&k);
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a test reports failure by panicking
mod tests {
    use super::*;
    use crate::config::schema::RateAlgorithm;

    const S: u64 = 1_000_000_000;

    fn window() -> Window {
        Window {
            algorithm: RateAlgorithm::FixedWindow,
            period_ns: S,
            limit: 1,
            capacity: 1,
        }
    }

    #[test]
    fn a_flood_of_distinct_keys_stays_within_the_cap() {
        let windows = [window()];
        let store = Store::new(6400);
        for client in 0..100_000u128 {
            store.admit(Key { window: 0, client }, &windows[0], 10 * S, &windows);
        }
        assert!(store.len() <= 6400, "{} cells", store.len());
        assert!(store.len() >= 5000, "eviction frees only what it must: {}", store.len());
    }

    #[test]
    fn idle_keys_are_swept_and_live_ones_kept() {
        let windows = [window()];
        let store = Store::new(1000);
        for client in 0..100u128 {
            store.admit(Key { window: 0, client }, &windows[0], 10 * S, &windows);
        }
        store.admit(Key { window: 0, client: 7 }, &windows[0], 11 * S, &windows);
        assert_eq!(store.sweep(11 * S, &windows), 99);
        assert_eq!(store.len(), 1);
        // The kept cell still counts: a second request in the same window is refused.
        assert!(
            !store
                .admit(Key { window: 0, client: 7 }, &windows[0], 11 * S, &windows)
                .allowed
        );
    }
}
