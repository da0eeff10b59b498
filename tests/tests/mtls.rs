//! Mutual TLS on the agents' gRPC port: client certificates issued at
//! enrolment (or by `agent issue-cert`), checked at the handshake (chain,
//! expiry, revocation) and bound to the bearer token's agent.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::enrol::{CodeFrom, enroll_agent};
use common::*;
use pantau_proto::v1 as pb;

/// A TLS client of the collector at `grpc` trusting `ca`, with a client
/// certificate when `identity` is given; asks Renew with `token`.
async fn renew_with(
    grpc: std::net::SocketAddr,
    ca: &Path,
    identity: Option<(&Path, &Path)>,
    token: &str,
) -> Result<pb::RenewReply, String> {
    let mut tls = tonic::transport::ClientTlsConfig::new().ca_certificate(
        tonic::transport::Certificate::from_pem(std::fs::read(ca).unwrap()),
    );
    if let Some((cert, key)) = identity {
        tls = tls.identity(tonic::transport::Identity::from_pem(
            std::fs::read(cert).unwrap(),
            std::fs::read(key).unwrap(),
        ));
    }
    let channel = tonic::transport::Channel::from_shared(format!("https://{grpc}"))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect()
        .await
        .map_err(|e| format!("connect: {e:?}"))?;
    let (_, csr) = pantau_agent::identity::new_key_and_csr("x").unwrap();
    let mut req = tonic::Request::new(pb::RenewRequest { csr_pem: csr });
    req.metadata_mut().insert(
        pantau_proto::AUTHORIZATION,
        format!("Bearer {token}").parse().unwrap(),
    );
    pb::ingest_client::IngestClient::new(channel)
        .renew(req)
        .await
        .map(tonic::Response::into_inner)
        .map_err(|s| format!("status {:?}: {}", s.code(), s.message()))
}

/// A refusal at the TLS handshake: with TLS 1.3 the client learns it at
/// its first request (connection closed or reset), never as a status the
/// ingest service sends (UNAUTHENTICATED).
fn at_handshake(e: &str) -> bool {
    !e.contains("Unauthenticated")
}

fn log_has(log: &Path, needle: &str) -> bool {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .to_lowercase()
        .contains(&needle.to_lowercase())
}

fn wait_log(log: &Path, needle: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !log_has(log, needle) {
        assert!(
            std::time::Instant::now() < deadline,
            "no `{needle}` in the collector log:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_handshake_and_the_token_binding_refuse_every_wrong_certificate() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let token_a = enrol(&data, "dinkes", "dinkes-a");
    let token_b = {
        let out = collector_cmd(
            &data,
            &[
                "agent",
                "add",
                "dinkes-b",
                "--opd",
                "dinkes",
                "--print-token",
            ],
        );
        out.trim().to_string()
    };
    let log = tmp.path().join("collector.log");
    let c = Collector::start_logged(&data, &log, false);
    let ca = c.ca();
    let certs = tmp.path().join("certs");
    std::fs::create_dir_all(&certs).unwrap();
    let (cert_a, key_a) = issue_client_cert(&data, &certs, "dinkes-a");

    // The right certificate and token: served (Renew answers a certificate).
    let ok = renew_with(c.grpc, &ca, Some((&cert_a, &key_a)), &token_a)
        .await
        .expect("agent A with its own certificate and token");
    assert!(ok.cert_pem.contains("BEGIN CERTIFICATE"));

    // No certificate: the token alone is refused (certificates are required).
    let e = renew_with(c.grpc, &ca, None, &token_a).await.unwrap_err();
    assert!(
        e.contains("Unauthenticated") && e.contains("client certificate is required"),
        "{e}"
    );
    wait_log(&log, "no_client_cert");

    // Agent A's certificate with agent B's token.
    let e = renew_with(c.grpc, &ca, Some((&cert_a, &key_a)), &token_b)
        .await
        .unwrap_err();
    assert!(
        e.contains("Unauthenticated") && e.contains("different agents"),
        "{e}"
    );
    wait_log(&log, "client certificate and token name different agents");

    // A certificate from another CA: refused at the handshake.
    let other = tmp.path().join("other");
    collector_cmd(&other, &["opd", "add", "dinkes", "--name", "D"]);
    collector_cmd(
        &other,
        &[
            "agent",
            "add",
            "dinkes-a",
            "--opd",
            "dinkes",
            "--print-token",
        ],
    );
    let other_certs = tmp.path().join("other-certs");
    std::fs::create_dir_all(&other_certs).unwrap();
    let (cert_x, key_x) = issue_client_cert(&other, &other_certs, "dinkes-a");
    let e = renew_with(c.grpc, &ca, Some((&cert_x, &key_x)), &token_a)
        .await
        .unwrap_err();
    assert!(at_handshake(&e), "not refused at the handshake: {e}");
    wait_log(&log, "TLS handshake refused");
    // Same CA name, other key: webpki reports a bad signature.
    wait_log(&log, "invalid peer certificate: BadSignature");

    // An expired certificate: refused at the handshake.
    let expired_dir = tmp.path().join("expired");
    std::fs::create_dir_all(&expired_dir).unwrap();
    let (key_pem, csr) = pantau_agent::identity::new_key_and_csr("dinkes-a").unwrap();
    let (key_e, csr_e, cert_e) = (
        expired_dir.join("a.key"),
        expired_dir.join("a.csr"),
        expired_dir.join("a.crt"),
    );
    std::fs::write(&key_e, key_pem).unwrap();
    std::fs::write(&csr_e, csr).unwrap();
    collector_cmd(
        &data,
        &[
            "agent",
            "issue-cert",
            "dinkes-a",
            "--validity",
            "1s",
            "--csr",
            csr_e.to_str().unwrap(),
            "--out",
            cert_e.to_str().unwrap(),
        ],
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let e = renew_with(c.grpc, &ca, Some((&cert_e, &key_e)), &token_a)
        .await
        .unwrap_err();
    assert!(
        at_handshake(&e),
        "expired certificate not refused at the handshake: {e}"
    );
    wait_log(&log, "expired");

    // A revoked agent's certificate: refused at the handshake once the
    // collector has refreshed its view (every 2 s).
    collector_cmd(&data, &["agent", "revoke", "dinkes-a"]);
    let e = wait_for_async(|| renew_with(c.grpc, &ca, Some((&cert_a, &key_a)), &token_a)).await;
    assert!(
        at_handshake(&e),
        "revoked agent's certificate not refused at the handshake: {e}"
    );
    wait_log(&log, "agent revoked");
}

/// Retry `f` until it fails at the handshake (not with a gRPC status).
async fn wait_for_async<F, Fut>(mut f: F) -> String
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<pb::RenewReply, String>>,
{
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        match f().await {
            Err(e) if at_handshake(&e) => return e,
            other => assert!(
                std::time::Instant::now() < deadline,
                "still not refused at the handshake: {other:?}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

fn stored_results(c: &Collector, agent: &str) -> usize {
    let (code, body) = c.get(&format!(
        "/api/v1/results?agent={agent}&from=2000-01-01T00:00:00Z&to=2100-01-01T00:00:00Z"
    ));
    if code != 200 {
        return 0;
    }
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    v["results"].as_array().map_or(0, Vec::len)
}

#[test]
fn a_code_enrols_an_agent_with_its_own_key_and_certificate_and_results_flow_over_mtls() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    collector_cmd(&data, &["opd", "add", "dinkes", "--name", "Dinkes"]);
    let code = collector_cmd(&data, &["agent", "add", "dinkes-1", "--opd", "dinkes"]);
    let log = tmp.path().join("collector.log");
    let c = Collector::start_logged(&data, &log, false);
    let fp = collector_cmd(&data, &["ca", "show"])
        .lines()
        .nth(1)
        .unwrap()
        .to_string();
    let dir = tmp.path().join("agent");
    let out = enroll_agent(
        &format!("https://{}", c.grpc),
        &fp,
        &dir,
        CodeFrom::File(code.trim()),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (cert, key): (PathBuf, PathBuf) = (dir.join("etc/agent.crt"), dir.join("etc/agent.key"));
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    let pem = std::fs::read_to_string(&cert).unwrap();
    assert!(pem.contains("BEGIN CERTIFICATE"));
    let text = std::fs::read_to_string(dir.join("etc/agent.toml")).unwrap();
    assert!(
        text.contains("cert = ") && text.contains("key = "),
        "{text}"
    );
    wait_log(&log, "client certificate issued");
    // A quick target so results arrive fast.
    let port = open_port();
    let text = format!(
        "{text}\n[[targets]]\nid = \"cepat\"\ngroup = \"app\"\nkind = \"tcp\"\naddress = \"127.0.0.1:{port}\"\ninterval = \"1s\"\ntimeout = \"500ms\"\n"
    );
    std::fs::write(dir.join("etc/agent.toml"), text).unwrap();
    let _agent = start_agent(&dir.join("etc/agent.toml"));
    wait_for("results over mutual TLS", Duration::from_secs(60), || {
        (stored_results(&c, "dinkes-1") >= 2).then_some(())
    });
}

/// Seqs of `agent`'s results in the collector's database.
fn stored_seqs(data: &Path, agent: &str) -> Vec<i64> {
    let db = rusqlite::Connection::open(data.join("pantau.db")).unwrap();
    db.busy_timeout(Duration::from_secs(10)).unwrap();
    let mut st = db
        .prepare("SELECT seq FROM result WHERE agent_id = ?1 ORDER BY seq")
        .unwrap();
    st.query_map([agent], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// 1..=n without a gap: nothing lost.
fn complete(seqs: &[i64]) -> bool {
    seqs.iter().copied().eq(1..=seqs.len() as i64)
}

/// A log line holding every one of `parts`.
fn logged(log: &Path, parts: &[&str]) -> bool {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .any(|l| parts.iter().all(|p| l.contains(p)))
}

/// Agent `id` of `data` with a first certificate valid `validity` (key
/// and certificate in `dir`, where `agent_config` picks them up), a fast
/// TCP target, and its configuration.
fn agent_with_cert(c: &Collector, dir: &Path, id: &str, token: &str, validity: &str) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let (key_pem, csr_pem) = pantau_agent::identity::new_key_and_csr(id).unwrap();
    let (key, csr, cert) = (
        dir.join(format!("{id}.key")),
        dir.join(format!("{id}.csr")),
        dir.join(format!("{id}.crt")),
    );
    pantau_agent::identity::write_atomic(&key, &key_pem, 0o600).unwrap();
    std::fs::write(&csr, csr_pem).unwrap();
    collector_cmd(
        &c.data_dir,
        &[
            "agent",
            "issue-cert",
            id,
            "--validity",
            validity,
            "--csr",
            csr.to_str().unwrap(),
            "--out",
            cert.to_str().unwrap(),
        ],
    );
    let port = open_port();
    let rest = format!(
        "[defaults]\ninterval = \"1s\"\ntimeout = \"900ms\"\n\n[[targets]]\nid = \"cepat\"\n\
         group = \"datacenter\"\nkind = \"tcp\"\naddress = \"127.0.0.1:{port}\"\n"
    );
    agent_config(dir, id, &c.grpc.to_string(), token, "", &rest)
}

/// Renewal end to end: a first certificate of 45 s is due after 30 s; the
/// agent renews it over its authenticated connection (the collector's
/// `[tls] client_cert_validity` gives the new one 10 minutes), keeps
/// delivering with nothing lost, and the old certificate is refused at the
/// handshake as superseded (before it would expire).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_renews_its_certificate_keeps_delivering_and_the_old_one_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let token = enrol(&data, "dinkes", "dinkes-1");
    let conf = tmp.path().join("collector.toml");
    std::fs::write(&conf, "[tls]\nclient_cert_validity = \"10m\"\n").unwrap();
    let log = tmp.path().join("collector.log");
    let c = Collector::start_logged_with(&data, &log, &conf);
    let dir = tmp.path().join("agent");
    let cfg = agent_with_cert(&c, &dir, "dinkes-1", &token, "45s");
    let (cert, key) = (dir.join("dinkes-1.crt"), dir.join("dinkes-1.key"));
    let old = tmp.path().join("old.crt");
    std::fs::copy(&cert, &old).unwrap();
    let agent_log = tmp.path().join("agent.log");
    let _agent = start_agent_logged(&cfg, &agent_log);

    let before = tokio::task::block_in_place(|| {
        wait_for("results before renewal", Duration::from_secs(30), || {
            let s = stored_seqs(&data, "dinkes-1");
            (s.len() >= 3).then_some(s.len())
        });
        wait_for("the renewal", Duration::from_secs(60), || {
            log_has(&agent_log, "client certificate renewed").then_some(())
        });
        stored_seqs(&data, "dinkes-1").len()
    });
    let new_pem = std::fs::read_to_string(&cert).unwrap();
    assert_ne!(new_pem, std::fs::read_to_string(&old).unwrap());
    let (_, until) = pantau_agent::identity::validity(&new_pem).unwrap();
    let left = until - now_ms() / 1000;
    assert!(
        (540..=600).contains(&left),
        "the configured 10m: {left} s left"
    );
    tokio::task::block_in_place(|| {
        wait_log(
            &log,
            "renewed client certificate in use; older certificates superseded",
        );
        wait_for(
            "delivery after the renewal",
            Duration::from_secs(30),
            || (stored_seqs(&data, "dinkes-1").len() >= before + 3).then_some(()),
        );
    });

    // The old certificate (same key, old serial) is refused at the handshake.
    let ca = c.ca();
    let e = wait_for_async(|| renew_with(c.grpc, &ca, Some((&old, &key)), &token)).await;
    assert!(at_handshake(&e), "{e}");
    tokio::task::block_in_place(|| {
        wait_for("the refusal logged", Duration::from_secs(20), || {
            logged(
                &log,
                &[
                    "client certificate refused at the TLS handshake",
                    "dinkes-1",
                    "revoked or superseded",
                ],
            )
            .then_some(())
        })
    });
    // The new one still works, and nothing was lost.
    renew_with(c.grpc, &ca, Some((&cert, &key)), &token)
        .await
        .expect("the renewed certificate is accepted");
    let seqs = stored_seqs(&data, "dinkes-1");
    assert!(complete(&seqs), "gaps in {seqs:?}");
}

/// `agent revoke` closes the running agent's open stream within seconds;
/// its next connection (the agent restarted, instead of waiting out its
/// backoff) is refused at the TLS handshake, both logged by the collector.
#[test]
fn revoking_an_agent_closes_its_stream_and_refuses_its_certificate_at_the_handshake() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let token = enrol(&data, "dinkes", "dinkes-1");
    let log = tmp.path().join("collector.log");
    let c = Collector::start_logged(&data, &log, false);
    let dir = tmp.path().join("agent");
    let cfg = agent_with_cert(&c, &dir, "dinkes-1", &token, "30d");
    let agent_log = tmp.path().join("agent.log");
    let mut agent = start_agent_logged(&cfg, &agent_log);
    wait_for("results over mutual TLS", Duration::from_secs(30), || {
        (stored_seqs(&data, "dinkes-1").len() >= 2).then_some(())
    });

    collector_cmd(&data, &["agent", "revoke", "dinkes-1"]);
    wait_for("the open stream closed", Duration::from_secs(10), || {
        logged(
            &log,
            &["closing the agent's open stream", "dinkes-1", "revoked"],
        )
        .then_some(())
    });
    let seqs = stored_seqs(&data, "dinkes-1");
    assert!(complete(&seqs), "gaps in {seqs:?}");
    agent.terminate();
    let authenticated = || {
        std::fs::read_to_string(&log)
            .unwrap()
            .lines()
            .filter(|l| l.contains("agent authenticated"))
            .count()
    };
    let before = authenticated();
    let _agent = start_agent_logged(&cfg, &agent_log);
    wait_for("the handshake refusal", Duration::from_secs(30), || {
        logged(
            &log,
            &[
                "client certificate refused at the TLS handshake",
                "dinkes-1",
                "revoked",
            ],
        )
        .then_some(())
    });
    // Refused before the ingest saw a token: no new authentication.
    assert_eq!(authenticated(), before);
}
