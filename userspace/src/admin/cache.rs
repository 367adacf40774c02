//! `GET /admin/proxy/cache/stats` and `DELETE /admin/proxy/cache/clear`: this node's cache figures, and a purge
//! by pattern that clears this node's memory level, the shared Redis level, and (through Redis) every other
//! node's memory level.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{AdminState, ApiError};
use crate::proxy::cache::MAX_PATTERN;

pub async fn stats(State(state): State<Arc<AdminState>>) -> Json<Value> {
    let s = state.cache.stats();
    Json(json!({
        "cache_enabled": state.live.load().cache_rules.any(),
        "hits": s.hits,
        "hits_memory": s.hits_memory,
        "hits_redis": s.hits_redis,
        "misses": s.misses,
        "hit_rate": s.hit_rate,
        "stale_served": s.stale_served,
        "memory_usage": s.memory_usage,
        "entries": s.entries,
        "redis": {
            "enabled": s.redis_enabled,
            "up": s.redis_up,
        },
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClearQuery {
    pattern: Option<String>,
}

pub async fn clear(State(state): State<Arc<AdminState>>, Query(q): Query<ClearQuery>) -> Result<Json<Value>, ApiError> {
    let pattern = q.pattern.unwrap_or_default();
    if pattern.len() > MAX_PATTERN {
        return Err(ApiError::bad_request(
            "pattern",
            format!("pattern is longer than {MAX_PATTERN} bytes"),
        ));
    }
    let purged = state.cache.purge(&pattern).await;
    let redis_enabled = state.cache.stats().redis_enabled;
    Ok(Json(json!({
        "cache_enabled": state.live.load().cache_rules.any(),
        "pattern": pattern,
        "entries_cleared": purged.memory + purged.redis.unwrap_or(0),
        "memory_cleared": purged.memory,
        "redis_cleared": purged.redis,
        "nodes_notified": purged.nodes_notified,
        // With Redis configured but unreachable, other nodes could not be told: said, not hidden.
        "redis_unreachable": redis_enabled && purged.redis.is_none(),
    })))
}
