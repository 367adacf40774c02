//! `rampart run`: build every part from the configuration, start the listeners, and tear down in order on
//! SIGINT/SIGTERM (stop accepting, drain requests, detach XDP or leave it on its pinned link).
//!
//! This is the one place where parts are composed; each part is built from config and handed its
//! dependencies here, and nowhere else constructs another part.

mod kernel;
mod support;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;
use tracing::{error, info, warn};

use crate::access::{AccessLists, Protected};
use crate::admin::{self, AdminState, XdpState};
use crate::config::Config;
use crate::config::schema::IoEngine;
use crate::fleet::{Fleet, FleetStatus};
use crate::net::{self, Limits, Transport};
use crate::policy::escalation::Escalation;
use crate::proxy::cache::ResponseCache;
use crate::proxy::metrics::{ProxyMetrics, UpstreamCollector};
use crate::proxy::{LiveRuntime, Proxy};
use crate::telemetry::metrics::Metrics;
use crate::tls::CertHub;
use crate::tls::expiry::ExpiryCollector;
use crate::tls::renew::Renewer;
use crate::xdp::{self, ListKind, geo::CountryLookup};

pub use support::check as unsupported;

/// How often expired list entries are removed from the maps and the record.
const SWEEP_INTERVAL: Duration = Duration::from_secs(10);

/// Runs the daemon; `source` is the configuration file (re-read on reload), `None` for the embedded default.
pub async fn run(config: Config, source: Option<PathBuf>) -> anyhow::Result<()> {
    let started = Instant::now();
    let support = unsupported(&config);
    for w in &support.warnings {
        warn!("{w}");
    }
    if !support.fatal.is_empty() {
        anyhow::bail!("{}", support.fatal.join("; "));
    }

    // Log files first: a path that cannot be opened stops the start before anything is bound or attached.
    let request_logs = crate::telemetry::logging::request_logs(&config)?;
    let mut kernel = kernel::start(&config)?;
    let configured: Vec<(ListKind, _)> = config
        .xdp
        .allow
        .iter()
        .map(|c| (ListKind::Allow, *c))
        .chain(config.xdp.deny.iter().map(|c| (ListKind::Deny, *c)))
        .collect();
    let lists = Arc::new(
        AccessLists::open(
            &config.xdp.record_file,
            kernel.maps.clone(),
            kernel.needs_l7_enforcement(&config),
            protected_addresses(&config),
            &configured,
        )
        .context("opening the access lists")?,
    );
    if lists.is_enforced_at_l7() {
        warn!("allow/deny lists are enforced at L7 (per connection), not in XDP");
    }
    let metrics = Arc::new(Metrics::new());
    metrics.register_xdp(kernel.maps.clone());
    metrics
        .registry()
        .register(Box::new(
            crate::telemetry::logging::LogCollector::new().context("building log metrics")?,
        ))
        .context("registering log metrics")?;
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();
    let fleet = start_fleet(&config, &lists, &metrics, &mut tasks, &shutdown_rx).await?;
    let proxy_metrics = Arc::new(ProxyMetrics::new(metrics.registry()).context("registering proxy metrics")?);
    let hub = Arc::new(CertHub::new(config.ssl.enabled && config.ssl.auto_provision));
    let live =
        Arc::new(LiveRuntime::new(config.clone(), source, hub.clone()).context("building the proxy configuration")?);
    let renewer = (config.ssl.enabled && config.ssl.auto_provision)
        .then(|| Renewer::start(&config.ssl, hub.clone(), !config.ssl.certificates.is_empty()));
    {
        let live = live.clone();
        let expiry =
            ExpiryCollector::new(move || live.served_certificates()).context("the certificate expiry metric")?;
        metrics
            .registry()
            .register(Box::new(expiry))
            .context("registering the certificate expiry metric")?;
    }
    metrics
        .registry()
        .register(Box::new(
            UpstreamCollector::new(live.clone()).context("building upstream metrics")?,
        ))
        .context("registering upstream metrics")?;
    let auth = Arc::new(admin::Auth::new(&config.admin.auth).map_err(|e| anyhow::anyhow!(e))?);

    if let (Some(ring), Some(_)) = (kernel.events.take(), kernel.maps.as_ref()) {
        let countries = config
            .waf
            .geo_blocking
            .geoip_database
            .as_ref()
            .and_then(|db| {
                CountryLookup::open(db)
                    .map_err(|e| warn!(error = %e, "drop events will not name countries"))
                    .ok()
            })
            .map(Arc::new);
        tasks.spawn(xdp::events::run(ring, countries, shutdown_rx.clone()));
    }
    if let (Some(maps), true) = (kernel.maps.clone(), config.waf.geo_blocking.enabled) {
        tasks.spawn(kernel::watch_geo_database(config.clone(), maps, shutdown_rx.clone()));
    }

    let limits = Limits {
        max_connections: config.server.max_connections,
        keepalive_timeout: Duration::from_secs(config.server.keepalive_timeout),
        max_header_size: usize::try_from(config.server.max_header_size.get()).unwrap_or(usize::MAX),
        shutdown_timeout: Duration::from_secs(config.server.shutdown_timeout),
        proxy_protocol: config.server.proxy_protocol,
    };
    let escalation = Escalation::build(&config, lists.clone()).map(Arc::new);
    tasks.spawn(sweep_policy(live.clone(), escalation.clone(), shutdown_rx.clone()));
    let geo_at_l7 = config.waf.geo_blocking.enabled && kernel.needs_l7_enforcement(&config);
    if geo_at_l7 {
        warn!("the geo policy is enforced at L7 (per request), not in XDP");
    }
    let cache = ResponseCache::new(&config.proxy.caching, metrics.registry()).context("starting the response cache")?;
    // Purges from other nodes arrive for as long as the daemon runs (the task ends with the runtime).
    let _purge_listener = cache.start();
    let proxy = Arc::new(
        Proxy::new(
            live.clone(),
            proxy_metrics.clone(),
            escalation,
            geo_at_l7,
            cache.clone(),
        )
        .with_request_logs(request_logs)
        .with_challenges(
            crate::policy::challenge::Challenges::load(&config).context("loading the challenge signing key")?,
        ),
    );
    let proxy_addr = SocketAddr::new(config.server.host, config.server.port.get());
    let listener = net::bind(proxy_addr, "proxy").await?;
    info!(address = %proxy_addr, "proxy listening (HTTP/1.1 and h2c)");
    let mut listeners = vec![(listener, Transport::Plain)];
    if config.ssl.enabled {
        let tls_addr = SocketAddr::new(config.server.host, config.ssl.port.get());
        let listener = net::bind(tls_addr, "TLS proxy").await?;
        info!(address = %tls_addr, "TLS proxy listening (HTTP/1.1 and h2 by ALPN)");
        listeners.push((listener, Transport::Tls));
    }
    IoPlan::choose(&config.server).serve(&mut tasks, listeners, &proxy, &lists, limits, &shutdown_rx)?;
    // After the listeners: http-01 and tls-alpn-01 validation reach the CA through them.
    if let Some(r) = &renewer {
        tasks.spawn(r.clone().run(shutdown_rx.clone()));
    }
    if config.ssl.enabled && config.ssl.ocsp_stapling.enabled {
        let live = live.clone();
        tasks.spawn(crate::tls::ocsp::run(
            config.ssl.ocsp_stapling.clone(),
            move || live.served_certificates(),
            shutdown_rx.clone(),
        ));
    }
    tasks.spawn(reload_on_signal(live.clone(), shutdown_rx.clone()));
    tasks.spawn(reload_on_change(live.clone(), shutdown_rx.clone()));

    if config.admin.enabled {
        let admin_addr = SocketAddr::new(config.admin.host, config.admin.port.get());
        // A certificate that cannot be used stops the start: falling back to plain HTTP would expose the API.
        let admin_tls = config
            .admin
            .tls
            .as_ref()
            .map(admin::tls::server_config)
            .transpose()
            .context("the admin listener's TLS")?;
        let admin_listener = net::bind(admin_addr, "admin API").await?;
        info!(
            address = %admin_addr,
            auth = config.admin.auth.enabled,
            tls = admin_tls.is_some(),
            users = config.admin.auth.users.len(),
            "admin API listening"
        );
        let state = Arc::new(AdminState {
            lists: lists.clone(),
            live: live.clone(),
            metrics,
            proxy_metrics,
            cache,
            auth,
            xdp: XdpState {
                wanted: config.xdp.enabled,
                attachments: kernel.attachments.clone(),
                degraded: kernel.degraded.clone(),
                maps: kernel.maps.clone(),
            },
            fleet,
            renewer: renewer.clone(),
            started,
        });
        let app = admin::router(
            state,
            &config.admin,
            &config.metrics.prometheus.path,
            &config.metrics.health_checks.endpoint,
        );
        let rx = shutdown_rx.clone();
        tasks.spawn(async move {
            let served = match admin_tls {
                Some(tls) => admin::tls::serve(admin_listener, app, tls, rx).await,
                None => admin::serve(admin_listener, app, rx).await,
            };
            if let Err(e) = served {
                error!(error = %e, "admin API stopped");
            }
        });
    }
    tasks.spawn(sweep_expired(lists, shutdown_rx));

    wait_for_signal().await?;
    info!("shutting down: draining connections");
    let _ = shutdown_tx.send(true);
    while tasks.join_next().await.is_some() {}
    if let Some(p) = kernel.program.as_mut() {
        p.shutdown(config.xdp.keep_attached_on_exit);
    }
    info!("stopped");
    crate::telemetry::logging::flush_all(Duration::from_secs(2));
    Ok(())
}

/// Starts sharing the lists with the fleet (when `fleet.enabled`) and waits, at most `fleet.redis.timeout`
/// and a second, for the first comparison with Redis, so a node that was offline does not serve with a stale
/// list; when Redis is down it starts anyway, on its own lists.
async fn start_fleet(
    config: &Config,
    lists: &Arc<AccessLists>,
    metrics: &Metrics,
    tasks: &mut tokio::task::JoinSet<()>,
    shutdown: &watch::Receiver<bool>,
) -> anyhow::Result<Option<Arc<FleetStatus>>> {
    if !config.fleet.enabled {
        return Ok(None);
    }
    let (fleet, status, mut synced) =
        Fleet::new(&config.fleet, lists.clone(), metrics.registry()).context("starting the fleet link")?;
    tasks.spawn(fleet.run(shutdown.clone()));
    let wait = Duration::from_secs(config.fleet.redis.timeout + 1);
    if tokio::time::timeout(wait, synced.wait_for(|s| *s)).await.is_err() {
        warn!("fleet: the first sync with Redis is taking long; starting on this node's own lists");
    }
    Ok(Some(status))
}

/// The admin listener's own address must never be denied, or one POST locks the operator out.
fn protected_addresses(config: &Config) -> Protected {
    let mut p: Protected = Vec::new();
    if config.admin.enabled && !config.admin.host.is_unspecified() {
        p.push((config.admin.host, "the admin API's listen address"));
    }
    p
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

/// Frees idle rate-limit counters and decayed offence scores, so idle clients cost nothing.
async fn sweep_policy(
    live: Arc<LiveRuntime>,
    escalation: Option<Arc<Escalation>>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(SWEEP_INTERVAL);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                if let Some(l) = &live.load().rate_limits {
                    l.sweep();
                }
                if let Some(e) = &escalation {
                    e.sweep();
                }
            }
            _ = shutdown.changed() => return,
        }
    }
}

/// SIGHUP reloads the configuration.
async fn reload_on_signal(live: Arc<LiveRuntime>, mut shutdown: watch::Receiver<bool>) {
    let Ok(mut hup) = signal(SignalKind::hangup()) else {
        warn!("cannot install the SIGHUP handler; reload through the admin API or by editing the file");
        return;
    };
    loop {
        tokio::select! {
            _ = hup.recv() => {
                let _ = live.reload("SIGHUP");
            }
            _ = shutdown.changed() => return,
        }
    }
}

/// How often the configuration and certificate files are checked for changes.
const WATCH_INTERVAL: Duration = Duration::from_secs(2);

/// Reloads when the configuration file or a certificate, key or OCSP file it names changes.
async fn reload_on_change(live: Arc<LiveRuntime>, mut shutdown: watch::Receiver<bool>) {
    let stamp = |live: &LiveRuntime| -> Vec<(PathBuf, Option<std::time::SystemTime>)> {
        live.watched_files()
            .into_iter()
            .map(|p| {
                let t = std::fs::metadata(&p).and_then(|m| m.modified()).ok();
                (p, t)
            })
            .collect()
    };
    let mut seen = stamp(&live);
    let mut tick = tokio::time::interval(WATCH_INTERVAL);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => return,
        }
        let now = stamp(&live);
        if now != seen {
            let _ = live.reload("file change");
            // Whatever the outcome, this state has been handled; a fix to a bad file is the next change.
            seen = stamp(&live);
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

/// How the proxy listeners do their socket I/O: tokio's epoll reactor on the main runtime, or io_uring on
/// worker threads of their own (`server.io`). Without io_uring support the proxy still starts, on epoll, and
/// says so.
#[derive(Clone, Copy)]
enum IoPlan {
    Epoll,
    IoUring { workers: usize },
}

impl IoPlan {
    fn choose(server: &crate::config::schema::ServerConfig) -> Self {
        if server.io != IoEngine::IoUring {
            return Self::Epoll;
        }
        match net::uring::available() {
            Ok(()) => {
                let workers = match server.workers {
                    0 => std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
                    n => n,
                };
                Self::IoUring { workers }
            }
            Err(e) => {
                warn!(error = %e, "server.io is io_uring but this kernel or sandbox refuses io_uring; serving with epoll");
                Self::Epoll
            }
        }
    }

    fn serve(
        self,
        tasks: &mut tokio::task::JoinSet<()>,
        listeners: Vec<(tokio::net::TcpListener, Transport)>,
        proxy: &Arc<Proxy>,
        lists: &Arc<AccessLists>,
        limits: Limits,
        shutdown: &watch::Receiver<bool>,
    ) -> anyhow::Result<()> {
        match self {
            Self::Epoll => {
                for (listener, transport) in listeners {
                    let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
                    tasks.spawn(net::serve(
                        listener,
                        transport,
                        proxy.clone(),
                        lists.clone(),
                        limits,
                        slots,
                        shutdown.clone(),
                    ));
                }
            }
            Self::IoUring { workers } => {
                let sockets = listeners
                    .into_iter()
                    .map(|(l, t)| Ok((l.into_std()?, t)))
                    .collect::<std::io::Result<Vec<_>>>()
                    .context("handing the listening sockets to io_uring")?;
                let workers =
                    net::uring::start(sockets, proxy.clone(), lists.clone(), limits, shutdown.clone(), workers)
                        .context("starting the io_uring workers")?;
                tasks.spawn(workers);
            }
        }
        Ok(())
    }
}
