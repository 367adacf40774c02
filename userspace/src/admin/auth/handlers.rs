//! `POST /admin/auth/login`, `POST /admin/auth/refresh` (the refresh token as bearer, or in the body),
//! `POST /admin/auth/logout` and `GET /admin/auth/users`.

use std::sync::Arc;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{LoginError, Principal};
use crate::admin::{AdminState, ApiError};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginRequest {
    username: String,
    password: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RefreshRequest {
    refresh_token: String,
}

fn login_error(e: LoginError) -> Response {
    match e {
        LoginError::Locked(left) => {
            let mut r = ApiError::new(StatusCode::TOO_MANY_REQUESTS, e.to_string()).into_response();
            if let Ok(v) = HeaderValue::from_str(&left.as_secs().max(1).to_string()) {
                r.headers_mut().insert(header::RETRY_AFTER, v);
            }
            r
        }
        LoginError::Disabled => ApiError::new(StatusCode::CONFLICT, e.to_string()).into_response(),
        LoginError::Invalid | LoginError::Token(_) => {
            ApiError::new(StatusCode::UNAUTHORIZED, e.to_string()).into_response()
        }
    }
}

pub async fn login(State(state): State<Arc<AdminState>>, body: Bytes) -> Response {
    let req: LoginRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        // serde's message could quote the password; say only what shape is wanted.
        Err(_) => {
            return ApiError::bad_request("body", "expected {\"username\": string, \"password\": string}")
                .into_response();
        }
    };
    match state.auth.login(&req.username, &req.password).await {
        Ok(issued) => Json(issued).into_response(),
        Err(e) => login_error(e),
    }
}

pub async fn refresh(State(state): State<Arc<AdminState>>, headers: HeaderMap, body: Bytes) -> Response {
    let from_body = if body.is_empty() {
        None
    } else {
        match serde_json::from_slice::<RefreshRequest>(&body) {
            Ok(r) => Some(r.refresh_token),
            Err(_) => return ApiError::bad_request("body", "expected {\"refresh_token\": string}").into_response(),
        }
    };
    let token = match (from_body, super::guard::bearer(&headers)) {
        (Some(t), _) => t,
        (None, Some(t)) => t.to_owned(),
        (None, None) => {
            return ApiError::new(
                StatusCode::UNAUTHORIZED,
                "send the refresh token as `Authorization: Bearer` or {\"refresh_token\": ...}",
            )
            .into_response();
        }
    };
    match state.auth.refresh(&token) {
        Ok(issued) => Json(issued).into_response(),
        Err(e) => login_error(e),
    }
}

pub async fn logout(State(state): State<Arc<AdminState>>, Extension(p): Extension<Principal>) -> Json<Value> {
    let closed = state.auth.logout(&p);
    Json(json!({ "success": closed }))
}

pub async fn users(State(state): State<Arc<AdminState>>) -> Json<Value> {
    let users: Vec<Value> = state
        .auth
        .user_list()
        .into_iter()
        .map(|(u, r)| json!({ "username": u, "role": r.as_str() }))
        .collect();
    Json(json!({ "auth_enabled": state.auth.enabled(), "users": users }))
}
