//! The kernel half, seen from userspace: load the embedded XDP object, attach it to interfaces, and give the
//! rest of the daemon typed handles on its maps.
//!
//! Policy decisions (what to list, for how long) are made by callers; this module only translates them into
//! map entries and reports what the kernel did. It never parses configuration files.

mod clock;
mod lists;
mod object;
mod stats;

use std::sync::Mutex;

use aya::Ebpf;
use aya::maps::{LpmTrie, MapData, MapError, PerCpuArray};
use aya::programs::xdp::XdpLinkId;
use aya::programs::{ProgramError, Xdp, XdpMode};
use rampart_common::maps::{PROGRAM_NAME, names};
use tracing::{info, warn};

pub use clock::{expiry_after, monotonic_ns};
pub use lists::{ListKind, ListMaps};
pub use stats::StatsMap;

use crate::config::schema::AttachMode;

#[derive(Debug, thiserror::Error)]
pub enum XdpError {
    #[error("this binary was built without its XDP object; build it with `cargo xtask build`")]
    NotEmbedded,
    #[error("loading the XDP object failed (root or CAP_BPF+CAP_NET_ADMIN is required): {0}")]
    Load(#[source] aya::EbpfError),
    #[error("the XDP object has no program `{0}`")]
    ProgramMissing(&'static str),
    #[error("the kernel rejected the XDP program: {0}")]
    Verify(#[source] ProgramError),
    #[error("the XDP object has no map `{0}`")]
    MapMissing(&'static str),
    #[error("XDP map `{name}`: {source}")]
    Map {
        name: &'static str,
        #[source]
        source: MapError,
    },
    #[error("attaching XDP to interface `{interface}` in {mode} mode failed: {source}")]
    Attach {
        interface: String,
        mode: &'static str,
        #[source]
        source: ProgramError,
    },
}

/// How the program ended up attached to an interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttachedMode {
    /// In the driver (`XDP_FLAGS_DRV_MODE`).
    Native,
    /// In the kernel's generic receive path (`XDP_FLAGS_SKB_MODE`).
    Generic,
}

impl AttachedMode {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Native => "native",
            Self::Generic => "generic",
        }
    }

    const fn kernel_mode(self) -> XdpMode {
        match self {
            Self::Native => XdpMode::Driver,
            Self::Generic => XdpMode::Skb,
        }
    }
}

/// One interface the program is attached to.
#[derive(Clone, Debug)]
pub struct Attachment {
    pub interface: String,
    pub mode: AttachedMode,
}

/// The maps shared with the admin API and metrics: lists behind a mutex (writes are rare and must not
/// interleave), counters lock-free (reads only).
pub struct XdpMaps {
    pub lists: Mutex<ListMaps>,
    pub stats: StatsMap,
}

/// The loaded program and its attachments. Dropping it detaches everything (aya detaches owned links on drop);
/// [`XdpProgram::detach_all`] does the same with a log line per interface.
pub struct XdpProgram {
    ebpf: Ebpf,
    links: Vec<(Attachment, XdpLinkId)>,
}

/// Loads the embedded object into the kernel and takes its maps.
pub fn load() -> Result<(XdpProgram, XdpMaps), XdpError> {
    let mut ebpf = Ebpf::load(object::embedded()?).map_err(XdpError::Load)?;
    let program = xdp_program(&mut ebpf)?;
    program.load().map_err(XdpError::Verify)?;
    let maps = XdpMaps {
        lists: Mutex::new(ListMaps {
            allow_v4: take_trie(&mut ebpf, names::ALLOW_V4)?,
            allow_v6: take_trie(&mut ebpf, names::ALLOW_V6)?,
            deny_v4: take_trie(&mut ebpf, names::DENY_V4)?,
            deny_v6: take_trie(&mut ebpf, names::DENY_V6)?,
        }),
        stats: StatsMap(take_stats(&mut ebpf)?),
    };
    Ok((
        XdpProgram {
            ebpf,
            links: Vec::new(),
        },
        maps,
    ))
}

fn xdp_program(ebpf: &mut Ebpf) -> Result<&mut Xdp, XdpError> {
    ebpf.program_mut(PROGRAM_NAME)
        .ok_or(XdpError::ProgramMissing(PROGRAM_NAME))?
        .try_into()
        .map_err(|_| XdpError::ProgramMissing(PROGRAM_NAME))
}

fn take_trie<const N: usize>(
    ebpf: &mut Ebpf,
    name: &'static str,
) -> Result<LpmTrie<MapData, [u8; N], rampart_common::ListEntry>, XdpError>
where
    [u8; N]: aya::Pod,
{
    let map = ebpf.take_map(name).ok_or(XdpError::MapMissing(name))?;
    LpmTrie::try_from(map).map_err(|source| XdpError::Map { name, source })
}

fn take_stats(ebpf: &mut Ebpf) -> Result<PerCpuArray<MapData, rampart_common::Counter>, XdpError> {
    let name = names::STATS;
    let map = ebpf.take_map(name).ok_or(XdpError::MapMissing(name))?;
    PerCpuArray::try_from(map).map_err(|source| XdpError::Map { name, source })
}

impl XdpProgram {
    /// Attaches to `interface`. `Auto` tries the driver first and falls back to generic mode with a warning,
    /// because generic XDP still drops before the IP stack but costs an skb per packet.
    pub fn attach(&mut self, interface: &str, mode: AttachMode) -> Result<AttachedMode, XdpError> {
        let attempt = |this: &mut Self, m: AttachedMode| -> Result<XdpLinkId, XdpError> {
            xdp_program(&mut this.ebpf)?
                .attach(interface, m.kernel_mode())
                .map_err(|source| XdpError::Attach {
                    interface: interface.to_owned(),
                    mode: m.as_str(),
                    source,
                })
        };
        let (link, used) = match mode {
            AttachMode::Native => (attempt(self, AttachedMode::Native)?, AttachedMode::Native),
            AttachMode::Generic => (attempt(self, AttachedMode::Generic)?, AttachedMode::Generic),
            AttachMode::Auto => match attempt(self, AttachedMode::Native) {
                Ok(link) => (link, AttachedMode::Native),
                Err(native_err) => {
                    warn!(interface, error = %native_err, "native XDP unavailable; falling back to generic mode");
                    (attempt(self, AttachedMode::Generic)?, AttachedMode::Generic)
                }
            },
        };
        info!(interface, mode = used.as_str(), "XDP program attached");
        self.links.push((
            Attachment {
                interface: interface.to_owned(),
                mode: used,
            },
            link,
        ));
        Ok(used)
    }

    pub fn attachments(&self) -> Vec<Attachment> {
        self.links.iter().map(|(a, _)| a.clone()).collect()
    }

    /// Detaches from every interface, logging each; errors are logged, not returned, because shutdown goes on.
    pub fn detach_all(&mut self) {
        for (attachment, link) in std::mem::take(&mut self.links) {
            let result = xdp_program(&mut self.ebpf).and_then(|p| {
                p.detach(link).map_err(|source| XdpError::Attach {
                    interface: attachment.interface.clone(),
                    mode: attachment.mode.as_str(),
                    source,
                })
            });
            match result {
                Ok(()) => info!(interface = attachment.interface, "XDP program detached"),
                Err(e) => warn!(interface = attachment.interface, error = %e, "detaching XDP failed"),
            }
        }
    }
}
