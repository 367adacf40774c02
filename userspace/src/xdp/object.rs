//! The XDP object compiled into this binary (see `userspace/build.rs`).

use super::XdpError;

static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/rampart-xdp.o"));

/// The embedded ELF object, or an error saying how to build a binary that has one.
pub fn embedded() -> Result<&'static [u8], XdpError> {
    if OBJECT.is_empty() {
        Err(XdpError::NotEmbedded)
    } else {
        Ok(OBJECT)
    }
}
