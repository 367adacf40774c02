//! `rampart waf test FILE.jsonl`: replays a request corpus (the format of `../shared/corpus/`) through the
//! inspection engine offline — no sockets, no upstream — and reports per class the detection rate (attacks
//! blocked) or false-positive rate (benign requests blocked), the slowest requests, and last the line
//! `detection=XX.X% false_positive=YY.Y%` that the corpus's own replayer prints.
//!
//! Requests are given the engine exactly as the proxy would: headers as a header map (a header the HTTP
//! parser would refuse makes the request *rejected*, as a 400 would), `Host` and `Content-Length` added as
//! the replayer adds them, bodies over `waf.body_inspection_limit` handled by `waf.body_overflow`.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use base64::Engine as _;
use http::{HeaderMap, HeaderName, HeaderValue};
use serde::Deserialize;

use crate::config::schema::{BodyOverflow, WafConfig};
use crate::waf::engine::Verdict;
use crate::waf::{Engine, Overrides, RequestView};

#[derive(Deserialize)]
struct Record {
    id: String,
    #[serde(default)]
    class: String,
    #[serde(default)]
    attack: bool,
    #[serde(default = "get")]
    method: String,
    #[serde(default)]
    path: String,
    #[serde(default)]
    query: String,
    #[serde(default)]
    headers: Vec<(String, String)>,
    #[serde(default)]
    body: String,
    #[serde(default)]
    body_b64: bool,
}

fn get() -> String {
    "GET".into()
}

/// Which part of the corpus to replay: all of it, or one side of a fixed 70/30 split by id (to tune on one
/// part and check on the other).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Subset {
    All,
    Dev,
    Holdout,
}

fn in_subset(id: &str, subset: Subset) -> bool {
    // FNV-1a: stable across runs and platforms.
    let h = id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    match subset {
        Subset::All => true,
        Subset::Dev => h % 10 < 7,
        Subset::Holdout => h % 10 >= 7,
    }
}

#[derive(Default)]
struct ClassCount {
    attack: bool,
    n: u64,
    blocked: u64,
    rejected: u64,
}

pub struct Options<'a> {
    pub corpus: &'a Path,
    pub waf: WafConfig,
    pub subset: Subset,
    /// Per-request results (JSON lines), for looking at misses.
    pub out: Option<&'a Path>,
    pub slowest: usize,
}

enum Outcome {
    Blocked(String),
    Passed(String),
    Rejected(&'static str),
}

/// Runs the replay and writes the report to `w`.
pub fn run(o: &Options<'_>, w: &mut dyn Write) -> anyhow::Result<()> {
    let engine = Engine::build(&o.waf, &Overrides::new()).context("building the WAF engine")?;
    let file = std::fs::File::open(o.corpus).with_context(|| format!("opening {}", o.corpus.display()))?;
    let mut out = match o.out {
        Some(p) => Some(std::io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?,
        )),
        None => None,
    };
    let mut classes: BTreeMap<(bool, String), ClassCount> = BTreeMap::new();
    let mut times: Vec<(Duration, String, String)> = Vec::new();
    let mut total = Duration::ZERO;
    for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.with_context(|| format!("reading line {}", n + 1))?;
        if line.trim().is_empty() {
            continue;
        }
        let rec: Record = serde_json::from_str(&line)
            .with_context(|| format!("{}:{}: not a corpus record", o.corpus.display(), n + 1))?;
        if !in_subset(&rec.id, o.subset) {
            continue;
        }
        let started = Instant::now();
        let outcome = replay(&engine, &rec);
        let took = started.elapsed();
        total += took;
        times.push((took, rec.id.clone(), rec.class.clone()));
        let c = classes.entry((!rec.attack, rec.class.clone())).or_default();
        c.attack = rec.attack;
        c.n += 1;
        let (verdict, detail) = match &outcome {
            Outcome::Blocked(d) => {
                c.blocked += 1;
                ("blocked", d.as_str())
            }
            Outcome::Passed(d) => ("passed", d.as_str()),
            Outcome::Rejected(why) => {
                c.rejected += 1;
                ("rejected", *why)
            }
        };
        if let Some(out) = out.as_mut() {
            let row = serde_json::json!({
                "id": rec.id, "class": rec.class, "attack": rec.attack, "verdict": verdict,
                "detail": detail, "micros": took.as_micros() as u64,
            });
            writeln!(out, "{row}")?;
        }
    }
    report(w, &classes, &mut times, total, o.slowest)
}

fn replay(engine: &Engine, rec: &Record) -> Outcome {
    let body: Vec<u8> = if rec.body_b64 {
        match base64::engine::general_purpose::STANDARD.decode(rec.body.as_bytes()) {
            Ok(b) => b,
            Err(_) => return Outcome::Rejected("undecodable base64 body"),
        }
    } else {
        rec.body.clone().into_bytes()
    };
    let mut headers = HeaderMap::new();
    let mut has_host = false;
    let mut has_length = false;
    for (k, v) in &rec.headers {
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::from_bytes(v.as_bytes()),
        ) else {
            return Outcome::Rejected("header the HTTP parser refuses");
        };
        has_host |= name == http::header::HOST;
        has_length |= name == http::header::CONTENT_LENGTH || name == http::header::TRANSFER_ENCODING;
        headers.append(name, value);
    }
    if !has_host {
        headers.insert(http::header::HOST, HeaderValue::from_static("localhost"));
    }
    if !body.is_empty() && !has_length {
        headers.insert(http::header::CONTENT_LENGTH, HeaderValue::from(body.len()));
    }
    let limit = engine.body_limit();
    let truncated = body.len() > limit;
    if truncated && engine.body_overflow() == BodyOverflow::Block {
        return match engine.overflow_verdict(body.len() as u64) {
            Verdict::Block(f) => Outcome::Blocked(format!("{} {}", f.family, f.rule)),
            other => Outcome::Passed(other.action().into()),
        };
    }
    let view = RequestView {
        method: &rec.method,
        path: &rec.path,
        query: &rec.query,
        headers: &headers,
        body: &body[..body.len().min(limit)],
        body_truncated: truncated,
        client: IpAddr::V4(Ipv4Addr::LOCALHOST),
        route: None,
    };
    let i = engine.inspect(&view);
    let detail = |f: &crate::waf::engine::Finding| {
        format!(
            "{} {} {:.2} {}:{} {:?}",
            f.family,
            f.rule,
            f.confidence,
            f.location.as_str(),
            f.name,
            f.excerpt
        )
    };
    match &i.verdict {
        Verdict::Block(f) => Outcome::Blocked(detail(f)),
        // A challenge stops the request as a block does (for the corpus, which has no browser).
        Verdict::Challenge(f) => Outcome::Blocked(detail(f)),
        Verdict::Log(f) => Outcome::Passed(format!("logged: {}", detail(f))),
        Verdict::Allow => Outcome::Passed(
            i.findings
                .iter()
                .max_by(|a, b| a.confidence.total_cmp(&b.confidence))
                .map(|f| format!("below threshold: {}", detail(f)))
                .unwrap_or_default(),
        ),
    }
}

fn pct(a: u64, b: u64) -> f64 {
    if b == 0 { 0.0 } else { 100.0 * a as f64 / b as f64 }
}

fn report(
    w: &mut dyn Write,
    classes: &BTreeMap<(bool, String), ClassCount>,
    times: &mut [(Duration, String, String)],
    total: Duration,
    slowest: usize,
) -> anyhow::Result<()> {
    writeln!(
        w,
        "{:<12} {:>6} {:>7} {:>8} {:>7}  rate",
        "class", "kind", "n", "blocked", "rejected"
    )?;
    let (mut att, mut att_blocked, mut ben, mut ben_blocked) = (0, 0, 0, 0);
    for ((_, class), c) in classes {
        let (kind, label) = if c.attack {
            ("attack", "detection")
        } else {
            ("benign", "false positive")
        };
        writeln!(
            w,
            "{class:<12} {kind:>6} {:>7} {:>8} {:>7}  {label} {:.1}%",
            c.n,
            c.blocked,
            c.rejected,
            pct(c.blocked, c.n)
        )?;
        if c.attack {
            att += c.n;
            att_blocked += c.blocked;
        } else {
            ben += c.n;
            ben_blocked += c.blocked;
        }
    }
    let n = times.len().max(1) as u32;
    times.sort_by_key(|t| std::cmp::Reverse(t.0));
    let median = {
        let mut sorted: Vec<Duration> = times.iter().map(|t| t.0).collect();
        sorted.sort();
        sorted.get(sorted.len() / 2).copied().unwrap_or_default()
    };
    writeln!(w)?;
    writeln!(
        w,
        "inspection time: mean {:.1} µs, median {:.1} µs, total {:.2} s for {} requests",
        (total / n).as_secs_f64() * 1e6,
        median.as_secs_f64() * 1e6,
        total.as_secs_f64(),
        times.len()
    )?;
    writeln!(w, "slowest requests:")?;
    for (d, id, class) in times.iter().take(slowest) {
        writeln!(w, "  {:>9.1} µs  {class:<10} {id}", d.as_secs_f64() * 1e6)?;
    }
    writeln!(
        w,
        "detection={:.1}% false_positive={:.1}%",
        pct(att_blocked, att),
        pct(ben_blocked, ben)
    )?;
    Ok(())
}

/// `rampart waf check`: one request built from the command line, inspected, every finding printed.
pub fn check(
    waf: &WafConfig,
    method: &str,
    target: &str,
    headers: &[String],
    body: &str,
    w: &mut dyn Write,
) -> anyhow::Result<()> {
    let engine = Engine::build(waf, &Overrides::new()).context("building the WAF engine")?;
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut map = HeaderMap::new();
    for h in headers {
        let (k, v) = h.split_once(':').context("a header is NAME: VALUE")?;
        map.append(
            HeaderName::from_bytes(k.trim().as_bytes())?,
            HeaderValue::from_str(v.trim())?,
        );
    }
    let view = RequestView {
        method,
        path,
        query,
        headers: &map,
        body: body.as_bytes(),
        body_truncated: false,
        client: IpAddr::V4(Ipv4Addr::LOCALHOST),
        route: None,
    };
    let i = engine.inspect(&view);
    for f in &i.findings {
        writeln!(
            w,
            "{:<22} {:.2} {:<32} {}:{} {:?}",
            f.family.name(),
            f.confidence,
            f.rule,
            f.location.as_str(),
            f.name,
            f.excerpt
        )?;
    }
    writeln!(w, "anomaly score {:.2}, {} values", i.anomaly_score, i.targets)?;
    writeln!(w, "verdict: {}", i.verdict.action())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_split_is_stable_and_roughly_seventy_thirty() {
        let dev = (0..1000).filter(|i| in_subset(&format!("id-{i}"), Subset::Dev)).count();
        assert!((600..800).contains(&dev), "{dev}");
        assert!(in_subset("x", Subset::Dev) != in_subset("x", Subset::Holdout));
    }
}
