//! Ids of agents, OPDs and targets: one rule, written once, and the message
//! that explains it wherever an id is refused.

use std::fmt;

/// The rule every id follows, as told to the operator.
pub const ID_RULE: &str = "use 1-64 letters, digits, '-', '_' or '.'";

/// Longest id, in bytes (all allowed characters are ASCII).
pub const MAX_ID_LEN: usize = 64;

/// Whether `s` is a valid id: 1-64 of letters, digits, '-', '_', '.'.
pub fn valid_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_ID_LEN
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// An id that breaks the rule; `what` names the id ("id", "OPD id", ...).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{value}` is not a valid {what}: {rule}", rule = ID_RULE)]
pub struct InvalidId {
    /// Which id it was meant to be.
    pub what: &'static str,
    /// The refused text.
    pub value: String,
}

/// Check `value` against the rule, naming it `what` in the error.
pub fn check_id(what: &'static str, value: &str) -> Result<(), InvalidId> {
    if valid_id(value) {
        Ok(())
    } else {
        Err(InvalidId {
            what,
            value: value.to_string(),
        })
    }
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// What this id is called in messages.
            pub const WHAT: &'static str = $what;

            /// Accept `s` if it follows the id rule.
            pub fn new(s: impl Into<String>) -> Result<Self, InvalidId> {
                let s = s.into();
                check_id(Self::WHAT, &s)?;
                Ok(Self(s))
            }

            /// The id text.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The id text, owned.
            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

id_type!(
    /// The id of an agent (`agent.id`, `pantau-collector agent add`).
    AgentId,
    "agent id"
);
id_type!(
    /// The id of an OPD (`pantau-collector opd add`).
    OpdId,
    "OPD id"
);
id_type!(
    /// The id of a target (`targets[i].id`), unique within its agent.
    TargetId,
    "id"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rule_accepts_and_refuses() {
        assert!(valid_id("dinkes-1"));
        assert!(valid_id("a.b_c-D9"));
        assert!(valid_id(&"x".repeat(64)));
        assert!(!valid_id(""));
        assert!(!valid_id(&"x".repeat(65)));
        assert!(!valid_id("dinas kesehatan"));
        assert!(!valid_id("dinkés"));
        assert!(!valid_id("a/b"));
    }

    #[test]
    fn refusals_name_the_id_and_the_rule() {
        assert_eq!(
            OpdId::new("a b").unwrap_err().to_string(),
            "`a b` is not a valid OPD id: use 1-64 letters, digits, '-', '_' or '.'"
        );
        assert_eq!(
            AgentId::new("").unwrap_err().to_string(),
            "`` is not a valid agent id: use 1-64 letters, digits, '-', '_' or '.'"
        );
        assert_eq!(
            check_id("id", "é").unwrap_err().to_string(),
            "`é` is not a valid id: use 1-64 letters, digits, '-', '_' or '.'"
        );
        assert_eq!(TargetId::new("jip").unwrap().as_str(), "jip");
    }
}
