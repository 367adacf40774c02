//! `GET /admin/proxy/upstreams`: every pool with its algorithm and each server's live state — status (healthy,
//! unhealthy by active checks, circuit_open / half_open by passive health, disabled), weight, requests in flight
//! and latency average.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use super::AdminState;

pub async fn list(State(state): State<Arc<AdminState>>) -> Json<Value> {
    let rt = state.live.load();
    let mut pools: Vec<Value> = rt
        .upstreams
        .iter()
        .map(|pool| {
            let servers: Vec<Value> = pool
                .servers
                .iter()
                .map(|s| {
                    json!({
                        "id": s.id,
                        "host": s.host,
                        "port": s.port,
                        "status": s.status(),
                        "weight": s.weight.load(Ordering::Relaxed),
                        "active_connections": s.active.load(Ordering::Relaxed),
                        "latency_ms": s.ewma_latency_ns() as f64 / 1e6,
                    })
                })
                .collect();
            json!({ "name": pool.name, "algorithm": pool.algorithm, "servers": servers })
        })
        .collect();
    pools.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    Json(json!({ "upstreams": pools, "config_version": rt.version }))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerChange {
    enabled: Option<bool>,
    weight: Option<u32>,
}

/// Largest weight accepted: far above any useful ratio, and small enough that weight sums never overflow.
const MAX_WEIGHT: u32 = 10_000;

/// `PUT /admin/proxy/upstreams/{name}/servers/{server_id}` (`server_id` is `host:port` as listed): takes a
/// server out of rotation or back, or changes its weight, at once. The change lives in the server's live
/// state, which survives reloads that keep the server's settings; the configuration file is not rewritten.
/// (ip_hash keeps its ring from the configured weights; the other algorithms use the new weight.)
pub async fn update_server(
    State(state): State<Arc<AdminState>>,
    axum::extract::Path((name, server_id)): axum::extract::Path<(String, String)>,
    body: Result<Json<ServerChange>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Value>, super::ApiError> {
    use http::StatusCode;
    let Json(change) = body.map_err(|e| super::ApiError::bad_request("body", e.body_text()))?;
    if change.enabled.is_none() && change.weight.is_none() {
        return Err(super::ApiError::bad_request(
            "body",
            "nothing to change: give enabled or weight",
        ));
    }
    if let Some(w) = change.weight
        && w > MAX_WEIGHT
    {
        return Err(super::ApiError::bad_request(
            "weight",
            format!("must be at most {MAX_WEIGHT}, got {w}"),
        ));
    }
    let rt = state.live.load();
    let pool = rt
        .upstreams
        .iter()
        .find(|p| p.name == name)
        .ok_or_else(|| super::ApiError::new(StatusCode::NOT_FOUND, format!("no upstream named `{name}`")))?;
    let server = pool.servers.iter().find(|s| s.id == server_id).ok_or_else(|| {
        let ids: Vec<&str> = pool.servers.iter().map(|s| s.id.as_str()).collect();
        super::ApiError::new(
            StatusCode::NOT_FOUND,
            format!(
                "upstream `{name}` has no server `{server_id}`; servers: {}",
                ids.join(", ")
            ),
        )
    })?;
    if let Some(e) = change.enabled {
        server.enabled.store(e, Ordering::Relaxed);
    }
    if let Some(w) = change.weight {
        server.weight.store(w, Ordering::Relaxed);
    }
    Ok(Json(json!({
        "success": true,
        "server": {
            "id": server.id,
            "status": server.status(),
            "weight": server.weight.load(Ordering::Relaxed),
        },
    })))
}
