//! `GET /admin/waf/rules` (the built-in rules and the custom rules as in force), `PUT /admin/waf/rules/{name}`
//! (change a built-in rule's `enabled`, `threshold` or `action`, or replace a custom rule), `POST
//! /admin/waf/rules` (add a custom rule) and `DELETE /admin/waf/rules/{name}` (delete a custom rule). A
//! change applies to the running generation at once, is kept over reloads (applied on top of the
//! configuration file) and saved next to the record file for restarts.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use bytes::Bytes;
use http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{AdminState, ApiError};
use crate::config::schema::{CustomRule, RuleAction, RuleSetting};
use crate::config::types::Fraction;
use crate::proxy::runtime::{CustomChange, RuleChangeError};
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
    let custom = state.live.custom_rules();
    match state.live.waf_rules() {
        Some(rules) => Json(json!({
            "waf_enabled": true,
            "rules": rules.iter().map(|(f, r)| rule_json(*f, r)).collect::<Vec<_>>(),
            "custom_rules": custom,
        })),
        None => Json(json!({ "waf_enabled": false, "rules": [], "custom_rules": custom })),
    }
}

fn parse_custom(body: &[u8]) -> Result<CustomRule, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::bad_request("body", format!("not a custom rule: {e}")))
}

fn change_error(e: RuleChangeError) -> ApiError {
    match e {
        RuleChangeError::UnknownRule(n) => ApiError::new(StatusCode::NOT_FOUND, format!("unknown rule `{n}`")),
        e @ RuleChangeError::Exists(_) => ApiError::new(StatusCode::CONFLICT, e.to_string()),
        e @ (RuleChangeError::Build(_) | RuleChangeError::CustomRule(_)) => {
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.to_string())
        }
        e @ RuleChangeError::Persist { .. } => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// `POST /admin/waf/rules`: adds a custom rule (409 when the name exists).
pub async fn create(State(state): State<Arc<AdminState>>, body: Bytes) -> Result<(StatusCode, Json<Value>), ApiError> {
    let rule = parse_custom(&body)?;
    if Family::parse(&rule.name).is_some() {
        return Err(ApiError::bad_request(
            "name",
            format!("`{}` is a built-in rule; give the custom rule another name", rule.name),
        ));
    }
    let name = rule.name.clone();
    state
        .live
        .put_custom_rule(rule, CustomChange::Create)
        .map_err(change_error)?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "success": true, "message": format!("custom rule {name} added") })),
    ))
}

/// `DELETE /admin/waf/rules/{name}`: deletes a custom rule (built-in rules are disabled, not deleted).
pub async fn delete(State(state): State<Arc<AdminState>>, Path(name): Path<String>) -> Result<Json<Value>, ApiError> {
    if Family::parse(&name).is_some() {
        return Err(ApiError::bad_request(
            "name",
            format!("`{name}` is a built-in rule: disable it with PUT {{\"enabled\": false}}"),
        ));
    }
    match state.live.delete_custom_rule(&name).map_err(change_error)? {
        true => Ok(Json(
            json!({ "success": true, "message": format!("custom rule {name} deleted") }),
        )),
        false => Err(ApiError::new(StatusCode::NOT_FOUND, format!("no custom rule `{name}`"))),
    }
}

pub async fn update(
    State(state): State<Arc<AdminState>>,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    if Family::parse(&name).is_none() {
        if !state.live.custom_rules().iter().any(|r| r.name == name) {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                format!(
                    "unknown rule `{name}`: not a custom rule (POST /admin/waf/rules adds one) nor a built-in one ({})",
                    Family::ALL.map(Family::name).join(", ")
                ),
            ));
        }
        let mut rule = parse_custom(&body)?;
        if rule.name != name {
            return Err(ApiError::bad_request(
                "name",
                format!("the body names `{}` but the path `{name}`", rule.name),
            ));
        }
        rule.name = name.clone();
        return match state
            .live
            .put_custom_rule(rule, CustomChange::Replace)
            .map_err(change_error)?
        {
            true => Ok(Json(
                json!({ "success": true, "message": format!("custom rule {name} replaced") }),
            )),
            false => Err(ApiError::new(
                StatusCode::NOT_FOUND,
                format!(
                    "unknown rule `{name}`: not a custom rule (POST /admin/waf/rules adds one) nor a built-in one ({})",
                    Family::ALL.map(Family::name).join(", ")
                ),
            )),
        };
    }
    let change: RuleChange = serde_json::from_slice(&body).map_err(|e| ApiError::bad_request("body", e.to_string()))?;
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
        Err(e) => Err(change_error(e)),
    }
}
