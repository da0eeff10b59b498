//! A real PostgreSQL server for tests, started once per test process from
//! Debian's `postgresql` package: `initdb` into a temporary directory (as
//! the `postgres` user, or `nobody`, when run as root: the server refuses
//! root), `postgres` on 127.0.0.1 and a free port, one database per
//! fixture. A watchdog shell stops the server and removes its directory
//! when the test process exits (its stdin, a pipe from this process,
//! closes). Without the server binaries every caller fails, naming the
//! package to install.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The Debian package holding the server binaries.
pub const PACKAGE: &str = "postgresql";

/// The running test server.
#[derive(Debug)]
pub struct TestServer {
    port: u16,
    /// The watchdog; its stdin closing stops the server.
    _watchdog: Mutex<Child>,
    template: String,
}

static SERVER: OnceLock<Result<TestServer, String>> = OnceLock::new();
static NEXT_DB: AtomicUsize = AtomicUsize::new(0);

/// The directory of the newest installed server's binaries.
pub fn bin_dir() -> Result<PathBuf, String> {
    let root = Path::new("/usr/lib/postgresql");
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir(root)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            (bin.join("postgres").exists() && bin.join("initdb").exists()).then_some((v, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, b)| b).ok_or_else(|| {
        format!(
            "PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin: install the \
             Debian package `{PACKAGE}` (apt-get install {PACKAGE}; tests/run.sh does)"
        )
    })
}

/// The test server, started on first use; panics (naming the package)
/// when it cannot start.
pub fn server() -> &'static TestServer {
    match SERVER.get_or_init(start) {
        Ok(s) => s,
        Err(e) => panic!("test PostgreSQL server: {e}"),
    }
}

impl TestServer {
    /// URL of database `db` on this server.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// A new database with the current schema (copied from a migrated
    /// template); returns its URL.
    pub fn fresh_database(&self) -> String {
        self.create(&format!("TEMPLATE {}", self.template))
    }

    /// A new empty database; returns its URL.
    pub fn empty_database(&self) -> String {
        self.create("TEMPLATE template0")
    }

    fn create(&self, how: &str) -> String {
        let name = format!(
            "pantau_{}_{}",
            std::process::id(),
            NEXT_DB.fetch_add(1, Ordering::SeqCst)
        );
        let mut c = postgres::Client::connect(&self.url("postgres"), postgres::NoTls)
            .expect("connect to the test server");
        c.batch_execute(&format!("CREATE DATABASE {name} {how}"))
            .expect("create test database");
        self.url(&name)
    }
}

fn run(cmd: &mut Command, what: &str) -> Result<String, String> {
    let out = cmd.output().map_err(|e| format!("{what}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{what}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// `prog` to run as `user` (None: as we are).
pub fn as_user(user: Option<&str>, prog: &Path) -> Command {
    match user {
        Some(u) => {
            let mut c = Command::new("runuser");
            c.args(["-u", u, "--"]).arg(prog);
            c
        }
        None => Command::new(prog),
    }
}

/// The user the server's programs run as: the server refuses root, so
/// when we are root its own user `postgres`, else `nobody`; None when we
/// are not root.
pub fn server_user() -> Result<Option<&'static str>, String> {
    let root = run(Command::new("id").arg("-u"), "id -u")? == "0";
    Ok(root.then(|| {
        if run(Command::new("id").args(["-u", "postgres"]), "id").is_ok() {
            "postgres"
        } else {
            "nobody"
        }
    }))
}

/// A new temporary directory owned by `user`, kept (the watchdog removes it).
pub fn server_dir(user: Option<&str>) -> Result<PathBuf, String> {
    let dir = tempfile::Builder::new()
        .prefix("pantau-pg-")
        .tempdir()
        .map_err(|e| format!("temporary directory: {e}"))?
        .keep();
    if let Some(u) = user {
        let uid: u32 = run(Command::new("id").args(["-u", u]), "id")?
            .parse()
            .map_err(|e| format!("uid of {u}: {e}"))?;
        let gid: u32 = run(Command::new("id").args(["-g", u]), "id")?
            .parse()
            .map_err(|e| format!("gid of {u}: {e}"))?;
        std::os::unix::fs::chown(&dir, Some(uid), Some(gid))
            .map_err(|e| format!("chown {}: {e}", dir.display()))?;
    }
    Ok(dir)
}

/// `sh -c script` as `user` with `env`, its stdin a pipe: a watchdog
/// script starts a server, waits for its stdin to close (the test process
/// exited, even by a panic or a kill) and then stops the server and
/// removes its directory.
pub fn watchdog(
    user: Option<&str>,
    script: &str,
    env: &[(&str, &std::ffi::OsStr)],
) -> Result<Child, String> {
    let mut sh = match user {
        Some(u) => {
            let mut c = Command::new("runuser");
            c.args(["-u", u, "--", "sh", "-c", script]);
            c
        }
        None => {
            let mut c = Command::new("sh");
            c.args(["-c", script]);
            c
        }
    };
    sh.envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("start the server: {e}"))
}

/// Run the server program `prog args` (from [`bin_dir`]) as `user`; its
/// standard output, or an error with everything it printed.
pub fn run_program(user: Option<&str>, prog: &str, args: &[&str]) -> Result<String, String> {
    let bin = bin_dir()?;
    run(as_user(user, &bin.join(prog)).args(args), prog)
}

/// A new cluster in `data`: superuser `postgres`, trust on loopback
/// (replication included), UTF-8, C locale.
pub fn initdb(user: Option<&str>, data: &Path) -> Result<(), String> {
    let data = data
        .to_str()
        .ok_or("a data directory path that is not UTF-8")?;
    let args = [
        "-D",
        data,
        "-U",
        "postgres",
        "--auth=trust",
        "-E",
        "UTF8",
        "--locale=C",
        "--no-sync",
    ];
    run_program(user, "initdb", &args).map(drop)
}

fn start() -> Result<TestServer, String> {
    let bin = bin_dir()?;
    let user = server_user()?;
    let dir = server_dir(user)?;
    initdb(user, &dir.join("data"))?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| format!("free port: {e}"))?
        .port();
    // The watchdog: starts the server, waits for its stdin to close (this
    // process exited), then stops the server fast and removes the directory.
    let script = r#"
        "$PG" -D "$DIR/data" -p "$PORT" -k "$DIR" -c listen_addresses=127.0.0.1 \
            -c fsync=off -c max_connections=200 >"$DIR/log" 2>&1 &
        pid=$!
        cat >/dev/null
        kill -INT "$pid"
        wait "$pid"
        rm -rf "$DIR"
    "#;
    let watchdog = watchdog(
        user,
        script,
        &[
            ("PG", bin.join("postgres").as_os_str()),
            ("DIR", dir.as_os_str()),
            ("PORT", port.to_string().as_ref()),
        ],
    )?;
    let url = format!("postgres://postgres@127.0.0.1:{port}/postgres");
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut admin = loop {
        match postgres::Client::connect(&url, postgres::NoTls) {
            Ok(c) => break c,
            Err(e) if Instant::now() > deadline => {
                let log = std::fs::read_to_string(dir.join("log")).unwrap_or_default();
                return Err(format!("server did not start: {e}\n{log}"));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    };
    // One migrated template: each fixture's database is a copy of it.
    let template = format!("pantau_template_{}", std::process::id());
    admin
        .batch_execute(&format!("CREATE DATABASE {template}"))
        .map_err(|e| format!("create template: {e}"))?;
    drop(admin);
    {
        let t_url = format!("postgres://postgres@127.0.0.1:{port}/{template}");
        let mut t = postgres::Client::connect(&t_url, postgres::NoTls)
            .map_err(|e| format!("connect template: {e}"))?;
        super::migrate_to(&mut t, super::SCHEMA_VERSION)
            .map_err(|e| format!("migrate template: {e}"))?;
    }
    let mut wd = watchdog;
    // Keep the pipe open; writing nothing.
    if let Some(stdin) = wd.stdin.as_mut() {
        let _ = stdin.flush();
    }
    Ok(TestServer {
        port,
        _watchdog: Mutex::new(wd),
        template,
    })
}
