//! The daemon's own resource use, read from `/proc/self` when asked (no polling): for the
//! `rampart_process_*` metrics and `GET /admin/system/status`.

use std::time::{SystemTime, UNIX_EPOCH};

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{Gauge, IntGauge, Opts};

/// One reading of `/proc/self`.
#[derive(Debug, Default, Clone, Copy)]
pub struct Usage {
    /// User plus system CPU time.
    pub cpu_seconds: f64,
    pub resident_bytes: u64,
    pub virtual_bytes: u64,
    pub open_fds: u64,
    pub threads: u64,
    /// Seconds since the epoch at process start.
    pub start_time: f64,
}

fn clock_ticks() -> f64 {
    // SAFETY: sysconf reads a constant and has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as f64 } else { 100.0 }
}

fn page_size() -> u64 {
    // SAFETY: as above.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(p).unwrap_or(4096)
}

pub fn usage() -> Usage {
    let mut u = Usage::default();
    if let Ok(stat) = std::fs::read_to_string("/proc/self/stat")
        && let Some((_, rest)) = stat.rsplit_once(')')
    {
        // Fields after the command name, counted from 3 (state) as in proc(5).
        let f: Vec<&str> = rest.split_whitespace().collect();
        let num = |i: usize| f.get(i - 3).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
        let ticks = clock_ticks();
        u.cpu_seconds = (num(14) + num(15)) / ticks;
        u.threads = num(20) as u64;
        u.virtual_bytes = num(23) as u64;
        u.resident_bytes = num(24) as u64 * page_size();
        let boot = std::fs::read_to_string("/proc/stat").ok().and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("btime "))
                .and_then(|v| v.trim().parse::<f64>().ok())
        });
        u.start_time = boot.map_or(0.0, |b| b + num(22) / ticks);
    }
    u.open_fds = std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count() as u64);
    u
}

/// Total and available memory of the machine in bytes, from `/proc/meminfo`.
pub fn memory() -> (u64, u64) {
    let text = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let kb = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok())
            .map_or(0, |v| v * 1024)
    };
    (kb("MemTotal:"), kb("MemAvailable:"))
}

/// Seconds since the epoch, now.
pub fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// `rampart_process_cpu_seconds_total`, `_resident_memory_bytes`, `_virtual_memory_bytes`, `_open_fds`,
/// `_threads` and `_start_time_seconds`.
pub struct ProcessCollector {
    cpu: Gauge,
    resident: IntGauge,
    virt: IntGauge,
    fds: IntGauge,
    threads: IntGauge,
    start: Gauge,
}

impl ProcessCollector {
    pub fn new() -> prometheus::Result<Self> {
        Ok(Self {
            // A gauge holding a counter's value: the kernel keeps the total, this only reports it.
            cpu: Gauge::with_opts(Opts::new(
                "rampart_process_cpu_seconds_total",
                "User and system CPU time used by the daemon.",
            ))?,
            resident: IntGauge::new(
                "rampart_process_resident_memory_bytes",
                "Resident memory of the daemon.",
            )?,
            virt: IntGauge::new("rampart_process_virtual_memory_bytes", "Virtual memory of the daemon.")?,
            fds: IntGauge::new("rampart_process_open_fds", "Open file descriptors.")?,
            threads: IntGauge::new("rampart_process_threads", "Threads of the daemon.")?,
            start: Gauge::new(
                "rampart_process_start_time_seconds",
                "Start time of the daemon since the epoch.",
            )?,
        })
    }
}

impl Collector for ProcessCollector {
    fn desc(&self) -> Vec<&Desc> {
        let mut d = self.cpu.desc();
        for g in [&self.resident, &self.virt, &self.fds, &self.threads] {
            d.extend(g.desc());
        }
        d.extend(self.start.desc());
        d
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let u = usage();
        let i = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        self.cpu.set(u.cpu_seconds);
        self.resident.set(i(u.resident_bytes));
        self.virt.set(i(u.virtual_bytes));
        self.fds.set(i(u.open_fds));
        self.threads.set(i(u.threads));
        self.start.set(u.start_time);
        let mut out = self.cpu.collect();
        for g in [&self.resident, &self.virt, &self.fds, &self.threads] {
            out.extend(g.collect());
        }
        out.extend(self.start.collect());
        out
    }
}
