//! The admin plane: an axum router on its own listener with `/health`, the metrics endpoint and the
//! management API. Handlers translate HTTP to calls on the services in [`AdminState`]; they hold no state of
//! their own.
//!
//! Every route is registered in one table (`routes`) together with the [`Access`] it needs; the table is
//! what the guard enforces and what the OpenAPI document (`openapi.json`) is checked against, so a route can
//! be neither unguarded nor undocumented. Around all routes: CORS (outermost, so refusals are readable by an
//! allowed page), then the admin rate limit.

pub mod auth;
mod blocked_ips;
mod cache;
mod cors;
mod dashboard;
mod error;
mod health;
mod rate_limit;
mod ssl;
mod system;
pub mod tls;
mod upstreams;
mod waf_rules;
mod waf_stats;
mod whitelist;
mod ws;
mod xdp_status;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::routing::{MethodRouter, delete, get, post, put};
use http::Method;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::access::AccessLists;
use crate::config::schema::{AdminConfig, AdminRole};
use crate::proxy::metrics::ProxyMetrics;
use crate::telemetry::metrics::Metrics;
use crate::xdp::{Attachment, XdpMaps};

pub use auth::{Access, Auth};
pub use error::ApiError;

/// The OpenAPI 3 document, as written by hand next to this file.
pub const OPENAPI: &str = include_str!("openapi.json");

/// What the admin handlers operate on.
pub struct AdminState {
    pub lists: Arc<AccessLists>,
    pub live: Arc<crate::proxy::LiveRuntime>,
    pub metrics: Arc<Metrics>,
    pub proxy_metrics: Arc<ProxyMetrics>,
    /// The response cache (its stores; whether anything is cached is the live configuration's rules).
    pub cache: Arc<crate::proxy::cache::ResponseCache>,
    pub auth: Arc<Auth>,
    pub xdp: XdpState,
    /// The fleet link, when `fleet.enabled`.
    pub fleet: Option<Arc<crate::fleet::FleetStatus>>,
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

/// One registered route: what the guard enforces and the OpenAPI document must describe.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteEntry {
    pub method: Method,
    pub path: String,
    pub access: Access,
}

/// Builds the router one route at a time, wrapping each in the guard with its access and recording it.
struct Book {
    router: Router<Arc<AdminState>>,
    entries: Vec<RouteEntry>,
    auth: Arc<Auth>,
}

impl Book {
    fn add(mut self, method: Method, path: &str, access: Access, handler: MethodRouter<Arc<AdminState>>) -> Self {
        let guarded = handler.route_layer(axum::middleware::from_fn_with_state(
            (self.auth.clone(), access),
            auth::guard,
        ));
        self.router = self.router.route(path, guarded);
        self.entries.push(RouteEntry {
            method,
            path: path.to_owned(),
            access,
        });
        self
    }
}

const VIEWER: Access = Access::Role(AdminRole::Viewer);
const OPERATOR: Access = Access::Role(AdminRole::Operator);
const ADMIN: Access = Access::Role(AdminRole::Admin);

/// The route table. `health_path` and `metrics_path` come from configuration (`/health` and `/metrics` by
/// default, the names the OpenAPI document uses).
pub fn routes(auth: Arc<Auth>, metrics_path: &str, health_path: &str) -> (Router<Arc<AdminState>>, Vec<RouteEntry>) {
    let openapi = Arc::new(openapi_for(metrics_path, health_path));
    let book = Book {
        router: Router::new(),
        entries: Vec::new(),
        auth,
    }
    .add(Method::GET, health_path, Access::Public, get(health::health))
    .add(Method::GET, metrics_path, Access::Public, get(metrics))
    .add(Method::GET, "/admin/metrics", VIEWER, get(metrics))
    .add(
        Method::GET,
        "/admin/openapi.json",
        VIEWER,
        get(move || {
            let doc = openapi.clone();
            async move {
                (
                    [(http::header::CONTENT_TYPE, "application/json")],
                    doc.as_str().to_owned(),
                )
            }
        }),
    )
    .add(Method::POST, "/admin/auth/login", Access::Public, post(auth::login))
    .add(Method::POST, "/admin/auth/refresh", Access::Public, post(auth::refresh))
    .add(Method::POST, "/admin/auth/logout", VIEWER, post(auth::logout))
    .add(Method::GET, "/admin/auth/users", ADMIN, get(auth::users))
    .add(Method::GET, "/admin/waf/stats", VIEWER, get(waf_stats::stats))
    .add(Method::GET, "/admin/waf/rules", VIEWER, get(waf_rules::list))
    .add(Method::POST, "/admin/waf/rules", OPERATOR, post(waf_rules::create))
    .add(Method::PUT, "/admin/waf/rules/{name}", OPERATOR, put(waf_rules::update))
    .add(
        Method::DELETE,
        "/admin/waf/rules/{name}",
        OPERATOR,
        delete(waf_rules::delete),
    )
    .add(Method::GET, "/admin/waf/blocked-ips", VIEWER, get(blocked_ips::list))
    .add(Method::POST, "/admin/waf/blocked-ips", OPERATOR, post(blocked_ips::add))
    .add(
        Method::DELETE,
        "/admin/waf/blocked-ips",
        OPERATOR,
        delete(blocked_ips::remove),
    )
    .add(Method::GET, "/admin/waf/whitelist-ip", VIEWER, get(whitelist::list))
    .add(Method::POST, "/admin/waf/whitelist-ip", OPERATOR, post(whitelist::add))
    .add(
        Method::DELETE,
        "/admin/waf/whitelist-ip",
        OPERATOR,
        delete(whitelist::remove),
    )
    .add(Method::GET, "/admin/xdp/status", VIEWER, get(xdp_status::status))
    .add(Method::GET, "/admin/proxy/upstreams", VIEWER, get(upstreams::list))
    .add(
        Method::PUT,
        "/admin/proxy/upstreams/{name}/servers/{server_id}",
        OPERATOR,
        put(upstreams::update_server),
    )
    .add(Method::GET, "/admin/proxy/cache/stats", VIEWER, get(cache::stats))
    .add(
        Method::DELETE,
        "/admin/proxy/cache/clear",
        OPERATOR,
        delete(cache::clear),
    )
    .add(Method::GET, "/admin/ssl/certificates", VIEWER, get(ssl::list))
    .add(
        Method::POST,
        "/admin/ssl/certificates/{domain}/renew",
        OPERATOR,
        post(ssl::renew),
    )
    .add(Method::GET, "/admin/system/status", VIEWER, get(system::status))
    .add(Method::GET, "/admin/system/logs", OPERATOR, get(system::logs))
    .add(Method::POST, "/admin/system/reload-config", ADMIN, post(reload))
    // The token arrives as the socket's first message (browsers cannot set headers on a WebSocket).
    .add(Method::GET, "/admin/ws", Access::Public, get(ws::upgrade))
    .add(Method::GET, "/admin/dashboard", Access::Public, get(dashboard::html))
    .add(Method::GET, "/admin/dashboard.js", Access::Public, get(dashboard::js));
    (book.router, book.entries)
}

/// The document with the configured health and metrics paths in place of the defaults.
fn openapi_for(metrics_path: &str, health_path: &str) -> String {
    let Ok(mut doc) = serde_json::from_str::<serde_json::Value>(OPENAPI) else {
        return OPENAPI.to_owned();
    };
    if let Some(paths) = doc.get_mut("paths").and_then(|p| p.as_object_mut()) {
        for (default, configured) in [("/health", health_path), ("/metrics", metrics_path)] {
            if default != configured
                && let Some(v) = paths.remove(default)
            {
                paths.insert(configured.to_owned(), v);
            }
        }
    }
    serde_json::to_string_pretty(&doc).unwrap_or_else(|_| OPENAPI.to_owned())
}

/// The whole admin application: the route table, the rate limit and CORS from `admin`.
pub fn router(state: Arc<AdminState>, admin: &AdminConfig, metrics_path: &str, health_path: &str) -> Router {
    let (mut app, _) = routes(state.auth.clone(), metrics_path, health_path);
    if let Some(rl) = rate_limit::RateLimit::new(
        &admin.rate_limiting,
        vec![metrics_path.to_owned(), health_path.to_owned()],
    ) {
        app = app.layer(axum::middleware::from_fn_with_state(Arc::new(rl), rate_limit::limit));
    }
    if let Some(c) = cors::Cors::new(&admin.cors) {
        app = app.layer(axum::middleware::from_fn_with_state(Arc::new(c), cors::cors));
    }
    app.with_state(state)
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

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a test reports failure by panicking
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::config::schema::AdminAuthConfig;

    /// Every route the router serves is in the OpenAPI document with the same role, and every operation
    /// the document lists is served: neither can change without the other.
    #[test]
    fn the_openapi_document_lists_exactly_the_routes_with_their_roles() {
        let auth = Arc::new(Auth::new(&AdminAuthConfig::default()).unwrap());
        let (_, entries) = routes(auth, "/metrics", "/health");
        let doc: serde_json::Value = serde_json::from_str(OPENAPI).unwrap();
        assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
        let mut documented = BTreeSet::new();
        for (path, ops) in doc["paths"].as_object().unwrap() {
            for (method, op) in ops.as_object().unwrap() {
                let role = op["x-rampart-role"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{method} {path} has no role"));
                assert_eq!(
                    role == "public",
                    op.get("security") == Some(&serde_json::json!([])),
                    "{method} {path}"
                );
                documented.insert((method.to_ascii_uppercase(), path.clone(), role.to_owned()));
            }
        }
        let served: BTreeSet<_> = entries
            .iter()
            .map(|e| {
                (
                    e.method.as_str().to_owned(),
                    e.path.clone(),
                    e.access.as_str().to_owned(),
                )
            })
            .collect();
        assert_eq!(entries.len(), served.len(), "a route is registered twice");
        let undocumented: Vec<_> = served.difference(&documented).collect();
        let unserved: Vec<_> = documented.difference(&served).collect();
        assert!(
            undocumented.is_empty(),
            "served but not documented (or another role): {undocumented:?}"
        );
        assert!(
            unserved.is_empty(),
            "documented but not served (or another role): {unserved:?}"
        );
    }

    #[test]
    fn configured_health_and_metrics_paths_replace_the_defaults_in_the_served_document() {
        let doc: serde_json::Value = serde_json::from_str(&openapi_for("/m", "/h")).unwrap();
        assert!(doc["paths"].get("/m").is_some() && doc["paths"].get("/h").is_some());
        assert!(doc["paths"].get("/metrics").is_none());
    }
}
