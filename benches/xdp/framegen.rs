//! A packet generator that hands the receiver XDP frames instead of socket buffers, the way a NIC driver does.
//!
//! trafgen on a veth builds an skb per packet, so the receiving veth's native XDP must copy that skb into an
//! XDP buffer: the skb allocation XDP exists to avoid has already happened. This generator uses the kernel's
//! own traffic-generator mode (BPF_PROG_TEST_RUN with BPF_F_TEST_XDP_LIVE_FRAMES, Linux 5.18): a two-instruction
//! XDP program redirects page-pool frames out of the veth, and the peer receives them as XDP frames. With an
//! XDP program on the peer they are judged before any skb exists; without one the peer builds an skb from each
//! frame and hands it to the stack (where nftables sees it), as a driver does.
//!
//!     rampart-framegen --ifindex N --frame HEX --seconds S [--max-packets M] [--drop]
//!
//! `--drop` makes the generating program drop each frame itself instead of redirecting it: the cost of
//! generating alone, subtracted from the other runs. Prints `packets=N seconds=S` when done. Bounded by both
//! the time and the packet count; it sends only to the interface given (the caller's namespace's veth).

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// `struct bpf_insn` (linux/bpf.h): opcode, dst/src registers in one byte, offset, immediate.
#[repr(C)]
#[derive(Clone, Copy)]
struct Insn {
    code: u8,
    regs: u8,
    off: i16,
    imm: i32,
}

const MOV64_IMM: u8 = 0xb7; // BPF_ALU64 | BPF_MOV | BPF_K
const CALL: u8 = 0x85; // BPF_JMP | BPF_CALL
const EXIT: u8 = 0x95; // BPF_JMP | BPF_EXIT
const HELPER_REDIRECT: i32 = 23; // bpf_redirect(ifindex, flags)
const XDP_DROP: i32 = 1;

fn mov(dst: u8, imm: i32) -> Insn {
    Insn {
        code: MOV64_IMM,
        regs: dst,
        off: 0,
        imm,
    }
}

/// The generating program: `return bpf_redirect(ifindex, 0)`, or `return XDP_DROP` for the baseline.
fn program(ifindex: i32, drop: bool) -> Vec<Insn> {
    let exit = Insn {
        code: EXIT,
        regs: 0,
        off: 0,
        imm: 0,
    };
    if drop {
        return vec![mov(0, XDP_DROP), exit];
    }
    let call = Insn {
        code: CALL,
        regs: 0,
        off: 0,
        imm: HELPER_REDIRECT,
    };
    vec![mov(1, ifindex), mov(2, 0), call, exit]
}

/// The BPF_PROG_LOAD members of `union bpf_attr` up to `expected_attach_type`; the rest stays zero.
#[repr(C)]
#[derive(Default)]
struct LoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

/// The BPF_PROG_TEST_RUN members of `union bpf_attr`, padded so the kernel sees zeroes past them.
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
    _pad: u32,
}

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_TEST_RUN: libc::c_long = 10;
const BPF_PROG_TYPE_XDP: u32 = 6;
const BPF_F_TEST_XDP_LIVE_FRAMES: u32 = 1 << 1;
/// Frames per batch (the kernel's maximum is 256); each batch ends with one flush to the veth.
const BATCH: u32 = 64;
/// Packets per system call: small enough that the time limit is checked often.
const CHUNK: u32 = 1 << 18;

fn bpf<T>(cmd: libc::c_long, attr: &mut T) -> std::io::Result<libc::c_long> {
    // SAFETY: attr is a valid prefix of union bpf_attr of the given size; the buffers it points to outlive
    // the call.
    let rc = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr as *mut T, size_of::<T>()) };
    if rc < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(rc)
}

fn load(insns: &[Insn]) -> anyhow::Result<u32> {
    let license = c"GPL";
    let mut log = vec![0u8; 4096];
    let mut name = [0u8; 16];
    name[..8].copy_from_slice(b"framegen");
    let mut attr = LoadAttr {
        prog_type: BPF_PROG_TYPE_XDP,
        insn_cnt: u32::try_from(insns.len())?,
        insns: insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        log_level: 1,
        log_size: u32::try_from(log.len())?,
        log_buf: log.as_mut_ptr() as u64,
        prog_name: name,
        ..LoadAttr::default()
    };
    match bpf(BPF_PROG_LOAD, &mut attr) {
        Ok(fd) => Ok(u32::try_from(fd)?),
        Err(e) => {
            let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
            bail!(
                "loading the generator program: {e}: {}",
                String::from_utf8_lossy(&log[..end])
            )
        }
    }
}

struct Args {
    ifindex: i32,
    frame: Vec<u8>,
    seconds: f64,
    max_packets: u64,
    drop: bool,
}

fn parse_hex(s: &str) -> anyhow::Result<Vec<u8>> {
    let s = s.trim();
    if !s.len().is_multiple_of(2) {
        bail!("--frame: odd number of hex digits");
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).with_context(|| format!("--frame: bad hex at {i}")))
        .collect()
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        ifindex: 0,
        frame: Vec::new(),
        seconds: 5.0,
        max_packets: 100_000_000,
        drop: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = || it.next().with_context(|| format!("{a} needs a value"));
        match a.as_str() {
            "--ifindex" => args.ifindex = value()?.parse().context("--ifindex")?,
            "--frame" => args.frame = parse_hex(&value()?)?,
            "--seconds" => args.seconds = value()?.parse().context("--seconds")?,
            "--max-packets" => args.max_packets = value()?.parse().context("--max-packets")?,
            "--drop" => args.drop = true,
            other => bail!("unknown argument {other}"),
        }
    }
    if args.ifindex <= 0 && !args.drop {
        bail!("--ifindex is required (the veth to send out of)");
    }
    if args.frame.len() < 14 {
        bail!("--frame must be at least an Ethernet header");
    }
    if !(args.seconds > 0.0 && args.seconds <= 600.0) {
        bail!("--seconds must be in (0, 600]");
    }
    Ok(args)
}

fn run() -> anyhow::Result<()> {
    let args = parse_args()?;
    let prog_fd = load(&program(args.ifindex, args.drop))?;
    let limit = Duration::from_secs_f64(args.seconds);
    let start = Instant::now();
    let mut sent: u64 = 0;
    while start.elapsed() < limit && sent < args.max_packets {
        let chunk = u32::try_from((args.max_packets - sent).min(u64::from(CHUNK)))?;
        let mut attr = TestRunAttr {
            prog_fd,
            data_size_in: u32::try_from(args.frame.len())?,
            data_in: args.frame.as_ptr() as u64,
            repeat: chunk,
            flags: BPF_F_TEST_XDP_LIVE_FRAMES,
            batch_size: BATCH,
            ..TestRunAttr::default()
        };
        bpf(BPF_PROG_TEST_RUN, &mut attr).context("BPF_PROG_TEST_RUN (live frames)")?;
        sent += u64::from(chunk);
    }
    println!("packets={sent} seconds={:.3}", start.elapsed().as_secs_f64());
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rampart-framegen: {e:#}");
            ExitCode::FAILURE
        }
    }
}
