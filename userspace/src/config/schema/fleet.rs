//! `fleet`: several Rampart nodes sharing their allow and deny lists through one Redis. The Redis keys follow
//! the seed specification's style (`prefix:area:name`); the connection keys are those of its `redis_cache`
//! section (`host`, `port`, `db`, `password`, `timeout`).

use serde::{Deserialize, Serialize};

use crate::config::types::Port;

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FleetConfig {
    /// Share allow/deny changes (admin API and auto-ban) with every node using the same Redis and
    /// `key_prefix`, and apply theirs to this node's maps. Default false.
    pub enabled: bool,
    /// This node's name in published changes; a node ignores its own. Default `<hostname>:<pid>`, which is
    /// unique even for two processes on one host. Two nodes must never share a name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_id: Option<String>,
    pub redis: FleetRedisConfig,
    /// Prefix of every Redis key and channel, so several fleets can share one Redis. Default `rampart`.
    pub key_prefix: String,
    /// Seconds between full comparisons with the durable list in Redis, which repair anything a lost message
    /// or an outage left behind. Default 30.
    pub resync_interval: u64,
}

impl Default for FleetConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            node_id: None,
            redis: FleetRedisConfig::default(),
            key_prefix: "rampart".into(),
            resync_interval: 30,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FleetRedisConfig {
    /// Default `127.0.0.1`.
    pub host: String,
    /// Default 6379.
    pub port: Port,
    /// Default 0.
    pub db: u32,
    /// Default none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// Seconds to connect or to answer a command before Redis counts as down. Default 2.
    pub timeout: u64,
}

impl Default for FleetRedisConfig {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".into(),
            port: Port::new_const(6379),
            db: 0,
            password: None,
            timeout: 2,
        }
    }
}
