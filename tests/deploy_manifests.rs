//! The deployment files in `deploy/`, checked offline (no container engine, no cluster, no network): the
//! systemd unit by `systemd-analyze verify` and `security --offline`, plus its capabilities and reload; the
//! Kubernetes DaemonSet and ConfigMap against the fields a cluster needs (selector matching the pod labels,
//! host network, exactly the four capabilities, bpffs and config mounts, `/health` probes on the admin port
//! the mounted configuration uses); the Helm chart rendered with its `values.yaml` by a small renderer that
//! refuses any construct or value it does not know, then put through the same checks; docker-compose's
//! services, images, capabilities and mounted files; the Dockerfile's stages. Every configuration a manifest
//! mounts must pass `rampart config validate`. Deliberately broken manifests must be rejected, so the checks
//! can fail.
#![allow(clippy::unwrap_used)] // a test reports failure by panicking

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use rampart_tests::{rampart_bin, temp_file};
use serde_json::{Value, json};

const CAPS: [&str; 4] = ["BPF", "NET_ADMIN", "NET_BIND_SERVICE", "PERFMON"];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn deploy(rel: &str) -> PathBuf {
    root().join("deploy").join(rel)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn yaml(text: &str, what: &str) -> Value {
    serde_saphyr::from_str(text).unwrap_or_else(|e| panic!("{what} is not valid YAML: {e}\n{text}"))
}

/// `rampart config validate` on `text`: the problems it prints, or `None` when the file is valid.
fn config_problems(text: &str, name: &str) -> Option<String> {
    let path = temp_file(name, text);
    let out = Command::new(rampart_bin())
        .args(["config", "validate"])
        .arg(&path)
        .output()
        .unwrap();
    (!out.status.success()).then(|| {
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn strings(v: &Value) -> BTreeSet<String> {
    v.as_array()
        .map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
}

/// What is wrong with a DaemonSet for Rampart, given the configuration its ConfigMap mounts.
fn daemonset_problems(ds: &Value, config: &Value) -> Vec<String> {
    let mut bad = Vec::new();
    let mut need = |ok: bool, what: &str| {
        if !ok {
            bad.push(what.to_owned());
        }
    };
    need(ds["apiVersion"] == "apps/v1", "apiVersion must be apps/v1");
    need(ds["kind"] == "DaemonSet", "kind must be DaemonSet");
    need(
        ds["metadata"]["name"].as_str().is_some_and(|n| !n.is_empty()),
        "metadata.name is required",
    );
    let selector = ds["spec"]["selector"]["matchLabels"].as_object();
    let labels = &ds["spec"]["template"]["metadata"]["labels"];
    need(
        selector.is_some_and(|s| !s.is_empty() && s.iter().all(|(k, v)| labels[k] == *v)),
        "spec.selector.matchLabels must be non-empty and match spec.template.metadata.labels",
    );
    let pod = &ds["spec"]["template"]["spec"];
    need(
        pod["hostNetwork"] == true,
        "hostNetwork must be true (XDP attaches to the node's interfaces)",
    );
    need(
        pod["dnsPolicy"] == "ClusterFirstWithHostNet",
        "dnsPolicy must be ClusterFirstWithHostNet (cluster names with the host network)",
    );
    let containers = pod["containers"].as_array().cloned().unwrap_or_default();
    need(containers.len() == 1, "exactly one container");
    let Some(c) = containers.first() else { return bad };
    need(
        c["image"]
            .as_str()
            .is_some_and(|i| i.contains(':') && !i.ends_with(":latest")),
        "the image must have a fixed tag",
    );
    let sc = &c["securityContext"];
    need(sc["privileged"] != true, "the container must not be privileged");
    need(
        sc["allowPrivilegeEscalation"] == false,
        "allowPrivilegeEscalation must be false",
    );
    need(
        strings(&sc["capabilities"]["drop"]) == BTreeSet::from(["ALL".to_owned()]),
        "capabilities.drop must be [ALL]",
    );
    need(
        strings(&sc["capabilities"]["add"]) == CAPS.iter().map(|s| s.to_string()).collect(),
        "capabilities.add must be exactly BPF, NET_ADMIN, PERFMON, NET_BIND_SERVICE",
    );

    let volumes = pod["volumes"].as_array().cloned().unwrap_or_default();
    let volume = |name: &Value| volumes.iter().find(|v| v["name"] == *name).cloned();
    let mounts = c["volumeMounts"].as_array().cloned().unwrap_or_default();
    for m in &mounts {
        need(
            volume(&m["name"]).is_some(),
            &format!("volumeMount {} names no volume", m["name"]),
        );
    }
    let mount_at = |path: &str| {
        mounts
            .iter()
            .find(|m| m["mountPath"] == path)
            .and_then(|m| volume(&m["name"]))
    };
    need(
        mount_at("/sys/fs/bpf").is_some_and(|v| v["hostPath"]["path"] == "/sys/fs/bpf"),
        "bpffs: /sys/fs/bpf must be mounted from the host's /sys/fs/bpf",
    );
    let config_volume = mount_at("/etc/rampart");
    need(
        config_volume
            .as_ref()
            .is_some_and(|v| v["configMap"]["name"].is_string()),
        "the configuration must be mounted at /etc/rampart from a ConfigMap",
    );
    let pin = config["xdp"]["pin_path"].as_str().unwrap_or("/sys/fs/bpf/rampart");
    need(
        pin.starts_with("/sys/fs/bpf/"),
        "xdp.pin_path must be inside the mounted bpffs",
    );
    let record = config["xdp"]["record_file"]
        .as_str()
        .unwrap_or("/var/lib/rampart/access-lists.db");
    need(
        mounts.iter().any(|m| {
            m["mountPath"]
                .as_str()
                .is_some_and(|p| record.starts_with(&format!("{p}/")))
        }),
        "xdp.record_file must be on a mounted volume (it must survive a pod restart)",
    );
    need(
        strings(&c["args"]).iter().any(|a| a.starts_with("/etc/rampart/")),
        "args must point --config into /etc/rampart",
    );

    let admin_port = config["admin"]["port"].as_u64().unwrap_or(8081);
    let admin_host = config["admin"]["host"].as_str().unwrap_or("127.0.0.1");
    let health = config["metrics"]["health_checks"]["endpoint"]
        .as_str()
        .unwrap_or("/health");
    for probe in ["livenessProbe", "readinessProbe"] {
        let get = &c[probe]["httpGet"];
        need(get["path"] == health, &format!("{probe} must GET {health}"));
        need(
            get["port"].as_u64() == Some(admin_port),
            &format!("{probe} must use the admin port {admin_port} of the configuration"),
        );
        // The kubelet probes the pod's address; a loopback admin listener is reached only by naming it.
        let loopback = admin_host.starts_with("127.") || admin_host == "::1";
        need(
            !loopback || get["host"] == admin_host,
            &format!("{probe} must set host: {admin_host} (the admin listener is on loopback)"),
        );
    }
    bad
}

/// The mounted configuration from a ConfigMap: checked by `rampart config validate`, returned parsed.
fn configmap_config(cm: &Value, what: &str) -> Value {
    assert_eq!(cm["apiVersion"], "v1", "{what}");
    assert_eq!(cm["kind"], "ConfigMap", "{what}");
    let text = cm["data"]["rampart.yaml"]
        .as_str()
        .unwrap_or_else(|| panic!("{what}: data.rampart.yaml missing"));
    if let Some(problems) = config_problems(text, &format!("{}.yaml", what.replace('/', "-"))) {
        panic!("{what}: the mounted configuration is invalid:\n{problems}");
    }
    yaml(text, what)
}

#[test]
fn the_kubernetes_daemonset_runs_rampart_with_the_four_capabilities_and_probes_health() {
    let cm = yaml(&read(&deploy("kubernetes/configmap.yaml")), "configmap.yaml");
    let config = configmap_config(&cm, "kubernetes/configmap");
    let ds = yaml(&read(&deploy("kubernetes/daemonset.yaml")), "daemonset.yaml");
    let bad = daemonset_problems(&ds, &config);
    assert!(bad.is_empty(), "deploy/kubernetes/daemonset.yaml: {bad:#?}");
    let config_volume = ds["spec"]["template"]["spec"]["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["configMap"].is_object())
        .unwrap();
    assert_eq!(config_volume["configMap"]["name"], cm["metadata"]["name"]);
    assert_eq!(ds["metadata"]["namespace"], cm["metadata"]["namespace"]);
    let ns = yaml(&read(&deploy("kubernetes/namespace.yaml")), "namespace.yaml");
    assert_eq!(ns["kind"], "Namespace");
    assert_eq!(ns["metadata"]["name"], ds["metadata"]["namespace"]);
    assert_eq!(config["fleet"]["enabled"], true, "the DaemonSet's nodes form a fleet");
}

/// A change that makes a manifest wrong.
type Breakage = Box<dyn Fn(&mut Value)>;

#[test]
fn broken_daemonsets_are_rejected_by_the_checker() {
    let config = yaml(&read(&deploy("kubernetes/configmap.yaml")), "configmap.yaml");
    let config = yaml(config["data"]["rampart.yaml"].as_str().unwrap(), "config");
    let good = yaml(&read(&deploy("kubernetes/daemonset.yaml")), "daemonset.yaml");
    let breakages: Vec<(&str, Breakage)> = vec![
        (
            "hostNetwork",
            Box::new(|d| d["spec"]["template"]["spec"]["hostNetwork"] = json!(false)),
        ),
        (
            "capabilities.add",
            Box::new(|d| {
                d["spec"]["template"]["spec"]["containers"][0]["securityContext"]["capabilities"]["add"] =
                    json!(["BPF", "NET_ADMIN", "PERFMON", "NET_BIND_SERVICE", "SYS_ADMIN"])
            }),
        ),
        (
            "livenessProbe must GET",
            Box::new(|d| {
                d["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["httpGet"]["path"] = json!("/healthz")
            }),
        ),
        (
            "readinessProbe must use the admin port",
            Box::new(|d| {
                d["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["port"] = json!(9999)
            }),
        ),
        (
            "matchLabels",
            Box::new(|d| d["spec"]["selector"]["matchLabels"] = json!({"app": "other"})),
        ),
        (
            "bpffs",
            Box::new(|d| d["spec"]["template"]["spec"]["volumes"][0]["hostPath"]["path"] = json!("/tmp")),
        ),
        (
            "privileged",
            Box::new(|d| d["spec"]["template"]["spec"]["containers"][0]["securityContext"]["privileged"] = json!(true)),
        ),
        ("kind", Box::new(|d| d["kind"] = json!("Deployment"))),
    ];
    for (expected, breakage) in breakages {
        let mut broken = good.clone();
        breakage(&mut broken);
        let bad = daemonset_problems(&broken, &config);
        assert!(
            bad.iter().any(|b| b.contains(expected)),
            "breaking {expected} went unnoticed: {bad:?}"
        );
    }
    // A configuration whose admin port moved makes the unchanged probes wrong.
    let mut moved = config.clone();
    moved["admin"]["port"] = json!(9191);
    assert!(!daemonset_problems(&good, &moved).is_empty());
    // And a mounted configuration that Rampart refuses is caught by `rampart config validate`.
    assert!(config_problems("server:\n  port: 70000\n", "broken-config.yaml").is_some());
}

/// A small Helm renderer for the constructs the chart uses, refusing everything else: `{{ .Values.a.b }}`,
/// `{{ .Release.Name }}`, `{{ .Release.Namespace }}`, `{{ .Chart.Name }}`, `{{ .Chart.AppVersion }}`, a
/// `| quote`, and `{{ toYaml .Values.x | nindent N }}` (rendered as JSON, which is YAML), with `{{-`/`-}}`
/// trimming. A key missing from the values is an error, as is a map or list outside `toYaml`.
fn render(template: &str, values: &Value, chart: &Value) -> Result<String, String> {
    let scope = json!({
        "Values": values,
        "Release": {"Name": "rampart", "Namespace": "rampart"},
        "Chart": chart,
    });
    let lookup = |path: &str| -> Result<Value, String> {
        let mut v = &scope;
        for part in path
            .strip_prefix('.')
            .ok_or_else(|| format!("`{path}` is not a path"))?
            .split('.')
        {
            v = v.get(part).ok_or_else(|| format!("`{path}`: no key `{part}`"))?;
        }
        Ok(v.clone())
    };
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        let (before, after) = rest.split_at(start);
        let after = &after[2..];
        let end = after.find("}}").ok_or("unclosed {{")?;
        let mut expr = &after[..end];
        rest = &after[end + 2..];
        out.push_str(before);
        if let Some(e) = expr.strip_prefix('-') {
            expr = e;
            out.truncate(out.trim_end().len());
        }
        if let Some(e) = expr.strip_suffix('-') {
            expr = e;
            rest = rest.trim_start();
        }
        let parts: Vec<&str> = expr.split('|').map(str::trim).collect();
        let text = match parts.as_slice() {
            [path] if path.starts_with('.') => scalar(&lookup(path)?, path)?,
            [path, "quote"] if path.starts_with('.') => format!("{:?}", scalar(&lookup(path)?, path)?),
            [call, indent] if call.starts_with("toYaml ") && indent.starts_with("nindent ") => {
                let value = lookup(call.trim_start_matches("toYaml ").trim())?;
                let n: usize = indent["nindent ".len()..]
                    .trim()
                    .parse()
                    .map_err(|_| format!("bad nindent in `{expr}`"))?;
                format!(
                    "\n{}{}",
                    " ".repeat(n),
                    serde_json::to_string(&value).map_err(|e| e.to_string())?
                )
            }
            _ => return Err(format!("unsupported template construct `{{{{{expr}}}}}`")),
        };
        out.push_str(&text);
    }
    out.push_str(rest);
    Ok(out)
}

fn scalar(v: &Value, path: &str) -> Result<String, String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        _ => Err(format!("`{path}` is a map, list or null: it needs toYaml")),
    }
}

fn chart() -> (Value, Value) {
    let chart = yaml(&read(&deploy("helm/rampart/Chart.yaml")), "Chart.yaml");
    let values = yaml(&read(&deploy("helm/rampart/values.yaml")), "values.yaml");
    // Helm exposes Chart.yaml's keys capitalised (`.Chart.Name`, `.Chart.AppVersion`).
    let chart_scope = json!({"Name": chart["name"], "AppVersion": chart["appVersion"], "Version": chart["version"]});
    (chart_scope, values)
}

#[test]
fn the_helm_chart_renders_to_the_same_valid_daemonset_and_configuration() {
    let raw = yaml(&read(&deploy("helm/rampart/Chart.yaml")), "Chart.yaml");
    assert_eq!(raw["apiVersion"], "v2");
    assert_eq!(raw["type"], "application");
    assert!(raw["version"].is_string() && raw["appVersion"].is_string(), "{raw}");
    let (chart, values) = chart();
    let templates = deploy("helm/rampart/templates");
    let mut rendered = std::collections::BTreeMap::new();
    for entry in std::fs::read_dir(&templates).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let text = render(&read(&path), &values, &chart).unwrap_or_else(|e| panic!("templates/{name}: {e}"));
        rendered.insert(name.clone(), yaml(&text, &format!("rendered templates/{name}")));
    }
    let cm = &rendered["configmap.yaml"];
    let config = configmap_config(cm, "helm/configmap");
    let ds = &rendered["daemonset.yaml"];
    let bad = daemonset_problems(ds, &config);
    assert!(bad.is_empty(), "rendered helm daemonset: {bad:#?}");
    assert_eq!(
        ds["spec"]["template"]["spec"]["volumes"][1]["configMap"]["name"],
        cm["metadata"]["name"]
    );
    assert_eq!(
        ds["spec"]["template"]["spec"]["containers"][0]["image"],
        "rampart:0.1.0"
    );
}

#[test]
fn the_helm_renderer_refuses_unknown_values_and_constructs() {
    let (chart, values) = chart();
    let missing = render("port: {{ .Values.config.admin.nope }}", &values, &chart).unwrap_err();
    assert!(missing.contains("nope"), "{missing}");
    let map = render("x: {{ .Values.config }}", &values, &chart).unwrap_err();
    assert!(map.contains("toYaml"), "{map}");
    let include = render("{{ include \"x\" . }}", &values, &chart).unwrap_err();
    assert!(include.contains("unsupported"), "{include}");
    assert_eq!(
        render(
            "a:\n  {{- toYaml .Values.tolerations | nindent 2 }}\nb: {{ .Values.image.tag | quote }}",
            &values,
            &chart
        )
        .unwrap(),
        "a:\n  []\nb: \"0.1.0\""
    );
}

#[test]
fn docker_compose_runs_rampart_with_redis_prometheus_and_grafana() {
    let compose = yaml(&read(&deploy("docker-compose.yml")), "docker-compose.yml");
    let services = compose["services"].as_object().expect("services");
    for name in ["rampart", "redis", "prometheus", "grafana"] {
        let s = services.get(name).unwrap_or_else(|| panic!("service {name} missing"));
        let image = s["image"].as_str().unwrap_or_else(|| panic!("{name}: no image"));
        assert!(
            image.contains(':') && !image.ends_with(":latest"),
            "{name}: pin the image tag ({image})"
        );
        assert_eq!(
            s["network_mode"], "host",
            "{name}: the stack shares the host network with XDP"
        );
        for v in s["volumes"].as_array().into_iter().flatten() {
            let src = v.as_str().unwrap().split(':').next().unwrap();
            if src.starts_with("./") {
                assert!(deploy(src).exists(), "{name}: mounts {src}, which does not exist");
            }
        }
    }
    let r = &services["rampart"];
    assert_eq!(strings(&r["cap_drop"]), BTreeSet::from(["ALL".to_owned()]));
    assert_eq!(strings(&r["cap_add"]), CAPS.iter().map(|s| s.to_string()).collect());
    assert!(r["privileged"] != true);
    assert_eq!(r["build"]["dockerfile"], "deploy/Dockerfile");
    assert!(
        strings(&r["volumes"]).contains("/sys/fs/bpf:/sys/fs/bpf"),
        "bpffs must be mounted"
    );
    // The configuration it mounts is valid and points the fleet at the compose file's Redis.
    let text = read(&deploy("compose/rampart.yaml"));
    if let Some(p) = config_problems(&text, "compose-rampart.yaml") {
        panic!("deploy/compose/rampart.yaml: {p}");
    }
    let config = yaml(&text, "compose/rampart.yaml");
    let redis_port = config["fleet"]["redis"]["port"].as_u64().unwrap().to_string();
    let redis_cmd = strings(&services["redis"]["command"]);
    assert!(
        redis_cmd.contains(&redis_port),
        "Redis must listen on fleet.redis.port: {redis_cmd:?}"
    );
    // Prometheus scrapes the admin listener the configuration opens.
    let prom = read(&deploy("prometheus/prometheus.yml"));
    let target = format!(
        "{}:{}",
        config["admin"]["host"].as_str().unwrap(),
        config["admin"]["port"]
    );
    assert!(prom.contains(&target), "prometheus.yml must scrape {target}");
    let ds = yaml(
        &read(&deploy("grafana/provisioning/datasources/prometheus.yml")),
        "datasource",
    );
    assert_eq!(ds["datasources"][0]["type"], "prometheus");
}

/// What is wrong with a Dockerfile for Rampart.
fn dockerfile_problems(text: &str) -> Vec<String> {
    let lines: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.starts_with('#')).collect();
    let froms: Vec<&str> = lines.iter().copied().filter(|l| l.starts_with("FROM ")).collect();
    let mut bad = Vec::new();
    if froms.len() < 2 || !froms[0].ends_with(" AS builder") {
        bad.push("needs a builder stage (`FROM ... AS builder`) and a final stage".to_owned());
    }
    let last_from = lines.iter().rposition(|l| l.starts_with("FROM ")).unwrap_or(0);
    let last = &lines[last_from..];
    if !last.iter().any(|l| {
        l.starts_with("COPY --from=builder ")
            && l.contains("target/release/rampart")
            && l.ends_with("/usr/local/bin/rampart")
    }) {
        bad.push("the final stage must copy target/release/rampart from the builder".to_owned());
    }
    if !last
        .iter()
        .any(|l| l.starts_with("ENTRYPOINT") && l.contains("rampart"))
    {
        bad.push("the final stage must run rampart".to_owned());
    }
    for l in last.iter().filter(|l| l.starts_with("COPY ") && !l.contains("--from=")) {
        let src = l.split_whitespace().nth(1).unwrap_or_default();
        if !root().join(src).exists() {
            bad.push(format!("COPY {src}: no such file in the repository"));
        }
    }
    bad
}

#[test]
fn the_dockerfile_builds_in_one_stage_and_ships_only_the_binary_in_another() {
    let text = read(&deploy("Dockerfile"));
    let bad = dockerfile_problems(&text);
    assert!(bad.is_empty(), "deploy/Dockerfile: {bad:#?}");
    assert!(
        dockerfile_problems(&text.replace(" AS builder", ""))
            .iter()
            .any(|b| b.contains("builder stage")),
        "a single-stage Dockerfile must be rejected"
    );
    assert!(
        !dockerfile_problems(&text.replace("deploy/compose/rampart.yaml", "deploy/nope.yaml")).is_empty(),
        "a COPY of a missing file must be rejected"
    );
    let ignore = read(&root().join(".dockerignore"));
    assert!(
        ignore.lines().any(|l| l.trim() == "target"),
        "the build context must leave out target/"
    );
}

/// `key=value` settings of a unit file, in order (repeated keys kept).
fn unit_settings(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#') && !l.starts_with('['))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

#[test]
fn the_systemd_unit_verifies_and_runs_with_four_capabilities_and_reloads_on_sighup() {
    let text = read(&deploy("rampart.service"));
    let settings = unit_settings(&text);
    let get = |k: &str| -> Vec<&str> {
        settings
            .iter()
            .filter(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
            .collect()
    };
    let caps: BTreeSet<String> = CAPS.iter().map(|c| format!("CAP_{c}")).collect();
    for key in ["CapabilityBoundingSet", "AmbientCapabilities"] {
        let set: BTreeSet<String> = get(key)
            .iter()
            .flat_map(|v| v.split_whitespace())
            .map(str::to_owned)
            .collect();
        assert_eq!(set, caps, "{key}");
    }
    assert_eq!(get("ExecReload"), ["/bin/kill -HUP $MAINPID"]);
    assert!(
        get("User").first().is_some_and(|u| *u != "root"),
        "the service must not run as root"
    );
    for (k, v) in [
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
    ] {
        assert_eq!(get(k), [v], "{k}");
    }

    // systemd's own checks, offline, on a copy whose binary path exists on this machine.
    let bin = rampart_bin();
    let dir = std::env::temp_dir().join(format!("rampart-test-unit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let unit = dir.join("rampart.service");
    std::fs::write(&unit, text.replace("/usr/local/bin/rampart", bin.to_str().unwrap())).unwrap();
    let verify = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&unit)
        .output()
        .expect("systemd-analyze is missing: run `cargo xtask setup`");
    let stderr = String::from_utf8_lossy(&verify.stderr);
    let ours: Vec<&str> = stderr.lines().filter(|l| l.contains("rampart.service")).collect();
    assert!(
        verify.status.success() && ours.is_empty(),
        "systemd-analyze verify: {stderr}"
    );
    let security = Command::new("systemd-analyze")
        .args(["security", "--offline=yes"])
        .arg(&unit)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&security.stdout);
    let level: f64 = report
        .lines()
        .find_map(|l| l.split("exposure level for rampart.service: ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level in:\n{report}"));
    assert!(
        level <= 4.0,
        "the unit's exposure level is {level} (at most 4.0 expected):\n{report}"
    );
    // The same unit without its capability limits must score worse: the check measures something.
    let loose: String = text
        .lines()
        .filter(|l| {
            !l.starts_with("CapabilityBoundingSet") && !l.starts_with("ProtectSystem") && !l.starts_with("User")
        })
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&unit, loose.replace("/usr/local/bin/rampart", bin.to_str().unwrap())).unwrap();
    let loose_report = Command::new("systemd-analyze")
        .args(["security", "--offline=yes"])
        .arg(&unit)
        .output()
        .unwrap();
    let loose_report = String::from_utf8_lossy(&loose_report.stdout);
    assert!(
        !loose_report.contains(&format!("exposure level for rampart.service: {level}")),
        "removing the limits did not change the exposure level"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
