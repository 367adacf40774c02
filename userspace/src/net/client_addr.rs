//! The real client address. The TCP peer is the client unless it is a trusted proxy (`server.trusted_proxies`):
//! then X-Forwarded-For is read right to left and the first address that is not itself a trusted proxy is the
//! client. Addresses from untrusted peers' headers are never believed, so a client cannot spoof its address.

use std::net::IpAddr;

use http::HeaderMap;

use crate::config::types::Cidr;

pub fn resolve(peer: IpAddr, headers: &HeaderMap, trusted: &[Cidr]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|c| c.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let hops = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect::<Vec<_>>();
    for hop in hops.iter().rev() {
        match parse_hop(hop) {
            Some(ip) if is_trusted(&ip) => continue,
            Some(ip) => return ip,
            // Garbage in the chain: stop believing it at that point.
            None => return peer,
        }
    }
    peer
}

/// An address as proxies write it: bare, `[v6]`, or with a port.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    let without_port = match hop.strip_prefix('[') {
        Some(rest) => rest.split(']').next()?,
        None => hop.rsplit_once(':').map_or(hop, |(h, _)| h),
    };
    without_port.parse::<IpAddr>().ok().map(|ip| ip.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(xff: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in xff {
            h.append("x-forwarded-for", v.parse().expect("value"));
        }
        h
    }

    #[test]
    fn untrusted_peers_headers_are_ignored() {
        let trusted: Vec<Cidr> = vec!["10.0.0.0/8".parse().expect("cidr")];
        let peer: IpAddr = "192.0.2.9".parse().expect("ip");
        assert_eq!(resolve(peer, &headers(&["198.51.100.1"]), &trusted), peer);
    }

    #[test]
    fn the_rightmost_untrusted_hop_is_the_client() {
        let trusted: Vec<Cidr> = vec!["10.0.0.0/8".parse().expect("cidr")];
        let peer: IpAddr = "10.0.0.2".parse().expect("ip");
        let h = headers(&["203.0.113.7, 198.51.100.1", "10.0.0.5"]);
        assert_eq!(
            resolve(peer, &h, &trusted),
            "198.51.100.1".parse::<IpAddr>().expect("ip")
        );
        assert_eq!(
            resolve(peer, &headers(&["[2001:db8::1]:443"]), &trusted),
            "2001:db8::1".parse::<IpAddr>().expect("ip")
        );
        assert_eq!(
            resolve(peer, &headers(&["10.1.1.1"]), &trusted),
            peer,
            "all trusted: the peer"
        );
        assert_eq!(resolve(peer, &headers(&["not-an-ip"]), &trusted), peer);
    }
}
