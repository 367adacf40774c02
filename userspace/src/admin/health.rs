//! `GET /health`: overall status and per-component state. `degraded` whenever a component the configuration
//! asked for is not working (for example XDP requested but not attached), so it is never silent.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use http::StatusCode;
use serde_json::{Value, json};

use super::AdminState;

pub async fn health(State(state): State<Arc<AdminState>>) -> (StatusCode, Json<Value>) {
    let xdp_ok = !state.xdp_wanted || !state.xdp_attachments.is_empty();
    let attachments: Vec<Value> = state
        .xdp_attachments
        .iter()
        .map(|a| json!({ "interface": a.interface, "mode": a.mode.as_str() }))
        .collect();
    let mut degraded = Vec::new();
    if !xdp_ok {
        degraded.push("xdp");
    }
    let status = if degraded.is_empty() { "healthy" } else { "degraded" };
    let body = json!({
        "status": status,
        "degraded": degraded,
        "uptime_seconds": state.started.elapsed().as_secs(),
        "components": {
            "proxy": { "status": "healthy" },
            "xdp": {
                "status": if !state.xdp_wanted { "disabled" } else if xdp_ok { "healthy" } else { "degraded" },
                "attached": attachments,
            },
        },
    });
    // Degraded still serves traffic: 200, so load balancers keep the node; the body says what is wrong.
    (StatusCode::OK, Json(body))
}
