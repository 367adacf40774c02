//! The kernel half, seen from userspace: load the embedded XDP object with its settings and pinned maps,
//! attach it to interfaces through pinned links, and give the rest of the daemon typed handles on its maps.
//!
//! Policy decisions (what to list, which countries, what rate) are made by callers; this module translates
//! them into settings and map entries and reports what the kernel did. It never parses configuration files.

mod attach;
mod clock;
pub mod events;
pub mod geo;
mod lists;
mod object;
pub mod pins;
pub mod settings;
mod stats;
pub mod testrun;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use aya::maps::{Array, HashMap, LpmTrie, MapData, MapError, PerCpuArray, RingBuf};
use aya::programs::{ProgramError, Xdp, XdpMode};
use aya::{Ebpf, EbpfLoader};
use rampart_common::maps::{PROGRAM_NAME, names};
use tracing::info;

pub use attach::Attached;
pub use clock::{expiry_after, monotonic_ns};
pub use geo::{CompiledGeo, GeoMaps, GeoPolicy};
pub use lists::{ListKind, ListMaps};
pub use pins::PinDir;
pub use settings::Settings;
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
    #[error("the kernel rejected the XDP program: {}", tail(&.0.to_string(), 12))]
    Verify(#[source] ProgramError),
    #[error("the XDP object has no map `{0}`")]
    MapMissing(&'static str),
    #[error("XDP map `{name}`: {source}")]
    Map {
        name: &'static str,
        #[source]
        source: MapError,
    },
    #[error("cannot create the bpffs pin directory {path}: {source} (is bpffs mounted at /sys/fs/bpf?)")]
    PinDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("pinned XDP link {path}: {message}")]
    Link { path: PathBuf, message: String },
    #[error("attaching XDP to interface `{interface}` in {mode} mode failed: {source}")]
    Attach {
        interface: String,
        mode: &'static str,
        #[source]
        source: ProgramError,
    },
    #[error("BPF_PROG_TEST_RUN failed: {0}")]
    TestRun(#[source] std::io::Error),
}

/// The last `n` lines of a (verifier) message: the reason for a rejection is at the end, and the whole log
/// can run to thousands of lines.
fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    if lines.len() <= n + 1 {
        return s.to_owned();
    }
    format!(
        "{} [... {} verifier lines omitted ...] {}",
        lines[0],
        lines.len() - n - 1,
        lines[lines.len() - n..].join("\n")
    )
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

/// One interface the program is attached to, as reported in status and `/health`.
#[derive(Clone, Debug)]
pub struct Attachment {
    pub interface: String,
    pub mode: AttachedMode,
    pub pinned: bool,
}

/// The maps shared with the admin API, metrics and the geo compiler. Writers are behind mutexes (writes are
/// rare and must not interleave); counters are read lock-free.
pub struct XdpMaps {
    pub lists: Mutex<ListMaps>,
    pub geo: Mutex<GeoMaps>,
    pub stats: StatsMap,
    /// The rate limiter's LRU hash (aya reads LRU and plain hashes alike), with a cached entry count.
    rate: Mutex<RateMap>,
    counts: Mutex<BTreeMap<&'static str, usize>>,
    pub program_id: u32,
    pub rate_max_sources: u32,
}

/// The rate limiter's LRU map and the last count of its entries (when, how many).
type RateMap = (HashMap<MapData, [u8; 16], u64>, Option<(Instant, usize)>);

/// Rate-limit entries are counted by walking the LRU map; a scrape reuses a count this recent.
const RATE_COUNT_TTL: Duration = Duration::from_secs(15);

impl XdpMaps {
    /// Records how many entries a map holds, as known to its writer.
    pub fn set_count(&self, map: &'static str, entries: usize) {
        lock(&self.counts).insert(map, entries);
    }

    /// Entries per map: writer-reported counts plus the rate limiter's tracked sources.
    pub fn entry_counts(&self) -> BTreeMap<&'static str, usize> {
        let mut counts = lock(&self.counts).clone();
        let mut rate = lock(&self.rate);
        let fresh = rate.1.filter(|(at, _)| at.elapsed() < RATE_COUNT_TTL);
        let n = match fresh {
            Some((_, n)) => n,
            None => {
                let n = rate.0.keys().filter(Result::is_ok).count();
                rate.1 = Some((Instant::now(), n));
                n
            }
        };
        counts.insert(names::RATE, n);
        counts
    }
}

/// The loaded program and its attachments.
pub struct XdpProgram {
    ebpf: Ebpf,
    pins: PinDir,
    attached: Vec<Attached>,
}

/// Everything `load` produces: the program (kept by the daemon), the shared maps, and the event ring (taken by
/// the event reader).
pub struct Loaded {
    pub program: XdpProgram,
    pub maps: Arc<XdpMaps>,
    pub events: RingBuf<MapData>,
}

/// Loads the embedded object with `settings`, reusing maps pinned under `pin_dir` (after dropping any whose
/// definition changed) and pinning new ones there.
pub fn load(pin_dir: &Path, settings: &Settings) -> Result<Loaded, XdpError> {
    let pins = PinDir::new(pin_dir);
    pins.create()?;
    let recreated = pins.drop_incompatible(&pins::definitions(settings.rate_max_sources));
    if !recreated.is_empty() {
        info!(maps = ?recreated, "recreated pinned maps with a changed definition");
    }
    let scratch = settings.scratch();
    let mut loader = EbpfLoader::new();
    loader.default_map_pin_directory(pins.maps());
    settings.apply(&mut loader, &scratch);
    let mut ebpf = loader.load(object::embedded()?).map_err(XdpError::Load)?;
    let program = xdp_program(&mut ebpf)?;
    program.load().map_err(XdpError::Verify)?;
    let program_id = program.info().map(|i| i.id()).unwrap_or(0);
    let maps = XdpMaps {
        lists: Mutex::new(ListMaps {
            allow_v4: take(&mut ebpf, names::ALLOW_V4, LpmTrie::try_from)?,
            allow_v6: take(&mut ebpf, names::ALLOW_V6, LpmTrie::try_from)?,
            deny_v4: take(&mut ebpf, names::DENY_V4, LpmTrie::try_from)?,
            deny_v6: take(&mut ebpf, names::DENY_V6, LpmTrie::try_from)?,
        }),
        geo: Mutex::new(GeoMaps {
            v4: take(&mut ebpf, names::GEO_V4, LpmTrie::try_from)?,
            v6: take(&mut ebpf, names::GEO_V6, LpmTrie::try_from)?,
            policy: take(&mut ebpf, names::GEO_POLICY, Array::try_from)?,
        }),
        stats: StatsMap(take(&mut ebpf, names::STATS, PerCpuArray::try_from)?),
        rate: Mutex::new((take(&mut ebpf, names::RATE, HashMap::try_from)?, None)),
        counts: Mutex::new(BTreeMap::new()),
        program_id,
        rate_max_sources: settings.rate_max_sources,
    };
    let events = take(&mut ebpf, names::EVENTS, RingBuf::try_from)?;
    Ok(Loaded {
        program: XdpProgram {
            ebpf,
            pins,
            attached: Vec::new(),
        },
        maps: Arc::new(maps),
        events,
    })
}

fn xdp_program(ebpf: &mut Ebpf) -> Result<&mut Xdp, XdpError> {
    ebpf.program_mut(PROGRAM_NAME)
        .ok_or(XdpError::ProgramMissing(PROGRAM_NAME))?
        .try_into()
        .map_err(|_| XdpError::ProgramMissing(PROGRAM_NAME))
}

fn take<T>(
    ebpf: &mut Ebpf,
    name: &'static str,
    convert: impl FnOnce(aya::maps::Map) -> Result<T, MapError>,
) -> Result<T, XdpError> {
    let map = ebpf.take_map(name).ok_or(XdpError::MapMissing(name))?;
    convert(map).map_err(|source| XdpError::Map { name, source })
}

impl XdpProgram {
    /// Attaches to `interface`, taking over a link pinned by an earlier run when there is one (see `attach`).
    pub fn attach(&mut self, interface: &str, mode: AttachMode) -> Result<AttachedMode, XdpError> {
        let attached = attach::attach(xdp_program(&mut self.ebpf)?, &self.pins, interface, mode)?;
        let used = attached.mode;
        self.attached.push(attached);
        Ok(used)
    }

    /// Detaches links pinned for interfaces not in `configured` (left by an earlier configuration).
    pub fn remove_stale_links(&self, configured: &[String]) {
        attach::remove_stale(&self.pins, configured);
    }

    pub fn attachments(&self) -> Vec<Attachment> {
        self.attached
            .iter()
            .map(|a| Attachment {
                interface: a.interface.clone(),
                mode: a.mode,
                pinned: a.is_pinned(),
            })
            .collect()
    }

    /// Ends every attachment: detached, or left running on its pinned link when `keep_attached`.
    pub fn shutdown(&mut self, keep_attached: bool) {
        let attached = std::mem::take(&mut self.attached);
        for a in attached {
            if keep_attached {
                attach::keep(a);
            } else if let Ok(program) = xdp_program(&mut self.ebpf) {
                attach::detach(program, a);
            }
        }
    }

    /// Runs the loaded program on `packet` in the kernel (BPF_PROG_TEST_RUN).
    pub fn test_run(&mut self, packet: &[u8], repeat: u32) -> Result<testrun::TestRun, XdpError> {
        testrun::run(xdp_program(&mut self.ebpf)?, packet, repeat)
    }
}

/// Detaches every pinned link under `pin_dir` (used when XDP is switched off, so no earlier run's program
/// stays attached).
pub fn remove_all_links(pin_dir: &Path) {
    attach::remove_stale(&PinDir::new(pin_dir), &[]);
}

/// A poisoned lock means a panic mid-update elsewhere; the maps themselves are still consistent (each update
/// is a single syscall), so carry on.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
