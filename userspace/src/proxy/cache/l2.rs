//! The shared second level: entries in Redis (`proxy.caching.redis_cache`), seen by every node that names the
//! same server or cluster, and the purge channel that tells every node to clear its memory level too.
//!
//! Redis is an optimisation, never a dependency of a request: every operation has a deadline, a failure
//! marks Redis down for a moment (one attempt per second while it is gone, not one per request), and the
//! caller carries on with the memory level alone. The state is a gauge and the `/health` degraded list.
//!
//! Two backends behind the same operations: one server (a pool of connection managers), or a Redis Cluster
//! (`cluster_mode`: `pool_size` cluster connections, each routing a key to its slot's primary). In cluster mode
//! a purge scans every primary, since each holds only its own slots, and the purge subscription is a plain
//! connection to one of `cluster_nodes` (the cluster forwards every PUBLISH to all its nodes), moving to the
//! next on failure.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use futures_util::StreamExt as _;
use prometheus::{IntCounter, IntGauge, Opts, Registry};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
use redis::{ErrorKind, FromRedisValue, RedisError, RedisResult, Value};
use tracing::{info, warn};

use crate::config::schema::RedisCacheConfig;

/// Keys of entries are this followed by the cache key.
pub const PREFIX: &str = "rampart:cache:";
/// Purge requests: the payload is the pattern (empty for everything).
pub const CHANNEL: &str = "rampart:cache:purge";
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(1);
/// Keys a purge deletes at most, so one request cannot run for ever against a huge keyspace.
const MAX_PURGE_KEYS: u64 = 1_000_000;

pub struct L2 {
    backend: Backend,
    timeout: Duration,
    origin: Instant,
    down_until: AtomicU64,
    down: AtomicBool,
    addr: String,
    up: IntGauge,
    errors: IntCounter,
}

enum Backend {
    /// One server, or a proxy in front of several.
    Single {
        conns: Vec<ConnectionManager>,
        next: AtomicUsize,
        client: redis::Client,
    },
    /// Boxed: the cluster client is twice the size of the single-server variant.
    Cluster(Box<Cluster>),
}

struct Cluster {
    client: ClusterClient,
    /// `pool_size` cluster connections (each one multiplexed connection per node), used in turn.
    pool: Vec<PooledCluster>,
    next: AtomicUsize,
    /// A plain client per `cluster_nodes` entry, for the purge subscription.
    nodes: Vec<redis::Client>,
    /// The entry the subscription uses next (moves on after a failure).
    subscribe_at: AtomicUsize,
}

struct PooledCluster {
    /// Made on first use and dropped after a failure, so a cluster that was down at start, or came back
    /// with another layout, is found again from `cluster_nodes` rather than from a stale slot map.
    conn: ArcSwapOption<ClusterConnection>,
    /// One connection attempt at a time; the others wait for it instead of each opening their own.
    connecting: tokio::sync::Mutex<()>,
}

/// A connection of either backend; both speak `redis::aio::ConnectionLike`.
enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

#[derive(Debug, thiserror::Error)]
pub enum L2Error {
    #[error("proxy.caching.redis_cache ({addr}): {error}")]
    Open { addr: String, error: redis::RedisError },
    #[error("proxy.caching.redis_cache.cluster_nodes: {0}")]
    ClusterNode(String),
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
}

/// `redis://` URL of one server; the password is percent-encoded.
fn url(host: &str, port: u16, db: u32, password: Option<&str>) -> String {
    let auth = password.map_or(String::new(), |p| {
        let enc: String = p
            .bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                    char::from(b).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect();
        format!(":{enc}@")
    });
    let host = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_owned()
    };
    format!("redis://{auth}{host}:{port}/{db}")
}

impl L2 {
    /// Prepares the connections; nothing is sent until the first request (a Redis that is down at start is
    /// the same as one that goes down later).
    pub fn new(c: &RedisCacheConfig, registry: &Registry) -> Result<Self, L2Error> {
        let timeout = Duration::from_secs(c.timeout.max(1));
        let (backend, addr) = if c.cluster_mode {
            let addr = format!("cluster {}", c.cluster_nodes.join(","));
            (Backend::Cluster(Box::new(Cluster::new(c, timeout, &addr)?)), addr)
        } else {
            let addr = format!("{}:{}/{}", c.host, c.port.get(), c.db);
            let open = |error| L2Error::Open {
                addr: addr.clone(),
                error,
            };
            let client =
                redis::Client::open(url(&c.host, c.port.get(), c.db, c.password.as_deref()).as_str()).map_err(open)?;
            let config = ConnectionManagerConfig::new()
                .set_response_timeout(Some(timeout))
                .set_connection_timeout(Some(timeout))
                .set_number_of_retries(1)
                .set_max_delay(Duration::from_millis(200));
            // One multiplexed connection already carries many requests at once; `pool_size` of them spread
            // the work of a busy node over several sockets.
            let conns = (0..c.pool_size.clamp(1, 64))
                .map(|_| ConnectionManager::new_lazy_with_config(client.clone(), config.clone()))
                .collect::<Result<Vec<_>, _>>()
                .map_err(open)?;
            let backend = Backend::Single {
                conns,
                next: AtomicUsize::new(0),
                client,
            };
            (backend, addr)
        };
        let up = IntGauge::with_opts(Opts::new(
            "rampart_cache_redis_up",
            "1 while the Redis cache level answers, 0 while requests are served from memory alone.",
        ))?;
        let errors = IntCounter::with_opts(Opts::new(
            "rampart_cache_redis_errors_total",
            "Redis cache operations that failed or timed out (the request carried on without Redis).",
        ))?;
        registry.register(Box::new(up.clone()))?;
        registry.register(Box::new(errors.clone()))?;
        up.set(1);
        Ok(Self {
            backend,
            timeout,
            origin: Instant::now(),
            down_until: AtomicU64::new(0),
            down: AtomicBool::new(false),
            addr,
            up,
            errors,
        })
    }

    fn elapsed_ns(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// Whether Redis failed recently (and is being left alone).
    pub fn is_down(&self) -> bool {
        self.down.load(Ordering::Relaxed)
    }

    fn resting(&self) -> bool {
        self.elapsed_ns() < self.down_until.load(Ordering::Relaxed)
    }

    async fn conn(&self) -> RedisResult<Conn> {
        match &self.backend {
            Backend::Single { conns, next, .. } => {
                let i = next.fetch_add(1, Ordering::Relaxed) % conns.len().max(1);
                conns
                    .get(i)
                    .cloned()
                    .map(Conn::Single)
                    .ok_or_else(|| RedisError::from((ErrorKind::Client, "the connection pool is empty")))
            }
            Backend::Cluster(c) => c.connection().await.map(Conn::Cluster),
        }
    }

    fn failed(&self, what: &str, error: &dyn std::fmt::Display) {
        self.errors.inc();
        let until = self.elapsed_ns() + u64::try_from(RETRY_AFTER_FAILURE.as_nanos()).unwrap_or(0);
        self.down_until.store(until, Ordering::Relaxed);
        if !self.down.swap(true, Ordering::Relaxed) {
            self.up.set(0);
            warn!(redis = %self.addr, error = %error, operation = what,
                "Redis cache is unreachable: serving from the memory cache alone");
        }
    }

    fn answered(&self) {
        if self.down.swap(false, Ordering::Relaxed) {
            self.up.set(1);
            info!(redis = %self.addr, "Redis cache answers again: the shared cache level is back");
        }
    }

    /// Runs one operation with the deadline; `None` when Redis is down, failed or took too long.
    async fn guarded<T>(&self, what: &str, op: impl Future<Output = RedisResult<T>>) -> Option<T> {
        if self.resting() {
            return None;
        }
        let error: Box<dyn std::fmt::Display> = match tokio::time::timeout(self.timeout, op).await {
            Ok(Ok(v)) => {
                self.answered();
                return Some(v);
            }
            Ok(Err(e)) => Box::new(e),
            Err(_) => Box::new("timed out"),
        };
        if let Backend::Cluster(c) = &self.backend {
            c.forget();
        }
        self.failed(what, &error);
        None
    }

    /// Runs one command, routed by its key (in cluster mode, to the primary of the key's slot).
    async fn run<T: FromRedisValue>(&self, what: &str, cmd: &redis::Cmd) -> Option<T> {
        self.guarded(what, async {
            match self.conn().await? {
                Conn::Single(mut c) => cmd.query_async::<T>(&mut c).await,
                Conn::Cluster(mut c) => cmd.query_async::<T>(&mut c).await,
            }
        })
        .await
    }

    /// Runs one command on the cluster node at `host:port`.
    async fn run_on<T: FromRedisValue>(
        &self,
        what: &str,
        cluster: &Cluster,
        node: &Node,
        cmd: redis::Cmd,
    ) -> Option<T> {
        self.guarded(what, async {
            let v = cluster.connection().await?.route_command(cmd, node.routing()).await?;
            T::from_redis_value(v).map_err(RedisError::from)
        })
        .await
    }

    pub async fn get(&self, key: &str) -> Option<Vec<u8>> {
        let mut cmd = redis::cmd("GET");
        cmd.arg(format!("{PREFIX}{key}"));
        self.run::<Option<Vec<u8>>>("get", &cmd).await.flatten()
    }

    pub async fn set(&self, key: &str, value: &[u8], ttl: Duration) {
        let ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let mut cmd = redis::cmd("SET");
        cmd.arg(format!("{PREFIX}{key}")).arg(value).arg("PX").arg(ms);
        let _: Option<()> = self.run("set", &cmd).await;
    }

    /// Deletes the entries whose keys match `pattern` (`*` is the only wildcard) and tells every node to
    /// clear its memory level. `(deleted, nodes told)`, or `None` when Redis could not be reached.
    pub async fn purge(&self, pattern: &str) -> Option<(u64, u64)> {
        let glob = format!("{}{}", redis_escape(PREFIX), redis_escape(pattern).replace("\\*", "*"));
        let mut publish = redis::cmd("PUBLISH");
        publish.arg(CHANNEL).arg(pattern);
        match &self.backend {
            Backend::Single { .. } => {
                let deleted = self.scan_and_unlink(&glob, None, 0).await?;
                let told = self.run::<u64>("publish", &publish).await?;
                Some((deleted, told))
            }
            Backend::Cluster(cluster) => {
                let cluster: &Cluster = cluster;
                let nodes = self.cluster_nodes(cluster).await?;
                let mut deleted = 0;
                for node in nodes.iter().filter(|n| n.primary) {
                    if deleted >= MAX_PURGE_KEYS {
                        break;
                    }
                    deleted = self.scan_and_unlink(&glob, Some((cluster, node)), deleted).await?;
                }
                // The answer counts this node's subscribers only; `subscribers` asks every node.
                self.run::<u64>("publish", &publish).await?;
                Some((deleted, self.subscribers(cluster, &nodes).await))
            }
        }
    }

    /// SCANs one server (or one cluster primary, whose keyspace is only its own slots) and UNLINKs what
    /// matches; `deleted` is the count so far, returned with this server's added.
    async fn scan_and_unlink(&self, glob: &str, on: Option<(&Cluster, &Node)>, mut deleted: u64) -> Option<u64> {
        let mut cursor: u64 = 0;
        loop {
            let mut scan = redis::cmd("SCAN");
            scan.arg(cursor).arg("MATCH").arg(glob).arg("COUNT").arg(1000);
            let (next, keys): (u64, Vec<Vec<u8>>) = match on {
                Some((cluster, node)) => self.run_on("scan", cluster, node, scan).await?,
                None => self.run("scan", &scan).await?,
            };
            if !keys.is_empty() {
                let mut del = redis::cmd("UNLINK");
                for k in &keys {
                    del.arg(k.as_slice());
                }
                // In cluster mode the keys of one primary still span many slots, and one command may name
                // keys of one slot only (CROSSSLOT); the cluster connection splits a multi-key UNLINK by slot
                // and sums the answers.
                deleted += self.run::<u64>("unlink", &del).await?;
            }
            cursor = next;
            if cursor == 0 || deleted >= MAX_PURGE_KEYS {
                return Some(deleted);
            }
        }
    }

    /// Every node serving slots, as the cluster itself reports them.
    async fn cluster_nodes(&self, cluster: &Cluster) -> Option<Vec<Node>> {
        let mut cmd = redis::cmd("CLUSTER");
        cmd.arg("SLOTS");
        let slots: Value = self.run("cluster slots", &cmd).await?;
        let nodes = slot_nodes(&slots);
        if !nodes.iter().any(|n| n.primary) {
            self.failed("cluster slots", &"the cluster reports no primary serving slots");
            cluster.forget();
            return None;
        }
        Some(nodes)
    }

    /// Subscribers to the purge channel across the cluster. A node counts only its own subscribers (even
    /// though a PUBLISH reaches all of them), so this asks each node; one that does not answer in time is
    /// left out of the figure rather than failing a purge that has already happened.
    async fn subscribers(&self, cluster: &Cluster, nodes: &[Node]) -> u64 {
        let Ok(Ok(conn)) = tokio::time::timeout(self.timeout, cluster.connection()).await else {
            return 0;
        };
        let mut told = 0;
        for node in nodes {
            let mut numsub = redis::cmd("PUBSUB");
            numsub.arg("NUMSUB").arg(CHANNEL);
            let mut conn = conn.clone();
            if let Ok(Ok(v)) = tokio::time::timeout(self.timeout, conn.route_command(numsub, node.routing())).await
                && let Ok((_, n)) = <(Vec<u8>, u64)>::from_redis_value(v)
            {
                told += n;
            }
        }
        told
    }

    /// Listens for purges from any node (this one included) and hands each pattern to `on_purge`; reconnects
    /// after Redis goes away, once a second (in cluster mode, to the next of `cluster_nodes`).
    pub fn subscribe(self: Arc<Self>, on_purge: impl Fn(&str) + Send + Sync + 'static) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                let client = match &self.backend {
                    Backend::Single { client, .. } => Some(client),
                    Backend::Cluster(c) => {
                        let i = c.subscribe_at.load(Ordering::Relaxed);
                        c.nodes.get(i % c.nodes.len().max(1))
                    }
                };
                let Some(client) = client else {
                    warn!("no Redis node to listen for purges on");
                    return;
                };
                match tokio::time::timeout(self.timeout, client.get_async_pubsub()).await {
                    Ok(Ok(mut ps)) => match ps.subscribe(CHANNEL).await {
                        Ok(()) => {
                            self.answered();
                            let mut messages = ps.on_message();
                            while let Some(msg) = messages.next().await {
                                match std::str::from_utf8(msg.get_payload_bytes()) {
                                    Ok(pattern) if pattern.len() <= super::MAX_PATTERN => on_purge(pattern),
                                    _ => warn!("ignored a purge message that is not a valid pattern"),
                                }
                            }
                            // The stream ends when the connection does: Redis is gone (or restarting).
                            self.failed("subscribe", &"the purge subscription was closed");
                        }
                        Err(e) => self.failed("subscribe", &e),
                    },
                    Ok(Err(e)) => self.failed("subscribe", &e),
                    Err(_) => self.failed("subscribe", &"timed out"),
                }
                if let Backend::Cluster(c) = &self.backend {
                    c.subscribe_at.fetch_add(1, Ordering::Relaxed);
                }
                tokio::time::sleep(RETRY_AFTER_FAILURE).await;
            }
        })
    }
}

impl Cluster {
    fn new(c: &RedisCacheConfig, timeout: Duration, addr: &str) -> Result<Self, L2Error> {
        let open = |error| L2Error::Open {
            addr: addr.to_owned(),
            error,
        };
        let mut urls = Vec::with_capacity(c.cluster_nodes.len());
        let mut nodes = Vec::with_capacity(c.cluster_nodes.len());
        for entry in &c.cluster_nodes {
            let (host, port) = RedisCacheConfig::cluster_node(entry).map_err(L2Error::ClusterNode)?;
            urls.push(url(&host, port, 0, None));
            nodes.push(redis::Client::open(url(&host, port, 0, c.password.as_deref()).as_str()).map_err(open)?);
        }
        if urls.is_empty() {
            return Err(L2Error::ClusterNode("cluster_mode needs at least one node".into()));
        }
        let mut builder = ClusterClient::builder(urls)
            .connection_timeout(timeout)
            .response_timeout(timeout)
            // A redirect (MOVED/ASK after a resharding) takes a retry; more than a few would only hold a
            // request past the deadline that `guarded` enforces anyway.
            .retries(2)
            .min_retry_wait(10)
            .max_retry_wait(200);
        if let Some(p) = &c.password {
            builder = builder.password(p.clone());
        }
        let pool = (0..c.pool_size.clamp(1, 64))
            .map(|_| PooledCluster {
                conn: ArcSwapOption::empty(),
                connecting: tokio::sync::Mutex::new(()),
            })
            .collect();
        Ok(Self {
            client: builder.build().map_err(open)?,
            pool,
            next: AtomicUsize::new(0),
            nodes,
            subscribe_at: AtomicUsize::new(0),
        })
    }

    async fn connection(&self) -> RedisResult<ClusterConnection> {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.pool.len().max(1);
        let Some(p) = self.pool.get(i) else {
            return Err(RedisError::from((ErrorKind::Client, "the connection pool is empty")));
        };
        if let Some(c) = p.conn.load_full() {
            return Ok((*c).clone());
        }
        let _one = p.connecting.lock().await;
        if let Some(c) = p.conn.load_full() {
            return Ok((*c).clone());
        }
        let c = self.client.get_async_connection().await?;
        p.conn.store(Some(Arc::new(c.clone())));
        Ok(c)
    }

    /// Drops every connection: they share one view of the cluster, and a failure means it may be stale.
    fn forget(&self) {
        for p in &self.pool {
            p.conn.store(None);
        }
    }
}

/// One node of the cluster as `CLUSTER SLOTS` names it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Node {
    host: String,
    port: u16,
    primary: bool,
}

impl Node {
    fn routing(&self) -> RoutingInfo {
        RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress {
            host: self.host.clone(),
            port: self.port,
        })
    }
}

/// The nodes of a `CLUSTER SLOTS` answer, each once: per slot range `[start, end, primary, replica...]`, each
/// node `[host, port, id, ...]`. Nodes without a usable address (an empty or `?` host) are left out.
fn slot_nodes(v: &Value) -> Vec<Node> {
    let mut out: Vec<Node> = Vec::new();
    let Value::Array(ranges) = v else {
        return out;
    };
    for range in ranges {
        let Value::Array(parts) = range else { continue };
        for (i, node) in parts.iter().skip(2).enumerate() {
            let Value::Array(fields) = node else { continue };
            let host = match fields.first() {
                Some(Value::BulkString(b)) => String::from_utf8_lossy(b).into_owned(),
                Some(Value::SimpleString(s)) => s.clone(),
                _ => continue,
            };
            let Some(Value::Int(port)) = fields.get(1) else {
                continue;
            };
            let Ok(port) = u16::try_from(*port) else { continue };
            if host.is_empty() || host == "?" || port == 0 {
                continue;
            }
            let primary = i == 0;
            match out.iter_mut().find(|n| n.host == host && n.port == port) {
                Some(known) => known.primary |= primary,
                None => out.push(Node { host, port, primary }),
            }
        }
    }
    out
}

/// Escapes Redis glob specials so they match themselves.
fn redis_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\' | '^') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a test reports failure by panicking
mod tests {
    use super::*;

    #[test]
    fn only_the_star_is_a_wildcard_in_redis_patterns() {
        let glob = redis_escape("/a?b[c]*").replace("\\*", "*");
        assert_eq!(glob, "/a\\?b\\[c\\]*");
    }

    fn node(host: &str, port: i64, id: &str) -> Value {
        Value::Array(vec![
            Value::BulkString(host.as_bytes().to_vec()),
            Value::Int(port),
            Value::BulkString(id.as_bytes().to_vec()),
        ])
    }

    #[test]
    fn cluster_slots_name_each_node_once_with_its_primaries() {
        let slots = Value::Array(vec![
            Value::Array(vec![
                Value::Int(0),
                Value::Int(5460),
                node("127.0.0.1", 7000, "a"),
                node("127.0.0.1", 7003, "d"),
            ]),
            Value::Array(vec![Value::Int(5461), Value::Int(10922), node("127.0.0.1", 7001, "b")]),
            // A primary with two ranges is listed once; a node with no address is left out.
            Value::Array(vec![Value::Int(10923), Value::Int(16383), node("127.0.0.1", 7000, "a")]),
            Value::Array(vec![Value::Int(16383), Value::Int(16383), node("?", 7009, "x")]),
        ]);
        let nodes = slot_nodes(&slots);
        let got: Vec<(u16, bool)> = nodes.iter().map(|n| (n.port, n.primary)).collect();
        assert_eq!(got, [(7000, true), (7003, false), (7001, true)]);
        assert!(slot_nodes(&Value::Nil).is_empty());
    }

    #[test]
    fn the_password_is_percent_encoded_in_the_url() {
        assert_eq!(
            url("127.0.0.1", 6379, 0, Some("p@ss:w/rd")),
            "redis://:p%40ss%3Aw%2Frd@127.0.0.1:6379/0"
        );
        assert_eq!(url("::1", 7000, 0, None), "redis://[::1]:7000/0");
    }
}
