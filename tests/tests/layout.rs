//! The agent stays lightweight: its dependency tree must not contain the
//! collector's storage, metrics or web stack.

use std::process::Command;

#[test]
fn agent_does_not_pull_collector_dependencies() {
    let out = Command::new(env!("CARGO"))
        .args([
            "tree",
            "--locked",
            "--offline",
            "-p",
            "pantau-agent",
            "-e",
            "normal",
            "--prefix",
            "none",
        ])
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .output()
        .expect("run cargo tree");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tree = String::from_utf8_lossy(&out.stdout);
    assert!(
        tree.lines().any(|l| l.starts_with("nix ")),
        "unexpected tree:\n{tree}"
    );
    for heavy in [
        "rusqlite ",
        "libsqlite3-sys ",
        "prometheus ",
        "axum ",
        "pantau-collector ",
    ] {
        assert!(
            !tree.lines().any(|l| l.starts_with(heavy)),
            "the agent depends on {heavy}"
        );
    }
}
