//! Geo policy compiled into the kernel: reads a MaxMind country database and loads into the `GEO_V4`/`GEO_V6`
//! tries only the prefixes of countries the policy needs, plus the per-country policy array.
//!
//! Modes: with `allowed_countries` empty, listed `blocked_countries` are dropped and everything else passes
//! (only blocked countries' prefixes are loaded). With `allowed_countries` set, only those pass: their prefixes
//! are loaded with PASS and every address no loaded prefix covers is dropped — except private, loopback and
//! link-local ranges, which are exempt so the host's own networks keep working. `whitelist_ips` always pass:
//! database prefixes inside a whitelisted prefix are left out and the whitelisted prefix is loaded as EXEMPT,
//! so no more specific database prefix can override it. The allow list (checked before geo) also always wins.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use aya::maps::lpm_trie::{Key, LpmTrie};
use aya::maps::{Array, MapData, MapError};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use maxminddb::{PathElement, Reader, WithinOptions};
use rampart_common::geo::{self, country_index};

use crate::config::types::{Cidr, CountryCode};

#[derive(Debug, thiserror::Error)]
pub enum GeoError {
    #[error("cannot open GeoIP database {path}: {message}")]
    Open { path: String, message: String },
    #[error("reading GeoIP database {path}: {message}")]
    Read { path: String, message: String },
    #[error("writing geo map `{map}`: {source}")]
    Map {
        map: &'static str,
        #[source]
        source: MapError,
    },
}

/// What the operator asked for (from `waf.geo_blocking`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GeoPolicy {
    pub blocked: BTreeSet<CountryCode>,
    pub allowed: BTreeSet<CountryCode>,
    pub whitelist: Vec<Cidr>,
}

impl GeoPolicy {
    fn allow_only(&self) -> bool {
        !self.allowed.is_empty()
    }

    /// Countries whose prefixes must be loaded, with their policy.
    fn needed(&self) -> HashMap<u16, u8> {
        let index = |c: &CountryCode| country_index(code_bytes(c));
        if self.allow_only() {
            self.allowed
                .difference(&self.blocked)
                .filter_map(index)
                .map(|i| (i, geo::PASS))
                .collect()
        } else {
            self.blocked.iter().filter_map(index).map(|i| (i, geo::DROP)).collect()
        }
    }
}

fn code_bytes(c: &CountryCode) -> [u8; 2] {
    let b = c.as_str().as_bytes();
    [b.first().copied().unwrap_or(0), b.get(1).copied().unwrap_or(0)]
}

/// Ranges exempt from allow-only mode: the host's own and private networks are never "a country".
const LOCAL_RANGES: &[&str] = &[
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "100.64.0.0/10",
    "::1/128",
    "fc00::/7",
    "fe80::/10",
];

/// The result of compiling a policy against a database: the exact map contents.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CompiledGeo {
    pub v4: BTreeMap<Ipv4Net, u16>,
    pub v6: BTreeMap<Ipv6Net, u16>,
    pub policy: Vec<u8>,
}

/// Counts and timing of one compilation, for the log.
#[derive(Clone, Copy, Debug)]
pub struct CompileStats {
    pub networks_scanned: usize,
    pub prefixes_loaded: usize,
    pub took: Duration,
}

pub fn compile(database: &Path, policy: &GeoPolicy) -> Result<(CompiledGeo, CompileStats), GeoError> {
    let started = Instant::now();
    let path = database.display().to_string();
    let reader = Reader::open_readfile(database).map_err(|e| GeoError::Open {
        path: path.clone(),
        message: e.to_string(),
    })?;
    let needed = policy.needed();
    let mut out = CompiledGeo::default();
    let mut scanned = 0usize;
    // Many networks share one record; remember each record's country by its offset instead of re-decoding.
    let mut by_offset: HashMap<usize, Option<u16>> = HashMap::new();
    let read_err = |e: maxminddb::MaxMindDbError| GeoError::Read {
        path: path.clone(),
        message: e.to_string(),
    };
    let roots: &[&str] = if reader.metadata().ip_version == 6 {
        &["0.0.0.0/0", "::/0"]
    } else {
        &["0.0.0.0/0"]
    };
    for root in roots {
        let cidr = root.parse().map_err(|_| GeoError::Read {
            path: path.clone(),
            message: "bad root".into(),
        })?;
        for item in reader.within(cidr, WithinOptions::default()).map_err(read_err)? {
            let item = item.map_err(read_err)?;
            scanned += 1;
            let country = match item.offset() {
                Some(off) => *by_offset.entry(off).or_insert_with(|| country_of(&item)),
                None => None,
            };
            let Some(country) = country.filter(|c| needed.contains_key(c)) else {
                continue;
            };
            let net = item.network().map_err(read_err)?;
            match IpNet::new(net.network(), net.prefix()).map(|n| n.trunc()) {
                Ok(IpNet::V4(n)) => {
                    out.v4.insert(n, country);
                }
                // IPv4 space seen through the IPv6 tree (::a.b.c.d/96+n) was already loaded from the IPv4 root.
                Ok(IpNet::V6(n)) if is_ipv4_alias(&n) => {}
                Ok(IpNet::V6(n)) => {
                    out.v6.insert(n, country);
                }
                Err(_) => {}
            }
        }
    }
    if policy.allow_only() {
        for range in LOCAL_RANGES {
            if let Ok(net) = range.parse::<IpNet>() {
                insert_if_absent(&mut out, net, geo::EXEMPT);
            }
        }
    }
    for w in &policy.whitelist {
        let w = w.net();
        out.v4.retain(|n, _| !w.contains(&IpNet::V4(*n)));
        out.v6.retain(|n, _| !w.contains(&IpNet::V6(*n)));
        insert(&mut out, w, geo::EXEMPT);
    }
    out.policy = vec![geo::PASS; geo::POLICY_LEN as usize];
    for (&country, &verdict) in &needed {
        if let Some(slot) = out.policy.get_mut(usize::from(country)) {
            *slot = verdict;
        }
    }
    if policy.allow_only() {
        out.policy[usize::from(geo::UNKNOWN)] = geo::DROP;
        for c in &policy.blocked {
            if let Some(i) = country_index(code_bytes(c)) {
                out.policy[usize::from(i)] = geo::DROP;
            }
        }
    }
    let stats = CompileStats {
        networks_scanned: scanned,
        prefixes_loaded: out.v4.len() + out.v6.len(),
        took: started.elapsed(),
    };
    Ok((out, stats))
}

fn country_of<S: AsRef<[u8]>>(item: &maxminddb::LookupResult<'_, S>) -> Option<u16> {
    let code: Option<&str> = item
        .decode_path(&[PathElement::Key("country"), PathElement::Key("iso_code")])
        .ok()
        .flatten();
    let code = code?.as_bytes();
    match code {
        [a, b] => country_index([a.to_ascii_uppercase(), b.to_ascii_uppercase()]),
        _ => None,
    }
}

/// `::/96` (IPv4-compatible) and `::ffff:0:0/96` (IPv4-mapped) hold the IPv4 tree inside an IPv6 database.
fn is_ipv4_alias(n: &Ipv6Net) -> bool {
    let seg = n.network().segments();
    n.prefix_len() >= 96 && seg[..5] == [0; 5] && (seg[5] == 0 || seg[5] == 0xffff)
}

fn insert(out: &mut CompiledGeo, net: IpNet, value: u16) {
    match net {
        IpNet::V4(n) => {
            out.v4.insert(n, value);
        }
        IpNet::V6(n) => {
            out.v6.insert(n, value);
        }
    }
}

fn insert_if_absent(out: &mut CompiledGeo, net: IpNet, value: u16) {
    match net {
        IpNet::V4(n) => {
            out.v4.entry(n).or_insert(value);
        }
        IpNet::V6(n) => {
            out.v6.entry(n).or_insert(value);
        }
    }
}

/// The three geo maps.
pub struct GeoMaps {
    pub(super) v4: LpmTrie<MapData, [u8; 4], u16>,
    pub(super) v6: LpmTrie<MapData, [u8; 16], u16>,
    pub(super) policy: Array<MapData, u8>,
}

impl GeoMaps {
    /// Makes the maps hold exactly `compiled`: new and changed prefixes first, then the policy, then stale
    /// prefixes removed, so a change never opens a window where a covered address is unmatched.
    pub fn apply(&mut self, compiled: &CompiledGeo) -> Result<(), GeoError> {
        let map_err = |map| move |source| GeoError::Map { map, source };
        for (net, &c) in &compiled.v4 {
            self.v4
                .insert(&Key::new(u32::from(net.prefix_len()), net.network().octets()), c, 0)
                .map_err(map_err("GEO_V4"))?;
        }
        for (net, &c) in &compiled.v6 {
            self.v6
                .insert(&Key::new(u32::from(net.prefix_len()), net.network().octets()), c, 0)
                .map_err(map_err("GEO_V6"))?;
        }
        for (i, &verdict) in compiled.policy.iter().enumerate() {
            self.policy.set(i as u32, verdict, 0).map_err(map_err("GEO_POLICY"))?;
        }
        let stale_v4: Vec<Key<[u8; 4]>> = self
            .v4
            .keys()
            .filter_map(Result::ok)
            .filter(|k| !compiled.v4.contains_key(&v4_net(k)))
            .collect();
        for k in stale_v4 {
            let _ = self.v4.remove(&k);
        }
        let stale_v6: Vec<Key<[u8; 16]>> = self
            .v6
            .keys()
            .filter_map(Result::ok)
            .filter(|k| !compiled.v6.contains_key(&v6_net(k)))
            .collect();
        for k in stale_v6 {
            let _ = self.v6.remove(&k);
        }
        Ok(())
    }
}

fn v4_net(k: &Key<[u8; 4]>) -> Ipv4Net {
    Ipv4Net::new(k.data().into(), u8::try_from(k.prefix_len()).unwrap_or(32))
        .unwrap_or_else(|_| Ipv4Net::from(std::net::Ipv4Addr::from(k.data())))
}

fn v6_net(k: &Key<[u8; 16]>) -> Ipv6Net {
    Ipv6Net::new(k.data().into(), u8::try_from(k.prefix_len()).unwrap_or(128))
        .unwrap_or_else(|_| Ipv6Net::from(std::net::Ipv6Addr::from(k.data())))
}

/// Looks up a client's country in a database: for events and logs, custom rules (`type: country`), and the
/// L7 geo check that stands in for XDP when XDP is not in force.
pub struct CountryLookup {
    reader: Reader<Vec<u8>>,
}

impl CountryLookup {
    pub fn open(database: &Path) -> Result<Self, GeoError> {
        Reader::open_readfile(database)
            .map(|reader| Self { reader })
            .map_err(|e| GeoError::Open {
                path: database.display().to_string(),
                message: e.to_string(),
            })
    }

    pub fn country(&self, ip: IpAddr) -> Option<String> {
        let result = self.reader.lookup(ip).ok()?;
        let code: Option<&str> = result
            .decode_path(&[PathElement::Key("country"), PathElement::Key("iso_code")])
            .ok()
            .flatten();
        code.map(str::to_owned)
    }
}
