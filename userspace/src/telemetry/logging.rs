//! The daemon's log: `tracing` with JSON (one object per line) or human-readable text, per `logging`, plus a
//! copy of every record into the in-memory ring that `GET /admin/system/logs` reads.

use tracing_subscriber::layer::{Layered, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

use crate::config::schema::{Config, LogFormat};

type Filtered = Layered<EnvFilter, Registry>;

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
    let base = tracing_subscriber::fmt::layer().with_target(true).with_ansi(ansi);
    let fmt: Box<dyn Layer<Filtered> + Send + Sync> = match (config.logging.format, to_stderr) {
        (LogFormat::Text, false) => base.boxed(),
        (LogFormat::Text, true) => base.with_writer(std::io::stderr).boxed(),
        (LogFormat::Json | LogFormat::Structured, false) => base.json().flatten_event(true).boxed(),
        (LogFormat::Json | LogFormat::Structured, true) => {
            base.json().flatten_event(true).with_writer(std::io::stderr).boxed()
        }
    };
    // try_init: a second call (tests starting the daemon in-process) keeps the first subscriber.
    let result = tracing_subscriber::registry()
        .with(filter)
        .with(fmt)
        .with(super::log_ring::RingLayer)
        .try_init();
    drop(result);
}
