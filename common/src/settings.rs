//! Names of the program's load-time settings: read-only globals that the daemon sets with
//! `EbpfLoader::set_global` when it loads the program. Because the kernel freezes them, the verifier knows
//! their values and removes stages that are switched off, so a disabled check costs nothing per packet.
//! Changing a setting means loading a new program and swapping it into the attachment atomically.

/// `u64`: GCRA emission interval in ns (1e9 / packets per second); 0 switches rate limiting off.
pub const RATE_INTERVAL_NS: &str = "RATE_INTERVAL_NS";
/// `u64`: GCRA tolerance in ns ((burst - 1) * interval): how far ahead of schedule a source may get.
pub const RATE_TAU_NS: &str = "RATE_TAU_NS";
/// `[u8; 16]`: mask applied to an IPv6 source to form its rate-limit key (default /64).
pub const RATE_V6_MASK: &str = "RATE_V6_MASK";
/// `u8`: 1 when geo policy is enforced.
pub const GEO_ENABLED: &str = "GEO_ENABLED";
/// `u32`: a drop emits an event when `bpf_get_prandom_u32() < EVENT_SAMPLE`; 0 emits none, `u32::MAX`
/// (nearly) all.
pub const EVENT_SAMPLE: &str = "EVENT_SAMPLE";

/// Mask for an IPv6 prefix length (0–128).
pub const fn v6_mask(prefix_len: u8) -> [u8; 16] {
    let mut mask = [0u8; 16];
    let mut i = 0;
    while i < 16 {
        let bits = prefix_len as i32 - (i as i32) * 8;
        mask[i] = if bits >= 8 {
            0xff
        } else if bits <= 0 {
            0
        } else {
            0xffu8 << (8 - bits)
        };
        i += 1;
    }
    mask
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v6_masks() {
        assert_eq!(
            v6_mask(64),
            [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0]
        );
        assert_eq!(v6_mask(0), [0; 16]);
        assert_eq!(v6_mask(128), [0xff; 16]);
        assert_eq!(v6_mask(60)[7], 0xf0);
    }
}
