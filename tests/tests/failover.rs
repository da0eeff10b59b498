//! Several collectors on one PostgreSQL (issue 14): two real collector
//! binaries share one database (this test starts the server), and one CA
//! and report signing key (copied from A's data directory to B's, the
//! documented procedure in docs/SCALE.md); three real agents list both
//! (`[collector] urls`) and send over mutual TLS. Under load collector A
//! is killed with SIGKILL. Then: every agent is on B, every result is
//! stored exactly once with no gap, the rollups are complete, B holds A's
//! leases with a new fencing token, and each piece of background work
//! (rollup, retention, remote write) was recorded once, contiguous, first
//! by A then by B.
//!
//! And the database side of a province with a standby (docs/SCALE.md part
//! 2): a primary whose commits wait for a synchronous standby, a collector
//! whose store URL lists both with `target_session_attrs=read-write`; the
//! primary crashes, the standby is promoted (what Patroni would do), and
//! the collector carries on against it, losing and duplicating nothing.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use common::*;
use pantau_collector::store::postgres::testserver;

const AGENTS: [&str; 3] = ["agent-1", "agent-2", "agent-3"];
/// Targets per agent, each probed every second: 60 results/s in all.
const TARGETS: usize = 20;

/// `pantau-collector --config cfg --data-dir data ARGS` that must succeed.
fn cli(cfg: &Path, data: &Path, args: &[&str]) -> String {
    let (code, out, err) = collector_cli(data, Some(cfg), args);
    assert_eq!(code, 0, "pantau-collector {args:?} failed: {err}");
    out
}

/// A remote-write receiver that accepts every request (HTTP 204) and
/// counts them: enough for the queue to be drained and recorded.
fn receiver() -> (String, Arc<AtomicU64>) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let count = Arc::new(AtomicU64::new(0));
    let n = Arc::clone(&count);
    std::thread::spawn(move || {
        for conn in l.incoming().flatten() {
            let n = Arc::clone(&n);
            std::thread::spawn(move || {
                let mut w = conn.try_clone().unwrap();
                let mut r = BufReader::new(conn);
                loop {
                    let mut len = 0usize;
                    let mut line = String::new();
                    loop {
                        line.clear();
                        if r.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        if line == "\r\n" {
                            break;
                        }
                        let lower = line.to_ascii_lowercase();
                        if let Some(v) = lower.strip_prefix("content-length:") {
                            len = v.trim().parse().unwrap_or(0);
                        }
                    }
                    let mut body = vec![0; len];
                    if r.read_exact(&mut body).is_err() {
                        return;
                    }
                    n.fetch_add(1, Ordering::Relaxed);
                    if w.write_all(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n")
                        .is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    (format!("http://{addr}/api/v1/write"), count)
}

fn collector_config(dir: &Path, name: &str, url: &str, rw: &str) -> PathBuf {
    let cfg = dir.join(format!("collector-{name}.toml"));
    std::fs::write(
        &cfg,
        format!(
            "[store]\nurl = \"{url}\"\n\n[cluster]\nnode = \"{name}\"\nlease_ttl = \"4s\"\n\
             work_every = \"1s\"\n\n[remote_write]\nenabled = true\nurl = \"{rw}\"\n\
             interval = \"1s\"\n"
        ),
    )
    .unwrap();
    cfg
}

/// The agent's configuration: both collectors, A first; the shared CA;
/// its client certificate issued by A's CA (recorded in the shared store).
fn agent_config(
    dir: &Path,
    id: &str,
    token: &str,
    urls: &[&str],
    ca: &Path,
    cert_key: (&Path, &Path),
    port: u16,
) -> PathBuf {
    std::fs::write(dir.join("token"), format!("{token}\n")).unwrap();
    let urls: Vec<String> = urls.iter().map(|u| format!("\"{u}\"")).collect();
    let mut text = format!(
        "[agent]\nid = \"{id}\"\nheartbeat_interval = \"2s\"\n\n[collector]\n\
         urls = [{}]\nca = \"{}\"\ncert = \"{}\"\nkey = \"{}\"\ntoken_file = \"{}\"\n\
         batch_max = 50\n\n[spool]\ndir = \"{}\"\n\n",
        urls.join(", "),
        ca.display(),
        cert_key.0.display(),
        cert_key.1.display(),
        dir.join("token").display(),
        dir.join("spool").display(),
    );
    for t in 0..TARGETS {
        text.push_str(&format!(
            "[[targets]]\nid = \"svc-{t}\"\ngroup = \"app\"\nkind = \"tcp\"\n\
             address = \"127.0.0.1:{port}\"\ninterval = \"1s\"\ntimeout = \"1s\"\n\n"
        ));
    }
    let cfg = dir.join("agent.toml");
    std::fs::write(&cfg, text).unwrap();
    cfg
}

fn db(url: &str) -> postgres::Client {
    postgres::Client::connect(url, postgres::NoTls).expect("connect to the test PostgreSQL")
}

/// (count, distinct seqs, min seq, max seq) stored for `agent`.
fn stored(c: &mut postgres::Client, agent: &str) -> (i64, i64, i64, i64) {
    let r = c
        .query_one(
            "SELECT count(*), count(DISTINCT (epoch, seq)), COALESCE(min(seq), 0),
                    COALESCE(max(seq), 0) FROM result WHERE agent_id = $1",
            &[&agent],
        )
        .unwrap();
    (r.get(0), r.get(1), r.get(2), r.get(3))
}

/// (holder, token) of each lease, by name.
fn leases(c: &mut postgres::Client) -> Vec<(String, String, i64)> {
    c.query("SELECT name, holder, token FROM lease ORDER BY name", &[])
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect()
}

/// (from, to, holder, token) of every recorded piece of `job`, in order.
fn work_log(c: &mut postgres::Client, job: &str) -> Vec<(i64, i64, String, i64)> {
    c.query(
        "SELECT from_ms, to_ms, holder, token FROM work_log WHERE job = $1 ORDER BY from_ms",
        &[&job],
    )
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
    .collect()
}

/// The pieces of a job tile their range: each starts where the one before
/// ended (nothing done twice, nothing skipped), none empty; done by `a`
/// (token 1) and then, from some piece on, by `b` (token 2) only.
fn assert_tiled(job: &str, log: &[(i64, i64, String, i64)]) {
    assert!(!log.is_empty(), "{job}: nothing recorded");
    assert_eq!(
        log[0].0, 0,
        "{job}: the first piece starts at the beginning"
    );
    for w in log.windows(2) {
        assert_eq!(
            w[1].0, w[0].1,
            "{job}: pieces overlap or leave a gap: {log:?}"
        );
    }
    assert!(
        log.iter().all(|p| p.1 > p.0),
        "{job}: an empty piece: {log:?}"
    );
    let first_b = log.iter().position(|p| p.2 == "b").unwrap_or(log.len());
    assert!(
        first_b > 0,
        "{job}: A did none of it before the kill: {log:?}"
    );
    assert!(
        log[..first_b].iter().all(|p| p.2 == "a" && p.3 == 1),
        "{job}: {log:?}"
    );
    assert!(
        log[first_b..].iter().all(|p| p.2 == "b" && p.3 == 2),
        "{job}: after B took over only B (token 2) works: {log:?}"
    );
    assert!(
        first_b < log.len(),
        "{job}: B never took the job over: {log:?}"
    );
}

/// Register the three agents with A's admin commands (in the shared
/// store) and have A's CA issue each a client certificate (out of band,
/// `agent issue-cert`): (token, certificate, key) per agent.
fn register_agents(cfg_a: &Path, data_a: &Path, dir: &Path) -> Vec<(String, PathBuf, PathBuf)> {
    let mut out = Vec::new();
    for id in AGENTS {
        let added = cli(
            cfg_a,
            data_a,
            &["agent", "add", id, "--opd", "dinkes", "--print-token"],
        );
        let token = added.trim().to_string();
        let adir = dir.join(id);
        std::fs::create_dir_all(&adir).unwrap();
        let (key_pem, csr_pem) = pantau_agent::identity::new_key_and_csr(id).unwrap();
        let (key, csr, cert) = (
            adir.join("agent.key"),
            adir.join("agent.csr"),
            adir.join("agent.crt"),
        );
        pantau_agent::identity::write_atomic(&key, &key_pem, 0o600).unwrap();
        std::fs::write(&csr, csr_pem).unwrap();
        cli(
            cfg_a,
            data_a,
            &[
                "agent",
                "issue-cert",
                id,
                "--csr",
                csr.to_str().unwrap(),
                "--out",
                cert.to_str().unwrap(),
            ],
        );
        out.push((token, cert, key));
    }

    out
}

/// A new CA in `data`, the OPD `dinkes` and its three agents registered
/// in the store `cfg` names: their credentials.
fn set_up(cfg: &Path, data: &Path, dir: &Path) -> Vec<(String, PathBuf, PathBuf)> {
    cli(cfg, data, &["ca", "init"]);
    cli(
        cfg,
        data,
        &["opd", "add", "dinkes", "--name", "Dinas Kesehatan"],
    );
    register_agents(cfg, data, dir)
}

/// The documented copy: A's CA certificate and key and the report signing
/// key into B's data directory, before B's first start.
fn share_ca_and_key(data_a: &Path, data_b: &Path) {
    std::fs::create_dir_all(data_b.join("tls")).unwrap();
    for f in ["ca.crt", "ca.key"] {
        std::fs::copy(data_a.join("tls").join(f), data_b.join("tls").join(f)).unwrap();
    }
    let key = pantau_collector::report::sign::KEY_FILE;
    std::fs::copy(data_a.join(key), data_b.join(key)).unwrap();
}

/// Rollups complete: no hour waiting, the rollup record passes the last
/// result (its minute closed, which B does: up to a minute's wait), and
/// every (agent, target, hour) with results has its rollup row (agent
/// self-reports have no target).
fn assert_rollups_complete(pg: &mut postgres::Client) {
    let last_result: i64 = pg
        .query_one("SELECT max(observed_at_ms) FROM result", &[])
        .unwrap()
        .get(0);
    wait_for("B finishes the rollups", Duration::from_secs(90), || {
        let dirty: i64 = pg
            .query_one("SELECT count(*) FROM rollup_dirty", &[])
            .unwrap()
            .get(0);
        let reached = work_log(pg, "rollup")
            .last()
            .is_some_and(|p| p.1 > last_result);
        (dirty == 0 && reached).then_some(())
    });
    let missing: i64 = pg
        .query_one(
            "SELECT count(*) FROM (SELECT DISTINCT agent_id, target_id,
                    (observed_at_ms / 3600000) * 3600000 AS hour_ms FROM result
                    WHERE target_id <> '') r
             WHERE NOT EXISTS (SELECT 1 FROM rollup_target_hour h WHERE h.agent_id = r.agent_id
                               AND h.target_id = r.target_id AND h.hour_ms = r.hour_ms)",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(missing, 0, "hours with results but no rollup");
}

/// Remote write: the queue drained, and the last recorded piece ends at the
/// last id the queue ever handed out.
fn assert_queue_drained(pg: &mut postgres::Client) {
    wait_for(
        "B drains the remote-write queue",
        Duration::from_secs(30),
        || {
            let n: i64 = pg
                .query_one("SELECT count(*) FROM remote_write_queue", &[])
                .unwrap()
                .get(0);
            (n == 0).then_some(())
        },
    );
    // The last piece ends at the last id the queue ever handed out.
    let last_id: i64 = pg
        .query_one(
            "SELECT last_value FROM pg_sequences
             WHERE sequencename = pg_get_serial_sequence('remote_write_queue', 'id')::regclass::text
                OR schemaname || '.' || sequencename
                   = pg_get_serial_sequence('remote_write_queue', 'id')",
            &[],
        )
        .unwrap()
        .get(0);
    wait_for(
        "the last remote-write piece recorded",
        Duration::from_secs(10),
        || {
            let last = work_log(pg, "remote_write").last().map(|p| p.1);
            (last == Some(last_id)).then_some(())
        },
    );
}

/// Start the three agents, each probing an open loopback port, listing
/// both collectors (A first) and trusting the shared CA.
fn start_agents(
    dir: &Path,
    creds: &[(String, PathBuf, PathBuf)],
    urls: &[&str],
    ca: &Path,
) -> Vec<Proc> {
    let port = open_port();
    let mut agents = Vec::new();
    for (i, id) in AGENTS.iter().enumerate() {
        let adir = dir.join(id);
        let (token, cert, key) = &creds[i];
        let cfg = agent_config(&adir, id, token, urls, ca, (cert, key), port);
        agents.push(start_agent_logged(&cfg, &adir.join("agent.log")));
    }
    agents
}

#[test]
fn two_collectors_one_database_survive_a_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let url = testserver::server().fresh_database();
    let (rw_url, rw_requests) = receiver();
    let (data_a, data_b) = (dir.path().join("data-a"), dir.path().join("data-b"));
    let cfg_a = collector_config(dir.path(), "a", &url, &rw_url);
    let cfg_b = collector_config(dir.path(), "b", &url, &rw_url);

    // One CA for both: made in A's data directory, copied to B's before B
    // first starts (B then issues its own server certificate from it).
    let creds = set_up(&cfg_a, &data_a, dir.path());

    let mut pg = db(&url);
    let mut a = Collector::start_logged_with(&data_a, &dir.path().join("a.log"), &cfg_a);
    wait_for("A holds the three leases", Duration::from_secs(20), || {
        let l = leases(&mut pg);
        (l.len() == 3 && l.iter().all(|(_, h, t)| h == "a" && *t == 1)).then_some(())
    });
    share_ca_and_key(&data_a, &data_b);
    let b = Collector::start_logged_with(&data_b, &dir.path().join("b.log"), &cfg_b);
    assert_ne!(
        std::fs::read(data_a.join("tls/server.crt")).unwrap(),
        std::fs::read(data_b.join("tls/server.crt")).unwrap(),
        "B issued its own server certificate"
    );

    let (url_a, url_b) = (a.agent_url(), b.agent_url());
    let ca = data_a.join("tls/ca.crt");
    let mut agents = start_agents(dir.path(), &creds, &[&url_a, &url_b], &ca);

    // Load on A: every agent's results arrive there.
    wait_for(
        "results from every agent on A",
        Duration::from_secs(30),
        || {
            AGENTS
                .iter()
                .all(|id| stored(&mut pg, id).0 >= 3 * TARGETS as i64)
                .then_some(())
        },
    );
    let held_b = metric(&b.metrics(), "pantau_lease_held", &[("work", "rollup")]);
    assert_eq!(held_b, Some(0.0), "B holds nothing while A lives");
    assert_eq!(
        metric(&a.metrics(), "pantau_lease_held", &[("work", "rollup")]),
        Some(1.0)
    );
    wait_for(
        "A exported to the receiver",
        Duration::from_secs(20),
        || (rw_requests.load(Ordering::Relaxed) > 0).then_some(()),
    );

    kill9(&mut a.proc);
    let at_kill: Vec<i64> = AGENTS.iter().map(|id| stored(&mut pg, id).3).collect();

    wait_for("every agent on B", Duration::from_secs(30), || {
        let m = b.metrics();
        AGENTS
            .iter()
            .all(|id| metric(&m, "pantau_agent_connected", &[("agent", id)]) == Some(1.0))
            .then_some(())
    });
    wait_for("B takes A's leases over", Duration::from_secs(30), || {
        let l = leases(&mut pg);
        (l.len() == 3 && l.iter().all(|(_, h, t)| h == "b" && *t == 2)).then_some(())
    });
    wait_for(
        "results keep coming through B",
        Duration::from_secs(30),
        || {
            AGENTS
                .iter()
                .zip(&at_kill)
                .all(|(id, k)| stored(&mut pg, id).3 >= k + 2 * TARGETS as i64)
                .then_some(())
        },
    );
    assert_eq!(
        metric(&b.metrics(), "pantau_lease_held", &[("work", "rollup")]),
        Some(1.0)
    );
    for (i, ag) in agents.iter_mut().enumerate() {
        ag.terminate();
        let log = std::fs::read_to_string(dir.path().join(AGENTS[i]).join("agent.log")).unwrap();
        assert!(
            log.contains(&format!("collector={url_a}"))
                && log.contains(&format!("collector={url_b}")),
            "the agent's log names the collector in use, A then B:\n{log}"
        );
    }

    // Exactly once, no gaps: count == distinct seqs == max seq, from 1.
    // (A result A committed but did not acknowledge was sent again to B.)
    for id in AGENTS {
        let (n, distinct, min, max) = stored(&mut pg, id);
        assert_eq!(
            (n, distinct, min),
            (max, max, 1),
            "{id}: stored {n}, distinct {distinct}, seqs {min}..={max}"
        );
    }

    assert_rollups_complete(&mut pg);
    assert_queue_drained(&mut pg);
    assert_tiled("rollup", &work_log(&mut pg, "rollup"));
    assert_tiled("remote_write", &work_log(&mut pg, "remote_write"));
    // Retention runs at most hourly across all collectors: A did it at its
    // first run; B, taking over, did not do it again.
    let retention = work_log(&mut pg, "retention");
    assert_eq!(retention.len(), 1, "{retention:?}");
    assert_eq!((retention[0].2.as_str(), retention[0].3), ("a", 1));
    drop(b);
}

/// One PostgreSQL server of a primary/standby pair, started by a watchdog
/// shell (as in `testserver`): when this test process exits, the shell's
/// stdin closes and it stops the server and removes its directory.
struct PgNode {
    dir: PathBuf,
    port: u16,
    user: Option<&'static str>,
    _watchdog: std::process::Child,
}

/// `bin/prog args...` as the server's user; panics with its output on failure.
fn pg_run(user: Option<&str>, prog: &str, args: &[&str]) {
    testserver::run_program(user, prog, args).unwrap_or_else(|e| panic!("{e}"));
}

impl PgNode {
    /// A directory owned by the server's user, and a free port.
    fn place(user: Option<&'static str>) -> (PathBuf, u16) {
        let dir = testserver::server_dir(user).unwrap_or_else(|e| panic!("{e}"));
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        (dir, port)
    }

    /// Start the server in `dir/data` with extra `-c` settings; waits until
    /// it accepts connections (a standby accepts read-only ones).
    fn start(dir: PathBuf, port: u16, user: Option<&'static str>, opts: &str) -> PgNode {
        let bin = testserver::bin_dir().unwrap_or_else(|e| panic!("{e}"));
        let script = r#"
            "$BIN/pg_ctl" -D "$DIR/data" -l "$DIR/log" -w -t 60 -o "-p $PORT -k $DIR -c listen_addresses=127.0.0.1 -c fsync=off $OPTS" start >/dev/null
            cat >/dev/null
            "$BIN/pg_ctl" -D "$DIR/data" -m immediate stop >/dev/null 2>&1
            rm -rf "$DIR"
        "#;
        let watchdog = testserver::watchdog(
            user,
            script,
            &[
                ("BIN", bin.as_os_str()),
                ("DIR", dir.as_os_str()),
                ("PORT", port.to_string().as_ref()),
                ("OPTS", opts.as_ref()),
            ],
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let node = PgNode {
            dir,
            port,
            user,
            _watchdog: watchdog,
        };
        wait_for(
            "the PostgreSQL server accepts connections",
            Duration::from_secs(60),
            || postgres::Client::connect(&node.url("postgres"), postgres::NoTls).ok(),
        );
        node
    }

    fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    fn data(&self) -> String {
        self.dir.join("data").display().to_string()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("log")).unwrap_or_default()
    }
}

/// A primary whose commits wait for the standby to have the WAL
/// (`synchronous_standby_names`), and that standby, made by
/// `pg_basebackup -R` and streaming from it.
fn primary_and_standby() -> (PgNode, PgNode) {
    let user = testserver::server_user().unwrap_or_else(|e| panic!("{e}"));
    let (pdir, pport) = PgNode::place(user);
    testserver::initdb(user, &pdir.join("data")).unwrap_or_else(|e| panic!("{e}"));
    let primary = PgNode::start(
        pdir,
        pport,
        user,
        "-c wal_level=replica -c max_wal_senders=4 -c synchronous_standby_names=standby",
    );
    let (sdir, sport) = PgNode::place(user);
    let sdata = sdir.join("data").display().to_string();
    pg_run(
        user,
        "pg_basebackup",
        &[
            "-h",
            "127.0.0.1",
            "-p",
            &pport.to_string(),
            "-U",
            "postgres",
            "-D",
            &sdata,
            "-R",
            "-X",
            "stream",
            "--no-sync",
        ],
    );
    // The standby names itself `standby` (what the primary waits for)
    // and, once promoted, waits for no standby of its own.
    let standby = PgNode::start(
        sdir,
        sport,
        user,
        "-c cluster_name=standby -c synchronous_standby_names=''",
    );
    let mut p = db(&primary.url("postgres"));
    wait_for(
        "the standby streams synchronously",
        Duration::from_secs(30),
        || {
            let n: i64 = p
                .query_one(
                    "SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'sync'",
                    &[],
                )
                .unwrap()
                .get(0);
            (n == 1).then_some(())
        },
    );
    p.batch_execute("CREATE DATABASE pantau").unwrap();
    (primary, standby)
}

/// A collector whose store URL lists the primary and the standby with
/// `target_session_attrs=read-write` (docs/SCALE.md part 2) keeps its
/// promise when the primary crashes and the standby is promoted (what
/// Patroni does): the writer's commit fails, nothing is acknowledged
/// meanwhile, the writer reconnects to the host that now accepts writes,
/// and every result is stored exactly once, none lost, none twice.
#[test]
fn a_collector_follows_the_promoted_standby_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (primary, standby) = primary_and_standby();
    let url = format!(
        "postgres://postgres@127.0.0.1:{},127.0.0.1:{}/pantau?target_session_attrs=read-write",
        primary.port, standby.port
    );
    let (rw_url, _) = receiver();
    let data = dir.path().join("data");
    let cfg = collector_config(dir.path(), "a", &url, &rw_url);
    let creds = set_up(&cfg, &data, dir.path());
    let c = Collector::start_logged_with(&data, &dir.path().join("collector.log"), &cfg);
    let agent_url = c.agent_url();
    let mut agents = start_agents(dir.path(), &creds, &[&agent_url], &data.join("tls/ca.crt"));

    let mut pg = db(&primary.url("pantau"));
    wait_for(
        "results from every agent on the primary",
        Duration::from_secs(30),
        || {
            AGENTS
                .iter()
                .all(|id| stored(&mut pg, id).0 >= 3 * TARGETS as i64)
                .then_some(())
        },
    );
    drop(pg);
    // The primary's machine dies: no checkpoint, no goodbye to clients.
    pg_run(
        primary.user,
        "pg_ctl",
        &["-D", &primary.data(), "-m", "immediate", "stop"],
    );
    // Its health check says so (its /metrics needs a token the store
    // cannot check now: Prometheus sees the scrape fail, `up == 0`).
    wait_for(
        "the collector reports the store down",
        Duration::from_secs(30),
        || {
            let (code, body) = http_get(c.http, "/healthz");
            (code == 503 && body.contains("\"writer\":false")).then_some(())
        },
    );
    let before_promotion = now_ms();
    pg_run(
        standby.user,
        "pg_ctl",
        &["-D", &standby.data(), "-w", "promote"],
    );
    let mut pg = db(&standby.url("pantau"));
    wait_for(
        "results received after the promotion, from every agent",
        Duration::from_secs(60),
        || {
            AGENTS
                .iter()
                .all(|id| {
                    let n: i64 = pg
                        .query_one(
                            "SELECT count(*) FROM result WHERE agent_id = $1 AND received_at_ms > $2",
                            &[id, &before_promotion],
                        )
                        .unwrap()
                        .get(0);
                    n >= 2 * TARGETS as i64
                })
                .then_some(())
        },
    );
    let (code, body) = http_get(c.http, "/healthz");
    assert_eq!(code, 200, "healthy again on the new primary: {body}");
    for ag in agents.iter_mut() {
        ag.terminate();
    }
    // Exactly once, no gaps, from seq 1: a result acknowledged by the old
    // primary and lost in the promotion would be a gap (the agent forgot
    // it after the acknowledgement); one stored twice would break count.
    for id in AGENTS {
        let (n, distinct, min, max) = stored(&mut pg, id);
        assert_eq!(
            (n, distinct, min),
            (max, max, 1),
            "{id}: stored {n}, distinct {distinct}, seqs {min}..={max}\nprimary log:\n{}\nstandby log:\n{}",
            primary.log(),
            standby.log()
        );
    }
    drop(c);
}
