//! The crate map holds: the agent stays lightweight (no storage, metrics or
//! web stack), `pantau-core` pulls in no runtime crate, the collector uses the
//! agent crate only where it must, and the id rule is written once.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The workspace root.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `cargo tree` of one package's normal dependencies, one crate a line.
fn tree(package: &str) -> String {
    let out = Command::new(env!("CARGO"))
        .args([
            "tree",
            "--locked",
            "--offline",
            "-p",
            package,
            "-e",
            "normal",
            "--prefix",
            "none",
        ])
        .current_dir(root())
        .output()
        .expect("run cargo tree");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Every `.rs` file under `dir`, sorted.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
            let path = e.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|x| x == "rs") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// Whether `text` names the crate `pantau_agent` in code (metric names such
/// as `pantau_agent_connected` do not count).
fn names_agent_crate(text: &str) -> bool {
    text.match_indices("pantau_agent").any(|(i, m)| {
        !text[i + m.len()..]
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
    })
}

#[test]
fn agent_does_not_pull_collector_dependencies() {
    let tree = tree("pantau-agent");
    assert!(
        tree.lines().any(|l| l.starts_with("nix ")),
        "unexpected tree:\n{tree}"
    );
    for heavy in [
        "rusqlite ",
        "libsqlite3-sys ",
        "prometheus ",
        "axum ",
        "pdf-writer ",
        "krilla ",
        "rust_xlsxwriter ",
        "pantau-collector ",
    ] {
        assert!(
            !tree.lines().any(|l| l.starts_with(heavy)),
            "the agent depends on {heavy}"
        );
    }
}

#[test]
fn core_pulls_in_no_runtime_crate() {
    let tree = tree("pantau-core");
    assert!(
        tree.lines().any(|l| l.starts_with("pantau-core "))
            && tree.lines().any(|l| l.starts_with("serde ")),
        "unexpected tree:\n{tree}"
    );
    for runtime in [
        "tokio ",
        "mio ",
        "rusqlite ",
        "libsqlite3-sys ",
        "tonic ",
        "prost ",
        "hyper ",
        "reqwest ",
        "axum ",
        "prometheus ",
        "pantau-proto ",
        "pantau-agent ",
        "pantau-collector ",
    ] {
        assert!(
            !tree.lines().any(|l| l.starts_with(runtime)),
            "pantau-core depends on {runtime}"
        );
    }
}

#[test]
fn collector_names_the_agent_crate_only_in_demo() {
    // demo runs an agent in-process. Everything else, the target rules that
    // enrol checks included, comes from pantau-core.
    let allowed = ["collector/src/demo.rs"];
    let root = root();
    let mut naming = Vec::new();
    for dir in ["collector/src", "collector/benches"] {
        for f in rust_files(&root.join(dir)) {
            let text = std::fs::read_to_string(&f).unwrap();
            if names_agent_crate(&text) {
                let rel = f
                    .strip_prefix(&root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                naming.push(rel);
            }
        }
    }
    assert!(
        naming.iter().any(|f| f == "collector/src/demo.rs"),
        "the scan found no use in demo.rs; is it still reading the sources? {naming:?}"
    );
    let stray: Vec<_> = naming
        .iter()
        .filter(|f| !allowed.contains(&f.as_str()))
        .collect();
    assert!(
        stray.is_empty(),
        "the collector names pantau_agent outside demo: {stray:?}; use pantau_core"
    );
    assert!(!names_agent_crate("pantau_agent_connected{agent=\"a\"}"));
    assert!(names_agent_crate("use pantau_agent::config;"));
}

#[test]
fn the_id_rule_is_written_once() {
    let root = root();
    let mut found = Vec::new();
    for dir in ["core/src", "agent/src", "collector/src"] {
        for f in rust_files(&root.join(dir)) {
            let text = std::fs::read_to_string(&f).unwrap();
            let rel = f
                .strip_prefix(&root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            if text.contains("fn valid_id(") {
                found.push(format!("{rel}: fn valid_id"));
            }
            if rel != "core/src/id.rs" && text.contains("1-64 letters") {
                found.push(format!("{rel}: rule text"));
            }
        }
    }
    assert_eq!(
        found,
        ["core/src/id.rs: fn valid_id"],
        "the id rule belongs in pantau_core::id only"
    );
}

/// Whether a line of Rust holds an SQL statement in a string literal.
fn holds_sql(line: &str) -> bool {
    const VERBS: [&str; 10] = [
        "SELECT ", "INSERT ", "UPDATE ", "DELETE ", "CREATE ", "WITH ", "REPLACE ", "BEGIN",
        "PRAGMA ", "ALTER ",
    ];
    line.match_indices('"').any(|(i, _)| {
        let rest = line[i + 1..].trim_start();
        VERBS.iter().any(|v| rest.starts_with(v))
    })
}

#[test]
fn sql_and_rusqlite_live_only_in_the_store() {
    let root = root();
    let store = root.join("collector/src/store");
    let mut stray = Vec::new();
    let mut inside = 0;
    for f in rust_files(&root.join("collector/src")) {
        let text = std::fs::read_to_string(&f).unwrap();
        let sql = text.lines().filter(|l| holds_sql(l)).count();
        if f.starts_with(&store) {
            inside += sql;
            continue;
        }
        let rel = f.strip_prefix(&root).unwrap().display().to_string();
        if text.contains("rusqlite") {
            stray.push(format!("{rel}: rusqlite"));
        }
        if sql > 0 {
            stray.push(format!("{rel}: {sql} SQL statement(s)"));
        }
    }
    assert!(inside > 20, "the scan found no SQL in the store: {inside}");
    assert!(
        stray.is_empty(),
        "SQL and rusqlite belong in collector/src/store only: {stray:?}"
    );
    assert!(holds_sql(
        r#"    conn.execute("INSERT INTO opd (id) VALUES (?1)", p)"#
    ));
    assert!(!holds_sql(r#"    println!("Insert the token");"#));
}

/// The identifiers in the code of `text`: line comments and everything from
/// the first `#[cfg(test)]` on (unit tests may build a concrete backend) are
/// left out.
fn code_idents(text: &str) -> Vec<String> {
    let code = text.split("#[cfg(test)]").next().unwrap_or_default();
    let mut out = Vec::new();
    for line in code.lines() {
        let line = line.trim_start();
        if line.starts_with("//") {
            continue;
        }
        let line = line.split(" //").next().unwrap_or_default();
        out.extend(
            line.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .filter(|w| !w.is_empty())
                .map(str::to_string),
        );
    }
    out
}

#[test]
fn only_the_store_and_the_binaries_name_the_sqlite_backend() {
    // Everything else holds the store as `Arc<dyn Store>` (or one of its
    // traits), so a second backend changes no caller. The binaries' entry
    // points (serve in lib.rs, the one-shot commands, the demo) choose the
    // backend with `SqliteStore::open`; nobody outside the store names the
    // `store::sqlite` module.
    let opens = ["collector/src/lib.rs", "collector/src/demo.rs"];
    let root = root();
    let store = root.join("collector/src/store");
    let web = root.join("collector/src/web");
    let mut stray = Vec::new();
    let mut opening = Vec::new();
    for f in rust_files(&root.join("collector/src")) {
        if f.starts_with(&store) {
            continue;
        }
        let rel = f.strip_prefix(&root).unwrap().display().to_string();
        let text = std::fs::read_to_string(&f).unwrap();
        if f.starts_with(&web) && text.to_ascii_lowercase().contains("sqlite") {
            stray.push(format!("{rel}: web code names sqlite"));
        }
        let idents = code_idents(&text);
        if idents.iter().any(|w| w == "sqlite") {
            stray.push(format!("{rel}: names the store::sqlite module"));
        }
        if idents.iter().any(|w| w.starts_with("Sqlite")) {
            if opens.contains(&rel.as_str()) || rel.starts_with("collector/src/cli/") {
                opening.push(rel);
            } else {
                stray.push(format!("{rel}: names a Sqlite type"));
            }
        }
    }
    // serve (lib.rs) chooses the backend from `[store] url` through
    // store::open_store, naming neither backend; the demo still opens SQLite.
    assert!(
        opening.iter().any(|f| f == "collector/src/demo.rs"),
        "the scan found no SqliteStore::open in demo.rs; is it still reading the sources? {opening:?}"
    );
    assert!(
        std::fs::read_to_string(root.join("collector/src/lib.rs"))
            .unwrap()
            .contains("store::open_store("),
        "serve opens the configured backend with store::open_store"
    );
    assert!(
        stray.is_empty(),
        "only collector/src/store names the SQLite backend (lib.rs, cli/ and demo.rs may open it): {stray:?}"
    );
    assert_eq!(
        code_idents(
            "use crate::store::sqlite::report::X; // SqliteStore\n#[cfg(test)]\nSqliteStore"
        ),
        ["use", "crate", "store", "sqlite", "report", "X"]
    );
}
