//! `GET /admin/ssl/certificates` (every served certificate: names, source, serial, validity, OCSP staple, and
//! the ACME renewal state) and `POST /admin/ssl/certificates/{domain}/renew` (renew an ACME certificate
//! now; the answer comes before the order completes — poll the listing for the outcome).

use std::sync::Arc;
use std::time::SystemTime;

use axum::Json;
use axum::extract::{Path, State};
use http::StatusCode;
use serde_json::{Value, json};

use super::{AdminState, ApiError};
use crate::tls::certinfo::{rfc3339, unix_seconds};

pub async fn list(State(state): State<Arc<AdminState>>) -> Json<Value> {
    let now = SystemTime::now();
    let certs: Vec<Value> = state
        .live
        .served_certificates()
        .iter()
        .map(|c| {
            let staple = c.staple();
            let sched = c.ocsp.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            json!({
                "domains": c.info.names,
                "source": c.source.as_str(),
                "serial": c.info.serial_hex,
                "issuer": c.info.issuer_name,
                "not_before": rfc3339(c.info.not_before),
                "not_after": rfc3339(c.info.not_after),
                "expires_in_seconds": c.info.seconds_left(now),
                "file": c.path.as_ref().map(|p| p.display().to_string()),
                "ocsp": {
                    "responder": c.info.ocsp_url,
                    "stapled": staple.as_ref().is_some_and(|s| s.is_fresh(unix_seconds(now))),
                    "this_update": staple.as_ref().filter(|s| s.this_update > 0).map(|s| rfc3339(s.this_update)),
                    "next_update": staple.as_ref().and_then(|s| s.next_update).map(rfc3339),
                    "from_file": staple.as_ref().map(|s| s.from_file),
                    "last_error": sched.last_error,
                },
            })
        })
        .collect();
    let acme = state.renewer.as_ref().map(|r| {
        let cfg = r.acme_config();
        json!({
            "directory_url": cfg.directory_url,
            "domains": cfg.domains,
            "challenge_type": cfg.challenge_type,
            "key_type": cfg.key_type,
            "renewal": r.status(),
        })
    });
    Json(json!({ "certificates": certs, "acme": acme }))
}

pub async fn renew(
    State(state): State<Arc<AdminState>>,
    Path(domain): Path<String>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let Some(renewer) = &state.renewer else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "automatic certificates are off (ssl.auto_provision: false)",
        ));
    };
    if !renewer.domains().iter().any(|d| d.eq_ignore_ascii_case(&domain)) {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!(
                "`{domain}` is not one of the ACME domains ({}); certificates from files are renewed by replacing the files",
                renewer.domains().join(", ")
            ),
        ));
    }
    renewer.renew_now();
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({
            "success": true,
            "message": format!("renewal of the certificate for {} started; GET /admin/ssl/certificates shows the outcome", renewer.domains().join(", ")),
        })),
    ))
}
