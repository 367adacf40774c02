//! `GET /admin/proxy/cache/stats` and `DELETE /admin/proxy/cache/clear`. This build has no response cache
//! (`proxy.caching` is accepted but not enforced, as the start-up warning says), so both answer what is true:
//! a cache that is not running, holding nothing, with `cache_enabled: false` and a message saying so, rather
//! than invented figures.

use axum::Json;
use axum::extract::Query;
use serde::Deserialize;
use serde_json::{Value, json};

use super::ApiError;

const NOT_BUILT: &str = "this build has no response cache: proxy.caching is not enforced yet";

pub async fn stats() -> Json<Value> {
    Json(json!({
        "cache_enabled": false,
        "message": NOT_BUILT,
        "hits": 0,
        "misses": 0,
        "hit_rate": 0.0,
        "memory_usage": 0,
        "entries": 0,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClearQuery {
    pattern: Option<String>,
}

pub async fn clear(Query(q): Query<ClearQuery>) -> Result<Json<Value>, ApiError> {
    if let Some(p) = &q.pattern
        && p.len() > 1024
    {
        return Err(ApiError::bad_request("pattern", "pattern is longer than 1024 bytes"));
    }
    Ok(Json(json!({
        "cache_enabled": false,
        "message": NOT_BUILT,
        "pattern": q.pattern,
        "entries_cleared": 0,
    })))
}
