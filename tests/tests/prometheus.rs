//! The Prometheus and Grafana deployment files against the real tools:
//! promtool checks and rule unit tests, then a real Prometheus scraping a
//! real collector (fed by a real agent probing loopback only) that must load
//! the rules without error and answer every dashboard query with data.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

/// Metrics a dashboard may query although this test cannot make them exist,
/// with the reason. Their panels still run (and must not error); they are
/// only spared the "has data" and "name is known" checks.
const MAY_BE_ABSENT: &[(&str, &str)] = &[
    (
        "pantau_probe_tls_not_after_timestamp_seconds",
        "set only for HTTPS targets whose certificate chains to a public CA built into the agent; \
         no such server exists on loopback (the alert rule's unit test covers the metric)",
    ),
    (
        "pantau_path_changes",
        "needs a route change; tests/tests/paths.rs reroutes in network namespaces and checks it",
    ),
    ("pantau_remote_write_samples_total", REMOTE_WRITE),
    ("pantau_remote_write_samples_rejected_total", REMOTE_WRITE),
    ("pantau_remote_write_retries_total", REMOTE_WRITE),
    ("pantau_remote_write_results_skipped_total", REMOTE_WRITE),
    ("pantau_remote_write_pending_results", REMOTE_WRITE),
    (
        "pantau_remote_write_last_sent_timestamp_seconds",
        REMOTE_WRITE,
    ),
];

const REMOTE_WRITE: &str = "registered only when [remote_write] is configured; this test's \
    collector exports nothing (tests/tests/remote_write.rs checks the families against a receiver)";

/// Metrics that do not exist yet and must stay out of every dashboard the
/// test checks (alert rules may already use them).
const NOT_YET: &[&str] = &[];

/// Grafana's interval macros, replaced the way Grafana would for a short range.
const MACROS: &[(&str, &str)] = &[
    ("$__rate_interval", "30s"),
    ("${__rate_interval}", "30s"),
    ("$__interval", "30s"),
    ("${__interval}", "30s"),
    ("$__range", "5m"),
    ("${__range}", "5m"),
];

/// A program from the Debian `prometheus` package. Missing is a failure, not a skip.
fn tool(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin")])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "{name} not found: install the Debian package `prometheus` (bash tests/run.sh does)"
            )
        })
}

fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().expect("run command");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{cmd:?} failed:\n{text}");
    text
}

fn files(dir: &str, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(repo(dir))
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == ext))
        .collect();
    v.sort();
    assert!(!v.is_empty(), "no *.{ext} in {dir}");
    v
}

#[test]
fn promtool_accepts_config_and_rules_and_rule_unit_tests_pass() {
    let promtool = tool("promtool");
    // promtool checks that the scrape credential file exists: the shipped
    // config with its rules and a token file beside it, as installed.
    let installed = tempfile::tempdir().unwrap();
    std::fs::copy(
        repo("deploy/prometheus/prometheus.yml"),
        installed.path().join("prometheus.yml"),
    )
    .unwrap();
    std::fs::create_dir(installed.path().join("rules")).unwrap();
    for f in files("deploy/prometheus/rules", "yml") {
        std::fs::copy(
            &f,
            installed.path().join("rules").join(f.file_name().unwrap()),
        )
        .unwrap();
    }
    std::fs::write(installed.path().join("pantau-scrape.token"), "pantau_x").unwrap();
    let out = run_ok(
        Command::new(&promtool)
            .args(["check", "config"])
            .arg(installed.path().join("prometheus.yml")),
    );
    assert!(out.contains("SUCCESS: 2 rule files found"), "{out}");
    // The compose file's config points at container paths: syntax only.
    run_ok(
        Command::new(&promtool)
            .args(["check", "config", "--syntax-only"])
            .arg(repo("deploy/docker/prometheus.yml")),
    );
    let rules = files("deploy/prometheus/rules", "yml");
    let out = run_ok(
        Command::new(&promtool)
            .args(["check", "rules"])
            .args(&rules),
    );
    assert_eq!(out.matches("SUCCESS").count(), rules.len(), "{out}");
    let tests = files("deploy/prometheus/tests", "yml");
    let out = run_ok(Command::new(&promtool).args(["test", "rules"]).args(&tests));
    assert_eq!(out.matches("SUCCESS").count(), tests.len(), "{out}");
    assert!(!out.contains("FAILED"), "{out}");
}

// ---------------------------------------------------------------- dashboards

/// One query of a dashboard.
struct Query {
    dashboard: String,
    panel: String,
    expr: String,
    /// An annotation query: must run, may be empty (no incident open).
    annotation: bool,
}

fn dashboards() -> Vec<(PathBuf, Value)> {
    files("deploy/grafana/dashboards", "json")
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            let v: Value =
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (p, v)
        })
        .collect()
}

fn panels(v: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    for p in v["panels"].as_array().into_iter().flatten() {
        out.push(p);
        // Collapsed rows keep their panels inside.
        out.extend(panels(p));
    }
    out
}

/// Replace Grafana macros and every template variable (all are used with
/// `=~`, so `.*` selects everything, like the "All" option).
fn substitute(expr: &str, vars: &[String]) -> String {
    let mut e = expr.to_string();
    for (m, v) in MACROS {
        e = e.replace(m, v);
    }
    // Longest names first so `$opd` never eats the start of `$opdx`.
    let mut vars = vars.to_vec();
    vars.sort_by_key(|v| std::cmp::Reverse(v.len()));
    for v in vars {
        e = e
            .replace(&format!("${{{v}}}"), ".*")
            .replace(&format!("[[{v}]]"), ".*")
            .replace(&format!("${v}"), ".*");
    }
    assert!(!e.contains('$'), "unsubstituted variable in {e}");
    e
}

/// Every panel query of every dashboard, variables substituted, plus each
/// template variable's `label_values(...)` query rewritten as an instant query.
fn dashboard_queries() -> Vec<Query> {
    let provisioned =
        std::fs::read_to_string(repo("deploy/grafana/provisioning/datasources/pantau.yml"))
            .unwrap();
    let mut uids = BTreeSet::new();
    let mut out = Vec::new();
    for (path, d) in dashboards() {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let uid = d["uid"].as_str().expect("dashboard uid");
        assert!(uids.insert(uid.to_string()), "duplicate uid {uid}");
        assert!(d["title"].as_str().is_some_and(|t| !t.is_empty()));
        importable_anywhere(&name, &d, &provisioned);
        let vars: Vec<String> = d["templating"]["list"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|v| v["name"].as_str().unwrap().to_string())
            .collect();
        for v in d["templating"]["list"].as_array().into_iter().flatten() {
            if v["type"] == "datasource" {
                continue;
            }
            let q = v["query"]["query"]
                .as_str()
                .or(v["query"].as_str())
                .unwrap();
            let inner = q
                .strip_prefix("label_values(")
                .and_then(|r| r.strip_suffix(')'))
                .unwrap_or_else(|| panic!("{name}: variable query {q} is not label_values(...)"));
            let (selector, label) = inner.rsplit_once(',').unwrap();
            out.push(Query {
                dashboard: name.clone(),
                panel: format!("variable {}", v["name"]),
                expr: substitute(
                    &format!("count by ({}) ({})", label.trim(), selector.trim()),
                    &vars,
                ),
                annotation: false,
            });
        }
        for a in d["annotations"]["list"].as_array().into_iter().flatten() {
            let Some(expr) = a["expr"].as_str() else {
                assert_eq!(a["builtIn"], 1, "{name}: annotation without a query: {a}");
                continue;
            };
            assert_eq!(
                a["datasource"]["uid"], DS_VAR,
                "{name}: annotation {}",
                a["name"]
            );
            out.push(Query {
                dashboard: name.clone(),
                panel: format!("annotation {}", a["name"]),
                expr: substitute(expr, &vars),
                annotation: true,
            });
        }
        let ps = panels(&d);
        assert!(ps.len() >= 5, "{name}: only {} panels", ps.len());
        for p in ps {
            let title = p["title"].as_str().unwrap_or_default().to_string();
            assert!(!title.is_empty(), "{name}: panel without title");
            assert!(
                p["description"].as_str().is_some_and(|d| !d.is_empty()),
                "{name}: panel {title} has no (English) description"
            );
            let text = p.to_string();
            assert!(
                !text.contains("not available yet") && !text.contains("belum tersedia"),
                "{name}: panel {title} announces something missing"
            );
            if p["type"] == "row" {
                continue;
            }
            for t in p["targets"].as_array().into_iter().flatten() {
                for ds in [&t["datasource"], &p["datasource"]] {
                    assert_eq!(
                        ds["uid"], DS_VAR,
                        "{name}/{title}: data source is not the {DS_VAR} variable"
                    );
                }
                let expr = t["expr"].as_str().expect("expr").to_string();
                // A graph never mixes ICMP RTT, TCP connect, HTTP total, ...
                // in one series: it filters or keeps the kind label.
                if p["type"] == "timeseries" && expr.contains("pantau_probe_duration_seconds") {
                    assert!(
                        expr.contains("kind=\"") || expr.contains("kind)"),
                        "{name}/{title} mixes measurement kinds: {expr}"
                    );
                }
                for m in NOT_YET {
                    assert!(
                        !expr.contains(m),
                        "{name}/{title} queries {m}, which does not exist yet"
                    );
                }
                out.push(Query {
                    dashboard: name.clone(),
                    panel: title.clone(),
                    expr: substitute(&expr, &vars),
                    annotation: false,
                });
            }
        }
    }
    for uid in ["pantau-provinsi", "pantau-opd", "pantau-agen"] {
        assert!(uids.contains(uid), "dashboard {uid} missing");
    }
    out
}

/// The data source reference of every panel, target and query variable.
const DS_VAR: &str = "${DS_PROMETHEUS}";

/// A dashboard imports into any Grafana: it declares the data source as an
/// import input (`__inputs`), every Prometheus reference is the variable of
/// that name, and the variable defaults to the uid that the provisioning
/// files (host and Docker) give, so provisioned dashboards work unchanged.
fn importable_anywhere(name: &str, d: &Value, provisioned: &str) {
    let inputs = d["__inputs"]
        .as_array()
        .unwrap_or_else(|| panic!("{name}: no __inputs"));
    assert!(
        inputs.iter().any(|i| i["name"] == "DS_PROMETHEUS"
            && i["type"] == "datasource"
            && i["pluginId"] == "prometheus"),
        "{name}: __inputs lacks the DS_PROMETHEUS data source: {inputs:?}"
    );
    let vars = d["templating"]["list"].as_array().expect("templating");
    let ds: Vec<&Value> = vars.iter().filter(|v| v["type"] == "datasource").collect();
    assert_eq!(ds.len(), 1, "{name}: want one data source variable");
    assert_eq!(ds[0]["name"], "DS_PROMETHEUS", "{name}");
    assert_eq!(ds[0]["query"], "prometheus", "{name}");
    let default = ds[0]["current"]["value"]
        .as_str()
        .expect("default data source");
    let docker = std::fs::read_to_string(repo("deploy/docker/grafana-datasource.yml")).unwrap();
    for (file, text) in [("provisioning", provisioned), ("docker", docker.as_str())] {
        assert!(
            text.contains(&format!("uid: {default}")),
            "{name}: default data source {default} is not provisioned ({file})"
        );
    }
    for v in vars.iter().filter(|v| v["type"] == "query") {
        assert_eq!(
            v["datasource"]["uid"], DS_VAR,
            "{name}: variable {}",
            v["name"]
        );
    }
    // No Prometheus reference anywhere names a uid of its own.
    fn refs<'a>(v: &'a Value, out: &mut Vec<&'a Value>) {
        match v {
            Value::Object(m) => {
                if let Some(ds) = m.get("datasource")
                    && ds["type"] == "prometheus"
                {
                    out.push(ds);
                }
                m.values().for_each(|x| refs(x, out));
            }
            Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
            _ => {}
        }
    }
    let mut all = Vec::new();
    refs(d, &mut all);
    assert!(all.len() >= 5, "{name}");
    for r in all {
        assert_eq!(r["uid"], DS_VAR, "{name}: hard-coded data source {r}");
    }
}

/// Metric and recording-rule names an expression refers to.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut in_string = false;
    let mut token = String::new();
    for c in expr.chars().chain([' ']) {
        if c == '"' {
            in_string = !in_string;
        }
        if !in_string && (c.is_ascii_alphanumeric() || c == '_' || c == ':') {
            token.push(c);
            continue;
        }
        if token.starts_with("pantau_")
            || (token.contains(':') && token.starts_with(char::is_alphabetic))
        {
            names.insert(std::mem::take(&mut token));
        }
        token.clear();
    }
    names
}

#[test]
fn dashboards_are_well_formed_and_every_exemption_is_used() {
    let queries = dashboard_queries();
    assert!(queries.len() >= 30, "only {} queries", queries.len());
    let all: BTreeSet<String> = queries.iter().flat_map(|q| metric_names(&q.expr)).collect();
    for (m, _) in MAY_BE_ABSENT {
        assert!(all.contains(*m), "exemption for {m} is unused; remove it");
    }
    // Each required metric family of the issue shows up in some panel.
    for m in [
        "pantau_probe_success",
        "pantau_probe_duration_seconds",
        "pantau_probe_loss_ratio",
        "pantau_probe_rtt_seconds_bucket",
        "pantau_agent_last_seen_timestamp_seconds",
        "pantau_agent_connected",
        "pantau_agent_spool_records",
        "pantau_agent_dropped_results",
        "pantau_agent_clock_offset_seconds",
        "opd_group:pantau_probe_success_rate:ratio_1d",
        "pantau_availability_ratio",
        "pantau_availability_measured_minutes",
        "pantau_incidents_open",
        "pantau_store_errors_total",
        "pantau_link_utilisation_ratio",
        "pantau_link_throughput_bits_per_second",
        "pantau_bandwidth_throughput_bits_per_second",
        "pantau_bandwidth_month_bytes",
        "pantau_remote_write_pending_results",
        "pantau_ingest_conflicts_total",
        "pantau_ingest_late_results_total",
        "pantau_ingest_clock_flagged_results_total",
        "pantau_ingest_rejected_total",
        "pantau_auth_total",
        "pantau_connections_refused_total",
        "pantau_agent_info",
        "pantau_build_info",
    ] {
        assert!(all.contains(m), "no panel shows {m}");
    }
    // Docker compose (not run here: no Docker) mounts files that exist and
    // provisions the same data source uid the dashboards use.
    let compose = std::fs::read_to_string(repo("deploy/docker/compose.yml")).unwrap();
    let mounts: Vec<&str> = compose
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- "))
        .filter(|l| l.starts_with("./") || l.starts_with("../"))
        .map(|l| l.split(':').next().unwrap())
        .collect();
    assert!(mounts.len() >= 5, "{mounts:?}");
    for m in mounts {
        assert!(
            repo("deploy/docker").join(m).exists(),
            "compose.yml mounts missing {m}"
        );
    }
    let ds = std::fs::read_to_string(repo("deploy/docker/grafana-datasource.yml")).unwrap();
    assert!(ds.contains("uid: pantau-prometheus"), "{ds}");
    assert_eq!(
        metric_names(r#"sum(rate(pantau_x_total{a="pantau_y"}[5m])) / opd:r:ratio_1d"#),
        BTreeSet::from(["pantau_x_total".to_string(), "opd:r:ratio_1d".to_string()])
    );
}

// ---------------------------------------------------------------- live

/// A running Prometheus, killed on drop (via `Proc`).
struct Prometheus {
    _proc: Proc,
    addr: SocketAddr,
    log: PathBuf,
}

impl Prometheus {
    fn start(dir: &Path, collector: SocketAddr, scrape_token: &str) -> Prometheus {
        // The shipped config and rules with test intervals and the test
        // collector's address. Each edit must apply, so a change to the files
        // cannot silently make this test check something else.
        let edit = |text: String, edits: &[(&str, &str)]| {
            edits.iter().fold(text, |t, (from, to)| {
                assert!(
                    t.contains(from),
                    "deploy/prometheus no longer contains {from}"
                );
                t.replace(from, to)
            })
        };
        let cfg = edit(
            std::fs::read_to_string(repo("deploy/prometheus/prometheus.yml")).unwrap(),
            &[
                ("scrape_interval: 30s", "scrape_interval: 1s"),
                ("scrape_timeout: 10s", "scrape_timeout: 1s"),
                ("evaluation_interval: 30s", "evaluation_interval: 1s"),
                ("\"127.0.0.1:7471\"", &format!("\"{collector}\"")),
            ],
        );
        // rule_files are relative to the config: rules/*.yml next to it.
        std::fs::create_dir(dir.join("rules")).unwrap();
        for f in files("deploy/prometheus/rules", "yml") {
            let mut text = std::fs::read_to_string(&f).unwrap();
            if f.ends_with("recording.yml") {
                // The 30-day group runs every 5 minutes in production.
                text = edit(text, &[("interval: 5m", "interval: 1s")]);
            }
            std::fs::write(dir.join("rules").join(f.file_name().unwrap()), text).unwrap();
        }
        let cfg_path = dir.join("prometheus.yml");
        std::fs::write(&cfg_path, cfg).unwrap();
        // The shipped config's credentials_file, next to it.
        std::fs::write(dir.join("pantau-scrape.token"), scrape_token).unwrap();
        let port = closed_port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let log = dir.join("prometheus.log");
        let child = Command::new(tool("prometheus"))
            .arg(format!("--config.file={}", cfg_path.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("tsdb").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start prometheus");
        let p = Prometheus {
            _proc: Proc {
                child,
                name: "prometheus",
            },
            addr,
            log,
        };
        p.poll("Prometheus ready", Duration::from_secs(20), || {
            std::net::TcpStream::connect(addr).ok()?;
            (http_get(addr, "/-/ready").0 == 200).then_some(())
        });
        p
    }

    /// Poll like `wait_for`, but show Prometheus' log on timeout.
    fn poll<T>(&self, what: &str, limit: Duration, mut f: impl FnMut() -> Option<T>) -> T {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(v) = f() {
                return v;
            }
            if Instant::now() > deadline {
                let log = std::fs::read_to_string(&self.log).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(30).collect();
                panic!(
                    "timed out waiting for {what}; prometheus log (newest first):\n{}",
                    tail.join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn api(&self, path: &str) -> Value {
        let (code, body) = http_get(self.addr, path);
        let v: Value =
            serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: {e}: {body}"));
        assert_eq!(code, 200, "GET {path}: {body}");
        assert_eq!(v["status"], "success", "GET {path}: {body}");
        v["data"].clone()
    }

    /// Instant query; returns the number of series (or 1 for a scalar).
    fn query(&self, expr: &str) -> usize {
        let data = self.api(&format!("/api/v1/query?query={}", enc(expr)));
        match data["resultType"].as_str() {
            Some("vector" | "matrix") => data["result"].as_array().map_or(0, Vec::len),
            Some("scalar" | "string") => 1,
            other => panic!("unexpected result type {other:?} for {expr}"),
        }
    }
}

/// A plain HTTP server on loopback answering every request with 2 MB, the
/// file a `server = "http"` bandwidth test downloads.
fn file_server() -> SocketAddr {
    use std::io::{Read, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("addr");
    std::thread::spawn(move || {
        for mut c in l.incoming().flatten() {
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                let _ = c.read(&mut buf);
                let body = vec![0u8; 2 << 20];
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = c.write_all(head.as_bytes());
                let _ = c.write_all(&body);
            });
        }
    });
    addr
}

/// The `record:` names of a rule file.
fn recorded_names(file: &str) -> Vec<String> {
    std::fs::read_to_string(repo(file))
        .unwrap()
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- record:"))
        .map(|n| n.trim().to_string())
        .collect()
}

/// The test agents' configuration (the second agent has a wrong token and
/// the same targets). Loopback only: ICMP to 127.0.0.1, local TCP ports, the
/// collector's /healthz, a DNS responder, the counters of `lo`, a bandwidth
/// test downloading from a local file server and a traceroute to 127.0.0.1
/// (without CAP_NET_RAW it fails; its panels show outcomes either way); one
/// group (internet) fails on purpose.
fn agent_toml(collector: &Collector, client_cert: &str, token_file: &str, spool: &str) -> String {
    let ca = collector.ca().display().to_string();
    let open = open_port();
    let closed = closed_port();
    let dns = dns_responder();
    format!(
        r#"
[agent]
id = "kominfo-1"
heartbeat_interval = "1s"

[collector]
url = "https://{grpc}"
ca = "{ca}"{client_cert}
token_file = "{token_file}"

[spool]
dir = "{spool}"

[defaults]
interval = "1s"
timeout = "900ms"
icmp_count = 3

[bandwidth]
min_gap = "0s"

[[targets]]
id = "loopback"
group = "intranet"
kind = "icmp"
address = "127.0.0.1"

[[targets]]
id = "pusat-data"
group = "datacenter"
kind = "tcp"
address = "127.0.0.1:{open}"

[[targets]]
id = "jip"
group = "jip"
kind = "tcp"
address = "127.0.0.1:{open}"

[[targets]]
id = "internet-closed"
group = "internet"
kind = "tcp"
address = "127.0.0.1:{closed}"

[[targets]]
id = "web"
group = "app"
kind = "http"
address = "http://{http}/healthz"

[[targets]]
id = "resolver"
group = "intranet"
kind = "dns"
address = "pantau.test"
server = "{dns}"

[[targets]]
id = "lo"
group = "intranet"
kind = "link"
address = "lo"
[targets.link]
source = "local"
contracted_mbps = 1000

[[targets]]
id = "uji-pusat-data"
group = "app"
kind = "bandwidth"
address = "http://{file}/besar.bin"
interval = "5s"
timeout = "3s"
[targets.bandwidth]
server = "http"
direction = "download"
streams = 1
max_bytes = "1MB"
max_duration = "1s"
warmup = "0s"

[[targets]]
id = "jalur-loopback"
group = "intranet"
kind = "traceroute"
address = "127.0.0.1"
"#,
        grpc = collector.grpc,
        http = collector.http,
        file = file_server(),
    )
}

#[test]
// Long: one real collector, two agents and a Prometheus, then every check
// against that one setup (starting it takes most of the time).
fn real_prometheus_loads_rules_and_answers_every_dashboard_query() {
    let queries = dashboard_queries();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let token = enrol(&data, "diskominfo", "kominfo-1");
    // A maintenance window in force for the app group, for the maintenance
    // annotation (the other groups keep their availability).
    let now = chrono::Utc::now();
    collector_cmd(
        &data,
        &[
            "maintenance",
            "--opd",
            "diskominfo",
            "--group",
            "app",
            "--from",
            &(now - chrono::Duration::minutes(5)).to_rfc3339(),
            "--to",
            &(now + chrono::Duration::hours(2)).to_rfc3339(),
            "--reason",
            "uji pemeliharaan",
            "--by",
            "uji",
        ],
    );
    let collector = Collector::start(&data);
    let client_cert = client_cert_toml(dir.path(), &collector.grpc.to_string(), "kominfo-1");
    std::fs::write(dir.path().join("token"), format!("{token}\n")).unwrap();
    let agent_cfg =
        |token_file: &str, spool: &str| agent_toml(&collector, &client_cert, token_file, spool);
    let cfg = dir.path().join("agent.toml");
    std::fs::write(
        &cfg,
        agent_cfg(
            &dir.path().join("token").display().to_string(),
            &dir.path().join("spool").display().to_string(),
        ),
    )
    .unwrap();
    let _agent = start_agent(&cfg);
    // A second agent with a wrong token gives the "rejected" panel data.
    let wrong = format!("{}x\n", &token[..token.len() - 1]);
    std::fs::write(dir.path().join("wrong-token"), wrong).unwrap();
    let bad_cfg = dir.path().join("bad-agent.toml");
    std::fs::write(
        &bad_cfg,
        agent_cfg(
            &dir.path().join("wrong-token").display().to_string(),
            &dir.path().join("bad-spool").display().to_string(),
        ),
    )
    .unwrap();
    let _bad_agent = start_agent(&bad_cfg);

    let scrape = make_token(&collector.data_dir, "scrape", &[]);
    let prom = Prometheus::start(dir.path(), collector.http, &scrape);

    // Every rule loaded and evaluates without error; the recording rules are
    // exactly those of the file.
    let mut want: Vec<String> = recorded_names("deploy/prometheus/rules/recording.yml");
    want.sort();
    assert!(want.len() >= 6, "{want:?}");
    let rules = prom.poll("rules evaluated", Duration::from_secs(20), || {
        let groups = prom.api("/api/v1/rules")["groups"].clone();
        let rules: Vec<Value> = groups
            .as_array()?
            .iter()
            .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
            .collect();
        rules
            .iter()
            .all(|r| {
                r["lastEvaluation"]
                    .as_str()
                    .is_some_and(|t| !t.starts_with("0001"))
            })
            .then_some(rules)
    });
    for r in &rules {
        assert_eq!(
            r["health"], "ok",
            "rule {} failed: {}",
            r["name"], r["lastError"]
        );
    }
    let mut recorded: Vec<String> = rules
        .iter()
        .filter(|r| r["type"] == "recording")
        .map(|r| r["name"].as_str().unwrap().to_string())
        .collect();
    recorded.sort();
    assert_eq!(recorded, want);
    assert!(rules.iter().filter(|r| r["type"] == "alerting").count() >= 8);

    // Wait until every dashboard query and every recording rule has data.
    let exempt = |q: &Query| {
        q.annotation
            || metric_names(&q.expr)
                .iter()
                .any(|m| MAY_BE_ABSENT.iter().any(|(a, _)| a == m))
    };
    let mut checks: Vec<(String, String)> = queries
        .iter()
        .filter(|q| !exempt(q))
        .map(|q| (format!("{} / {}", q.dashboard, q.panel), q.expr.clone()))
        .collect();
    checks.extend(
        want.iter()
            .map(|r| (format!("recording rule {r}"), r.clone())),
    );
    let mut empty: BTreeMap<String, String> = BTreeMap::new();
    let started = Instant::now();
    // pantau_availability_ratio needs a measured minute in the rollups: the
    // first minute with results must end, then the collector's rollup task
    // (every 15 s) publishes it.
    while started.elapsed() < Duration::from_secs(100) {
        empty = checks
            .iter()
            .filter(|(_, e)| prom.query(e) == 0)
            .cloned()
            .collect();
        if empty.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(
        empty.is_empty(),
        "queries without data after {:?}:\n{empty:#?}",
        started.elapsed()
    );
    // The maintenance annotation shows the window recorded above.
    wait_for(
        "the maintenance annotation",
        Duration::from_secs(60),
        || {
            (prom.query(r#"pantau_maintenance_active{opd="diskominfo",group="app"} == 1"#) == 1)
                .then_some(())
        },
    );
    // Exempt panels and annotations must still be valid PromQL (api()
    // asserts success).
    for q in queries.iter().filter(|q| exempt(q)) {
        prom.query(&q.expr);
    }

    // Every name a dashboard refers to is a series Prometheus knows, unless
    // exempt with a reason above: catches typos hidden behind `or vector(0)`.
    let known: BTreeSet<String> = prom
        .api("/api/v1/label/__name__/values")
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    for q in &queries {
        for m in metric_names(&q.expr) {
            assert!(
                known.contains(&m) || MAY_BE_ABSENT.iter().any(|(a, _)| *a == m),
                "{} / {} refers to {m}, which Prometheus does not have",
                q.dashboard,
                q.panel
            );
        }
    }

    // The promtool unit tests feed series the collector really exports: the
    // same names and label names, and for label sets the collector exports
    // at 0 from its start (op, reason, flag) or computes (window), values
    // it really has.
    unit_test_series_match_the_exposition(&collector.metrics());

    // The rules see the real labels: the internet group (only a closed port)
    // is down and PantauOpdDown is pending for it, for no other group; the
    // reporting agent is not silent.
    let alerts = prom.poll("PantauOpdDown pending", Duration::from_secs(20), || {
        let alerts = prom.api("/api/v1/alerts")["alerts"].clone();
        alerts
            .as_array()?
            .iter()
            .any(|a| a["labels"]["alertname"] == "PantauOpdDown")
            .then_some(alerts)
    });
    let down: Vec<(String, String)> = alerts
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["labels"]["alertname"] == "PantauOpdDown")
        .map(|a| {
            (
                a["labels"]["opd"].as_str().unwrap().to_string(),
                a["labels"]["group"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(down, [("diskominfo".to_string(), "internet".to_string())]);
    for a in alerts.as_array().unwrap() {
        assert_ne!(a["labels"]["alertname"], "PantauAgentSilent", "{a}");
        assert_ne!(a["labels"]["alertname"], "PantauCollectorDown", "{a}");
    }
    // Availability of the failing group is 0 and of a working one 1.
    let avail = |group: &str| -> f64 {
        let d = prom.api(&format!(
            "/api/v1/query?query={}",
            enc(&format!(
                r#"opd_group:pantau_probe_success_rate:ratio_1d{{opd="diskominfo",group="{group}"}}"#
            ))
        ));
        d["result"][0]["value"][1]
            .as_str()
            .unwrap_or_else(|| panic!("no availability for {group}: {d}"))
            .parse()
            .unwrap()
    };
    assert_eq!(avail("internet"), 0.0);
    assert_eq!(avail("datacenter"), 1.0);
}

/// Labels of an exposition or promtool series `name{a="b",...}`.
fn parse_series(s: &str) -> (String, BTreeMap<String, String>) {
    let (name, rest) = s.split_once('{').unwrap_or((s, "}"));
    let labels = rest
        .trim_end_matches('}')
        .split(',')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap();
            (k.trim().to_string(), v.trim().trim_matches('"').to_string())
        })
        .collect();
    (name.trim().to_string(), labels)
}

fn unit_test_series_match_the_exposition(exposition: &str) {
    let exported: Vec<(String, BTreeMap<String, String>)> = exposition
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| parse_series(l.rsplit_once(' ').unwrap().0))
        .collect();
    let mut checked = 0;
    for f in files("deploy/prometheus/tests", "yml") {
        let text = std::fs::read_to_string(&f).unwrap();
        for line in text.lines() {
            let Some(series) = line.trim().strip_prefix("- series: '") else {
                continue;
            };
            let (name, mut labels) = parse_series(series.trim_end_matches('\''));
            // Made by Prometheus, by an optional feature, or exempt above.
            if name == "up"
                || name.starts_with("pantau_remote_write_")
                || NOT_YET.contains(&name.as_str())
                || MAY_BE_ABSENT.iter().any(|(m, _)| *m == name)
            {
                continue;
            }
            labels.remove("job");
            labels.remove("instance");
            let same: Vec<&BTreeMap<String, String>> = exported
                .iter()
                .filter(|(n, _)| *n == name)
                .map(|(_, l)| l)
                .collect();
            assert!(
                !same.is_empty(),
                "{}: {name} is not exported by the collector",
                f.display()
            );
            let keys: BTreeSet<&String> = labels.keys().collect();
            assert!(
                same.iter()
                    .any(|l| l.keys().collect::<BTreeSet<_>>() == keys),
                "{}: {series} has other label names than the exported {name}: {same:?}",
                f.display()
            );
            for k in ["op", "reason", "flag", "window"] {
                if let Some(v) = labels.get(k) {
                    assert!(
                        same.iter().any(|l| l.get(k) == Some(v)),
                        "{}: {name} with {k}=\"{v}\" is never exported: {same:?}",
                        f.display()
                    );
                }
            }
            checked += 1;
        }
    }
    assert!(checked >= 40, "only {checked} unit-test series checked");
}
