//! `GET /admin/waf/stats`: what the WAF has inspected and blocked since start, by action and attack type,
//! and its mean inspection time — the same counters `/metrics` exposes.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use serde_json::{Map, Value, json};

use super::AdminState;

pub async fn stats(State(state): State<Arc<AdminState>>) -> Json<Value> {
    let s = state.proxy_metrics.waf.stats();
    let by = |pairs: &[(&str, u64)]| {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Value::from(*v)))
            .collect::<Map<_, _>>()
    };
    let blocked = s.by_action.iter().find(|(a, _)| *a == "blocked").map_or(0, |(_, n)| *n);
    Json(json!({
        "waf_enabled": state.live.waf_rules().is_some(),
        "requests_processed": s.inspected,
        "requests_blocked": blocked,
        "actions": by(&s.by_action),
        "attack_types": by(&s.by_attack),
        "performance": { "avg_processing_time_ms": s.avg_ms },
    }))
}
