//! Shell completions and man pages come from each binary's own command line:
//! they name every subcommand, bash accepts the script, and man renders the
//! pages without warnings.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::*;

fn run(bin: &str, args: &[&str]) -> String {
    let out = Command::new(common::bin(bin))
        .args(args)
        .output()
        .expect("run binary");
    assert!(
        out.status.success(),
        "{bin} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

const BINARIES: [(&str, &[&str]); 2] = [
    (
        "pantau-agent",
        &["run", "check", "enroll", "csr", "completions", "man"],
    ),
    (
        "pantau-collector",
        &[
            "serve",
            "opd",
            "agent",
            "ca",
            "demo",
            "report",
            "verify",
            "maintenance",
            "incident-note",
            "completions",
            "man",
        ],
    ),
];

#[test]
fn completions_name_every_subcommand_and_bash_accepts_them() {
    let tmp = tempfile::tempdir().unwrap();
    for (bin, subs) in BINARIES {
        for shell in ["bash", "zsh", "fish"] {
            let script = run(bin, &["completions", shell]);
            assert!(script.len() > 500, "{bin} {shell}: {script}");
            for sub in subs {
                assert!(script.contains(sub), "{bin} {shell} lacks `{sub}`");
            }
        }
        let bash = tmp.path().join(format!("{bin}.bash"));
        std::fs::write(&bash, run(bin, &["completions", "bash"])).unwrap();
        let ok = Command::new("bash").arg("-n").arg(&bash).status().unwrap();
        assert!(ok.success(), "bash -n rejects the {bin} completions");
        // Loaded into bash, the completion function is registered.
        let out = Command::new("bash")
            .arg("-c")
            .arg(format!("source {} && complete -p {bin}", bash.display()))
            .output()
            .unwrap();
        let registered = String::from_utf8_lossy(&out.stdout);
        assert!(registered.contains(bin), "{bin}: {registered}");
    }
    let bad = Command::new(bin("pantau-agent"))
        .args(["completions", "tcsh"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn man_pages_render_and_list_the_subcommands() {
    for (bin, subs) in BINARIES {
        let page = run(bin, &["man"]);
        assert!(page.contains(&format!(".TH {bin} 1")), "{page}");
        assert!(page.contains(".SH SUBCOMMANDS"), "{page}");
        for sub in subs {
            let roff = format!("{bin}-{sub}(1)").replace('-', "\\-");
            assert!(page.contains(&roff), "{bin}: no {roff}");
        }
        let shown = render(bin, &page);
        assert!(shown.contains("SUBCOMMANDS"), "{shown}");
        for section in ["EXIT STATUS", "ENVIRONMENT", "FILES", "SEE ALSO"] {
            assert!(
                shown.contains(&format!("\n{section}\n")),
                "{bin}: {section}"
            );
        }
        assert!(shown.contains("pantau-agent.toml(5)"), "{shown}");
        for sub in subs {
            assert!(
                shown.contains(&format!("{bin}-{sub}(1)")),
                "{bin}: {sub} not shown"
            );
        }

        // One page per command, nested ones too.
        let dir = tempfile::tempdir().unwrap();
        let listed = run(bin, &["man", "--out", dir.path().to_str().unwrap()]);
        for sub in subs {
            let f = dir.path().join(format!("{bin}-{sub}.1"));
            assert!(f.is_file(), "{} not written", f.display());
            assert!(listed.contains(f.to_str().unwrap()), "{listed}");
            let text = std::fs::read_to_string(&f).unwrap();
            assert!(text.contains(&format!(".TH {bin}-{sub} 1")), "{text}");
        }
    }
    // The configuration file's own page, made from docs/CONFIG.md.
    let dir = tempfile::tempdir().unwrap();
    let listed = run(
        "pantau-agent",
        &["man", "--out", dir.path().to_str().unwrap()],
    );
    let toml5 = dir.path().join("pantau-agent.toml.5");
    assert!(listed.contains(toml5.to_str().unwrap()), "{listed}");
    let shown = render(
        "pantau-agent.toml(5)",
        &std::fs::read_to_string(&toml5).unwrap(),
    );
    let config_md = std::fs::read_to_string(repo("docs/CONFIG.md")).unwrap();
    let agent_part = &config_md[..config_md.find("## pantau-collector").unwrap()];
    let keys: Vec<&str> = agent_part
        .lines()
        .filter_map(|l| l.strip_prefix("| `")?.split('`').next())
        .collect();
    assert!(keys.len() > 40, "{keys:?}");
    let flat = shown.split_whitespace().collect::<Vec<_>>().join(" ");
    for key in keys {
        assert!(flat.contains(key), "pantau-agent.toml(5) lacks `{key}`");
    }
    for section in ["NAME", "DESCRIPTION", "ENVIRONMENT", "FILES", "SEE ALSO"] {
        assert!(
            shown.contains(&format!("\n{section}\n")),
            "toml(5): {section}"
        );
    }
    assert!(!shown.contains("|---") && !shown.contains("**"), "{shown}");

    let nested = tempfile::tempdir().unwrap();
    run(
        "pantau-collector",
        &["man", "--out", nested.path().to_str().unwrap()],
    );
    assert!(nested.path().join("pantau-collector-agent-add.1").is_file());
}

/// `page` rendered by man with every groff warning enabled; none may be given.
fn render(name: &str, page: &str) -> String {
    let mut man = Command::new("man")
        .args(["-l", "--warnings=all", "-"])
        .env("MANWIDTH", "100")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("man (package man-db) is needed for this test");
    man.stdin
        .take()
        .unwrap()
        .write_all(page.as_bytes())
        .unwrap();
    let out = man.wait_with_output().unwrap();
    let warnings = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "man -l: {warnings}");
    assert!(
        warnings.trim().is_empty(),
        "man warns on {name}:\n{warnings}"
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn every_command_is_in_the_configuration_reference() {
    let config_md = std::fs::read_to_string(repo("docs/CONFIG.md")).unwrap();
    for bin in ["pantau-agent", "pantau-collector"] {
        let help = run(bin, &["--help"]);
        let commands: Vec<&str> = help
            .lines()
            .skip_while(|l| !l.starts_with("Commands:"))
            .skip(1)
            .take_while(|l| l.starts_with("  "))
            .filter_map(|l| l.split_whitespace().next())
            .filter(|c| *c != "help")
            .collect();
        assert!(commands.len() >= 5, "{help}");
        for c in commands {
            assert!(
                config_md.contains(&format!("`{bin} {c}`")),
                "docs/CONFIG.md's command table lacks `{bin} {c}`"
            );
        }
    }
}
