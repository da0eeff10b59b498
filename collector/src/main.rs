//! `pantau-collector`: parse the command line, load configuration, dispatch
//! to the library (`pantau_collector::cli` and the report commands).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};
use pantau_collector::cli::admin::{AgentCmd, OpdCmd};
use pantau_collector::cli::report as report_cli;
use pantau_collector::cli::{self, done, fail};
use pantau_collector::config::CollectorConfig;
use pantau_collector::report;

#[derive(Parser)]
#[command(
    name = "pantau-collector",
    version,
    about = "Pantau collector: stores agent results, serves metrics, API and pages"
)]
struct Cli {
    /// Collector configuration file (TOML).
    #[arg(long, short, global = true)]
    config: Option<PathBuf>,
    /// Data directory (overrides server.data_dir).
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    /// Log as JSON lines (for journald or Loki).
    #[arg(long, global = true, env = "PANTAU_LOG_JSON")]
    log_json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the collector.
    ///
    /// Example: pantau-collector serve --config /etc/pantau/collector.toml
    Serve {
        /// gRPC listen address for agents (overrides server.grpc_listen).
        #[arg(long)]
        grpc_listen: Option<SocketAddr>,
        /// HTTP listen address (overrides server.http_listen).
        #[arg(long)]
        http_listen: Option<SocketAddr>,
    },
    /// The store itself: `store migrate --to postgres://...` copies the
    /// SQLite store into an empty PostgreSQL database.
    Store {
        #[command(subcommand)]
        cmd: cli::store::StoreCmd,
    },
    /// Manage OPDs (perangkat daerah).
    Opd {
        #[command(subcommand)]
        cmd: OpdCmd,
    },
    /// Manage agents.
    Agent {
        #[command(subcommand)]
        cmd: AgentCmd,
    },
    /// Central targets pushed to agents: province templates, per OPD, per agent.
    ///
    /// Example: pantau-collector target import --scope province templates.toml
    Target {
        #[command(subcommand)]
        cmd: pantau_collector::cli::target::TargetCmd,
    },
    /// The report signing key: show it and its retired keys, or rotate it.
    ///
    /// Example: pantau-collector key rotate
    Key {
        #[command(subcommand)]
        cmd: report_cli::KeyCmd,
    },
    /// The audit log of admin actions: list, export (JSON lines, syslog).
    Audit {
        #[command(subcommand)]
        cmd: pantau_collector::cli::audit::AuditCmd,
    },
    /// Check the audit log's hash chain (or an exported JSON-lines file):
    /// exit code 1 naming the first removed, edited or reordered seq.
    ///
    /// Example: pantau-collector verify-audit --file audit.jsonl
    VerifyAudit {
        /// An `audit list --json` export instead of this collector's log.
        #[arg(long)]
        file: Option<PathBuf>,
    },
    /// Web users (login to pages and API): add, list, passwd, disable, enable, remove.
    ///
    /// Example: pantau-collector user add ani --role opd --opd dinkes
    User {
        #[command(subcommand)]
        cmd: pantau_collector::cli::user::UserCmd,
    },
    /// API tokens for machines (Grafana, scripts, Prometheus): add, list, revoke.
    ///
    /// Example: pantau-collector token add prometheus --role scrape > /etc/prometheus/pantau.token
    Token {
        #[command(subcommand)]
        cmd: pantau_collector::cli::user::TokenCmd,
    },
    /// The register of signed reports handed out by the web (number, period,
    /// scope, SHA-256, requester).
    ///
    /// Example: pantau-collector register
    Register {
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// The built-in CA of the agents' gRPC port (TLS).
    Ca {
        #[command(subcommand)]
        cmd: pantau_collector::cli::ca::CaCmd,
    },
    /// Quickstart: a collector on a fresh data directory plus a local agent.
    ///
    /// Example: pantau-collector demo
    #[cfg(feature = "demo")]
    Demo {
        /// gRPC listen address.
        #[arg(long, default_value = "127.0.0.1:7470")]
        grpc_listen: SocketAddr,
        /// HTTP listen address.
        #[arg(long, default_value = "127.0.0.1:7471")]
        http_listen: SocketAddr,
        /// Probe only local targets (no internet targets).
        #[arg(long)]
        offline: bool,
    },
    /// Write a signed SPBE report bundle: the report, the raw results of the
    /// period and a signed manifest.
    ///
    /// Example: pantau-collector report --opd all --from 2026-11-01 --to 2026-11-30 --format pdf --out laporan-nov
    Report {
        /// OPD id, or `all` for the province.
        #[arg(long)]
        opd: String,
        /// First day (2026-11-01; a time names its local day).
        #[arg(long, required_unless_present = "period", requires = "to")]
        from: Option<pantau_collector::when::When>,
        /// Last day, inclusive (2026-11-30).
        #[arg(long, required_unless_present = "period", requires = "from")]
        to: Option<pantau_collector::when::When>,
        /// Instead of --from/--to: 2026 (year), 2026-S1 (semester),
        /// 2026-Q3 (quarter) or 2026-11 (month).
        #[arg(long, conflicts_with_all = ["from", "to"], value_parser = report::parse_period)]
        period: Option<(chrono::NaiveDate, chrono::NaiveDate)>,
        /// pdf, xlsx, csv, html or json.
        #[arg(long, default_value = "pdf")]
        format: String,
        /// Directory to write the bundle into.
        #[arg(long)]
        out: PathBuf,
        /// id (Bahasa Indonesia) or en.
        #[arg(long, default_value = "id")]
        lang: String,
        /// Report number printed in the header.
        #[arg(long)]
        number: Option<String>,
        /// Count business hours only.
        #[arg(long)]
        business_hours: bool,
        /// Compare with an earlier period: its first day.
        #[arg(long, requires = "compare_to")]
        compare_from: Option<pantau_collector::when::When>,
        /// Compare with an earlier period: its last day.
        #[arg(long, requires = "compare_from")]
        compare_to: Option<pantau_collector::when::When>,
        /// Print progress steps to stderr (automatic when stderr is a terminal).
        #[arg(long)]
        progress: bool,
        /// Date of issue printed in the header (2026-12-04; default today).
        #[arg(long)]
        issued: Option<pantau_collector::when::When>,
    },
    /// Verify a signed report bundle (directory, any file in it, or a .tar).
    ///
    /// Exit codes: 0 intact and signed by the expected key (--public-key, or
    /// this collector's own key in its data directory); 1 verification failed
    /// (a file changed, missing, or not listed in the manifest; a bad
    /// signature; another key); 3 intact, but no expected key was known, so
    /// integrity was checked and origin was NOT (asal-usul tidak diperiksa).
    ///
    /// Example: pantau-collector verify laporan-nov --public-key 3b6a27bc...
    Verify {
        /// Bundle directory or a file in it.
        path: PathBuf,
        /// Expected collector public key (hex); default: this collector's key if present.
        #[arg(long)]
        public_key: Option<String>,
    },
    /// Record a maintenance window (excluded from availability).
    ///
    /// Example: pantau-collector maintenance --opd dinkes --from 2026-11-28T01:00:00Z --to 2026-11-28T03:00:00Z --reason "ganti router" --by budi
    Maintenance {
        /// OPD id (default: every OPD).
        #[arg(long)]
        opd: Option<String>,
        /// Group (default: every group).
        #[arg(long)]
        group: Option<String>,
        /// Start: a time (2026-12-04 22:00 in the collector's zone, or RFC 3339) or a
        /// day (its first minute).
        #[arg(long)]
        from: pantau_collector::when::When,
        /// End: a time, or a day (through its last minute).
        #[arg(long)]
        to: pantau_collector::when::When,
        /// Why.
        #[arg(long)]
        reason: String,
        /// Who records it.
        #[arg(long)]
        by: String,
    },
    /// List incidents (gangguan) of a period, with probable cause, notes and
    /// tickets; times are RFC 3339 in the configured zone.
    ///
    /// Example: pantau-collector incidents --opd dinkes --from 2026-11-01 --to 2026-11-30
    Incidents {
        /// OPD id (default: every OPD).
        #[arg(long)]
        opd: Option<String>,
        /// First day (a time names its local day).
        #[arg(long)]
        from: pantau_collector::when::When,
        /// Last day (inclusive).
        #[arg(long)]
        to: pantau_collector::when::When,
        /// Language of the labels: id or en.
        #[arg(long, default_value = "id")]
        lang: String,
    },
    /// List recorded maintenance windows.
    ///
    /// Example: pantau-collector maintenance-list --opd dinkes
    MaintenanceList {
        /// OPD id (default: every OPD; windows for all OPDs are always shown).
        #[arg(long)]
        opd: Option<String>,
    },
    /// End a maintenance window now (its id from `maintenance-list`).
    ///
    /// Example: pantau-collector maintenance-end 3
    MaintenanceEnd {
        /// Window id.
        id: i64,
    },
    /// Delete a maintenance window recorded by mistake, with the reason (audited).
    ///
    /// Example: pantau-collector maintenance-delete 3 --reason "salah tanggal"
    MaintenanceDelete {
        /// Window id.
        id: i64,
        /// Why it is deleted.
        #[arg(long)]
        reason: String,
    },
    /// Add an admin note and ticket reference to an incident (gangguan).
    IncidentNote {
        /// OPD id.
        #[arg(long)]
        opd: String,
        /// Group.
        #[arg(long)]
        group: String,
        /// Incident start as `incidents` and the report show it (RFC 3339, or
        /// 2026-12-04 08:15 in the collector's zone).
        #[arg(long)]
        start: pantau_collector::when::When,
        /// Note.
        #[arg(long)]
        note: String,
        /// Ticket reference.
        #[arg(long, default_value = "")]
        ticket: String,
        /// Who writes it.
        #[arg(long)]
        by: String,
    },
    /// Print the shell completion script.
    ///
    /// Example: pantau-collector completions bash > /etc/bash_completion.d/pantau-collector
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: pantau_core::clidocs::Shell,
    },
    /// Print the man page (roff), or write one page per command into a directory.
    ///
    /// Example: pantau-collector man | man -l -
    Man {
        /// Write pantau-collector.1 and pantau-collector-COMMAND.1 here instead.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

/// What the man pages say beside the command line.
const MAN: pantau_core::clidocs::ManExtra = pantau_core::clidocs::ManExtra {
    exit_status: &[
        (
            "0",
            "success (verify: the bundle is intact and signed by this collector's key)",
        ),
        ("1", "the command failed; the reason is on stderr"),
        ("2", "the command line is wrong (usage printed)"),
        (
            "3",
            "verify: the bundle is intact and its signature valid, but no expected key was \
             given or found, so its origin is not checked",
        ),
        (
            "64",
            "the configuration cannot be used (every problem listed as FILE: KEY: what is \
             wrong), or no data directory was given",
        ),
    ],
    environment: &[
        (
            "PANTAU_COLLECTOR__SECTION__KEY",
            "overrides a configuration key, e.g. PANTAU_COLLECTOR__SERVER__DATA_DIR",
        ),
        (
            "PANTAU_STORE_URL",
            "the PostgreSQL URL ([store] url), keeping a password out of the file",
        ),
        ("PANTAU_LOG_JSON", "1: log JSON lines instead of text"),
        ("RUST_LOG", "log level, e.g. info or pantau_collector=debug"),
    ],
    files: &[
        (
            "/etc/pantau/collector.toml",
            "the configuration, read when --config is not given",
        ),
        (
            "/var/lib/pantau-collector/pantau.db",
            "the SQLite store (the data directory of the packaged service)",
        ),
        (
            "DATA_DIR/tls/",
            "the built-in CA (ca.crt, ca.key) and the server certificate",
        ),
        (
            "DATA_DIR/report-signing.key",
            "the key that signs report bundles",
        ),
        (
            "DATA_DIR/admin-password-once",
            "the first admin's one-time password (deleted at the first login)",
        ),
    ],
    see_also: &["pantau-agent(1)", "pantau-agent.toml(5)"],
};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match &cli.command {
        Command::Completions { shell } => {
            pantau_core::clidocs::completions(Cli::command(), *shell, &mut std::io::stdout());
            return ExitCode::SUCCESS;
        }
        Command::Man { out } => {
            return match pantau_core::clidocs::man_command(Cli::command(), &MAN, out.as_deref()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => fail(e),
            };
        }
        _ => {}
    }
    pantau_core::process::init_logging(cli.log_json);
    // Checking a bundle (against this collector's key only when a data
    // directory is known) or an exported audit file needs no data
    // directory; the demo makes a fresh one.
    let needs_data_dir = !matches!(
        &cli.command,
        Command::Verify { .. } | Command::VerifyAudit { file: Some(_) }
    ) && !is_demo(&cli.command);
    let file = cli::config_file(cli.config.as_deref());
    let cfg = match cli::config(file.as_deref(), cli.data_dir.as_deref(), needs_data_dir) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let admin = matches!(
        cli.command,
        Command::Opd { .. }
            | Command::Agent { .. }
            | Command::Target { .. }
            | Command::Key { .. }
            | Command::Ca { .. }
            | Command::Maintenance { .. }
            | Command::MaintenanceEnd { .. }
            | Command::MaintenanceDelete { .. }
            | Command::IncidentNote { .. }
            | Command::Report { .. }
    );
    let head = if admin { cli::audit::head(&cfg) } else { 0 };
    let forward = admin.then(|| cfg.clone());
    let code = run(cli.command, cfg, cli.data_dir);
    if let Some(cfg) = forward {
        cli::audit::forward_new(&cfg, head);
    }
    code
}

/// Whether `command` is the demo (which makes its own data directory).
fn is_demo(command: &Command) -> bool {
    #[cfg(feature = "demo")]
    if matches!(command, Command::Demo { .. }) {
        return true;
    }
    let _ = command;
    false
}

/// The commands that need the configuration. `data_dir` is the command
/// line's own (the demo makes a fresh one when it is not given).
#[cfg_attr(not(feature = "demo"), allow(unused_variables))]
fn run(command: Command, cfg: CollectorConfig, data_dir: Option<PathBuf>) -> ExitCode {
    match command {
        Command::Serve {
            grpc_listen,
            http_listen,
        } => {
            let mut cfg = cfg;
            cfg.grpc_listen = grpc_listen.unwrap_or(cfg.grpc_listen);
            cfg.http_listen = http_listen.unwrap_or(cfg.http_listen);
            cli::runtime(|shutdown| cli::serve(cfg, shutdown))
        }
        #[cfg(feature = "demo")]
        Command::Demo {
            grpc_listen,
            http_listen,
            offline,
        } => {
            let opts = pantau_collector::demo::DemoOptions {
                data_dir,
                grpc_listen,
                http_listen,
                offline,
            };
            cli::runtime(|shutdown| async move {
                pantau_collector::demo::run(opts, shutdown)
                    .await
                    .map_err(|e| format!("{e:#}"))
            })
        }
        Command::Opd { cmd } => cli::exit(cli::admin::opd(&cfg, cmd, &mut std::io::stdout())),
        Command::Agent { cmd } => cli::exit(cli::admin::agent(
            &cfg,
            cmd,
            &cli::enrol::EnrolHint::from_config(&cfg),
            &mut std::io::stdout(),
            &mut std::io::stderr(),
        )),
        Command::Target { cmd } => cli::exit(pantau_collector::cli::target::target(
            &cfg,
            cmd,
            &mut std::io::stdout(),
        )),
        Command::Key { cmd } => done(report_cli::key_audited(&cfg, cmd)),
        Command::Audit { cmd } => cli::exit(cli::audit::audit(&cfg, cmd, &mut std::io::stdout())),
        Command::VerifyAudit { file } => done(cli::audit::verify_audit(&cfg, file.as_deref())),
        Command::Ca { cmd } => cli::exit(pantau_collector::cli::ca::ca(
            &cfg,
            cmd,
            &mut std::io::stdout(),
        )),
        Command::Store { cmd } => cli::exit(cli::store::store(&cfg, cmd, &mut std::io::stdout())),
        Command::User { cmd } => cli::exit(pantau_collector::cli::user::user(
            &cfg,
            cmd,
            &mut std::io::stdin().lock(),
            &mut std::io::stdout(),
        )),
        Command::Token { cmd } => cli::exit(pantau_collector::cli::user::token(
            &cfg,
            cmd,
            &mut std::io::stdout(),
        )),
        Command::Register { json } => cli::exit(pantau_collector::cli::user::register(
            &cfg,
            json,
            &mut std::io::stdout(),
        )),
        Command::Completions { .. } | Command::Man { .. } => ExitCode::SUCCESS,
        other => report_command(other, &cfg),
    }
}

/// The report commands and listings: one-line delegations to the report side.
fn report_command(command: Command, cfg: &CollectorConfig) -> ExitCode {
    match command {
        Command::Report {
            opd,
            from,
            to,
            period,
            format,
            out,
            lang,
            number,
            business_hours,
            compare_from,
            compare_to,
            progress,
            issued,
        } => {
            let offset = cfg.display.utc_offset_minutes;
            let day = |w: pantau_collector::when::When| w.day(offset);
            done(match period.or(from.map(day).zip(to.map(day))) {
                None => Err("give --from and --to, or --period".into()),
                Some((from, to)) => report_cli::report(
                    cfg,
                    report_cli::ReportArgs {
                        opd,
                        from,
                        to,
                        format,
                        out,
                        lang,
                        number,
                        business_hours,
                        compare: compare_from.map(day).zip(compare_to.map(day)),
                        progress,
                        issued: issued.map(day),
                    },
                )
                .map_err(|e| e.to_string()),
            })
        }
        Command::Verify { path, public_key } => {
            match report_cli::verify(&cfg.signing_key_path(), &path, public_key) {
                Ok(v) if v.origin_checked => {
                    println!("{}", v.message);
                    ExitCode::SUCCESS
                }
                Ok(v) => {
                    println!("{}", v.message);
                    ExitCode::from(report_cli::EXIT_ORIGIN_NOT_CHECKED)
                }
                Err(e) => fail(e),
            }
        }
        Command::Maintenance {
            opd,
            group,
            from,
            to,
            reason,
            by,
        } => done(report_cli::maintenance_add(
            cfg,
            opd,
            group,
            from.start_ms(cfg.display.utc_offset_minutes),
            to.end_ms(cfg.display.utc_offset_minutes),
            &reason,
            &by,
        )),
        Command::Incidents {
            opd,
            from,
            to,
            lang,
        } => done(match lang.as_str() {
            "id" | "en" => {
                let offset = cfg.display.utc_offset_minutes;
                report_cli::incidents(cfg, opd, from.day(offset), to.day(offset), lang == "en")
                    .map_err(|e| e.to_string())
            }
            other => Err(format!("unknown --lang `{other}`; use id or en")),
        }),
        Command::MaintenanceList { opd } => done(report_cli::maintenance(cfg, opd)),
        Command::MaintenanceEnd { id } => done(report_cli::maintenance_end(cfg, id)),
        Command::MaintenanceDelete { id, reason } => {
            done(report_cli::maintenance_delete(cfg, id, &reason))
        }
        Command::IncidentNote {
            opd,
            group,
            start,
            note,
            ticket,
            by,
        } => done(match start.instant_ms(cfg.display.utc_offset_minutes) {
            None => Err(
                "--start: tulis waktu mulai gangguan seperti di `incidents`, bukan hari saja / \
                 give the incident's start time as `incidents` shows it, not a day"
                    .to_string(),
            ),
            Some(start) => report_cli::incident_note(cfg, &opd, &group, start, &note, &ticket, &by)
                .map_err(|e| e.to_string()),
        }),
        _ => unreachable!("run() dispatches every other command"),
    }
}
