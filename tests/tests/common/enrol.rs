//! `pantau-agent enroll` as an OPD's IT staff run it: an enrolment code and
//! the collector CA's fingerprint, files laid out under one directory.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use super::bin;

/// Where the enrolment code comes from.
pub enum CodeFrom<'a> {
    /// A file (`--code-file`).
    File(&'a str),
    /// Standard input (`--code -`).
    Stdin(&'a str),
}

/// Run `pantau-agent enroll` against `url` with the pinned `fingerprint`;
/// the agent writes `dir/etc/agent.toml`, `dir/etc/agent.token` (and its
/// certificate beside them) and spools in `dir/spool`.
pub fn enroll_agent(url: &str, fingerprint: &str, dir: &Path, code: CodeFrom) -> Output {
    let mut cmd = Command::new(bin("pantau-agent"));
    cmd.args([
        "enroll",
        "--collector",
        url,
        "--ca-fingerprint",
        fingerprint,
    ])
    .arg("--config")
    .arg(dir.join("etc/agent.toml"))
    .arg("--token-file")
    .arg(dir.join("etc/agent.token"))
    .arg("--spool-dir")
    .arg(dir.join("spool"))
    .env_remove("PANTAU_AGENT_TOKEN");
    match code {
        CodeFrom::File(code) => {
            std::fs::create_dir_all(dir).expect("agent directory");
            let file = dir.join("pantau.code");
            std::fs::write(&file, format!("{code}\n")).expect("write the code file");
            cmd.arg("--code-file")
                .arg(file)
                .output()
                .expect("run pantau-agent enroll")
        }
        CodeFrom::Stdin(code) => {
            use std::io::Write;
            let mut child = cmd
                .args(["--code", "-"])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("run pantau-agent enroll");
            writeln!(child.stdin.take().expect("stdin"), "{code}").expect("write the code");
            child
                .wait_with_output()
                .expect("wait for pantau-agent enroll")
        }
    }
}
