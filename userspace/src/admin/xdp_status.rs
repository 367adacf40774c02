//! `GET /admin/xdp/status`: what `rampart xdp status` prints — attachment mode per interface, program id, map
//! sizes and entry counts, and the verdict counters.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use super::{AdminState, ApiError};
use crate::xdp::pins::definitions;

pub async fn status(State(state): State<Arc<AdminState>>) -> Result<Json<Value>, ApiError> {
    let x = &state.xdp;
    let attachments = x.attachments_json();
    let Some(maps) = &x.maps else {
        return Ok(Json(json!({
            "enabled": x.wanted,
            "loaded": false,
            "degraded": x.degraded,
            "attachments": attachments,
        })));
    };
    let counts = maps.entry_counts();
    let map_info: Vec<Value> = definitions(maps.rate_max_sources)
        .iter()
        .map(|d| json!({ "name": d.name, "max_entries": d.max_entries, "entries": counts.get(d.name) }))
        .collect();
    let totals = maps
        .stats
        .totals()
        .map_err(|e| ApiError::new(http::StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let counters: Vec<Value> = totals
        .iter()
        .map(|(r, c)| json!({ "action": r.action().as_str(), "reason": r.as_str(), "packets": c.packets, "bytes": c.bytes }))
        .collect();
    Ok(Json(json!({
        "enabled": x.wanted,
        "loaded": true,
        "degraded": x.degraded,
        "program_id": maps.program_id,
        "attachments": attachments,
        "maps": map_info,
        "counters": counters,
        "events_lost": maps.stats.events_lost().ok(),
    })))
}
