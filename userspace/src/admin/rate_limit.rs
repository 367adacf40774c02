//! `admin.rate_limiting`: at most `requests_per_minute` admin requests per client address (or in all, with
//! `per_ip: false`) in each one-minute window; beyond that 429 with `Retry-After`. Health and the metrics
//! scrape are not counted, so monitoring never locks an operator out. The table of addresses is bounded.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};

use super::ApiError;
use crate::config::schema::AdminRateLimitConfig;

const WINDOW: Duration = Duration::from_secs(60);
/// Addresses tracked at most; when full, windows that have ended are dropped, and if none has, new addresses
/// share one overflow counter (so a flood of sources is limited together rather than not at all).
const MAX_TRACKED: usize = 10_000;

pub struct RateLimit {
    limit: u32,
    per_ip: bool,
    /// Paths never counted.
    exempt: Vec<String>,
    windows: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

impl RateLimit {
    /// `None` when rate limiting is off.
    pub fn new(config: &AdminRateLimitConfig, exempt: Vec<String>) -> Option<Self> {
        config.enabled.then(|| Self {
            limit: config.requests_per_minute.max(1),
            per_ip: config.per_ip,
            exempt,
            windows: Mutex::new(HashMap::new()),
        })
    }

    /// Counts one request from `ip`; `Err(wait)` when over the limit.
    pub fn check(&self, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        // Without per_ip every client shares the unspecified address's window.
        let mut key = if self.per_ip {
            ip
        } else {
            IpAddr::V4(Ipv4Addr::UNSPECIFIED)
        };
        let mut w = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        if w.len() >= MAX_TRACKED && !w.contains_key(&key) {
            w.retain(|_, (start, _)| now.duration_since(*start) < WINDOW);
            if w.len() >= MAX_TRACKED {
                key = IpAddr::V4(Ipv4Addr::BROADCAST);
            }
        }
        let (start, count) = w.entry(key).or_insert((now, 0));
        if now.duration_since(*start) >= WINDOW {
            *start = now;
            *count = 0;
        }
        if *count >= self.limit {
            return Err(WINDOW.saturating_sub(now.duration_since(*start)));
        }
        *count += 1;
        Ok(())
    }
}

pub async fn limit(State(rl): State<Arc<RateLimit>>, req: Request, next: Next) -> Response {
    if rl.exempt.iter().any(|p| p == req.uri().path()) {
        return next.run(req).await;
    }
    let ip = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip());
    match rl.check(ip, Instant::now()) {
        Ok(()) => next.run(req).await,
        Err(wait) => {
            let mut r = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                format!("admin API rate limit ({} requests per minute) exceeded", rl.limit),
            )
            .into_response();
            if let Ok(v) = HeaderValue::from_str(&wait.as_secs().max(1).to_string()) {
                r.headers_mut().insert(header::RETRY_AFTER, v);
            }
            r
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rl(per_ip: bool) -> RateLimit {
        let c = AdminRateLimitConfig {
            enabled: true,
            requests_per_minute: 2,
            per_ip,
        };
        RateLimit::new(&c, Vec::new()).unwrap_or_else(|| unreachable!())
    }

    #[test]
    fn each_address_gets_its_own_window_and_it_resets() {
        let r = rl(true);
        let (a, b) = (
            "10.0.0.1".parse().unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            IpAddr::V4(Ipv4Addr::LOCALHOST),
        );
        let t = Instant::now();
        assert!(r.check(a, t).is_ok() && r.check(a, t).is_ok());
        assert!(r.check(a, t).is_err());
        assert!(r.check(b, t).is_ok(), "another address is not limited");
        assert!(r.check(a, t + WINDOW).is_ok(), "a new window");
    }

    #[test]
    fn without_per_ip_all_addresses_share_one_window() {
        let r = rl(false);
        let t = Instant::now();
        assert!(r.check(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), t).is_ok());
        assert!(r.check(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), t).is_ok());
        assert!(r.check(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 3)), t).is_err());
    }
}
