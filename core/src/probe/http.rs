//! `kind = "http"`: one request to the URL (`method`, `headers`, `body`),
//! how TLS is trusted (`ca_file`, `tls_verify`), whether redirects are
//! followed, and the rules a response must meet to count as success
//! (`expect_status`, `body_contains`, `body_regex`).

use std::path::PathBuf;

use serde::Deserialize;
use serde::de::MapAccess;

use super::{BadAddress, KindConfig, KindKeys, TargetContext, valid_http_url};
use crate::confload::Problem;
use crate::kind::ProbeKind;

/// Most redirects `max_redirects` may allow.
pub const MAX_REDIRECTS: u32 = 20;
/// Longest `body` sent, bytes.
pub const MAX_REQUEST_BODY: usize = 64 * 1024;
/// Most body bytes read to match `body_contains` / `body_regex`.
pub const MAX_MATCH_BODY: usize = 1024 * 1024;
/// Longest `body_regex` pattern, bytes (compiled size is bounded too).
pub const MAX_REGEX: usize = 1024;
/// Most `headers` entries.
pub const MAX_HEADERS: usize = 32;

/// One entry of `expect_status` as written: a code (`200`) or a range
/// (`"200-299"`, or a single code as a string).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum RawStatus {
    /// `200`.
    Code(i64),
    /// `"200-299"` or `"204"`.
    Text(String),
}

/// The http keys of a target.
#[derive(Debug, Clone, Default)]
pub struct HttpKeys {
    /// Statuses counted as success (default 200-399).
    pub expect_status: Option<Vec<RawStatus>>,
    /// GET (default), HEAD, POST, PUT or OPTIONS.
    pub method: Option<String>,
    /// Request headers (name = value).
    pub headers: Option<toml::Table>,
    /// Request body (POST and PUT only).
    pub body: Option<String>,
    /// Substring the response body must contain.
    pub body_contains: Option<String>,
    /// Regular expression the response body must match.
    pub body_regex: Option<String>,
    /// Follow redirects (default true).
    pub follow_redirects: Option<bool>,
    /// Most redirects followed (default 5).
    pub max_redirects: Option<i64>,
    /// PEM file of CA certificates trusted for this target, besides the
    /// system store and the bundled public roots.
    pub ca_file: Option<PathBuf>,
    /// false: accept any certificate (still recorded); default true.
    pub tls_verify: Option<bool>,
}

impl KindKeys for HttpKeys {
    fn take<'de, A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<bool, A::Error> {
        match key {
            "expect_status" => self.expect_status = map.next_value()?,
            "method" => self.method = map.next_value()?,
            "headers" => self.headers = map.next_value()?,
            "body" => self.body = map.next_value()?,
            "body_contains" => self.body_contains = map.next_value()?,
            "body_regex" => self.body_regex = map.next_value()?,
            "follow_redirects" => self.follow_redirects = map.next_value()?,
            "max_redirects" => self.max_redirects = map.next_value()?,
            "ca_file" => self.ca_file = map.next_value()?,
            "tls_verify" => self.tls_verify = map.next_value()?,
            _ => return Ok(false),
        }
        Ok(true)
    }

    fn set_key(&self) -> Option<(&'static str, &'static str)> {
        let named = [
            ("expect_status", self.expect_status.is_some()),
            ("method", self.method.is_some()),
            ("headers", self.headers.is_some()),
            ("body", self.body.is_some()),
            ("body_contains", self.body_contains.is_some()),
            ("body_regex", self.body_regex.is_some()),
            ("follow_redirects", self.follow_redirects.is_some()),
            ("max_redirects", self.max_redirects.is_some()),
            ("ca_file", self.ca_file.is_some()),
            ("tls_verify", self.tls_verify.is_some()),
        ];
        named.into_iter().find(|(_, set)| *set).map(|(k, _)| (k, k))
    }
}

/// The request method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HttpMethod {
    /// GET.
    #[default]
    Get,
    /// HEAD.
    Head,
    /// POST.
    Post,
    /// PUT.
    Put,
    /// OPTIONS.
    Options,
}

impl HttpMethod {
    /// The method as sent.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Head => "HEAD",
            Self::Post => "POST",
            Self::Put => "PUT",
            Self::Options => "OPTIONS",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        [Self::Get, Self::Head, Self::Post, Self::Put, Self::Options]
            .into_iter()
            .find(|m| m.as_str().eq_ignore_ascii_case(s))
    }
}

/// Whether a header's value is a credential: it is never logged or shown.
pub fn secret_header(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    [
        "authorization",
        "cookie",
        "token",
        "secret",
        "password",
        "api-key",
        "apikey",
    ]
    .iter()
    .any(|s| n.contains(s))
}

/// One request header; `Debug` hides the value of a secret one.
#[derive(Clone, PartialEq, Eq)]
pub struct Header {
    /// Name as written.
    pub name: String,
    /// Value as written.
    pub value: String,
}

impl std::fmt::Debug for Header {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let value = if secret_header(&self.name) {
            "(hidden)"
        } else {
            self.value.as_str()
        };
        write!(f, "{}: {value}", self.name)
    }
}

/// A validated http target.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpSpec {
    /// Inclusive status ranges counted as success; empty means 200-399.
    pub expect_status: Vec<(u16, u16)>,
    /// Request method.
    pub method: HttpMethod,
    /// Request headers.
    pub headers: Vec<Header>,
    /// Request body (POST/PUT).
    pub body: Option<String>,
    /// Substring the body must contain.
    pub body_contains: Option<String>,
    /// Regex the body must match (checked to compile).
    pub body_regex: Option<String>,
    /// Most redirects followed; 0 = redirects are not followed.
    pub max_redirects: u32,
    /// Extra CA certificates (PEM) for this target.
    pub ca_file: Option<PathBuf>,
    /// Verify the server's certificate.
    pub tls_verify: bool,
}

impl Default for HttpSpec {
    fn default() -> Self {
        HttpSpec {
            expect_status: Vec::new(),
            method: HttpMethod::Get,
            headers: Vec::new(),
            body: None,
            body_contains: None,
            body_regex: None,
            max_redirects: 5,
            ca_file: None,
            tls_verify: true,
        }
    }
}

impl HttpSpec {
    /// Whether `status` counts as success.
    pub fn accepts(&self, status: u16) -> bool {
        if self.expect_status.is_empty() {
            (200..400).contains(&status)
        } else {
            self.expect_status
                .iter()
                .any(|(lo, hi)| (*lo..=*hi).contains(&status))
        }
    }

    /// `expect_status` as written back: "200-299, 301".
    pub fn expected_text(&self) -> String {
        if self.expect_status.is_empty() {
            return "200-399".into();
        }
        self.expect_status
            .iter()
            .map(|(lo, hi)| {
                if lo == hi {
                    lo.to_string()
                } else {
                    format!("{lo}-{hi}")
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Whether the body is read for matching.
    pub fn matches_body(&self) -> bool {
        self.body_contains.is_some() || self.body_regex.is_some()
    }
}

/// One `expect_status` entry as an inclusive range.
fn status_range(s: &RawStatus) -> Option<(u16, u16)> {
    let code = |v: i64| u16::try_from(v).ok().filter(|c| (100..=599).contains(c));
    match s {
        RawStatus::Code(c) => code(*c).map(|c| (c, c)),
        RawStatus::Text(t) => {
            let (lo, hi) = t.split_once('-').unwrap_or((t, t));
            let lo = code(lo.trim().parse().ok()?)?;
            let hi = code(hi.trim().parse().ok()?)?;
            (lo <= hi).then_some((lo, hi))
        }
    }
}

/// An RFC 9110 token (header name).
fn header_name_ok(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 128
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn validate_headers(
    raw: Option<toml::Table>,
    cx: &TargetContext<'_>,
    p: &mut Vec<Problem>,
) -> Vec<Header> {
    let mut out = Vec::new();
    let raw = raw.unwrap_or_default();
    if raw.len() > MAX_HEADERS {
        p.push(Problem::new(
            cx.key("headers"),
            format!("{} headers; at most {MAX_HEADERS}", raw.len()),
        ));
        return out;
    }
    for (name, v) in raw {
        let key = cx.key(&format!("headers.{name}"));
        let Some(value) = v.as_str() else {
            p.push(Problem::new(key, "must be a string"));
            continue;
        };
        if !header_name_ok(&name) {
            p.push(Problem::new(key, "is not a valid header name"));
        } else if value.len() > 8192 || value.chars().any(|c| c.is_control() && c != '\t') {
            // The value is not repeated: it may be a credential.
            p.push(Problem::new(
                key,
                "value has a line break or control character, or is over 8 KiB",
            ));
        } else {
            out.push(Header {
                name,
                value: value.to_string(),
            });
        }
    }
    out
}

/// `body_regex`: compiles within a size bound.
fn check_regex(re: &str, cx: &TargetContext<'_>, p: &mut Vec<Problem>) {
    if re.len() > MAX_REGEX {
        p.push(Problem::new(
            cx.key("body_regex"),
            format!("longer than {MAX_REGEX} bytes"),
        ));
    } else if let Err(e) = regex::RegexBuilder::new(re).size_limit(1 << 20).build() {
        let why = match e {
            regex::Error::CompiledTooBig(_) => "the compiled pattern is too big".to_string(),
            other => other.to_string(),
        };
        p.push(Problem::new(
            cx.key("body_regex"),
            format!("not a valid regular expression: {why}"),
        ));
    }
}

impl KindConfig for HttpSpec {
    const KIND: ProbeKind = ProbeKind::Http;
    type Keys = HttpKeys;

    fn check_address(a: &str) -> Result<(), BadAddress> {
        BadAddress::unless(valid_http_url(a), a, "an http:// or https:// URL")
    }

    fn validate(keys: HttpKeys, cx: &TargetContext<'_>, p: &mut Vec<Problem>) -> Option<Self> {
        let before = p.len();
        let mut expect_status = Vec::new();
        for s in keys.expect_status.unwrap_or_default() {
            match status_range(&s) {
                Some(r) => expect_status.push(r),
                None => p.push(Problem::new(
                    cx.key("expect_status"),
                    match s {
                        RawStatus::Code(c) => format!("{c} is not an HTTP status (100-599)"),
                        RawStatus::Text(t) => format!(
                            "`{t}` is not an HTTP status (100-599) or a range like \"200-299\""
                        ),
                    },
                )),
            }
        }
        let method = match keys.method.as_deref() {
            None => HttpMethod::Get,
            Some(m) => HttpMethod::parse(m).unwrap_or_else(|| {
                p.push(Problem::new(
                    cx.key("method"),
                    format!("`{m}` is not supported; allowed: GET, HEAD, POST, PUT, OPTIONS"),
                ));
                HttpMethod::Get
            }),
        };
        if let Some(b) = &keys.body {
            if !matches!(method, HttpMethod::Post | HttpMethod::Put) {
                p.push(Problem::new(
                    cx.key("body"),
                    "only sent with method = \"POST\" or \"PUT\"",
                ));
            } else if b.len() > MAX_REQUEST_BODY {
                p.push(Problem::new(
                    cx.key("body"),
                    format!("longer than {MAX_REQUEST_BODY} bytes"),
                ));
            }
        }
        if method == HttpMethod::Head && (keys.body_contains.is_some() || keys.body_regex.is_some())
        {
            p.push(Problem::new(
                cx.key("method"),
                "a HEAD answer has no body to match body_contains or body_regex; use GET",
            ));
        }
        if keys.body_contains.as_deref() == Some("") {
            p.push(Problem::new(cx.key("body_contains"), "is empty"));
        }
        if let Some(re) = &keys.body_regex {
            check_regex(re, cx, p);
        }
        let follow = keys.follow_redirects.unwrap_or(true);
        let max_redirects = match keys.max_redirects {
            None => 5,
            Some(n) => match u32::try_from(n)
                .ok()
                .filter(|n| (1..=MAX_REDIRECTS).contains(n))
            {
                Some(n) => n,
                None => {
                    p.push(Problem::new(
                        cx.key("max_redirects"),
                        format!("{n} is out of range; allowed 1 to {MAX_REDIRECTS} (or follow_redirects = false)"),
                    ));
                    5
                }
            },
        };
        if !follow && keys.max_redirects.is_some() {
            p.push(Problem::new(
                cx.key("max_redirects"),
                "set with follow_redirects = false; remove one of them",
            ));
        }
        let https = cx.address.starts_with("https://");
        if !https && (keys.ca_file.is_some() || keys.tls_verify.is_some()) {
            let k = if keys.ca_file.is_some() {
                "ca_file"
            } else {
                "tls_verify"
            };
            p.push(Problem::new(
                cx.key(k),
                "only applies to an https:// address",
            ));
        }
        if keys
            .ca_file
            .as_ref()
            .is_some_and(|f| f.as_os_str().is_empty())
        {
            p.push(Problem::new(cx.key("ca_file"), "is empty; give a PEM file"));
        }
        let headers = validate_headers(keys.headers, cx, p);
        (p.len() == before).then(|| HttpSpec {
            expect_status,
            method,
            headers,
            body: keys.body,
            body_contains: keys.body_contains,
            body_regex: keys.body_regex,
            max_redirects: if follow { max_redirects } else { 0 },
            ca_file: keys.ca_file,
            tls_verify: keys.tls_verify.unwrap_or(true),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::Defaults;

    fn spec(toml_keys: &str, address: &str) -> Result<HttpSpec, Vec<Problem>> {
        #[derive(Deserialize)]
        struct W {
            #[serde(default)]
            expect_status: Option<Vec<RawStatus>>,
            method: Option<String>,
            headers: Option<toml::Table>,
            body: Option<String>,
            body_contains: Option<String>,
            body_regex: Option<String>,
            follow_redirects: Option<bool>,
            max_redirects: Option<i64>,
            ca_file: Option<PathBuf>,
            tls_verify: Option<bool>,
        }
        let w: W = toml::from_str(toml_keys).unwrap();
        let keys = HttpKeys {
            expect_status: w.expect_status,
            method: w.method,
            headers: w.headers,
            body: w.body,
            body_contains: w.body_contains,
            body_regex: w.body_regex,
            follow_redirects: w.follow_redirects,
            max_redirects: w.max_redirects,
            ca_file: w.ca_file,
            tls_verify: w.tls_verify,
        };
        let d = Defaults::default();
        let cx = TargetContext {
            index: 2,
            address,
            defaults: &d,
        };
        let mut p = Vec::new();
        HttpSpec::validate(keys, &cx, &mut p).ok_or(p)
    }

    #[test]
    fn status_ranges_and_codes() {
        let s = spec(r#"expect_status = [200, "300-302", "418"]"#, "http://a/").unwrap();
        assert!(s.accepts(200) && s.accepts(301) && s.accepts(418));
        assert!(!s.accepts(201) && !s.accepts(404));
        assert_eq!(s.expected_text(), "200, 300-302, 418");
        let d = spec("", "http://a/").unwrap();
        assert!(d.accepts(204) && d.accepts(399) && !d.accepts(404));
        assert_eq!(d.max_redirects, 5);
        assert!(d.tls_verify);
        for bad in [r#"["299-200"]"#, r#"["abc"]"#, "[600]", r#"["100-700"]"#] {
            let e = spec(&format!("expect_status = {bad}"), "http://a/").unwrap_err();
            assert_eq!(e[0].key, "targets[2].expect_status", "{bad}");
        }
    }

    #[test]
    fn request_keys_are_checked() {
        let s = spec(
            r#"method = "post"
               body = "{}"
               headers = { Authorization = "Bearer s3cret", "X-Env" = "prod" }
               body_regex = "ok|healthy"
               follow_redirects = false"#,
            "https://a/",
        )
        .unwrap();
        assert_eq!(s.method, HttpMethod::Post);
        assert_eq!(s.max_redirects, 0);
        let dbg = format!("{s:?}");
        assert!(!dbg.contains("s3cret") && dbg.contains("prod"), "{dbg}");
        let e = spec(r#"method = "DELETE""#, "http://a/").unwrap_err();
        assert!(
            e[0].message.contains("GET, HEAD, POST, PUT, OPTIONS"),
            "{e:?}"
        );
        let e = spec(r#"body = "x""#, "http://a/").unwrap_err();
        assert_eq!(e[0].key, "targets[2].body");
        let e = spec(r#"body_regex = "(unclosed""#, "http://a/").unwrap_err();
        assert!(e[0].message.contains("regular expression"), "{e:?}");
        let e = spec(r#"headers = { "Bad Name" = "x" }"#, "http://a/").unwrap_err();
        assert_eq!(e[0].key, "targets[2].headers.Bad Name");
        let e = spec("headers = { Cookie = \"a\\nb\" }", "http://a/").unwrap_err();
        assert!(!e[0].message.contains("a\nb"), "{e:?}");
        let e = spec("max_redirects = 50", "http://a/").unwrap_err();
        assert_eq!(e[0].key, "targets[2].max_redirects");
        let e = spec(r#"ca_file = "/etc/ca.pem""#, "http://a/").unwrap_err();
        assert!(e[0].message.contains("https://"), "{e:?}");
        let e = spec(
            r#"method = "HEAD"
                        body_contains = "x""#,
            "http://a/",
        )
        .unwrap_err();
        assert_eq!(e[0].key, "targets[2].method");
    }

    #[test]
    fn secret_header_names() {
        for n in ["Authorization", "cookie", "X-Auth-Token", "X-API-Key"] {
            assert!(secret_header(n), "{n}");
        }
        assert!(!secret_header("Accept"));
    }
}
