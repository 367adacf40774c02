//! Observability: the daemon's logs, the in-memory log ring, process usage and the Prometheus registry.
//! Nothing here makes a request decision.

pub mod events;
pub mod log_ring;
pub mod logging;
pub mod metrics;
pub mod process;
