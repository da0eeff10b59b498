//! `pantau-agent enroll`: install an agent in one step. The collector is
//! given the one-time enrolment code printed by `pantau-collector agent add`
//! (or, to re-enrol, the agent's existing token) and answers with the agent's
//! permanent token, which agent and OPD it is and which targets a new agent
//! should probe. With `--ca-fingerprint` the collector's CA is pinned first
//! ([`crate::pin`]) and written next to the configuration. The token file and
//! a complete agent configuration are written; then the written files are
//! loaded back and the connection is checked with them.

use std::fmt::Write as _;
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::time::Duration;

use pantau_proto::v1 as pb;
use pantau_proto::v1::ingest_client::IngestClient;
use tonic::metadata::MetadataValue;

use crate::config::{self, AgentConfig};

/// The example configuration the Debian package installs as
/// /etc/pantau/agent.toml: replacing it needs no `--force`.
const SHIPPED_EXAMPLE: &str = include_str!("../../deploy/config/agent.example.toml");

/// System user the packaged service runs as; it must be able to read the token.
const SERVICE_USER: &str = "pantau-agent";

/// What `pantau-agent enroll` was asked to do.
#[derive(Debug, Clone)]
pub struct EnrolOptions {
    /// Collector gRPC URL, e.g. `http://10.10.0.5:7470`.
    pub collector: String,
    /// The one-time enrolment code, or the agent's existing token.
    pub credential: Credential,
    /// `--ca-fingerprint`: SHA-256 of the collector's CA, pinned.
    pub ca_fingerprint: Option<String>,
    /// Where the agent configuration is written.
    pub config: PathBuf,
    /// Where the token is written (mode 0600).
    pub token_file: PathBuf,
    /// Spool directory written into the configuration.
    pub spool_dir: PathBuf,
    /// Overwrite an existing configuration.
    pub force: bool,
    /// `--ca` and `--insecure`: how the connection is secured.
    pub tls: config::CollectorTls,
}

/// What the agent presents to the collector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// A one-time enrolment code: exchanged for a new permanent token.
    Code(String),
    /// The agent's existing permanent token (re-enrolment).
    Token(String),
}

/// Printed when the code was given on the command line.
pub const CODE_ON_ARGV_WARNING: &str = "PERINGATAN: --code di baris perintah terlihat oleh \
    pengguna lain di daftar proses; pakai --code-file FILE atau --code - (stdin).\nWARNING: \
    --code on the command line is visible to other users in the process list; use --code-file \
    FILE or --code - (stdin).";

/// Read the enrolment code: `-` reads a line from `stdin`, otherwise the
/// value itself; or the first line of `file`.
pub fn read_code(
    code: Option<&str>,
    file: Option<&Path>,
    stdin: &mut dyn std::io::BufRead,
) -> Result<Credential, EnrolError> {
    let text = match (code, file) {
        (Some("-"), _) => {
            let mut line = String::new();
            stdin.read_line(&mut line).map_err(|e| {
                EnrolError::Usage(format!("--code -: cannot read standard input: {e}"))
            })?;
            line
        }
        (Some(c), _) => c.to_string(),
        (None, Some(f)) => std::fs::read_to_string(f)
            .map_err(|e| EnrolError::Usage(format!("--code-file {}: {e}", f.display())))?
            .lines()
            .next()
            .unwrap_or_default()
            .to_string(),
        (None, None) => String::new(),
    };
    let text = text.trim();
    if text.is_empty() {
        return Err(EnrolError::Usage(
            "Kode pendaftaran kosong / the enrolment code is empty: paste the code printed by              `pantau-collector agent add` (or `agent enrol-code`)"
                .into(),
        ));
    }
    Ok(Credential::Code(text.to_string()))
}

/// Why enrolment stopped. Nothing was written unless the message says so.
#[derive(Debug, thiserror::Error)]
pub enum EnrolError {
    /// Bad command-line input.
    #[error("{0}")]
    Usage(String),
    /// A file is in the way and --force was not given.
    #[error("{0}")]
    Exists(String),
    /// The collector could not be reached or refused.
    #[error("{0}")]
    Collector(String),
    /// Files could not be written or read back.
    #[error("{0}")]
    Files(String),
}

impl EnrolError {
    /// Process exit code: 64 for usage, 73 when a file is in the way, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            EnrolError::Usage(_) => 64,
            EnrolError::Exists(_) => 73,
            EnrolError::Collector(_) | EnrolError::Files(_) => 1,
        }
    }
}

/// Present the credential to the collector over `endpoint` (made for
/// `url`). Errors are plain words in Bahasa Indonesia, then English.
// Long: one request with a plain-language answer for every refusal.
pub async fn ask_collector(
    url: &str,
    endpoint: Result<tonic::transport::Endpoint, crate::export::EndpointError>,
    credential: &Credential,
    csr_pem: &str,
) -> Result<pb::EnrolInfo, EnrolError> {
    let unreachable = |e: &dyn std::fmt::Display| {
        EnrolError::Collector(format!(
            "Tidak dapat menghubungi collector di {url}: periksa alamat, port, dan firewall \
             (gRPC, biasanya port 7470).\nCannot reach the collector at {url}: check the \
             address, the port and the firewall (gRPC, usually port 7470).\n  ({e}){}",
            crate::export::tls_hint(url)
        ))
    };
    let endpoint = endpoint
        .map_err(|e| EnrolError::Usage(e.to_string()))?
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(20));
    let channel = endpoint.connect().await.map_err(|e| {
        let mut text = e.to_string();
        let mut cur = std::error::Error::source(&e);
        while let Some(c) = cur {
            text.push_str(": ");
            text.push_str(&c.to_string());
            cur = c.source();
        }
        match web_port(url, &text) {
            Some(hint) => EnrolError::Collector(hint),
            None => unreachable(&text),
        }
    })?;
    let mut client = IngestClient::new(channel);
    let mut req = tonic::Request::new(pb::EnrolRequest {
        agent_version: env!("CARGO_PKG_VERSION").to_string(),
        hostname: std::fs::read_to_string("/etc/hostname")
            .unwrap_or_default()
            .trim()
            .to_string(),
        collector_authority: authority(url).unwrap_or_default(),
        enrol_code: match credential {
            Credential::Code(c) => c.clone(),
            Credential::Token(_) => String::new(),
        },
        csr_pem: csr_pem.to_string(),
    });
    if let Credential::Token(token) = credential {
        let bearer = MetadataValue::try_from(format!("Bearer {token}")).map_err(|_| {
            EnrolError::Usage(
                "Token berisi karakter yang tidak sah; salin lagi dari berkas token.\n\
                 The token contains characters that cannot be sent; copy it again from the \
                 token file."
                    .into(),
            )
        })?;
        req.metadata_mut()
            .insert(pantau_proto::AUTHORIZATION, bearer);
    }
    let is_code = matches!(credential, Credential::Code(_));
    match client.enrol(req).await {
        Ok(r) => Ok(r.into_inner()),
        Err(s)
            if is_code
                && matches!(
                    s.code(),
                    tonic::Code::Unauthenticated | tonic::Code::PermissionDenied
                ) =>
        {
            Err(EnrolError::Collector(format!(
                "Kode pendaftaran ditolak / the enrolment code was refused: {}",
                s.message()
            )))
        }
        Err(s)
            if s.code() == tonic::Code::Unauthenticated
                && s.message().contains("client certificate is required") =>
        {
            Err(EnrolError::Collector(
                "Collector mewajibkan sertifikat klien (mTLS): token saja tidak cukup. Daftar \
                 dengan kode pendaftaran (`pantau-collector agent enrol-code`), atau buat kunci \
                 dan CSR dengan `pantau-agent csr`, minta `pantau-collector agent issue-cert`, \
                 lalu taruh agent.crt di sebelah konfigurasi.\nThe collector requires a client \
                 certificate (mutual TLS): a token alone is not enough. Enrol with an enrolment \
                 code (`pantau-collector agent enrol-code`), or make a key and CSR with \
                 `pantau-agent csr`, have it signed with `pantau-collector agent issue-cert` and \
                 put agent.crt next to the configuration."
                    .into(),
            ))
        }
        Err(s) if s.code() == tonic::Code::Unauthenticated => Err(EnrolError::Collector(
            "Token ditolak oleh collector: token salah, sudah diganti, atau agen belum \
             didaftarkan. Minta admin provinsi kode pendaftaran baru \
             (`pantau-collector agent enrol-code`).\nThe collector rejected the token: it is \
             wrong, was replaced, or the agent was never registered. Ask the province admin \
             for a new enrolment code (`pantau-collector agent enrol-code`)."
                .into(),
        )),
        Err(s) if web_port(url, s.message()).is_some() => Err(EnrolError::Collector(
            web_port(url, s.message()).unwrap_or_default(),
        )),
        Err(s) if s.code() == tonic::Code::Unimplemented => Err(EnrolError::Collector(format!(
            "Collector di {url} terlalu lama (belum mendukung pendaftaran otomatis); perbarui \
             collector atau tulis konfigurasi secara manual (docs/INSTALL.md).\nThe collector \
             at {url} is too old for enrolment; upgrade it or write the configuration by hand \
             (docs/INSTALL.md)."
        ))),
        Err(s) if s.code() == tonic::Code::Unavailable => Err(unreachable(&s.message())),
        Err(s) => Err(EnrolError::Collector(format!(
            "Collector menjawab dengan galat / The collector answered with an error: {:?}: {}",
            s.code(),
            s.message()
        ))),
    }
}

/// The answer when `url` reached something that speaks HTTP or TLS but not
/// the collector's gRPC: most often the collector's HTTP port (web pages),
/// given instead of its gRPC port. `error` is the connection error's text
/// or the status message: a TLS server without HTTP/2 refuses the ALPN
/// protocol, a plaintext HTTP server answers TLS with a non-TLS record, and
/// an HTTP server without the gRPC route answers with a plain HTTP status.
fn web_port(url: &str, error: &str) -> Option<String> {
    const SIGNS: [&str; 3] = [
        "NoApplicationProtocol",
        "InvalidContentType",
        "HTTP status code",
    ];
    SIGNS.iter().any(|s| error.contains(s)).then(|| {
        format!(
            "{url} menjawab, tetapi bukan port gRPC collector: kemungkinan port HTTP (halaman \
             web, [server] http_listen, biasanya 7471). Agen memakai port gRPC ([server] \
             grpc_listen, biasanya 7470).\n{url} answered, but it is not the collector's gRPC \
             port: most likely its HTTP port (web pages, [server] http_listen, usually 7471). \
             Agents use the gRPC port ([server] grpc_listen, usually 7470).\n  ({error})"
        )
    })
}

/// The `host:port` part of an http(s) URL.
pub fn authority(url: &str) -> Option<String> {
    let uri: tonic::codegen::http::Uri = url.parse().ok()?;
    uri.authority().map(|a| a.as_str().to_string())
}

/// Run the whole enrolment; returns the report to print.
// Long: the steps in order, each refusing before anything is written.
pub async fn enroll(opts: &EnrolOptions) -> Result<String, EnrolError> {
    let credential = match &opts.credential {
        Credential::Token(t) => Credential::Token(t.trim().to_string()),
        Credential::Code(c) => Credential::Code(c.trim().to_string()),
    };
    if matches!(&credential, Credential::Token(t) | Credential::Code(t) if t.is_empty()) {
        return Err(EnrolError::Usage(
            "--code / --token kosong / is empty: paste the enrolment code printed by \
             `pantau-collector agent add`"
                .into(),
        ));
    }
    let url = opts.collector.trim().trim_end_matches('/').to_string();
    if !(url.starts_with("http://") || url.starts_with("https://")) || authority(&url).is_none() {
        return Err(EnrolError::Usage(format!(
            "--collector `{url}` bukan URL / is not a URL: write e.g. https://10.10.0.5:7470"
        )));
    }
    let pin = match &opts.ca_fingerprint {
        Some(fp) => {
            Some(crate::pin::parse_fingerprint(fp).map_err(|e| EnrolError::Usage(e.to_string()))?)
        }
        None => None,
    };
    let mut tls = opts.tls.clone();
    if let Some(ca) = &tls.ca {
        tls.ca = Some(absolute("--ca", ca)?);
    }
    // The service starts in /, so relative paths are made absolute.
    let spool_abs = absolute("--spool-dir", &opts.spool_dir)?;
    let token_abs = absolute("--token-file", &opts.token_file)?;
    let ca_abs = absolute("--config", &ca_path(&opts.config))?;
    let spool_dir = path_str("--spool-dir", &spool_abs)?;
    let token_file = path_str("--token-file", &token_abs)?;

    // Pin the CA before anything is presented or written.
    let pinned = match &pin {
        Some(fp) => Some(
            crate::pin::fetch_pinned_ca(&url, fp)
                .await
                .map_err(|e| EnrolError::Collector(e.to_string()))?,
        ),
        None => None,
    };
    let existing_token = match &credential {
        Credential::Token(t) => Some(t.as_str()),
        Credential::Code(_) => None,
    };
    refuse_to_clobber(opts, existing_token, pinned.as_deref())?;

    // Re-enrolling with a token: the token alone gets nothing under mutual
    // TLS, the key and certificate already next to the configuration are
    // shown (made by an earlier enrolment, or `pantau-agent csr` and
    // `pantau-collector agent issue-cert`) and kept in the new configuration.
    let (cert, key) = (
        crate::identity::cert_path(&opts.config),
        crate::identity::key_path(&opts.config),
    );
    if existing_token.is_some() && tls.cert_key.is_none() && cert.exists() && key.exists() {
        tls.cert_key = Some((absolute("--config", &cert)?, absolute("--config", &key)?));
    }
    let endpoint = match &pinned {
        Some(pem) => crate::export::endpoint_with_ca(&url, pem, tls.cert_key.as_ref()),
        None => crate::export::endpoint(&url, &tls),
    };
    // The key is made here and never sent: only a request to sign it.
    let (key_pem, csr_pem) = crate::identity::new_key_and_csr("pantau-agent")
        .map_err(|e| EnrolError::Files(e.to_string()))?;
    let info = ask_collector(&url, endpoint, &credential, &csr_pem).await?;
    if !config::valid_id(&info.agent_id) {
        return Err(EnrolError::Collector(format!(
            "the collector returned an invalid agent id `{}`",
            info.agent_id
        )));
    }
    let token = match &credential {
        Credential::Token(t) => t.clone(),
        Credential::Code(_) if info.token.is_empty() || info.token.len() > 256 => {
            return Err(EnrolError::Collector(
                "Collector tidak memberi token (versi lama?); perbarui collector.\nThe \
                 collector issued no token (too old?); upgrade the collector."
                    .into(),
            ));
        }
        Credential::Code(_) => info.token.clone(),
    };
    let targets = config::targets_from_toml(&info.targets_toml).map_err(|problems| {
        let list: Vec<String> = problems
            .iter()
            .map(|p| format!("  - {}: {}", p.key, p.message))
            .collect();
        EnrolError::Collector(format!(
            "Target bawaan dari collector tidak sah; admin provinsi perlu memperbaiki bagian \
             [enrol] di konfigurasi collector.\nThe collector's default targets are invalid; \
             the province admin must fix the [enrol] section of the collector configuration:\n{}",
            list.join("\n")
        ))
    })?;
    if let Some(pem) = &pinned {
        write_file(&ca_abs, pem, 0o644)?;
        tls.ca = Some(ca_abs.clone());
    }
    if !info.client_cert_pem.is_empty() {
        let cert = absolute("--config", &crate::identity::cert_path(&opts.config))?;
        let key = absolute("--config", &crate::identity::key_path(&opts.config))?;
        write_secret(&key, &key_pem)?;
        write_file(&cert, &info.client_cert_pem, 0o644)?;
        tls.cert_key = Some((cert, key));
    }
    let text = render_config(&info, &url, &tls, token_file, spool_dir)?;

    write_secret(&opts.token_file, &format!("{token}\n"))?;
    write_file(&opts.config, &text, 0o644)?;

    // Load the files back exactly as `pantau-agent run` will, and check the
    // connection with them.
    let cfg = AgentConfig::load(&opts.config).map_err(|e| {
        EnrolError::Files(format!(
            "the written configuration does not load (a bug; please report it):\n{e}"
        ))
    })?;
    let stored = cfg
        .require_token()
        .map_err(|e| EnrolError::Files(e.to_string()))?;
    let again = ask_collector(
        &cfg.collector_url,
        crate::export::endpoint(&cfg.collector_url, &cfg.collector_tls),
        &Credential::Token(stored),
        "",
    )
    .await?;
    if again.agent_id != cfg.agent_id {
        return Err(EnrolError::Files(format!(
            "the collector now says agent `{}`, the configuration says `{}`",
            again.agent_id, cfg.agent_id
        )));
    }

    let mut out = String::new();
    let opd = if info.opd_name.is_empty() {
        format!("`{}`", info.opd_id)
    } else {
        format!("`{}` ({})", info.opd_id, info.opd_name)
    };
    let _ = writeln!(
        out,
        "Berhasil: agen `{}` terdaftar di OPD {opd}; collector {url} dapat dihubungi dan \
         menerima tokennya.",
        cfg.agent_id
    );
    let _ = writeln!(
        out,
        "Done: agent `{}` belongs to OPD {opd}; the collector at {url} is reachable and \
         accepts its token.",
        cfg.agent_id
    );
    let _ = writeln!(
        out,
        "\n  konfigurasi / configuration: {}\n  token (0600):                {}\n  \
         antrean / spool:             {}\n  target / targets:            {}",
        opts.config.display(),
        token_file,
        spool_dir,
        targets.len()
    );
    if pinned.is_some() {
        let _ = writeln!(
            out,
            "  CA collector (disematkan / pinned): {}",
            ca_abs.display()
        );
    }
    let _ = writeln!(
        out,
        "\nLangkah berikut / Next: systemctl enable --now pantau-agent\n\
         Uji target kapan saja / Test the targets any time: pantau-agent check --config {}",
        opts.config.display()
    );
    Ok(out)
}

fn absolute(flag: &str, p: &Path) -> Result<PathBuf, EnrolError> {
    std::path::absolute(p).map_err(|e| EnrolError::Usage(format!("{flag}: `{}`: {e}", p.display())))
}

fn path_str<'a>(flag: &str, p: &'a Path) -> Result<&'a str, EnrolError> {
    p.to_str()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| EnrolError::Usage(format!("{flag}: `{}` is not a usable path", p.display())))
}

/// An existing configuration is kept unless --force, except the untouched
/// example the package installs. The same for a token file holding another token.
fn refuse_to_clobber(
    opts: &EnrolOptions,
    token: Option<&str>,
    ca_pem: Option<&str>,
) -> Result<(), EnrolError> {
    if opts.force {
        return Ok(());
    }
    if let Ok(existing) = std::fs::read_to_string(&opts.config)
        && existing.trim() != SHIPPED_EXAMPLE.trim()
    {
        return Err(EnrolError::Exists(format!(
            "Konfigurasi {path} sudah ada; tidak ditimpa. Tambahkan --force untuk menggantinya \
             (simpan salinannya dulu bila sudah diubah).\nThe configuration {path} already \
             exists and was left as it is. Add --force to replace it (keep a copy first if you \
             changed it).",
            path = opts.config.display()
        )));
    } else if opts.config.exists() && std::fs::read(&opts.config).is_err() {
        return Err(EnrolError::Exists(format!(
            "{} exists but cannot be read; add --force to replace it",
            opts.config.display()
        )));
    }
    if let Ok(existing) = std::fs::read_to_string(&opts.token_file)
        && (token.is_none() || existing.lines().next().map(str::trim) != token)
        && !existing.trim().is_empty()
    {
        return Err(EnrolError::Exists(format!(
            "Berkas token {path} sudah berisi token lain; tidak ditimpa. Tambahkan --force.\n\
             The token file {path} already holds another token and was left as it is. Add \
             --force to replace it.",
            path = opts.token_file.display()
        )));
    }
    let ca = ca_path(&opts.config);
    if let (Some(pem), Ok(existing)) = (ca_pem, std::fs::read_to_string(&ca))
        && existing.trim() != pem.trim()
    {
        return Err(EnrolError::Exists(format!(
            "Berkas CA {path} sudah berisi CA lain; tidak ditimpa. Tambahkan --force.\n\
             The CA file {path} already holds another CA and was left as it is. Add --force \
             to replace it.",
            path = ca.display()
        )));
    }
    Ok(())
}

/// Where a pinned CA is written: `ca.crt` next to the configuration.
pub fn ca_path(config: &Path) -> PathBuf {
    config.with_file_name("ca.crt")
}

fn quoted(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// The agent configuration written by `enroll`.
pub fn render_config(
    info: &pb::EnrolInfo,
    url: &str,
    tls: &config::CollectorTls,
    token_file: &str,
    spool_dir: &str,
) -> Result<String, EnrolError> {
    let mut s = String::new();
    let opd = if info.opd_name.is_empty() {
        info.opd_id.clone()
    } else {
        format!("{} ({})", info.opd_id, info.opd_name)
    }
    .replace(|c: char| c.is_control(), " ");
    let _ = writeln!(
        s,
        "# Pantau agent configuration, written by `pantau-agent enroll` on {}.\n\
         # OPD: {opd}. Every key is described in docs/CONFIG.md; unknown keys are an error.\n\
         # The targets below are the province's standard set, sent by the collector;\n\
         # add the OPD's own targets (gateway, applications) at the end.\n",
        chrono::Utc::now().format("%Y-%m-%d %H:%M UTC")
    );
    let _ = writeln!(
        s,
        "[agent]\n# Agent id as registered at the collector.\nid = {}\nheartbeat_interval = \"30s\"\n\
         max_concurrent_probes = 32\n",
        quoted(&info.agent_id)
    );
    let _ = writeln!(
        s,
        "[collector]\n# gRPC address of the provincial collector.\nurl = {}\n\
         # The agent token (first line), readable only by root and the agent.\ntoken_file = {}",
        quoted(url),
        quoted(token_file)
    );
    if let Some(ca) = &tls.ca {
        let _ = writeln!(
            s,
            "# CA certificate that signed the collector's certificate.\nca = {}",
            quoted(path_str("--ca", ca)?)
        );
    }
    if let Some((cert, key)) = &tls.cert_key {
        let _ = writeln!(
            s,
            "# Sertifikat klien agen (mTLS), diperbarui otomatis sebelum kedaluwarsa.\n\
             # The agent's client certificate (mutual TLS), renewed before it expires.\n\
             cert = {}\nkey = {}",
            quoted(path_str("--config", cert)?),
            quoted(path_str("--config", key)?)
        );
    }
    if tls.insecure {
        let _ = writeln!(
            s,
            "# TIDAK AMAN / INSECURE: plaintext gRPC, token and results readable on the network.\n\
             insecure = true"
        );
    }
    s.push('\n');
    let _ = writeln!(
        s,
        "[spool]\n# Results wait here until the collector confirms them; outages lose nothing.\n\
         dir = {}\nmax_size = \"256MiB\"\nmax_age = \"7days\"\nfsync = \"interval\"\n",
        quoted(spool_dir)
    );
    let _ = writeln!(
        s,
        "[defaults]\ninterval = \"30s\"\ntimeout = \"5s\"\nicmp_count = 5\n"
    );
    if info.targets_toml.trim().is_empty() {
        s.push_str(
            "# The collector sent no default targets. Add [[targets]] here (docs/CONFIG.md).\n",
        );
    } else {
        s.push_str("# Target standar dari collector / the standard targets from the collector.\n");
        s.push_str(info.targets_toml.trim_end());
        s.push('\n');
    }
    Ok(s)
}

/// Write `text` to `path` through a temporary file and a rename, with `mode`.
fn write_file(path: &Path, text: &str, mode: u32) -> Result<(), EnrolError> {
    let fail = |what: &str, e: std::io::Error| {
        EnrolError::Files(format!(
            "Tidak dapat menulis / cannot write {}: {what}: {e}",
            path.display()
        ))
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| fail("create its directory", e))?;
    }
    let tmp = path.with_extension("enroll-tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .map_err(|e| fail("create", e))?;
    let written = f
        .write_all(text.as_bytes())
        .and_then(|()| f.set_permissions(std::fs::Permissions::from_mode(mode)))
        .and_then(|()| f.sync_all());
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(fail("write", e));
    }
    if mode & 0o077 == 0 {
        give_to_service_user(&tmp);
    }
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        fail("rename into place", e)
    })
}

/// The token: mode 0600, owned by the service user when it exists (so the
/// packaged service can read it), else by whoever runs enroll.
fn write_secret(path: &Path, text: &str) -> Result<(), EnrolError> {
    write_file(path, text, 0o600)
}

fn give_to_service_user(path: &Path) {
    if !nix::unistd::geteuid().is_root() {
        return;
    }
    if let Ok(Some(user)) = nix::unistd::User::from_name(SERVICE_USER) {
        let _ = std::os::unix::fs::chown(path, Some(user.uid.as_raw()), Some(user.gid.as_raw()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(targets: &str) -> pb::EnrolInfo {
        pb::EnrolInfo {
            agent_id: "dinkes-1".into(),
            opd_id: "dinkes".into(),
            opd_name: "Dinas Kesehatan\nbaris baru".into(),
            targets_toml: targets.into(),
            collector_version: "0.1.0".into(),
            ..Default::default()
        }
    }

    #[test]
    fn the_written_configuration_loads_with_the_agents_loader() {
        let dir = tempfile::tempdir().unwrap();
        let targets = "[[targets]]\nid = \"pusat-data\"\ngroup = \"datacenter\"\nkind = \"icmp\"\n\
                       address = \"10.10.0.5\"\n\n[[targets]]\nid = \"pusat-data-tcp\"\n\
                       group = \"datacenter\"\nkind = \"tcp\"\naddress = \"10.10.0.5:7470\"\n";
        let tls = config::CollectorTls {
            insecure: false,
            ca: Some("/etc/pantau/collector-ca.crt".into()),
            cert_key: Some((
                "/etc/pantau/agent.crt".into(),
                "/etc/pantau/agent.key".into(),
            )),
        };
        let text = render_config(
            &info(targets),
            "https://10.10.0.5:7470",
            &tls,
            "/etc/pantau/agent.token",
            "/var/lib/pantau-agent/spool",
        )
        .unwrap();
        let path = dir.path().join("agent.toml");
        std::fs::write(&path, &text).unwrap();
        let cfg = AgentConfig::load(&path).unwrap();
        assert_eq!(cfg.agent_id, "dinkes-1");
        assert_eq!(cfg.collector_url, "https://10.10.0.5:7470");
        assert_eq!(cfg.collector_tls, tls);
        assert_eq!(
            cfg.token,
            Some(config::TokenSource::File("/etc/pantau/agent.token".into()))
        );
        assert_eq!(cfg.spool.dir, PathBuf::from("/var/lib/pantau-agent/spool"));
        let ids: Vec<&str> = cfg.targets.iter().map(|t| t.id.as_str()).collect();
        assert_eq!(ids, ["pusat-data", "pusat-data-tcp"]);
        assert!(text.contains("# OPD: dinkes (Dinas Kesehatan baris baru)."));

        // Plaintext only as asked for, and then written down loudly.
        let insecure = config::CollectorTls {
            insecure: true,
            ca: None,
            cert_key: None,
        };
        let empty = render_config(&info(""), "http://[::1]:7470", &insecure, "t", "s").unwrap();
        assert!(empty.contains("INSECURE"), "{empty}");
        std::fs::write(&path, &empty).unwrap();
        let loaded = AgentConfig::load(&path).unwrap();
        assert!(loaded.targets.is_empty());
        assert_eq!(loaded.collector_tls, insecure);
    }

    #[test]
    fn the_code_comes_from_stdin_a_file_or_the_argument() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("code");
        std::fs::write(&file, "PE-AAAAA-BBBBB\nignored\n").unwrap();
        let code = |c: &str| Credential::Code(c.to_string());
        let mut stdin: &[u8] = b"  PE-CCCCC\n";
        assert_eq!(
            read_code(Some("-"), None, &mut stdin).unwrap(),
            code("PE-CCCCC")
        );
        assert_eq!(
            read_code(None, Some(&file), &mut &b""[..]).unwrap(),
            code("PE-AAAAA-BBBBB")
        );
        assert_eq!(
            read_code(Some("PE-D"), None, &mut &b""[..]).unwrap(),
            code("PE-D")
        );
        let empty = read_code(Some("-"), None, &mut &b"\n"[..]).unwrap_err();
        assert_eq!(empty.exit_code(), 64, "{empty}");
        assert!(read_code(None, Some(&dir.path().join("none")), &mut &b""[..]).is_err());
        assert!(!CODE_ON_ARGV_WARNING.contains("  "));
    }

    #[test]
    fn authority_is_host_and_port() {
        assert_eq!(
            authority("http://10.10.0.5:7470").as_deref(),
            Some("10.10.0.5:7470")
        );
        assert_eq!(
            authority("http://[::1]:7470/").as_deref(),
            Some("[::1]:7470")
        );
        assert_eq!(authority("not a url"), None);
    }

    #[test]
    fn secrets_are_written_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("agent.token");
        write_secret(&path, "pantau_x\n").unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "pantau_x\n");
    }
}
