//! `GET /admin/waf/rules` (the built-in rules as in force) and `PUT /admin/waf/rules/{name}` (change one
//! rule's `enabled`, `threshold` or `action`). A change applies to the running engine at once, is kept over
//! reloads (applied on top of the configuration file) and saved next to the record file for restarts.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{AdminState, ApiError};
use crate::config::schema::{RuleAction, RuleSetting};
use crate::config::types::Fraction;
use crate::proxy::runtime::RuleChangeError;
use crate::waf::Family;
use crate::waf::policy::RuleState;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleChange {
    enabled: Option<bool>,
    threshold: Option<f64>,
    action: Option<String>,
}

fn rule_json(f: Family, r: &RuleState) -> Value {
    json!({ "name": f.name(), "enabled": r.enabled, "threshold": r.threshold, "action": r.action.as_str() })
}

pub async fn list(State(state): State<Arc<AdminState>>) -> Json<Value> {
    match state.live.waf_rules() {
        Some(rules) => Json(json!({
            "waf_enabled": true,
            "rules": rules.iter().map(|(f, r)| rule_json(*f, r)).collect::<Vec<_>>(),
        })),
        None => Json(json!({ "waf_enabled": false, "rules": [] })),
    }
}

pub async fn update(
    State(state): State<Arc<AdminState>>,
    Path(name): Path<String>,
    body: Result<Json<RuleChange>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let Json(change) = body.map_err(|e| ApiError::bad_request("body", e.body_text()))?;
    if Family::parse(&name).is_none() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!(
                "unknown rule `{name}`; rules: {}",
                Family::ALL.map(Family::name).join(", ")
            ),
        ));
    }
    let threshold = match change.threshold {
        Some(t) if (0.0..=1.0).contains(&t) => Some(Fraction::new_const(t)),
        Some(t) => {
            return Err(ApiError::bad_request(
                "threshold",
                format!("must be between 0.0 and 1.0, got {t}"),
            ));
        }
        None => None,
    };
    let action = match change.action.as_deref() {
        None => None,
        Some("block") => Some(RuleAction::Block),
        Some("log") => Some(RuleAction::Log),
        Some("challenge") => Some(RuleAction::Challenge),
        Some("allow") => Some(RuleAction::Allow),
        Some(other) => {
            return Err(ApiError::bad_request(
                "action",
                format!("unknown action `{other}` (block, log, challenge, allow)"),
            ));
        }
    };
    if change.enabled.is_none() && threshold.is_none() && action.is_none() {
        return Err(ApiError::bad_request(
            "body",
            "nothing to change: give enabled, threshold or action",
        ));
    }
    let setting = RuleSetting {
        enabled: change.enabled,
        threshold,
        action,
    };
    match state.live.set_waf_rule(&name, &setting) {
        Ok(Some(rule)) => Ok(Json(json!({
            "success": true,
            "message": format!("rule {} updated", Family::parse(&name).map_or("?", Family::name)),
            "rule": Family::parse(&name).map(|f| rule_json(f, &rule)),
        }))),
        Ok(None) => Ok(Json(json!({
            "success": true,
            "message": "saved; the WAF is disabled (waf.enabled: false), so it applies once it is enabled",
        }))),
        Err(RuleChangeError::UnknownRule(n)) => {
            Err(ApiError::new(StatusCode::NOT_FOUND, format!("unknown rule `{n}`")))
        }
        Err(e @ RuleChangeError::Build(_)) => Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.to_string())),
        Err(e @ RuleChangeError::Persist { .. }) => {
            Err(ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
        }
    }
}
