//! `rampart echo-upstream`: a small HTTP/1.1 and h2c server that answers every request with a JSON description
//! of it (method, path, the headers that matter to a proxy, its own name). With `--delay-ms` it waits before
//! answering (a slow server); an Upgrade request is accepted with `101` and every byte is echoed back (a tunnel
//! check). It is the demo upstream `cargo xtask run` starts and the upstream the tests run as a real process;
//! it is not part of the request path.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http::{Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use serde_json::json;
use sha1::Digest as _;
use tracing::debug;

/// How the echo server behaves.
#[derive(Clone, Debug)]
pub struct EchoOptions {
    pub name: String,
    pub delay: Duration,
}

pub async fn serve(addr: SocketAddr, options: EchoOptions) -> anyhow::Result<()> {
    let listener = crate::net::bind(addr, "echo upstream").await?;
    eprintln!("echo-upstream `{}` listening on {addr}", options.name);
    loop {
        let (stream, peer) = listener.accept().await?;
        let options = options.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| respond(req, peer, options.clone()));
            let builder = auto::Builder::new(TokioExecutor::new());
            if let Err(e) = builder
                .serve_connection_with_upgrades(TokioIo::new(stream), service)
                .await
            {
                debug!(error = %e, "echo connection ended with an error");
            }
        });
    }
}

async fn respond(
    mut req: Request<Incoming>,
    peer: SocketAddr,
    options: EchoOptions,
) -> Result<Response<Full<Bytes>>, Infallible> {
    if !options.delay.is_zero() {
        tokio::time::sleep(options.delay).await;
    }
    if let Some(key) = req
        .headers()
        .get("sec-websocket-key")
        .cloned()
        .filter(|_| req.headers().contains_key(header::UPGRADE))
    {
        let on_upgrade = hyper::upgrade::on(&mut req);
        tokio::spawn(async move {
            if let Ok(upgraded) = on_upgrade.await {
                let (mut r, mut w) = tokio::io::split(TokioIo::new(upgraded));
                let _ = tokio::io::copy(&mut r, &mut w).await;
            }
        });
        let accept = {
            let mut h = sha1::Sha1::new();
            h.update(key.as_bytes());
            h.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
            base64::engine::general_purpose::STANDARD.encode(h.finalize())
        };
        let mut resp = Response::new(Full::new(Bytes::new()));
        *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        let h = resp.headers_mut();
        h.insert(header::UPGRADE, header::HeaderValue::from_static("websocket"));
        h.insert(header::CONNECTION, header::HeaderValue::from_static("upgrade"));
        if let Ok(v) = header::HeaderValue::from_str(&accept) {
            h.insert("sec-websocket-accept", v);
        }
        return Ok(resp);
    }
    let header = |n: &str| req.headers().get(n).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let mut description = json!({
        "server": options.name,
        "peer": peer.to_string(),
        "method": req.method().as_str(),
        "path": req.uri().path_and_query().map(|p| p.as_str()),
        "version": format!("{:?}", req.version()),
        "host": header("host"),
        "x_forwarded_for": header("x-forwarded-for"),
        "x_forwarded_proto": header("x-forwarded-proto"),
        "x_forwarded_host": header("x-forwarded-host"),
        "forwarded": header("forwarded"),
        "x_request_id": header("x-request-id"),
        "x_added": header("x-added"),
    });
    let body_len = req.into_body().collect().await.map(|b| b.to_bytes().len()).unwrap_or(0);
    description["body_bytes"] = body_len.into();
    let mut resp = Response::new(Full::new(Bytes::from(description.to_string())));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    resp.headers_mut().insert(
        "x-upstream-server",
        header::HeaderValue::from_str(&options.name).unwrap_or(header::HeaderValue::from_static("echo")),
    );
    Ok(resp)
}
