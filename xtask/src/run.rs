//! `cargo xtask run`: start the freshly built daemon. With no arguments it also starts the demo upstream the
//! embedded default config points at, so a request through the proxy succeeds on a machine with nothing else.

use std::process::{Child, Command};

use anyhow::Context;

use crate::build::Artefacts;
use crate::process::run;

/// The upstream address in `config/default.yaml` (embedded in the binary).
const DEMO_UPSTREAM: &str = "127.0.0.1:8000";

pub fn rampart(artefacts: &Artefacts, args: &[String]) -> anyhow::Result<()> {
    if !args.is_empty() {
        return run(Command::new(&artefacts.rampart).args(args));
    }
    println!("xtask: starting the demo upstream on {DEMO_UPSTREAM}");
    let upstream = Command::new(&artefacts.rampart)
        .args(["echo-upstream", "--listen", DEMO_UPSTREAM])
        .spawn()
        .context("starting the demo upstream")?;
    let _guard = KillOnDrop(upstream);
    println!("xtask: starting rampart with the embedded default config (proxy :8080, admin 127.0.0.1:8081)");
    run(Command::new(&artefacts.rampart).arg("run"))
}

/// Stops the demo upstream however `run` ends (Ctrl-C reaches both processes; an error reaches only us).
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
