//! Observability: the daemon's logs and the Prometheus registry. Nothing here makes a request decision.

pub mod logging;
pub mod metrics;
