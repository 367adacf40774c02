//! `cargo xtask setup`: bring a fresh Debian 12 machine of the project's kind to a state where the eBPF
//! object and the daemon build and every test runs. Each step checks first and only installs what is missing,
//! so `build`, `run` and `test` call it on every invocation at the cost of a few process spawns.

use std::process::Command;

use anyhow::{Context, bail};

use crate::process::{capture, clean_command, run};

/// Debian packages the build and the tests need. LLVM 22 is what bpf-linker links against; iproute2 and curl
/// drive the network-namespace integration tests; openssl makes the TLS tests' certificates and OCSP
/// responses; h2load (nghttp2-client) drives HTTP/2 multiplexing; redis-server backs the shared rate-limit
/// tests (started per test on a random loopback port); chromium runs the dashboard's browser test headless;
/// systemd provides `systemd-analyze`, with which the deployment test verifies `deploy/rampart.service` offline;
/// pebble (binaries `pebble` and `pebble-challtestsrv`) is the local ACME server the certificate tests issue from.
const PACKAGES: &[&str] = &[
    "llvm-22-dev",
    "libclang-22-dev",
    "libpolly-22-dev",
    "iproute2",
    "curl",
    "openssl",
    "nghttp2-client",
    "redis-server",
    "chromium",
    "systemd",
    "pebble",
];

/// Debian packages only the benchmarks need: trafgen (netsniff-ng) floods, nftables is the baseline drop path,
/// wrk drives HTTP load, nginx is the reference proxy and the fixed upstream (the same package
/// `../shared/bench/l7` was measured with), valgrind counts instructions per request, ethtool switches a
/// veth's NAPI on and reads its XDP counters, ModSecurity with the OWASP CRS is the WAF Rampart's is compared
/// with (the corpus's anchor).
pub const BENCH_PACKAGES: &[&str] = &[
    "netsniff-ng",
    "nftables",
    "wrk",
    "nginx",
    "linux-perf",
    "valgrind",
    "nghttp2-client",
    "ethtool",
    "libnginx-mod-http-modsecurity",
    "modsecurity-crs",
];

/// The bpf-linker release known to work with LLVM 22 and the installed nightly.
const BPF_LINKER_VERSION: &str = "0.13.0";
const LLVM_PREFIX: &str = "/usr/lib/llvm-22";
const BPFFS: &str = "/sys/fs/bpf";

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Verbosity {
    /// Print a line for every step, including the ones already satisfied.
    Report,
    /// Print only what was installed.
    Quiet,
}

pub fn ensure(verbosity: Verbosity) -> anyhow::Result<()> {
    let say_ok = |what: &str| {
        if verbosity == Verbosity::Report {
            println!("setup: ok        {what}");
        }
    };

    if ensure_packages(PACKAGES)? {
        say_ok(&format!("Debian packages ({})", PACKAGES.join(", ")));
    }

    if nightly_has_rust_src()? {
        say_ok("nightly toolchain with rust-src");
    } else {
        println!("setup: adding rust-src to the nightly toolchain");
        run(clean_command("rustup").args(["component", "add", "rust-src", "--toolchain", "nightly"]))?;
        println!("setup: installed rust-src for nightly");
    }

    if bpf_linker_ok() {
        say_ok(&format!("bpf-linker {BPF_LINKER_VERSION}"));
    } else {
        println!("setup: building bpf-linker {BPF_LINKER_VERSION} against LLVM 22 (a few minutes)");
        run(clean_command("cargo")
            .env("LLVM_PREFIX", LLVM_PREFIX)
            .args(["install", "bpf-linker", "--locked", "--force"])
            .args(["--version", BPF_LINKER_VERSION])
            .args(["--no-default-features", "--features", "llvm-22"]))?;
        println!("setup: installed bpf-linker {BPF_LINKER_VERSION}");
    }

    if bpffs_mounted()? {
        say_ok(&format!("bpffs mounted at {BPFFS}"));
    } else {
        require_root(&format!("mount bpffs at {BPFFS}"))?;
        run(Command::new("mount").args(["-t", "bpf", "bpf", BPFFS]))?;
        println!("setup: mounted bpffs at {BPFFS}");
    }
    Ok(())
}

/// Installs whichever of `packages` are missing; true when all were already there.
pub fn ensure_packages(packages: &[&str]) -> anyhow::Result<bool> {
    let missing: Vec<&str> = packages.iter().copied().filter(|p| !package_installed(p)).collect();
    if missing.is_empty() {
        return Ok(true);
    }
    require_root(&format!("install Debian packages {}", missing.join(", ")))?;
    println!("setup: installing Debian packages: {}", missing.join(" "));
    // The package index on a fresh machine may predate the packages we need (LLVM 22 among them).
    run(Command::new("apt-get").arg("update").arg("-q"))?;
    run(Command::new("apt-get")
        .env("DEBIAN_FRONTEND", "noninteractive")
        .args(["install", "-y", "-q", "--no-install-recommends"])
        .args(&missing))?;
    println!("setup: installed Debian packages: {}", missing.join(" "));
    Ok(false)
}

fn package_installed(name: &str) -> bool {
    capture(Command::new("dpkg-query").args(["-W", "-f=${Status}", name]))
        .map(|o| o.status.success() && String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
        .unwrap_or(false)
}

fn nightly_has_rust_src() -> anyhow::Result<bool> {
    let out = capture(clean_command("rustup").args(["component", "list", "--installed", "--toolchain", "nightly"]))?;
    if !out.status.success() {
        bail!(
            "no nightly toolchain is installed (rustup said: {}); the eBPF crate needs the machine's nightly",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .any(|l| l.starts_with("rust-src")))
}

fn bpf_linker_ok() -> bool {
    let out = match capture(Command::new("bpf-linker").arg("--version")) {
        Ok(out) if out.status.success() => out,
        _ => return false,
    };
    String::from_utf8_lossy(&out.stdout).contains(BPF_LINKER_VERSION)
}

fn bpffs_mounted() -> anyhow::Result<bool> {
    let mounts = std::fs::read_to_string("/proc/mounts").context("reading /proc/mounts")?;
    Ok(mounts.lines().any(|line| {
        let mut fields = line.split_whitespace();
        let (_dev, mountpoint, fstype) = (fields.next(), fields.next(), fields.next());
        mountpoint == Some(BPFFS) && fstype == Some("bpf")
    }))
}

fn require_root(what: &str) -> anyhow::Result<()> {
    if is_root() {
        return Ok(());
    }
    bail!("setup needs root to {what}; run `cargo xtask setup` as root, or do it by hand")
}

fn is_root() -> bool {
    capture(Command::new("id").arg("-u"))
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}
