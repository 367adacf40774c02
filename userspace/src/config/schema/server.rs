//! `server`: the public HTTP listener.

use std::net::{IpAddr, Ipv4Addr};

use serde::{Deserialize, Serialize};

use crate::config::types::{ByteSize, Cidr, Port};

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address the proxy listens on. Default `0.0.0.0` (every IPv4 address).
    pub host: IpAddr,
    /// Port the proxy listens on. Default 8080.
    pub port: Port,
    /// Worker threads for the request runtime; 0 means one per CPU. Default 0.
    pub workers: usize,
    /// Client connections open at once; further connections wait in the kernel backlog. Default 10000.
    pub max_connections: usize,
    /// Seconds an idle keep-alive connection stays open. Default 75.
    pub keepalive_timeout: u64,
    /// Seconds allowed for a whole request, from first byte to the last byte of the response. Default 60.
    pub request_timeout: u64,
    /// Largest request body accepted; larger requests get 413. Default 10MB.
    pub max_request_size: ByteSize,
    /// Largest total size of request headers accepted; larger get 431. Default 64KB.
    pub max_header_size: ByteSize,
    /// Seconds to let in-flight requests finish on shutdown before closing their connections. Default 30.
    pub shutdown_timeout: u64,
    /// Peers whose X-Forwarded-For (and PROXY protocol header) are believed: the client address is the
    /// right-most address in X-Forwarded-For that is not itself a trusted proxy. Default none.
    pub trusted_proxies: Vec<Cidr>,
    /// Expect a PROXY protocol header (v1 or v2) at the start of every connection, from a trusted proxy only.
    /// Default false.
    pub proxy_protocol: bool,
    /// Socket I/O engine for the listeners: `epoll` (tokio) or `io_uring`. Default `epoll` (the faster one in
    /// this project's benchmark).
    pub io: IoEngine,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IoEngine {
    Epoll,
    IoUring,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            host: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            port: Port::new_const(8080),
            workers: 0,
            max_connections: 10_000,
            keepalive_timeout: 75,
            request_timeout: 60,
            max_request_size: ByteSize::mib(10),
            max_header_size: ByteSize::kib(64),
            shutdown_timeout: 30,
            trusted_proxies: Vec::new(),
            proxy_protocol: false,
            io: IoEngine::Epoll,
        }
    }
}
