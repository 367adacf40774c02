//! The admin plane: an axum router on its own listener with `/health`, the metrics endpoint and the
//! management API. Handlers translate HTTP to calls on the services in [`AdminState`]; they hold no state of
//! their own.

mod blocked_ips;
mod error;
mod health;
mod ssl;
mod upstreams;
mod waf_rules;
mod xdp_status;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::routing::get;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::access::AccessLists;
use crate::telemetry::metrics::Metrics;
use crate::xdp::{Attachment, XdpMaps};

pub use error::ApiError;

/// What the admin handlers operate on.
pub struct AdminState {
    pub lists: Arc<AccessLists>,
    pub live: Arc<crate::proxy::LiveRuntime>,
    pub metrics: Arc<Metrics>,
    pub xdp: XdpState,
    /// The ACME certificate lifecycle, when `ssl.auto_provision` is on.
    pub renewer: Option<Arc<crate::tls::renew::Renewer>>,
    pub started: Instant,
}

/// The kernel half as the admin plane sees it.
pub struct XdpState {
    /// `xdp.enabled`.
    pub wanted: bool,
    /// Interfaces the program is attached to.
    pub attachments: Vec<Attachment>,
    /// Why XDP is not fully in force, when it was wanted.
    pub degraded: Option<String>,
    pub maps: Option<Arc<XdpMaps>>,
}

impl XdpState {
    /// The attachments as JSON, for `/health` and `/admin/xdp/status`.
    fn attachments_json(&self) -> Vec<serde_json::Value> {
        self.attachments
            .iter()
            .map(|a| serde_json::json!({ "interface": a.interface, "mode": a.mode.as_str(), "pinned": a.pinned }))
            .collect()
    }
}

pub fn router(state: Arc<AdminState>, metrics_path: &str, health_path: &str) -> Router {
    Router::new()
        .route(health_path, get(health::health))
        .route(metrics_path, get(metrics))
        .route("/admin/xdp/status", get(xdp_status::status))
        .route("/admin/proxy/upstreams", get(upstreams::list))
        .route("/admin/system/reload-config", axum::routing::post(reload))
        .route("/admin/waf/rules", get(waf_rules::list))
        .route("/admin/waf/rules/{name}", axum::routing::put(waf_rules::update))
        .route("/admin/ssl/certificates", get(ssl::list))
        .route(
            "/admin/ssl/certificates/{domain}/renew",
            axum::routing::post(ssl::renew),
        )
        .route(
            "/admin/waf/blocked-ips",
            get(blocked_ips::list)
                .post(blocked_ips::add)
                .delete(blocked_ips::remove),
        )
        .with_state(state)
}

async fn metrics(
    axum::extract::State(state): axum::extract::State<Arc<AdminState>>,
) -> impl axum::response::IntoResponse {
    (
        [(http::header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        state.metrics.render(),
    )
}

/// `POST /admin/system/reload-config`: validate → build → swap, or nothing changes.
async fn reload(
    axum::extract::State(state): axum::extract::State<Arc<AdminState>>,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    match state.live.reload("admin API") {
        Ok(version) => Ok(axum::Json(serde_json::json!({
            "success": true,
            "message": format!("configuration version {version} is now in force"),
            "version": version,
        }))),
        Err(e) => Err(ApiError::new(
            http::StatusCode::UNPROCESSABLE_ENTITY,
            format!("reload refused: {e}"),
        )),
    }
}

/// Serves the admin router until `shutdown` turns true.
pub async fn serve(listener: TcpListener, app: Router, mut shutdown: watch::Receiver<bool>) -> anyhow::Result<()> {
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        let _ = shutdown.changed().await;
    })
    .await
    .map_err(|e| anyhow::anyhow!("admin listener failed: {e}"))
}
