//! Every way an HTTP(S) request can fail, as a stable outcome and a plain
//! explanation in Bahasa Indonesia and English ("ID / EN"). The same text is
//! the result's detail, so `check`, the reports and the pages show it; no
//! raw error `Debug` text ever reaches them.

use std::error::Error as _;
use std::time::{Duration, SystemTime};

use rustls::CertificateError;

use super::tls::{CertInfo, day};
use crate::model::Outcome;

/// One class of failure.
#[derive(Debug, Clone, PartialEq)]
pub enum Failure {
    /// The chain ends at a CA that is not trusted.
    UnknownCa,
    /// The certificate has expired (`not_after` when it was seen).
    Expired(Option<SystemTime>),
    /// The certificate is not valid yet.
    NotYetValid(Option<SystemTime>),
    /// The certificate does not name the host.
    WrongHost(String),
    /// The server presents a CA certificate as its own.
    CaAsLeaf,
    /// Another certificate problem (signature, usage, revocation).
    BadCertificate,
    /// The TLS handshake failed for a protocol reason.
    Handshake,
    /// Connection refused.
    Refused,
    /// Connection reset or closed mid-answer.
    Reset,
    /// No complete answer in time.
    Timeout(Duration),
    /// The name did not resolve.
    Dns,
    /// No route.
    Unreachable,
    /// More redirects than allowed.
    TooManyRedirects(u32),
    /// Anything else; the text is the innermost error's `Display`.
    Other(String),
}

impl Failure {
    /// The stable outcome of this class.
    pub fn outcome(&self) -> Outcome {
        match self {
            Self::UnknownCa
            | Self::Expired(_)
            | Self::NotYetValid(_)
            | Self::WrongHost(_)
            | Self::CaAsLeaf
            | Self::BadCertificate
            | Self::Handshake => Outcome::TlsError,
            Self::Refused => Outcome::Refused,
            Self::Timeout(_) => Outcome::Timeout,
            Self::Dns => Outcome::DnsError,
            Self::Unreachable => Outcome::Unreachable,
            Self::TooManyRedirects(_) => Outcome::HttpStatus,
            Self::Reset | Self::Other(_) => Outcome::Other,
        }
    }

    /// The plain explanation, "Indonesian / English".
    pub fn detail(&self) -> String {
        match self {
            Self::UnknownCa => "sertifikat ditandatangani CA yang tidak dipercaya; set ca_file ke CA \
                 provinsi / certificate signed by an untrusted CA; set ca_file to the province's CA"
                .into(),
            Self::Expired(at) => {
                let (id, en) = at.map_or((String::new(), String::new()), |t| {
                    (format!(" sejak {}", day(t)), format!(" on {}", day(t)))
                });
                format!(
                    "sertifikat server sudah kedaluwarsa{id}; perbarui sertifikat di server / \
                     the server's certificate expired{en}; renew it on the server"
                )
            }
            Self::NotYetValid(from) => {
                let (id, en) = from.map_or((String::new(), String::new()), |t| {
                    (format!(" (mulai {})", day(t)), format!(" (from {})", day(t)))
                });
                format!(
                    "sertifikat server belum berlaku{id}; periksa jam server dan agen / the \
                     server's certificate is not valid yet{en}; check the server's and the agent's clock"
                )
            }
            Self::WrongHost(host) => format!(
                "nama pada sertifikat tidak cocok dengan alamat {host}; pakai nama yang tercantum \
                 di sertifikat / the certificate does not name {host}; use a name it lists"
            ),
            Self::CaAsLeaf => "server memakai sertifikat CA sebagai sertifikatnya sendiri; pasang \
                 sertifikat server yang ditandatangani CA itu / the server presents a CA \
                 certificate as its own; install a server certificate signed by that CA"
                .into(),
            Self::BadCertificate => "sertifikat server tidak sah (tanda tangan, penggunaan, atau \
                 dicabut); periksa rantai sertifikat di server / the server's certificate is \
                 invalid (signature, usage or revoked); check the chain on the server"
                .into(),
            Self::Handshake => "jabat tangan TLS gagal: tidak ada versi TLS atau cipher yang sama, \
                 atau server memutus; periksa pengaturan TLS server / the TLS handshake failed: no \
                 common TLS version or cipher, or the server aborted; check its TLS settings"
                .into(),
            Self::Refused => "sambungan ditolak: tidak ada layanan di port itu atau firewall \
                 menolak / connection refused: nothing listens on that port, or a firewall rejects it"
                .into(),
            Self::Reset => "sambungan diputus server sebelum jawaban lengkap / the server closed \
                 or reset the connection before the answer was complete"
                .into(),
            Self::Timeout(d) => format!(
                "tidak ada jawaban lengkap dalam {} / no complete answer within {}",
                humantime::format_duration(*d),
                humantime::format_duration(*d)
            ),
            Self::Dns => "nama host tidak dapat diterjemahkan (DNS); periksa ejaan dan server DNS \
                 / the host name could not be resolved (DNS); check its spelling and the DNS server"
                .into(),
            Self::Unreachable => "tidak ada rute ke server; periksa gateway dan routing / no route \
                 to the server; check the gateway and routing"
                .into(),
            Self::TooManyRedirects(n) => format!(
                "terlalu banyak pengalihan (lebih dari {n}); naikkan max_redirects atau perbaiki \
                 putaran pengalihan / too many redirects (more than {n}); raise max_redirects or \
                 fix the redirect loop"
            ),
            Self::Other(why) => {
                format!("permintaan HTTP gagal: {why} / the HTTP request failed: {why}")
            }
        }
    }
}

/// Classify a certificate error from rustls.
fn certificate(e: &CertificateError, seen: Option<&CertInfo>, host: &str) -> Failure {
    match e {
        CertificateError::UnknownIssuer => Failure::UnknownCa,
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
            Failure::Expired(seen.map(|c| c.not_after))
        }
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            Failure::NotYetValid(seen.map(|c| c.not_before))
        }
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            Failure::WrongHost(host.to_string())
        }
        // webpki's error is only reachable through its Debug name.
        CertificateError::Other(o) if format!("{o:?}").contains("CaUsedAsEndEntity") => {
            Failure::CaAsLeaf
        }
        _ => Failure::BadCertificate,
    }
}

/// Classify a rustls error.
pub fn tls(e: &rustls::Error, seen: Option<&CertInfo>, host: &str) -> Failure {
    match e {
        rustls::Error::InvalidCertificate(c) => certificate(c, seen, host),
        rustls::Error::InvalidCertRevocationList(_) => Failure::BadCertificate,
        _ => Failure::Handshake,
    }
}

/// Classify a socket error (`None`: not a class of its own).
fn io(e: &std::io::Error) -> Option<Failure> {
    use std::io::ErrorKind as K;
    Some(match e.kind() {
        K::ConnectionRefused => Failure::Refused,
        K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe | K::UnexpectedEof => {
            Failure::Reset
        }
        _ => match super::super::io_outcome(e) {
            Outcome::Unreachable => Failure::Unreachable,
            _ => return None,
        },
    })
}

/// The rustls error in `e`, looking inside `io::Error`s too (whose
/// `source()` skips the error they wrap).
fn find_rustls<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    if let Some(t) = e.downcast_ref::<rustls::Error>() {
        return Some(t);
    }
    let inner = e.downcast_ref::<std::io::Error>()?.get_ref()?;
    let inner: &(dyn std::error::Error + 'static) = inner;
    find_rustls(inner)
}

/// Classify a reqwest error by looking through its sources (a TLS error
/// sits inside an `io::Error`, reached with `get_ref`).
pub fn classify(
    e: &reqwest::Error,
    seen: Option<&CertInfo>,
    host: &str,
    timeout: Duration,
    max_redirects: u32,
) -> Failure {
    if e.is_redirect() {
        return Failure::TooManyRedirects(max_redirects);
    }
    let mut last = e.to_string();
    let mut texts = String::new();
    let mut src: Option<&(dyn std::error::Error + 'static)> = e.source();
    while let Some(s) = src {
        if let Some(t) = find_rustls(s) {
            return tls(t, seen, host);
        }
        if let Some(f) = s.downcast_ref::<std::io::Error>().and_then(io) {
            return f;
        }
        last = s.to_string();
        texts.push_str(&last.to_ascii_lowercase());
        texts.push('\n');
        src = s.source();
    }
    if e.is_timeout() {
        Failure::Timeout(timeout)
    } else if texts.contains("dns error") || texts.contains("failed to lookup") {
        Failure::Dns
    } else if texts.contains("connection closed before message completed")
        || texts.contains("connection reset")
    {
        // hyper's own error when the server hangs up mid-answer.
        Failure::Reset
    } else {
        let mut why: String = last.chars().filter(|c| !c.is_control()).take(160).collect();
        if why.is_empty() {
            why = "-".into();
        }
        Failure::Other(why)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificate_errors_get_their_own_class() {
        let info = CertInfo {
            not_before: SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
            not_after: SystemTime::UNIX_EPOCH + Duration::from_secs(1_750_000_000),
            subject: "CN=a".into(),
            issuer: "CN=b".into(),
        };
        let c = |e: CertificateError| {
            tls(
                &rustls::Error::InvalidCertificate(e),
                Some(&info),
                "app.local",
            )
        };
        assert_eq!(c(CertificateError::UnknownIssuer), Failure::UnknownCa);
        assert_eq!(
            c(CertificateError::Expired),
            Failure::Expired(Some(info.not_after))
        );
        assert_eq!(
            c(CertificateError::NotValidYet),
            Failure::NotYetValid(Some(info.not_before))
        );
        assert_eq!(
            c(CertificateError::NotValidForName),
            Failure::WrongHost("app.local".into())
        );
        assert_eq!(c(CertificateError::BadSignature), Failure::BadCertificate);
        assert_eq!(
            tls(
                &rustls::Error::AlertReceived(rustls::AlertDescription::HandshakeFailure),
                None,
                "h"
            ),
            Failure::Handshake
        );
        let expired = c(CertificateError::Expired).detail();
        assert!(
            expired.contains("kedaluwarsa sejak 2025-06-15"),
            "{expired}"
        );
        assert!(expired.contains("expired on 2025-06-15"), "{expired}");
    }

    #[test]
    fn every_class_reads_plainly_in_both_languages() {
        let all = [
            Failure::UnknownCa,
            Failure::Expired(None),
            Failure::NotYetValid(None),
            Failure::WrongHost("h".into()),
            Failure::CaAsLeaf,
            Failure::BadCertificate,
            Failure::Handshake,
            Failure::Refused,
            Failure::Reset,
            Failure::Timeout(Duration::from_secs(5)),
            Failure::Dns,
            Failure::Unreachable,
            Failure::TooManyRedirects(5),
            Failure::Other("x".into()),
        ];
        for f in all {
            let d = f.detail();
            let (id, en) = d.split_once(" / ").expect("ID / EN");
            assert!(!id.is_empty() && !en.is_empty(), "{d}");
            assert!(!d.contains("Error(") && !d.contains("Other("), "{d}");
            assert!(d.len() < 400, "{d}");
        }
        assert_eq!(
            Failure::UnknownCa.detail(),
            "sertifikat ditandatangani CA yang tidak dipercaya; set ca_file ke CA provinsi / \
             certificate signed by an untrusted CA; set ca_file to the province's CA"
        );
        assert_eq!(Failure::Dns.outcome(), Outcome::DnsError);
        assert_eq!(Failure::CaAsLeaf.outcome(), Outcome::TlsError);
    }

    #[test]
    fn socket_errors() {
        use std::io::{Error, ErrorKind};
        assert_eq!(
            io(&Error::from(ErrorKind::ConnectionRefused)),
            Some(Failure::Refused)
        );
        assert_eq!(
            io(&Error::from(ErrorKind::ConnectionReset)),
            Some(Failure::Reset)
        );
        assert_eq!(io(&Error::from(ErrorKind::InvalidData)), None);
    }
}
