//! `rampart run`: build every part from the configuration, start the listeners, and tear down in order on
//! SIGINT/SIGTERM (stop accepting, drain requests, detach XDP).
//!
//! This is the one place where parts are composed; each part is built from config and handed its
//! dependencies here, and nowhere else constructs another part.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use rampart_common::EntrySource;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;
use tracing::{error, info, warn};

use crate::access::{AccessLists, NewEntry, Protected};
use crate::admin::{self, AdminState};
use crate::config::Config;
use crate::net::{self, Limits};
use crate::proxy::Proxy;
use crate::telemetry::metrics::Metrics;
use crate::xdp::{self, ListKind, XdpMaps, XdpProgram};

pub use support::check as unsupported;

/// How often expired list entries are removed from the maps.
const SWEEP_INTERVAL: Duration = Duration::from_secs(10);

pub async fn run(config: Config) -> anyhow::Result<()> {
    let started = Instant::now();
    let support = unsupported(&config);
    for w in &support.warnings {
        warn!("{w}");
    }
    if !support.fatal.is_empty() {
        anyhow::bail!("{}", support.fatal.join("; "));
    }

    let (mut program, maps) = start_xdp(&config)?;
    let attachments = program.as_ref().map(XdpProgram::attachments).unwrap_or_default();
    let lists = Arc::new(AccessLists::new(maps.clone(), protected_addresses(&config)));
    load_configured_lists(&lists, &config)?;
    let metrics = Arc::new(Metrics::new(maps));

    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let proxy_addr = SocketAddr::new(config.server.host, config.server.port.get());
    let proxy_listener = net::bind(proxy_addr, "proxy").await?;
    info!(address = %proxy_addr, "proxy listening (HTTP/1.1 and h2c)");
    let limits = Limits {
        max_connections: config.server.max_connections,
        keepalive_timeout: Duration::from_secs(config.server.keepalive_timeout),
        max_header_size: usize::try_from(config.server.max_header_size.get()).unwrap_or(usize::MAX),
        shutdown_timeout: Duration::from_secs(config.server.shutdown_timeout),
    };
    let proxy = Arc::new(Proxy::new(&config));
    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(net::serve(proxy_listener, proxy, limits, shutdown_rx.clone()));

    if config.admin.enabled {
        let admin_addr = SocketAddr::new(config.admin.host, config.admin.port.get());
        let admin_listener = net::bind(admin_addr, "admin API").await?;
        info!(address = %admin_addr, "admin API listening");
        let state = Arc::new(AdminState {
            lists: lists.clone(),
            metrics,
            xdp_attachments: attachments,
            xdp_wanted: config.xdp.enabled,
            started,
        });
        let app = admin::router(
            state,
            &config.metrics.prometheus.path,
            &config.metrics.health_checks.endpoint,
        );
        let rx = shutdown_rx.clone();
        tasks.spawn(async move {
            if let Err(e) = admin::serve(admin_listener, app, rx).await {
                error!(error = %e, "admin API stopped");
            }
        });
    }
    tasks.spawn(sweep_expired(lists, shutdown_rx));

    wait_for_signal().await?;
    info!("shutting down: draining connections");
    let _ = shutdown_tx.send(true);
    while tasks.join_next().await.is_some() {}
    if let Some(p) = program.as_mut() {
        p.detach_all();
    }
    info!("stopped");
    Ok(())
}

/// Loads and attaches the XDP program when `xdp.enabled`. Failure is fatal: running without the kernel half
/// while the configuration asks for it would be failing open.
fn start_xdp(config: &Config) -> anyhow::Result<(Option<XdpProgram>, Option<Arc<XdpMaps>>)> {
    if !config.xdp.enabled {
        warn!("xdp.enabled is false: no driver-level filtering, and blocked-ips changes are refused");
        return Ok((None, None));
    }
    let (mut program, maps) = xdp::load().context("starting XDP")?;
    for interface in &config.xdp.interfaces {
        program
            .attach(interface, config.xdp.attach_mode)
            .context("starting XDP")?;
    }
    if config.xdp.interfaces.is_empty() {
        warn!("xdp.interfaces is empty: the program is loaded but attached nowhere");
    }
    Ok((Some(program), Some(Arc::new(maps))))
}

/// The admin listener's own address must never be denied, or one POST locks the operator out.
fn protected_addresses(config: &Config) -> Protected {
    let mut p: Protected = Vec::new();
    if config.admin.enabled && !config.admin.host.is_unspecified() {
        p.push((config.admin.host, "the admin API's listen address"));
    }
    p
}

fn load_configured_lists(lists: &AccessLists, config: &Config) -> anyhow::Result<()> {
    if !lists.is_enforced() {
        if !config.xdp.allow.is_empty() || !config.xdp.deny.is_empty() {
            anyhow::bail!("xdp.allow/xdp.deny are set but XDP is disabled, so they could not be enforced");
        }
        return Ok(());
    }
    for (list, cidrs) in [(ListKind::Allow, &config.xdp.allow), (ListKind::Deny, &config.xdp.deny)] {
        for cidr in cidrs {
            let entry = NewEntry {
                cidr: *cidr,
                reason: "config".into(),
                source: EntrySource::Config,
                ttl: None,
            };
            lists
                .add(list, entry)
                .with_context(|| format!("loading xdp.{} entry {cidr}", list.as_str()))?;
        }
    }
    Ok(())
}

async fn sweep_expired(lists: Arc<AccessLists>, mut shutdown: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(SWEEP_INTERVAL);
    loop {
        tokio::select! {
            _ = tick.tick() => match lists.sweep() {
                Ok(0) => {}
                Ok(n) => info!(removed = n, "expired list entries swept"),
                Err(e) => warn!(error = %e, "sweeping expired list entries failed"),
            },
            _ = shutdown.changed() => return,
        }
    }
}

async fn wait_for_signal() -> anyhow::Result<()> {
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    tokio::select! {
        _ = term.recv() => info!("SIGTERM received"),
        _ = int.recv() => info!("SIGINT received"),
    }
    Ok(())
}
