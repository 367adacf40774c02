//! Support for Rampart's integration tests: real processes (killed by PID on drop), real sockets, and network
//! namespaces with veth pairs that are deleted when the test ends, pass or fail.
//!
//! Traffic in these tests goes only to 127.0.0.0/8 or to addresses inside the namespaces they create.
#![allow(clippy::unwrap_used, clippy::missing_panics_doc)] // test support: a panic is the failure report

pub mod acme;
pub mod cache_outage;
pub mod http1;
pub mod packets;
pub mod pki;

use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The `rampart` binary under test: `RAMPART_BIN` (set by `cargo xtask test`), else the release build.
pub fn rampart_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("RAMPART_BIN") {
        return PathBuf::from(p);
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let bin = root.join("target/release/rampart");
    assert!(
        bin.is_file(),
        "{} is missing: run the tests with `cargo xtask test`",
        bin.display()
    );
    bin
}

/// Tests that attach XDP or create namespaces need root; CI runs as root. Failing (not skipping) keeps a
/// missing privilege from passing silently.
pub fn require_root() {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "this test needs root (network namespaces and XDP); run `cargo xtask test` as root"
    );
}

/// A TCP port on loopback that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// `N` distinct free ports: every listener is held until all are chosen. Calling `free_port` `N` times can
/// hand out one port twice, since each is released before the next is asked for.
pub fn free_ports<const N: usize>() -> [u16; N] {
    let held: Vec<TcpListener> = (0..N).map(|_| TcpListener::bind("127.0.0.1:0").unwrap()).collect();
    std::array::from_fn(|i| held[i].local_addr().unwrap().port())
}

/// A child process that is killed (by its PID) and reaped when dropped.
pub struct Process {
    pub name: String,
    child: Option<Child>,
    log: PathBuf,
}

impl Process {
    /// Starts `program args`, with stdout and stderr going to a log file shown if the test fails.
    pub fn start(name: &str, program: &Path, args: &[&str], env: &[(&str, &str)]) -> Self {
        let log = std::env::temp_dir().join(format!("rampart-test-{}-{name}.log", std::process::id()));
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new(program)
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name} ({}): {e}", program.display()));
        Self {
            name: name.into(),
            child: Some(child),
            log,
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().map(|c| c.id() as i32).unwrap_or(0)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends SIGTERM and waits up to `timeout` for the exit status.
    pub fn terminate(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let child = self.child.as_mut()?;
        // SAFETY: kill on the PID of a child we spawned and have not yet reaped.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// Whether the process has exited; its status if so.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.as_mut().and_then(|c| c.try_wait().ok().flatten())
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!("---- log of {} ----\n{}", self.name, self.log());
        }
    }
}

/// Waits until something accepts TCP connections on `addr`, or panics after `timeout`.
pub fn wait_for_port(addr: SocketAddr, timeout: Duration, process: &mut Process) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return;
        }
        if let Some(status) = process.exited() {
            panic!(
                "{} exited with {status} before listening on {addr}:\n{}",
                process.name,
                process.log()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!(
        "{} did not listen on {addr} within {timeout:?}:\n{}",
        process.name,
        process.log()
    );
}

/// Runs a command to completion, returning its output; panics only if it cannot start.
pub fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("starting {program}: {e}"))
}

/// Runs a command that must succeed.
pub fn must(program: &str, args: &[&str]) -> String {
    let out = run(program, args);
    assert!(
        out.status.success(),
        "`{program} {}` failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The result of one curl request.
#[derive(Debug)]
pub struct Reply {
    /// curl's exit code: 0 for a completed exchange, 28 for a timeout, 7 for a refused connection.
    pub curl_exit: i32,
    /// HTTP status, 0 when no response arrived.
    pub status: u16,
    pub body: String,
}

/// An HTTP request made by a real curl process, optionally inside network namespace `netns`.
pub fn curl(netns: Option<&str>, method: &str, url: &str, body: Option<&str>, timeout_s: u32) -> Reply {
    let mut args: Vec<String> = Vec::new();
    let program = match netns {
        Some(ns) => {
            args.extend(["netns", "exec", ns, "curl"].map(String::from));
            "ip"
        }
        None => "curl",
    };
    args.extend(
        [
            "-sS",
            "-m",
            &timeout_s.to_string(),
            "-X",
            method,
            "-w",
            "\n%{http_code}",
        ]
        .map(String::from),
    );
    if let Some(b) = body {
        args.extend(["-H", "content-type: application/json", "--data-binary", b].map(String::from));
    }
    args.push(url.into());
    let arg_refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run(program, &arg_refs);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, status) = text.rsplit_once('\n').unwrap_or(("", &text));
    Reply {
        curl_exit: out.status.code().unwrap_or(-1),
        status: status.trim().parse().unwrap_or(0),
        body: body.into(),
    }
}

/// Parses a reply body as JSON, with the body in the panic message if it is not.
pub fn json(reply: &Reply) -> serde_json::Value {
    serde_json::from_str(&reply.body).unwrap_or_else(|e| panic!("not JSON ({e}): {reply:?}"))
}

/// The value of one Prometheus sample line (`name{labels} value`), 0 when absent.
pub fn metric(text: &str, name_and_labels: &str) -> f64 {
    text.lines()
        .find_map(|l| {
            l.strip_prefix(name_and_labels)
                .and_then(|rest| rest.trim().parse().ok())
        })
        .unwrap_or(0.0)
}

/// A network namespace joined to the host by a veth pair, with one /24 between them. Deleted on drop
/// (deleting the namespace also deletes the pair), including when the test panics.
pub struct Netns {
    pub name: String,
    /// The host-side interface.
    pub host_if: String,
    pub host_ip: String,
    pub ns_ip: String,
    /// IPv6 addresses on the same link (a /64 of fd00::/8).
    pub host_ip6: String,
    pub ns_ip6: String,
}

impl Netns {
    /// `tag` keeps concurrently running tests apart (names are at most 15 bytes).
    pub fn create(tag: &str) -> Self {
        Self::create_inner(tag, None)
    }

    /// A namespace whose IPv4 addresses are given (for addresses with known GeoIP answers).
    pub fn create_with(tag: &str, host_ip: &str, ns_ip: &str, prefix_len: u8) -> Self {
        Self::create_inner(tag, Some((host_ip, ns_ip, prefix_len)))
    }

    fn create_inner(tag: &str, v4: Option<(&str, &str, u8)>) -> Self {
        // Tests run in parallel processes: pick a subnet no other test holds, under a lock held until the
        // addresses are on the interfaces.
        let lock = std::fs::File::create(std::env::temp_dir().join("rampart-test-subnets.lock")).unwrap();
        // SAFETY: flock on a file descriptor we own; released when `lock` is dropped at the end of this fn.
        unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&lock), libc::LOCK_EX) };
        let in_use = must("ip", &["-o", "addr", "show"]);
        let start = std::process::id() % 150;
        let octet = (0..150)
            .map(|i| 100 + (start + i) % 150)
            .find(|o| !in_use.contains(&format!("10.213.{o}.")) && !in_use.contains(&format!("fd00:213:{o}:")))
            .expect("a free test subnet");
        let default_v4 = (format!("10.213.{octet}.1"), format!("10.213.{octet}.2"));
        let (host_ip, ns_ip, prefix_len) = match v4 {
            Some((h, n, p)) => (h.to_owned(), n.to_owned(), p),
            None => (default_v4.0, default_v4.1, 24),
        };
        let id = std::process::id() % 10_000;
        let name = format!("rpt-{tag}-{id}");
        let host_if = format!("rh{tag}{id}");
        let ns_if = format!("rn{tag}{id}");
        assert!(host_if.len() <= 15, "interface name too long: {host_if}");
        let net = Self {
            name: name.clone(),
            host_if: host_if.clone(),
            host_ip,
            ns_ip,
            host_ip6: format!("fd00:213:{octet}::1"),
            ns_ip6: format!("fd00:213:{octet}::2"),
        };
        // Leftovers from a killed earlier run with the same PID would make `add` fail.
        net.delete();
        must("ip", &["netns", "add", &name]);
        must("ip", &["link", "add", &host_if, "type", "veth", "peer", "name", &ns_if]);
        must("ip", &["link", "set", &ns_if, "netns", &name]);
        let (v4, v6) = (format!("{}/{prefix_len}", net.host_ip), format!("{}/64", net.host_ip6));
        must("ip", &["addr", "add", &v4, "dev", &host_if]);
        // nodad: usable at once, without waiting for duplicate address detection.
        must("ip", &["-6", "addr", "add", &v6, "dev", &host_if, "nodad"]);
        must("ip", &["link", "set", &host_if, "up"]);
        let (v4, v6) = (format!("{}/{prefix_len}", net.ns_ip), format!("{}/64", net.ns_ip6));
        net.ip_inside(&["addr", "add", &v4, "dev", &ns_if]);
        net.ip_inside(&["-6", "addr", "add", &v6, "dev", &ns_if, "nodad"]);
        net.ip_inside(&["link", "set", &ns_if, "up"]);
        net.ip_inside(&["link", "set", "lo", "up"]);
        drop(lock);
        net
    }

    /// Runs `ip ARGS` inside the namespace; it must succeed.
    fn ip_inside(&self, args: &[&str]) {
        let mut full = vec!["netns", "exec", self.name.as_str(), "ip"];
        full.extend_from_slice(args);
        must("ip", &full);
    }

    fn delete(&self) {
        let _ = run("ip", &["link", "del", &self.host_if]);
        let _ = run("ip", &["netns", "del", &self.name]);
    }
}

/// Whether a network namespace called `name` exists.
pub fn netns_exists(name: &str) -> bool {
    must("ip", &["netns", "list"])
        .lines()
        .any(|l| l.split_whitespace().next() == Some(name))
}

impl Drop for Netns {
    fn drop(&mut self) {
        self.delete();
    }
}

/// Writes `text` to a fresh file in the temp directory and returns its path.
pub fn temp_file(name: &str, text: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("rampart-test-{}-{name}", std::process::id()));
    std::fs::write(&path, text).unwrap();
    path
}

/// Reads everything a TCP peer sends until it closes (for raw protocol checks).
pub fn read_all(mut s: TcpStream) -> String {
    let mut buf = String::new();
    let _ = s.read_to_string(&mut buf);
    buf
}

/// Per-test XDP state locations: a bpffs pin directory and a record file, both removed on drop (removing the
/// pin directory also detaches any link a test left pinned there).
pub struct XdpState {
    pub pin_dir: PathBuf,
    pub record: PathBuf,
    dir: PathBuf,
}

impl XdpState {
    pub fn new(tag: &str) -> Self {
        let id = std::process::id();
        let pin_dir = PathBuf::from(format!("/sys/fs/bpf/rampart-test-{tag}-{id}"));
        let dir = std::env::temp_dir().join(format!("rampart-test-{tag}-{id}"));
        let _ = std::fs::remove_dir_all(&pin_dir);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self {
            record: dir.join("lists.db"),
            pin_dir,
            dir,
        }
    }

    /// The `xdp:` keys that point a daemon at this state.
    pub fn yaml(&self) -> String {
        format!(
            "  pin_path: {}\n  record_file: {}\n",
            self.pin_dir.display(),
            self.record.display()
        )
    }

    /// Deletes the pinned maps and links, as a reboot would (bpffs is memory-only).
    pub fn forget_pins(&self) {
        let _ = std::fs::remove_dir_all(&self.pin_dir);
    }
}

impl Drop for XdpState {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.pin_dir);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The shared material (`../shared` from the project root): `RAMPART_SHARED`, else next to this checkout,
/// else the workplace's `/work/shared` (where a clone elsewhere, such as CI's, finds it).
pub fn shared_dir() -> PathBuf {
    let next_to_checkout = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared");
    let candidates: Vec<PathBuf> = std::env::var_os("RAMPART_SHARED")
        .map(PathBuf::from)
        .into_iter()
        .chain([next_to_checkout, PathBuf::from("/work/shared")])
        .collect();
    candidates
        .iter()
        .find(|d| d.join("testdata/geoip").is_dir())
        .cloned()
        .unwrap_or_else(|| {
            panic!("shared test material (testdata/geoip) not found in any of {candidates:?}; set RAMPART_SHARED")
        })
}

/// Counts UDP datagrams arriving on a socket, in a background thread, until dropped.
pub struct UdpCounter {
    pub addr: SocketAddr,
    count: Arc<AtomicU64>,
    stop: Arc<std::sync::atomic::AtomicBool>,
}

impl UdpCounter {
    pub fn bind(ip: &str) -> Self {
        let sock = UdpSocket::bind((ip, 0)).unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
        let addr = sock.local_addr().unwrap();
        let count = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (c, st) = (count.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            while !st.load(Ordering::Relaxed) {
                if sock.recv_from(&mut buf).is_ok() {
                    c.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
        Self { addr, count, stop }
    }

    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }
}

impl Drop for UdpCounter {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The flood sender run inside a namespace: `python3 -c FLOOD ip port count seconds pps`. Bounded by both count
/// and time; paced when pps > 0. Prints how many datagrams it sent.
const FLOOD: &str = r#"
import socket, sys, time
ip, port, count, seconds, pps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
s = socket.socket(socket.AF_INET6 if ':' in ip else socket.AF_INET, socket.SOCK_DGRAM)
end = time.time() + seconds
gap = 1.0 / pps if pps else 0.0
nxt = time.time()
n = 0
while n < count and time.time() < end:
    try:
        s.sendto(b'flood-packet-0123', (ip, port))
        n += 1
    except OSError:
        pass
    if gap:
        nxt += gap
        d = nxt - time.time()
        if d > 0:
            time.sleep(d)
print(n)
"#;

/// Sends at most `count` small UDP datagrams to `dst` from inside namespace `ns`, for at most `seconds`,
/// paced at `pps` packets per second (0 = as fast as possible); returns how many were sent.
pub fn udp_flood(ns: &str, dst: SocketAddr, count: u64, seconds: f64, pps: u64) -> u64 {
    let (ip, port) = (dst.ip().to_string(), dst.port().to_string());
    let (count, seconds, pps) = (count.to_string(), seconds.to_string(), pps.to_string());
    let out = must(
        "ip",
        &[
            "netns", "exec", ns, "python3", "-c", FLOOD, &ip, &port, &count, &seconds, &pps,
        ],
    );
    out.trim()
        .parse()
        .unwrap_or_else(|_| panic!("flood sender printed {out:?}"))
}

/// Waits until `check` holds, polling every 100 ms; false after `timeout`.
pub fn eventually(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    check()
}

/// Writes `config` to a temp file and starts `rampart run` on it; returns once the admin port at `admin_port`
/// accepts connections.
pub fn start_rampart(name: &str, config: &str, admin_port: u16) -> Process {
    let path = temp_file(&format!("{name}.yaml"), config);
    let mut p = Process::start(name, &rampart_bin(), &["run", "--config", path.to_str().unwrap()], &[]);
    wait_for_port(
        SocketAddr::from(([127, 0, 0, 1], admin_port)),
        Duration::from_secs(30),
        &mut p,
    );
    p
}

/// Starts the echo upstream on a free loopback port; returns it and its port.
pub fn start_upstream() -> (Process, u16) {
    start_named_upstream("echo", 0)
}

/// Starts an echo upstream that names itself `name` and waits `delay_ms` before each answer.
pub fn start_named_upstream(name: &str, delay_ms: u64) -> (Process, u16) {
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let delay = delay_ms.to_string();
    let args = ["echo-upstream", "--listen", &addr, "--name", name, "--delay-ms", &delay];
    let mut p = Process::start(&format!("upstream-{name}-{port}"), &rampart_bin(), &args, &[]);
    wait_for_port(addr.parse().unwrap(), Duration::from_secs(10), &mut p);
    (p, port)
}

/// A Prometheus scrape of the admin API.
pub fn scrape(admin: &str) -> String {
    let r = curl(None, "GET", &format!("{admin}/metrics"), None, 5);
    assert_eq!(r.status, 200, "{r:?}");
    r.body
}

/// A redis-server of our own on a loopback port, killed by PID on drop. It keeps nothing on disk, so a
/// restart on the same port comes back empty.
pub struct Redis {
    pub process: Process,
    pub port: u16,
}

/// Starts a redis-server on a free loopback port.
pub fn start_redis() -> Redis {
    start_redis_on(free_port())
}

fn redis_server_bin() -> &'static str {
    ["/usr/bin/redis-server", "/usr/sbin/redis-server"]
        .into_iter()
        .find(|p| Path::new(p).is_file())
        .expect("redis-server is not installed: run `cargo xtask setup`")
}

/// Starts a redis-server on `port` of 127.0.0.1 (e.g. again after stopping one there).
pub fn start_redis_on(port: u16) -> Redis {
    let bin = redis_server_bin();
    let port_s = port.to_string();
    let args = [
        "--port",
        &port_s,
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
    ];
    let mut process = Process::start(&format!("redis-{port}"), Path::new(bin), &args, &[]);
    wait_for_port(
        SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_secs(10),
        &mut process,
    );
    Redis { process, port }
}

/// A Redis Cluster of our own: masters on free loopback ports, each a [`Redis`] killed by PID on drop, with
/// their cluster state in a temporary directory that is removed on drop.
pub struct RedisCluster {
    pub masters: Vec<Redis>,
    dir: PathBuf,
}

impl RedisCluster {
    pub fn ports(&self) -> Vec<u16> {
        self.masters.iter().map(|m| m.port).collect()
    }

    /// `cluster_nodes` for a Rampart configuration: `["127.0.0.1:P1", ...]`.
    pub fn nodes_yaml(&self) -> String {
        let nodes: Vec<String> = self.ports().iter().map(|p| format!("\"127.0.0.1:{p}\"")).collect();
        format!("[{}]", nodes.join(", "))
    }

    /// Keys matching `pattern` on each master, in the order of `masters` (each holds only its own slots).
    pub fn keys_per_master(&self, pattern: &str) -> Vec<usize> {
        self.ports()
            .iter()
            .map(|p| {
                must("redis-cli", &["-p", &p.to_string(), "--scan", "--pattern", pattern])
                    .lines()
                    .filter(|l| !l.is_empty())
                    .count()
            })
            .collect()
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        self.masters.clear();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Starts `masters` redis-servers in cluster mode on free loopback ports, joins them into one cluster with
/// every slot assigned (no replicas) and returns once every node says `cluster_state:ok`.
pub fn start_redis_cluster(masters: usize) -> RedisCluster {
    let bin = redis_server_bin();
    let ports: Vec<u16> = (0..masters).map(|_| free_port()).collect();
    let dir = std::env::temp_dir().join(format!(
        "rampart-test-redis-cluster-{}-{}",
        std::process::id(),
        ports[0]
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let mut cluster = RedisCluster {
        masters: Vec::new(),
        dir: dir.clone(),
    };
    for &port in &ports {
        let port_s = port.to_string();
        let conf = dir.join(format!("nodes-{port}.conf"));
        let args = [
            "--port",
            &port_s,
            "--bind",
            "127.0.0.1",
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            conf.to_str().unwrap(),
            "--dir",
            dir.to_str().unwrap(),
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
        ];
        let mut process = Process::start(&format!("redis-cluster-{port}"), Path::new(bin), &args, &[]);
        wait_for_port(
            SocketAddr::from(([127, 0, 0, 1], port)),
            Duration::from_secs(10),
            &mut process,
        );
        cluster.masters.push(Redis { process, port });
    }
    let mut create: Vec<String> = vec!["--cluster".into(), "create".into()];
    create.extend(ports.iter().map(|p| format!("127.0.0.1:{p}")));
    create.extend(["--cluster-replicas", "0", "--cluster-yes"].map(String::from));
    let create: Vec<&str> = create.iter().map(String::as_str).collect();
    must("redis-cli", &create);
    let ok = eventually(Duration::from_secs(30), || {
        ports.iter().all(|p| {
            let out = run("redis-cli", &["-p", &p.to_string(), "cluster", "info"]);
            String::from_utf8_lossy(&out.stdout).contains("cluster_state:ok")
        })
    });
    assert!(ok, "the Redis Cluster on {ports:?} did not reach cluster_state:ok");
    cluster
}

#[cfg(test)]
mod tests {
    #[test]
    fn free_ports_are_distinct() {
        let ports: [u16; 32] = super::free_ports();
        let distinct: std::collections::HashSet<_> = ports.iter().collect();
        assert_eq!(distinct.len(), ports.len(), "{ports:?}");
    }
}
