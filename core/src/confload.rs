//! Layered TOML loading shared by the agent and the collector: a file, then
//! environment overrides, then a strict pass that reports every unknown key.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

/// One problem found in a configuration, with the key it concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Dotted key path, e.g. `targets[2].interval`.
    pub key: String,
    /// What is wrong and what is allowed.
    pub message: String,
}

impl Problem {
    /// A problem at `key`.
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Problem {
            key: key.into(),
            message: message.into(),
        }
    }
}

/// A configuration that could not be used; lists every problem found.
#[derive(Debug)]
pub struct ConfigError {
    /// The file the configuration was read from.
    pub file: PathBuf,
    /// Every problem, each naming its key.
    pub problems: Vec<Problem>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "invalid configuration in {} ({} problem{}):",
            self.file.display(),
            self.problems.len(),
            if self.problems.len() == 1 { "" } else { "s" }
        )?;
        for p in &self.problems {
            writeln!(f, "  - {}: {}: {}", self.file.display(), p.key, p.message)?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// Read `path` as TOML, apply `<env_prefix>__SECTION__KEY` environment
/// overrides, and deserialize into `T`. Unknown keys are collected rather than
/// stopping at the first, so the operator sees all of them at once.
pub fn load<T: DeserializeOwned>(path: &Path, env_prefix: &str) -> Result<T, ConfigError> {
    let fail = |problems| ConfigError {
        file: path.to_path_buf(),
        problems,
    };
    if !path.exists() {
        return Err(fail(vec![Problem::new(
            "(file)",
            "file not found; pass --config with the path of a TOML file (see deploy/config/)",
        )]));
    }
    let built = config::Config::builder()
        .add_source(config::File::from(path).format(config::FileFormat::Toml))
        .add_source(
            config::Environment::with_prefix(env_prefix)
                .prefix_separator("__")
                .separator("__")
                .try_parsing(true),
        )
        .build()
        .map_err(|e| fail(vec![Problem::new("(file)", e.to_string())]))?;
    let mut unknown = Vec::new();
    let parsed: Result<T, _> = serde_ignored::deserialize(built, |p| unknown.push(key_of(&p)));
    let mut problems: Vec<Problem> = unknown
        .into_iter()
        .map(|k| Problem::new(k, "unknown key (check the spelling against deploy/config/)"))
        .collect();
    match parsed {
        Ok(v) if problems.is_empty() => Ok(v),
        Ok(_) => Err(fail(problems)),
        Err(e) => {
            problems.push(type_problem(&e.to_string()));
            Err(fail(problems))
        }
    }
}

/// Render an ignored path as `targets[0].intervall`, the form validation uses.
pub fn key_of(p: &serde_ignored::Path<'_>) -> String {
    use serde_ignored::Path;
    match p {
        Path::Root => String::new(),
        Path::Seq { parent, index } => format!("{}[{index}]", key_of(parent)),
        Path::Map { parent, key } => match key_of(parent) {
            s if s.is_empty() => key.clone(),
            s => format!("{s}.{key}"),
        },
        Path::Some { parent }
        | Path::NewtypeStruct { parent }
        | Path::NewtypeVariant { parent } => key_of(parent),
    }
}

/// The config crate phrases type errors as "... for key `a.b`"; lift the key
/// out so every problem reads the same way.
fn type_problem(msg: &str) -> Problem {
    if let Some(start) = msg.rfind("for key `") {
        let rest = &msg[start + 9..];
        if let Some(end) = rest.find('`') {
            let key = &rest[..end];
            let text = msg[..start].trim_end().trim_end_matches(',');
            return Problem::new(key, text);
        }
    }
    Problem::new("(value)", msg)
}

/// Parse a human duration such as `30s`, `5m` or `1h 30m`.
pub fn duration(
    key: &str,
    value: &str,
    min: std::time::Duration,
    max: std::time::Duration,
    problems: &mut Vec<Problem>,
) -> Option<std::time::Duration> {
    match humantime::parse_duration(value) {
        Ok(d) if d >= min && d <= max => Some(d),
        Ok(_) => {
            problems.push(Problem::new(
                key,
                format!(
                    "`{value}` is out of range; allowed {} to {}",
                    humantime::format_duration(min),
                    humantime::format_duration(max)
                ),
            ));
            None
        }
        Err(e) => {
            problems.push(Problem::new(
                key,
                format!("`{value}` is not a duration ({e}); write e.g. \"30s\", \"5m\""),
            ));
            None
        }
    }
}

/// Parse "512", "64KiB", "256MiB", "2GiB" (also KB/MB/GB as powers of 1000).
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().ok()?;
    let mult: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "TiB" => 1 << 40,
        "KB" | "kB" => 1000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        _ => return None,
    };
    n.checked_mul(mult)
}

/// `v` (or `default` when unset) if it lies in `min..=max`; otherwise a
/// problem naming the range, and `default`.
pub fn bounded(
    p: &mut Vec<Problem>,
    key: &str,
    v: Option<u32>,
    default: u32,
    min: u32,
    max: u32,
) -> usize {
    let v = v.unwrap_or(default);
    if v < min || v > max {
        p.push(Problem::new(
            key,
            format!("{v} is out of range; allowed {min} to {max}"),
        ));
        default as usize
    } else {
        v as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifts_key_from_config_crate_messages() {
        let p = type_problem(
            "invalid type: string \"x\", expected u32 for key `agent.max_concurrent_probes`",
        );
        assert_eq!(p.key, "agent.max_concurrent_probes");
        assert!(p.message.starts_with("invalid type"));
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("256MiB"), Some(256 << 20));
        assert_eq!(parse_size("16 KiB"), Some(16 << 10));
        assert_eq!(parse_size("5MB"), Some(5_000_000));
        assert_eq!(parse_size("1024"), Some(1024));
        assert_eq!(parse_size("lots"), None);
        assert_eq!(parse_size("5XB"), None);
    }

    #[test]
    fn duration_bounds_are_enforced() {
        let mut probs = Vec::new();
        let s = std::time::Duration::from_secs;
        assert_eq!(duration("k", "30s", s(1), s(60), &mut probs), Some(s(30)));
        assert_eq!(duration("k", "2m", s(1), s(60), &mut probs), None);
        assert_eq!(duration("k", "soon", s(1), s(60), &mut probs), None);
        assert_eq!(probs.len(), 2);
        assert!(probs[0].message.contains("out of range"));
        assert!(probs[1].message.contains("not a duration"));
    }
}
