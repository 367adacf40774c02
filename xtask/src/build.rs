//! Building the two halves: the eBPF object (nightly, `bpfel-unknown-none`, `-Z build-std=core`) and then the
//! userspace workspace with that object's path in `RAMPART_XDP_OBJ`, which `userspace/build.rs` embeds.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use crate::process::{clean_command, run};

/// Where everything xtask builds ends up, shared with plain `cargo` invocations.
pub struct Artefacts {
    pub xdp_object: PathBuf,
    pub rampart: PathBuf,
}

pub fn all(root: &Path) -> anyhow::Result<Artefacts> {
    let xdp_object = ebpf(root)?;
    println!("xtask: building rampart (release)");
    run(clean_command("cargo")
        .current_dir(root)
        .env("RAMPART_XDP_OBJ", &xdp_object)
        .args(["build", "--release", "--package", "rampart", "--bin", "rampart"]))?;
    let rampart = root.join("target/release/rampart");
    if !rampart.is_file() {
        bail!("cargo reported success but {} does not exist", rampart.display());
    }
    Ok(Artefacts { xdp_object, rampart })
}

/// Builds the XDP program and returns the path of the object file.
pub fn ebpf(root: &Path) -> anyhow::Result<PathBuf> {
    println!("xtask: building the XDP program (nightly, bpfel-unknown-none)");
    // bpf-linker emits BTF only when asked (`--btf`); the kernel uses it to describe maps in `bpftool` and to
    // verify typed map values. `debuginfo=2` is what BTF is generated from.
    let rustflags = ["-Cdebuginfo=2", "-Clink-arg=--btf"].join("\u{1f}");
    run(ebpf_cargo(root, "build").env("CARGO_ENCODED_RUSTFLAGS", rustflags))
        .context("building the eBPF crate (did `cargo xtask setup` succeed?)")?;
    let object = root.join("target/ebpf/bpfel-unknown-none/release/rampart-xdp");
    if !object.is_file() {
        bail!("the eBPF build succeeded but {} is missing", object.display());
    }
    Ok(object)
}

/// `cargo +nightly SUBCOMMAND` for the eBPF crate: BPF target, `core` built from source, its own target dir.
/// `--locked`: xdp-ebpf/Cargo.lock pins aya-build 0.2.0, the last release that builds on this nightly.
pub fn ebpf_cargo(root: &Path, subcommand: &str) -> std::process::Command {
    let mut cmd = clean_command("cargo");
    cmd.current_dir(root.join("xdp-ebpf"))
        .arg("+nightly")
        .args([
            subcommand,
            "--locked",
            "--release",
            "--target",
            "bpfel-unknown-none",
            "-Z",
            "build-std=core",
        ])
        .arg("--target-dir")
        .arg(root.join("target/ebpf"));
    cmd
}
