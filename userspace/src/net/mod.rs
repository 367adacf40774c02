//! Accepting client connections and serving HTTP on them. Knows sockets, protocols and limits; hands each
//! request to the proxy pipeline and knows nothing of what happens to it there.

mod listener;

pub use listener::{Limits, bind, serve};
