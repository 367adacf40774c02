//! `cargo xtask test`: everything CI checks, in order of cost, stopping at the first failure.

use std::path::Path;
use std::process::Command;

use crate::build::{self, Artefacts};
use crate::process::{clean_command, run, succeeds};

pub fn all(root: &Path, no_lint: bool, filter: &[String]) -> anyhow::Result<()> {
    let artefacts = build::all(root)?;
    if !no_lint {
        lint(root, &artefacts)?;
    }
    // Integration tests start the release binary; running the tests in the release profile shares that build.
    let mut test = clean_command("cargo");
    if succeeds(Command::new("cargo-nextest").arg("--version")) {
        test.args(["nextest", "run", "--workspace", "--release", "--no-fail-fast"]);
    } else {
        test.args(["test", "--workspace", "--release", "--no-fail-fast"]);
    }
    println!("xtask: running tests");
    run(test
        .current_dir(root)
        .env("RAMPART_XDP_OBJ", &artefacts.xdp_object)
        .env("RAMPART_BIN", &artefacts.rampart)
        .args(filter))
}

/// Formatting and clippy for the workspace and for the eBPF crate (nightly, BPF target).
fn lint(root: &Path, artefacts: &Artefacts) -> anyhow::Result<()> {
    let ebpf = root.join("xdp-ebpf");
    println!("xtask: cargo fmt --check");
    run(clean_command("cargo")
        .current_dir(root)
        .args(["fmt", "--all", "--check"]))?;
    run(clean_command("cargo")
        .current_dir(&ebpf)
        .args(["+nightly", "fmt", "--check"]))?;
    println!("xtask: cargo clippy");
    run(clean_command("cargo")
        .current_dir(root)
        .env("RAMPART_XDP_OBJ", &artefacts.xdp_object)
        .args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--release",
            "--",
            "-D",
            "warnings",
        ]))?;
    println!("xtask: cargo clippy (eBPF crate)");
    run(build::ebpf_cargo(root, "clippy").args(["--", "-D", "warnings"]))
}
