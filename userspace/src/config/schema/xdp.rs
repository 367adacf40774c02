//! `xdp`: the kernel fast path. Userspace compiles these settings into BPF map entries.

use serde::{Deserialize, Serialize};

use crate::config::types::Cidr;

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct XdpConfig {
    /// Load the XDP program. Default true.
    pub enabled: bool,
    /// Interfaces to attach to, by name. Default none (the program is loaded, lists are kept, nothing is
    /// attached).
    pub interfaces: Vec<String>,
    /// How to attach: `native` (in the driver; fails if unsupported), `generic` (in the kernel stack, works
    /// everywhere, slower), or `auto` (native, falling back to generic with a warning). Default `auto`.
    pub attach_mode: AttachMode,
    /// Sources that always pass, skipping every other check (CIDR or address). Default none.
    pub allow: Vec<Cidr>,
    /// Sources dropped in the driver (CIDR or address), permanently, with reason `config`. Default none.
    pub deny: Vec<Cidr>,
}

impl Default for XdpConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            interfaces: Vec::new(),
            attach_mode: AttachMode::Auto,
            allow: Vec::new(),
            deny: Vec::new(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AttachMode {
    Native,
    Generic,
    Auto,
}
