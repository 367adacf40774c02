//! `cargo xtask bench NAME`: build with the eBPF object embedded, then run one benchmark harness.

use std::path::Path;
use std::process::Command;

use crate::build;
use crate::process::{self, clean_command};

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Bench {
    /// Per-packet cost of each verdict path (BPF_PROG_TEST_RUN, 100,000 deny prefixes).
    XdpCost,
    /// XDP vs nftables drop cost on a veth flood, and proxy throughput during the flood.
    XdpFlood,
    /// Proxy throughput and p99 against nginx (plain and TLS, 50 and 256 connections), epoll and io_uring,
    /// and memory with 10,000 idle keep-alive connections.
    L7,
    /// User-space instructions per proxied request against nginx, counted by callgrind (steady on a busy
    /// machine, unlike req/s).
    L7Instructions,
    /// Cache-hit throughput: Rampart's response cache against nginx's proxy_cache, in the same run.
    Cache,
    /// WAF inspection cost per request shape (criterion; no privileges, no eBPF object needed).
    Waf,
    /// Through-proxy cost of the WAF: Rampart with it off and on, and nginx + ModSecurity + OWASP CRS (the
    /// corpus's anchor, started and stopped by the harness), pinned to the same core.
    WafProxy,
}

pub fn start(root: &Path, bench: Bench) -> anyhow::Result<()> {
    if let Bench::Waf = bench {
        // The engine is plain userspace code: no eBPF object, no privileges.
        return process::run(clean_command("cargo").current_dir(root).args([
            "bench",
            "--package",
            "rampart-benches",
            "--bench",
            "waf_inspect",
        ]));
    }
    let artefacts = build::all(root)?;
    match bench {
        Bench::XdpCost => process::run(
            clean_command("cargo")
                .current_dir(root)
                .env("RAMPART_XDP_OBJ", &artefacts.xdp_object)
                .args(["bench", "--package", "rampart-benches", "--bench", "xdp_cost"]),
        ),
        Bench::XdpFlood => {
            process::run(clean_command("cargo").current_dir(root).args([
                "build",
                "--release",
                "--package",
                "rampart-benches",
                "--bin",
                "rampart-framegen",
            ]))?;
            process::run(
                Command::new("bash")
                    .arg(root.join("benches/xdp/flood.sh"))
                    .env("RAMPART_BIN", &artefacts.rampart)
                    .env("FRAMEGEN_BIN", root.join("target/release/rampart-framegen")),
            )
        }
        Bench::L7 => process::run(
            Command::new("bash")
                .arg(root.join("benches/l7/proxy.sh"))
                .env("RAMPART_BIN", &artefacts.rampart)
                .env("IO", std::env::var("IO").unwrap_or_else(|_| "both".into())),
        ),
        Bench::L7Instructions => process::run(
            Command::new("bash")
                .arg(root.join("benches/l7/instructions.sh"))
                .env("RAMPART_BIN", &artefacts.rampart),
        ),
        Bench::Cache => process::run(
            Command::new("bash")
                .arg(root.join("benches/cache/hit.sh"))
                .env("RAMPART_BIN", &artefacts.rampart),
        ),
        Bench::WafProxy => process::run(
            Command::new("bash")
                .arg(root.join("benches/waf/throughput.sh"))
                .env("RAMPART_BIN", &artefacts.rampart)
                .env("CORPUS_DIR", root.join("../shared/corpus")),
        ),
        Bench::Waf => Ok(()),
    }
}
