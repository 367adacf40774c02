//! `rampart echo-upstream`: a small HTTP/1.1 and h2c server that answers every request with a JSON description
//! of it (method, path, the headers that matter to a proxy, its own name). With `--delay-ms` it waits before
//! answering (a slow server); an Upgrade request is accepted with `101` and every byte is echoed back (a tunnel
//! check). For cache tests, query parameters shape the response (`cc=` Cache-Control, `etag=`, `lm=`
//! Last-Modified, `expires=`, `cookie=` Set-Cookie, `vary=`, `status=`, `size=` body bytes of padding,
//! `sleep_ms=`; values percent-encoded), every answer carries its sequence number (`n` in the body and
//! `x-echo-n`), and `GET /__echo/count` tells how many requests were answered. It is the demo upstream `cargo xtask run` starts and the upstream the tests run as a real process;
//! it is not part of the request path.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
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
    /// Requests answered (not counting `/__echo/count` itself).
    pub served: Arc<AtomicU64>,
}

/// Longest `sleep_ms` and `size` a request may ask for.
const MAX_SLEEP_MS: u64 = 10_000;
const MAX_PADDING: usize = 16 * 1024 * 1024;

fn percent_decode(v: &str) -> String {
    let b = v.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match b[i] {
            b'%' => match (b.get(i + 1).copied().and_then(hex), b.get(i + 2).copied().and_then(hex)) {
                (Some(h), Some(l)) => {
                    out.push(u8::try_from(h * 16 + l).unwrap_or(b'?'));
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The `name=value` query parameters, decoded.
fn params(query: Option<&str>) -> Vec<(String, String)> {
    query
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
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
    if req.uri().path() == "/__echo/count" {
        let n = options.served.load(Ordering::Relaxed);
        return Ok(Response::new(Full::new(Bytes::from(format!("{{\"served\":{n}}}")))));
    }
    let n = options.served.fetch_add(1, Ordering::Relaxed) + 1;
    let shape = params(req.uri().query());
    let param = |name: &str| shape.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let sleep = param("sleep_ms")
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0)
        .min(MAX_SLEEP_MS);
    let delay = options.delay + Duration::from_millis(sleep);
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
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
    description["n"] = n.into();
    description["if_none_match"] = header("if-none-match").into();
    description["accept_encoding"] = header("accept-encoding").into();
    let padding = param("size")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(0)
        .min(MAX_PADDING);
    let status = param("status")
        .and_then(|v| v.parse::<u16>().ok())
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(StatusCode::OK);
    let mut shaped = Vec::new();
    for (key, name) in [
        ("cc", header::CACHE_CONTROL),
        ("etag", header::ETAG),
        ("lm", header::LAST_MODIFIED),
        ("expires", header::EXPIRES),
        ("cookie", header::SET_COOKIE),
        ("vary", header::VARY),
    ] {
        if let Some(v) = param(key).and_then(|v| header::HeaderValue::from_str(v).ok()) {
            shaped.push((name, v));
        }
    }
    let body_len = req.into_body().collect().await.map(|b| b.to_bytes().len()).unwrap_or(0);
    description["body_bytes"] = body_len.into();
    let mut text = description.to_string();
    if padding > 0 {
        text.push('\n');
        text.extend(std::iter::repeat_n('x', padding));
    }
    let mut resp = Response::new(Full::new(Bytes::from(text)));
    *resp.status_mut() = status;
    for (name, v) in shaped {
        resp.headers_mut().insert(name, v);
    }
    resp.headers_mut().insert("x-echo-n", header::HeaderValue::from(n));
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
