//! The access log (`logging.access_log`: combined, common, json or a custom template) and the performance
//! log (`logging.performance_log`: requests slower than `slow_request_threshold`, with the time spent in the
//! WAF, waiting for the upstream and in the rest of the pipeline). One record per request, formatted on the
//! request's task and queued to a `Sink`; nothing here blocks.
//!
//! Both are written when the response head is ready: `duration` and `bytes` are the time to the response
//! head and the declared length of the body (`-` when it streams without one).

use std::fmt::Write as _;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use super::sink::Sink;
use crate::config::schema::AccessLogFormat;

/// What is known of a request when its response head is ready.
pub struct RequestRecord<'a> {
    pub time: SystemTime,
    pub method: &'a str,
    /// Path and query as the client sent them.
    pub target: &'a str,
    pub version: http::Version,
    pub host: Option<&'a str>,
    pub referer: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    pub content_type: Option<&'a str>,
    /// Only its scheme is ever written (`Bearer ***`).
    pub authorization: Option<&'a str>,
    pub outcome: Outcome<'a>,
}

/// The parts of a request the logs need, taken before the pipeline consumes it (reference-counted clones,
/// no copies of the text).
pub struct RequestHead {
    time: SystemTime,
    method: http::Method,
    uri: http::Uri,
    version: http::Version,
    host: Option<http::HeaderValue>,
    referer: Option<http::HeaderValue>,
    user_agent: Option<http::HeaderValue>,
    content_type: Option<http::HeaderValue>,
    authorization: Option<http::HeaderValue>,
}

/// How a request ended, as far as the logs care.
pub struct Outcome<'a> {
    pub client: IpAddr,
    pub status: u16,
    pub bytes: Option<u64>,
    pub upstream: Option<&'a str>,
    pub request_id: &'a str,
    pub total: Duration,
    pub waf: Duration,
    pub upstream_wait: Duration,
}

impl RequestHead {
    pub fn of<B>(req: &http::Request<B>) -> Self {
        let h = req.headers();
        let get = |name: http::header::HeaderName| h.get(name).cloned();
        Self {
            time: SystemTime::now(),
            method: req.method().clone(),
            uri: req.uri().clone(),
            version: req.version(),
            host: get(http::header::HOST),
            referer: get(http::header::REFERER),
            user_agent: get(http::header::USER_AGENT),
            content_type: get(http::header::CONTENT_TYPE),
            authorization: get(http::header::AUTHORIZATION),
        }
    }

    pub fn record<'a>(&'a self, o: Outcome<'a>) -> RequestRecord<'a> {
        // Header bytes that are not visible ASCII are logged as absent rather than guessed at.
        let text = |v: &'a Option<http::HeaderValue>| v.as_ref().and_then(|v| v.to_str().ok());
        RequestRecord {
            time: self.time,
            method: self.method.as_str(),
            target: self.uri.path_and_query().map_or("/", http::uri::PathAndQuery::as_str),
            version: self.version,
            host: text(&self.host).or_else(|| self.uri.authority().map(http::uri::Authority::as_str)),
            referer: text(&self.referer),
            user_agent: text(&self.user_agent),
            content_type: text(&self.content_type),
            authorization: text(&self.authorization),
            outcome: o,
        }
    }
}

/// A variable of a custom access-log template (nginx's names).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Var {
    RemoteAddr,
    RemoteUser,
    TimeLocal,
    TimeIso8601,
    Request,
    RequestMethod,
    RequestUri,
    Status,
    BodyBytesSent,
    HttpReferer,
    HttpUserAgent,
    Host,
    RequestTime,
    Upstream,
    RequestId,
}

const VARS: &[(&str, Var)] = &[
    ("remote_addr", Var::RemoteAddr),
    ("remote_user", Var::RemoteUser),
    ("time_local", Var::TimeLocal),
    ("time_iso8601", Var::TimeIso8601),
    ("request", Var::Request),
    ("request_method", Var::RequestMethod),
    ("request_uri", Var::RequestUri),
    ("status", Var::Status),
    ("body_bytes_sent", Var::BodyBytesSent),
    ("http_referer", Var::HttpReferer),
    ("http_user_agent", Var::HttpUserAgent),
    ("host", Var::Host),
    ("request_time", Var::RequestTime),
    ("upstream", Var::Upstream),
    ("request_id", Var::RequestId),
];

#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Text(String),
    Var(Var),
}

/// A parsed `custom_format`: text with `$name` or `${name}` variables.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template(Vec<Part>);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TemplateError {
    #[error("unknown variable `${0}` (known: {1})")]
    Unknown(String, String),
    #[error("`${{` without a closing `}}`")]
    Unclosed,
    #[error("the template is empty")]
    Empty,
}

const COMMON: &str = "$remote_addr - $remote_user [$time_local] \"$request\" $status $body_bytes_sent";
const COMBINED: &str = "$remote_addr - $remote_user [$time_local] \"$request\" $status $body_bytes_sent \
                        \"$http_referer\" \"$http_user_agent\"";

impl Template {
    pub fn parse(s: &str) -> Result<Self, TemplateError> {
        if s.trim().is_empty() {
            return Err(TemplateError::Empty);
        }
        let mut parts = Vec::new();
        let mut text = String::new();
        let mut rest = s;
        while let Some(i) = rest.find('$') {
            text.push_str(&rest[..i]);
            let after = &rest[i + 1..];
            let (name, tail) = if let Some(braced) = after.strip_prefix('{') {
                let end = braced.find('}').ok_or(TemplateError::Unclosed)?;
                (&braced[..end], &braced[end + 1..])
            } else {
                let end = after
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(after.len());
                (&after[..end], &after[end..])
            };
            if name.is_empty() {
                // A lone `$` is text.
                text.push('$');
                rest = after;
                continue;
            }
            let var = VARS.iter().find(|(n, _)| *n == name).map(|(_, v)| *v).ok_or_else(|| {
                TemplateError::Unknown(
                    name.to_owned(),
                    VARS.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", "),
                )
            })?;
            if !text.is_empty() {
                parts.push(Part::Text(std::mem::take(&mut text)));
            }
            parts.push(Part::Var(var));
            rest = tail;
        }
        text.push_str(rest);
        if !text.is_empty() {
            parts.push(Part::Text(text));
        }
        Ok(Self(parts))
    }

    fn render(&self, r: &RequestRecord<'_>, out: &mut String) {
        for p in &self.0 {
            match p {
                Part::Text(t) => out.push_str(t),
                Part::Var(v) => var(*v, r, out),
            }
        }
    }
}

/// Client-controlled text in a quoted field: `"`, `\` and control bytes escaped as `\xHH` (as nginx does),
/// so a request cannot forge a log line or break its quoting.
fn escaped(s: &str, out: &mut String) {
    for c in s.chars() {
        if c == '"' || c == '\\' || c.is_control() {
            let mut b = [0u8; 4];
            for byte in c.encode_utf8(&mut b).bytes() {
                let _ = write!(out, "\\x{byte:02X}");
            }
        } else {
            out.push(c);
        }
    }
}

fn or_dash(v: Option<&str>, out: &mut String) {
    match v {
        Some(s) if !s.is_empty() => escaped(s, out),
        _ => out.push('-'),
    }
}

fn version(v: http::Version) -> &'static str {
    match v {
        http::Version::HTTP_09 => "HTTP/0.9",
        http::Version::HTTP_10 => "HTTP/1.0",
        http::Version::HTTP_2 => "HTTP/2.0",
        http::Version::HTTP_3 => "HTTP/3.0",
        _ => "HTTP/1.1",
    }
}

/// A time as a UTC date and time (the epoch for a time before it or out of range).
pub(super) fn utc(t: SystemTime) -> time::OffsetDateTime {
    let secs = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    time::OffsetDateTime::from_unix_timestamp(i64::try_from(secs.as_secs()).unwrap_or(0))
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
        .replace_nanosecond(secs.subsec_nanos())
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// `02/Dec/2026:00:45:12 +0000` (the common log format's time; always UTC).
fn time_local(t: SystemTime, out: &mut String) {
    let d = utc(t);
    let month = MONTHS[usize::from(u8::from(d.month())).saturating_sub(1) % 12];
    let _ = write!(
        out,
        "{:02}/{month}/{:04}:{:02}:{:02}:{:02} +0000",
        d.day(),
        d.year(),
        d.hour(),
        d.minute(),
        d.second()
    );
}

fn iso8601(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0
}

fn var(v: Var, r: &RequestRecord<'_>, out: &mut String) {
    match v {
        Var::RemoteAddr => {
            let _ = write!(out, "{}", r.outcome.client);
        }
        Var::RemoteUser => out.push('-'),
        Var::TimeLocal => time_local(r.time, out),
        Var::TimeIso8601 => out.push_str(&iso8601(r.time)),
        Var::Request => {
            escaped(r.method, out);
            out.push(' ');
            escaped(r.target, out);
            out.push(' ');
            out.push_str(version(r.version));
        }
        Var::RequestMethod => escaped(r.method, out),
        Var::RequestUri => escaped(r.target, out),
        Var::Status => {
            let _ = write!(out, "{}", r.outcome.status);
        }
        Var::BodyBytesSent => match r.outcome.bytes {
            Some(n) => {
                let _ = write!(out, "{n}");
            }
            None => out.push('-'),
        },
        Var::HttpReferer => or_dash(r.referer, out),
        Var::HttpUserAgent => or_dash(r.user_agent, out),
        Var::Host => or_dash(r.host, out),
        Var::RequestTime => {
            let _ = write!(out, "{:.3}", r.outcome.total.as_secs_f64());
        }
        Var::Upstream => or_dash(r.outcome.upstream, out),
        Var::RequestId => escaped(r.outcome.request_id, out),
    }
}

/// How access-log lines are made.
#[derive(Clone, Debug)]
pub enum AccessFormat {
    Json,
    Template(Template),
}

impl AccessFormat {
    /// The configured format; `custom` needs a valid `custom_format`.
    pub fn new(format: AccessLogFormat, custom: Option<&str>) -> Result<Self, TemplateError> {
        Ok(match format {
            AccessLogFormat::Json => Self::Json,
            AccessLogFormat::Common => Self::Template(Template::parse(COMMON)?),
            AccessLogFormat::Combined => Self::Template(Template::parse(COMBINED)?),
            AccessLogFormat::Custom => Self::Template(Template::parse(custom.unwrap_or(""))?),
        })
    }

    pub fn line(&self, r: &RequestRecord<'_>) -> String {
        match self {
            Self::Template(t) => {
                let mut out = String::with_capacity(192);
                t.render(r, &mut out);
                out.push('\n');
                out
            }
            Self::Json => {
                let v = json!({
                    "timestamp": iso8601(r.time),
                    "event_type": "access",
                    "client_ip": r.outcome.client.to_string(),
                    "method": r.method,
                    "uri": r.target,
                    "protocol": version(r.version),
                    "host": r.host,
                    "status": r.outcome.status,
                    "bytes": r.outcome.bytes,
                    "duration_ms": ms(r.outcome.total),
                    "upstream": r.outcome.upstream,
                    "referer": r.referer,
                    "user_agent": r.user_agent,
                    "request_id": r.outcome.request_id,
                });
                let mut s = v.to_string();
                s.push('\n');
                s
            }
        }
    }
}

/// The performance log's record, shaped as the seed specification's "Performance Logging" example.
pub fn performance_line(r: &RequestRecord<'_>) -> String {
    let mut headers = serde_json::Map::new();
    if let Some(ua) = r.user_agent {
        headers.insert("user-agent".into(), Value::from(ua));
    }
    if let Some(ct) = r.content_type {
        headers.insert("content-type".into(), Value::from(ct));
    }
    if let Some(auth) = r.authorization {
        // Credentials never reach a log: the scheme alone says what kind was sent.
        let scheme = auth.split_whitespace().next().unwrap_or("");
        headers.insert(
            "authorization".into(),
            Value::from(format!("{scheme} ***").trim_start()),
        );
    }
    let rest = r
        .outcome
        .total
        .saturating_sub(r.outcome.waf)
        .saturating_sub(r.outcome.upstream_wait);
    let v = json!({
        "timestamp": iso8601(r.time),
        "level": "INFO",
        "event_type": "request_processed",
        "client_ip": r.outcome.client.to_string(),
        "request": { "method": r.method, "path": r.target, "headers": headers },
        "upstream": r.outcome.upstream,
        "request_id": r.outcome.request_id,
        "response": { "status_code": r.outcome.status, "size_bytes": r.outcome.bytes },
        "timing": {
            "total_ms": ms(r.outcome.total),
            "waf_processing_ms": ms(r.outcome.waf),
            "upstream_request_ms": ms(r.outcome.upstream_wait),
            "response_processing_ms": ms(rest),
        },
    });
    let mut s = v.to_string();
    s.push('\n');
    s
}

/// The access and performance logs in force, fixed at start.
#[derive(Clone, Default)]
pub struct RequestLogs {
    pub access: Option<(AccessFormat, Arc<Sink>)>,
    /// The sink and the threshold over which a request is written.
    pub performance: Option<(Duration, Arc<Sink>)>,
}

impl RequestLogs {
    pub fn enabled(&self) -> bool {
        self.access.is_some() || self.performance.is_some()
    }

    pub fn wanted(&self, total: Duration) -> bool {
        self.access.is_some() || self.performance.as_ref().is_some_and(|(t, _)| total >= *t)
    }

    pub fn write(&self, r: &RequestRecord<'_>) {
        if let Some((format, sink)) = &self.access {
            sink.send(format.line(r).into_bytes());
        }
        if let Some((threshold, sink)) = &self.performance
            && r.outcome.total >= *threshold
        {
            sink.send(performance_line(r).into_bytes());
        }
    }

    pub fn sinks(&self) -> Vec<Arc<Sink>> {
        self.access
            .iter()
            .map(|(_, s)| s.clone())
            .chain(self.performance.iter().map(|(_, s)| s.clone()))
            .collect()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a test reports failure by panicking
mod tests {
    use super::*;

    fn record() -> RequestRecord<'static> {
        RequestRecord {
            time: UNIX_EPOCH + Duration::from_millis(1_796_085_912_345),
            method: "GET",
            target: "/a?b=1",
            version: http::Version::HTTP_11,
            host: Some("www.example.com"),
            referer: None,
            user_agent: Some("curl/8 \"quoted\"\n"),
            content_type: None,
            authorization: Some("Bearer secret-token"),
            outcome: Outcome {
                client: "203.0.113.9".parse().unwrap(),
                status: 200,
                bytes: Some(512),
                upstream: Some("app"),
                request_id: "rid-1",
                total: Duration::from_micros(15_200),
                waf: Duration::from_micros(1_100),
                upstream_wait: Duration::from_micros(12_800),
            },
        }
    }

    #[test]
    fn common_and_combined_lines_match_the_apache_formats_and_escape_client_text() {
        let r = record();
        let common = AccessFormat::new(AccessLogFormat::Common, None).unwrap().line(&r);
        assert_eq!(
            common,
            "203.0.113.9 - - [01/Dec/2026:00:45:12 +0000] \"GET /a?b=1 HTTP/1.1\" 200 512\n"
        );
        let combined = AccessFormat::new(AccessLogFormat::Combined, None).unwrap().line(&r);
        assert_eq!(
            combined,
            "203.0.113.9 - - [01/Dec/2026:00:45:12 +0000] \"GET /a?b=1 HTTP/1.1\" 200 512 \"-\" \
             \"curl/8 \\x22quoted\\x22\\x0A\"\n"
        );
    }

    #[test]
    fn json_lines_carry_every_field() {
        let line = AccessFormat::new(AccessLogFormat::Json, None).unwrap().line(&record());
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["client_ip"], "203.0.113.9");
        assert_eq!(v["status"], 200);
        assert_eq!(v["uri"], "/a?b=1");
        assert_eq!(v["upstream"], "app");
        assert_eq!(v["duration_ms"], 15.2);
        assert_eq!(v["timestamp"], "2026-12-01T00:45:12.345Z");
    }

    #[test]
    fn custom_templates_know_nginx_variable_names_and_refuse_unknown_ones() {
        let f = AccessFormat::new(
            AccessLogFormat::Custom,
            Some("${remote_addr}|$status|$request_time|$upstream|$request_id|$ cost"),
        )
        .unwrap();
        assert_eq!(f.line(&record()), "203.0.113.9|200|0.015|app|rid-1|$ cost\n");
        let err = AccessFormat::new(AccessLogFormat::Custom, Some("$remote_addr $nope"))
            .err()
            .unwrap();
        assert!(matches!(&err, TemplateError::Unknown(n, _) if n == "nope"), "{err}");
        assert_eq!(
            AccessFormat::new(AccessLogFormat::Custom, None).err(),
            Some(TemplateError::Empty)
        );
        assert_eq!(Template::parse("${status").err(), Some(TemplateError::Unclosed));
    }

    #[test]
    fn the_performance_record_has_the_phase_timings_and_no_credentials() {
        let line = performance_line(&record());
        assert!(!line.contains("secret-token"), "{line}");
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["event_type"], "request_processed");
        assert_eq!(v["request"]["headers"]["authorization"], "Bearer ***");
        assert_eq!(v["timing"]["total_ms"], 15.2);
        assert_eq!(v["timing"]["waf_processing_ms"], 1.1);
        assert_eq!(v["timing"]["upstream_request_ms"], 12.8);
        assert_eq!(v["timing"]["response_processing_ms"], 1.3);
        assert_eq!(v["response"]["status_code"], 200);
    }
}
