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
    let Some(now) = coarse_reading() else {
        return Instant::now();
    };
    // Within one tick every reading is the same: the instant placed for it is kept per thread, so that most
    // calls cost the vDSO read and one compare instead of the arithmetic below.
    LAST.with(|last| match last.get() {
        Some((reading, instant)) if reading == now => instant,
        _ => {
            let instant = match *ANCHOR {
                (precise, Some(anchor)) => precise + now.saturating_sub(anchor),
                _ => Instant::now(),
            };
            last.set(Some((now, instant)));
            instant
        }
    })
}

thread_local! {
    /// The last coarse reading on this thread and the instant it was placed at.
    static LAST: std::cell::Cell<Option<(Duration, Instant)>> = const { std::cell::Cell::new(None) };
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

/// Completes once `deadline` has passed. `timer` may be armed earlier (for a deadline that was moved since
/// without touching the timer): it is re-armed for `deadline` when it fires early. Moving a timer costs a
/// lock and a wheel update in the runtime; a deadline moved per request is instead checked once per firing.
pub async fn reached(mut timer: std::pin::Pin<&mut tokio::time::Sleep>, deadline: tokio::time::Instant) {
    loop {
        timer.as_mut().await;
        if timer.deadline() >= deadline {
            return;
        }
        timer.as_mut().reset(deadline);
    }
}

/// Tells threads apart without the atomic reference count `std::thread::current()` costs: the address of
/// a thread-local, distinct among the threads alive.
pub fn thread_mark() -> usize {
    thread_local! {
        static MARK: u8 = const { 0 };
    }
    MARK.with(|m| std::ptr::from_ref(m) as usize)
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

    /// A timer armed before its deadline moved (a keep-alive connection that was busy since, an upstream
    /// connection's next request) does not end at its first deadline, but at the moved one.
    #[tokio::test]
    async fn a_timer_ends_at_the_deadline_it_was_moved_to_not_the_one_it_was_armed_with() {
        let started = tokio::time::Instant::now();
        let timer = tokio::time::sleep(Duration::from_millis(50));
        tokio::pin!(timer);
        let moved = started + Duration::from_millis(200);
        tokio::time::timeout(Duration::from_secs(5), reached(timer.as_mut(), moved))
            .await
            .expect("the wait ends");
        assert!(
            started.elapsed() >= Duration::from_millis(200),
            "ended after {:?}, before the moved deadline",
            started.elapsed()
        );
        // At the deadline it was armed for, it ends then.
        let started = tokio::time::Instant::now();
        let timer = tokio::time::sleep(Duration::from_millis(50));
        tokio::pin!(timer);
        let deadline = timer.deadline();
        reached(timer.as_mut(), deadline).await;
        assert!(started.elapsed() >= Duration::from_millis(50));
    }

    #[test]
    fn threads_have_distinct_marks() {
        let here = thread_mark();
        assert_eq!(here, thread_mark());
        let there = std::thread::spawn(thread_mark).join().expect("thread");
        assert_ne!(here, there);
    }
}
