//! `cargo xtask setup|build|run|test`: the only commands a developer or CI needs.
//!
//! Everything a fresh machine lacks is installed by `setup` (which `build`, `run` and `test` call first, cheaply
//! skipping what is present), so the README's two commands work with nothing typed before them.
//! This crate must not contain product logic: it orchestrates cargo, rustup, apt and the built binaries.

mod bench;
mod build;
mod process;
mod run;
mod setup;
mod test;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "xtask", about = "Rampart build automation")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Install what the build needs (nightly rust-src, LLVM 22, bpf-linker, bpffs, test packages); idempotent.
    Setup,
    /// Build the eBPF object, then the `rampart` binary with the object embedded.
    Build,
    /// Build and start Rampart. Without arguments: the embedded default config plus a demo upstream on
    /// 127.0.0.1:8000. With arguments after `--`: passed to `rampart` unchanged.
    Run {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Run a benchmark and print its figures (needs root for all but `waf`): `xdp-cost`, `xdp-flood`, `l7`,
    /// `l7-instructions`, `cache`, `waf` (inspection cost per request) or `waf-proxy` (the WAF's cost through
    /// the proxy, against nginx + ModSecurity + CRS).
    Bench {
        #[arg(value_enum)]
        name: bench::Bench,
    },
    /// Build and run every check: formatting, clippy, unit tests, integration tests (needs root).
    Test {
        /// Skip `cargo fmt --check` and clippy (for quick local iteration only; CI never passes this).
        #[arg(long)]
        no_lint: bool,
        /// Extra arguments for cargo nextest (e.g. a test-name filter).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        filter: Vec<String>,
    },
}

fn main() -> ExitCode {
    match dispatch(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // The chain of contexts says what failed; a backtrace of xtask itself would only bury it.
            eprintln!("xtask: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn dispatch(cli: Cli) -> anyhow::Result<()> {
    let root = workspace_root();
    match cli.command {
        Command::Setup => setup::ensure(setup::Verbosity::Report),
        Command::Build => {
            setup::ensure(setup::Verbosity::Quiet)?;
            build::all(&root).map(|_| ())
        }
        Command::Run { args } => {
            setup::ensure(setup::Verbosity::Quiet)?;
            let artefacts = build::all(&root)?;
            run::rampart(&artefacts, &args)
        }
        Command::Bench { name } => {
            setup::ensure(setup::Verbosity::Quiet)?;
            setup::ensure_packages(setup::BENCH_PACKAGES)?;
            bench::start(&root, name)
        }
        Command::Test { no_lint, filter } => {
            setup::ensure(setup::Verbosity::Quiet)?;
            test::all(&root, no_lint, &filter)
        }
    }
}

/// The workspace root, derived from this crate's manifest so xtask works from any directory.
fn workspace_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map(PathBuf::from).unwrap_or(manifest)
}
