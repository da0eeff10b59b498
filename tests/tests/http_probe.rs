//! The HTTP probe against real servers it does not know: TLS servers on
//! loopback with a private CA made here (a valid, an expired and a
//! wrong-name certificate, and a CA certificate served as a leaf), and a
//! plain HTTP server that records what it received. Each failure class
//! reaches the result detail as plain Indonesian and English, and
//! `pantau-agent check` shows it.

mod common;

use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use pantau_agent::model::{Measurement, Observation, Outcome};
use pantau_agent::probe::{Probe, Prober};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use common::*;

/// A private CA, its PEM, and leaf certificates it signs.
struct Ca {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
}

impl Ca {
    fn new() -> Ca {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.distinguished_name
            .push(DnType::CommonName, "CA Provinsi Uji");
        let cert = p.self_signed(&key).unwrap();
        Ca {
            pem: cert.pem(),
            issuer: Issuer::new(p, key),
        }
    }

    /// A leaf for `names`, valid `from`..`until` (year, month, day).
    fn leaf(&self, names: &[&str], from: (i32, u8, u8), until: (i32, u8, u8)) -> Tls {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
            .unwrap();
        p.distinguished_name.push(DnType::CommonName, names[0]);
        p.not_before = rcgen::date_time_ymd(from.0, from.1, from.2);
        p.not_after = rcgen::date_time_ymd(until.0, until.1, until.2);
        let cert = p.signed_by(&key, &self.issuer).unwrap();
        Tls {
            cert: cert.der().to_vec(),
            key: key.serialize_der(),
        }
    }
}

/// A server identity (DER certificate and PKCS#8 key).
struct Tls {
    cert: Vec<u8>,
    key: Vec<u8>,
}

/// What the server received: one line per request, then headers and body.
type Seen = Arc<Mutex<Vec<String>>>;

/// Answer one HTTP/1.1 request: `/` says "layanan sehat", `/moved`
/// redirects to `/`, `/loop` redirects to itself, `/fail` is a 500.
async fn serve_one<S: AsyncRead + AsyncWrite + Unpin>(mut s: S, seen: Seen) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let Ok(n) = s.read(&mut chunk).await else {
            return;
        };
        if n == 0 {
            return;
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf[0] == 0x16 {
            // A TLS ClientHello on the plain port: answer as nginx does.
            let _ = s
                .write_all(b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n")
                .await;
            return;
        }
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let len: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    while buf.len() < head_end + len {
        let Ok(n) = s.read(&mut chunk).await else {
            return;
        };
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = String::from_utf8_lossy(&buf[head_end..]).to_string();
    seen.lock().unwrap().push(format!("{head}{body}"));
    let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
    let (status, extra, text) = match path.as_str() {
        "/moved" => ("302 Found", "Location: /\r\n", ""),
        "/loop" => ("302 Found", "Location: /loop\r\n", ""),
        "/fail" => ("500 Internal Server Error", "", "rusak"),
        _ => ("200 OK", "", "<html>status: layanan sehat</html>"),
    };
    let resp = format!(
        "HTTP/1.1 {status}\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{text}",
        text.len()
    );
    let _ = s.write_all(resp.as_bytes()).await;
    let _ = s.shutdown().await;
}

/// A server on 127.0.0.1 (TLS with `tls`, plain HTTP without); its port.
async fn server(tls: Option<Tls>) -> (u16, Seen) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen: Seen = Arc::default();
    let acceptor = tls.map(|t| {
        let cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![t.cert.into()],
            rustls::pki_types::PrivatePkcs8KeyDer::from(t.key).into(),
        )
        .unwrap();
        tokio_rustls::TlsAcceptor::from(Arc::new(cfg))
    });
    let s2 = Arc::clone(&seen);
    tokio::spawn(async move {
        loop {
            let Ok((sock, _)) = listener.accept().await else {
                return;
            };
            let seen = Arc::clone(&s2);
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                match acceptor {
                    Some(a) => {
                        if let Ok(t) = a.accept(sock).await {
                            serve_one(t, seen).await;
                        }
                    }
                    None => serve_one(sock, seen).await,
                }
            });
        }
    });
    (port, seen)
}

/// Probe one http target written as TOML keys.
async fn probe(address: &str, keys: &str) -> Observation {
    let toml = format!(
        "[[targets]]\nid = \"web\"\ngroup = \"app\"\nkind = \"http\"\naddress = \"{address}\"\n\
         timeout = \"5s\"\n{keys}\n"
    );
    let targets = pantau_agent::config::targets_from_toml(&toml).expect("valid target");
    let prober = Prober::new().unwrap();
    prober.probe(&targets[0]).await
}

fn not_after(o: &Observation) -> Option<SystemTime> {
    match &o.measurement {
        Measurement::Http { tls_not_after, .. } => *tls_not_after,
        _ => None,
    }
}

/// 2035-01-01T00:00:00Z, the valid leaves' expiry.
fn y2035() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(2_051_222_400)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_ca_needs_ca_file_and_then_records_expiry() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new();
    let ca_file = dir.path().join("ca-provinsi.pem");
    std::fs::write(&ca_file, &ca.pem).unwrap();
    let (port, _) = server(Some(ca.leaf(&["localhost"], (2024, 1, 1), (2035, 1, 1)))).await;
    let url = format!("https://localhost:{port}/");

    let o = probe(&url, "").await;
    assert_eq!(o.outcome, Outcome::TlsError, "{o:?}");
    assert_eq!(
        o.detail,
        "sertifikat ditandatangani CA yang tidak dipercaya; set ca_file ke CA provinsi / \
         certificate signed by an untrusted CA; set ca_file to the province's CA"
    );
    // The certificate was seen even though it was refused.
    assert_eq!(not_after(&o), Some(y2035()));

    let o = probe(&url, &format!("ca_file = \"{}\"", ca_file.display())).await;
    assert_eq!(o.outcome, Outcome::Ok, "{o:?}");
    assert_eq!(not_after(&o), Some(y2035()));
    let days = y2035().duration_since(SystemTime::now()).unwrap().as_secs() / 86_400;
    assert!(days > 365 * 8, "days to expiry {days}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_wrong_name_and_ca_as_leaf_each_have_their_class() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &ca.pem).unwrap();
    let trust = format!("ca_file = \"{}\"", ca_file.display());

    let (expired, _) = server(Some(ca.leaf(&["localhost"], (2020, 1, 1), (2021, 6, 30)))).await;
    let o = probe(&format!("https://localhost:{expired}/"), &trust).await;
    assert_eq!(o.outcome, Outcome::TlsError, "{o:?}");
    assert!(
        o.detail
            .starts_with("sertifikat server sudah kedaluwarsa sejak 2021-06-30")
            && o.detail
                .contains("/ the server's certificate expired on 2021-06-30"),
        "{}",
        o.detail
    );

    let (other, _) = server(Some(ca.leaf(&["app.opd.test"], (2024, 1, 1), (2035, 1, 1)))).await;
    let o = probe(&format!("https://localhost:{other}/"), &trust).await;
    assert_eq!(o.outcome, Outcome::TlsError, "{o:?}");
    assert!(
        o.detail.contains("tidak cocok dengan alamat localhost")
            && o.detail.contains("the certificate does not name localhost"),
        "{}",
        o.detail
    );

    // The CA's own certificate served by the app (the raw
    // `CaUsedAsEndEntity`).
    let key = KeyPair::generate().unwrap();
    let mut p = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let self_ca = p.self_signed(&key).unwrap();
    let self_file = dir.path().join("self.pem");
    std::fs::write(&self_file, self_ca.pem()).unwrap();
    let (leafca, _) = server(Some(Tls {
        cert: self_ca.der().to_vec(),
        key: key.serialize_der(),
    }))
    .await;
    let o = probe(
        &format!("https://localhost:{leafca}/"),
        &format!("ca_file = \"{}\"", self_file.display()),
    )
    .await;
    assert_eq!(o.outcome, Outcome::TlsError, "{o:?}");
    assert!(
        o.detail
            .contains("sertifikat CA sebagai sertifikatnya sendiri"),
        "{}",
        o.detail
    );
    assert!(!o.detail.contains("OtherError") && !o.detail.contains("CaUsedAsEndEntity"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_verify_false_accepts_but_records_expiry_and_issuer() {
    let ca = Ca::new();
    let (port, _) = server(Some(ca.leaf(&["localhost"], (2020, 1, 1), (2021, 6, 30)))).await;
    let o = probe(&format!("https://localhost:{port}/"), "tls_verify = false").await;
    assert_eq!(o.outcome, Outcome::Ok, "{o:?}");
    let expired_at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_625_011_200);
    assert_eq!(not_after(&o), Some(expired_at)); // 2021-06-30
    assert!(
        o.detail.starts_with("PERINGATAN: verifikasi TLS dimatikan"),
        "{}",
        o.detail
    );
    assert!(
        o.detail.contains("penerbit CN=CA Provinsi Uji")
            && o.detail.contains("sertifikat CN=localhost")
            && o.detail
                .contains("valid until 2021-06-30 (already expired)"),
        "{}",
        o.detail
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn method_headers_body_and_match_rules() {
    let (port, seen) = server(None).await;
    let base = format!("http://127.0.0.1:{port}");
    let o = probe(
        &format!("{base}/api"),
        "method = \"POST\"\nbody = \"{\\\"cek\\\":1}\"\n\
         headers = { \"X-Opd\" = \"dinkes\", Authorization = \"Bearer rahasia\" }\n\
         body_contains = \"layanan sehat\"\nbody_regex = \"status: [a-z]+ sehat\"",
    )
    .await;
    assert_eq!(o.outcome, Outcome::Ok, "{o:?}");
    let got = seen.lock().unwrap().last().cloned().unwrap();
    assert!(got.starts_with("POST /api HTTP/1.1"), "{got}");
    assert!(got.to_ascii_lowercase().contains("x-opd: dinkes"), "{got}");
    assert!(
        got.to_ascii_lowercase()
            .contains("authorization: bearer rahasia"),
        "{got}"
    );
    assert!(got.ends_with("{\"cek\":1}"), "{got}");

    let o = probe(
        &format!("{base}/"),
        "body_contains = \"maintenance selesai\"",
    )
    .await;
    assert_eq!(o.outcome, Outcome::HttpMatch, "{o:?}");
    assert!(
        o.detail
            .contains("tidak memuat body_contains \"maintenance selesai\"")
            && o.detail.contains("does not contain body_contains"),
        "{}",
        o.detail
    );
    let o = probe(&format!("{base}/"), "body_regex = \"^ok$\"").await;
    assert_eq!(o.outcome, Outcome::HttpMatch, "{o:?}");
    assert!(o.detail.contains("body_regex `^ok$`"), "{}", o.detail);

    let o = probe(&format!("{base}/fail"), "expect_status = [\"200-299\"]").await;
    assert_eq!(o.outcome, Outcome::HttpStatus, "{o:?}");
    assert!(
        o.detail
            .contains("status HTTP 500, yang diharapkan expect_status 200-299"),
        "{}",
        o.detail
    );
    let o = probe(&format!("{base}/fail"), "expect_status = [\"500-503\"]").await;
    assert_eq!(o.outcome, Outcome::Ok, "{o:?}");

    let o = probe(&format!("{base}/"), "method = \"HEAD\"").await;
    assert_eq!(o.outcome, Outcome::Ok, "{o:?}");
    assert!(
        seen.lock()
            .unwrap()
            .last()
            .unwrap()
            .starts_with("HEAD / HTTP/1.1")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirect_policy() {
    let (port, seen) = server(None).await;
    let base = format!("http://127.0.0.1:{port}");
    let status = |o: &Observation| match &o.measurement {
        Measurement::Http { status, .. } => *status,
        _ => 0,
    };
    let o = probe(&format!("{base}/moved"), "expect_status = [200]").await;
    assert_eq!((o.outcome, status(&o)), (Outcome::Ok, 200), "{o:?}");
    let o = probe(
        &format!("{base}/moved"),
        "follow_redirects = false\nexpect_status = [302]",
    )
    .await;
    assert_eq!((o.outcome, status(&o)), (Outcome::Ok, 302), "{o:?}");
    let before = seen.lock().unwrap().len();
    let o = probe(&format!("{base}/loop"), "max_redirects = 3").await;
    assert_eq!(o.outcome, Outcome::HttpStatus, "{o:?}");
    assert!(
        o.detail
            .contains("terlalu banyak pengalihan (lebih dari 3)"),
        "{}",
        o.detail
    );
    // The first request and three redirects followed.
    assert_eq!(seen.lock().unwrap().len() - before, 4);
}

/// A server that reads a little of each connection, then holds it open
/// without answering (`hang`) or closes it.
async fn rude_server(hang: bool) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let mut buf = [0u8; 1024];
            let _ = sock.read(&mut buf).await;
            if hang {
                held.push(sock); // never answers
            } else {
                drop(sock); // hangs up without a word
            }
        }
    });
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_failures_are_explained() {
    let o = probe(&format!("http://127.0.0.1:{}/", closed_port()), "").await;
    assert_eq!(o.outcome, Outcome::Refused, "{o:?}");
    assert!(o.detail.starts_with("sambungan ditolak"), "{}", o.detail);

    let reset = rude_server(false).await;
    let o = probe(&format!("http://127.0.0.1:{reset}/"), "").await;
    assert_eq!(o.outcome, Outcome::Other, "{o:?}");
    assert!(
        o.detail
            .starts_with("sambungan diputus server sebelum jawaban lengkap / the server"),
        "{}",
        o.detail
    );

    // https:// to a plain HTTP port: the handshake cannot happen.
    let (plain, _) = server(None).await;
    let o = probe(&format!("https://127.0.0.1:{plain}/"), "").await;
    assert_eq!(o.outcome, Outcome::TlsError, "{o:?}");
    assert!(
        o.detail.starts_with("jabat tangan TLS gagal"),
        "{}",
        o.detail
    );

    let hang = rude_server(true).await;
    let toml = format!(
        "[[targets]]\nid = \"w\"\ngroup = \"app\"\nkind = \"http\"\n\
         address = \"http://127.0.0.1:{hang}/\"\ntimeout = \"1s\"\n"
    );
    let t = pantau_agent::config::targets_from_toml(&toml).unwrap();
    let o = Prober::new().unwrap().probe(&t[0]).await;
    assert_eq!(o.outcome, Outcome::Timeout, "{o:?}");
    assert_eq!(
        o.detail,
        "tidak ada jawaban lengkap dalam 1s / no complete answer within 1s"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_explains_and_a_bad_ca_file_is_a_config_error() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new();
    let (port, _) = server(Some(ca.leaf(&["localhost"], (2024, 1, 1), (2035, 1, 1)))).await;
    let write = |targets: &str| {
        let p = dir.path().join("agent.toml");
        std::fs::write(
            &p,
            format!("[agent]\nid = \"cek\"\n[defaults]\ntimeout = \"3s\"\n{targets}"),
        )
        .unwrap();
        p
    };
    let cfg = write(&format!(
        "[[targets]]\nid = \"sipd\"\ngroup = \"app\"\nkind = \"http\"\naddress = \"https://localhost:{port}/\"\n\
         [[targets]]\nid = \"lama\"\ngroup = \"app\"\nkind = \"http\"\naddress = \"https://localhost:{port}/\"\ntls_verify = false\n"
    ));
    let out = tokio::task::spawn_blocking(move || {
        Command::new(bin("pantau-agent"))
            .args(["check", "--config"])
            .arg(&cfg)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{table}");
    assert!(table.contains("GAGAL/tls_error"), "{table}");
    assert!(
        table.contains("certificate signed by an untrusted CA; set ca_file"),
        "{table}"
    );
    assert!(
        table.contains("PERINGATAN / WARNING: tls_verify = false"),
        "{table}"
    );
    assert!(table.contains("  lama (https://localhost:"), "{table}");
    assert!(
        !table.contains("Other(") && !table.contains("UnknownIssuer"),
        "{table}"
    );

    // The system trust store counts: the same CA given as the store
    // (SSL_CERT_FILE, as rustls-native-certs reads it) makes sipd pass.
    let store = dir.path().join("store.pem");
    std::fs::write(&store, &ca.pem).unwrap();
    let cfg = dir.path().join("agent.toml");
    let out = tokio::task::spawn_blocking(move || {
        Command::new(bin("pantau-agent"))
            .env("SSL_CERT_FILE", &store)
            .args(["check", "--config"])
            .arg(&cfg)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{table}");
    let sipd = table.lines().find(|l| l.contains("sipd")).unwrap();
    assert!(
        sipd.contains(" OK ") && sipd.contains("HTTP 200"),
        "{table}"
    );

    let bad = dir.path().join("bukan-ca.pem");
    std::fs::write(&bad, "bukan sertifikat\n").unwrap();
    let cfg = write(&format!(
        "[[targets]]\nid = \"sipd\"\ngroup = \"app\"\nkind = \"http\"\naddress = \"https://localhost:{port}/\"\nca_file = \"{}\"\n",
        bad.display()
    ));
    let out = Command::new(bin("pantau-agent"))
        .args(["check", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{err}");
    assert!(
        err.contains("targets[0].ca_file") && err.contains("bukan-ca.pem"),
        "{err}"
    );
    assert!(err.contains("agent.toml"), "{err}");
}
