//! Request policy other than OWASP inspection: rate limits (`ratelimit`), bot detection (`bot`) and its
//! challenges (`challenge`), and the escalation of repeated offences into the XDP deny list
//! (`escalation`). Unlike `waf/`, these keep state over time (counters, scores, behaviour) and read the
//! clock; their only network I/O is the optional Redis counters, DNS for crawler verification and the
//! CAPTCHA provider's siteverify. The proxy's `policy_phase`, `bot_phase` and `challenge_phase` call them.

pub mod bot;
pub mod challenge;
pub mod escalation;
pub mod ratelimit;
