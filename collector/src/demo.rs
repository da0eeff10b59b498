//! `pantau-collector demo`: a collector on a fresh data directory plus a local
//! agent for a demo OPD, so a newcomer sees data flow within seconds.

use std::net::SocketAddr;
use std::path::PathBuf;

use pantau_agent::config::{
    RawAgent, RawCollector, RawConfig as AgentRaw, RawDefaults, RawSpool, RawTarget,
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::CollectorConfig;
use crate::store::{self, Registry, SqliteStore};

/// Demo options.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Where to keep data; a new temporary directory when `None`.
    pub data_dir: Option<PathBuf>,
    /// gRPC address.
    pub grpc_listen: SocketAddr,
    /// HTTP address.
    pub http_listen: SocketAddr,
    /// Leave out the default internet targets.
    pub offline: bool,
}

fn target(id: &str, group: &str, kind: &str, address: String, label: &str) -> RawTarget {
    RawTarget {
        id: Some(id.into()),
        group: Some(group.into()),
        kind: Some(kind.into()),
        address: Some(address),
        label: Some(label.into()),
        ..RawTarget::default()
    }
}

/// The demo agent's targets: local ones always, internet ones unless offline.
pub fn demo_targets(grpc: SocketAddr, http: SocketAddr, offline: bool) -> Vec<RawTarget> {
    let mut t = vec![
        target(
            "loopback",
            "intranet",
            "icmp",
            "127.0.0.1".into(),
            "Loopback (ICMP)",
        ),
        target(
            "collector-grpc",
            "datacenter",
            "tcp",
            format!("127.0.0.1:{}", grpc.port()),
            "Kolektor gRPC (TCP)",
        ),
        target(
            "collector-web",
            "app",
            "http",
            format!("http://127.0.0.1:{}/healthz", http.port()),
            "Kolektor web (HTTP)",
        ),
    ];
    if !offline {
        t.push(target(
            "cloudflare-dns",
            "internet",
            "icmp",
            "1.1.1.1".into(),
            "Cloudflare 1.1.1.1",
        ));
        t.push(target(
            "google-dns",
            "internet",
            "icmp",
            "8.8.8.8".into(),
            "Google 8.8.8.8",
        ));
        t.push(target(
            "google-web",
            "internet",
            "http",
            "https://www.google.com/generate_204".into(),
            "Google HTTPS",
        ));
        let mut dns = target(
            "resolve-google",
            "internet",
            "dns",
            "www.google.com".into(),
            "DNS www.google.com via 8.8.8.8",
        );
        dns.settings.dns.server = Some("8.8.8.8:53".into());
        t.push(dns);
    }
    t
}

/// The demo agent's key and client certificate, issued by the built-in CA
/// and recorded like `agent issue-cert` does: `(cert, key)` paths in
/// `data_dir`.
fn demo_agent_cert(data_dir: &std::path::Path) -> anyhow::Result<(PathBuf, PathBuf)> {
    use crate::store::ClientCerts as _;
    let (key_pem, csr_pem) = pantau_agent::identity::new_key_and_csr("demo-agent")?;
    let issued = crate::mtls::issue_client_cert(
        &crate::tls::CaFiles::in_data_dir(data_dir),
        &csr_pem,
        "demo-agent",
        crate::mtls::DEFAULT_CLIENT_VALIDITY,
    )?;
    SqliteStore::open(data_dir)?.record_client_cert(
        "demo-agent",
        &issued.serial,
        crate::store::now_ms(),
        issued.not_after_ms,
    )?;
    let (cert, key) = (
        data_dir.join("demo-agent.crt"),
        data_dir.join("demo-agent.key"),
    );
    pantau_agent::identity::write_atomic(&key, &key_pem, 0o600)?;
    pantau_agent::identity::write_atomic(&cert, &issued.pem, 0o644)?;
    Ok((cert, key))
}

/// Run the demo until `shutdown`.
pub async fn run(opts: DemoOptions, shutdown: CancellationToken) -> anyhow::Result<()> {
    let data_dir = match opts.data_dir {
        Some(d) => d,
        None => std::env::temp_dir().join(format!(
            "pantau-demo-{}",
            chrono::Utc::now().format("%Y%m%dT%H%M%S")
        )),
    };
    if data_dir.join(store::DB_FILE).exists() {
        anyhow::bail!(
            "{} already holds a Pantau database; the demo needs a fresh directory",
            data_dir.display()
        );
    }
    let token = crate::auth::new_token();
    {
        let s = SqliteStore::open(&data_dir)?;
        s.add_opd("demo", "OPD Demo (Dinas Komunikasi dan Informatika)")?;
        s.add_agent("demo-agent", "demo", &crate::auth::digest(&token))?;
    }
    // The first admin, as `serve` makes it on a fresh directory; printed below.
    let admin_password =
        crate::web::auth::bootstrap(&SqliteStore::open(&data_dir)?, &data_dir)?.unwrap_or_default();
    let grpc = TcpListener::bind(opts.grpc_listen).await?;
    let http = TcpListener::bind(opts.http_listen).await?;
    let (g, h) = (grpc.local_addr()?, http.local_addr()?);
    let mut cfg = CollectorConfig::defaults();
    cfg.data_dir.clone_from(&data_dir);
    cfg.grpc_listen = g;
    cfg.http_listen = h;

    // The built-in CA before the agent's configuration names its certificate.
    let ca = crate::tls::ca_init(&data_dir, &[], true)?;
    let (cert, key) = demo_agent_cert(&data_dir)?;
    let agent_cfg = AgentRaw {
        agent: RawAgent {
            id: Some("demo-agent".into()),
            heartbeat_interval: Some("10s".into()),
            ..RawAgent::default()
        },
        collector: RawCollector {
            // TLS on loopback with the built-in CA, like any other agent.
            url: Some(format!("https://{g}")),
            token: Some(token),
            ca: Some(crate::tls::CaFiles::in_data_dir(&data_dir).ca_cert()),
            // Mutual TLS like any other agent: its own key and certificate.
            cert: Some(cert),
            key: Some(key),
            ..RawCollector::default()
        },
        spool: RawSpool {
            dir: Some(data_dir.join("agent-spool")),
            ..RawSpool::default()
        },
        defaults: RawDefaults {
            interval: Some("10s".into()),
            timeout: Some("3s".into()),
            icmp_count: Some(5),
        },
        bandwidth: Default::default(),
        targets: demo_targets(g, h, opts.offline),
    }
    .validate("demo".into())
    .map_err(|p| anyhow::anyhow!("demo agent config is invalid: {p:?}"))?;

    println!("pantau-collector listening grpc={g} http={h}");
    println!("Pantau demo berjalan / running");
    println!("  Halaman web / web page : http://{h}/");
    println!(
        "  Masuk / log in         : admin / {admin_password} (sekali pakai / one-time; ganti / change: pantau-collector user passwd admin)"
    );
    println!("  Metrik / metrics       : http://{h}/metrics");
    println!("  API                    : http://{h}/api/v1/targets");
    println!("  Data                   : {}", data_dir.display());
    println!("  gRPC TLS, CA SHA-256   : {}", ca.fingerprint);
    println!("Tekan Ctrl+C untuk berhenti / press Ctrl+C to stop.");

    let server = tokio::spawn(crate::serve(cfg, grpc, http, shutdown.clone()));
    let agent = tokio::spawn(pantau_agent::run(agent_cfg, shutdown.clone()));
    let (s, a) = tokio::join!(server, agent);
    s??;
    a??;
    Ok(())
}
