//! TLS on the agents' gRPC port: on by default with the built-in CA, never
//! downgraded by the agent, plaintext only when both sides say `insecure`.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;

/// An agent configuration sending to `url` with `collector_extra` lines in
/// `[collector]`; one TCP target with a recognisable id.
fn config(
    dir: &Path,
    url: &str,
    token: &str,
    collector_extra: &str,
    target_id: &str,
) -> std::path::PathBuf {
    let port = open_port();
    // The agent's client certificate, issued by the collector next door
    // (every test keeps its collector's data in `<tmp>/data`).
    let data = dir.parent().unwrap().join("data");
    let collector_extra = if data.join("tls").join("ca.key").exists() || data.exists() {
        let (cert, key) = issue_client_cert(&data, dir, "diskominfo-1");
        format!(
            "{collector_extra}\ncert = \"{}\"\nkey = \"{}\"",
            cert.display(),
            key.display()
        )
    } else {
        collector_extra.to_string()
    };
    let cfg = dir.join("agent.toml");
    std::fs::write(
        &cfg,
        format!(
            "[agent]\nid = \"diskominfo-1\"\nheartbeat_interval = \"1s\"\n\
             [collector]\nurl = \"{url}\"\ntoken = \"{token}\"\n{collector_extra}\n\
             [spool]\ndir = \"{}\"\n\
             [defaults]\ninterval = \"1s\"\ntimeout = \"500ms\"\n\
             [[targets]]\nid = \"{target_id}\"\ngroup = \"app\"\nkind = \"tcp\"\naddress = \"127.0.0.1:{port}\"\n",
            dir.join("spool").display()
        ),
    )
    .unwrap();
    cfg
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
fn default_configuration_streams_over_tls_and_nothing_secret_crosses_in_cleartext() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let token = enrol(&data, "diskominfo", "diskominfo-1");
    // No [tls] section: the collector makes its CA and serves TLS.
    let collector = Collector::start(&data);
    assert!(collector.ca().exists(), "built-in CA not created");
    let (proxy, seen) = recording_proxy(collector.grpc);
    let target_id = "sasaran-rahasia-7391";
    let dir = tmp.path().join("agent");
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = config(
        &dir,
        &format!("https://{proxy}"),
        &token,
        &format!("ca = \"{}\"", collector.ca().display()),
        target_id,
    );
    let _agent = start_agent(&cfg);
    wait_for("results over TLS", Duration::from_secs(60), || {
        (stored_results(&collector, "diskominfo-1") >= 3).then_some(())
    });
    let bytes = seen.lock().unwrap().clone();
    assert!(
        bytes.len() > 1000,
        "the proxy saw only {} bytes",
        bytes.len()
    );
    // A TLS record (handshake, content type 22) opens the connection.
    assert_eq!(bytes[0], 0x16, "first byte is not a TLS handshake record");
    assert!(
        !contains(&bytes, &token),
        "the agent token crossed in cleartext"
    );
    assert!(
        !contains(&bytes, "pantau_"),
        "a token prefix crossed in cleartext"
    );
    assert!(
        !contains(&bytes, target_id),
        "a result's target id crossed in cleartext"
    );
    assert!(
        !contains(&bytes, "diskominfo-1"),
        "the agent id crossed in cleartext"
    );
}

#[test]
fn https_agent_never_falls_back_to_a_plaintext_collector() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let token = enrol(&data, "diskominfo", "diskominfo-1");
    let conf = tmp.path().join("collector.toml");
    std::fs::write(&conf, "[tls]\ninsecure = true\n").unwrap();
    let collector = Collector::start_with(&data, "127.0.0.1:0", "127.0.0.1:0", Some(&conf));
    // The insecure collector made no certificates.
    assert!(!collector.ca().exists());
    let dir = tmp.path().join("agent");
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = config(
        &dir,
        &format!("https://{}", collector.grpc),
        &token,
        "",
        "tcp-a",
    );
    let log = dir.join("agent.log");
    let mut agent = start_agent_logged(&cfg, &log);
    let text = wait_for("the agent's TLS error", Duration::from_secs(30), || {
        let t = std::fs::read_to_string(&log).unwrap_or_default();
        t.contains("never falls back to plaintext").then_some(t)
    });
    assert!(text.contains("collector.url is https://"), "{text}");
    agent.terminate();
    assert_eq!(stored_results(&collector, "diskominfo-1"), 0);
}

#[test]
fn plaintext_needs_insecure_on_both_sides_and_then_works() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let token = enrol(&data, "diskominfo", "diskominfo-1");
    let conf = tmp.path().join("collector.toml");
    std::fs::write(&conf, "[tls]\ninsecure = true\n").unwrap();
    let collector = Collector::start_with(&data, "127.0.0.1:0", "127.0.0.1:0", Some(&conf));
    let dir = tmp.path().join("agent");
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("http://{}", collector.grpc);

    // http:// without insecure: a configuration error naming the key.
    let cfg = config(&dir, &url, &token, "", "tcp-a");
    let out = Command::new(bin("pantau-agent"))
        .arg("run")
        .arg("--config")
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("collector.url"), "{err}");
    assert!(err.contains("collector.insecure = true"), "{err}");

    // Explicitly insecure: works, loudly, and the recording proxy does see
    // the results (the control for the cleartext check of the TLS test).
    let (proxy, seen) = recording_proxy(collector.grpc);
    let target_id = "sasaran-terbuka-5150";
    let cfg = config(
        &dir,
        &format!("http://{proxy}"),
        &token,
        "insecure = true",
        target_id,
    );
    let log = dir.join("agent.log");
    let _agent = start_agent_logged(&cfg, &log);
    wait_for("results over plaintext", Duration::from_secs(60), || {
        (stored_results(&collector, "diskominfo-1") >= 1).then_some(())
    });
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("INSECURE"), "no loud warning: {text}");
    assert!(
        contains(&seen.lock().unwrap(), target_id),
        "plaintext results should be visible to the proxy"
    );
}

#[test]
fn an_agent_trusting_another_ca_is_refused_at_the_handshake() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let token = enrol(&data, "diskominfo", "diskominfo-1");
    let collector = Collector::start(&data);
    // Another province's CA.
    let other = tmp.path().join("other");
    let printed = collector_cmd(&other, &["ca", "init"]);
    assert!(printed.contains("SHA-256"), "{printed}");
    let dir = tmp.path().join("agent");
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = config(
        &dir,
        &collector.agent_url(),
        &token,
        &format!("ca = \"{}\"", other.join("tls/ca.crt").display()),
        "tcp-a",
    );
    let log = dir.join("agent.log");
    let mut agent = start_agent_logged(&cfg, &log);
    let text = wait_for("a certificate error", Duration::from_secs(30), || {
        let t = std::fs::read_to_string(&log).unwrap_or_default();
        t.contains("never falls back to plaintext").then_some(t)
    });
    assert!(text.to_lowercase().contains("certificate"), "{text}");
    agent.terminate();
    assert_eq!(stored_results(&collector, "diskominfo-1"), 0);
}

#[test]
fn ca_init_prints_the_fingerprint_keeps_keys_private_and_never_replaces_the_ca() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let printed = collector_cmd(tmp.path(), &["ca", "init", "--name", "10.10.0.5"]);
    assert!(printed.contains("10.10.0.5"), "{printed}");
    let shown = collector_cmd(tmp.path(), &["ca", "show"]);
    let fp = shown.lines().nth(1).unwrap().to_string();
    assert_eq!(fp.len(), 95, "{shown}");
    assert!(printed.contains(&fp), "{printed}");
    for key in ["tls/ca.key", "tls/server.key"] {
        let mode = std::fs::metadata(tmp.path().join(key))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{key}");
    }
    let (code, _, err) = collector_cli(tmp.path(), None, &["ca", "init"]);
    assert_ne!(code, 0);
    assert!(err.contains("already exists"), "{err}");
    // A reissue keeps the CA the agents trust.
    collector_cmd(
        tmp.path(),
        &["ca", "init", "--reissue", "--name", "pantau.example"],
    );
    assert_eq!(
        collector_cmd(tmp.path(), &["ca", "show"]).lines().nth(1),
        Some(fp.as_str())
    );
}
