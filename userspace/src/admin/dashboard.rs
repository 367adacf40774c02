//! `GET /admin/dashboard` and `/admin/dashboard.js`: the single-page web UI, embedded in the binary (no CDN,
//! nothing fetched from elsewhere). The page holds no data: it signs in through the API like any client and
//! keeps its token in memory. Served with a strict Content-Security-Policy (scripts and connections to this
//! origin only), so an attack payload shown in the event list can never run.

use axum::response::IntoResponse;
use http::header;

const HTML: &str = include_str!("dashboard/index.html");
const JS: &str = include_str!("dashboard/dashboard.js");
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; connect-src 'self' ws: wss:; \
                   img-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

fn page(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::X_FRAME_OPTIONS, "DENY"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
}

pub async fn html() -> impl IntoResponse {
    page("text/html; charset=utf-8", HTML)
}

pub async fn js() -> impl IntoResponse {
    page("text/javascript; charset=utf-8", JS)
}
