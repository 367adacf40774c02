//! The daemon's log: `tracing` with JSON (one object per line) or human-readable text, per `logging`.

use tracing_subscriber::EnvFilter;

use crate::config::schema::{Config, LogFormat};

/// Installs the global subscriber. `RUST_LOG`, when set, overrides the configured level (for debugging).
pub fn init(config: &Config) {
    let level = if config.debug {
        "debug"
    } else {
        config.effective_log_level().as_str()
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(format!("warn,rampart={level}")));
    let to_stderr = config.logging.outputs.iter().any(|o| o == "stderr");
    // Colour codes only for a terminal; in a file or journald they are noise.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(true)
        .with_ansi(ansi);
    // try_init: a second call (tests starting the daemon in-process) keeps the first subscriber.
    let result = match (config.logging.format, to_stderr) {
        (LogFormat::Text, false) => builder.try_init(),
        (LogFormat::Text, true) => builder.with_writer(std::io::stderr).try_init(),
        (LogFormat::Json | LogFormat::Structured, false) => builder.json().flatten_event(true).try_init(),
        (LogFormat::Json | LogFormat::Structured, true) => builder
            .json()
            .flatten_event(true)
            .with_writer(std::io::stderr)
            .try_init(),
    };
    drop(result);
}
