//! Rampart's daemon and CLI as a library, so integration tests and benchmarks reach the same code the binary
//! runs. See ARCHITECTURE.md for the map of modules and a request's journey through them.

pub mod access;
pub mod admin;
pub mod allocator;
pub mod cli;
pub mod cli_status;
pub mod clock;
pub mod config;
pub mod daemon;
pub mod echo_upstream;
pub mod fleet;
pub mod http1;
pub mod net;
pub mod policy;
pub mod proxy;
pub mod telemetry;
pub mod tls;
pub mod waf;
pub mod waf_test;
pub mod xdp;
