//! The `rampart` command: run the daemon, check configuration, and development helpers.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, CommandFactory, Parser, Subcommand};

/// glibc's allocator cost ~9% of a proxied request's CPU in profiles (much of it consolidating free lists);
/// mimalloc's thread-local free lists make the small, short-lived allocations of request handling cheap.
/// `rampart::allocator` explains why not `mimalloc::MiMalloc` itself.
#[global_allocator]
static GLOBAL: rampart::allocator::Allocator = rampart::allocator::Allocator;
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
    /// Log in to a running daemon's admin API; the password is read from standard input, the tokens are
    /// saved with 0600 permissions for the other commands.
    Login {
        #[arg(long, short)]
        username: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// Upstreams of a running daemon.
    Proxy {
        #[command(subcommand)]
        command: ProxyCommand,
    },
    /// The response cache of a running daemon.
    Cache {
        #[command(subcommand)]
        command: CacheCommand,
    },
    /// Health of a running daemon.
    Monitor {
        #[command(subcommand)]
        command: MonitorCommand,
    },
    /// Tail live events from a running daemon (the admin WebSocket).
    Events {
        /// Topics: security_events, performance_metrics, health_status.
        #[arg(long = "topic", default_value = "security_events")]
        topics: Vec<String>,
        /// Stop after this many events.
        #[arg(long)]
        count: Option<u64>,
        #[command(flatten)]
        remote: Remote,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions { shell: clap_complete::Shell },
    /// Admin accounts, offline.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
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

/// Where the admin API is and how to print its answers.
#[derive(Args, Clone)]
struct Remote {
    /// Base URL of the admin API.
    #[arg(long, default_value = "http://127.0.0.1:8081", env = "RAMPART_ADMIN_URL")]
    admin: String,
    /// Print the API's JSON instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
enum ProxyCommand {
    /// Every upstream pool with its servers' live state.
    Status {
        #[command(flatten)]
        remote: Remote,
    },
}

#[derive(Subcommand)]
enum CacheCommand {
    /// Clear cached responses, all or those matching a pattern.
    Clear {
        /// Glob over cache keys (`*` is the only wildcard), e.g. `/img/*`.
        #[arg(long)]
        pattern: Option<String>,
        #[command(flatten)]
        remote: Remote,
    },
    /// This node's cache figures: hits, misses, hit rate, memory, entries, Redis state.
    Stats {
        #[command(flatten)]
        remote: Remote,
    },
}

#[derive(Subcommand)]
enum MonitorCommand {
    /// Overall status and each component's.
    Health {
        #[command(flatten)]
        remote: Remote,
    },
}

#[derive(Subcommand)]
enum RulesCommand {
    /// The built-in rules as in force.
    List {
        #[command(flatten)]
        remote: Remote,
    },
    /// Turn a rule on.
    Enable {
        name: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// Turn a rule off.
    Disable {
        name: String,
        #[command(flatten)]
        remote: Remote,
    },
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Read a password from standard input (first line) and print its argon2id hash for
    /// `admin.auth.users[].password_hash`. Never give the password as an argument: it would be in `ps`.
    HashPassword,
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
    /// Requests inspected and blocked, by attack type, and the deny list, from a running daemon.
    Status {
        #[command(flatten)]
        remote: Remote,
    },
    /// Deny an address or prefix at once (XDP and the durable record).
    BlockIp {
        ip: String,
        /// How long, e.g. `1h` or `30m`; permanent without it.
        #[arg(long, value_parser = humantime::parse_duration)]
        duration: Option<std::time::Duration>,
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        remote: Remote,
    },
    /// Remove an address or prefix from the deny list.
    UnblockIp {
        ip: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// The WAF rules of a running daemon.
    Rules {
        #[command(subcommand)]
        command: RulesCommand,
    },
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
        #[command(flatten)]
        remote: Remote,
    },
    /// Renew the ACME certificate for DOMAIN now.
    Renew {
        domain: String,
        #[command(flatten)]
        remote: Remote,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Validate FILE (with RAMPART_ environment overrides applied); prints every problem with its key path and
    /// line, and exits 2 if there is any.
    Validate { file: PathBuf },
    /// One screen about a configuration: listeners, upstreams, routes, WAF, XDP, admin auth.
    Summary {
        #[arg(long, short, env = "RAMPART_CONFIG")]
        config: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
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
            if let Err(e) = rampart::telemetry::logging::init(&config) {
                eprintln!("rampart: {e}");
                return ExitCode::FAILURE;
            }
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
        Command::Config {
            command: ConfigCommand::Summary { config, json },
        } => match load(config.as_ref()) {
            Ok(c) => {
                let v = rampart::config::summary(&c);
                if json {
                    println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
                } else {
                    print!("{}", rampart::config::summary_text(&v));
                }
                ExitCode::SUCCESS
            }
            Err(e) => config_failure(&e),
        },
        Command::Login { username, remote } => {
            remote_call(async move { rampart::cli::commands::login(&remote.admin, &username, remote.json).await })
        }
        Command::Waf {
            command: WafCommand::Status { remote },
        } => remote_call(async move { rampart::cli::commands::waf_status(&remote.admin, remote.json).await }),
        Command::Waf {
            command:
                WafCommand::BlockIp {
                    ip,
                    duration,
                    reason,
                    remote,
                },
        } => remote_call(async move {
            rampart::cli::commands::block_ip(&remote.admin, &ip, duration, reason.as_deref(), remote.json).await
        }),
        Command::Waf {
            command: WafCommand::UnblockIp { ip, remote },
        } => remote_call(async move { rampart::cli::commands::unblock_ip(&remote.admin, &ip, remote.json).await }),
        Command::Waf {
            command: WafCommand::Rules { command },
        } => remote_call(async move {
            match command {
                RulesCommand::List { remote } => rampart::cli::commands::rules_list(&remote.admin, remote.json).await,
                RulesCommand::Enable { name, remote } => {
                    rampart::cli::commands::rule_set_enabled(&remote.admin, &name, true, remote.json).await
                }
                RulesCommand::Disable { name, remote } => {
                    rampart::cli::commands::rule_set_enabled(&remote.admin, &name, false, remote.json).await
                }
            }
        }),
        Command::Proxy {
            command: ProxyCommand::Status { remote },
        } => remote_call(async move { rampart::cli::commands::proxy_status(&remote.admin, remote.json).await }),
        Command::Cache {
            command: CacheCommand::Clear { pattern, remote },
        } => remote_call(async move {
            rampart::cli::commands::cache_clear(&remote.admin, pattern.as_deref(), remote.json).await
        }),
        Command::Cache {
            command: CacheCommand::Stats { remote },
        } => remote_call(async move { rampart::cli::commands::cache_stats(&remote.admin, remote.json).await }),
        Command::Monitor {
            command: MonitorCommand::Health { remote },
        } => remote_call(async move { rampart::cli::commands::monitor_health(&remote.admin, remote.json).await }),
        Command::Events { topics, count, remote } => {
            remote_call(async move { rampart::cli::events::tail(&remote.admin, &topics, count, remote.json).await })
        }
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "rampart", &mut std::io::stdout());
            ExitCode::SUCCESS
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
        Command::Admin {
            command: AdminCommand::HashPassword,
        } => {
            let mut line = String::new();
            if let Err(e) = std::io::stdin().read_line(&mut line) {
                eprintln!("rampart: cannot read the password from standard input: {e}");
                return ExitCode::FAILURE;
            }
            let password = line.trim_end_matches(['\r', '\n']);
            if password.is_empty() {
                eprintln!("rampart: the password on standard input is empty");
                return ExitCode::from(EXIT_CONFIG);
            }
            match rampart::admin::auth::password::hash(password) {
                Ok(h) => {
                    println!("{h}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("rampart: cannot hash the password: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Ssl {
            command: SslCommand::Status { remote },
        } => remote_call(async move { rampart::cli::ssl::status(&remote.admin, remote.json).await }),
        Command::Ssl {
            command: SslCommand::Renew { domain, remote },
        } => remote_call(async move { rampart::cli::ssl::renew(&remote.admin, &domain, remote.json).await }),
        Command::EchoUpstream { listen, name, delay_ms } => {
            let options = rampart::echo_upstream::EchoOptions {
                name,
                delay: std::time::Duration::from_millis(delay_ms),
                served: std::sync::Arc::default(),
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

/// An admin client command: its errors go to stderr without the daemon's log formatting.
fn remote_call(fut: impl std::future::Future<Output = anyhow::Result<()>>) -> ExitCode {
    match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => match rt.block_on(fut) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("rampart: {e:#}");
                ExitCode::FAILURE
            }
        },
        Err(e) => {
            eprintln!("rampart: cannot start the runtime: {e}");
            ExitCode::FAILURE
        }
    }
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
