//! A throw-away PKI for TLS tests, made with the openssl command line: a CA, leaf certificates for given names,
//! and OCSP responses for them.

use std::path::{Path, PathBuf};

use crate::must;

pub struct Pki {
    pub dir: PathBuf,
    pub ca_cert: PathBuf,
    ca_key: PathBuf,
}

pub struct Leaf {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// Hex serial as openssl prints it.
    pub serial: String,
}

impl Pki {
    pub fn new(dir: &Path) -> Self {
        Self::with_ca_name(dir, "Rampart Test CA")
    }

    /// A CA whose subject is `/CN=ca_name`, marked as a CA (what stricter verifiers, pebble's clients
    /// among them, require of an issuer).
    pub fn with_ca_name(dir: &Path, ca_name: &str) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        let ca_key = dir.join("ca.key");
        let ca_cert = dir.join("ca.crt");
        must(
            "openssl",
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                ca_key.to_str().unwrap(),
                "-out",
                ca_cert.to_str().unwrap(),
                "-days",
                "3",
                "-subj",
                &format!("/CN={ca_name}"),
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ],
        );
        Self {
            dir: dir.to_owned(),
            ca_cert,
            ca_key,
        }
    }

    /// A certificate for `names` (the first is the CN), signed by the CA, in files named after `stem`.
    pub fn leaf(&self, stem: &str, names: &[&str]) -> Leaf {
        self.leaf_with_ocsp(stem, names, "http://127.0.0.1:9/")
    }

    /// As `leaf`, naming `ocsp_url` as its OCSP responder (AIA).
    pub fn leaf_with_ocsp(&self, stem: &str, names: &[&str], ocsp_url: &str) -> Leaf {
        let sans: Vec<String> = names.iter().map(|n| format!("DNS:{n}")).collect();
        self.leaf_with_extensions(
            stem,
            names[0],
            &format!(
                "subjectAltName={}\nauthorityInfoAccess=OCSP;URI:{ocsp_url}\n",
                sans.join(",")
            ),
        )
    }

    /// A certificate for the subject `/CN=cn` with `extensions` (an openssl extfile, one per line), signed by
    /// the CA, in files named after `stem`.
    pub fn leaf_with_extensions(&self, stem: &str, cn: &str, extensions: &str) -> Leaf {
        let key = self.dir.join(format!("{stem}.key"));
        let csr = self.dir.join(format!("{stem}.csr"));
        let cert = self.dir.join(format!("{stem}.crt"));
        let ext = self.dir.join(format!("{stem}.ext"));
        std::fs::write(&ext, extensions).unwrap();
        must(
            "openssl",
            &[
                "req",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                key.to_str().unwrap(),
                "-out",
                csr.to_str().unwrap(),
                "-subj",
                &format!("/CN={cn}"),
            ],
        );
        must(
            "openssl",
            &[
                "x509",
                "-req",
                "-in",
                csr.to_str().unwrap(),
                "-CA",
                self.ca_cert.to_str().unwrap(),
                "-CAkey",
                self.ca_key.to_str().unwrap(),
                "-CAcreateserial",
                "-out",
                cert.to_str().unwrap(),
                "-days",
                "2",
                "-extfile",
                ext.to_str().unwrap(),
            ],
        );
        let serial = must("openssl", &["x509", "-in", cert.to_str().unwrap(), "-noout", "-serial"])
            .trim()
            .trim_start_matches("serial=")
            .to_owned();
        Leaf { cert, key, serial }
    }

    /// Starts `openssl ocsp` as the CA's responder on loopback `port`, answering "good" for `leaf` with
    /// responses valid for `minutes`, for at most `requests` requests (it exits after those).
    pub fn ocsp_responder(&self, leaf: &Leaf, port: u16, minutes: u32, requests: u32) -> crate::Process {
        let index = self.dir.join(format!("responder-{port}.index"));
        std::fs::write(
            &index,
            format!("V\t301231000000Z\t\t{}\tunknown\t/CN=test\n", leaf.serial),
        )
        .unwrap();
        let (port, minutes, requests) = (port.to_string(), minutes.to_string(), requests.to_string());
        let ca = self.ca_cert.to_str().unwrap();
        let args = [
            "ocsp",
            "-index",
            index.to_str().unwrap(),
            "-port",
            &port,
            "-rsigner",
            ca,
            "-rkey",
            self.ca_key.to_str().unwrap(),
            "-CA",
            ca,
            "-nmin",
            &minutes,
            "-nrequest",
            &requests,
            "-ignore_err",
        ];
        let mut p = crate::Process::start(&format!("ocsp-{port}"), std::path::Path::new("openssl"), &args, &[]);
        // Not `wait_for_port`: OpenSSL 3.0's responder serves one connection at a time, and one closed without
        // a request (a port probe) stalls it for good; its log says when it accepts.
        let up = crate::eventually(std::time::Duration::from_secs(10), || {
            p.log().contains("waiting for OCSP client connections")
        });
        assert!(
            up && p.exited().is_none(),
            "the OCSP responder did not start:\n{}",
            p.log()
        );
        p
    }

    /// A signed "good" OCSP response (DER) for `leaf`, as a CA's responder would give it.
    pub fn ocsp_response(&self, leaf: &Leaf, stem: &str) -> PathBuf {
        let index = self.dir.join(format!("{stem}.index"));
        std::fs::write(
            &index,
            format!("V\t301231000000Z\t\t{}\tunknown\t/CN=test\n", leaf.serial),
        )
        .unwrap();
        let req = self.dir.join(format!("{stem}.ocspreq"));
        let resp = self.dir.join(format!("{stem}.ocsp"));
        must(
            "openssl",
            &[
                "ocsp",
                "-issuer",
                self.ca_cert.to_str().unwrap(),
                "-cert",
                leaf.cert.to_str().unwrap(),
                "-no_nonce",
                "-reqout",
                req.to_str().unwrap(),
            ],
        );
        must(
            "openssl",
            &[
                "ocsp",
                "-index",
                index.to_str().unwrap(),
                "-rsigner",
                self.ca_cert.to_str().unwrap(),
                "-rkey",
                self.ca_key.to_str().unwrap(),
                "-CA",
                self.ca_cert.to_str().unwrap(),
                "-reqin",
                req.to_str().unwrap(),
                "-respout",
                resp.to_str().unwrap(),
                "-ndays",
                "1",
            ],
        );
        resp
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
