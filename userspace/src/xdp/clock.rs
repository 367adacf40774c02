//! The kernel's monotonic clock, which the XDP program reads with `bpf_ktime_get_ns` to expire list entries.

use std::time::Duration;

/// Nanoseconds on `CLOCK_MONOTONIC`, the clock behind `bpf_ktime_get_ns`.
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes into the timespec we own; CLOCK_MONOTONIC is always available on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(ts.tv_nsec as u64)
}

/// The kernel timestamp `ttl` from now; 0 (never) when `ttl` is `None`.
pub fn expiry_after(ttl: Option<Duration>) -> u64 {
    match ttl {
        None => 0,
        // Saturating: an absurd TTL becomes "practically never", not a wrap into the past.
        Some(d) => monotonic_ns()
            .saturating_add(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
            .max(1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monotonic_clock_advances_and_expiry_is_in_the_future() {
        let a = monotonic_ns();
        let e = expiry_after(Some(Duration::from_secs(60)));
        assert!(e >= a + 59_000_000_000);
        assert_eq!(expiry_after(None), 0);
    }
}
