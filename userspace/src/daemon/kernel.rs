//! Starting the kernel half for the daemon: load and attach XDP, compile geo policy into it, and decide
//! whether the lists must also be enforced at L7. Failure to load or attach is not fatal: the daemon starts
//! degraded, enforces the lists at L7, and says so in the log and at `/health`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::watch;
use tracing::{error, info, warn};

use crate::config::Config;
use crate::xdp::{self, Attachment, GeoPolicy, Loaded, Settings, XdpMaps, XdpProgram, geo};

/// What the kernel half ended up as.
pub struct Kernel {
    pub program: Option<XdpProgram>,
    pub maps: Option<Arc<XdpMaps>>,
    pub events: Option<aya::maps::RingBuf<aya::maps::MapData>>,
    pub attachments: Vec<Attachment>,
    /// Why XDP is not fully in force, when it was asked for; `None` when healthy or disabled on purpose.
    pub degraded: Option<String>,
}

impl Kernel {
    /// The lists must be checked per connection unless XDP covers every configured interface.
    pub fn needs_l7_enforcement(&self, config: &Config) -> bool {
        !config.xdp.enabled || self.degraded.is_some()
    }
}

pub fn start(config: &Config) -> anyhow::Result<Kernel> {
    let xc = &config.xdp;
    if !xc.enabled {
        warn!("xdp.enabled is false: no driver-level filtering; allow/deny lists are enforced at L7");
        xdp::remove_all_links(&xc.pin_path);
        return Ok(Kernel {
            program: None,
            maps: None,
            events: None,
            attachments: Vec::new(),
            degraded: None,
        });
    }
    let settings = Settings::from_config(config);
    let Loaded {
        mut program,
        maps,
        events,
    } = match xdp::load(&xc.pin_path, &settings) {
        Ok(l) => l,
        Err(e) => {
            error!(error = %e, "degraded: xdp — the XDP program could not be loaded; enforcing lists at L7");
            return Ok(Kernel {
                program: None,
                maps: None,
                events: None,
                attachments: Vec::new(),
                degraded: Some(format!("XDP program not loaded: {e}")),
            });
        }
    };
    // Geo prefixes go in before the program is attached (or swapped in), so it never runs with empty geo maps.
    if config.waf.geo_blocking.enabled {
        apply_geo(config, &maps)?;
    } else {
        if let Err(e) = xdp::lock(&maps.geo).apply(&Default::default()) {
            warn!(error = %e, "clearing the geo maps failed");
        }
        maps.set_count(rampart_common::maps::names::GEO_V4, 0);
        maps.set_count(rampart_common::maps::names::GEO_V6, 0);
    }
    let mut failures = Vec::new();
    for interface in &xc.interfaces {
        if let Err(e) = program.attach(interface, xc.attach_mode) {
            error!(interface, error = %e, "degraded: xdp — attaching failed; enforcing lists at L7");
            failures.push(format!("{interface}: {e}"));
        }
    }
    program.remove_stale_links(&xc.interfaces);
    if xc.interfaces.is_empty() {
        warn!("xdp.interfaces is empty: the program is loaded but attached nowhere");
    }
    let attachments = program.attachments();
    let degraded = (!failures.is_empty()).then(|| format!("XDP not attached to {}", failures.join("; ")));
    Ok(Kernel {
        program: Some(program),
        maps: Some(maps),
        events: Some(events),
        attachments,
        degraded,
    })
}

fn policy_of(config: &Config) -> GeoPolicy {
    let g = &config.waf.geo_blocking;
    GeoPolicy {
        blocked: g.blocked_countries.iter().copied().collect(),
        allowed: g.allowed_countries.iter().copied().collect(),
        whitelist: g.whitelist_ips.clone(),
    }
}

fn database(config: &Config) -> anyhow::Result<PathBuf> {
    config
        .waf
        .geo_blocking
        .geoip_database
        .clone()
        .ok_or_else(|| anyhow::anyhow!("waf.geo_blocking.geoip_database is required when geo blocking is enabled"))
}

/// Compiles the geo policy against the database and loads it; logs the prefix count and the time taken.
fn apply_geo(config: &Config, maps: &XdpMaps) -> anyhow::Result<()> {
    let db = database(config)?;
    let (compiled, stats) = geo::compile(&db, &policy_of(config))?;
    xdp::lock(&maps.geo).apply(&compiled)?;
    maps.set_count(rampart_common::maps::names::GEO_V4, compiled.v4.len());
    maps.set_count(rampart_common::maps::names::GEO_V6, compiled.v6.len());
    info!(
        database = %db.display(),
        prefixes = stats.prefixes_loaded,
        networks_scanned = stats.networks_scanned,
        took_ms = stats.took.as_millis() as u64,
        "geo policy compiled into XDP"
    );
    Ok(())
}

/// Recompiles the geo policy whenever the database file changes (checked every `update_interval`, at most a
/// minute apart). A failed reload keeps the policy in force and logs why.
pub async fn watch_geo_database(config: Config, maps: Arc<XdpMaps>, mut shutdown: watch::Receiver<bool>) {
    let Ok(db) = database(&config) else { return };
    let period = Duration::from_secs(config.waf.geo_blocking.update_interval.clamp(1, 60));
    let mtime = |p: &PathBuf| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let mut seen: Option<SystemTime> = mtime(&db);
    let mut tick = tokio::time::interval(period);
    tick.tick().await;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => return,
        }
        let now = mtime(&db);
        if now.is_none() || now == seen {
            continue;
        }
        seen = now;
        info!(database = %db.display(), "GeoIP database changed; recompiling geo policy");
        let (config, maps) = (config.clone(), maps.clone());
        match tokio::task::spawn_blocking(move || apply_geo(&config, &maps)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => error!(error = %e, "reloading the geo policy failed; the previous policy stays in force"),
            Err(e) => error!(error = %e, "geo reload task failed"),
        }
    }
}
