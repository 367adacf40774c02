//! Request ids: every request carries one, upstream and back to the client in `X-Request-Id`, and every error
//! page and log line names it. An incoming id is kept when it is short and printable (a load balancer in front
//! may have set it); otherwise a new 128-bit random id is made.

use std::sync::atomic::{AtomicU64, Ordering};

use http::HeaderValue;

pub const HEADER: http::HeaderName = http::HeaderName::from_static("x-request-id");
const MAX_LEN: usize = 128;

/// The incoming id when acceptable, else a fresh one.
pub fn from_or_new(incoming: Option<&HeaderValue>) -> HeaderValue {
    incoming
        .filter(|v| acceptable(v.as_bytes()))
        .cloned()
        .unwrap_or_else(new)
}

fn acceptable(id: &[u8]) -> bool {
    !id.is_empty()
        && id.len() <= MAX_LEN
        && id
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// 32 hex digits from a per-process random key mixed with a counter (unique and unpredictable enough for
/// correlation; not a secret).
pub fn new() -> HeaderValue {
    let key = *KEY;
    let n = next_sequence();
    let hi = splitmix(key ^ n);
    let lo = splitmix(hi ^ key.rotate_left(17) ^ n.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    // Hex digits into a fixed buffer, a byte (two digits) per lookup: no formatting machinery on the hot path.
    let mut buf = [0u8; 32];
    for (half, word) in buf.chunks_exact_mut(16).zip([hi, lo]) {
        for (digits, byte) in half.chunks_exact_mut(2).zip(word.to_be_bytes()) {
            digits.copy_from_slice(&HEX_PAIRS[usize::from(byte)]);
        }
    }
    HeaderValue::from_bytes(&buf).unwrap_or_else(|_| HeaderValue::from_static("0"))
}

/// Each byte's two lower-case hex digits.
const HEX_PAIRS: [[u8; 2]; 256] = {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut t = [[0u8; 2]; 256];
    let mut b = 0;
    while b < 256 {
        t[b] = [HEX[b >> 4], HEX[b & 0xf]];
        b += 1;
    }
    t
};

/// A number no other call in this process gets: a per-thread counter (no atomic operation per request) whose
/// top bits are the thread's own, handed out once per thread.
fn next_sequence() -> u64 {
    static THREADS: AtomicU64 = AtomicU64::new(0);
    thread_local! {
        static NEXT: std::cell::Cell<Option<u64>> = const { std::cell::Cell::new(None) };
    }
    NEXT.with(|next| {
        let n = next
            .get()
            .unwrap_or_else(|| THREADS.fetch_add(1, Ordering::Relaxed) << 40);
        next.set(Some(n.wrapping_add(1)));
        n
    })
}

static KEY: std::sync::LazyLock<u64> = std::sync::LazyLock::new(|| {
    let mut buf = [0u8; 8];
    // getrandom(2) never fails for 8 bytes once the pool is initialised; fall back to the clock if it does.
    // SAFETY: getrandom writes at most buf.len() bytes into buf.
    let n = unsafe { libc::getrandom(buf.as_mut_ptr().cast(), buf.len(), 0) };
    if n == 8 {
        u64::from_ne_bytes(buf)
    } else {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
    }
});

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_hex_and_incoming_ones_are_kept_when_sane() {
        let a = new();
        let b = new();
        assert_ne!(a, b);
        assert_eq!(a.len(), 32);
        let good = HeaderValue::from_static("lb-7f3a.12");
        assert_eq!(from_or_new(Some(&good)), good);
        let bad = HeaderValue::from_static("has space");
        assert_ne!(from_or_new(Some(&bad)), bad);
        let long = HeaderValue::from_str(&"a".repeat(200)).expect("valid");
        assert_eq!(from_or_new(Some(&long)).len(), 32);
    }

    #[test]
    fn ids_from_several_threads_never_collide() {
        let ids: Vec<Vec<HeaderValue>> = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..4)
                .map(|_| scope.spawn(|| (0..2000).map(|_| new()).collect::<Vec<_>>()))
                .collect();
            workers.into_iter().map(|w| w.join().expect("thread")).collect()
        });
        let all: std::collections::HashSet<_> = ids.iter().flatten().collect();
        assert_eq!(all.len(), 8000);
    }
}
