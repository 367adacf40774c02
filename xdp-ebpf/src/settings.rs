//! Load-time settings (see `rampart_common::settings`). The defaults here switch every optional stage off;
//! the daemon overwrites them with `EbpfLoader::set_global` before loading. Reads go through `read_volatile`
//! so the compiler cannot fold the defaults in: the values must come from the frozen `.rodata` map, which the
//! verifier then treats as constants.

use core::ptr::read_volatile;

#[no_mangle]
static RATE_INTERVAL_NS: u64 = 0;
#[no_mangle]
static RATE_TAU_NS: u64 = 0;
#[no_mangle]
static RATE_V6_MASK: [u8; 16] = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0];
#[no_mangle]
static GEO_ENABLED: u8 = 0;
#[no_mangle]
static EVENT_SAMPLE: u32 = 0;

#[inline(always)]
pub fn rate_interval_ns() -> u64 {
    unsafe { read_volatile(&RATE_INTERVAL_NS) }
}

#[inline(always)]
pub fn rate_tau_ns() -> u64 {
    unsafe { read_volatile(&RATE_TAU_NS) }
}

#[inline(always)]
pub fn rate_v6_mask() -> [u8; 16] {
    unsafe { read_volatile(&RATE_V6_MASK) }
}

#[inline(always)]
pub fn geo_enabled() -> bool {
    unsafe { read_volatile(&GEO_ENABLED) != 0 }
}

#[inline(always)]
pub fn event_sample() -> u32 {
    unsafe { read_volatile(&EVENT_SAMPLE) }
}
