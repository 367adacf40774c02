//! `GET /admin/system/status` (overall state, uptime, memory and CPU of the daemon, components) and
//! `GET /admin/system/logs?level=&since=&limit=` (recent records from the in-memory log ring).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::Json;
use axum::extract::{Query, State};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{AdminState, ApiError};
use crate::telemetry::{log_ring, process};

pub async fn status(State(state): State<Arc<AdminState>>) -> Json<Value> {
    let x = &state.xdp;
    let xdp = if !x.wanted {
        "disabled"
    } else if x.degraded.is_some() {
        "degraded"
    } else {
        "healthy"
    };
    let rt = state.live.load();
    let mut upstreams_down = Vec::new();
    for pool in rt.upstreams.iter() {
        if !pool
            .servers
            .iter()
            .any(|s| matches!(s.status(), "healthy" | "half_open"))
        {
            upstreams_down.push(pool.name.clone());
        }
    }
    let upstreams = if upstreams_down.is_empty() {
        "healthy"
    } else {
        "degraded"
    };
    let waf = if state.live.waf_rules().is_some() {
        "healthy"
    } else {
        "disabled"
    };
    let components = vec![
        json!({ "name": "proxy", "status": "healthy", "config_version": rt.version }),
        json!({ "name": "waf", "status": waf }),
        json!({ "name": "xdp", "status": xdp, "reason": x.degraded }),
        json!({ "name": "upstreams", "status": upstreams, "without_healthy_server": upstreams_down }),
        json!({ "name": "access_lists", "status": "healthy",
                "enforced_by": if state.lists.is_enforced_at_l7() { "l7" } else { "xdp" } }),
        json!({ "name": "admin_auth", "status": if state.auth.enabled() { "enabled" } else { "disabled" } }),
    ];
    let degraded = components.iter().any(|c| c["status"] == "degraded");
    let u = process::usage();
    let (total, available) = process::memory();
    let uptime = state.started.elapsed();
    let cpu = if uptime.as_secs_f64() > 0.0 {
        100.0 * u.cpu_seconds / uptime.as_secs_f64()
    } else {
        0.0
    };
    Json(json!({
        "status": if degraded { "degraded" } else { "healthy" },
        "uptime": uptime.as_secs(),
        "memory_usage": { "used": u.resident_bytes, "total": total, "available": available },
        "cpu_usage": cpu,
        "open_fds": u.open_fds,
        "threads": u.threads,
        "components": components,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogQuery {
    level: Option<String>,
    /// RFC 3339 time, or a span back from now such as `5m` or `1h 30m`.
    since: Option<String>,
    limit: Option<usize>,
}

const DEFAULT_LIMIT: usize = 100;

pub async fn logs(Query(q): Query<LogQuery>) -> Result<Json<Value>, ApiError> {
    let level = match q.level.as_deref().map(str::to_ascii_lowercase).as_deref() {
        None => tracing::Level::TRACE,
        Some("trace") => tracing::Level::TRACE,
        Some("debug") => tracing::Level::DEBUG,
        Some("info") => tracing::Level::INFO,
        Some("warn" | "warning") => tracing::Level::WARN,
        Some("error") => tracing::Level::ERROR,
        Some(other) => {
            return Err(ApiError::bad_request(
                "level",
                format!("unknown level `{other}` (trace, debug, info, warn, error)"),
            ));
        }
    };
    let since = match q.since.as_deref() {
        None => None,
        Some(s) => Some(parse_since(s).ok_or_else(|| {
            ApiError::bad_request(
                "since",
                format!("`{s}` is neither an RFC 3339 time nor a duration like 5m"),
            )
        })?),
    };
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
    if limit == 0 || limit > log_ring::CAPACITY {
        return Err(ApiError::bad_request(
            "limit",
            format!("must be 1 to {}, got {limit}", log_ring::CAPACITY),
        ));
    }
    let logs = log_ring::global().query(level, since, limit);
    Ok(Json(json!({ "count": logs.len(), "logs": logs })))
}

fn parse_since(s: &str) -> Option<SystemTime> {
    if let Ok(t) = humantime::parse_rfc3339_weak(s) {
        return Some(t);
    }
    let back: Duration = humantime::parse_duration(s).ok()?;
    SystemTime::now().checked_sub(back)
}
