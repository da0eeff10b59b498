//! Alert delivery: the shipped Alertmanager configuration and templates
//! (deploy/alertmanager/) pass `amtool check-config`, and a real Alertmanager
//! (Debian package prometheus-alertmanager) running them routes alerts per
//! severity and OPD to Telegram and e-mail with the Indonesian-first text.
//! Telegram is a local HTTP server speaking the Bot API's sendMessage; e-mail
//! goes to a local SMTP sink that also checks the password file is used.
//! Nothing leaves loopback.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Proc, closed_port, repo, wait_for};

/// A program of the Debian package prometheus-alertmanager. Missing is a failure.
fn tool(name: &str) -> PathBuf {
    ["/usr/bin", "/usr/local/bin"]
        .iter()
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("{name} not found: install the Debian package `prometheus-alertmanager` (bash tests/run.sh does)")
        })
}

#[test]
fn the_shipped_configuration_passes_amtool() {
    let out = Command::new(tool("amtool"))
        .arg("check-config")
        .arg(repo("deploy/alertmanager/alertmanager.yml"))
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("3 receivers") && text.contains("3 inhibit rules"),
        "{text}"
    );
}

/// What the fake Telegram Bot API received: (path, JSON body).
type Sent = Arc<Mutex<Vec<(String, serde_json::Value)>>>;

/// A Telegram Bot API stand-in: answers every sendMessage with ok.
fn telegram() -> (SocketAddr, Sent) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let sent: Sent = Arc::default();
    let keep = Arc::clone(&sent);
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(conn) = conn else { continue };
            let keep = Arc::clone(&keep);
            std::thread::spawn(move || serve_telegram(conn, &keep));
        }
    });
    (addr, sent)
}

fn serve_telegram(conn: TcpStream, sent: &Sent) {
    let mut r = BufReader::new(conn.try_clone().unwrap());
    let mut w = conn;
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let path = line
            .split_whitespace()
            .nth(1)
            .unwrap_or_default()
            .to_string();
        let mut len = 0usize;
        loop {
            let mut h = String::new();
            r.read_line(&mut h).unwrap();
            if h == "\r\n" || h.is_empty() {
                break;
            }
            if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                len = v.trim().parse().unwrap();
            }
        }
        let mut body = vec![0; len];
        r.read_exact(&mut body).unwrap();
        let json = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
        // The Bot API answers with the sent Message; its chat id is a number.
        let chat: i64 = json["chat_id"]
            .as_str()
            .and_then(|c| c.parse().ok())
            .unwrap_or_default();
        sent.lock().unwrap().push((path, json));
        let reply = format!(
            r#"{{"ok":true,"result":{{"message_id":1,"date":0,"chat":{{"id":{chat},"type":"group"}},"text":"ok"}}}}"#
        );
        let _ = write!(
            w,
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{reply}",
            reply.len()
        );
    }
}

/// One mail the SMTP sink took: the AUTH PLAIN credentials and the message.
#[derive(Debug, Clone)]
struct Mail {
    auth: String,
    rcpt: Vec<String>,
    data: String,
}

/// A minimal SMTP server on loopback that offers AUTH PLAIN and keeps
/// every message.
fn smtp_sink() -> (SocketAddr, Arc<Mutex<Vec<Mail>>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let mails: Arc<Mutex<Vec<Mail>>> = Arc::default();
    let keep = Arc::clone(&mails);
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(conn) = conn else { continue };
            let keep = Arc::clone(&keep);
            std::thread::spawn(move || serve_smtp(conn, &keep));
        }
    });
    (addr, mails)
}

fn serve_smtp(conn: TcpStream, mails: &Arc<Mutex<Vec<Mail>>>) {
    let mut r = BufReader::new(conn.try_clone().unwrap());
    let mut w = conn;
    let mut say = |s: &str| {
        let _ = w.write_all(s.as_bytes());
    };
    say("220 sink ESMTP\r\n");
    let mut mail = Mail {
        auth: String::new(),
        rcpt: Vec::new(),
        data: String::new(),
    };
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let upper = line.to_ascii_uppercase();
        if upper.starts_with("EHLO") {
            say("250-sink\r\n250 AUTH PLAIN\r\n");
        } else if upper.starts_with("AUTH PLAIN") {
            let b64 = line.trim_end()[10..].trim().to_string();
            mail.auth = decode_b64(&b64);
            say("235 ok\r\n");
        } else if upper.starts_with("MAIL FROM") {
            say("250 ok\r\n");
        } else if upper.starts_with("RCPT TO") {
            mail.rcpt.push(line.trim_end()[8..].to_string());
            say("250 ok\r\n");
        } else if upper.starts_with("DATA") {
            say("354 go\r\n");
            loop {
                let mut l = String::new();
                r.read_line(&mut l).unwrap();
                if l == ".\r\n" {
                    break;
                }
                mail.data.push_str(&l);
            }
            mails.lock().unwrap().push(mail.clone());
            say("250 queued\r\n");
        } else if upper.starts_with("QUIT") {
            say("221 bye\r\n");
            return;
        } else {
            say("250 ok\r\n");
        }
    }
}

/// Standard base64 (AUTH PLAIN's encoding), without a crate for six lines.
fn decode_b64(s: &str) -> String {
    const ABC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let (mut bits, mut n, mut out) = (0u32, 0, Vec::new());
    for c in s.bytes().filter(|&c| c != b'=') {
        let v = ABC.iter().position(|&a| a == c).expect("base64 alphabet") as u32;
        bits = bits << 6 | v;
        n += 6;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
        }
    }
    String::from_utf8_lossy(&out).to_string()
}

/// The shipped configuration pointed at the local stand-ins, with test
/// timings. Every edit must apply, so a change to the file cannot silently
/// make this test check something else.
fn test_config(dir: &Path, smtp: SocketAddr, telegram: SocketAddr) -> PathBuf {
    let password = dir.join("smtp-password");
    // Alertmanager 0.25 sends the file's bytes as they are, a final newline
    // included: the shipped file's comment says to write it with printf.
    std::fs::write(&password, "rahasia-smtp").unwrap();
    let templates = repo("deploy/alertmanager/templates");
    let mut text = std::fs::read_to_string(repo("deploy/alertmanager/alertmanager.yml")).unwrap();
    let edits: &[(&str, String)] = &[
        (
            "global:\n",
            format!("global:\n  telegram_api_url: \"http://{telegram}\"\n"),
        ),
        ("\"smtp.REPLACE.go.id:587\"", format!("\"{smtp}\"")),
        ("smtp_require_tls: true", "smtp_require_tls: false".into()),
        (
            "/etc/prometheus/alertmanager-smtp-password",
            password.display().to_string(),
        ),
        (
            "/etc/prometheus/alertmanager_templates/*.tmpl",
            format!("{}/*.tmpl", templates.display()),
        ),
        ("group_wait: 30s", "group_wait: 1s".into()),
        ("group_wait: 2m", "group_wait: 1s".into()),
        ("group_interval: 5m", "group_interval: 2s".into()),
    ];
    for (from, to) in edits {
        assert!(
            text.contains(from),
            "deploy/alertmanager/alertmanager.yml no longer contains {from}"
        );
        text = text.replace(from, to);
    }
    let cfg = dir.join("alertmanager.yml");
    std::fs::write(&cfg, text).unwrap();
    cfg
}

fn post_alerts(am: SocketAddr, alerts: &serde_json::Value) {
    let body = alerts.to_string();
    let mut s = TcpStream::connect(am).unwrap();
    write!(
        s,
        "POST /api/v2/alerts HTTP/1.1\r\nHost: {am}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).unwrap();
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
}

fn alert(
    name: &str,
    severity: &str,
    opd: &str,
    summary: &str,
    ends: Option<&str>,
) -> serde_json::Value {
    let mut a = serde_json::json!({
        "labels": {"alertname": name, "severity": severity, "opd": opd, "group": "internet", "agent": format!("{opd}-1")},
        "annotations": {"summary": summary, "description": format!("Deskripsi {name} / description {name}")},
        "startsAt": "2026-12-04T01:00:00Z",
    });
    if let Some(e) = ends {
        a["endsAt"] = e.into();
    }
    a
}

#[test]
fn alerts_reach_telegram_and_email_by_severity_and_opd_in_indonesian_first() {
    let dir = tempfile::tempdir().unwrap();
    let (tg, sent) = telegram();
    let (smtp, mails) = smtp_sink();
    let cfg = test_config(dir.path(), smtp, tg);
    let port = closed_port();
    let am: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let log = dir.path().join("alertmanager.log");
    let _am = Proc {
        child: Command::new(tool("prometheus-alertmanager"))
            .arg(format!("--config.file={}", cfg.display()))
            .arg(format!(
                "--storage.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={am}"))
            .arg("--cluster.listen-address=")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start prometheus-alertmanager"),
        name: "prometheus-alertmanager",
    };
    wait_for("Alertmanager ready", Duration::from_secs(30), || {
        TcpStream::connect(am).ok()
    });

    // Critical for dinkes: NOC Telegram, the dinkes Telegram chat, and e-mail.
    // Warning for bappeda: e-mail only.
    post_alerts(
        am,
        &serde_json::json!([
            alert(
                "PantauOpdDown",
                "critical",
                "dinkes",
                "GANGGUAN: semua target grup internet di OPD dinkes gagal / OUTAGE",
                None
            ),
            alert(
                "PantauHighPacketLoss",
                "warning",
                "bappeda",
                "Kehilangan paket tinggi / high packet loss",
                None
            ),
        ]),
    );
    let texts = wait_for(
        "two Telegram messages and two mails",
        Duration::from_secs(60),
        || {
            let t = sent.lock().unwrap().clone();
            let m = mails.lock().unwrap().clone();
            (t.len() >= 2 && m.len() >= 2).then_some((t, m))
        },
    );
    let (tg_sent, mail_sent) = texts;
    let mut chats: Vec<String> = tg_sent
        .iter()
        .map(|(_, j)| j["chat_id"].as_str().unwrap_or_default().to_string())
        .collect();
    chats.sort();
    assert_eq!(
        chats,
        ["-1000000000000", "-1000000000001"],
        "NOC and dinkes chats: {tg_sent:?}"
    );
    for (path, j) in &tg_sent {
        assert!(path.ends_with("/sendMessage"), "{path}");
        assert!(path.contains("/botREPLACE-WITH-BOT-TOKEN/"), "{path}");
        let text = j["text"].as_str().unwrap();
        assert!(
            text.starts_with("[KRITIS / CRITICAL] PantauOpdDown - OPD dinkes"),
            "{text}"
        );
        assert!(
            text.contains("AKTIF / FIRING: GANGGUAN: semua target grup internet"),
            "{text}"
        );
        // 01:00 UTC is 09:00 WITA.
        assert!(
            text.contains("Mulai / since: 04-12-2026 09:00 WITA"),
            "{text}"
        );
        assert!(text.contains("Agen / agent: dinkes-1"), "{text}");
        assert!(
            !text.contains("bappeda"),
            "a warning of another OPD never reaches Telegram: {text}"
        );
    }
    for m in &mail_sent {
        assert_eq!(
            m.auth, "\0pantau@REPLACE.go.id\0rahasia-smtp",
            "password read from the file"
        );
        assert_eq!(m.rcpt, ["<noc@REPLACE.go.id>"]);
    }
    let subjects: Vec<&str> = mail_sent
        .iter()
        .map(|m| {
            m.data
                .lines()
                .find(|l| l.starts_with("Subject:"))
                .unwrap_or_default()
        })
        .collect();
    assert!(
        subjects
            .iter()
            .any(|s| s.contains("[KRITIS / CRITICAL] PantauOpdDown - OPD dinkes")),
        "{subjects:?}"
    );
    assert!(
        subjects
            .iter()
            .any(|s| s.contains("[PERINGATAN / WARNING] PantauHighPacketLoss - OPD bappeda")),
        "{subjects:?}"
    );
    assert!(
        mail_sent.iter().all(|m| m.data.contains("Jangan membalas")),
        "the sign-off is in every mail"
    );

    // Resolved: the dinkes outage ends; both Telegram chats hear "PULIH".
    post_alerts(
        am,
        &serde_json::json!([alert(
            "PantauOpdDown",
            "critical",
            "dinkes",
            "GANGGUAN: semua target grup internet di OPD dinkes gagal / OUTAGE",
            Some("2026-12-04T01:30:00Z"),
        )]),
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let resolved = loop {
        let t = sent.lock().unwrap().clone();
        let r: Vec<String> = t
            .iter()
            .filter_map(|(_, j)| j["text"].as_str().map(str::to_string))
            .filter(|x| x.starts_with("[PULIH / RESOLVED]"))
            .collect();
        if r.len() >= 2 {
            break r;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no two resolved Telegram messages; sent {t:?}\nlog:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    for text in resolved {
        assert!(
            text.contains("Pulih / resolved: 04-12-2026 09:30 WITA"),
            "{text}"
        );
    }
}
