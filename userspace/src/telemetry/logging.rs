//! The daemon's logs, per `logging`: its own log (`tracing`, JSON or text) to each of `outputs` (stdout,
//! stderr, files), the security event log (every record with an `event_type`: WAF blocks, XDP drops,
//! auto-bans) to its own file when `security_log.file` is set, and the sinks of the access and performance
//! logs (`request_logs`). Files rotate by size and day or week and keep `retention_days` (`rotating`); every
//! file is written by its own thread through a bounded queue (`sink`), so no request waits for a disk. Every
//! record is also copied into the in-memory ring that `GET /admin/system/logs` reads.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus::{IntCounterVec, Opts};
use tracing::Metadata;
use tracing_subscriber::filter::{FilterFn, filter_fn};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

use super::request_log::{AccessFormat, RequestLogs};
use super::rotating::Policy;
use super::sink::{Sink, SinkError, SinkWriter, Target};
use crate::config::schema::{Config, LogFormat, Rotation};
use crate::config::types::ByteSize;

/// Every sink started, for flushing at shutdown and for the drop counters.
static SINKS: Mutex<Vec<Arc<Sink>>> = Mutex::new(Vec::new());

fn keep(sink: Arc<Sink>) -> Arc<Sink> {
    SINKS.lock().unwrap_or_else(|p| p.into_inner()).push(sink.clone());
    sink
}

fn sinks() -> Vec<Arc<Sink>> {
    SINKS.lock().unwrap_or_else(|p| p.into_inner()).clone()
}

/// Writes out what every log has queued (bounded by `timeout` per log), so a stopping daemon loses nothing.
pub fn flush_all(timeout: Duration) {
    for s in sinks() {
        if !s.flush(timeout) {
            eprintln!("rampart: the {} log did not flush within {timeout:?}", s.name());
        }
    }
}

pub fn policy(max_size: ByteSize, rotation: Rotation, retention_days: u32, max_files: u32) -> Policy {
    Policy {
        max_size: max_size.get().max(4096),
        rotation,
        retention: Duration::from_secs(u64::from(retention_days) * 86_400),
        max_files: max_files as usize,
    }
}

/// A security event is any record with an `event_type` field (known from the call site, no formatting).
fn is_security_event(m: &Metadata<'_>) -> bool {
    m.fields().field("event_type").is_some()
}

type Boxed = Box<dyn Layer<Registry> + Send + Sync>;

fn fmt_layer<W>(format: LogFormat, writer: W, ansi: bool) -> Box<dyn Layer<Registry> + Send + Sync>
where
    W: for<'a> tracing_subscriber::fmt::MakeWriter<'a> + Send + Sync + 'static,
{
    let base = tracing_subscriber::fmt::layer()
        .with_target(true)
        .with_ansi(ansi)
        .with_writer(writer);
    match format {
        LogFormat::Text => base.boxed(),
        LogFormat::Json | LogFormat::Structured => base.json().flatten_event(true).boxed(),
    }
}

/// Installs the global subscriber. `RUST_LOG`, when set, overrides the configured level (for debugging). A
/// log file that cannot be opened is an error naming it.
pub fn init(config: &Config) -> Result<(), SinkError> {
    let level = if config.debug {
        "debug"
    } else {
        config.effective_log_level().as_str()
    };
    let filter =
        || EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(format!("warn,rampart={level}")));
    let l = &config.logging;
    let sec = &l.security_log;
    // Security events go to their own file when one is set, and nowhere when the log is off.
    let main_takes_security = sec.enabled && sec.file.is_none();
    let main_filter = move || -> FilterFn<fn(&Metadata<'_>) -> bool> {
        if main_takes_security {
            filter_fn(|_| true)
        } else {
            filter_fn(|m| !is_security_event(m))
        }
    };
    let main_policy = policy(sec.max_size, sec.rotation, sec.retention_days, sec.max_files);
    let mut layers: Vec<Boxed> = Vec::new();
    for out in &l.outputs {
        let layer = match Target::parse(out, main_policy) {
            // Colour codes only for a terminal; in a file or journald they are noise.
            Target::Stdout => fmt_layer(
                l.format,
                std::io::stdout,
                std::io::IsTerminal::is_terminal(&std::io::stdout()),
            ),
            Target::Stderr => fmt_layer(
                l.format,
                std::io::stderr,
                std::io::IsTerminal::is_terminal(&std::io::stderr()),
            ),
            file => fmt_layer(l.format, SinkWriter(keep(Sink::start("daemon", file)?)), false),
        };
        layers.push(layer.with_filter(main_filter()).with_filter(filter()).boxed());
    }
    if sec.enabled
        && let Some(file) = &sec.file
    {
        let sink = keep(Sink::start(
            "security",
            Target::File(
                file.clone(),
                policy(sec.max_size, sec.rotation, sec.retention_days, sec.max_files),
            ),
        )?);
        // Always JSON: these records are for machines (SIEM ingestion) first.
        layers.push(
            fmt_layer(LogFormat::Json, SinkWriter(sink), false)
                .with_filter(filter_fn(is_security_event))
                .with_filter(filter())
                .boxed(),
        );
    }
    layers.push(super::log_ring::RingLayer.with_filter(filter()).boxed());
    // try_init: a second call (tests starting the daemon in-process) keeps the first subscriber.
    drop(tracing_subscriber::registry().with(layers).try_init());
    Ok(())
}

/// The access and performance logs as configured; their files are opened here (an error names the path).
pub fn request_logs(config: &Config) -> Result<RequestLogs, anyhow::Error> {
    let l = &config.logging;
    let mut logs = RequestLogs::default();
    let main = l.outputs.first().map_or("stdout", String::as_str);
    if l.access_log.enabled {
        let a = &l.access_log;
        let format = AccessFormat::new(a.format, a.custom_format.as_deref())
            .map_err(|e| anyhow::anyhow!("logging.access_log.custom_format: {e}"))?;
        let p = policy(a.max_size, a.rotation, a.retention_days, a.max_files);
        let target = match &a.file {
            Some(f) => Target::File(f.clone(), p),
            None => Target::parse(main, p),
        };
        logs.access = Some((format, keep(Sink::start("access", target)?)));
    }
    if l.performance_log.enabled {
        let pl = &l.performance_log;
        let p = policy(pl.max_size, pl.rotation, pl.retention_days, pl.max_files);
        let target = match &pl.file {
            Some(f) => Target::File(f.clone(), p),
            None => Target::parse(main, p),
        };
        logs.performance = Some((
            Duration::from_millis(pl.slow_request_threshold),
            keep(Sink::start("performance", target)?),
        ));
    }
    Ok(logs)
}

/// `rampart_log_records_total{log}` and `rampart_log_records_dropped_total{log}` (records a full queue made
/// the daemon give up rather than wait), read from the sinks at scrape time.
pub struct LogCollector {
    written: IntCounterVec,
    dropped: IntCounterVec,
}

impl LogCollector {
    pub fn new() -> prometheus::Result<Self> {
        Ok(Self {
            written: IntCounterVec::new(
                Opts::new(
                    "rampart_log_records_total",
                    "Records written to each log file or stream.",
                ),
                &["log"],
            )?,
            dropped: IntCounterVec::new(
                Opts::new(
                    "rampart_log_records_dropped_total",
                    "Records dropped because the log's queue was full.",
                ),
                &["log"],
            )?,
        })
    }
}

impl prometheus::core::Collector for LogCollector {
    fn desc(&self) -> Vec<&prometheus::core::Desc> {
        let mut d = self.written.desc();
        d.extend(self.dropped.desc());
        d
    }

    fn collect(&self) -> Vec<prometheus::proto::MetricFamily> {
        for s in sinks() {
            for (vec, now) in [(&self.written, s.written()), (&self.dropped, s.dropped())] {
                let c = vec.with_label_values(&[s.name()]);
                c.inc_by(now.saturating_sub(c.get()));
            }
        }
        let mut out = self.written.collect();
        out.extend(self.dropped.collect());
        out
    }
}
