//! Observability: the daemon's logs (own, security, access, performance; files rotated), the in-memory log ring, process usage and the Prometheus registry.
//! Nothing here makes a request decision.

pub mod events;
pub mod log_ring;
pub mod logging;
pub mod metrics;
pub mod process;
pub mod request_log;
pub mod rotating;
pub mod sink;
