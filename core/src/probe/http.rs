//! `kind = "http"`: a GET of the URL, `expect_status` counted as success.

use serde::de::MapAccess;

use super::{BadAddress, KindConfig, KindKeys, TargetContext, valid_http_url};
use crate::confload::Problem;
use crate::kind::ProbeKind;

/// The http keys of a target.
#[derive(Debug, Clone, Default)]
pub struct HttpKeys {
    /// Statuses counted as success (default 200-399).
    pub expect_status: Option<Vec<u16>>,
}

impl KindKeys for HttpKeys {
    fn take<'de, A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<bool, A::Error> {
        match key {
            "expect_status" => self.expect_status = map.next_value()?,
            _ => return Ok(false),
        }
        Ok(true)
    }

    fn set_key(&self) -> Option<(&'static str, &'static str)> {
        self.expect_status
            .is_some()
            .then_some(("expect_status", "expect_status"))
    }
}

/// A validated http target.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HttpSpec {
    /// Statuses counted as success; empty means 200-399.
    pub expect_status: Vec<u16>,
}

impl HttpSpec {
    /// Whether `status` counts as success.
    pub fn accepts(&self, status: u16) -> bool {
        if self.expect_status.is_empty() {
            (200..400).contains(&status)
        } else {
            self.expect_status.contains(&status)
        }
    }
}

impl KindConfig for HttpSpec {
    const KIND: ProbeKind = ProbeKind::Http;
    type Keys = HttpKeys;

    fn check_address(a: &str) -> Result<(), BadAddress> {
        BadAddress::unless(valid_http_url(a), a, "an http:// or https:// URL")
    }

    fn validate(keys: HttpKeys, cx: &TargetContext<'_>, p: &mut Vec<Problem>) -> Option<Self> {
        let expect_status = keys.expect_status.unwrap_or_default();
        if let Some(bad) = expect_status.iter().find(|s| !(100..=599).contains(*s)) {
            p.push(Problem::new(
                cx.key("expect_status"),
                format!("{bad} is not an HTTP status (100-599)"),
            ));
            return None;
        }
        Some(HttpSpec { expect_status })
    }
}
