//! Embeds the XDP object file in the `rampart` binary.
//!
//! Why a build script at all: the daemon must ship as one file that carries its own kernel program, so the
//! object is compiled in with `include_bytes_aligned!`. Why it does not build the eBPF crate itself (as
//! `aya-build` would): that needs nightly, `rust-src` and bpf-linker, and a nested cargo inside a build script
//! serialises on the build lock and makes every `cargo check` and `clippy` pay for it. Instead `cargo xtask
//! build` compiles the object first and passes its path in `RAMPART_XDP_OBJ`.
//!
//! Trade-off: a plain `cargo build` without that variable embeds an empty stub, so editors, `cargo check` and
//! clippy stay fast on machines without the eBPF toolchain. A binary built that way refuses to attach XDP and
//! says to build with `cargo xtask build`; it never silently runs without its kernel half.

use std::path::PathBuf;
use std::{env, fs};

fn main() {
    println!("cargo:rerun-if-env-changed=RAMPART_XDP_OBJ");
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("rampart-xdp.o");
    match env::var_os("RAMPART_XDP_OBJ") {
        Some(src) => {
            let src = PathBuf::from(src);
            println!("cargo:rerun-if-changed={}", src.display());
            if let Err(e) = fs::copy(&src, &out) {
                panic!(
                    "RAMPART_XDP_OBJ={} cannot be copied: {e}; run `cargo xtask build`",
                    src.display()
                );
            }
        }
        None => fs::write(&out, b"").expect("OUT_DIR is writable"),
    }
}
