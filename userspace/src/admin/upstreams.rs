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
