//! pantau-loadgen: simulates N agents over real gRPC (TLS, client
//! certificates, bearer tokens) against a running collector and prints
//! acked results/s, ack latency p50/p99 and the collector's RSS and CPU.
//!
//! Each simulated agent is registered like a real one (`pantau-collector
//! opd add`, `agent add --print-token`, `agent issue-cert` with a CSR made
//! here), declares T targets in its Hello, produces a result per target
//! every interval (ICMP with samples, TCP, HTTP, DNS, a link and a
//! bandwidth target, heartbeats), sends batches with at most 4 in flight as
//! the agent does, and forgets results only when acknowledged. Optional: a
//! backlog queued before connecting, reconnects every S seconds (unacked
//! batches resent, as after a lost connection). Several collectors sharing
//! one store (`--collector A,B`): the agents are split among them and the
//! summary gives each one's acked rate, RSS and CPU besides the totals.
//!
//! Run `pantau-loadgen --help`; figures in docs/BENCHMARKS.md.

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use clap::Parser;
use pantau_proto::v1 as pb;
use pantau_proto::v1::ingest_client::IngestClient;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

/// Batches in flight per stream, as pantau-agent (export::MAX_IN_FLIGHT).
const MAX_IN_FLIGHT: usize = 4;

/// Simulasi banyak agen Pantau terhadap kolektor yang sedang berjalan
/// (Simulates many Pantau agents against a running collector).
#[derive(Parser, Debug)]
#[command(name = "pantau-loadgen", version)]
struct Args {
    /// Alamat gRPC kolektor, host:port; beberapa kolektor (satu store bersama):
    /// diulang atau dipisah koma, agen dibagi rata
    /// (collector gRPC address; several collectors on one shared store:
    /// repeated or comma-separated, agents split evenly, agent i to collector i mod N).
    #[arg(long, required = true, value_delimiter = ',')]
    collector: Vec<String>,
    /// Direktori data kolektor: CA di tls/ca.crt, pendaftaran agen lewat CLI
    /// (the collector's data directory: its CA, and where agents are registered).
    #[arg(long)]
    data_dir: PathBuf,
    /// Berkas konfigurasi kolektor untuk perintah admin ([store] url PostgreSQL)
    /// (collector config for the admin commands, e.g. a PostgreSQL store).
    #[arg(long)]
    collector_config: Option<PathBuf>,
    /// Program pantau-collector (default: next to this binary, else on PATH).
    #[arg(long)]
    collector_bin: Option<PathBuf>,
    /// Tempat token, kunci dan sertifikat agen simulasi disimpan dan dipakai ulang
    /// (where the simulated agents' tokens, keys and certificates are kept; default <data-dir>.loadgen).
    #[arg(long)]
    state_dir: Option<PathBuf>,
    /// Jumlah agen (number of agents).
    #[arg(long, default_value_t = 10)]
    agents: usize,
    /// Target per agen (targets per agent): 8/20 ICMP, 4 TCP, 4 HTTP, 2 DNS, 1 link, 1 bandwidth.
    #[arg(long, default_value_t = 20)]
    targets: usize,
    /// Interval probe dalam detik (probe interval, seconds; at least 1).
    #[arg(long, default_value_t = 30)]
    interval: u64,
    /// Satu heartbeat tiap N putaran (one heartbeat every N rounds; 0: none).
    #[arg(long, default_value_t = 2)]
    heartbeat_every: u64,
    /// Lama pengukuran dalam detik (measurement duration, seconds).
    #[arg(long, default_value_t = 60)]
    duration: u64,
    /// Detik awal yang tidak dihitung: sambungan TLS dan batch pertama
    /// (first seconds left out of the rate and latencies: TLS handshakes and first batches).
    #[arg(long, default_value_t = 0)]
    warmup: u64,
    /// Hasil yang sudah antre per agen sebelum tersambung (results queued per agent before connecting).
    #[arg(long, default_value_t = 0)]
    backlog: u64,
    /// Berhenti begitu backlog semua agen di-ack (stop once every agent's backlog is acked; --duration is the limit).
    #[arg(long)]
    until_drained: bool,
    /// Sambung ulang tiap S detik (reconnect every S seconds; 0: never).
    #[arg(long, default_value_t = 0)]
    reconnect_every: u64,
    /// Hasil per batch paling banyak (results per batch at most; the collector's Welcome may lower it).
    #[arg(long, default_value_t = 500)]
    batch_max: usize,
    /// PID kolektor untuk RSS dan CPU dari /proc, satu per --collector, urutan sama
    /// (collector pid: RSS and CPU from /proc; repeated, one per --collector, same order).
    #[arg(long, value_delimiter = ',')]
    collector_pid: Vec<u32>,
    /// Agen per alamat sumber loopback (agents per loopback source address: the collector caps connections per source).
    #[arg(long, default_value_t = 100)]
    agents_per_source: usize,
    /// Sebar sambungan pertama agen selama S detik (spread the agents' first connections over S seconds; 0: all at once).
    #[arg(long, default_value_t = 0)]
    ramp: u64,
    /// Perintah pendaftaran yang berjalan bersamaan (registration commands run at once).
    #[arg(long, default_value_t = 4)]
    register_jobs: usize,
    /// Awalan id agen (agent id prefix).
    #[arg(long, default_value = "lg")]
    prefix: String,
    /// OPD tempat agen simulasi didaftarkan (OPD of the simulated agents).
    #[arg(long, default_value = "loadgen")]
    opd: String,
}

/// One simulated agent's credentials.
struct Creds {
    id: String,
    token: String,
    identity: Identity,
}

/// Counters all agents add to.
struct Stats {
    acked: AtomicU64,
    /// Acked results per collector (same order as `--collector`).
    acked_by: Vec<AtomicU64>,
    batches: AtomicU64,
    reconnects: AtomicU64,
    stream_errors: AtomicU64,
    backoffs: AtomicU64,
    drained: AtomicUsize,
    /// Ack latency of each batch sent after the warm-up, microseconds.
    latencies: Mutex<Vec<u32>>,
    /// The end of the warm-up.
    warm_at: Mutex<Option<Instant>>,
}

impl Stats {
    fn new(collectors: usize) -> Stats {
        Stats {
            acked: AtomicU64::new(0),
            acked_by: (0..collectors).map(|_| AtomicU64::new(0)).collect(),
            batches: AtomicU64::new(0),
            reconnects: AtomicU64::new(0),
            stream_errors: AtomicU64::new(0),
            backoffs: AtomicU64::new(0),
            drained: AtomicUsize::new(0),
            latencies: Mutex::new(Vec::new()),
            warm_at: Mutex::new(None),
        }
    }

    /// Acked so far, per collector.
    fn acked_by(&self) -> Vec<u64> {
        self.acked_by
            .iter()
            .map(|a| a.load(Ordering::Relaxed))
            .collect()
    }
}

/// One collector process, sampled from /proc.
struct Proc {
    pid: u32,
    cpu0: Option<u64>,
    /// Highest RSS sampled, KiB.
    peak: Option<u64>,
}

fn main() -> Result<()> {
    let args = Args::parse();
    if args.warmup >= args.duration {
        bail!("--warmup harus lebih kecil dari --duration (must be less than --duration)");
    }
    if args.interval == 0 || args.agents == 0 || args.batch_max == 0 || args.register_jobs == 0 {
        bail!("--interval, --agents, --batch-max dan --register-jobs harus > 0 (must be > 0)");
    }
    if args.collector.iter().any(|c| c.trim().is_empty()) {
        bail!("--collector: alamat kosong (an empty address)");
    }
    if !args.collector_pid.is_empty() && args.collector_pid.len() != args.collector.len() {
        bail!(
            "--collector-pid: {} pid untuk (pids for) {} --collector; satu per kolektor (one per collector)",
            args.collector_pid.len(),
            args.collector.len()
        );
    }
    let rt = tokio::runtime::Runtime::new().context("tokio runtime")?;
    rt.block_on(run(args))
}

async fn run(args: Args) -> Result<()> {
    let args = Arc::new(args);
    let ca = std::fs::read(args.data_dir.join("tls").join("ca.crt")).with_context(|| {
        format!(
            "baca CA kolektor (read the collector CA) in {}",
            args.data_dir.display()
        )
    })?;
    let creds = register_all(&args).await?;
    eprintln!(
        "pantau-loadgen: {} agen terdaftar (agents registered), {} kolektor (collectors)",
        creds.len(),
        args.collector.len()
    );

    let stats = Arc::new(Stats::new(args.collector.len()));
    let stop = CancellationToken::new();
    let ca = Certificate::from_pem(ca);
    let mut tasks = tokio::task::JoinSet::new();
    let start = Instant::now();
    *stats.warm_at.lock().expect("warm_at") = Some(start + Duration::from_secs(args.warmup));
    let load0 = load_average();
    let mut procs: Vec<Proc> = args
        .collector_pid
        .iter()
        .map(|&pid| Proc {
            pid,
            cpu0: proc_cpu_ticks(pid),
            peak: None,
        })
        .collect();
    let own0 = proc_cpu_ticks(std::process::id());
    for (i, c) in creds.into_iter().enumerate() {
        let sim = Sim::new(&args, i, c, ca.clone(), Arc::clone(&stats));
        tasks.spawn(sim.run(stop.clone()));
    }
    let at_warm = watch(&args, &stats, start, &mut procs).await;
    let measured = start
        .elapsed()
        .saturating_sub(Duration::from_secs(args.warmup));
    let in_window: Vec<u64> = stats
        .acked_by()
        .iter()
        .zip(&at_warm)
        .map(|(now, warm)| now - warm)
        .collect();
    stop.cancel();
    while tasks.join_next().await.is_some() {}
    let end = End {
        in_window,
        secs: measured.as_secs_f64(),
        total: start.elapsed(),
        load: (load0, load_average()),
        own_cpu: cpu_pct(own0, proc_cpu_ticks(std::process::id()), start.elapsed()),
    };
    summarise(&args, &stats, &procs, &end);
    Ok(())
}

/// What the run measured, for the summary.
struct End {
    /// Acked per collector inside the measured window.
    in_window: Vec<u64>,
    /// Length of that window.
    secs: f64,
    /// The whole run, drain included (CPU is over this).
    total: Duration,
    /// Load average at start and end.
    load: (f64, f64),
    /// The generator's own CPU, %.
    own_cpu: f64,
}

/// CPU % (100 = one core) between two tick readings over `over`.
fn cpu_pct(a: Option<u64>, b: Option<u64>, over: Duration) -> f64 {
    match (a, b) {
        (Some(a), Some(b)) => b.saturating_sub(a) as f64 / CLK_TCK / over.as_secs_f64() * 100.0,
        _ => f64::NAN,
    }
}

/// Print the readable summary and the machine-readable `summary` line:
/// totals, then each collector's acked rate, RSS and CPU. With several
/// collectors `rss_mb`, `rss_peak_mb` and `cpu_pct` are their sums.
fn summarise(args: &Args, stats: &Stats, procs: &[Proc], end: &End) {
    let mut lat = std::mem::take(&mut *stats.latencies.lock().expect("latencies"));
    lat.sort_unstable();
    let pct = |p: f64| -> f64 {
        if lat.is_empty() {
            return f64::NAN;
        }
        let i = ((lat.len() as f64 * p).ceil() as usize).clamp(1, lat.len()) - 1;
        f64::from(lat[i]) / 1000.0
    };
    let secs = end.secs;
    let acked_in_window: u64 = end.in_window.iter().sum();
    let rate = acked_in_window as f64 / secs;
    let acked = stats.acked.load(Ordering::Relaxed);
    let offered = (args.agents * args.targets) as f64 / args.interval as f64;
    let mb = |k: Option<u64>| k.map_or(f64::NAN, |k| k as f64 / 1024.0);
    // Per collector: (rss, sampled peak, VmHWM) in MB and CPU %.
    let each: Vec<(f64, f64, f64, f64)> = procs
        .iter()
        .map(|p| {
            let (rss, hwm) = proc_rss_kib(p.pid);
            // The drain after the window may have grown it further.
            let peak = p.peak.max(rss);
            let cpu = cpu_pct(p.cpu0, proc_cpu_ticks(p.pid), end.total);
            (mb(rss), mb(peak), mb(hwm), cpu)
        })
        .collect();
    let sum = |f: fn(&(f64, f64, f64, f64)) -> f64| -> f64 {
        if each.is_empty() {
            f64::NAN
        } else {
            each.iter().map(f).sum()
        }
    };
    let (rss, peak, hwm, ccpu) = (sum(|e| e.0), sum(|e| e.1), sum(|e| e.2), sum(|e| e.3));
    let gcpu = end.own_cpu;
    let (load0, load1) = end.load;
    println!("pantau-loadgen: ringkasan (summary)");
    println!(
        "  agen (agents) {}, target/agen {}, interval {} s, ditawarkan (offered) {offered:.0} hasil/s, backlog/agen {}, kolektor (collectors) {}",
        args.agents,
        args.targets,
        args.interval,
        args.backlog,
        args.collector.len()
    );
    println!(
        "  di-ack (acked): {acked_in_window} hasil dalam (results in) {secs:.1} s = {rate:.0} hasil/s (results/s); total {acked} setelah pengurasan (after drain, {:.1} s)",
        end.total.as_secs_f64()
    );
    println!(
        "  latensi ack (ack latency): p50 {:.1} ms, p99 {:.1} ms, maks (max) {:.1} ms, {} batch",
        pct(0.5),
        pct(0.99),
        pct(1.0),
        lat.len()
    );
    println!(
        "  sambung ulang (reconnects) {}, galat stream (stream errors) {}, backoff {}",
        stats.reconnects.load(Ordering::Relaxed),
        stats.stream_errors.load(Ordering::Relaxed),
        stats.backoffs.load(Ordering::Relaxed)
    );
    println!(
        "  kolektor (collector): RSS {rss:.1} MB, puncak sampel (sampled peak) {peak:.1} MB, VmHWM {hwm:.1} MB, CPU {ccpu:.0} % (100 % = satu inti, one core); loadgen CPU {gcpu:.0} %"
    );
    let mut per = String::new();
    for (i, addr) in args.collector.iter().enumerate() {
        let r = end.in_window[i] as f64 / secs;
        let (crss, cpeak, chwm, ccpu) =
            each.get(i)
                .copied()
                .unwrap_or((f64::NAN, f64::NAN, f64::NAN, f64::NAN));
        if args.collector.len() > 1 {
            println!(
                "  kolektor (collector) {i} {addr}: di-ack (acked) {r:.0} hasil/s (results/s), RSS {crss:.1} MB, VmHWM {chwm:.1} MB, CPU {ccpu:.0} %"
            );
        }
        per.push_str(&format!(
            " c{i}_acked_per_s={r:.1} c{i}_rss_mb={crss:.1} c{i}_rss_peak_mb={cpeak:.1} c{i}_cpu_pct={ccpu:.1}"
        ));
    }
    println!(
        "  beban mesin (load average, 1 min): awal (start) {load0:.2}, akhir (end) {load1:.2}"
    );
    println!(
        "summary acked={acked} acked_in_window={acked_in_window} seconds={secs:.3} acked_per_s={rate:.1} p50_ms={:.3} p99_ms={:.3} batches={} reconnects={} stream_errors={} rss_mb={rss:.1} rss_peak_mb={peak:.1} cpu_pct={ccpu:.1} loadgen_cpu_pct={gcpu:.1} load_start={load0:.2} load_end={load1:.2} collectors={}{per}",
        pct(0.5),
        pct(0.99),
        lat.len(),
        stats.reconnects.load(Ordering::Relaxed),
        stats.stream_errors.load(Ordering::Relaxed),
        args.collector.len(),
    );
}

/// Until `--duration` has passed (or every backlog is acked with
/// `--until-drained`): a progress line every 5 s and the collectors' RSS
/// sampled each second (into `procs`). Returns the results acked by the
/// end of the warm-up, per collector.
async fn watch(args: &Args, stats: &Stats, start: Instant, procs: &mut [Proc]) -> Vec<u64> {
    let limit = Duration::from_secs(args.duration);
    let warm = Duration::from_secs(args.warmup);
    let mut at_warm = None;
    let mut last_print = start;
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if at_warm.is_none() && start.elapsed() >= warm {
            at_warm = Some(stats.acked_by());
        }
        for p in procs.iter_mut() {
            if let (Some(rss), _) = proc_rss_kib(p.pid) {
                p.peak = p.peak.max(Some(rss));
            }
        }
        if last_print.elapsed() >= Duration::from_secs(5) {
            last_print = Instant::now();
            eprintln!(
                "pantau-loadgen: {:.0} s, di-ack (acked) {}",
                start.elapsed().as_secs_f64(),
                stats.acked.load(Ordering::Relaxed)
            );
        }
        let drained = args.until_drained && stats.drained.load(Ordering::Relaxed) >= args.agents;
        if drained || start.elapsed() >= limit {
            return at_warm.unwrap_or_else(|| vec![0; args.collector.len()]);
        }
    }
}

/// The one-minute load average of the machine (NaN if unreadable): the
/// generator shares the machine, so every figure carries it.
fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(f64::NAN)
}

/// Jiffies per second in /proc/<pid>/stat (USER_HZ, 100 on Linux).
const CLK_TCK: f64 = 100.0;

/// utime + stime of `pid`, in clock ticks.
fn proc_cpu_ticks(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) start at ')'.
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // State is field 3 overall, so utime (14) and stime (15) are 11 and 12 here.
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

/// VmRSS and VmHWM of `pid`, KiB.
fn proc_rss_kib(pid: u32) -> (Option<u64>, Option<u64>) {
    let Ok(s) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return (None, None);
    };
    let field = |name: &str| {
        s.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
    };
    (field("VmRSS:"), field("VmHWM:"))
}

// ---------------------------------------------------------------- registration

/// The pantau-collector program.
fn collector_bin(args: &Args) -> PathBuf {
    if let Some(b) = &args.collector_bin {
        return b.clone();
    }
    let sibling = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(|d| d.join("pantau-collector")));
    sibling
        .filter(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from("pantau-collector"))
}

/// Run `pantau-collector [--config C] --data-dir D ARGS`; stdout, or the
/// error with its stderr.
fn admin(args: &Args, cmd: &[&str]) -> Result<String> {
    let mut c = Command::new(collector_bin(args));
    if let Some(cfg) = &args.collector_config {
        c.arg("--config").arg(cfg);
    }
    let out = c
        .arg("--data-dir")
        .arg(&args.data_dir)
        .args(cmd)
        .output()
        .with_context(|| format!("jalankan (run) {}", collector_bin(args).display()))?;
    if !out.status.success() {
        bail!(
            "pantau-collector {} gagal (failed): {}",
            cmd.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Register (or reuse from the state directory) every simulated agent.
async fn register_all(args: &Arc<Args>) -> Result<Vec<Creds>> {
    let state = args
        .state_dir
        .clone()
        .unwrap_or_else(|| args.data_dir.with_extension("loadgen"));
    std::fs::create_dir_all(&state)
        .with_context(|| format!("buat direktori (create) {}", state.display()))?;
    let opd_marker = state.join(format!("opd-{}", args.opd));
    if !opd_marker.exists() {
        let a = Arc::clone(args);
        tokio::task::spawn_blocking(move || {
            admin(&a, &["opd", "add", &a.opd, "--name", "Loadgen OPD"])
        })
        .await??;
        std::fs::write(&opd_marker, "")?;
    }
    // A few admin commands at once: each is a short process on the store.
    let sem = Arc::new(tokio::sync::Semaphore::new(args.register_jobs));
    let mut set = tokio::task::JoinSet::new();
    for i in 0..args.agents {
        let (a, state, sem) = (Arc::clone(args), state.clone(), Arc::clone(&sem));
        set.spawn(async move {
            let _permit = sem.acquire_owned().await?;
            let id = format!("{}-{i:05}", a.prefix);
            tokio::task::spawn_blocking(move || register(&a, &state, id).map(|c| (i, c))).await?
        });
    }
    let mut out = Vec::with_capacity(args.agents);
    while let Some(r) = set.join_next().await {
        out.push(r??);
    }
    out.sort_by_key(|(i, _)| *i);
    Ok(out.into_iter().map(|(_, c)| c).collect())
}

/// One agent's token and certificate: from `state` if kept there, else
/// registered now.
fn register(args: &Args, state: &Path, id: String) -> Result<Creds> {
    let (tok, key, csr, crt) = (
        state.join(format!("{id}.token")),
        state.join(format!("{id}.key")),
        state.join(format!("{id}.csr")),
        state.join(format!("{id}.crt")),
    );
    if !tok.exists() {
        let t = admin(
            args,
            &["agent", "add", &id, "--opd", &args.opd, "--print-token"],
        )?;
        std::fs::write(&tok, t.trim())?;
    }
    if !crt.exists() {
        let k = rcgen::KeyPair::generate()?;
        let mut p = rcgen::CertificateParams::new(Vec::<String>::new())?;
        p.distinguished_name = rcgen::DistinguishedName::new();
        p.distinguished_name.push(rcgen::DnType::CommonName, &id);
        std::fs::write(&csr, p.serialize_request(&k)?.pem()?)?;
        std::fs::write(&key, k.serialize_pem())?;
        let (csr_s, crt_s) = (csr.to_string_lossy(), crt.to_string_lossy());
        admin(
            args,
            &["agent", "issue-cert", &id, "--csr", &csr_s, "--out", &crt_s],
        )?;
    }
    Ok(Creds {
        token: std::fs::read_to_string(&tok)?.trim().to_string(),
        identity: Identity::from_pem(std::fs::read(&crt)?, std::fs::read(&key)?),
        id,
    })
}

// ---------------------------------------------------------------- one agent

/// The probe kind of target `i` (of every 20: 8 ICMP, 4 TCP, 4 HTTP, 2 DNS,
/// 1 link, 1 bandwidth).
fn kind_of(i: usize) -> pb::ProbeKind {
    match i % 20 {
        0..=7 => pb::ProbeKind::Icmp,
        8..=11 => pb::ProbeKind::Tcp,
        12..=15 => pb::ProbeKind::Http,
        16..=17 => pb::ProbeKind::Dns,
        18 => pb::ProbeKind::Link,
        _ => pb::ProbeKind::Bandwidth,
    }
}

/// A simulated agent: its queue of unacknowledged results (contiguous
/// seqs) and what it has sent of them.
struct Sim {
    args: Arc<Args>,
    creds: Creds,
    ca: Certificate,
    source: Option<IpAddr>,
    stats: Arc<Stats>,
    /// Position among the agents (for the connection ramp).
    index: u64,
    /// Which `--collector` this agent sends to (agent i to i mod N).
    collector: usize,
    epoch: u64,
    next_seq: u64,
    round: u64,
    rng: u64,
    /// Results not yet acknowledged, in seq order.
    queue: VecDeque<pb::Result>,
    /// Highest seq acknowledged.
    acked: u64,
    backlog_done: bool,
}

/// A batch on the wire: its last seq, when it went, how many results.
struct InFlight {
    last: u64,
    sent: Instant,
}

fn unix_ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl Sim {
    fn new(args: &Arc<Args>, i: usize, creds: Creds, ca: Certificate, stats: Arc<Stats>) -> Sim {
        let collector = i % args.collector.len();
        let loopback = args.collector[collector]
            .parse::<SocketAddr>()
            .is_ok_and(|a| a.ip().is_loopback() && a.is_ipv4());
        // Spread agents over 127.1.x.y so that the collector's per-source
        // connection cap (128 by default) does not refuse them.
        let n = (i / args.agents_per_source.max(1)) as u32;
        let source = loopback.then(|| IpAddr::V4(Ipv4Addr::from(0x7f01_0001 + n)));
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let mut sim = Sim {
            args: Arc::clone(args),
            creds,
            ca,
            source,
            stats,
            index: i as u64,
            collector,
            epoch: (now.as_micros() as u64).wrapping_add(i as u64) | 1,
            next_seq: 1,
            round: 0,
            rng: 0x9e37_79b9_7f4a_7c15 ^ (i as u64 + 1).wrapping_mul(0x2545_f491_4f6c_dd1d),
            queue: VecDeque::new(),
            acked: 0,
            backlog_done: args.backlog == 0,
        };
        if sim.backlog_done {
            sim.stats.drained.fetch_add(1, Ordering::Relaxed);
        }
        // The backlog: rounds stamped in the past, oldest first.
        let per_round = args.targets.max(1) as u64;
        let rounds = args.backlog.div_ceil(per_round);
        let start = SystemTime::now() - Duration::from_secs(rounds * args.interval);
        for k in 0..args.backlog {
            let at = start + Duration::from_secs(k / per_round * args.interval);
            let r = sim.result((k % per_round) as usize, at);
            sim.queue.push_back(r);
        }
        sim
    }

    fn rand(&mut self) -> u64 {
        // xorshift64*: cheap variety in the figures.
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn target_info(&self) -> Vec<pb::TargetInfo> {
        (0..self.args.targets)
            .map(|i| pb::TargetInfo {
                id: format!("t{i:03}"),
                group: ["intranet", "internet", "datacenter", "jip", "app"][i % 5].into(),
                kind: kind_of(i) as i32,
                address: format!("10.{}.{}.{}", i / 250, i % 250, 1 + i % 200),
                interval_ms: self.args.interval * 1000,
                timeout_ms: (self.args.interval * 1000).min(5000),
                label: String::new(),
            })
            .collect()
    }

    /// A result of target `t` (`targets` means the heartbeat) observed at `at`.
    fn result(&mut self, t: usize, at: SystemTime) -> pb::Result {
        use pb::result::Measurement as M;
        let seq = self.next_seq;
        self.next_seq += 1;
        let r = self.rand();
        let us = 1_000 + r % 40_000;
        let (kind, outcome, m) = if t >= self.args.targets {
            let h = pb::Heartbeat {
                uptime_seconds: self.round * self.args.interval,
                spool_records: self.queue.len() as u64,
                spool_bytes: self.queue.len() as u64 * 80,
                ..pb::Heartbeat::default()
            };
            (pb::ProbeKind::Heartbeat, pb::Outcome::Ok, M::Heartbeat(h))
        } else {
            let kind = kind_of(t);
            let (outcome, m) = self.measurement(kind, r, us);
            (kind, outcome, m)
        };
        pb::Result {
            epoch: self.epoch,
            seq,
            target_id: if t >= self.args.targets {
                String::new()
            } else {
                format!("t{t:03}")
            },
            kind: kind as i32,
            observed_at: Some(pantau_proto::timestamp_from_millis(unix_ms(at))),
            outcome: outcome as i32,
            detail: String::new(),
            measurement: Some(m),
        }
    }

    fn measurement(
        &self,
        kind: pb::ProbeKind,
        r: u64,
        us: u64,
    ) -> (pb::Outcome, pb::result::Measurement) {
        use pb::result::Measurement as M;
        let ok = pb::Outcome::Ok;
        match kind {
            pb::ProbeKind::Icmp => {
                // One result in 50 is a timeout with no replies; else 5 echoes, some lost.
                let received = if r.is_multiple_of(50) {
                    0
                } else {
                    5 - (r >> 8) as u32 % 2
                };
                let samples: Vec<u64> = (0..received as u64).map(|k| us + k * 37).collect();
                let max = samples.iter().copied().max().unwrap_or(0);
                let min = samples.iter().copied().min().unwrap_or(0);
                let p = pb::PingMeasurement {
                    sent: 5,
                    received,
                    rtt_min_us: min,
                    rtt_avg_us: (min + max) / 2,
                    rtt_max_us: max,
                    rtt_stddev_us: (max - min) / 3,
                    samples_us: samples,
                };
                let o = if received == 0 {
                    pb::Outcome::Timeout
                } else {
                    ok
                };
                (o, M::Ping(p))
            }
            pb::ProbeKind::Tcp => (ok, M::Tcp(pb::TcpMeasurement { connect_us: us })),
            pb::ProbeKind::Http => (
                ok,
                M::Http(pb::HttpMeasurement {
                    status: 200,
                    ttfb_us: us,
                    total_us: us * 2,
                    tls_not_after: None,
                    body_bytes: 5_000 + r % 50_000,
                }),
            ),
            pb::ProbeKind::Dns => (
                ok,
                M::Dns(pb::DnsMeasurement {
                    resolve_us: us / 4,
                    answers: 1,
                    rcode: 0,
                }),
            ),
            pb::ProbeKind::Link => {
                let iv = self.args.interval as f64;
                let (inb, outb) = ((r % 80_000_000) as f64, (r % 20_000_000) as f64);
                let l = pb::LinkMeasurement {
                    source: "snmp".into(),
                    if_index: 2,
                    if_name: "ge-0/0/1".into(),
                    in_octets: (self.round + 1) * (inb * iv / 8.0) as u64,
                    out_octets: (self.round + 1) * (outb * iv / 8.0) as u64,
                    counter_bits: 64,
                    sys_uptime_cs: self.round * self.args.interval * 100,
                    oper_status: 1,
                    capacity_bps: 100_000_000,
                    contracted: true,
                    interval_seconds: iv,
                    in_bps: inb,
                    out_bps: outb,
                    no_rate: String::new(),
                    wraps: 0,
                };
                (ok, M::Link(l))
            }
            _ => {
                let b = pb::BandwidthMeasurement {
                    download_bps: 50_000_000 + r % 40_000_000,
                    upload_bps: 20_000_000 + r % 10_000_000,
                    download_bytes: 60_000_000,
                    upload_bytes: 25_000_000,
                    download_window_us: 10_000_000,
                    upload_window_us: 10_000_000,
                    streams: 4,
                    ..pb::BandwidthMeasurement::default()
                };
                (ok, M::Bandwidth(b))
            }
        }
    }

    /// One round: a result per target, and the heartbeat every few rounds.
    fn produce(&mut self) {
        let now = SystemTime::now();
        for t in 0..self.args.targets {
            let r = self.result(t, now);
            self.queue.push_back(r);
        }
        let hb = self.args.heartbeat_every;
        if hb > 0 && self.round.is_multiple_of(hb) {
            let r = self.result(self.args.targets, now);
            self.queue.push_back(r);
        }
        self.round += 1;
    }

    fn hello(&self) -> pb::AgentMessage {
        let first = self.queue.front().map_or(self.next_seq, |r| r.seq);
        pb::AgentMessage {
            msg: Some(pb::agent_message::Msg::Hello(pb::Hello {
                config_version: 0,
                config_sha256: String::new(),
                agent_id: self.creds.id.clone(),
                agent_version: concat!("loadgen-", env!("CARGO_PKG_VERSION")).into(),
                config_hash: "loadgen".into(),
                spool: Some(pb::SpoolState {
                    epoch: self.epoch,
                    first_seq: first,
                    next_seq: self.next_seq,
                    records: self.queue.len() as u64,
                    bytes: self.queue.len() as u64 * 80,
                    ..pb::SpoolState::default()
                }),
                agent_time: Some(pantau_proto::timestamp_from_millis(unix_ms(
                    SystemTime::now(),
                ))),
                targets: self.target_info(),
                hostname: format!("loadgen-{}", self.creds.id),
            })),
        }
    }

    /// Forget what is acknowledged up to `up_to`.
    fn ack(&mut self, up_to: u64) {
        if up_to <= self.acked {
            return;
        }
        self.stats
            .acked
            .fetch_add(up_to - self.acked, Ordering::Relaxed);
        self.stats.acked_by[self.collector].fetch_add(up_to - self.acked, Ordering::Relaxed);
        self.acked = up_to;
        while self.queue.front().is_some_and(|r| r.seq <= up_to) {
            self.queue.pop_front();
        }
        if !self.backlog_done && up_to >= self.args.backlog {
            self.backlog_done = true;
            self.stats.drained.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Connect, stream, reconnect on error or on schedule, until `stop`;
    /// then wait (bounded) for the batches in flight to be acknowledged.
    async fn run(mut self, stop: CancellationToken) {
        // Spread the agents' rounds over the interval, as real agents start at random times.
        let offset = Duration::from_millis(self.rand() % (self.args.interval * 1000));
        let mut tick = tokio::time::interval_at(
            tokio::time::Instant::now() + offset,
            Duration::from_secs(self.args.interval),
        );
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Spread the first connections, as a fleet does not start in one instant.
        if self.args.ramp > 0 {
            let n = self.args.agents.max(1) as u64;
            let at = Duration::from_millis(self.args.ramp * 1000 * self.index / n);
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(at) => {}
            }
        }
        let mut first = true;
        loop {
            if !first {
                self.stats.reconnects.fetch_add(1, Ordering::Relaxed);
            }
            first = false;
            match self.session(&mut tick, &stop).await {
                Ok(true) => return,
                Ok(false) => {}
                Err(e) => {
                    self.stats.stream_errors.fetch_add(1, Ordering::Relaxed);
                    if stop.is_cancelled() {
                        return;
                    }
                    eprintln!("pantau-loadgen: {}: {e:#}", self.creds.id);
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    async fn connect(&self) -> Result<IngestClient<Channel>> {
        let tls = ClientTlsConfig::new()
            .ca_certificate(self.ca.clone())
            .identity(self.creds.identity.clone());
        let ch = Channel::from_shared(format!("https://{}", self.args.collector[self.collector]))?
            .local_address(self.source)
            .tls_config(tls)?
            .connect()
            .await
            .context("sambung TLS (TLS connect)")?;
        Ok(IngestClient::new(ch)
            .max_decoding_message_size(pantau_proto::MAX_MESSAGE_BYTES)
            .max_encoding_message_size(pantau_proto::MAX_MESSAGE_BYTES))
    }

    /// One stream. `Ok(true)`: stopped and drained; `Ok(false)`: a
    /// scheduled reconnect.
    async fn session(
        &mut self,
        tick: &mut tokio::time::Interval,
        stop: &CancellationToken,
    ) -> Result<bool> {
        let mut client = self.connect().await?;
        let (tx, rx) = mpsc::channel(MAX_IN_FLIGHT + 2);
        tx.send(self.hello()).await?;
        let mut req = tonic::Request::new(tokio_stream::wrappers::ReceiverStream::new(rx));
        req.metadata_mut().insert(
            pantau_proto::AUTHORIZATION,
            format!("Bearer {}", self.creds.token).parse()?,
        );
        let mut inbound = client.stream(req).await?.into_inner();
        let welcome = match inbound.message().await? {
            Some(pb::CollectorMessage {
                msg: Some(pb::collector_message::Msg::Welcome(w)),
            }) => w,
            other => bail!("bukan Welcome (expected Welcome): {other:?}"),
        };
        if welcome.epoch == self.epoch {
            self.ack(welcome.committed_seq);
        }
        let batch_max = match welcome.max_batch_results as usize {
            0 => self.args.batch_max,
            n => n.min(self.args.batch_max),
        };
        let mut cursor = self.acked;
        let mut in_flight: VecDeque<InFlight> = VecDeque::new();
        let mut pause_until: Option<tokio::time::Instant> = None;
        let reconnect = (self.args.reconnect_every > 0)
            .then(|| tokio::time::Instant::now() + Duration::from_secs(self.args.reconnect_every));
        let far = tokio::time::Instant::now() + Duration::from_secs(86_400 * 365);
        let mut drain_deadline: Option<tokio::time::Instant> = None;
        loop {
            // Send what the queue holds beyond the cursor, as the in-flight bound allows.
            while in_flight.len() < MAX_IN_FLIGHT
                && pause_until.is_none_or(|t| tokio::time::Instant::now() >= t)
                && drain_deadline.is_none()
            {
                let front = self.queue.front().map_or(self.next_seq, |r| r.seq);
                let skip = (cursor + 1).saturating_sub(front) as usize;
                let results: Vec<pb::Result> = self
                    .queue
                    .iter()
                    .skip(skip)
                    .take(batch_max)
                    .cloned()
                    .collect();
                let Some(last) = results.last().map(|r| r.seq) else {
                    break;
                };
                let msg = pb::AgentMessage {
                    msg: Some(pb::agent_message::Msg::Batch(pb::ResultBatch { results })),
                };
                tx.send(msg)
                    .await
                    .context("stream keluar tertutup (outbound stream closed)")?;
                cursor = last;
                in_flight.push_back(InFlight {
                    last,
                    sent: Instant::now(),
                });
            }
            if drain_deadline
                .is_some_and(|d| in_flight.is_empty() || tokio::time::Instant::now() >= d)
            {
                return Ok(true);
            }
            tokio::select! {
                _ = stop.cancelled(), if drain_deadline.is_none() => {
                    drain_deadline = Some(tokio::time::Instant::now() + Duration::from_secs(30));
                }
                _ = tick.tick(), if drain_deadline.is_none() => self.produce(),
                _ = tokio::time::sleep_until(reconnect.unwrap_or(far)), if reconnect.is_some() && drain_deadline.is_none() => {
                    return Ok(false);
                }
                _ = tokio::time::sleep_until(pause_until.unwrap_or(far)), if pause_until.is_some() => {
                    pause_until = None;
                }
                _ = tokio::time::sleep_until(drain_deadline.unwrap_or(far)), if drain_deadline.is_some() => {}
                m = inbound.message() => match m? {
                    None => bail!("kolektor menutup stream (the collector closed the stream)"),
                    Some(pb::CollectorMessage { msg: Some(pb::collector_message::Msg::Ack(a)) }) => {
                        if a.epoch == self.epoch {
                            let now = Instant::now();
                            let warm_at = *self.stats.warm_at.lock().expect("warm_at");
                            let mut lat = Vec::new();
                            while in_flight.front().is_some_and(|b| b.last <= a.up_to_seq) {
                                let b = in_flight.pop_front().expect("front");
                                if warm_at.is_none_or(|w| b.sent >= w) {
                                    lat.push(now.duration_since(b.sent).as_micros().min(u32::MAX as u128) as u32);
                                }
                            }
                            self.stats.batches.fetch_add(lat.len() as u64, Ordering::Relaxed);
                            self.stats.latencies.lock().expect("latencies").extend(lat);
                            self.ack(a.up_to_seq);
                        }
                    }
                    Some(pb::CollectorMessage { msg: Some(pb::collector_message::Msg::Backoff(b)) }) => {
                        self.stats.backoffs.fetch_add(1, Ordering::Relaxed);
                        pause_until = Some(tokio::time::Instant::now() + Duration::from_millis(b.delay_ms.min(60_000)));
                    }
                    Some(_) => {}
                },
            }
        }
    }
}
