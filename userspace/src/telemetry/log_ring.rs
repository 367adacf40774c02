//! The most recent log records kept in memory for `GET /admin/system/logs`: a `tracing` layer that copies
//! each event (time, level, target, message and fields) into a bounded ring. Oldest records go first; each
//! field value is cut to a fixed length, so the ring's memory is bounded whatever is logged.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::sync::{Mutex, OnceLock};
use std::time::SystemTime;

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::Context;

/// Records kept.
pub const CAPACITY: usize = 2000;
/// Longest field value kept, in bytes.
const MAX_FIELD: usize = 1024;

pub struct Record {
    pub time: SystemTime,
    pub level: Level,
    pub target: &'static str,
    pub fields: Map<String, Value>,
}

pub struct LogRing {
    records: Mutex<VecDeque<Record>>,
}

/// The process's ring, created by the first `logging::init`.
pub fn global() -> &'static LogRing {
    static RING: OnceLock<LogRing> = OnceLock::new();
    RING.get_or_init(|| LogRing {
        records: Mutex::new(VecDeque::with_capacity(CAPACITY)),
    })
}

/// `Level` has "more verbose is greater" ordering (TRACE > ERROR); this ranks by severity instead.
pub fn severity(l: Level) -> u8 {
    match l {
        Level::TRACE => 0,
        Level::DEBUG => 1,
        Level::INFO => 2,
        Level::WARN => 3,
        Level::ERROR => 4,
    }
}

impl LogRing {
    pub fn push(&self, r: Record) {
        let mut q = self.records.lock().unwrap_or_else(|p| p.into_inner());
        if q.len() >= CAPACITY {
            q.pop_front();
        }
        q.push_back(r);
    }

    /// The newest `limit` records at or above `min` severity and not before `since`, oldest first.
    pub fn query(&self, min: Level, since: Option<SystemTime>, limit: usize) -> Vec<Value> {
        let q = self.records.lock().unwrap_or_else(|p| p.into_inner());
        let mut out: Vec<Value> = q
            .iter()
            .rev()
            .filter(|r| severity(r.level) >= severity(min) && since.is_none_or(|s| r.time >= s))
            .take(limit)
            .map(|r| {
                let mut m = Map::new();
                m.insert(
                    "timestamp".into(),
                    Value::String(humantime::format_rfc3339_millis(r.time).to_string()),
                );
                m.insert("level".into(), Value::String(r.level.as_str().into()));
                m.insert("target".into(), Value::String(r.target.into()));
                for (k, v) in &r.fields {
                    m.insert(k.clone(), v.clone());
                }
                Value::Object(m)
            })
            .collect();
        out.reverse();
        out
    }
}

struct Fields(Map<String, Value>);

fn cut(mut s: String) -> String {
    if s.len() > MAX_FIELD {
        let mut end = MAX_FIELD;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push('…');
    }
    s
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let mut s = String::new();
        let _ = write!(s, "{value:?}");
        self.0.insert(field.name().into(), Value::String(cut(s)));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().into(), Value::String(cut(value.to_owned())));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().into(), Value::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().into(), Value::from(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().into(), Value::from(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().into(), Value::from(value));
    }
}

/// The layer feeding [`global`].
pub struct RingLayer;

impl<S: Subscriber> Layer<S> for RingLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut f = Fields(Map::new());
        event.record(&mut f);
        global().push(Record {
            time: SystemTime::now(),
            level: *event.metadata().level(),
            target: event.metadata().target(),
            fields: f.0,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(level: Level, msg: &str) -> Record {
        let mut fields = Map::new();
        fields.insert("message".into(), Value::String(msg.into()));
        Record {
            time: SystemTime::now(),
            level,
            target: "t",
            fields,
        }
    }

    #[test]
    fn the_ring_is_bounded_and_filters_by_level_and_limit() {
        let ring = LogRing {
            records: Mutex::new(VecDeque::new()),
        };
        for i in 0..CAPACITY + 10 {
            ring.push(rec(if i % 2 == 0 { Level::INFO } else { Level::WARN }, &i.to_string()));
        }
        assert_eq!(ring.query(Level::TRACE, None, usize::MAX).len(), CAPACITY);
        let warn = ring.query(Level::WARN, None, 3);
        assert_eq!(warn.len(), 3);
        assert!(warn.iter().all(|v| v["level"] == "WARN"));
        assert_eq!(warn[2]["message"], (CAPACITY + 9).to_string(), "newest last");
        let future = SystemTime::now() + std::time::Duration::from_secs(60);
        assert!(ring.query(Level::TRACE, Some(future), 10).is_empty());
    }
}
