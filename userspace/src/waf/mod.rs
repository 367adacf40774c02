//! The WAF inspection engine: given one request, decide whether it is an attack.
//!
//! The anatomy follows ModSecurity/Coraza, as separate parts: `targets` (what is looked at: path, arguments,
//! headers, cookies, parsed bodies), `normalize` (the transformations that undo encodings an attack hides
//! behind), `detect` (one matcher per attack family, each returning a confidence 0.0–1.0) and `policy` (what
//! a confidence leads to: per-rule thresholds and actions, exclusions, anomaly-score summing, the mode).
//! `engine::Engine` composes them: one Aho-Corasick prefilter over the literal fragments of every family
//! selects which detectors run on a value, so a clean request costs a few microseconds.
//!
//! **Nothing in `waf/` does I/O**: no sockets, no files, no clock except the timer the caller asks for, no
//! logging. The engine is built once per configuration generation (`Engine::build`), is `Send + Sync`, and
//! `Engine::inspect` is a pure function of a [`RequestView`]. Logging the security event, counting metrics and
//! answering the client are the proxy's job; reading a corpus file is the CLI's.

pub mod detect;
pub mod engine;
pub mod event;
pub mod family;
pub mod headers;
pub mod normalize;
pub mod policy;
pub mod request;
pub mod rules;
pub mod targets;

pub use engine::{Engine, Inspection};
pub use family::Family;
pub use policy::{Action, Overrides, PolicyError};
pub use request::RequestView;
