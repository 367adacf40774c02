//! `cargo xtask test`: everything CI checks, in order of cost, stopping at the first failure.

use std::path::Path;
use std::process::Command;

use crate::build;
use crate::process::{clean_command, run, succeeds};

pub fn all(root: &Path, no_lint: bool, filter: &[String]) -> anyhow::Result<()> {
    let artefacts = build::all(root)?;
    if !no_lint {
        println!("xtask: cargo fmt --check");
        run(clean_command("cargo")
            .current_dir(root)
            .args(["fmt", "--all", "--check"]))?;
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
    }
    // Integration tests start this binary; nextest runs the release profile so they share one build.
    let mut test = if succeeds(Command::new("cargo-nextest").arg("--version")) {
        let mut c = clean_command("cargo");
        c.args(["nextest", "run", "--workspace", "--release", "--no-fail-fast"]);
        c
    } else {
        let mut c = clean_command("cargo");
        c.args(["test", "--workspace", "--release", "--no-fail-fast"]);
        c
    };
    println!("xtask: running tests");
    run(test
        .current_dir(root)
        .env("RAMPART_XDP_OBJ", &artefacts.xdp_object)
        .env("RAMPART_BIN", &artefacts.rampart)
        .args(filter))?;
    Ok(())
}
