//! `pantau-agent`: parse the command line, load the configuration, run.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};
use pantau_agent::config::AgentConfig;
use tokio_util::sync::CancellationToken;

/// Exit code for a configuration the agent cannot use (sysexits EX_USAGE).
const EXIT_CONFIG: u8 = 64;
/// Exit code when another pantau-agent holds the spool (sysexits
/// EX_TEMPFAIL): systemd retries, and a manual run sees a distinct code.
const EXIT_SPOOL_IN_USE: u8 = 75;

#[derive(Parser)]
#[command(
    name = "pantau-agent",
    version,
    about = "Pantau agent: probes connectivity from an OPD office"
)]
struct Cli {
    /// Log as JSON lines (for journald or Loki).
    #[arg(long, global = true, env = "PANTAU_LOG_JSON")]
    log_json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the agent as a daemon.
    ///
    /// Example: pantau-agent run --config /etc/pantau/agent.toml
    Run {
        /// Agent configuration file (TOML).
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Run every configured probe once, print a table, exit non-zero if any failed.
    ///
    /// Example: pantau-agent check --config /etc/pantau/agent.toml
    Check {
        /// Agent configuration file (TOML).
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Enrol this machine: exchange the one-time enrolment code for the
    /// agent's token, write the token file, the collector's CA and a complete
    /// configuration, check the connection.
    ///
    /// Example: pantau-agent enroll --collector https://10.10.0.5:7470 --ca-fingerprint AB:CD:... --code-file /root/pantau.code
    #[command(group(clap::ArgGroup::new("credential").required(true).args(["code", "code_file", "token"])))]
    Enroll {
        /// Collector gRPC URL.
        #[arg(long)]
        collector: String,
        /// File holding the one-time enrolment code printed by
        /// `pantau-collector agent add` (first line).
        #[arg(long)]
        code_file: Option<PathBuf>,
        /// The enrolment code; `-` reads it from standard input (a value here
        /// is visible in the process list: prefer `-` or --code-file).
        #[arg(long)]
        code: Option<String>,
        /// The agent's existing token instead of a code (to re-enrol).
        #[arg(long, env = "PANTAU_AGENT_TOKEN", hide_env_values = true)]
        token: Option<String>,
        /// SHA-256 fingerprint of the collector's CA (printed by `pantau-collector
        /// agent add` and `ca show`): the CA is pinned and written as ca.crt
        /// next to the configuration.
        #[arg(long, conflicts_with_all = ["ca", "insecure"])]
        ca_fingerprint: Option<String>,
        /// Where to write the agent configuration.
        #[arg(long, short, default_value = "/etc/pantau/agent.toml")]
        config: PathBuf,
        /// Where to write the token (mode 0600).
        #[arg(long, default_value = "/etc/pantau/agent.token")]
        token_file: PathBuf,
        /// Spool directory to put in the configuration.
        #[arg(long, default_value = pantau_agent::config::DEFAULT_SPOOL_DIR)]
        spool_dir: PathBuf,
        /// Replace an existing configuration and token file.
        #[arg(long)]
        force: bool,
        /// CA certificate (PEM) of the collector (`<data_dir>/tls/ca.crt` of the built-in CA).
        #[arg(long)]
        ca: Option<PathBuf>,
        /// Allow a plaintext http:// collector URL (token and results readable on the network).
        #[arg(long)]
        insecure: bool,
    },
    /// Print the shell completion script.
    ///
    /// Example: pantau-agent completions bash > /etc/bash_completion.d/pantau-agent
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: pantau_core::clidocs::Shell,
    },
    /// Make this agent's key (mode 0600, kept when it exists) and a
    /// certificate signing request for out-of-band enrolment: the operator
    /// signs `agent.csr` with `pantau-collector agent issue-cert` and puts the
    /// certificate where `collector.cert` names it.
    ///
    /// Example: pantau-agent csr --config /etc/pantau/agent.toml
    Csr {
        /// Agent configuration file (TOML); the key and `agent.csr` go next
        /// to it. It need not exist yet when `--id` is given.
        #[arg(long, short)]
        config: PathBuf,
        /// The agent id (default: `agent.id` of the configuration).
        #[arg(long)]
        id: Option<String>,
    },
    /// Print the man page (roff), or write one page per command into a directory.
    ///
    /// Example: pantau-agent man | man -l -
    Man {
        /// Write pantau-agent.1 and pantau-agent-COMMAND.1 here instead.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

/// What the man pages say beside the command line.
const MAN: pantau_core::clidocs::ManExtra = pantau_core::clidocs::ManExtra {
    exit_status: &[
        ("0", "success"),
        (
            "1",
            "check: a probe failed; enroll: the collector refused or could not be reached \
             (nothing written); any other command: it failed, with the reason on stderr",
        ),
        ("2", "the command line is wrong (usage printed)"),
        (
            "64",
            "the configuration cannot be used: every problem is listed as FILE: KEY: what is \
             wrong",
        ),
        ("73", "enroll: a configuration exists already; add --force"),
        ("75", "run: another pantau-agent holds the spool directory"),
    ],
    environment: &[
        (
            "PANTAU_AGENT__SECTION__KEY",
            "overrides a configuration key, e.g. PANTAU_AGENT__COLLECTOR__URL",
        ),
        ("PANTAU_AGENT_TOKEN", "enroll: the token or enrolment code"),
        ("PANTAU_LOG_JSON", "1: log JSON lines instead of text"),
        ("RUST_LOG", "log level, e.g. info or pantau_agent=debug"),
        (
            "SSL_CERT_FILE, SSL_CERT_DIR",
            "where HTTP probes read the machine's trust store (default /etc/ssl/certs)",
        ),
    ],
    files: &[
        (
            "/etc/pantau/agent.toml",
            "the configuration, see pantau-agent.toml(5)",
        ),
        (
            "/etc/pantau/agent.token",
            "the agent token (mode 0600 or 0640)",
        ),
        (
            "/etc/pantau/agent.key, agent.crt, agent.csr",
            "the mutual-TLS key (mode 0600, never leaves the machine), certificate and request",
        ),
        ("/etc/pantau/ca.crt", "the collector's CA certificate"),
        (
            "/var/lib/pantau-agent/spool",
            "the durable spool: results until the collector acknowledges them",
        ),
        (
            "/var/lib/pantau-agent/bandwidth-budget.json",
            "bytes the bandwidth tests used this month",
        ),
    ],
    see_also: &["pantau-agent.toml(5)", "pantau-collector(1)"],
};

/// The configuration reference the section-5 page is made from.
const CONFIG_MD: &str = include_str!("../../docs/CONFIG.md");

/// `pantau-agent man`: the main page on stdout, or every page (the
/// commands' and `pantau-agent.toml.5`) into `out`.
fn man(out: Option<&std::path::Path>) -> Result<(), pantau_core::clidocs::ManError> {
    pantau_core::clidocs::man_command(Cli::command(), &MAN, out)?;
    let Some(dir) = out else { return Ok(()) };
    let path = dir.join("pantau-agent.toml.5");
    std::fs::write(&path, config_page()).map_err(|source| pantau_core::clidocs::ManError::Dir {
        dir: dir.to_path_buf(),
        source,
    })?;
    println!("{}", path.display());
    Ok(())
}

/// pantau-agent.toml(5), from the agent's part of docs/CONFIG.md.
fn config_page() -> Vec<u8> {
    let start = CONFIG_MD.find("## pantau-agent").unwrap_or(0);
    let end = CONFIG_MD[start..]
        .find("## pantau-collector")
        .map_or(CONFIG_MD.len(), |e| start + e);
    let body = CONFIG_MD[start..end]
        .split_once('\n')
        .map_or("", |(_, rest)| rest);
    let extra = pantau_core::clidocs::ManExtra {
        files: MAN.files,
        environment: &MAN.environment[..1],
        see_also: &["pantau-agent(1)"],
        exit_status: &[],
    };
    pantau_core::clidocs::file_format_page(
        "pantau-agent.toml",
        "configuration of pantau-agent (TOML: durations like \"30s\", unknown keys are errors)",
        body,
        &extra,
    )
}

/// `pantau-agent csr`.
fn csr(config: &std::path::Path, id: Option<String>) -> ExitCode {
    let (agent_id, key) = match id {
        Some(id) if pantau_agent::config::valid_id(&id) => (id, None),
        Some(id) => {
            eprintln!("pantau-agent csr: --id `{id}` bukan id agen / is not an agent id");
            return ExitCode::from(2);
        }
        None => match load(config) {
            Ok(c) => {
                let key = c.collector_tls.cert_key.map(|(_, k)| k);
                (c.agent_id, key)
            }
            Err(code) => return code,
        },
    };
    match pantau_agent::identity::write_csr(config, &agent_id, key.as_deref()) {
        Ok((key, csr)) => {
            println!("{}", csr.display());
            eprintln!(
                "kunci: {} (0600); tanda tangani CSR di kolektor / key: {} (0600); sign the CSR on the collector:\n  \
                 pantau-collector agent issue-cert {agent_id} --csr agent.csr --out agent.crt",
                key.display(),
                key.display(),
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("pantau-agent csr: {e}");
            ExitCode::FAILURE
        }
    }
}

fn load(path: &std::path::Path) -> Result<AgentConfig, ExitCode> {
    AgentConfig::load(path).map_err(|e| {
        eprint!("{e}");
        ExitCode::from(EXIT_CONFIG)
    })
}

/// What `enroll` presents: an existing token, or the one-time code from
/// `--code-file`, stdin (`--code -`) or argv (warned: visible to `ps`).
fn enrol_credential(
    token: Option<String>,
    code: Option<String>,
    code_file: Option<PathBuf>,
) -> Result<pantau_agent::enroll::Credential, ExitCode> {
    if let Some(t) = token {
        return Ok(pantau_agent::enroll::Credential::Token(t));
    }
    if code.as_deref().is_some_and(|c| c != "-") {
        eprintln!("{}", pantau_agent::enroll::CODE_ON_ARGV_WARNING);
    }
    pantau_agent::enroll::read_code(
        code.as_deref(),
        code_file.as_deref(),
        &mut std::io::stdin().lock(),
    )
    .map_err(|e| {
        eprintln!("pantau-agent enroll: {e}");
        ExitCode::from(e.exit_code())
    })
}

// Long: one arm per subcommand, each a few lines of load, run, exit code.
fn main() -> ExitCode {
    let cli = Cli::parse();
    match &cli.command {
        Command::Completions { shell } => {
            pantau_core::clidocs::completions(Cli::command(), *shell, &mut std::io::stdout());
            return ExitCode::SUCCESS;
        }
        Command::Man { out } => {
            return match man(out.as_deref()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("pantau-agent man: {e}");
                    ExitCode::FAILURE
                }
            };
        }
        _ => {}
    }
    pantau_agent::process::init_logging(cli.log_json);
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match cli.command {
        Command::Run { config } => {
            let cfg = match load(&config) {
                Ok(c) => c,
                Err(code) => return code,
            };
            let shutdown = CancellationToken::new();
            rt.block_on(async {
                let s = shutdown.clone();
                tokio::spawn(async move {
                    pantau_agent::process::shutdown_signal().await;
                    s.cancel();
                });
                match pantau_agent::run(cfg, shutdown).await {
                    Ok(()) => ExitCode::SUCCESS,
                    Err(e) if e.spool_in_use() => {
                        eprintln!("pantau-agent: {e}\n(config: {})", config.display());
                        ExitCode::from(EXIT_SPOOL_IN_USE)
                    }
                    Err(e) => {
                        eprintln!("pantau-agent: {e} (in {})", config.display());
                        ExitCode::from(EXIT_CONFIG)
                    }
                }
            })
        }
        Command::Enroll {
            collector,
            code_file,
            code,
            token,
            ca_fingerprint,
            config,
            token_file,
            spool_dir,
            force,
            ca,
            insecure,
        } => {
            let credential = match enrol_credential(token, code, code_file) {
                Ok(c) => c,
                Err(code) => return code,
            };
            let opts = pantau_agent::enroll::EnrolOptions {
                collector,
                credential,
                ca_fingerprint,
                config,
                token_file,
                spool_dir,
                force,
                tls: pantau_agent::config::CollectorTls {
                    insecure,
                    ca,
                    cert_key: None,
                },
            };
            rt.block_on(async {
                match pantau_agent::enroll::enroll(&opts).await {
                    Ok(report) => {
                        print!("{report}");
                        ExitCode::SUCCESS
                    }
                    Err(e) => {
                        eprintln!("pantau-agent enroll: {e}");
                        ExitCode::from(e.exit_code())
                    }
                }
            })
        }
        Command::Completions { .. } | Command::Man { .. } => ExitCode::SUCCESS,
        Command::Csr { config, id } => csr(&config, id),
        Command::Check { config } => {
            let cfg = match load(&config) {
                Ok(c) => c,
                Err(code) => return code,
            };
            rt.block_on(async {
                match pantau_agent::check::check(&cfg).await {
                    Ok((table, all_ok)) => {
                        print!("{table}");
                        println!(
                            "kolektor / collector: {}",
                            cfg.collector_urls.join(" (lalu / then) ")
                        );
                        if all_ok {
                            ExitCode::SUCCESS
                        } else {
                            ExitCode::from(1)
                        }
                    }
                    Err(e) => {
                        eprintln!("pantau-agent check: {e}");
                        ExitCode::FAILURE
                    }
                }
            })
        }
    }
}
