//! Crawler verification by DNS, the check search engines document: the address's PTR name must end in one
//! of the crawler's domains, and that name must resolve back to the address (a PTR record alone is set by
//! whoever owns the address). Lookups go through the system resolver (`getnameinfo`/`getaddrinfo`, so
//! `/etc/hosts` and nsswitch apply), on the blocking pool with a deadline, and answers are cached for an
//! hour, at most 10,000 of them.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::time::Duration;

use moka::sync::Cache;

const CACHE_TTL: Duration = Duration::from_secs(3600);
const CACHE_MAX: u64 = 10_000;
const DEADLINE: Duration = Duration::from_secs(2);

pub struct Verifier {
    /// (address, the crawler's domains) → verified. Keyed by the domains, not the crawler's position, so a
    /// reload that changes the list cannot reuse another crawler's answer.
    answers: Cache<(IpAddr, String), bool>,
}

impl Default for Verifier {
    fn default() -> Self {
        Self {
            answers: Cache::builder().max_capacity(CACHE_MAX).time_to_live(CACHE_TTL).build(),
        }
    }
}

/// `name` is `domain` or a name under it.
fn under(name: &str, domain: &str) -> bool {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    let domain = domain.trim_matches('.').to_ascii_lowercase();
    name == domain || name.ends_with(&format!(".{domain}"))
}

/// The PTR name of `ip`, if it has one.
fn reverse(ip: IpAddr) -> Option<String> {
    let addr = SocketAddr::new(ip, 0);
    let (storage, len) = sockaddr(&addr);
    let mut host = [0 as libc::c_char; 1025];
    // SAFETY: `storage` holds a valid sockaddr of `len` bytes; `host` is a writable buffer of its length.
    let rc = unsafe {
        libc::getnameinfo(
            std::ptr::from_ref(&storage).cast::<libc::sockaddr>(),
            len,
            host.as_mut_ptr(),
            host.len() as libc::socklen_t,
            std::ptr::null_mut(),
            0,
            libc::NI_NAMEREQD,
        )
    };
    if rc != 0 {
        return None;
    }
    // SAFETY: on success getnameinfo wrote a NUL-terminated string into `host`.
    let name = unsafe { std::ffi::CStr::from_ptr(host.as_ptr()) };
    name.to_str().ok().map(str::to_owned)
}

fn sockaddr(addr: &SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: an all-zero sockaddr_storage is a valid value of the type.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from(*a.ip()).to_be(),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than sockaddr_in and suitably aligned for it.
            unsafe { std::ptr::write(std::ptr::from_mut(&mut storage).cast::<libc::sockaddr_in>(), sin) };
            std::mem::size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: 0,
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: 0,
            };
            // SAFETY: sockaddr_storage is larger than sockaddr_in6 and suitably aligned for it.
            unsafe { std::ptr::write(std::ptr::from_mut(&mut storage).cast::<libc::sockaddr_in6>(), sin6) };
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (storage, len as libc::socklen_t)
}

/// The blocking check: PTR under a domain, and the name's addresses include `ip`.
fn check(ip: IpAddr, domains: &[String]) -> bool {
    let Some(name) = reverse(ip) else {
        return false;
    };
    if !domains.iter().any(|d| under(&name, d)) {
        return false;
    }
    (name.as_str(), 0)
        .to_socket_addrs()
        .is_ok_and(|mut addrs| addrs.any(|a| a.ip() == ip))
}

impl Verifier {
    /// Whether `ip` belongs to the crawler with `domains`. A lookup that fails or times out is "no"
    /// (cached as well, so a dead resolver costs one deadline per address and hour, not one per request).
    pub async fn verify(&self, ip: IpAddr, domains: &[String]) -> bool {
        let key = (ip, domains.join(","));
        if let Some(known) = self.answers.get(&key) {
            return known;
        }
        let domains = domains.to_vec();
        let lookup = tokio::task::spawn_blocking(move || check(ip, &domains));
        let verified = matches!(tokio::time::timeout(DEADLINE, lookup).await, Ok(Ok(true)));
        self.answers.insert(key, verified);
        verified
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_matched_by_whole_labels() {
        assert!(under("crawl-66-249-66-1.googlebot.com.", "googlebot.com"));
        assert!(under("googlebot.com", ".googlebot.com"));
        assert!(!under("evilgooglebot.com", "googlebot.com"));
        assert!(!under("googlebot.com.evil.net", "googlebot.com"));
    }

    /// Loopback's PTR comes from /etc/hosts (`localhost`) and resolves back, with no network query.
    #[tokio::test]
    async fn loopback_verifies_as_localhost_and_not_as_another_domain() {
        let v = Verifier::default();
        let lo: IpAddr = "127.0.0.1".parse().expect("ip");
        assert!(v.verify(lo, &["localhost".into()]).await);
        assert!(!v.verify(lo, &["googlebot.com".into()]).await);
    }
}
