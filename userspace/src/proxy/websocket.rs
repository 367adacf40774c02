//! WebSocket (and any HTTP/1.1 Upgrade) passthrough: the handshake is forwarded with its Upgrade headers kept;
//! on `101 Switching Protocols` both connections are handed over from HTTP and bytes are copied both ways until
//! either side closes. The tunnel counts as a request in flight on its server for its whole life.

use std::time::Duration;

use http::header::{self, HeaderMap};
use http::{Request, Response};
use tokio::io::AsyncWriteExt;
use tracing::debug;

use super::ResponseBody;
use super::forward::InFlight;
use super::upstream::h1::{Conn, ResponseHead};

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

/// Answers the client's handshake with the server's `101` and, once hyper hands over the client's connection,
/// copies bytes both ways between it and the server's socket (starting with any the server sent early).
pub fn tunnel(
    head: ResponseHead,
    conn: Conn,
    client_side: crate::net::h1::OnUpgrade,
    mut guard: InFlight,
    latency: Duration,
) -> Response<ResponseBody> {
    guard.set_latency(latency);
    let (mut upstream, early) = conn.into_parts();
    tokio::spawn(async move {
        match client_side.upgraded().await {
            Some(mut client) => {
                let copied = async {
                    // Bytes each side sent right after the handshake, already read, go first.
                    upstream.write_all(&client.read_ahead).await?;
                    client.io.write_all(&early).await?;
                    tokio::io::copy_bidirectional(&mut client.io, &mut upstream).await
                };
                if let Err(e) = copied.await {
                    debug!(error = %e, "upgraded connection ended");
                }
            }
            None => debug!("the client's side of the upgrade did not complete"),
        }
        drop(guard);
    });
    let mut resp = Response::new(ResponseBody::empty());
    *resp.status_mut() = head.status;
    *resp.headers_mut() = head.fields.to_header_map();
    // Connection is hop-by-hop and was removed from the server's answer; this hop's client needs its own.
    resp.headers_mut()
        .insert(header::CONNECTION, header::HeaderValue::from_static("upgrade"));
    resp
}
