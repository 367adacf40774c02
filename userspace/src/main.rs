//! The `rampart` command: run the daemon, check configuration, and development helpers.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// glibc's allocator cost ~9% of a proxied request's CPU in profiles (much of it consolidating free lists);
/// mimalloc's thread-local free lists make the small, short-lived allocations of request handling cheap.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use rampart::config::{self, Config, ConfigError};

#[derive(Parser)]
#[command(
    name = "rampart",
    version,
    about = "Edge WAF and reverse proxy with an XDP fast path"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon (needs root, or CAP_BPF + CAP_NET_ADMIN, for XDP).
    Run {
        /// Configuration file; without it the embedded default configuration is used.
        #[arg(long, short, env = "RAMPART_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Check or print configuration.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Inspect the XDP fast path of a running daemon.
    Xdp {
        #[command(subcommand)]
        command: XdpCommand,
    },
    /// The WAF engine, offline.
    Waf {
        #[command(subcommand)]
        command: WafCommand,
    },
    /// Certificates of a running daemon: what is served, when it expires, ACME renewal state.
    Ssl {
        #[command(subcommand)]
        command: SslCommand,
    },
    /// A demo upstream that echoes each request as JSON (used by `cargo xtask run` and the tests).
    EchoUpstream {
        #[arg(long, default_value = "127.0.0.1:8000")]
        listen: SocketAddr,
        /// Name reported in every response, to tell upstreams apart.
        #[arg(long, default_value = "echo")]
        name: String,
        /// Wait this long before answering each request (a slow server).
        #[arg(long, default_value_t = 0)]
        delay_ms: u64,
    },
}

#[derive(Subcommand)]
enum XdpCommand {
    /// Attachment mode per interface, program id, map sizes and verdict counters.
    Status {
        /// Base URL of the admin API.
        #[arg(long, default_value = "http://127.0.0.1:8081", env = "RAMPART_ADMIN_URL")]
        admin: String,
        /// Print the raw JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum WafCommand {
    /// Replay a request corpus (JSON lines, the format of ../shared/corpus/) through the engine, with no
    /// network: per-class detection and false-positive rates, the slowest requests, and last
    /// `detection=XX.X% false_positive=YY.Y%`.
    Test {
        file: PathBuf,
        /// Configuration whose `waf` section is used; without it the built-in defaults are.
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Replay only one side of a fixed 70/30 split by request id (tune on `dev`, check on `holdout`).
        #[arg(long, value_enum, default_value = "all")]
        subset: rampart::waf_test::Subset,
        /// Write each request's verdict and the matching rule here (JSON lines).
        #[arg(long)]
        out: Option<PathBuf>,
        /// How many of the slowest requests to list.
        #[arg(long, default_value_t = 10)]
        slowest: usize,
    },

    /// Inspect one request given on the command line and print every finding (why it is blocked or not).
    Check {
        /// Path and query, e.g. '/search?q=1%27%20or%201=1--'.
        target: String,
        #[arg(long, default_value = "GET")]
        method: String,
        /// A header, `Name: value` (repeatable).
        #[arg(long = "header", short = 'H')]
        headers: Vec<String>,
        #[arg(long, default_value = "")]
        body: String,
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum SslCommand {
    /// Every served certificate (source, expiry, OCSP staple) and the ACME renewal state.
    Status {
        /// Base URL of the admin API.
        #[arg(long, default_value = "http://127.0.0.1:8081", env = "RAMPART_ADMIN_URL")]
        admin: String,
        /// Print the raw JSON.
        #[arg(long)]
        json: bool,
    },
    /// Renew the ACME certificate for DOMAIN now.
    Renew {
        domain: String,
        /// Base URL of the admin API.
        #[arg(long, default_value = "http://127.0.0.1:8081", env = "RAMPART_ADMIN_URL")]
        admin: String,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Validate FILE (with RAMPART_ environment overrides applied); prints every problem with its key path and
    /// line, and exits 2 if there is any.
    Validate { file: PathBuf },
    /// Print the effective configuration (file or embedded default, overrides applied), secrets redacted.
    Show {
        #[arg(long, short, env = "RAMPART_CONFIG")]
        config: Option<PathBuf>,
        /// Print the built-in defaults of every key instead.
        #[arg(long)]
        defaults: bool,
    },
}

/// Exit status for invalid configuration or usage, distinct from a runtime failure (1).
const EXIT_CONFIG: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Config {
            command: ConfigCommand::Validate { file },
        } => match config::load_file(&file) {
            Ok(_) => {
                println!("{}: configuration is valid", file.display());
                ExitCode::SUCCESS
            }
            Err(e) => config_failure(&e),
        },
        Command::Config {
            command: ConfigCommand::Show { config, defaults },
        } => {
            let loaded = if defaults {
                Ok(Config::default())
            } else {
                load(config.as_ref())
            };
            match loaded.map(|c| config::to_yaml_redacted(&c)) {
                Ok(Ok(yaml)) => {
                    print!("{yaml}");
                    ExitCode::SUCCESS
                }
                Ok(Err(e)) => {
                    eprintln!("rampart: cannot print the configuration: {e}");
                    ExitCode::FAILURE
                }
                Err(e) => config_failure(&e),
            }
        }
        Command::Run { config: config_path } => {
            let config = match load(config_path.as_ref()) {
                Ok(c) => c,
                Err(e) => return config_failure(&e),
            };
            rampart::telemetry::logging::init(&config);
            let unsupported = rampart::daemon::unsupported(&config);
            if !unsupported.fatal.is_empty() {
                for f in &unsupported.fatal {
                    eprintln!("rampart: config error: {f}");
                }
                return ExitCode::from(EXIT_CONFIG);
            }
            let source = path_of(config_path.as_ref());
            run_runtime(config.server.workers, rampart::daemon::run(config, source))
        }
        Command::Xdp {
            command: XdpCommand::Status { admin, json },
        } => run_runtime(1, async move { rampart::cli_status::xdp_status(&admin, json).await }),
        Command::Waf {
            command:
                WafCommand::Test {
                    file,
                    config,
                    subset,
                    out,
                    slowest,
                },
        } => {
            let waf = match config.as_ref().map(|p| config::load_file(p)) {
                Some(Ok(c)) => c.waf,
                Some(Err(e)) => return config_failure(&e),
                None => Config::default().waf,
            };
            let options = rampart::waf_test::Options {
                corpus: &file,
                waf,
                subset,
                out: out.as_deref(),
                slowest,
            };
            match rampart::waf_test::run(&options, &mut std::io::stdout().lock()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("rampart: waf test: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Waf {
            command:
                WafCommand::Check {
                    target,
                    method,
                    headers,
                    body,
                    config,
                },
        } => {
            let waf = match config.as_ref().map(|p| config::load_file(p)) {
                Some(Ok(c)) => c.waf,
                Some(Err(e)) => return config_failure(&e),
                None => Config::default().waf,
            };
            match rampart::waf_test::check(&waf, &method, &target, &headers, &body, &mut std::io::stdout().lock()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("rampart: waf check: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Ssl {
            command: SslCommand::Status { admin, json },
        } => run_runtime(1, async move { rampart::cli_ssl::status(&admin, json).await }),
        Command::Ssl {
            command: SslCommand::Renew { domain, admin },
        } => run_runtime(1, async move { rampart::cli_ssl::renew(&admin, &domain).await }),
        Command::EchoUpstream { listen, name, delay_ms } => {
            let options = rampart::echo_upstream::EchoOptions {
                name,
                delay: std::time::Duration::from_millis(delay_ms),
            };
            run_runtime(1, rampart::echo_upstream::serve(listen, options))
        }
    }
}

/// The configuration file as an absolute path, so a reload finds it whatever the working directory becomes.
fn path_of(path: Option<&PathBuf>) -> Option<PathBuf> {
    path.map(|p| std::fs::canonicalize(p).unwrap_or_else(|_| p.clone()))
}

fn load(path: Option<&PathBuf>) -> Result<Config, ConfigError> {
    match path {
        Some(p) => config::load_file(p),
        None => config::load_default(),
    }
}

fn config_failure(e: &ConfigError) -> ExitCode {
    for line in e.to_string().lines() {
        eprintln!("rampart: config error: {line}");
    }
    ExitCode::from(EXIT_CONFIG)
}

fn run_runtime(workers: usize, fut: impl std::future::Future<Output = anyhow::Result<()>>) -> ExitCode {
    // One worker: a single-threaded scheduler has no work-stealing queues or cross-thread wakeups to pay for.
    let mut builder = if workers == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        if workers > 1 {
            b.worker_threads(workers);
        }
        b
    };
    let runtime = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("rampart: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(fut) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("rampart: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
