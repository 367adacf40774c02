//! `GET /admin/ws`: live events over a WebSocket. Browsers cannot set headers on a WebSocket, so the socket
//! opens without a token and its first message must be `{"type":"auth","token":"<access token>"}` (within
//! [`AUTH_TIMEOUT`]); anything else closes it. Then `{"type":"subscribe","topics":[...]}` picks from
//! `security_events` (each WAF block as it happens), `performance_metrics` (request and block counts every
//! second) and `health_status` (the system status every five seconds). Messages out are
//! `{"type":"event","topic":...,"data":...}`.
//!
//! Security events come from a bounded broadcast ([`crate::telemetry::events`]); a client that lags behind it
//! is sent `{"type":"error","error":"too slow"}` and dropped. Each socket also has a bounded input size.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;

use super::AdminState;
use crate::telemetry::events;

pub const AUTH_TIMEOUT: Duration = Duration::from_secs(5);
const SEND_TIMEOUT: Duration = Duration::from_secs(5);
const TOPICS: [&str; 3] = [events::SECURITY, "performance_metrics", "health_status"];
/// Largest message a client may send; subscriptions are tiny.
const MAX_MESSAGE: usize = 16 * 1024;

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum ClientMessage {
    Auth { token: String },
    Subscribe { topics: Vec<String> },
    Unsubscribe { topics: Vec<String> },
}

pub async fn upgrade(State(state): State<Arc<AdminState>>, ws: WebSocketUpgrade) -> Response {
    ws.max_message_size(MAX_MESSAGE)
        .max_frame_size(MAX_MESSAGE)
        .on_upgrade(move |socket| session(state, socket))
}

fn text(v: &Value) -> Message {
    Message::Text(Utf8Bytes::from(v.to_string()))
}

async fn close(mut socket: WebSocket, code: u16, reason: &'static str) {
    let _ = socket.send(text(&json!({ "type": "error", "error": reason }))).await;
    let _ = socket
        .send(Message::Close(Some(CloseFrame {
            code,
            reason: Utf8Bytes::from_static(reason),
        })))
        .await;
}

async fn session(state: Arc<AdminState>, mut socket: WebSocket) {
    let first = tokio::time::timeout(AUTH_TIMEOUT, socket.recv()).await;
    let token = match first {
        Ok(Some(Ok(Message::Text(t)))) => match serde_json::from_str::<ClientMessage>(&t) {
            Ok(ClientMessage::Auth { token }) => token,
            _ => {
                return close(
                    socket,
                    4400,
                    "the first message must be {\"type\":\"auth\",\"token\":...}",
                )
                .await;
            }
        },
        Ok(_) => return,
        Err(_) => return close(socket, 4408, "no auth message in time").await,
    };
    let principal = match state.auth.authenticate(Some(&token)) {
        Ok(p) => p,
        Err(_) => return close(socket, 4401, "authentication failed").await,
    };
    if socket
        .send(text(
            &json!({ "type": "authenticated", "user": principal.user, "role": principal.role.as_str(),
                              "topics": TOPICS }),
        ))
        .await
        .is_err()
    {
        return;
    }
    let mut topics: HashSet<&'static str> = HashSet::new();
    let mut security = events::subscribe();
    let mut perf = tokio::time::interval(Duration::from_secs(1));
    let mut health = tokio::time::interval(Duration::from_secs(5));
    // Ticks missed while a topic was off are not replayed in a burst.
    perf.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    health.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        let out = tokio::select! {
            msg = socket.recv() => match msg {
                Some(Ok(Message::Text(t))) => match serde_json::from_str::<ClientMessage>(&t) {
                    Ok(ClientMessage::Subscribe { topics: wanted }) | Ok(ClientMessage::Unsubscribe { topics: wanted })
                        if wanted.iter().any(|w| !TOPICS.contains(&w.as_str())) =>
                    {
                        json!({ "type": "error", "error": format!("unknown topic; topics: {}", TOPICS.join(", ")) })
                    }
                    Ok(ClientMessage::Subscribe { topics: wanted }) => {
                        topics.extend(TOPICS.iter().filter(|t| wanted.iter().any(|w| w == *t)));
                        json!({ "type": "subscribed", "topics": topics.iter().collect::<Vec<_>>() })
                    }
                    Ok(ClientMessage::Unsubscribe { topics: gone }) => {
                        topics.retain(|t| !gone.iter().any(|g| g == t));
                        json!({ "type": "subscribed", "topics": topics.iter().collect::<Vec<_>>() })
                    }
                    Ok(ClientMessage::Auth { .. }) => json!({ "type": "error", "error": "already authenticated" }),
                    Err(e) => json!({ "type": "error", "error": format!("invalid message: {e}") }),
                },
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => continue,
            },
            ev = security.recv() => match ev {
                Ok(e) if topics.contains(e.topic) => json!({ "type": "event", "topic": e.topic, "data": e.data }),
                Ok(_) => continue,
                Err(RecvError::Lagged(n)) => {
                    tracing::info!(user = %principal.user, missed = n, "admin WebSocket dropped: too slow");
                    return close(socket, 4429, "too slow: events were missed").await;
                }
                Err(RecvError::Closed) => return,
            },
            _ = perf.tick(), if topics.contains("performance_metrics") => {
                let s = state.proxy_metrics.waf.stats();
                json!({ "type": "event", "topic": "performance_metrics", "data": {
                    "requests_inspected": s.inspected,
                    "actions": s.by_action.iter().map(|(k, v)| ((*k).to_owned(), json!(v))).collect::<serde_json::Map<_, _>>(),
                    "attack_types": s.by_attack.iter().map(|(k, v)| ((*k).to_owned(), json!(v))).collect::<serde_json::Map<_, _>>(),
                    "avg_inspection_ms": s.avg_ms,
                }})
            }
            _ = health.tick(), if topics.contains("health_status") => {
                let axum::Json(status) = super::system::status(State(state.clone())).await;
                json!({ "type": "event", "topic": "health_status", "data": status })
            }
        };
        // Once the token expires or the session is closed, the socket goes too.
        if state.auth.authenticate(Some(&token)).is_err() {
            return close(socket, 4401, "token expired or revoked").await;
        }
        // A client that stops reading fills its socket buffer; give it a bounded time, then drop it.
        match tokio::time::timeout(SEND_TIMEOUT, socket.send(text(&out))).await {
            Ok(Ok(())) => {}
            _ => return,
        }
    }
}
