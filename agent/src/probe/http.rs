//! HTTP(S) probe (reqwest with rustls): one request as configured (method,
//! headers, body), status, time to first byte, total time, the body rules,
//! and the leaf certificate's expiry, subject and issuer. Trust and
//! certificate capture live in `http/tls.rs`; the failure classes and their
//! plain explanations in `http/failure.rs`.

pub mod failure;
pub mod tls;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use super::{ProbeSetupError, failed, ok};
use super::{ts, us};
use crate::model::{Measurement, Observation, Outcome};
use failure::Failure;
use pantau_core::probe::http::{HttpMethod, MAX_MATCH_BODY, secret_header};
use pantau_core::probe::{HttpSpec, Target};
use pantau_proto::v1 as pb;
use tls::{CertInfo, Seen};

/// Most body bytes read per probe; the rest is not downloaded.
const BODY_CAP: u64 = 1024 * 1024;

/// One target's client: built from its spec, rebuilt when the spec changes.
#[derive(Debug)]
struct TargetClient {
    spec: HttpSpec,
    client: reqwest::Client,
    seen: Seen,
    regex: Option<regex::Regex>,
}

/// The HTTP probes: the roots every target trusts, and a client per target
/// (its own trust, redirect policy and captured certificate).
#[derive(Debug)]
pub struct HttpProber {
    roots: Arc<rustls::RootCertStore>,
    provider: Arc<rustls::crypto::CryptoProvider>,
    clients: Mutex<HashMap<String, Arc<TargetClient>>>,
}

/// Why a target's client could not be built.
#[derive(Debug, thiserror::Error)]
enum ClientError {
    #[error(transparent)]
    Ca(#[from] tls::CaFileError),
    #[error("klien HTTP tidak dapat dibuat / cannot build the HTTP client: {0}")]
    Build(#[source] reqwest::Error),
    #[error("body_regex: {0}")]
    Regex(#[from] regex::Error),
    #[error("TLS: {0}")]
    Tls(#[from] rustls::Error),
}

/// What one successful exchange gave.
struct Answer {
    status: u16,
    ttfb: Duration,
    leaf: Option<Vec<u8>>,
    body_bytes: u64,
    body: Vec<u8>,
}

impl HttpProber {
    /// Load the system store and the bundled roots once.
    pub fn new() -> Result<Self, ProbeSetupError> {
        Ok(HttpProber {
            roots: Arc::new(tls::base_roots()),
            provider: Arc::new(rustls::crypto::ring::default_provider()),
            clients: Mutex::new(HashMap::new()),
        })
    }

    fn build(&self, spec: &HttpSpec) -> Result<TargetClient, ClientError> {
        let extra = match &spec.ca_file {
            Some(f) => tls::load_ca_file(f)?,
            None => Vec::new(),
        };
        let seen: Seen = Arc::default();
        let verifier = tls::Capturing::new(
            &self.roots,
            extra,
            spec.tls_verify,
            Arc::clone(&self.provider),
            Arc::clone(&seen),
        )?;
        let mut cfg = rustls::ClientConfig::builder_with_provider(Arc::clone(&self.provider))
            .with_safe_default_protocol_versions()?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth();
        cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let redirect = if spec.max_redirects == 0 {
            reqwest::redirect::Policy::none()
        } else {
            reqwest::redirect::Policy::limited(spec.max_redirects as usize)
        };
        let client = reqwest::Client::builder()
            .user_agent(concat!("pantau-agent/", env!("CARGO_PKG_VERSION")))
            .use_preconfigured_tls(cfg)
            .tls_info(true)
            .redirect(redirect)
            .pool_max_idle_per_host(0)
            .build()
            .map_err(ClientError::Build)?;
        let regex = match &spec.body_regex {
            Some(r) => Some(regex::RegexBuilder::new(r).size_limit(1 << 20).build()?),
            None => None,
        };
        Ok(TargetClient {
            spec: spec.clone(),
            client,
            seen,
            regex,
        })
    }

    /// The target's client, built on first use or when its spec changed.
    fn client_for(&self, id: &str, spec: &HttpSpec) -> Result<Arc<TargetClient>, ClientError> {
        if let Some(c) = self.lock().get(id).filter(|c| c.spec == *spec) {
            return Ok(Arc::clone(c));
        }
        let c = Arc::new(self.build(spec)?);
        self.lock().insert(id.to_string(), Arc::clone(&c));
        Ok(c)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<TargetClient>>> {
        self.clients.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Request the target URL once.
    pub async fn probe(&self, t: &Target, spec: &HttpSpec) -> Observation {
        let start = Instant::now();
        let blank = |not_after: Option<SystemTime>| Measurement::Http {
            status: 0,
            ttfb: Duration::ZERO,
            total: start.elapsed(),
            tls_not_after: not_after,
            body_bytes: 0,
        };
        let tc = match self.client_for(&t.id, spec) {
            Ok(c) => c,
            Err(e) => return failed(Outcome::Other, e, blank(None)),
        };
        *tc.seen.lock().unwrap_or_else(|e| e.into_inner()) = None;
        let result = tokio::time::timeout(t.timeout, exchange(&tc, t, spec)).await;
        let seen = tc
            .seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .and_then(|d| tls::cert_info(&d));
        let answer = match result {
            Err(_) => {
                let f = Failure::Timeout(t.timeout);
                return failed(f.outcome(), f.detail(), blank(seen.map(|c| c.not_after)));
            }
            Ok(Err(e)) => {
                let host = reqwest::Url::parse(&t.address)
                    .ok()
                    .and_then(|u| u.host_str().map(str::to_string))
                    .unwrap_or_default();
                let f = failure::classify(&e, seen.as_ref(), &host, t.timeout, spec.max_redirects);
                return failed(f.outcome(), f.detail(), blank(seen.map(|c| c.not_after)));
            }
            Ok(Ok(a)) => a,
        };
        let cert = answer.leaf.as_deref().and_then(tls::cert_info).or(seen);
        let m = Measurement::Http {
            status: answer.status,
            ttfb: answer.ttfb,
            total: start.elapsed(),
            tls_not_after: cert.as_ref().map(|c| c.not_after),
            body_bytes: answer.body_bytes,
        };
        judge(&tc, spec, &answer, cert.as_ref(), m)
    }
}

/// Send the request and read the answer (at most [`BODY_CAP`] bytes; the
/// first [`MAX_MATCH_BODY`] kept when a body rule needs them).
async fn exchange(
    tc: &TargetClient,
    t: &Target,
    spec: &HttpSpec,
) -> Result<Answer, reqwest::Error> {
    let start = Instant::now();
    let method = match spec.method {
        HttpMethod::Get => reqwest::Method::GET,
        HttpMethod::Head => reqwest::Method::HEAD,
        HttpMethod::Post => reqwest::Method::POST,
        HttpMethod::Put => reqwest::Method::PUT,
        HttpMethod::Options => reqwest::Method::OPTIONS,
    };
    let mut headers = reqwest::header::HeaderMap::new();
    for h in &spec.headers {
        // Validated in pantau-core; a header reqwest still refuses is skipped.
        let (Ok(name), Ok(mut value)) = (
            reqwest::header::HeaderName::from_bytes(h.name.as_bytes()),
            reqwest::header::HeaderValue::from_str(&h.value),
        ) else {
            continue;
        };
        value.set_sensitive(secret_header(&h.name));
        headers.append(name, value);
    }
    let mut req = tc.client.request(method, &t.address).headers(headers);
    if let Some(b) = &spec.body {
        req = req.body(b.clone());
    }
    let mut resp = req.send().await?;
    let ttfb = start.elapsed();
    let status = resp.status().as_u16();
    let leaf = resp
        .extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(|i| i.peer_certificate())
        .map(<[u8]>::to_vec);
    let keep = spec.matches_body();
    let mut body = Vec::new();
    let mut body_bytes = 0u64;
    while body_bytes < BODY_CAP {
        match resp.chunk().await? {
            Some(c) => {
                body_bytes += c.len() as u64;
                if keep && body.len() < MAX_MATCH_BODY {
                    let room = MAX_MATCH_BODY - body.len();
                    body.extend_from_slice(&c[..c.len().min(room)]);
                }
            }
            None => break,
        }
    }
    Ok(Answer {
        status,
        ttfb,
        leaf,
        body_bytes,
        body,
    })
}

/// Apply the status and body rules to an answer; with `tls_verify = false`
/// a success says so, with the certificate it accepted.
fn judge(
    tc: &TargetClient,
    spec: &HttpSpec,
    a: &Answer,
    cert: Option<&CertInfo>,
    m: Measurement,
) -> Observation {
    let status = a.status;
    if !spec.accepts(status) {
        let want = spec.expected_text();
        return failed(
            Outcome::HttpStatus,
            format!(
                "status HTTP {status}, yang diharapkan expect_status {want} / HTTP status                  {status}, expected expect_status {want}"
            ),
            m,
        );
    }
    let text = String::from_utf8_lossy(&a.body);
    if let Some(needle) = &spec.body_contains
        && !text.contains(needle.as_str())
    {
        let shown: String = needle
            .chars()
            .filter(|c| !c.is_control())
            .take(80)
            .collect();
        let n = a.body.len();
        return failed(
            Outcome::HttpMatch,
            format!(
                "isi jawaban tidak memuat body_contains \"{shown}\" ({n} byte dibaca) / the \
                 response body does not contain body_contains \"{shown}\" ({n} bytes read)"
            ),
            m,
        );
    }
    if let (Some(re), Some(pattern)) = (&tc.regex, &spec.body_regex)
        && !re.is_match(&text)
    {
        let shown: String = pattern
            .chars()
            .filter(|c| !c.is_control())
            .take(80)
            .collect();
        let n = a.body.len();
        return failed(
            Outcome::HttpMatch,
            format!(
                "isi jawaban tidak cocok dengan body_regex `{shown}` ({n} byte dibaca) / the \
                 response body does not match body_regex `{shown}` ({n} bytes read)"
            ),
            m,
        );
    }
    let mut o = ok(m);
    if !spec.tls_verify {
        o.detail = unverified_detail(cert);
        super::truncate(&mut o.detail, 512);
    }
    o
}

/// The warning a success with `tls_verify = false` carries.
pub fn unverified_detail(cert: Option<&CertInfo>) -> String {
    let Some(c) = cert else {
        return "PERINGATAN: verifikasi TLS dimatikan (tls_verify = false) / WARNING: TLS \
                verification is off (tls_verify = false)"
            .into();
    };
    let until = tls::day(c.not_after);
    let (lewat, past) = if c.not_after < SystemTime::now() {
        (" (sudah kedaluwarsa)", " (already expired)")
    } else {
        ("", "")
    };
    format!(
        "PERINGATAN: verifikasi TLS dimatikan (tls_verify = false); sertifikat {}, penerbit {}, \
         berlaku sampai {until}{lewat} / WARNING: TLS verification is off (tls_verify = false); \
         certificate {}, issuer {}, valid until {until}{past}",
        c.subject, c.issuer, c.subject, c.issuer
    )
}

/// The wire form of one request (`None` for another kind's measurement).
pub(crate) fn to_wire(m: &Measurement) -> Option<pb::HttpMeasurement> {
    let Measurement::Http {
        status,
        ttfb,
        total,
        tls_not_after,
        body_bytes,
    } = m
    else {
        return None;
    };
    Some(pb::HttpMeasurement {
        status: u32::from(*status),
        ttfb_us: us(*ttfb),
        total_us: us(*total),
        tls_not_after: tls_not_after.map(ts),
        body_bytes: *body_bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unverified_success_names_the_certificate() {
        let c = CertInfo {
            not_before: SystemTime::UNIX_EPOCH,
            not_after: SystemTime::UNIX_EPOCH + Duration::from_secs(1_805_112_000),
            subject: "CN=app.opd".into(),
            issuer: "CN=CA Provinsi".into(),
        };
        let d = unverified_detail(Some(&c));
        assert!(d.starts_with("PERINGATAN: verifikasi TLS dimatikan"), "{d}");
        assert!(
            d.contains("certificate CN=app.opd, issuer CN=CA Provinsi, valid until 2027-03-15"),
            "{d}"
        );
        assert!(!d.contains("already expired"), "{d}");
        assert!(unverified_detail(None).contains("WARNING: TLS verification is off"));
        assert!(tls::cert_info(b"not a certificate").is_none());
    }
}
