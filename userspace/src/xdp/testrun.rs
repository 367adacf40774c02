//! BPF_PROG_TEST_RUN: running the loaded XDP program on a crafted packet in the kernel, without a network.
//! Used by the verdict tests (every path of the pipeline) and by the per-packet cost benchmark.

use std::os::fd::{AsFd, AsRawFd};

use aya::programs::Xdp;

use super::XdpError;

/// The `test` member of `union bpf_attr` (linux/bpf.h), as far as XDP needs it.
#[repr(C)]
#[derive(Default)]
struct TestRunAttr {
    prog_fd: u32,
    retval: u32,
    data_size_in: u32,
    data_size_out: u32,
    data_in: u64,
    data_out: u64,
    repeat: u32,
    duration: u32,
    ctx_size_in: u32,
    ctx_size_out: u32,
    ctx_in: u64,
    ctx_out: u64,
    flags: u32,
    cpu: u32,
    batch_size: u32,
    /// The struct's alignment pads it to 80 bytes; the kernel refuses (EINVAL) a bpf_attr whose bytes past the
    /// fields it knows are not zero, and implicit padding is uninitialised. This field makes them zero.
    _pad: u32,
}

const BPF_PROG_TEST_RUN: libc::c_long = 10;

/// XDP return codes.
pub const XDP_DROP: u32 = 1;
pub const XDP_PASS: u32 = 2;

/// The outcome of a test run: the program's return value (of the last run) and the kernel-measured average
/// nanoseconds per run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TestRun {
    pub action: u32,
    pub ns_per_run: u32,
}

/// Runs `program` on `packet` `repeat` times (at least once). Packets shorter than an Ethernet header are
/// refused by the kernel.
pub fn run(program: &Xdp, packet: &[u8], repeat: u32) -> Result<TestRun, XdpError> {
    let fd = program.fd().map_err(XdpError::Verify)?;
    let mut out = vec![0u8; packet.len() + 512];
    let mut attr = TestRunAttr {
        prog_fd: fd.as_fd().as_raw_fd() as u32,
        data_size_in: u32::try_from(packet.len()).unwrap_or(u32::MAX),
        data_size_out: u32::try_from(out.len()).unwrap_or(u32::MAX),
        data_in: packet.as_ptr() as u64,
        data_out: out.as_mut_ptr() as u64,
        repeat: repeat.max(1),
        ..TestRunAttr::default()
    };
    // SAFETY: attr is a valid bpf_attr prefix of the given size; the buffers it points to outlive the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_TEST_RUN,
            &mut attr as *mut TestRunAttr,
            size_of::<TestRunAttr>(),
        )
    };
    if rc != 0 {
        return Err(XdpError::TestRun(std::io::Error::last_os_error()));
    }
    Ok(TestRun {
        action: attr.retval,
        ns_per_run: attr.duration,
    })
}
