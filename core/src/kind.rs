//! The words both binaries use for what is probed and how it ended: probe
//! kinds, target groups and outcomes. Their `as_str` names are the config
//! values, metric labels and the text stored by the collector.

/// The kinds of target probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProbeKind {
    /// ICMP echo.
    Icmp,
    /// TCP connect.
    Tcp,
    /// HTTP(S) request.
    Http,
    /// DNS resolution.
    Dns,
    /// Throughput test.
    Bandwidth,
    /// Link utilisation (SNMP or local interface counters).
    Link,
    /// Path discovery: echo requests with increasing TTL.
    Traceroute,
}

impl ProbeKind {
    /// Parse a config name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "icmp" => Self::Icmp,
            "tcp" => Self::Tcp,
            "http" => Self::Http,
            "dns" => Self::Dns,
            "bandwidth" => Self::Bandwidth,
            "link" => Self::Link,
            "traceroute" => Self::Traceroute,
            _ => return None,
        })
    }

    /// Config and label name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Icmp => "icmp",
            Self::Tcp => "tcp",
            Self::Http => "http",
            Self::Dns => "dns",
            Self::Bandwidth => "bandwidth",
            Self::Link => "link",
            Self::Traceroute => "traceroute",
        }
    }
}

/// Target groups: which part of the network a target stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Group {
    /// Internet breakout.
    Internet,
    /// Jaringan Intra Pemerintah Daerah (the provincial intranet).
    Intranet,
    /// The provincial data centre (Pusat Data).
    Datacenter,
    /// The national government intranet (JIP) and PDN endpoints.
    Jip,
    /// Applications (SPBE services).
    App,
}

impl Group {
    /// Names accepted in configs, for error messages.
    pub const ALL_NAMES: &'static str = "internet, intranet, datacenter, jip, app";

    /// Parse a config name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "internet" => Self::Internet,
            "intranet" => Self::Intranet,
            "datacenter" => Self::Datacenter,
            "jip" => Self::Jip,
            "app" => Self::App,
            _ => return None,
        })
    }

    /// Config and label name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Internet => "internet",
            Self::Intranet => "intranet",
            Self::Datacenter => "datacenter",
            Self::Jip => "jip",
            Self::App => "app",
        }
    }
}

/// How a probe ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Success.
    Ok,
    /// No answer in time.
    Timeout,
    /// Actively refused.
    Refused,
    /// No route, or local socket failure.
    Unreachable,
    /// Name resolution failed.
    DnsError,
    /// TLS failed.
    TlsError,
    /// Unexpected HTTP status.
    HttpStatus,
    /// The HTTP answer failed a body match rule (`body_contains`, `body_regex`).
    HttpMatch,
    /// Anything else.
    Other,
}

impl Outcome {
    /// Short lowercase name used in tables, logs and labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Timeout => "timeout",
            Self::Refused => "refused",
            Self::Unreachable => "unreachable",
            Self::DnsError => "dns_error",
            Self::TlsError => "tls_error",
            Self::HttpStatus => "http_status",
            Self::HttpMatch => "http_match",
            Self::Other => "other",
        }
    }
}

impl ProbeKind {
    /// Every kind, in declaration order.
    pub const ALL: [ProbeKind; 7] = [
        Self::Icmp,
        Self::Tcp,
        Self::Http,
        Self::Dns,
        Self::Bandwidth,
        Self::Link,
        Self::Traceroute,
    ];
}

impl Group {
    /// Every group, in declaration order.
    pub const ALL: [Group; 5] = [
        Self::Internet,
        Self::Intranet,
        Self::Datacenter,
        Self::Jip,
        Self::App,
    ];
}

impl Outcome {
    /// Every outcome, in declaration order.
    pub const ALL: [Outcome; 9] = [
        Self::Ok,
        Self::Timeout,
        Self::Refused,
        Self::Unreachable,
        Self::DnsError,
        Self::TlsError,
        Self::HttpStatus,
        Self::HttpMatch,
        Self::Other,
    ];

    /// Parse a stored or label name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|o| o.as_str() == s)
    }
}

macro_rules! display_as_str {
    ($($t:ty),*) => {$(
        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    )*};
}
display_as_str!(ProbeKind, Group, Outcome);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for k in ProbeKind::ALL {
            assert_eq!(ProbeKind::parse(k.as_str()), Some(k));
        }
        for g in Group::ALL {
            assert_eq!(Group::parse(g.as_str()), Some(g));
            assert!(Group::ALL_NAMES.contains(g.as_str()));
        }
        for o in Outcome::ALL {
            assert_eq!(Outcome::parse(o.as_str()), Some(o));
        }
        assert_eq!(ProbeKind::parse("heartbeat"), None);
        assert_eq!(Group::parse("kantor"), None);
        assert_eq!(ProbeKind::Traceroute.to_string(), "traceroute");
    }
}
