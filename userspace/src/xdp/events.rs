//! Reading sampled drop events from the `EVENTS` ring buffer and logging them as security events (JSON lines
//! through `tracing`, target `rampart::security`).
//!
//! The kernel submits without wakeups (a flood of drops must not become a flood of wakeups), so the reader
//! polls on a short timer and drains a bounded number of events per tick. If it falls behind, the kernel finds
//! the ring full and counts the event as lost; the data path never waits for this reader.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::time::Duration;

use aya::maps::{MapData, RingBuf};
use rampart_common::geo::{UNKNOWN, country_code};
use rampart_common::{DropEvent, Reason};
use tokio::sync::watch;
use tracing::{debug, warn};

use super::geo::CountryLookup;
use super::pins::DROP_EVENT_SIZE;

const POLL_INTERVAL: Duration = Duration::from_millis(100);
/// Events logged per tick at most; the rest wait in the ring (or are counted lost by the kernel).
const MAX_PER_TICK: usize = 4096;

/// A decoded drop event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Drop {
    pub source: IpAddr,
    pub reason: Reason,
    /// Two-letter code: from the kernel for geo drops, else from the database when one is configured.
    pub country: Option<String>,
    pub ifindex: u32,
    pub packet_len: u32,
    pub l4_proto: u8,
}

pub fn decode(raw: &[u8], countries: Option<&CountryLookup>) -> Option<Drop> {
    if raw.len() < DROP_EVENT_SIZE {
        return None;
    }
    // SAFETY: DropEvent is Pod (repr(C), integers only) and `raw` has at least its size; read_unaligned copes
    // with the ring's 8-byte record alignment either way.
    let ev: DropEvent = unsafe { std::ptr::read_unaligned(raw.as_ptr().cast()) };
    let source = match ev.family {
        4 => IpAddr::V4(Ipv4Addr::new(ev.addr[0], ev.addr[1], ev.addr[2], ev.addr[3])),
        6 => IpAddr::V6(Ipv6Addr::from(ev.addr)),
        _ => return None,
    };
    let country = if ev.country != UNKNOWN {
        country_code(ev.country).map(|c| String::from_utf8_lossy(&c).into_owned())
    } else {
        countries.and_then(|c| c.country(source))
    };
    Some(Drop {
        source,
        reason: Reason::from_u8(ev.reason)?,
        country,
        ifindex: ev.ifindex,
        packet_len: ev.packet_len,
        l4_proto: ev.l4_proto,
    })
}

/// Logs events until `shutdown`.
pub async fn run(
    mut ring: RingBuf<MapData>,
    countries: Option<Arc<CountryLookup>>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(POLL_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => return,
        }
        let mut n = 0;
        while n < MAX_PER_TICK {
            let Some(item) = ring.next() else { break };
            n += 1;
            match decode(&item, countries.as_deref()) {
                Some(d) => log(&d),
                None => warn!(bytes = item.len(), "undecodable XDP drop event"),
            }
        }
        if n > 0 {
            debug!(events = n, "drained XDP drop events");
        }
    }
}

fn log(d: &Drop) {
    tracing::warn!(
        target: "rampart::security",
        event_type = "xdp_drop",
        client_ip = %d.source,
        reason = d.reason.as_str(),
        client_country = d.country.as_deref().unwrap_or("unknown"),
        interface = %interface_name(d.ifindex),
        protocol = d.l4_proto,
        packet_len = d.packet_len,
        action_taken = "dropped",
        "packet dropped in XDP"
    );
}

fn interface_name(ifindex: u32) -> String {
    let mut buf = [0u8; libc::IF_NAMESIZE];
    // SAFETY: if_indextoname writes at most IF_NAMESIZE bytes into buf and returns null on failure.
    let p = unsafe { libc::if_indextoname(ifindex, buf.as_mut_ptr().cast()) };
    if p.is_null() {
        return ifindex.to_string();
    }
    let len = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..len]).into_owned()
}
