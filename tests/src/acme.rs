//! A real ACME server for the tests: Debian's `pebble` with `pebble-challtestsrv` as its DNS server, on
//! loopback ports of the test's own, validating every challenge for real (no always-valid shortcut). The
//! DNS server answers 127.0.0.1 for every name, so pebble's validator connects to Rampart's listeners on
//! the ports it is told (`http_port`, `tls_port`); dns-01 records are set through challtestsrv's management
//! API. Both processes are killed by PID when the guard drops.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::pki::Pki;
use crate::{Process, free_ports, must, run, wait_for_port};

pub struct Pebble {
    pub dir: PathBuf,
    /// `https://localhost:<port>/dir`.
    pub directory_url: String,
    /// The CA that signed pebble's own HTTPS certificate (what `ssl.acme.ca_file` trusts).
    pub ca_file: PathBuf,
    pub acme_port: u16,
    pub mgmt_port: u16,
    /// challtestsrv's management API (`/set-txt`, `/clear-txt`).
    pub dns_mgmt_port: u16,
    config: PathBuf,
    dns_port: u16,
    pebble: Option<Process>,
    _dns: Process,
    /// Holds the directory's certificate files for as long as pebble runs.
    _pki: Pki,
}

impl Pebble {
    /// Starts pebble validating http-01 on `http_port` and tls-alpn-01 on `tls_port`; certificates live
    /// `validity` seconds when given (pebble's default is five years).
    pub fn start(tag: &str, http_port: u16, tls_port: u16, validity: Option<u64>) -> Self {
        let dir = std::env::temp_dir().join(format!("rampart-pebble-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        // pebble serves its directory over HTTPS with this CA's certificate for localhost.
        let pki = Pki::with_ca_name(&dir.join("pki"), "test ACME directory CA");
        let leaf = pki.leaf_with_extensions(
            "localhost",
            "localhost",
            "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\n\
             extendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature\n",
        );
        let ca_file = pki.ca_cert.clone();
        let p = |p: &Path| p.to_str().unwrap().to_owned();
        // Distinct for sure: the DNS server and pebble's management interface once drew the same port.
        let [acme_port, mgmt_port, dns_port, dns_mgmt_port] = free_ports();
        let validity = validity
            .map(|v| format!(", \"certificateValidityPeriod\": {v}"))
            .unwrap_or_default();
        let config = dir.join("pebble-config.json");
        std::fs::write(
            &config,
            format!(
                "{{ \"pebble\": {{ \"listenAddress\": \"127.0.0.1:{acme_port}\", \
                 \"managementListenAddress\": \"127.0.0.1:{mgmt_port}\", \"certificate\": \"{}\", \
                 \"privateKey\": \"{}\", \"httpPort\": {http_port}, \"tlsPort\": {tls_port}, \
                 \"ocspResponderURL\": \"\", \"externalAccountBindingRequired\": false{validity} }} }}",
                p(&leaf.cert),
                p(&leaf.key)
            ),
        )
        .unwrap();
        let dns_addr = format!("127.0.0.1:{dns_port}");
        let dns_mgmt = format!("127.0.0.1:{dns_mgmt_port}");
        let mut dns = Process::start(
            &format!("challtestsrv-{tag}"),
            Path::new("pebble-challtestsrv"),
            &[
                "-dns01",
                &dns_addr,
                "-http01",
                "",
                "-https01",
                "",
                "-tlsalpn01",
                "",
                "-management",
                &dns_mgmt,
                "-defaultIPv6",
                "",
            ],
            &[],
        );
        wait_for_port(dns_mgmt.parse().unwrap(), Duration::from_secs(10), &mut dns);
        let mut me = Self {
            directory_url: format!("https://localhost:{acme_port}/dir"),
            dir,
            ca_file,
            acme_port,
            mgmt_port,
            dns_mgmt_port,
            config,
            dns_port,
            pebble: None,
            _dns: dns,
            _pki: pki,
        };
        me.restart();
        me
    }

    /// Starts pebble (again): a fresh instance knows no accounts, orders or certificates.
    pub fn restart(&mut self) {
        self.stop();
        let dns = format!("127.0.0.1:{}", self.dns_port);
        let mut pebble = Process::start(
            &format!("pebble-{}", self.acme_port),
            Path::new("pebble"),
            &[
                "-config",
                self.config.to_str().unwrap(),
                "-dnsserver",
                &dns,
                "-strict=false",
            ],
            &[("PEBBLE_VA_NOSLEEP", "1")],
        );
        wait_for_port(
            SocketAddr::from(([127, 0, 0, 1], self.acme_port)),
            Duration::from_secs(20),
            &mut pebble,
        );
        self.pebble = Some(pebble);
    }

    /// Kills pebble (the DNS server stays), as an ACME outage.
    pub fn stop(&mut self) {
        if let Some(mut p) = self.pebble.take() {
            let _ = p.terminate(Duration::from_secs(5));
        }
    }

    pub fn log(&self) -> String {
        self.pebble.as_ref().map(Process::log).unwrap_or_default()
    }

    /// Orders pebble has accepted since it (re)started.
    pub fn orders(&self) -> usize {
        self.log().matches("Added order").count()
    }

    /// The root that pebble's issued chains lead to (it makes a new one at every start).
    pub fn root_pem(&self) -> PathBuf {
        let url = format!("https://localhost:{}/roots/0", self.mgmt_port);
        let out = run("curl", &["-sf", "--cacert", self.ca_file.to_str().unwrap(), &url]);
        assert!(out.status.success(), "fetching pebble's root: {out:?}");
        let path = self.dir.join(format!("root-{}.pem", self.acme_port));
        std::fs::write(&path, &out.stdout).unwrap();
        path
    }

    /// A dns-01 hook script that publishes TXT records through challtestsrv.
    pub fn dns_hook(&self) -> PathBuf {
        let path = self.dir.join("dns-hook.sh");
        let mgmt = self.dns_mgmt_port;
        std::fs::write(
            &path,
            format!(
                "#!/bin/sh\nset -e\ncase \"$1\" in\n\
                 set) curl -sf -d \"{{\\\"host\\\":\\\"$2.\\\",\\\"value\\\":\\\"$3\\\"}}\" http://127.0.0.1:{mgmt}/set-txt ;;\n\
                 clear) curl -sf -d \"{{\\\"host\\\":\\\"$2.\\\"}}\" http://127.0.0.1:{mgmt}/clear-txt ;;\n\
                 *) exit 64 ;;\nesac\necho \"$1 $2\" >> {}/dns-hook.calls\n",
                self.dir.display()
            ),
        )
        .unwrap();
        must("chmod", &["755", path.to_str().unwrap()]);
        path
    }
}

impl Drop for Pebble {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("---- pebble log ----\n{}", self.log());
        }
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
