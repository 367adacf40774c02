//! Choosing a server of an upstream pool. Round robin over the configured servers for now; weighted
//! balancers and health state arrive with the load-balancing work.

use std::sync::atomic::{AtomicUsize, Ordering};

use crate::config::schema::UpstreamConfig;

/// A server as the forwarder needs it: the authority to connect to and the pool's name for logs.
#[derive(Clone, Debug)]
pub struct Server {
    pub upstream: String,
    /// `host:port`, as written into the request URI.
    pub authority: String,
}

pub struct UpstreamPool {
    servers: Vec<Server>,
    next: AtomicUsize,
}

impl UpstreamPool {
    pub fn new(config: Option<&UpstreamConfig>) -> Self {
        let servers = config
            .map(|u| {
                u.servers
                    .iter()
                    .map(|s| Server {
                        upstream: u.name.clone(),
                        authority: authority(&s.host, s.port.get()),
                    })
                    .collect()
            })
            .unwrap_or_default();
        Self {
            servers,
            next: AtomicUsize::new(0),
        }
    }

    pub fn pick(&self) -> Option<&Server> {
        if self.servers.is_empty() {
            return None;
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.servers.len();
        self.servers.get(i)
    }
}

/// IPv6 literals need brackets in an authority.
fn authority(host: &str, port: u16) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_hosts_are_bracketed() {
        assert_eq!(authority("::1", 80), "[::1]:80");
        assert_eq!(authority("10.0.0.1", 80), "10.0.0.1:80");
    }
}
