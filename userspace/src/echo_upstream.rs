//! `rampart echo-upstream`: a small HTTP/1.1 server that answers every request with a JSON description of it
//! (method, path, the headers that matter to a proxy). It is the demo upstream `cargo xtask run` starts and the
//! upstream the integration tests run as a real process; it is not part of the request path.

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http::{Request, Response, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use serde_json::json;
use tracing::debug;

pub async fn serve(addr: SocketAddr, name: String) -> anyhow::Result<()> {
    let listener = crate::net::bind(addr, "echo upstream").await?;
    eprintln!("echo-upstream `{name}` listening on {addr}");
    loop {
        let (stream, peer) = listener.accept().await?;
        let name = name.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| respond(req, peer, name.clone()));
            if let Err(e) = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                debug!(error = %e, "echo connection ended with an error");
            }
        });
    }
}

async fn respond(req: Request<Incoming>, peer: SocketAddr, name: String) -> Result<Response<Full<Bytes>>, Infallible> {
    let header = |n: &str| req.headers().get(n).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let description = json!({
        "server": name,
        "peer": peer.to_string(),
        "method": req.method().as_str(),
        "path": req.uri().path_and_query().map(|p| p.as_str()),
        "version": format!("{:?}", req.version()),
        "host": header("host"),
        "x_forwarded_for": header("x-forwarded-for"),
        "x_forwarded_proto": header("x-forwarded-proto"),
        "x_forwarded_host": header("x-forwarded-host"),
    });
    let body_len = req.into_body().collect().await.map(|b| b.to_bytes().len()).unwrap_or(0);
    let mut description = description;
    description["body_bytes"] = body_len.into();
    let mut resp = Response::new(Full::new(Bytes::from(description.to_string())));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    Ok(resp)
}
