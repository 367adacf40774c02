//! `GET /health`: overall status and per-component state. `degraded` whenever a component the configuration
//! asked for is not working (for example XDP requested but not loaded or not attached, or the ACME server
//! failing to renew the certificate), so it is never silent.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use http::StatusCode;
use serde_json::{Value, json};

use super::AdminState;

pub async fn health(State(state): State<Arc<AdminState>>) -> (StatusCode, Json<Value>) {
    let x = &state.xdp;
    let attachments = x.attachments_json();
    let mut degraded = Vec::new();
    if x.degraded.is_some() {
        degraded.push("xdp");
    }
    let cache = state.cache.stats();
    let redis_down = cache.redis_enabled && !cache.redis_up;
    if redis_down {
        degraded.push("cache_redis");
    }
    let xdp_status = if !x.wanted {
        "disabled"
    } else if x.degraded.is_some() {
        "degraded"
    } else {
        "healthy"
    };
    if state.fleet.as_ref().is_some_and(|f| !f.is_up()) {
        degraded.push("fleet");
    }
    let fleet = match &state.fleet {
        None => json!({ "status": "disabled" }),
        Some(f) => json!({
            "status": if f.is_up() { "healthy" } else { "degraded" },
            "reason": (!f.is_up()).then_some("Redis unreachable: lists are enforced locally, changes are queued"),
            "node_id": f.node_id,
            "redis": f.redis,
        }),
    };
    let acme = state.renewer.as_ref().map(|r| r.status());
    let acme_degraded = acme.as_ref().and_then(crate::tls::renew::RenewStatus::degraded);
    if acme_degraded.is_some() {
        degraded.push("acme");
    }
    let acme_json = match (&acme, &acme_degraded) {
        (None, _) => json!({ "status": "disabled" }),
        (Some(s), reason) => json!({
            "status": if reason.is_some() { "degraded" } else { "healthy" },
            "reason": reason,
            "next_retry": s.next_retry,
            "renew_at": s.renew_at,
            "last_success": s.last_success,
        }),
    };
    let lists_enforced_by = if state.lists.is_enforced_at_l7() { "l7" } else { "xdp" };
    let body = json!({
        "status": if degraded.is_empty() { "healthy" } else { "degraded" },
        "degraded": degraded,
        "uptime_seconds": state.started.elapsed().as_secs(),
        "components": {
            "proxy": { "status": "healthy" },
            "cache": {
                "status": if redis_down { "degraded" } else { "healthy" },
                "reason": redis_down.then_some("Redis cache unreachable: serving from the memory cache alone"),
                "redis": if !cache.redis_enabled { "disabled" } else if redis_down { "down" } else { "up" },
            },
            "xdp": {
                "status": xdp_status,
                "reason": x.degraded,
                "attached": attachments,
                "lists_enforced_by": lists_enforced_by,
            },
            "fleet": fleet,
            "acme": acme_json,
        },
    });
    // Degraded still serves traffic: 200, so load balancers keep the node; the body says what is wrong.
    (StatusCode::OK, Json(body))
}
