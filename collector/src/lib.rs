//! Pantau collector: receives agent results over gRPC, stores them in SQLite
//! and serves metrics, a JSON API and pages.
//!
//! - [`config`]: TOML + `PANTAU_COLLECTOR__*` overrides -> validated config.
//! - [`store`]: the storage boundary: traits shaped by their users, the
//!   SQLite backend and its migrations, the conformance suite.
//! - [`ingest`]: the gRPC service, wire validation and the single writer.
//! - [`metrics`]: Prometheus families with bounded labels.
//! - [`web`]: `/metrics`, `/healthz`, `/api/v1/*` (with the agents' bandwidth-test endpoint)
//!   and the overview page.
//! - [`admin`]: the admin actions (OPDs, agents, maintenance, notes, users), one
//!   code path for the CLI and the web console, each with its audit entry.
//! - [`audit`]: the hash-chained audit log of admin actions (record, verify, export).
//! - [`auth`]: agent tokens.
//! - `demo` (feature `demo`): the quickstart (collector + local agent).
//! - [`enrol`]: the standard targets handed to agents by `pantau-agent enroll`.
//! - [`report`]: availability rules, rollups, incidents, signed SPBE reports.
//! - [`cli`]: the one-shot commands (reports, listings, maintenance, notes).
//! - [`remote_write`]: optional Prometheus remote-write export at observation times.
//! - [`net`]: connection caps per source and in total, idle close (HTTP and gRPC ports).
//! - [`lease`]: shared background work when several collectors use one store.
//! - [`process`]: the shutdown signal of the binary.
//! - [`when`]: the one date and time syntax of every command and form.
//!
//! Probe kinds, groups, outcomes, the id rule, config loading and CLI docs come
//! from `pantau_core`; the agent crate is used only by `demo`.
//!
//! [`serve`] opens the store once: ingest, the rollup task, remote write,
//! the API and the report pages share that one `Arc<dyn Store>`.

pub mod admin;
pub mod audit;
pub mod auth;
pub mod cli;
pub mod config;
#[cfg(feature = "demo")]
pub mod demo;
pub mod enrol;
pub mod fleet;
pub mod ingest;
pub mod lease;
pub mod metrics;
pub mod model;
pub mod mtls;
pub mod net;
pub mod process;
pub mod remote_write;
pub mod report;
pub mod store;
pub mod tls;
pub mod web;
pub mod when;

use std::sync::Arc;

use pantau_proto::v1::ingest_server::IngestServer;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::config::CollectorConfig;
use crate::ingest::IngestService;
use crate::ingest::writer::Writer;
use crate::metrics::Metrics;
use crate::store::report::ReportBackend;
use crate::store::{SharedStore, Store};
use crate::web::AppState;

/// Why the collector stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// Storage could not be opened.
    #[error(transparent)]
    Store(#[from] store::StoreError),
    /// The gRPC server failed.
    #[error("gRPC server: {0}")]
    Grpc(#[from] tonic::transport::Error),
    /// The HTTP server failed.
    #[error("HTTP server: {0}")]
    Http(std::io::Error),
    /// The gRPC port's certificate or key could not be made or loaded.
    #[error("TLS (gRPC): {0}")]
    Tls(#[from] tls::TlsError),
    /// The HTTP port's TLS could not be set up.
    #[error("TLS (HTTP port): {0}")]
    Https(#[from] web::tls::HttpsError),
    /// The first admin account could not be created.
    #[error("first admin: {0}")]
    Bootstrap(web::auth::BootstrapError),
    /// The report signing key could not be loaded.
    #[error("report signing key: {0}")]
    Report(report::sign::IntegrityError),
}

/// Report NOT_SERVING on gRPC health while the store cannot commit, so
/// load balancers and admins see it; agents keep their results meanwhile.
async fn watch_health(
    reporter: tonic_health::server::HealthReporter,
    writer: Writer,
    shutdown: CancellationToken,
) {
    let mut serving = true;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(std::time::Duration::from_millis(250)) => {}
        }
        let now = writer.healthy();
        if now != serving {
            serving = now;
            if now {
                info!("store writable again; gRPC health SERVING");
                reporter.set_serving::<IngestServer<IngestService>>().await;
            } else {
                tracing::error!(
                    "store cannot commit; gRPC health NOT_SERVING, agents keep spooling"
                );
                reporter
                    .set_not_serving::<IngestServer<IngestService>>()
                    .await;
            }
        }
    }
}

/// The gRPC port's TLS: the configured certificate, or the built-in CA's
/// (made on first start when absent); `None` only with `tls.insecure`.
pub fn grpc_tls(cfg: &CollectorConfig) -> Result<Option<tokio_rustls::TlsAcceptor>, ServeError> {
    let builtin = cfg.tls.cert_key.is_none();
    grpc_tls_with(cfg, &Arc::new(mtls::Revocations::new(builtin)))
}

/// [`grpc_tls`] checking client certificates against `revocations`.
pub fn grpc_tls_with(
    cfg: &CollectorConfig,
    revocations: &Arc<mtls::Revocations>,
) -> Result<Option<tokio_rustls::TlsAcceptor>, ServeError> {
    if cfg.tls.insecure {
        tracing::warn!(
            "TIDAK AMAN / INSECURE: gRPC tanpa TLS ([tls] insecure = true); token dan hasil \
             agen terbaca di jaringan / plaintext gRPC: agent tokens and results are readable \
             on the network"
        );
        return Ok(None);
    }
    let (cert, key, ca, client_ca) = match &cfg.tls.cert_key {
        Some((c, k)) => (c.clone(), k.clone(), None, cfg.tls.client_ca.clone()),
        None => {
            let files = tls::CaFiles::in_data_dir(&cfg.data_dir);
            let mut names = cfg.tls.names.clone();
            let ip = cfg.grpc_listen.ip();
            if !ip.is_unspecified() {
                names.push(ip.to_string());
            }
            if let Some(why) = tls::server_cert_stale(&files, &names) {
                let info = tls::ca_init(&cfg.data_dir, &names, true)?;
                info!(
                    ca = %files.ca_cert().display(),
                    fingerprint = %info.fingerprint,
                    names = ?info.names,
                    reason = why,
                    "built-in CA: server certificate issued"
                );
            }
            // The CA goes at the end of the chain: agents pin it by fingerprint.
            (
                files.server_cert(),
                files.server_key(),
                Some(files.ca_cert()),
                Some(files.ca_cert()),
            )
        }
    };
    let (chain, private) = mtls::load_chain(&cert, &key, ca.as_deref())?;
    let client = client_ca.map(|ca_file| mtls::ClientAuth {
        ca_file,
        mode: cfg.tls.client_certs,
        revocations: Arc::clone(revocations),
    });
    if cfg.tls.client_certs == mtls::ClientCertMode::Optional {
        tracing::warn!(
            "KURANG AMAN / WEAKER: [tls] client_certs = \"optional\": agen boleh masuk hanya \
             dengan token / agents may connect with a token alone (no client certificate); \
             a stolen token is then enough to pose as an agent"
        );
    }
    let config = mtls::server_config(chain, private, client.as_ref())?;
    info!(cert = %cert.display(), client_certs = ?cfg.tls.client_certs, "gRPC serves TLS");
    Ok(Some(ingest::server::tls_config(config)))
}

/// The HTTP port's TLS ([`config::TlsConfig::https_on`]): the same
/// certificate and key as the gRPC port, the built-in CA's made when absent
/// (with `[tls] insecure` gRPC has not made them). `None`: plain HTTP.
pub fn http_tls(
    cfg: &CollectorConfig,
    http: std::net::SocketAddr,
) -> Result<Option<tokio_rustls::TlsAcceptor>, ServeError> {
    if !cfg.tls.https_on(http) {
        if !http.ip().is_loopback() {
            tracing::warn!(
                http = %http,
                "TIDAK AMAN / INSECURE: port HTTP tanpa TLS ([tls] https = false) di alamat \
                 non-loopback / plaintext HTTP port off loopback: agent tokens of bandwidth \
                 tests are readable on the network"
            );
        }
        return Ok(None);
    }
    let (cert, key) = match &cfg.tls.cert_key {
        Some((c, k)) => (c.clone(), k.clone()),
        None => {
            let files = tls::CaFiles::in_data_dir(&cfg.data_dir);
            if !files.server_cert().exists() || !files.server_key().exists() {
                let mut names = cfg.tls.names.clone();
                if !http.ip().is_unspecified() {
                    names.push(http.ip().to_string());
                }
                tls::ca_init(&cfg.data_dir, &names, true)?;
            }
            let ip = http.ip();
            if !ip.is_unspecified()
                && !ip.is_loopback()
                && ip != cfg.grpc_listen.ip()
                && !cfg.tls.names.contains(&ip.to_string())
            {
                tracing::warn!(
                    http = %http,
                    "the built-in certificate may not name the HTTP port's address: add it to \
                     [tls] names so agents' https:// bandwidth tests verify it"
                );
            }
            (files.server_cert(), files.server_key())
        }
    };
    let acceptor = web::tls::acceptor(&cert, &key)?;
    info!(cert = %cert.display(), http = %http, "HTTP port serves HTTPS");
    Ok(Some(acceptor))
}

/// Serve on already-bound listeners until `shutdown` is cancelled.
// Long: wires every part (store, writer, TLS and client certificates,
// ingest, web, background tasks) in start order, then shuts them down in reverse.
pub async fn serve(
    cfg: CollectorConfig,
    grpc: TcpListener,
    http: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), ServeError> {
    // One store for everyone: the writer thread, the rollup task, remote
    // write, the API and the report pages. Writes queue on its one writer,
    // reads come from its reader pool.
    // Opened off the async workers: a PostgreSQL client blocks on its own
    // runtime while it connects and migrates.
    let (url, dir) = (cfg.store_url.clone(), cfg.data_dir.clone());
    let opened: Arc<dyn Store> =
        tokio::task::spawn_blocking(move || crate::store::open_store(url.as_deref(), &dir))
            .await
            .map_err(|e| crate::store::StoreError::NotStored(format!("open task failed: {e}")))??;
    let store = SharedStore::new(opened);
    // Before the writer stores anything, so no result escapes the queue.
    let enabled = cfg.remote_write.is_some();
    let dropped = store.with(move |s| s.export_prepare(enabled)).await?;
    if dropped > 0 {
        tracing::warn!(
            results = dropped,
            "remote_write disabled; results still queued for it were dropped from the queue"
        );
    }
    let metrics = Arc::new(Metrics::new());
    metrics.set_per_target(cfg.web.metrics_per_target);
    let http_counters = metrics.port_counters("http");
    let seeded = {
        let m = Arc::clone(&metrics);
        store
            .with(move |s| metrics::seed::from_store(&m, s))
            .await?
    };
    info!(agents = seeded, "metrics seeded from the store");
    // Rollups, retention and remote write are done by one collector at a
    // time when several share the store (lease.rs).
    let leaser = Arc::new(lease::Leaser::new(
        Arc::clone(store.store()),
        cfg.cluster.node_name(&cfg.data_dir),
        &cfg.cluster,
        Some(metrics.registry()),
    ));
    info!(node = %leaser.node(), "shared background work taken by lease");
    if let Some(rw) = cfg.remote_write.clone() {
        let counters = remote_write::Counters::register(metrics.registry());
        tokio::spawn(remote_write::run(
            rw,
            store.clone(),
            Arc::clone(&leaser),
            counters,
            shutdown.clone(),
        ));
    }
    let (writer, writer_thread) = Writer::spawn(
        Arc::clone(store.store()),
        Arc::clone(&metrics),
        cfg.write_queue,
    );

    let svc = IngestService::new(
        store.clone(),
        writer.clone(),
        Arc::clone(&metrics),
        cfg.hello_timeout,
        cfg.max_batch_results,
        cfg.max_result_age.as_millis() as i64,
        shutdown.clone(),
    )
    .with_enrol_targets(cfg.enrol_targets.clone());
    let (health, health_svc) = tonic_health::server::health_reporter();
    health.set_serving::<IngestServer<IngestService>>().await;
    tokio::spawn(watch_health(health, writer.clone(), shutdown.clone()));
    let revocations = Arc::new(mtls::Revocations::new(cfg.tls.cert_key.is_none()));
    revocations
        .refresh(&store)
        .await
        .map_err(ServeError::Store)?;
    tokio::spawn(mtls::refresh_task(
        store.clone(),
        Arc::clone(&revocations),
        shutdown.clone(),
    ));
    let grpc_tls = grpc_tls_with(&cfg, &revocations)?;
    let svc = svc
        .with_config_key(
            report::sign::load_or_create_key_at(&cfg.data_dir.join(fleet::KEY_FILE))
                .map_err(ServeError::Report)?,
        )
        .with_enrol_ca(tls::enrol_ca_pem(&cfg))
        .with_client_certs((!cfg.tls.insecure).then(|| {
            ingest::CertPolicy {
                mode: cfg.tls.client_certs,
                revocations: Arc::clone(&revocations),
                issuer: cfg
                    .tls
                    .cert_key
                    .is_none()
                    .then(|| tls::CaFiles::in_data_dir(&cfg.data_dir)),
                validity: cfg.tls.client_cert_validity,
            }
        }));
    let grpc_server = ingest::server::serve(
        svc,
        health_svc,
        grpc,
        cfg.grpc_limits,
        metrics.port_counters("grpc"),
        grpc_tls,
        shutdown.clone(),
    );
    let settings = Arc::new(report::Settings::from_config(&cfg));
    let key =
        report::sign::load_or_create_key_at(&cfg.signing_key_path()).map_err(ServeError::Report)?;
    let rollups: Arc<dyn ReportBackend> = store.store().clone();
    tokio::spawn(report::rollup_task(
        rollups,
        Arc::clone(&leaser),
        Arc::clone(&settings),
        cfg.report.raw_retention.as_millis() as i64,
        cfg.cluster.work_every,
        shutdown.clone(),
        Some(metrics::availability::Availability::register(
            metrics.registry(),
        )),
    ));
    let http_tls = http_tls(&cfg, http.local_addr().map_err(ServeError::Http)?)?;
    let auth = web::auth::AuthState::new(
        store.clone(),
        cfg.web.clone(),
        http_tls.is_some(),
        &cfg.data_dir,
    );
    web::auth::bootstrap_logged(&store, &cfg.data_dir)
        .await
        .map_err(ServeError::Bootstrap)?;
    let app = web::router(AppState {
        store: store.clone(),
        metrics,
        writer,
        display: Arc::new(cfg.display.clone()),
        sla_pct: cfg.report.sla_pct,
    })
    .merge(web::report::routes(web::report::ReportWeb {
        store: store.clone(),
        settings,
        public_key: report::sign::public_hex(&key),
        key: Arc::new(key),
    }))
    .merge(web::console::routes(web::console::Console {
        store: store.clone(),
        hint: Arc::new(cli::enrol::EnrolHint::from_config(&cfg)),
        utc_offset_minutes: cfg.display.utc_offset_minutes,
    }))
    .merge(web::auth::routes(auth.clone()))
    .merge(web::oidc::routes(auth.clone()));
    let app = web::auth::protect(app, auth);
    match net::raise_fd_limit() {
        Ok(n) => info!(open_files = n, "file descriptor limit"),
        Err(e) => tracing::warn!(error = %e, "could not raise the open-file limit"),
    }
    let http_server = web::serve(
        app,
        http,
        cfg.http_limits,
        http_counters,
        http_tls,
        shutdown.clone(),
    );
    info!(data_dir = %cfg.data_dir.display(), "pantau-collector serving");
    let (g, h) = tokio::join!(grpc_server, http_server);
    g?;
    h.map_err(ServeError::Http)?;
    // Every sender is gone once both servers stop; the writer drains and exits.
    let _ = tokio::task::spawn_blocking(move || writer_thread.join()).await;
    // Another collector takes the jobs at its next run, not after the TTL.
    let _ = tokio::task::spawn_blocking(move || leaser.release_all()).await;
    info!("pantau-collector stopped");
    Ok(())
}
