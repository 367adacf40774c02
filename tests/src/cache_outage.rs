//! What the two cache-outage tests (one Redis server, a Redis Cluster) share: a mixed load on two nodes
//! that runs while the test kills Redis, and the state a node must report afterwards.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::http1::Client;
use crate::{curl, json, metric, scrape};

/// Four clients, two per node: half the requests on 40 hot keys (memory hits), half on new keys (misses,
/// which ask Redis), at most 20,000 requests each and 20 seconds in all.
pub struct CacheLoad {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
    workers: Vec<JoinHandle<Vec<String>>>,
}

impl CacheLoad {
    pub fn start(proxies: [SocketAddr; 2]) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let (ok, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let deadline = Instant::now() + Duration::from_secs(20);
        let workers = (0..4)
            .map(|w| {
                let (stop, ok, failed) = (stop.clone(), ok.clone(), failed.clone());
                let proxy = proxies[w % 2];
                std::thread::spawn(move || {
                    let mut c = Client::connect(proxy).unwrap();
                    let mut errors = Vec::new();
                    for i in 0..20_000u32 {
                        if stop.load(Ordering::Relaxed) || Instant::now() > deadline {
                            break;
                        }
                        let path = if i % 2 == 0 {
                            format!("/f/load/{}", (i * 7 + w as u32) % 40)
                        } else {
                            format!("/f/new/{w}/{i}")
                        };
                        match c.get(&path, &[]) {
                            Ok(r) if r.status == 200 => {
                                ok.fetch_add(1, Ordering::Relaxed);
                            }
                            Ok(r) => {
                                failed.fetch_add(1, Ordering::Relaxed);
                                errors.push(format!("{path}: status {}", r.status));
                            }
                            Err(e) => {
                                failed.fetch_add(1, Ordering::Relaxed);
                                errors.push(format!("{path}: {e}"));
                                let _ = c.reconnect();
                            }
                        }
                    }
                    errors
                })
            })
            .collect();
        Self {
            stop,
            ok,
            failed,
            workers,
        }
    }

    /// Requests answered with 200 so far.
    pub fn ok(&self) -> u64 {
        self.ok.load(Ordering::Relaxed)
    }

    /// Stops the clients; returns the requests answered with 200, those that failed, and what each failure was.
    pub fn finish(self) -> (u64, u64, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        let errors = self.workers.into_iter().flat_map(|w| w.join().unwrap()).collect();
        (
            self.ok.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
            errors,
        )
    }
}

/// A node whose Redis level is gone: `/health` degraded with `cache_redis` and the cache's Redis down, the
/// up gauge at 0, errors counted, and the warning in its log.
pub fn assert_redis_down(admin: &str, log: &str) {
    let health = json(&curl(None, "GET", &format!("{admin}/health"), None, 5));
    assert_eq!(health["status"], "degraded", "{health}");
    assert!(
        health["degraded"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d == "cache_redis"),
        "{health}"
    );
    assert_eq!(health["components"]["cache"]["redis"], "down", "{health}");
    let m = scrape(admin);
    assert_eq!(metric(&m, "rampart_cache_redis_up"), 0.0);
    assert!(metric(&m, "rampart_cache_redis_errors_total") >= 1.0);
    assert!(log.contains("Redis cache is unreachable"), "no warning in the log");
}
