//! Signals over time, per client address: request rate, how even the gaps between requests are, how many
//! different paths it asks for, and how many of its answers are client errors. A person's browser makes
//! bursts (a page and its resources) and pauses; a script makes a steady stream, often of new paths, and
//! finds many that do not exist.
//!
//! Memory is bounded: at most `max_tracked_clients` clients (the least recently seen are dropped first),
//! each forgotten after ten idle minutes, each a fixed 80-odd bytes.

use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use moka::sync::Cache;

use super::signal::{Reason, Reasons};

const RATE_WINDOW_NS: u64 = 10_000_000_000;
/// Requests in `RATE_WINDOW_NS` above which the rate alone is suspect: ten page loads of ten resources.
const HIGH_RATE: u32 = 100;
/// Counts start afresh after this long, so a client's past does not follow it for ever.
const EPOCH_NS: u64 = 300_000_000_000;
const MIN_GAPS: u32 = 20;
/// Coefficient of variation of the gaps below which timing is a timer's.
const REGULAR_CV: f64 = 0.1;
/// Gaps shorter than this are a browser's parallel fetches, not a schedule.
const MIN_REGULAR_GAP_NS: f64 = 50_000_000.0;
const MIN_REQUESTS_FOR_DIVERSITY: u32 = 30;
const CRAWL_DISTINCT_RATIO: f64 = 0.9;
const MIN_RESPONSES_FOR_ERRORS: u32 = 20;
const ERROR_RATIO: f64 = 0.5;
const IDLE: Duration = Duration::from_secs(600);

#[derive(Default)]
struct Client {
    epoch_start_ns: u64,
    window_start_ns: u64,
    window_count: u32,
    last_ns: u64,
    gaps: u32,
    mean_gap: f64,
    var_gap: f64,
    requests: u32,
    /// Paths seen, as a 256-bit linear-counting sketch.
    paths: [u64; 4],
    responses: u32,
    client_errors: u32,
}

impl Client {
    fn distinct_paths(&self) -> f64 {
        let bits: u32 = self.paths.iter().map(|w| w.count_ones()).sum();
        let m = 256.0;
        let empty = (m - f64::from(bits)).max(0.5);
        -m * (empty / m).ln()
    }

    fn request(&mut self, now: u64, path_hash: u64, out: &mut Reasons) {
        if self.epoch_start_ns == 0 || now.saturating_sub(self.epoch_start_ns) > EPOCH_NS {
            *self = Self {
                epoch_start_ns: now.max(1),
                window_start_ns: now,
                ..Self::default()
            };
        }
        if now.saturating_sub(self.window_start_ns) > RATE_WINDOW_NS {
            self.window_start_ns = now;
            self.window_count = 0;
        }
        self.window_count = self.window_count.saturating_add(1);
        if self.requests > 0 {
            // Exponentially weighted mean and variance of the gaps (weight 1/8): recent behaviour counts.
            let gap = now.saturating_sub(self.last_ns) as f64;
            let alpha = if self.gaps == 0 { 1.0 } else { 0.125 };
            let delta = gap - self.mean_gap;
            self.mean_gap += alpha * delta;
            self.var_gap = (1.0 - alpha) * (self.var_gap + alpha * delta * delta);
            self.gaps = self.gaps.saturating_add(1);
        }
        self.last_ns = now;
        self.requests = self.requests.saturating_add(1);
        let bit = (path_hash % 256) as usize;
        self.paths[bit / 64] |= 1 << (bit % 64);

        if self.window_count > HIGH_RATE {
            out.add(Reason::HighRate);
        }
        if self.gaps >= MIN_GAPS
            && self.mean_gap >= MIN_REGULAR_GAP_NS
            && self.var_gap.sqrt() / self.mean_gap < REGULAR_CV
        {
            out.add(Reason::RegularTiming);
        }
        if self.requests >= MIN_REQUESTS_FOR_DIVERSITY
            && self.distinct_paths() / f64::from(self.requests) >= CRAWL_DISTINCT_RATIO
        {
            out.add(Reason::Crawling);
        }
        if self.responses >= MIN_RESPONSES_FOR_ERRORS
            && f64::from(self.client_errors) / f64::from(self.responses) >= ERROR_RATIO
        {
            out.add(Reason::ErrorRatio);
        }
    }

    fn response(&mut self, status: u16) {
        self.responses = self.responses.saturating_add(1);
        // 403 and 429 are mostly Rampart's own answers: counting them would score a client for being scored.
        if (400..500).contains(&status) && status != 403 && status != 429 {
            self.client_errors = self.client_errors.saturating_add(1);
        }
    }
}

pub struct Behaviours {
    clients: Cache<IpAddr, Arc<Mutex<Client>>>,
    origin: Instant,
}

impl Behaviours {
    pub fn new(max_clients: u64) -> Self {
        Self {
            clients: Cache::builder().max_capacity(max_clients).time_to_idle(IDLE).build(),
            origin: Instant::now(),
        }
    }

    fn now_ns(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// Records a request and adds the reasons the client's behaviour gives so far.
    pub fn request(&self, client: IpAddr, path: &str, out: &mut Reasons) {
        self.request_at(client, path, self.now_ns(), out);
    }

    fn request_at(&self, client: IpAddr, path: &str, now: u64, out: &mut Reasons) {
        let c = self
            .clients
            .get_with(client, || Arc::new(Mutex::new(Client::default())));
        let hash = fnv1a(path.as_bytes());
        c.lock().unwrap_or_else(PoisonError::into_inner).request(now, hash, out);
    }

    /// Records the status of an answer to a client already seen.
    pub fn response(&self, client: IpAddr, status: u16) {
        if let Some(c) = self.clients.get(&client) {
            c.lock().unwrap_or_else(PoisonError::into_inner).response(status);
        }
    }

    pub fn tracked(&self) -> u64 {
        self.clients.run_pending_tasks();
        self.clients.entry_count()
    }
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    fn run(b: &Behaviours, ip: &str, requests: &[(u64, &str)]) -> Reasons {
        let ip: IpAddr = ip.parse().expect("ip");
        let mut last = Reasons::default();
        for (at, path) in requests {
            last = Reasons::default();
            b.request_at(ip, path, *at, &mut last);
        }
        last
    }

    #[test]
    fn a_timer_driven_crawler_is_regular_high_rate_and_crawling() {
        let b = Behaviours::new(100);
        let paths: Vec<String> = (0..150).map(|i| format!("/item/{i}")).collect();
        let reqs: Vec<(u64, &str)> = paths
            .iter()
            .enumerate()
            .map(|(i, p)| (1 + i as u64 * 60 * MS, p.as_str()))
            .collect();
        let r = run(&b, "192.0.2.1", &reqs);
        assert!(r.contains(Reason::RegularTiming), "{}", r.names());
        assert!(r.contains(Reason::HighRate), "{}", r.names());
        assert!(r.contains(Reason::Crawling), "{}", r.names());
    }

    #[test]
    fn a_person_browsing_in_bursts_raises_nothing() {
        let b = Behaviours::new(100);
        // Five page loads, each the page and nine resources within 30 ms, then 2–9 s of reading.
        let mut reqs = Vec::new();
        let mut t = MS;
        let pauses = [2_000, 7_500, 3_100, 9_000, 4_400];
        for (page, pause) in pauses.iter().enumerate() {
            reqs.push((t, if page % 2 == 0 { "/" } else { "/news" }));
            for r in 0..9u64 {
                t += 3 * MS + r * MS;
                reqs.push((
                    t,
                    ["/app.js", "/app.css", "/logo.png"][usize::try_from(r % 3).unwrap_or(0)],
                ));
            }
            t += pause * MS;
        }
        let r = run(&b, "192.0.2.2", &reqs);
        assert!(r.is_empty(), "{}", r.names());
    }

    #[test]
    fn mostly_not_found_answers_are_an_error_ratio() {
        let b = Behaviours::new(100);
        let ip: IpAddr = "192.0.2.3".parse().expect("ip");
        for i in 0..25u64 {
            b.request_at(ip, "/wp-login.php", 1 + i * 1_300 * MS, &mut Reasons::default());
            b.response(ip, if i % 5 == 0 { 200 } else { 404 });
        }
        let mut r = Reasons::default();
        b.request_at(ip, "/x", 40_000 * MS, &mut r);
        assert!(r.contains(Reason::ErrorRatio), "{}", r.names());
    }

    #[test]
    fn clients_are_capped() {
        let b = Behaviours::new(1000);
        for i in 0..5000u32 {
            let ip = IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            b.request(ip, "/", &mut Reasons::default());
        }
        assert!(b.tracked() <= 1000, "{} tracked", b.tracked());
    }
}
