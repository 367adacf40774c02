//! WebSocket (and any HTTP/1.1 Upgrade) passthrough: the handshake is forwarded with its Upgrade headers kept;
//! on `101 Switching Protocols` both connections are handed over from HTTP and bytes are copied both ways until
//! either side closes. The tunnel counts as a request in flight on its server for its whole life.

use std::time::Duration;

use http::header::{self, HeaderMap};
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tracing::debug;

use super::ResponseBody;
use super::forward::{InFlight, relay as relay_plain};
use super::headers::strip_hop_by_hop;
use super::upstream::conn_pool::Pooled;

/// An HTTP/1.1 upgrade request: `Upgrade` present and `Connection` naming it.
pub fn is_upgrade<B>(req: &Request<B>) -> bool {
    req.headers().contains_key(header::UPGRADE) && connection_has_upgrade(req.headers())
}

fn connection_has_upgrade(h: &HeaderMap) -> bool {
    h.get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
}

pub fn relay(
    mut resp: Response<Incoming>,
    client_side: OnUpgrade,
    mut guard: InFlight,
    pooled: Pooled,
    latency: Duration,
) -> Response<ResponseBody> {
    if resp.status() != StatusCode::SWITCHING_PROTOCOLS {
        return relay_plain(resp, guard, pooled, latency);
    }
    // The upstream connection now belongs to the tunnel; it never returns to the pool.
    drop(pooled);
    guard.set_latency(latency);
    let upstream_side = hyper::upgrade::on(&mut resp);
    tokio::spawn(async move {
        match tokio::join!(client_side, upstream_side) {
            (Ok(client), Ok(upstream)) => {
                let (mut c, mut u) = (TokioIo::new(client), TokioIo::new(upstream));
                if let Err(e) = tokio::io::copy_bidirectional(&mut c, &mut u).await {
                    debug!(error = %e, "upgraded connection ended");
                }
            }
            (c, u) => debug!(client = c.is_ok(), upstream = u.is_ok(), "upgrade did not complete"),
        }
        drop(guard);
    });
    let (mut parts, body) = resp.into_parts();
    strip_hop_by_hop(&mut parts.headers, true);
    Response::from_parts(parts, body.boxed())
}
