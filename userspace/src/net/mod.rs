//! Accepting client connections and serving HTTP on them. Knows sockets, protocols and limits; hands each
//! request to the proxy pipeline and knows nothing of what happens to it there.

pub mod client_addr;
pub mod h1;
mod listener;
pub mod proxy_protocol;
pub mod tls;
pub mod uring;

pub use listener::{Accept, Limits, Transport, bind, serve};
