//! Logs written to a file or a pipe (journald, `2> file`) carry no ANSI
//! colour codes, whether or not `NO_COLOR` is set.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use common::{Proc, bin};

#[test]
fn a_log_off_a_terminal_has_no_colour_codes() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("collector.log");
    let mut child = Command::new(bin("pantau-collector"))
        .args([
            "serve",
            "--grpc-listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(dir.path().join("data"))
        .env_remove("NO_COLOR")
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut ready = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut ready)
        .unwrap();
    let mut p = Proc {
        child,
        name: "pantau-collector",
    };
    assert!(p.terminate().success());
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("INFO"), "the log has lines:\n{text}");
    assert!(
        !text.contains('\u{1b}'),
        "colour codes in a file:\n{text:?}"
    );
}
