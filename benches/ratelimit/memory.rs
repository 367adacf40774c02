//! Memory and time of the L7 rate-limit store under 1,000,000 distinct source keys (a spoofed-source
//! flood at L7 would look like this): resident memory grows by what the cap allows and no further, and
//! an admission stays cheap while the store evicts.
//!
//! Run: `cargo bench -p rampart-benches --bench ratelimit_memory` (prints a table; no criterion harness, as
//! what matters here is memory, read from /proc/self/statm).

use std::time::Instant;

use rampart::config::schema::RateAlgorithm;
use rampart::policy::ratelimit::algorithm::Window;
use rampart::policy::ratelimit::store::{Key, Store};

const KEYS: u128 = 1_000_000;

/// Resident set size in bytes.
fn rss() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn run(cap: u64, algorithm: RateAlgorithm) {
    let windows = [Window {
        algorithm,
        period_ns: 1_000_000_000,
        limit: 10,
        capacity: 20,
    }];
    let before = rss();
    let store = Store::new(cap);
    let started = Instant::now();
    let mut now = 1_000_000_000u64;
    for i in 0..KEYS {
        // IPv4-mapped addresses 0.0.0.0 .. 0.15.66.63, one request each, 1 µs apart.
        let client = (0xffff_u128 << 32) | i;
        store.admit(Key { window: 0, client }, &windows[0], now, &windows);
        now += 1_000;
    }
    let took = started.elapsed();
    let after = rss();
    println!(
        "{:<15} cap {:>9}  keys {:>9}  held {:>9}  rss +{:>6.1} MB  ({:>5.1} B/key held)  {:>5.0} ns/admission",
        format!("{algorithm:?}"),
        cap,
        KEYS,
        store.len(),
        after.saturating_sub(before) as f64 / 1e6,
        after.saturating_sub(before) as f64 / store.len().max(1) as f64,
        took.as_nanos() as f64 / KEYS as f64,
    );
    // Every key is idle a second later: a sweep frees them all.
    let swept = store.sweep(now + 3_000_000_000, &windows);
    assert_eq!(store.len(), 0, "idle keys must all go ({swept} swept)");
}

/// Each configuration runs in a child process of its own, so one run's freed memory cannot hide the next
/// one's growth.
fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let [_, flag, cap, alg] = args.as_slice()
        && flag == "--one"
    {
        let algorithm = match alg.as_str() {
            "token_bucket" => RateAlgorithm::TokenBucket,
            "sliding_window" => RateAlgorithm::SlidingWindow,
            _ => RateAlgorithm::FixedWindow,
        };
        run(cap.parse().unwrap_or(1_000_000), algorithm);
        return;
    }
    println!("L7 rate-limit store, {KEYS} distinct source keys, one request each");
    let Ok(me) = std::env::current_exe() else { return };
    for cap in ["1000000", "100000"] {
        for alg in ["token_bucket", "sliding_window", "fixed_window"] {
            let status = std::process::Command::new(&me).args(["--one", cap, alg]).status();
            if !status.as_ref().is_ok_and(std::process::ExitStatus::success) {
                eprintln!("run {cap} {alg} failed: {status:?}");
                std::process::exit(1);
            }
        }
    }
}
