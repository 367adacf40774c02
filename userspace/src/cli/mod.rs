//! The `rampart` subcommands that talk to a running daemon's admin API: `login`, `waf status|block-ip|
//! unblock-ip|rules`, `proxy status`, `cache clear`, `monitor health`, `ssl status|renew`. Each prints a human table, or the
//! API's JSON with `--json`. The token from `rampart login` is kept in a 0600 file (`token_store`) and
//! refreshed once when the API says it expired.

pub mod client;
pub mod commands;
pub mod events;
pub mod ssl;
pub mod token_store;

pub use client::AdminClient;
