//! `GET/POST/DELETE /admin/waf/blocked-ips`: the deny list, enforced in the XDP program.
//!
//! POST body: `{"ip": "203.0.113.7" | "203.0.113.0/24", "reason": "...", "duration": seconds}`; `duration`
//! absent or 0 means permanent. DELETE takes `{"ip": ...}` as a JSON body or `?ip=` in the query.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::Json;
use axum::extract::{Query, State};
use bytes::Bytes;
use http::StatusCode;
use rampart_common::EntrySource;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{AdminState, ApiError};
use crate::access::{AccessError, Listed, NewEntry};
use crate::config::types::Cidr;
use crate::xdp::ListKind;

/// Longest reason kept; longer text is refused rather than truncated so nothing is silently lost.
const MAX_REASON_LEN: usize = 512;

#[derive(Serialize)]
pub struct BlockedIp {
    ip: String,
    reason: String,
    source: &'static str,
    created_at: String,
    /// RFC 3339, or null for a permanent entry.
    expires: Option<String>,
}

impl From<&Listed> for BlockedIp {
    fn from(l: &Listed) -> Self {
        let e = &l.entry;
        Self {
            ip: e.cidr.to_string(),
            reason: e.reason.clone(),
            source: e.source.as_str(),
            created_at: rfc3339(e.created_at),
            expires: e.expires_at.map(rfc3339),
        }
    }
}

fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

pub async fn list(State(state): State<Arc<AdminState>>) -> Result<Json<Value>, ApiError> {
    let entries = state.lists.entries(ListKind::Deny).map_err(access_error)?;
    let items: Vec<BlockedIp> = entries.iter().map(BlockedIp::from).collect();
    let enforced_by = if state.lists.is_enforced_at_l7() { "l7" } else { "xdp" };
    Ok(Json(json!({ "blocked_ips": items, "enforced_by": enforced_by })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AddRequest {
    ip: String,
    #[serde(default)]
    reason: Option<String>,
    /// Seconds; 0 or absent = permanent.
    #[serde(default)]
    duration: Option<u64>,
}

pub async fn add(State(state): State<Arc<AdminState>>, body: Bytes) -> Result<(StatusCode, Json<Value>), ApiError> {
    let req: AddRequest = parse_json(&body)?;
    let cidr = parse_cidr(&req.ip)?;
    let reason = req.reason.unwrap_or_else(|| "admin".into());
    if reason.len() > MAX_REASON_LEN {
        return Err(ApiError::bad_request(
            "reason",
            format!("reason is longer than {MAX_REASON_LEN} bytes"),
        ));
    }
    let ttl = req.duration.filter(|d| *d > 0).map(Duration::from_secs);
    let listed = state
        .lists
        .add(
            ListKind::Deny,
            NewEntry {
                cidr,
                reason,
                source: EntrySource::Admin,
                ttl,
            },
        )
        .map_err(access_error)?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "success": true, "blocked_ip": BlockedIp::from(&listed) })),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoveQuery {
    ip: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RemoveRequest {
    ip: String,
}

pub async fn remove(
    State(state): State<Arc<AdminState>>,
    Query(query): Query<RemoveQuery>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let ip = match (query.ip, body.is_empty()) {
        (Some(ip), true) => ip,
        (None, false) => parse_json::<RemoveRequest>(&body)?.ip,
        (Some(_), false) => {
            return Err(ApiError::bad_request(
                "ip",
                "give the address in the query or the body, not both",
            ));
        }
        (None, true) => return Err(ApiError::bad_request("ip", "missing `ip` (JSON body or ?ip= query)")),
    };
    let cidr = parse_cidr(&ip)?;
    match state.lists.remove(ListKind::Deny, cidr).map_err(access_error)? {
        Some(_) => Ok(Json(json!({ "success": true, "removed": cidr.to_string() }))),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("{cidr} is not on the deny list"),
        )),
    }
}

pub(super) fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::bad_request("body", format!("invalid JSON body: {e}")))
}

pub(super) fn parse_cidr(ip: &str) -> Result<Cidr, ApiError> {
    ip.parse()
        .map_err(|e: crate::config::types::CidrError| ApiError::bad_request("ip", e.to_string()))
}

pub(super) fn access_error(e: AccessError) -> ApiError {
    match e {
        AccessError::Protected { .. } => ApiError::bad_request("ip", e.to_string()),
        AccessError::Full { .. } => ApiError::new(StatusCode::INSUFFICIENT_STORAGE, e.to_string()),
        AccessError::Map { .. } | AccessError::Record(_) => {
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
        }
    }
}
