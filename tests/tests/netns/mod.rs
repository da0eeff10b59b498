//! Emulated-network harness: Linux network namespaces joined by veth pairs,
//! with loss (nftables random drop), rate limits (tc tbf) and link down
//! (`ip link set ... down`). The kernel here has no netem; delay comes from
//! the user-space echo responder (`echo_responder` binary of this crate).
//!
//! Every namespace is named `pt<pid>-<n>-<role>` and deleted on drop, which
//! also deletes its veth ends, routes and nftables rules. Addresses are only
//! ever configured inside namespaces this harness creates (10.99.0.0/16 by
//! convention), so nothing leaks onto the host's networks.
//!
//! API (kept small on purpose, other tests reuse it):
//! - [`available`]: whether the tests can run here (root and `ip`); panics
//!   when `CI` is set and they cannot, so CI fails instead of skipping.
//! - [`Netns::new`], [`Netns::cmd`] (a `Command` inside the namespace),
//!   [`Netns::run`] (run and assert success), [`Netns::sysctl`],
//!   [`Netns::link`] (up/down), [`Netns::route`], [`Netns::drop_random`],
//!   [`Netns::tbf`].
//! - [`veth`]: a veth pair between two namespaces, with addresses, up.
//! - [`Chain`]: the usual OPD site -> data centre -> internet topology.
#![allow(dead_code)]

use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

/// Whether namespace tests can run: root and iproute2 present. Without them
/// the test returns early, except under CI (env `CI` set), where it panics.
pub fn available() -> bool {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    let ip = Command::new("ip")
        .arg("-V")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let ok = root && ip;
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "network-namespace tests need root and iproute2 (root={root}, ip={ip}); CI must run them"
        );
        eprintln!("skipping: network-namespace tests need root and iproute2");
    }
    ok
}

/// Run a command, panic with its output if it fails.
pub fn must(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A network namespace, deleted on drop.
pub struct Netns {
    name: String,
}

impl Netns {
    /// Create a namespace for `role` (short, e.g. "site") with loopback up.
    pub fn new(role: &str) -> Netns {
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "pt{}-{}-{role}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        must(Command::new("ip").args(["netns", "add", &name]));
        let ns = Netns { name };
        ns.run(&["ip", "link", "set", "lo", "up"]);
        ns
    }

    /// The namespace's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A command that runs `program` inside the namespace.
    pub fn cmd(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name]).arg(program);
        c
    }

    /// Run `argv` inside the namespace; panic if it fails. Returns stdout.
    pub fn run(&self, argv: &[&str]) -> String {
        let mut c = self.cmd(argv[0]);
        c.args(&argv[1..]);
        String::from_utf8_lossy(&must(&mut c).stdout).into_owned()
    }

    /// Set a sysctl inside the namespace (per-namespace keys only).
    pub fn sysctl(&self, key: &str, value: &str) {
        self.run(&["sysctl", "-q", "-w", &format!("{key}={value}")]);
    }

    /// Bring interface `dev` up or down.
    pub fn link(&self, dev: &str, up: bool) {
        self.run(&["ip", "link", "set", dev, if up { "up" } else { "down" }]);
    }

    /// Add a route, e.g. `route("default", "10.99.1.1")`.
    pub fn route(&self, dst: &str, via: &str) {
        self.run(&["ip", "route", "add", dst, "via", via]);
    }

    /// Drop `percent` % of packets matching the nftables expression `matches`
    /// (e.g. `"icmp type echo-request"`) at `hook` (`input`, `forward` or
    /// `output`), independently at random. Rules accumulate.
    pub fn drop_random(&self, hook: &str, matches: &str, percent: u32) {
        assert!(percent <= 100, "percent {percent} out of range");
        let table = "pantau_harness";
        let _ = self
            .cmd("nft")
            .args(["add", "table", "inet", table])
            .output();
        let chain = format!("{hook}_drop");
        must(self.cmd("nft").args([
            "add",
            "chain",
            "inet",
            table,
            &chain,
            &format!("{{ type filter hook {hook} priority 0 ; policy accept ; }}"),
        ]));
        let rule = format!("{matches} numgen random mod 100 < {percent} drop");
        let mut c = self.cmd("nft");
        c.args(["add", "rule", "inet", table, &chain])
            .args(rule.split_whitespace());
        must(&mut c);
    }

    /// Shape egress of `dev` with a token bucket: `rate` like "20mbit",
    /// `burst` like "32kb", queue `latency` like "50ms". Replaces any qdisc.
    pub fn tbf(&self, dev: &str, rate: &str, burst: &str, latency: &str) {
        self.run(&[
            "tc", "qdisc", "replace", "dev", dev, "root", "tbf", "rate", rate, "burst", burst,
            "latency", latency,
        ]);
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Deleting the namespace removes its interfaces (and so both veth
        // ends), routes, qdiscs and nftables tables.
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// Create a veth pair `a_dev` (in `a`, address `a_cidr`) <-> `b_dev` (in `b`,
/// address `b_cidr`), both up. Interface names are local to each namespace.
pub fn veth(a: &Netns, a_dev: &str, a_cidr: &str, b: &Netns, b_dev: &str, b_cidr: &str) {
    must(Command::new("ip").args([
        "link", "add", a_dev, "netns", &a.name, "type", "veth", "peer", "name", b_dev, "netns",
        &b.name,
    ]));
    for (ns, dev, cidr) in [(a, a_dev, a_cidr), (b, b_dev, b_cidr)] {
        ns.run(&["ip", "addr", "add", cidr, "dev", dev]);
        ns.link(dev, true);
    }
}

/// The usual topology: an OPD site, the data centre (a router) and an
/// "internet" host.
///
/// ```text
/// site  10.99.1.2/24 [to-dc] --- [to-site] 10.99.1.1/24  dc  10.99.2.1/24 [to-inet] --- [to-dc] 10.99.2.2/24  inet
/// ```
/// The site and the internet host route everything via the data centre,
/// which forwards (ip_forward=1).
pub struct Chain {
    /// The OPD office, where the agent runs.
    pub site: Netns,
    /// The provincial data centre: a router.
    pub dc: Netns,
    /// An internet host.
    pub inet: Netns,
}

impl Chain {
    /// Site address.
    pub const SITE: &'static str = "10.99.1.2";
    /// Data-centre address on the site link.
    pub const DC: &'static str = "10.99.1.1";
    /// Internet host address.
    pub const INET: &'static str = "10.99.2.2";

    /// Build the chain.
    pub fn new() -> Chain {
        let (site, dc, inet) = (Netns::new("site"), Netns::new("dc"), Netns::new("inet"));
        veth(
            &site,
            "to-dc",
            "10.99.1.2/24",
            &dc,
            "to-site",
            "10.99.1.1/24",
        );
        veth(
            &dc,
            "to-inet",
            "10.99.2.1/24",
            &inet,
            "to-dc",
            "10.99.2.2/24",
        );
        dc.sysctl("net.ipv4.ip_forward", "1");
        site.route("default", Self::DC);
        inet.route("default", "10.99.2.1");
        Chain { site, dc, inet }
    }
}

// ---- Shared launchers: a collector and an agent inside a namespace. ----

/// A `pantau-collector serve` running inside a namespace.
pub struct NsCollector {
    /// The process (terminated on drop).
    pub proc: crate::common::Proc,
    /// gRPC address as printed on the ready line.
    pub grpc: String,
    /// HTTP address as printed on the ready line.
    pub http: String,
}

impl Netns {
    /// Start `pantau-collector serve` inside the namespace with data in
    /// `data`, listening on `grpc_listen` and `http_listen` (e.g.
    /// "127.0.0.1:0"); waits for its ready line.
    pub fn start_collector(
        &self,
        data: &std::path::Path,
        grpc_listen: &str,
        http_listen: &str,
    ) -> NsCollector {
        use std::io::{BufRead, BufReader};
        let token = crate::common::admin_token(data);
        let mut child = self
            .cmd(crate::common::bin("pantau-collector"))
            .args([
                "serve",
                "--grpc-listen",
                grpc_listen,
                "--http-listen",
                http_listen,
                "--data-dir",
            ])
            .arg(data)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("start pantau-collector in {}: {e}", self.name));
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("collector stdout"))
            .read_line(&mut line)
            .expect("collector ready line");
        let field = |k: &str| {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(k))
                .unwrap_or_else(|| panic!("no {k} in collector line {line:?}"))
                .to_string()
        };
        let (grpc, http) = (field("grpc="), field("http="));
        crate::common::register_ca(&grpc, data);
        crate::common::remember_token(&format!("{}/{http}", self.name), &token);
        // For HTTPS requests from other namespaces (https_get without a token).
        crate::common::remember_token(&http, &token);
        NsCollector {
            proc: crate::common::Proc {
                child,
                name: "pantau-collector",
            },
            grpc,
            http,
        }
    }

    /// Run `pantau-agent run --config <config>` inside the namespace.
    pub fn start_agent(&self, config: &std::path::Path) -> crate::common::Proc {
        let child = self
            .cmd(crate::common::bin("pantau-agent"))
            .args(["run", "--config"])
            .arg(config)
            .env("RUST_LOG", "warn")
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("start pantau-agent in {}: {e}", self.name));
        crate::common::Proc {
            child,
            name: "pantau-agent",
        }
    }

    /// GET `path` over HTTP/1.0 from inside the namespace (bash's /dev/tcp,
    /// so nothing outside the test's namespaces is needed); returns the body.
    pub fn http_get(&self, host: &str, port: u16, path: &str) -> String {
        let auth = crate::common::token_for(&format!("{}/{host}:{port}", self.name))
            .map(|t| format!("Authorization: Bearer {t}\\r\\n"))
            .unwrap_or_default();
        let script = format!(
            "exec 3<>/dev/tcp/{host}/{port}; printf 'GET {path} HTTP/1.0\\r\\nHost: {host}\\r\\n{auth}\\r\\n' >&3; cat <&3"
        );
        let out = self
            .cmd("bash")
            .args(["-c", &script])
            .output()
            .expect("bash");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default()
    }

    /// GET `url` (https://) from inside the namespace trusting only `ca`
    /// (python3's ssl, hostname checked), with an optional bearer `token`;
    /// returns (status, body). A failed handshake panics with the reason.
    /// Without a `token`, the one remembered for the URL's `host:port` (a
    /// collector started by [`Netns::start_collector`]) is sent, if any.
    pub fn https_get(&self, url: &str, ca: &std::path::Path, token: Option<&str>) -> (u16, String) {
        let remembered = url
            .split("://")
            .nth(1)
            .and_then(|r| r.split('/').next())
            .and_then(crate::common::token_for);
        let out = self
            .cmd("python3")
            .args(["-c", HTTPS_GET, url])
            .arg(ca)
            .arg(token.or(remembered.as_deref()).unwrap_or(""))
            .output()
            .expect("python3");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (code, body) = text.split_once('\n').unwrap_or_else(|| {
            panic!(
                "https GET {url} failed: {text}{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
        (code.trim().parse().expect("status"), body.to_string())
    }
}

/// python3: GET argv[1] trusting the CA file argv[2] (bearer argv[3] when
/// not empty); prints the status line then the body.
const HTTPS_GET: &str = r#"
import ssl, sys, urllib.request, urllib.error
ctx = ssl.create_default_context(cafile=sys.argv[2])
req = urllib.request.Request(sys.argv[1])
if sys.argv[3]:
    req.add_header("Authorization", "Bearer " + sys.argv[3])
try:
    r = urllib.request.urlopen(req, context=ctx, timeout=20)
    code, body = r.status, r.read()
except urllib.error.HTTPError as e:
    code, body = e.code, e.read()
sys.stdout.write(str(code) + "\n" + body.decode("utf-8", "replace"))
"#;

/// Like [`veth`] with IPv6 addresses (`a_cidr`, `b_cidr`, e.g.
/// "fd99:1::2/64"), added `nodad` so they are usable at once.
pub fn veth6(a: &Netns, a_dev: &str, a_cidr: &str, b: &Netns, b_dev: &str, b_cidr: &str) {
    must(Command::new("ip").args([
        "link", "add", a_dev, "netns", &a.name, "type", "veth", "peer", "name", b_dev, "netns",
        &b.name,
    ]));
    for (ns, dev, cidr) in [(a, a_dev, a_cidr), (b, b_dev, b_cidr)] {
        ns.run(&["ip", "-6", "addr", "add", cidr, "dev", dev, "nodad"]);
        ns.link(dev, true);
    }
}
