//! The bpffs directory layout (`<pin_path>/maps/<NAME>`, `<pin_path>/links/<mode>/<interface>`; bpffs refuses
//! dots in names, so the mode is a directory) and the check
//! that every pinned map still has the definition this binary expects. aya reuses a pinned map by name without
//! comparing definitions, so a map whose key, value or size changed between versions would be used wrongly;
//! such a pin is removed here and the map recreated (lists are then rebuilt from the durable record).

use std::path::{Path, PathBuf};

use aya::maps::{MapData, MapType};
use rampart_common::maps::{self, names};
use rampart_common::stats::STATS_LEN;
use rampart_common::{Counter, DropEvent, ListEntry, geo};
use tracing::warn;

use super::XdpError;

/// The expected kernel definition of one map.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MapDef {
    pub name: &'static str,
    pub map_type: MapType,
    pub key_size: u32,
    pub value_size: u32,
    pub max_entries: u32,
}

const fn lpm_key(data: usize) -> u32 {
    4 + data as u32
}

/// Every map of the object with its definition; `rate_max` is the configured rate-limiter size.
pub fn definitions(rate_max: u32) -> [MapDef; 10] {
    let list = size_of::<ListEntry>() as u32;
    let def = |name, map_type, key_size, value_size, max_entries| MapDef {
        name,
        map_type,
        key_size,
        value_size,
        max_entries,
    };
    [
        def(
            names::ALLOW_V4,
            MapType::LpmTrie,
            lpm_key(4),
            list,
            maps::ALLOW_MAX_ENTRIES,
        ),
        def(
            names::ALLOW_V6,
            MapType::LpmTrie,
            lpm_key(16),
            list,
            maps::ALLOW_MAX_ENTRIES,
        ),
        def(
            names::DENY_V4,
            MapType::LpmTrie,
            lpm_key(4),
            list,
            maps::DENY_MAX_ENTRIES,
        ),
        def(
            names::DENY_V6,
            MapType::LpmTrie,
            lpm_key(16),
            list,
            maps::DENY_MAX_ENTRIES,
        ),
        def(names::GEO_V4, MapType::LpmTrie, lpm_key(4), 2, maps::GEO_MAX_ENTRIES),
        def(names::GEO_V6, MapType::LpmTrie, lpm_key(16), 2, maps::GEO_MAX_ENTRIES),
        def(names::GEO_POLICY, MapType::Array, 4, 1, geo::POLICY_LEN),
        def(names::RATE, MapType::LruHash, 16, 8, rate_max),
        def(
            names::STATS,
            MapType::PerCpuArray,
            4,
            size_of::<Counter>() as u32,
            STATS_LEN,
        ),
        def(names::EVENTS, MapType::RingBuf, 0, 0, maps::EVENTS_BYTES),
    ]
}

/// Paths under the configured pin directory.
#[derive(Clone, Debug)]
pub struct PinDir {
    root: PathBuf,
}

impl PinDir {
    pub fn new(root: &Path) -> Self {
        Self { root: root.to_owned() }
    }

    pub fn maps(&self) -> PathBuf {
        self.root.join("maps")
    }

    pub fn links(&self) -> PathBuf {
        self.root.join("links")
    }

    pub fn link(&self, mode: super::AttachedMode, interface: &str) -> PathBuf {
        self.links().join(mode.as_str()).join(interface)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Creates the directories (bpffs allows plain directories).
    pub fn create(&self) -> Result<(), XdpError> {
        let links = self.links();
        for dir in [self.maps(), links.join("native"), links.join("generic")] {
            std::fs::create_dir_all(&dir).map_err(|source| XdpError::PinDir {
                path: dir.clone(),
                source,
            })?;
        }
        Ok(())
    }

    /// Removes pinned maps whose definition differs from `expected`; returns their names. A map that is not
    /// pinned yet is fine (the loader creates it).
    pub fn drop_incompatible(&self, expected: &[MapDef]) -> Vec<&'static str> {
        let mut dropped = Vec::new();
        for def in expected {
            let path = self.maps().join(def.name);
            if !path.exists() {
                continue;
            }
            let actual = MapData::from_pin(&path).and_then(|m| m.info()).map(|info| {
                (
                    info.map_type().ok(),
                    info.key_size(),
                    info.value_size(),
                    info.max_entries(),
                )
            });
            let wanted = (Some(def.map_type), def.key_size, def.value_size, def.max_entries);
            if actual.as_ref().ok() != Some(&wanted) {
                warn!(
                    map = def.name,
                    ?actual,
                    ?wanted,
                    "pinned map has a different definition; recreating it"
                );
                if let Err(e) = std::fs::remove_file(&path) {
                    warn!(map = def.name, error = %e, "removing the incompatible pin failed");
                }
                dropped.push(def.name);
            }
        }
        dropped
    }
}

/// Size of a `DropEvent`, checked against the kernel's record size by the events reader.
pub const DROP_EVENT_SIZE: usize = size_of::<DropEvent>();
