//! Upstream pools: the servers of each `proxy.upstreams` entry, their live state, and the balancer that picks
//! one per request. A pool survives a configuration reload: servers whose settings did not change keep their
//! state (in-flight counts, latency, breaker, health), so a reload never resets what was learned about them.

pub mod balance;
pub mod conn_pool;
pub mod h1;
pub mod health;
mod server;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

pub use balance::{Algorithm, Balancer, Candidate, HashMethod};
pub use server::{Outcome, Server};

use crate::config::schema::{self, HealthCheckConfig, UpstreamConfig};

pub struct UpstreamPool {
    pub name: String,
    pub algorithm: schema::Algorithm,
    pub servers: Vec<Arc<Server>>,
    pub health_check: HealthCheckConfig,
    balancer: Balancer,
}

impl UpstreamPool {
    /// Builds the pool for `config`, reusing the live state of servers from `previous` that kept their settings.
    pub fn build(config: &UpstreamConfig, previous: Option<&UpstreamPool>) -> Self {
        let servers: Vec<Arc<Server>> = config
            .servers
            .iter()
            .map(|entry| {
                previous
                    .and_then(|p| p.servers.iter().find(|s| s.same_settings(entry)))
                    .map(|s| {
                        s.weight.store(entry.weight, Ordering::Relaxed);
                        Arc::clone(s)
                    })
                    .unwrap_or_else(|| Arc::new(Server::new(entry)))
            })
            .collect();
        let ids: Vec<String> = servers.iter().map(|s| s.id.clone()).collect();
        let weights: Vec<u32> = config.servers.iter().map(|s| s.weight).collect();
        let algorithm = match config.algorithm {
            schema::Algorithm::RoundRobin => Algorithm::RoundRobin,
            schema::Algorithm::LeastConnections => Algorithm::LeastConnections,
            schema::Algorithm::WeightedRandom => Algorithm::WeightedRandom,
            schema::Algorithm::PowerOfTwoChoices => Algorithm::PowerOfTwoChoices,
            schema::Algorithm::IpHash => Algorithm::IpHash(match config.hash_method {
                schema::HashMethod::Crc32 => HashMethod::Crc32,
                schema::HashMethod::Md5 => HashMethod::Md5,
                schema::HashMethod::Sha1 => HashMethod::Sha1,
            }),
        };
        Self {
            name: config.name.clone(),
            algorithm: config.algorithm,
            servers,
            health_check: config.health_check.clone(),
            balancer: Balancer::new(algorithm, &ids, &weights),
        }
    }

    /// Picks a server for `client`, never one in `exclude` (servers already tried for this request).
    pub fn pick(&self, client: IpAddr, exclude: &[usize]) -> Option<(usize, Arc<Server>)> {
        let candidate = |(i, s): (usize, &Arc<Server>)| Candidate {
            weight: s.weight.load(Ordering::Relaxed),
            active: s.active.load(Ordering::Relaxed),
            max_connections: s.max_connections,
            ewma_latency_ns: s.ewma_latency_ns(),
            available: !exclude.contains(&i)
                && s.enabled.load(Ordering::Relaxed)
                && s.healthy.load(Ordering::Relaxed)
                && s.breaker_allows(crate::clock::coarse_now),
        };
        // Pools of up to INLINE_CANDIDATES servers (nearly all) are judged on the stack: a heap vector here was
        // an allocation on every request.
        let i = if self.servers.len() <= INLINE_CANDIDATES {
            let mut inline = [Candidate::default(); INLINE_CANDIDATES];
            for (slot, c) in inline.iter_mut().zip(self.servers.iter().enumerate().map(candidate)) {
                *slot = c;
            }
            self.balancer.pick(&inline[..self.servers.len()], client)?
        } else {
            let candidates: Vec<Candidate> = self.servers.iter().enumerate().map(candidate).collect();
            self.balancer.pick(&candidates, client)?
        };
        self.servers.get(i).map(|s| (i, Arc::clone(s)))
    }
}

/// Largest pool whose candidates are built on the stack.
const INLINE_CANDIDATES: usize = 16;

/// Every pool by name.
#[derive(Default)]
pub struct Upstreams {
    pools: HashMap<String, Arc<UpstreamPool>>,
}

impl Upstreams {
    pub fn build(configs: &[UpstreamConfig], previous: Option<&Upstreams>) -> Self {
        let pools = configs
            .iter()
            .map(|c| {
                let prev = previous.and_then(|p| p.pools.get(&c.name)).map(Arc::as_ref);
                (c.name.clone(), Arc::new(UpstreamPool::build(c, prev)))
            })
            .collect();
        Self { pools }
    }

    pub fn get(&self, name: &str) -> Option<&Arc<UpstreamPool>> {
        self.pools.get(name)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<UpstreamPool>> {
        self.pools.values()
    }
}
