//! Fleet state through Redis: this node's allow/deny changes (admin API, auto-ban) are written to a durable
//! hash and published; other nodes' changes are received and applied to this node's maps through
//! [`AccessLists::apply_remote`]. `wire` has the Redis schema and the reconciliation rule.
//!
//! One task owns both Redis connections (commands, subscription). At every (re)connect it subscribes first,
//! then flushes changes queued while Redis was away, then compares the whole durable list with this node's
//! (a node that was offline catches up here), and repeats that comparison every `fleet.resync_interval`.
//! While Redis is unreachable the node keeps enforcing its own lists, queues its changes (bounded), logs once,
//! reports `degraded: fleet` on `/health` and `rampart_fleet_redis_up 0`, and retries with backoff.
//! Messages carry the sender's node id: a node ignores its own, and applying a received change never
//! publishes it again, so nothing loops.

pub mod wire;

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use futures_util::StreamExt;
use prometheus::{IntCounterVec, IntGauge, Opts, Registry};
use redis::aio::MultiplexedConnection;
use redis::{AsyncCommands, AsyncConnectionConfig, ConnectionAddr, IntoConnectionInfo, RedisConnectionInfo};
use tokio::sync::{mpsc, watch};
use tracing::{debug, info, warn};

use crate::access::{AccessLists, Change, Entry};
use crate::config::schema::FleetConfig;
use crate::config::types::Cidr;
use crate::xdp::ListKind;
use wire::{Action, Keys, Wire};

/// Local changes waiting for the publisher; the publisher drains it continuously, Redis up or not.
const CHANNEL_CAPACITY: usize = 4096;
/// Local changes kept while Redis is unreachable; past this the oldest are dropped (and logged).
const MAX_PENDING: usize = 10_000;
const MAX_BACKOFF: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    #[error("fleet.redis ({addr}): {source}")]
    Redis {
        addr: String,
        #[source]
        source: redis::RedisError,
    },
    #[error("registering the fleet metrics: {0}")]
    Metrics(#[from] prometheus::Error),
}

/// What `/health` and `/metrics` show about the fleet link.
pub struct FleetStatus {
    pub node_id: String,
    pub redis: String,
    up: AtomicBool,
    up_gauge: IntGauge,
    changes: IntCounterVec,
}

impl FleetStatus {
    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    /// Records the link state; true when it changed.
    fn set_up(&self, up: bool) -> bool {
        self.up_gauge.set(i64::from(up));
        self.up.swap(up, Ordering::Relaxed) != up
    }

    fn count(&self, what: &str) {
        self.changes.with_label_values(&[what]).inc();
    }
}

/// The publisher/subscriber task, built by [`Fleet::new`] and run by [`Fleet::run`].
pub struct Fleet {
    link: Link,
    client: redis::Client,
    timeout: Duration,
    resync_every: Duration,
    rx: mpsc::Receiver<Change>,
    pending: VecDeque<Change>,
    synced: watch::Sender<bool>,
}

/// What a session needs besides the connections.
struct Link {
    node: String,
    keys: Keys,
    lists: Arc<AccessLists>,
    status: Arc<FleetStatus>,
}

/// This node's default name: the host name (unique per host in a fleet) and the process id (unique on it).
fn default_node_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let host = host.trim();
    format!(
        "{}:{}",
        if host.is_empty() { "rampart" } else { host },
        std::process::id()
    )
}

impl Fleet {
    /// Prepares the link (nothing is sent yet) and attaches it to `lists`, so changes made from now on are
    /// published. The receiver turns true once the first comparison with Redis is done.
    pub fn new(
        config: &FleetConfig,
        lists: Arc<AccessLists>,
        registry: &Registry,
    ) -> Result<(Self, Arc<FleetStatus>, watch::Receiver<bool>), FleetError> {
        let r = &config.redis;
        let addr = format!("{}:{}", r.host, r.port.get());
        let mut settings = RedisConnectionInfo::default().set_db(i64::from(r.db));
        if let Some(p) = &r.password {
            settings = settings.set_password(p);
        }
        let client = ConnectionAddr::Tcp(r.host.clone(), r.port.get())
            .into_connection_info()
            .map(|i| i.set_redis_settings(settings))
            .and_then(redis::Client::open)
            .map_err(|source| FleetError::Redis {
                addr: addr.clone(),
                source,
            })?;
        let up_gauge = IntGauge::new(
            "rampart_fleet_redis_up",
            "1 while the fleet's Redis answers (allow/deny changes are shared), 0 while this node is on its own",
        )?;
        let changes = IntCounterVec::new(
            Opts::new(
                "rampart_fleet_changes_total",
                "Allow/deny changes sent to the fleet (published) and received from it and applied here (applied)",
            ),
            &["direction"],
        )?;
        registry.register(Box::new(up_gauge.clone()))?;
        registry.register(Box::new(changes.clone()))?;
        for d in ["published", "applied"] {
            changes.with_label_values(&[d]);
        }
        let node = config.node_id.clone().unwrap_or_else(default_node_id);
        let status = Arc::new(FleetStatus {
            node_id: node.clone(),
            redis: addr,
            up: AtomicBool::new(false),
            up_gauge,
            changes,
        });
        let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
        lists.publish_to(tx);
        let (synced, synced_rx) = watch::channel(false);
        let fleet = Self {
            link: Link {
                node,
                keys: Keys::new(&config.key_prefix),
                lists,
                status: status.clone(),
            },
            client,
            timeout: Duration::from_secs(r.timeout),
            resync_every: Duration::from_secs(config.resync_interval),
            rx,
            pending: VecDeque::new(),
            synced,
        };
        Ok((fleet, status, synced_rx))
    }

    /// Runs until shutdown: sessions with Redis, and between them a wait with backoff.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        info!(node = %self.link.node, redis = %self.link.status.redis, "fleet: sharing allow/deny changes through Redis");
        let mut backoff = Duration::from_millis(250);
        loop {
            let e = match self.session(&mut shutdown).await {
                Ok(()) => return,
                Err(e) => e,
            };
            // The first sync may never come while Redis is down; start-up must not wait for it any longer.
            self.synced.send_replace(true);
            if self.link.status.set_up(false) {
                warn!(
                    redis = %self.link.status.redis,
                    error = %e,
                    "fleet: Redis is unreachable; this node keeps its own lists and queues its changes until Redis is back"
                );
            } else {
                debug!(error = %e, "fleet: Redis still unreachable");
            }
            let wait = tokio::time::sleep(backoff);
            tokio::pin!(wait);
            loop {
                tokio::select! {
                    () = &mut wait => break,
                    Some(c) = self.rx.recv() => queue(&mut self.pending, c),
                    _ = shutdown.changed() => return,
                }
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    async fn session(&mut self, shutdown: &mut watch::Receiver<bool>) -> Result<(), redis::RedisError> {
        let link = &self.link;
        let timeout = self.timeout;
        let within =
            |what: &'static str| move |_| redis::RedisError::from((redis::ErrorKind::Io, "timed out", what.to_owned()));
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout));
        let mut conn = self
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        let mut pubsub = tokio::time::timeout(timeout, self.client.get_async_pubsub())
            .await
            .map_err(within("connecting for the subscription"))??;
        // Subscribe before reading the durable list, so no change falls between the two.
        tokio::time::timeout(timeout, pubsub.subscribe(&link.keys.channel))
            .await
            .map_err(within("subscribing"))??;
        while let Some(c) = self.pending.front() {
            link.write(&mut conn, c).await?;
            self.pending.pop_front();
        }
        link.resync(&mut conn).await?;
        if link.status.set_up(true) {
            info!(redis = %link.status.redis, "fleet: Redis reachable; allow/deny lists are shared with the fleet");
        }
        self.synced.send_replace(true);
        let mut messages = pubsub.on_message();
        let mut tick = tokio::time::interval(self.resync_every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tokio::select! {
                m = messages.next() => match m {
                    Some(m) => link.on_message(m.get_payload_bytes()),
                    None => return Err(redis::RedisError::from((redis::ErrorKind::Io, "the subscription connection closed"))),
                },
                c = self.rx.recv() => {
                    let Some(c) = c else { continue };
                    if let Err(e) = link.write(&mut conn, &c).await {
                        self.pending.push_front(c);
                        return Err(e);
                    }
                }
                _ = tick.tick() => link.resync(&mut conn).await?,
                _ = shutdown.changed() => return Ok(()),
            }
        }
    }
}

fn queue(pending: &mut VecDeque<Change>, c: Change) {
    if pending.len() >= MAX_PENDING {
        pending.pop_front();
        warn!(
            kept = MAX_PENDING,
            "fleet: too many changes queued while Redis is unreachable; the oldest is dropped"
        );
    }
    pending.push_back(c);
}

/// Deletes a hash field only if it still holds the value read, so cleanup never deletes a newer change.
const DELETE_IF_UNCHANGED: &str = r"
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then return redis.call('HDEL', KEYS[1], ARGV[1]) end
return 0
";

impl Link {
    /// Stores `change` in the durable hash and publishes it, in one MULTI.
    async fn write(&self, conn: &mut MultiplexedConnection, change: &Change) -> Result<(), redis::RedisError> {
        let wire = Wire::from_change(&self.node, change);
        let json = wire.to_json();
        let list = match change {
            Change::Listed(e) => e.list,
            Change::Unlisted { list, .. } => *list,
        };
        redis::pipe()
            .atomic()
            .hset(self.keys.list(list), &wire.cidr, &json)
            .ignore()
            .publish(&self.keys.channel, &json)
            .ignore()
            .exec_async(conn)
            .await?;
        self.status.count("published");
        debug!(list = list.as_str(), cidr = %wire.cidr, "fleet: change published");
        Ok(())
    }

    fn on_message(&self, payload: &[u8]) {
        let wire = match Wire::parse(payload) {
            Ok(w) => w,
            Err(e) => {
                warn!(error = %e, "fleet: ignoring a message on the changes channel");
                return;
            }
        };
        if wire.node == self.node {
            return;
        }
        match wire.to_change() {
            Ok(change) => {
                let (list, cidr) = key_of(&change);
                let local = self.lists.get(list, cidr);
                if wire::decide(local.as_ref(), Some(&change), SystemTime::now()) == Action::Apply {
                    self.apply(&wire.node, &change);
                }
            }
            Err(e) => warn!(node = %wire.node, error = %e, "fleet: ignoring a change"),
        }
    }

    fn apply(&self, from: &str, change: &Change) {
        let (list, cidr) = key_of(change);
        match self.lists.apply_remote(change) {
            Ok(changed) => {
                if changed {
                    self.status.count("applied");
                }
                let op = if matches!(change, Change::Listed(_)) {
                    "listed"
                } else {
                    "unlisted"
                };
                info!(from, list = list.as_str(), %cidr, op, "fleet: change from another node applied");
            }
            Err(e) => {
                warn!(from, list = list.as_str(), %cidr, error = %e, "fleet: a change from another node could not be applied")
            }
        }
    }

    /// Compares the whole durable list with this node's entries and settles every difference by
    /// [`wire::decide`]; deletes stale fields on the way.
    async fn resync(&self, conn: &mut MultiplexedConnection) -> Result<(), redis::RedisError> {
        let now = SystemTime::now();
        let mut remote: BTreeMap<(ListKind, Cidr), (Change, String, String)> = BTreeMap::new();
        for list in [ListKind::Allow, ListKind::Deny] {
            let key = self.keys.list(list);
            let fields: Vec<(String, String)> = conn.hgetall(key).await?;
            for (field, value) in fields {
                match Wire::parse(value.as_bytes()).and_then(|w| Ok((w.to_change()?, w.node))) {
                    Ok((change, node)) => {
                        if wire::is_stale(&change, now) {
                            redis::Script::new(DELETE_IF_UNCHANGED)
                                .key(key)
                                .arg(&field)
                                .arg(&value)
                                .invoke_async::<i64>(conn)
                                .await?;
                        }
                        remote.insert(key_of(&change), (change, value, node));
                    }
                    Err(e) => warn!(key, field, error = %e, "fleet: ignoring an unreadable entry in Redis"),
                }
            }
        }
        let local: BTreeMap<(ListKind, Cidr), Entry> = self
            .lists
            .shared_entries()
            .into_iter()
            .map(|e| ((e.list, e.cidr), e))
            .collect();
        let mut keys: Vec<(ListKind, Cidr)> = remote.keys().chain(local.keys()).copied().collect();
        keys.sort_unstable();
        keys.dedup();
        let (mut applied, mut pushed) = (0usize, 0usize);
        for k in keys {
            // `shared_entries` leaves out config entries; `decide` must still see them to leave them alone.
            let l = local.get(&k).cloned().or_else(|| self.lists.get(k.0, k.1));
            let r = remote.get(&k);
            match wire::decide(l.as_ref(), r.map(|(c, _, _)| c), now) {
                Action::Apply => {
                    if let Some((change, _, node)) = r {
                        self.apply(node, change);
                        applied += 1;
                    }
                }
                Action::Push => {
                    if let Some(e) = l {
                        self.write(conn, &Change::Listed(e)).await?;
                        pushed += 1;
                    }
                }
                Action::Nothing => {}
            }
        }
        if applied + pushed > 0 {
            info!(applied, pushed, "fleet: resynced with the durable list in Redis");
        } else {
            debug!("fleet: in sync with the durable list in Redis");
        }
        Ok(())
    }
}

fn key_of(change: &Change) -> (ListKind, Cidr) {
    match change {
        Change::Listed(e) => (e.list, e.cidr),
        Change::Unlisted { list, cidr, .. } => (*list, *cidr),
    }
}
