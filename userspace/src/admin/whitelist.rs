//! `GET/POST/DELETE /admin/waf/whitelist-ip`: the allow list, which the XDP program checks first (an allowed
//! source skips the deny list, geo policy and rate limit). POST body `{"ip", "duration" (seconds, 0 or absent =
//! permanent), "reason"}`; DELETE takes `?ip=`. Changes go to the maps and the record at once.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{Query, State};
use bytes::Bytes;
use http::StatusCode;
use rampart_common::EntrySource;
use serde::Deserialize;
use serde_json::{Value, json};

use super::blocked_ips::{BlockedIp, access_error, parse_cidr, parse_json};
use super::{AdminState, ApiError};
use crate::access::NewEntry;
use crate::xdp::ListKind;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AddRequest {
    ip: String,
    #[serde(default)]
    duration: Option<u64>,
    #[serde(default)]
    reason: Option<String>,
}

pub async fn list(State(state): State<Arc<AdminState>>) -> Result<Json<Value>, ApiError> {
    let entries = state.lists.entries(ListKind::Allow).map_err(access_error)?;
    let items: Vec<BlockedIp> = entries.iter().map(BlockedIp::from).collect();
    Ok(Json(json!({ "whitelisted_ips": items })))
}

pub async fn add(State(state): State<Arc<AdminState>>, body: Bytes) -> Result<(StatusCode, Json<Value>), ApiError> {
    let req: AddRequest = parse_json(&body)?;
    let cidr = parse_cidr(&req.ip)?;
    let reason = req.reason.unwrap_or_else(|| "admin".into());
    if reason.len() > 512 {
        return Err(ApiError::bad_request("reason", "reason is longer than 512 bytes"));
    }
    let listed = state
        .lists
        .add(
            ListKind::Allow,
            NewEntry {
                cidr,
                reason,
                source: EntrySource::Admin,
                ttl: req.duration.filter(|d| *d > 0).map(Duration::from_secs),
            },
        )
        .map_err(access_error)?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "success": true, "whitelisted_ip": BlockedIp::from(&listed) })),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoveQuery {
    ip: String,
}

pub async fn remove(
    State(state): State<Arc<AdminState>>,
    Query(q): Query<RemoveQuery>,
) -> Result<Json<Value>, ApiError> {
    let cidr = parse_cidr(&q.ip)?;
    match state.lists.remove(ListKind::Allow, cidr).map_err(access_error)? {
        Some(_) => Ok(Json(json!({ "success": true, "removed": cidr.to_string() }))),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("{cidr} is not on the allow list"),
        )),
    }
}
