//! The per-route guard: each route is registered with the [`Access`] it needs, and this middleware checks the
//! bearer token against it before the handler runs: 401 without a valid token, 403 with too low a role.
//! The verified [`Principal`] is handed to the handler as a request extension.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use tracing::info;

use super::Auth;
use crate::admin::ApiError;
use crate::config::schema::AdminRole;

/// What a route needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// No token: health for load balancers, the metrics scrape, login, refresh (which carries its own token),
    /// and the dashboard's static page (which holds no data).
    Public,
    /// A valid token of at least this role.
    Role(AdminRole),
}

impl Access {
    /// As written in the OpenAPI document's `x-rampart-role`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Public => "public",
            Self::Role(r) => r.as_str(),
        }
    }
}

/// The bearer token of a request, if it has one.
pub fn bearer(req_headers: &http::HeaderMap) -> Option<&str> {
    let v = req_headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

pub async fn guard(State((auth, access)): State<(Arc<Auth>, Access)>, mut req: Request, next: Next) -> Response {
    let Access::Role(needed) = access else {
        return next.run(req).await;
    };
    let principal = match auth.authenticate(bearer(req.headers())) {
        Ok(p) => p,
        Err(e) => {
            let mut resp =
                ApiError::new(StatusCode::UNAUTHORIZED, format!("authentication required: {e}")).into_response();
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"rampart\""),
            );
            return resp;
        }
    };
    if principal.role < needed {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            format!(
                "role {} may not do this; it needs {}",
                principal.role.as_str(),
                needed.as_str()
            ),
        )
        .into_response();
    }
    let changes = req.method() != http::Method::GET;
    let (method, path) = (req.method().clone(), req.uri().path().to_owned());
    let user = principal.user.clone();
    req.extensions_mut().insert(principal);
    let resp = next.run(req).await;
    if changes && auth.enabled() {
        // The audit trail: who changed what. Paths carry names and addresses, never secrets.
        info!(user = %user, %method, path = %path, status = resp.status().as_u16(), "admin change");
    }
    resp
}
