//! Picking the server for a request among a pool's eligible servers. Pure: no I/O, no clocks beyond seeding,
//! safe to call from many tasks at once (a short mutex around the round-robin weights, atomics elsewhere).
//!
//! Eligible means `available`, a weight above zero, and under `max_connections` (0 = unlimited). Algorithms:
//! - round robin: nginx's smooth weighted round robin (weights 5,1,1 give a a b a c a a, never bursts);
//! - least connections: lowest `active / weight`, ties taken in turn;
//! - ip hash: consistent hashing of the client address onto a ring built from server identities, 160 points
//!   per unit of weight, so removing or failing a server moves only the clients that were on it;
//! - weighted random;
//! - power of two choices: two random servers, the lower `latency × (active + 1)` wins.

use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Hash used by ip_hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HashMethod {
    Crc32,
    Md5,
    Sha1,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algorithm {
    RoundRobin,
    LeastConnections,
    IpHash(HashMethod),
    WeightedRandom,
    PowerOfTwoChoices,
}

/// A server as the balancer sees it at pick time.
#[derive(Clone, Copy, Debug, Default)]
pub struct Candidate {
    /// 0 means drained: never picked.
    pub weight: u32,
    pub active: u32,
    /// 0 = unlimited.
    pub max_connections: u32,
    /// 0 = no sample yet.
    pub ewma_latency_ns: u64,
    pub available: bool,
}

impl Candidate {
    fn eligible(&self) -> bool {
        self.available && self.weight > 0 && (self.max_connections == 0 || self.active < self.max_connections)
    }
}

/// Ring points per unit of weight: enough that four servers split clients within a few percent.
const POINTS_PER_WEIGHT: u32 = 160;

pub struct Balancer {
    algorithm: Algorithm,
    /// Smooth round robin's current weights, one per server.
    current: Mutex<Vec<i64>>,
    /// (point, server index), sorted by point.
    ring: Vec<(u64, usize)>,
    next: AtomicUsize,
    rng: AtomicU64,
}

impl Balancer {
    /// `ids` are stable server identities ("host:port") in config order; `weights` their configured weights.
    pub fn new(algorithm: Algorithm, ids: &[String], weights: &[u32]) -> Self {
        let ring = match algorithm {
            Algorithm::IpHash(method) => {
                let mut ring: Vec<(u64, usize)> = ids
                    .iter()
                    .enumerate()
                    .flat_map(|(i, id)| {
                        let points = POINTS_PER_WEIGHT * weights.get(i).copied().unwrap_or(1).max(1);
                        (0..points).map(move |p| (hash(method, format!("{id}#{p}").as_bytes()), i))
                    })
                    .collect();
                ring.sort_unstable();
                ring
            }
            _ => Vec::new(),
        };
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0x2545_f491_4f6c_dd1d, |d| d.as_nanos() as u64)
            | 1;
        Self {
            algorithm,
            current: Mutex::new(vec![0; ids.len()]),
            ring,
            next: AtomicUsize::new(0),
            rng: AtomicU64::new(seed),
        }
    }

    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// An index into `candidates` (same order and length as the ids given to `new`), or `None`.
    pub fn pick(&self, candidates: &[Candidate], client: IpAddr) -> Option<usize> {
        match self.algorithm {
            Algorithm::RoundRobin => self.smooth_round_robin(candidates),
            Algorithm::LeastConnections => self.least_connections(candidates),
            Algorithm::IpHash(method) => self.ip_hash(candidates, client, method),
            Algorithm::WeightedRandom => self.weighted_random(candidates),
            Algorithm::PowerOfTwoChoices => self.power_of_two(candidates),
        }
    }

    fn smooth_round_robin(&self, c: &[Candidate]) -> Option<usize> {
        // One eligible server is picked whatever the weights, and its running weight gains and loses the same
        // amount: the state does not change, so the lock is not taken.
        let mut eligible = c.iter().enumerate().filter(|(_, cand)| cand.eligible());
        match (eligible.next(), eligible.next()) {
            (None, _) => return None,
            (Some((only, _)), None) => return Some(only),
            _ => {}
        }
        let mut current = self.current.lock().unwrap_or_else(|p| p.into_inner());
        if current.len() != c.len() {
            current.resize(c.len(), 0);
        }
        let mut total = 0i64;
        let mut best: Option<usize> = None;
        for (i, cand) in c.iter().enumerate() {
            if !cand.eligible() {
                continue;
            }
            let w = i64::from(cand.weight);
            current[i] += w;
            total += w;
            if best.is_none_or(|b| current[i] > current[b]) {
                best = Some(i);
            }
        }
        let b = best?;
        current[b] -= total;
        Some(b)
    }

    fn least_connections(&self, c: &[Candidate]) -> Option<usize> {
        let n = c.len();
        if n == 0 {
            return None;
        }
        // Start the scan at a rotating offset so equal servers take turns.
        let start = self.next.fetch_add(1, Ordering::Relaxed) % n;
        let mut best: Option<usize> = None;
        for k in 0..n {
            let i = (start + k) % n;
            let cand = &c[i];
            if !cand.eligible() {
                continue;
            }
            // active_i / weight_i < active_b / weight_b, without division.
            let better = best.is_none_or(|b| {
                u64::from(cand.active) * u64::from(c[b].weight) < u64::from(c[b].active) * u64::from(cand.weight)
            });
            if better {
                best = Some(i);
            }
        }
        best
    }

    fn ip_hash(&self, c: &[Candidate], client: IpAddr, method: HashMethod) -> Option<usize> {
        if self.ring.is_empty() {
            return None;
        }
        let key = match client {
            IpAddr::V4(v4) => hash(method, &v4.octets()),
            IpAddr::V6(v6) => hash(method, &v6.octets()),
        };
        let start = self.ring.partition_point(|(p, _)| *p < key);
        (0..self.ring.len())
            .map(|k| self.ring[(start + k) % self.ring.len()].1)
            .find(|&i| c.get(i).is_some_and(Candidate::eligible))
    }

    fn weighted_random(&self, c: &[Candidate]) -> Option<usize> {
        let total: u64 = c.iter().filter(|x| x.eligible()).map(|x| u64::from(x.weight)).sum();
        if total == 0 {
            return None;
        }
        let mut r = self.random() % total;
        for (i, cand) in c.iter().enumerate().filter(|(_, x)| x.eligible()) {
            let w = u64::from(cand.weight);
            if r < w {
                return Some(i);
            }
            r -= w;
        }
        None
    }

    fn power_of_two(&self, c: &[Candidate]) -> Option<usize> {
        let eligible: Vec<usize> = (0..c.len()).filter(|&i| c[i].eligible()).collect();
        match eligible.len() {
            0 => None,
            1 => Some(eligible[0]),
            n => {
                let a = eligible[(self.random() % n as u64) as usize];
                let mut b = eligible[(self.random() % (n as u64 - 1)) as usize];
                if b == a {
                    b = eligible[n - 1];
                }
                let cost = |i: usize| u128::from(c[i].ewma_latency_ns.max(1)) * (u128::from(c[i].active) + 1);
                Some(if cost(b) < cost(a) { b } else { a })
            }
        }
    }

    /// xorshift64*: fast and good enough to spread load; not for anything secret.
    fn random(&self) -> u64 {
        let mut x = self.rng.load(Ordering::Relaxed);
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng.store(x, Ordering::Relaxed);
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

fn hash(method: HashMethod, data: &[u8]) -> u64 {
    use sha1::Digest as _;
    let first8 = |d: &[u8]| {
        d.get(..8)
            .and_then(|s| <[u8; 8]>::try_from(s).ok())
            .map_or(0, u64::from_be_bytes)
    };
    match method {
        // A CRC is only 32 bits: spread it over the ring with a mixer so points do not cluster.
        HashMethod::Crc32 => mix(u64::from(crc32fast::hash(data))),
        HashMethod::Md5 => first8(&md5::Md5::digest(data)),
        HashMethod::Sha1 => first8(&sha1::Sha1::digest(data)),
    }
}

fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("10.0.0.{}:80", i + 1)).collect()
    }

    fn up(weight: u32) -> Candidate {
        Candidate {
            weight,
            active: 0,
            max_connections: 0,
            ewma_latency_ns: 0,
            available: true,
        }
    }

    fn ip(i: u32) -> IpAddr {
        IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i * 7919))
    }

    #[test]
    fn smooth_round_robin_follows_nginx_and_spreads_the_heavy_server() {
        let b = Balancer::new(Algorithm::RoundRobin, &ids(3), &[5, 1, 1]);
        let c = [up(5), up(1), up(1)];
        let seq: Vec<usize> = (0..7).map(|_| b.pick(&c, ip(0)).expect("pick")).collect();
        assert_eq!(seq, [0, 0, 1, 0, 2, 0, 0]);
        let b = Balancer::new(Algorithm::RoundRobin, &ids(3), &[1, 2, 3]);
        let c = [up(1), up(2), up(3)];
        let mut counts = [0; 3];
        for _ in 0..6000 {
            counts[b.pick(&c, ip(0)).expect("pick")] += 1;
        }
        assert_eq!(counts, [1000, 2000, 3000]);
    }

    #[test]
    fn ineligible_servers_are_never_picked() {
        let down = Candidate {
            available: false,
            ..up(1)
        };
        let drained = up(0);
        let full = Candidate {
            max_connections: 2,
            active: 2,
            ..up(1)
        };
        for alg in [
            Algorithm::RoundRobin,
            Algorithm::LeastConnections,
            Algorithm::IpHash(HashMethod::Crc32),
            Algorithm::WeightedRandom,
            Algorithm::PowerOfTwoChoices,
        ] {
            let b = Balancer::new(alg, &ids(4), &[1, 1, 1, 1]);
            for k in 0..200 {
                assert_eq!(b.pick(&[down, drained, full, up(1)], ip(k)), Some(3), "{alg:?}");
            }
            assert_eq!(b.pick(&[down, drained, full, down], ip(1)), None, "{alg:?}");
        }
    }

    #[test]
    fn least_connections_weighs_load_and_takes_turns_on_ties() {
        let b = Balancer::new(Algorithm::LeastConnections, &ids(3), &[1, 1, 2]);
        let c = [
            Candidate { active: 3, ..up(1) },
            Candidate { active: 1, ..up(1) },
            Candidate { active: 3, ..up(2) },
        ];
        assert_eq!(b.pick(&c, ip(0)), Some(1));
        let tie = [up(1), up(1), up(1)];
        let picks: std::collections::HashSet<usize> = (0..6).filter_map(|_| b.pick(&tie, ip(0))).collect();
        assert_eq!(picks.len(), 3, "ties are shared");
    }

    #[test]
    fn ip_hash_is_sticky_even_and_moves_only_the_lost_servers_clients() {
        for method in [HashMethod::Crc32, HashMethod::Md5, HashMethod::Sha1] {
            let b = Balancer::new(Algorithm::IpHash(method), &ids(4), &[1, 1, 1, 1]);
            let all = [up(1); 4];
            let before: Vec<usize> = (0..10_000).map(|i| b.pick(&all, ip(i)).expect("pick")).collect();
            for i in 0..100 {
                assert_eq!(b.pick(&all, ip(i)), Some(before[i as usize]), "sticky");
            }
            let mut counts = [0usize; 4];
            before.iter().for_each(|&s| counts[s] += 1);
            assert!(
                counts.iter().all(|&n| (2000..=3000).contains(&n)),
                "{method:?} uneven: {counts:?}"
            );
            let mut without_1 = all;
            without_1[1].available = false;
            for (i, &was) in before.iter().enumerate() {
                let now = b.pick(&without_1, ip(i as u32)).expect("pick");
                if was != 1 {
                    assert_eq!(now, was, "{method:?}: a client not on the lost server moved");
                }
                assert_ne!(now, 1);
            }
            // Rebuilding without the server (a config change) keeps the others' clients in place too.
            let rebuilt = Balancer::new(
                Algorithm::IpHash(method),
                &[ids(4)[0].clone(), ids(4)[2].clone(), ids(4)[3].clone()],
                &[1, 1, 1],
            );
            let map = [0usize, 2, 3];
            let moved = before
                .iter()
                .enumerate()
                .filter(|(i, was)| **was != 1 && map[rebuilt.pick(&[up(1); 3], ip(*i as u32)).expect("pick")] != **was)
                .count();
            assert_eq!(moved, 0, "{method:?}");
        }
        let v6 = Balancer::new(Algorithm::IpHash(HashMethod::Md5), &ids(2), &[1, 1]);
        let a = v6.pick(&[up(1), up(1)], "2001:db8::1".parse().expect("ip"));
        assert_eq!(a, v6.pick(&[up(1), up(1)], "2001:db8::1".parse().expect("ip")));
    }

    #[test]
    fn weighted_random_follows_the_weights() {
        let b = Balancer::new(Algorithm::WeightedRandom, &ids(3), &[30, 50, 20]);
        let c = [up(30), up(50), up(20)];
        let mut counts = [0f64; 3];
        for _ in 0..20_000 {
            counts[b.pick(&c, ip(0)).expect("pick")] += 1.0;
        }
        for (n, want) in counts.iter().zip([0.30, 0.50, 0.20]) {
            assert!((n / 20_000.0 - want).abs() < 0.03, "{counts:?}");
        }
    }

    #[test]
    fn power_of_two_prefers_the_faster_server() {
        let b = Balancer::new(Algorithm::PowerOfTwoChoices, &ids(2), &[1, 1]);
        let c = [
            Candidate {
                ewma_latency_ns: 10_000_000,
                ..up(1)
            },
            Candidate {
                ewma_latency_ns: 1_000_000,
                ..up(1)
            },
        ];
        let fast = (0..10_000).filter(|_| b.pick(&c, ip(0)) == Some(1)).count();
        assert!(fast > 8_500, "{fast}");
    }
}
