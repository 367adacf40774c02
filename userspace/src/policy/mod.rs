//! Request policy other than OWASP inspection: rate limits (`ratelimit`) and the escalation of repeated
//! offences into the XDP deny list (`escalation`). Unlike `waf/`, these keep state over time (counters,
//! scores) and read the monotonic clock; they still do no network I/O of their own except the optional
//! Redis counters. The proxy's `policy_phase` is what calls them.

pub mod escalation;
pub mod ratelimit;
