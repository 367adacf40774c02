//! `rampart events`: tails the admin WebSocket and prints each event, one line each (JSON with `--json`).
//! `--count` stops after that many events, so scripts and tests can wait for one.

use std::time::Duration;

use anyhow::{Context, bail};
use futures_util::{SinkExt, StreamExt};
use http::Method;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use super::AdminClient;
use super::token_store;

/// A byte stream to the admin listener, plain or TLS.
trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Io for T {}

/// Connects (over TLS for `wss://`, trusting what `AdminClient` trusts) and makes the WebSocket handshake.
async fn open(
    url: &str,
) -> anyhow::Result<(
    tokio_tungstenite::WebSocketStream<Box<dyn Io>>,
    tokio_tungstenite::tungstenite::handshake::client::Response,
)> {
    let uri: http::Uri = url.parse().with_context(|| format!("invalid admin URL {url}"))?;
    let host = uri
        .host()
        .context("the admin URL has no host")?
        .trim_matches(['[', ']'])
        .to_owned();
    let tls = uri.scheme_str() == Some("wss");
    let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
    let tcp = tokio::net::TcpStream::connect((host.as_str(), port))
        .await
        .with_context(|| format!("cannot connect to {host}:{port}"))?;
    let io: Box<dyn Io> = if tls {
        let name = rustls::pki_types::ServerName::try_from(host.clone())
            .with_context(|| format!("`{host}` is not a TLS server name"))?;
        let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(super::client::tls_config()?));
        Box::new(
            connector
                .connect(name, tcp)
                .await
                .context("TLS handshake with the admin API")?,
        )
    } else {
        Box::new(tcp)
    };
    Ok(tokio_tungstenite::client_async(url, io).await?)
}

pub async fn tail(admin: &str, topics: &[String], count: Option<u64>, json: bool) -> anyhow::Result<()> {
    // An authenticated call first, so an expired access token is refreshed before the socket needs it.
    let mut client = AdminClient::new(admin)?;
    client.call(Method::GET, "/admin/system/status", None).await?;
    let token = token_store::load()?
        .filter(|s| s.admin == client.base())
        .map_or_else(String::new, |s| s.access_token);
    let url = format!("{}/admin/ws", client.base().replacen("http", "ws", 1));
    let (mut ws, _) = tokio::time::timeout(Duration::from_secs(10), open(&url))
        .await
        .with_context(|| format!("no WebSocket handshake from {url} within 10 s"))?
        .with_context(|| format!("cannot open {url}"))?;
    ws.send(Message::text(json!({ "type": "auth", "token": token }).to_string()))
        .await?;
    ws.send(Message::text(
        json!({ "type": "subscribe", "topics": topics }).to_string(),
    ))
    .await?;
    let mut seen = 0u64;
    while let Some(msg) = ws.next().await {
        let msg = msg.context("reading from the admin WebSocket")?;
        let Message::Text(t) = msg else {
            if let Message::Close(frame) = msg {
                bail!(
                    "the daemon closed the event stream: {}",
                    frame.map_or_else(String::new, |f| f.reason.to_string())
                );
            }
            continue;
        };
        let v: Value = serde_json::from_str(&t).context("an event that is not JSON")?;
        match v["type"].as_str() {
            Some("error") => bail!("{}", v["error"].as_str().unwrap_or("error from the daemon")),
            Some("event") => {
                if json {
                    println!("{v}");
                } else {
                    println!("{}", line(&v));
                }
                seen += 1;
                if count.is_some_and(|c| seen >= c) {
                    let _ = ws.close(None).await;
                    return Ok(());
                }
            }
            _ => {}
        }
    }
    Ok(())
}

fn line(v: &Value) -> String {
    let d = &v["data"];
    let s = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    };
    match v["topic"].as_str() {
        Some("security_events") => format!(
            "{} {} {} {} {} {} ({})",
            humantime::format_rfc3339_seconds(std::time::SystemTime::now()),
            s(&d["action_taken"]),
            s(&d["client_ip"]),
            s(&d["attack_type"]),
            s(&d["method"]),
            s(&d["path"]),
            s(&d["request_id"])
        ),
        Some("health_status") => format!("health {}", s(&d["status"])),
        _ => format!("{} {}", s(&v["topic"]), d),
    }
}
