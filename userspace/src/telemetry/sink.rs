//! Where log records go without holding up the data plane: a bounded queue drained by one writer thread into
//! standard output, standard error or a rotating file. A request never waits for a disk: when the queue is
//! full the record is dropped and counted (`rampart_log_records_dropped_total{log}`), the way nginx's buffered
//! access log gives way under load rather than stalling workers.

use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::time::{Duration, SystemTime};

use tracing_subscriber::fmt::MakeWriter;

use super::rotating::{Policy, RotatingFile};

/// Records queued per sink before new ones are dropped.
pub const QUEUE: usize = 16_384;
/// A queued record is written within this long even when no more come.
const FLUSH_EVERY: Duration = Duration::from_millis(200);

/// Where a sink writes.
pub enum Target {
    Stdout,
    Stderr,
    File(PathBuf, Policy),
}

impl Target {
    /// `stdout`, `stderr`, or a file path, as `logging.outputs` and the `file` keys name them.
    pub fn parse(name: &str, policy: Policy) -> Self {
        match name {
            "stdout" => Self::Stdout,
            "stderr" => Self::Stderr,
            path => Self::File(PathBuf::from(path), policy),
        }
    }
}

enum Msg {
    Record(Vec<u8>),
    Flush(SyncSender<()>),
}

/// One log's queue and writer thread.
pub struct Sink {
    name: &'static str,
    tx: SyncSender<Msg>,
    dropped: AtomicU64,
    written: Arc<AtomicU64>,
}

#[derive(Debug, thiserror::Error)]
#[error("the {log} log cannot be opened at {path}: {error}")]
pub struct SinkError {
    pub log: &'static str,
    pub path: String,
    pub error: io::Error,
}

enum Out {
    Stdout,
    Stderr,
    File(RotatingFile),
}

impl Out {
    fn write(&mut self, batch: &[u8], now: SystemTime) -> io::Result<()> {
        match self {
            // One locked write per batch of whole records: lines never interleave with the daemon's own log.
            Self::Stdout => io::stdout().lock().write_all(batch),
            Self::Stderr => io::stderr().lock().write_all(batch),
            Self::File(f) => f.write_records(batch, now),
        }
    }

    fn tick(&mut self, now: SystemTime) -> io::Result<()> {
        match self {
            Self::File(f) => f.tick(now),
            Self::Stdout => io::stdout().flush(),
            Self::Stderr => Ok(()),
        }
    }
}

impl Sink {
    /// Opens the target (a file at once, so a bad path is an error at start, naming it) and starts the
    /// writer thread.
    pub fn start(name: &'static str, target: Target) -> Result<Arc<Self>, SinkError> {
        let out = match target {
            Target::Stdout => Out::Stdout,
            Target::Stderr => Out::Stderr,
            Target::File(path, policy) => Out::File(RotatingFile::open(&path, policy).map_err(|error| SinkError {
                log: name,
                path: path.display().to_string(),
                error,
            })?),
        };
        let (tx, rx) = sync_channel(QUEUE);
        let written = Arc::new(AtomicU64::new(0));
        let counter = written.clone();
        std::thread::Builder::new()
            .name(format!("log-{name}"))
            .spawn(move || drain(name, rx, out, &counter))
            .map_err(|error| SinkError {
                log: name,
                path: "(writer thread)".into(),
                error,
            })?;
        Ok(Arc::new(Self {
            name,
            tx,
            dropped: AtomicU64::new(0),
            written,
        }))
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Queues one record (a whole line, newline included). Never blocks.
    pub fn send(&self, record: Vec<u8>) {
        match self.tx.try_send(Msg::Record(record)) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    pub fn written(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
    }

    /// Waits (at most `timeout`) until everything queued before this call is written: at shutdown, so the
    /// last requests' records are not lost.
    pub fn flush(&self, timeout: Duration) -> bool {
        let (ack, done) = sync_channel(1);
        if self.tx.send(Msg::Flush(ack)).is_err() {
            return false;
        }
        done.recv_timeout(timeout).is_ok()
    }
}

fn drain(name: &str, rx: Receiver<Msg>, mut out: Out, written: &AtomicU64) {
    let mut batch: Vec<u8> = Vec::with_capacity(64 * 1024);
    let mut failing = false;
    loop {
        let first = match rx.recv_timeout(FLUSH_EVERY) {
            Ok(m) => Some(m),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => return,
        };
        let mut acks = Vec::new();
        let mut n = 0u64;
        let mut take = |m: Msg, batch: &mut Vec<u8>| match m {
            Msg::Record(r) => {
                batch.extend_from_slice(&r);
                n += 1;
            }
            Msg::Flush(a) => acks.push(a),
        };
        if let Some(m) = first {
            take(m, &mut batch);
            // Whatever else is queued goes out in the same write, up to a bounded batch.
            while batch.len() < 1 << 20 {
                match rx.try_recv() {
                    Ok(m) => take(m, &mut batch),
                    Err(_) => break,
                }
            }
        }
        let now = SystemTime::now();
        let result = if batch.is_empty() {
            out.tick(now)
        } else {
            out.write(&batch, now)
        };
        match result {
            Ok(()) => {
                written.fetch_add(n, Ordering::Relaxed);
                if failing {
                    eprintln!("rampart: the {name} log is being written again");
                    failing = false;
                }
            }
            // Reported once per outage on stderr: logging the failure through the log would loop.
            Err(e) if !failing => {
                eprintln!("rampart: cannot write the {name} log: {e}; records are lost until it recovers");
                failing = true;
            }
            Err(_) => {}
        }
        batch.clear();
        for a in acks {
            let _ = a.send(());
        }
    }
}

/// A sink as a `tracing_subscriber` writer: each event is formatted into a buffer that is queued whole.
#[derive(Clone)]
pub struct SinkWriter(pub Arc<Sink>);

pub struct RecordBuf {
    sink: Arc<Sink>,
    buf: Vec<u8>,
}

impl Write for RecordBuf {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(b);
        Ok(b.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for RecordBuf {
    fn drop(&mut self) {
        if !self.buf.is_empty() {
            self.sink.send(std::mem::take(&mut self.buf));
        }
    }
}

impl<'a> MakeWriter<'a> for SinkWriter {
    type Writer = RecordBuf;

    fn make_writer(&'a self) -> RecordBuf {
        RecordBuf {
            sink: self.0.clone(),
            buf: Vec::with_capacity(256),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a test reports failure by panicking
mod tests {
    use super::*;
    use crate::config::schema::Rotation;

    #[test]
    fn records_reach_the_file_whole_and_in_order_and_a_flush_waits_for_them() {
        let dir = std::env::temp_dir().join(format!("rampart-sink-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("a.log");
        let policy = Policy {
            max_size: 1 << 20,
            rotation: Rotation::Size,
            retention: Duration::from_secs(86_400),
            max_files: 3,
        };
        let sink = Sink::start("test", Target::File(path.clone(), policy)).unwrap();
        for i in 0..1000 {
            sink.send(format!("record {i}\n").into_bytes());
        }
        assert!(sink.flush(Duration::from_secs(10)));
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 1000);
        assert!(lines.iter().enumerate().all(|(i, l)| *l == format!("record {i}")));
        assert_eq!(sink.written(), 1000);
        assert_eq!(sink.dropped(), 0);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_unwritable_path_is_an_error_naming_it() {
        let policy = Policy {
            max_size: 1024,
            rotation: Rotation::Size,
            retention: Duration::from_secs(1),
            max_files: 1,
        };
        let err = Sink::start("access", Target::File("/proc/rampart-no/such.log".into(), policy))
            .err()
            .unwrap();
        assert!(err.to_string().contains("/proc/rampart-no/such.log"), "{err}");
        assert!(err.to_string().contains("access"), "{err}");
    }
}
