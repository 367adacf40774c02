//! Running external commands with errors that say which command failed and how.

use std::process::{Command, Output, Stdio};

use anyhow::{Context, bail};

/// Environment variables that `cargo run` (which starts xtask) sets for its child and that would force the
/// wrong toolchain or wrapper onto the cargo invocations xtask makes.
const TOOLCHAIN_ENV: &[&str] = &[
    "RUSTUP_TOOLCHAIN",
    "RUSTC",
    "RUSTC_WRAPPER",
    "RUSTC_WORKSPACE_WRAPPER",
    "RUSTDOC",
    "CARGO",
    "CARGO_TARGET_DIR",
    "RUSTFLAGS",
    "CARGO_ENCODED_RUSTFLAGS",
];

/// A command with the toolchain-selecting environment of the parent cargo removed.
pub fn clean_command(program: &str) -> Command {
    let mut cmd = Command::new(program);
    for var in TOOLCHAIN_ENV {
        cmd.env_remove(var);
    }
    cmd
}

/// Runs `cmd` with inherited stdio; fails naming the command and its exit status.
pub fn run(cmd: &mut Command) -> anyhow::Result<()> {
    let shown = describe(cmd);
    let status = cmd.status().with_context(|| format!("could not start `{shown}`"))?;
    if !status.success() {
        bail!("`{shown}` failed with {status}");
    }
    Ok(())
}

/// Runs `cmd` capturing its output; a non-zero exit is returned, not treated as an error.
pub fn capture(cmd: &mut Command) -> anyhow::Result<Output> {
    let shown = describe(cmd);
    cmd.stdin(Stdio::null())
        .output()
        .with_context(|| format!("could not start `{shown}`"))
}

/// True when `cmd` starts and exits with success; any failure to start counts as false.
pub fn succeeds(cmd: &mut Command) -> bool {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

fn describe(cmd: &Command) -> String {
    let mut parts = vec![cmd.get_program().to_string_lossy().into_owned()];
    parts.extend(cmd.get_args().map(|a| a.to_string_lossy().into_owned()));
    parts.join(" ")
}
