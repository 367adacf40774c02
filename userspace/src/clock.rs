//! A cheap reading of the monotonic clock for ages and deadlines counted in seconds: upstream connection
//! ages in the pool, keep-alive and upstream-timeout deadlines, circuit-breaker windows.
//!
//! Why: `Instant::now()` reads `CLOCK_MONOTONIC`, which costs a TSC read and its scaling in the vDSO (~25 ns
//! on this project's VMs), and the request path read it about fourteen times per proxied request.
//! `CLOCK_MONOTONIC_COARSE` is the same clock at the kernel tick's resolution (1–4 ms), answered by the vDSO
//! from the last tick without touching the TSC. nginx makes the same trade with its cached `ngx_current_msec`.
//!
//! Must not be used for latencies (the balancer's EWMA, request-duration histograms, the performance log):
//! those need `Instant::now()`.

use std::sync::LazyLock;
use std::time::{Duration, Instant};

/// A precise instant and the coarse clock's reading taken together: coarse readings are placed on the
/// `Instant` time line relative to it, so they compare with precise instants to within one tick.
static ANCHOR: LazyLock<(Instant, Option<Duration>)> = LazyLock::new(|| (Instant::now(), coarse_reading()));

/// Now, to within one kernel tick (at most a few milliseconds either way).
pub fn coarse_now() -> Instant {
    match (*ANCHOR, coarse_reading()) {
        ((precise, Some(anchor)), Some(now)) => precise + now.saturating_sub(anchor),
        // Only kernels older than 2.6.32 lack the coarse clock: the precise one stands in.
        _ => Instant::now(),
    }
}

fn coarse_reading() -> Option<Duration> {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec; clock_gettime writes only into it.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut ts) };
    (rc == 0).then(|| {
        Duration::new(
            u64::try_from(ts.tv_sec).unwrap_or(0),
            u32::try_from(ts.tv_nsec).unwrap_or(0),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_coarse_clock_stays_within_a_few_ticks_of_the_precise_one() {
        for _ in 0..1000 {
            let before = Instant::now();
            let coarse = coarse_now();
            let after = Instant::now();
            // One tick is at most 10 ms (HZ=100); the anchor adds at most one more.
            let slack = Duration::from_millis(20);
            assert!(coarse + slack >= before, "coarse {coarse:?} far behind {before:?}");
            assert!(coarse <= after + slack, "coarse {coarse:?} far ahead of {after:?}");
        }
    }

    #[test]
    fn the_coarse_clock_moves_forward() {
        let first = coarse_now();
        std::thread::sleep(Duration::from_millis(30));
        let later = coarse_now();
        assert!(later >= first + Duration::from_millis(15), "{first:?} then {later:?}");
    }
}
