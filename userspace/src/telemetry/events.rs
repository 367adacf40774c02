//! Live events for the admin WebSocket: a bounded broadcast channel the data plane publishes to without ever
//! waiting. Publishing with no subscriber costs one atomic load; a subscriber that falls more than
//! [`CAPACITY`] events behind is told it lagged and is dropped by the WebSocket handler, so a slow browser
//! can never hold memory or slow a request.

use std::sync::{Arc, OnceLock};

use serde::Serialize;
use serde_json::Value;
use tokio::sync::broadcast;

/// Events buffered per subscriber before it counts as too slow.
pub const CAPACITY: usize = 1024;

/// One published event: its topic and its JSON, serialised once for every subscriber.
#[derive(Debug)]
pub struct Event {
    pub topic: &'static str,
    pub data: Value,
}

/// The topic of WAF and XDP security events.
pub const SECURITY: &str = "security_events";

fn sender() -> &'static broadcast::Sender<Arc<Event>> {
    static TX: OnceLock<broadcast::Sender<Arc<Event>>> = OnceLock::new();
    TX.get_or_init(|| broadcast::channel(CAPACITY).0)
}

pub fn subscribe() -> broadcast::Receiver<Arc<Event>> {
    sender().subscribe()
}

/// Publishes `data` on `topic` if anyone listens; never blocks.
pub fn publish(topic: &'static str, data: &impl Serialize) {
    let tx = sender();
    if tx.receiver_count() == 0 {
        return;
    }
    if let Ok(data) = serde_json::to_value(data) {
        // An error means every receiver left meanwhile: nothing to do.
        let _ = tx.send(Arc::new(Event { topic, data }));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a test reports failure by panicking
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_subscriber_that_falls_behind_is_told_it_lagged_and_publishing_never_blocks() {
        let mut rx = subscribe();
        for i in 0..CAPACITY + 10 {
            publish(SECURITY, &i);
        }
        assert!(matches!(rx.recv().await, Err(broadcast::error::RecvError::Lagged(_))));
        let mut fresh = subscribe();
        publish(SECURITY, &"x");
        assert_eq!(fresh.recv().await.unwrap().data, "x");
    }
}
