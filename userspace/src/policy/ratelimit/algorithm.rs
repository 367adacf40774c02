//! The three rate-limit algorithms as pure functions over one small counter cell and a time in nanoseconds.
//! No clock, no map, no I/O here: the store owns the cells, the caller passes the time, and the same code
//! is what the Redis script mirrors.
//!
//! - token bucket: GCRA (the "theoretical arrival time" form), one `u64` per key; `capacity` requests at
//!   once, refilled at `limit / period`.
//! - fixed window: a count per aligned window of `period`.
//! - sliding window: the counter approximation (this window's count plus the previous window's, weighted
//!   by how much of it still overlaps the sliding window), three fields per key instead of a log.

use crate::config::schema::RateAlgorithm;

/// State of one key in one window: what the fields mean depends on the algorithm (see each function).
/// 16 bytes, `Copy`, so the map stores it inline.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Cell {
    /// Token bucket: theoretical arrival time. Windows: start of the current window.
    pub at: u64,
    /// Windows: requests counted in the current window.
    pub current: u32,
    /// Sliding window: requests counted in the previous window.
    pub previous: u32,
}

/// One window of a limit: `limit` requests per `period_ns`, at most `capacity` at once (token bucket).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub algorithm: RateAlgorithm,
    pub period_ns: u64,
    pub limit: u64,
    pub capacity: u64,
}

/// What one admission decided, with what the RateLimit headers report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Admission {
    pub allowed: bool,
    /// Requests still allowed right now.
    pub remaining: u64,
    /// Nanoseconds until the quota is whole again (the window ends, or the bucket is full).
    pub reset_ns: u64,
    /// When refused: nanoseconds until a request would be allowed.
    pub retry_after_ns: u64,
}

impl Window {
    /// Admits (and counts) one request at `now`, or refuses it without counting.
    pub fn admit(&self, cell: &mut Cell, now: u64) -> Admission {
        match self.algorithm {
            RateAlgorithm::TokenBucket => self.token_bucket(cell, now),
            RateAlgorithm::FixedWindow => self.fixed_window(cell, now),
            RateAlgorithm::SlidingWindow => self.sliding_window(cell, now),
        }
    }

    /// Whether `cell` at `now` is the same as no cell at all: it can be forgotten without changing any
    /// future decision. This is what makes an idle key cost nothing once it has expired.
    pub fn is_idle(&self, cell: &Cell, now: u64) -> bool {
        match self.algorithm {
            RateAlgorithm::TokenBucket => cell.at <= now,
            RateAlgorithm::FixedWindow => now >= cell.at.saturating_add(self.period_ns),
            RateAlgorithm::SlidingWindow => now >= cell.at.saturating_add(2 * self.period_ns),
        }
    }

    /// Nanoseconds between two requests at the steady rate.
    fn interval(&self) -> u64 {
        (self.period_ns / self.limit.max(1)).max(1)
    }

    /// GCRA: `cell.at` is when the bucket would be full again. A request is allowed when that lies no more
    /// than `(capacity - 1)` intervals ahead; allowing it moves it one interval further.
    fn token_bucket(&self, cell: &mut Cell, now: u64) -> Admission {
        let t = self.interval();
        let tolerance = t.saturating_mul(self.capacity.max(1) - 1);
        let tat = cell.at.max(now);
        let ahead = tat - now;
        if ahead > tolerance {
            return Admission {
                allowed: false,
                remaining: 0,
                reset_ns: ahead,
                retry_after_ns: ahead - tolerance,
            };
        }
        let next = tat + t;
        cell.at = next;
        let used = (next - now).div_ceil(t);
        Admission {
            allowed: true,
            remaining: self.capacity.saturating_sub(used),
            reset_ns: next - now,
            retry_after_ns: 0,
        }
    }

    /// Start of the aligned window containing `now`.
    fn window_start(&self, now: u64) -> u64 {
        now - now % self.period_ns.max(1)
    }

    fn fixed_window(&self, cell: &mut Cell, now: u64) -> Admission {
        let start = self.window_start(now);
        if cell.at != start {
            *cell = Cell {
                at: start,
                current: 0,
                previous: 0,
            };
        }
        let reset_ns = start + self.period_ns - now;
        if u64::from(cell.current) >= self.limit {
            return Admission {
                allowed: false,
                remaining: 0,
                reset_ns,
                retry_after_ns: reset_ns,
            };
        }
        cell.current = cell.current.saturating_add(1);
        Admission {
            allowed: true,
            remaining: self.limit - u64::from(cell.current),
            reset_ns,
            retry_after_ns: 0,
        }
    }

    fn sliding_window(&self, cell: &mut Cell, now: u64) -> Admission {
        let p = self.period_ns.max(1);
        let start = self.window_start(now);
        if cell.at != start {
            let previous = if cell.at.saturating_add(p) == start {
                cell.current
            } else {
                0
            };
            *cell = Cell {
                at: start,
                current: 0,
                previous,
            };
        }
        let elapsed = now - start;
        // estimate = previous * (p - elapsed) / p + current, compared exactly in integers scaled by p.
        let weighted_prev = u128::from(cell.previous) * u128::from(p - elapsed);
        let scaled = |current: u64| weighted_prev + u128::from(current) * u128::from(p);
        let limit_scaled = u128::from(self.limit) * u128::from(p);
        let reset_ns = start + p - now + if cell.current > 0 { p } else { 0 };
        if scaled(u64::from(cell.current) + 1) > limit_scaled {
            return Admission {
                allowed: false,
                remaining: 0,
                reset_ns,
                retry_after_ns: self.sliding_retry(cell, elapsed),
            };
        }
        cell.current = cell.current.saturating_add(1);
        let used = scaled(u64::from(cell.current)).div_ceil(u128::from(p));
        Admission {
            allowed: true,
            remaining: self.limit.saturating_sub(u64::try_from(used).unwrap_or(u64::MAX)),
            reset_ns,
            retry_after_ns: 0,
        }
    }

    /// Nanoseconds until one more request fits the sliding window: later in this window if the previous
    /// window's weight is what blocks it, else in the next window once this one's weight has faded enough.
    fn sliding_retry(&self, cell: &Cell, elapsed: u64) -> u64 {
        let p = u128::from(self.period_ns.max(1));
        let limit = u128::from(self.limit);
        let room = limit.saturating_sub(u128::from(cell.current) + 1);
        let prev = u128::from(cell.previous);
        if u128::from(cell.current) < limit && prev > 0 {
            // Need prev * (p - e) <= room * p, i.e. e >= p - room * p / prev.
            let need = p - (room * p / prev).min(p);
            return u64::try_from(need.saturating_sub(u128::from(elapsed)))
                .unwrap_or(u64::MAX)
                .max(1);
        }
        // Next window: previous' = current; need current * (p - e) <= (limit - 1) * p.
        let to_next = p - u128::from(elapsed);
        let cur = u128::from(cell.current).max(1);
        let need = p - ((limit.saturating_sub(1)) * p / cur).min(p);
        u64::try_from(to_next + need).unwrap_or(u64::MAX).max(1)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a test reports failure by panicking
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    fn w(algorithm: RateAlgorithm, limit: u64, capacity: u64) -> Window {
        Window {
            algorithm,
            period_ns: S,
            limit,
            capacity,
        }
    }

    /// Admits `n` requests at `now`; returns how many were allowed.
    fn burst(win: &Window, cell: &mut Cell, now: u64, n: u64) -> u64 {
        (0..n).filter(|_| win.admit(cell, now).allowed).count() as u64
    }

    #[test]
    fn token_bucket_10_per_second_burst_20_refuses_the_21st_and_refills_at_the_rate() {
        let win = w(RateAlgorithm::TokenBucket, 10, 20);
        let mut cell = Cell::default();
        let t0 = 5 * S;
        for i in 1..=20 {
            let a = win.admit(&mut cell, t0);
            assert!(a.allowed, "request {i} of the burst");
            assert_eq!(a.remaining, 20 - i);
        }
        let refused = win.admit(&mut cell, t0);
        assert!(!refused.allowed, "the 21st immediate request is refused");
        assert_eq!(refused.retry_after_ns, S / 10, "one token returns after 100 ms");
        assert_eq!(refused.reset_ns, 2 * S, "the bucket is full again after 2 s");
        // 99 ms later still nothing; at 100 ms exactly one.
        assert!(!win.admit(&mut cell, t0 + S / 10 - 1).allowed);
        assert_eq!(burst(&win, &mut cell, t0 + S / 10, 5), 1);
        // After one second, 10 more tokens (the rate), not 20.
        assert_eq!(burst(&win, &mut cell, t0 + S / 10 + S, 30), 10);
        // After a long idle, the full burst again, and the cell is idle (forgettable) before that.
        assert!(win.is_idle(&cell, t0 + 10 * S));
        assert_eq!(burst(&win, &mut cell, t0 + 10 * S, 30), 20);
    }

    #[test]
    fn token_bucket_sustains_exactly_the_rate() {
        let win = w(RateAlgorithm::TokenBucket, 10, 1);
        let mut cell = Cell::default();
        // One request every 50 ms for 10 s: exactly every second one fits.
        let allowed = (0..200)
            .filter(|i| win.admit(&mut cell, 100 * S + i * S / 20).allowed)
            .count();
        assert_eq!(allowed, 100);
    }

    #[test]
    fn fixed_window_allows_the_limit_per_window_and_resets_at_the_boundary() {
        let win = w(RateAlgorithm::FixedWindow, 10, 10);
        let mut cell = Cell::default();
        let t0 = 7 * S + S / 2;
        assert_eq!(burst(&win, &mut cell, t0, 10), 10);
        let refused = win.admit(&mut cell, t0);
        assert!(!refused.allowed, "the 11th in the window is refused");
        assert_eq!(refused.retry_after_ns, S / 2, "until the window ends");
        assert!(!win.admit(&mut cell, 8 * S - 1).allowed);
        assert!(!win.is_idle(&cell, 8 * S - 1) && win.is_idle(&cell, 8 * S));
        assert_eq!(burst(&win, &mut cell, 8 * S, 15), 10, "a new window, a new quota");
    }

    #[test]
    fn sliding_window_weights_the_previous_window() {
        let win = w(RateAlgorithm::SlidingWindow, 10, 10);
        let mut cell = Cell::default();
        let t0 = 20 * S;
        assert_eq!(burst(&win, &mut cell, t0, 10), 10);
        assert!(!win.admit(&mut cell, t0).allowed, "the 11th is refused");
        // Half-way into the next window half of the previous window still counts: 5 more fit.
        let half = t0 + S + S / 2;
        assert_eq!(burst(&win, &mut cell, half, 10), 5);
        let refused = win.admit(&mut cell, half);
        assert!(!refused.allowed);
        // 10 * (1 - e) + 5 <= 9  ⇔  e >= 0.6: 100 ms after the half-way point.
        assert_eq!(refused.retry_after_ns, S / 10);
        assert!(!win.admit(&mut cell, half + S / 10 - 1).allowed);
        assert!(win.admit(&mut cell, half + S / 10).allowed);
        // Two idle windows forget everything.
        assert!(win.is_idle(&cell, t0 + 3 * S));
        assert_eq!(burst(&win, &mut cell, t0 + 3 * S, 20), 10);
    }

    #[test]
    fn sliding_window_refuses_what_a_fixed_window_would_allow_across_a_boundary() {
        let fixed = w(RateAlgorithm::FixedWindow, 10, 10);
        let sliding = w(RateAlgorithm::SlidingWindow, 10, 10);
        let (mut a, mut b) = (Cell::default(), Cell::default());
        let late = 30 * S + S * 9 / 10;
        let early = 31 * S + S / 10;
        let fixed_total = burst(&fixed, &mut a, late, 10) + burst(&fixed, &mut a, early, 10);
        let sliding_total = burst(&sliding, &mut b, late, 10) + burst(&sliding, &mut b, early, 10);
        assert_eq!(fixed_total, 20, "the fixed window's boundary burst");
        assert_eq!(
            sliding_total, 11,
            "10 * 0.9 of the previous window still counts: one more fits"
        );
    }
}
