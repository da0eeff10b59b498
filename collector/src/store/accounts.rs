//! Web accounts, their sessions and machine API tokens (issue 13). Only
//! hashes are stored: argon2id PHC strings for passwords, SHA-256 for
//! session ids and API tokens (both 256-bit random, so a fast hash is
//! enough).

use super::StoreError;

/// What a user or token may do; see docs/ADMIN.md for the route matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Everything.
    Admin,
    /// Staff of one or more OPDs: only those OPDs' data.
    Opd,
    /// Read-only everything, and signed reports.
    Evaluator,
    /// Status pages only.
    Viewer,
    /// `/metrics` only (Prometheus).
    Scrape,
}

/// Every role, in the order listings and help text show them.
pub const ROLES: [Role; 5] = [
    Role::Admin,
    Role::Opd,
    Role::Evaluator,
    Role::Viewer,
    Role::Scrape,
];

impl Role {
    /// The name in the CLI, the store and the manifest.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Opd => "opd",
            Role::Evaluator => "evaluator",
            Role::Viewer => "viewer",
            Role::Scrape => "scrape",
        }
    }

    /// Parse a stored or typed name.
    pub fn parse(s: &str) -> Option<Role> {
        ROLES.into_iter().find(|r| r.as_str() == s)
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A web user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// Login name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// The OPDs of an `opd` user (empty for the other roles).
    pub opds: Vec<String>,
    /// argon2id PHC string.
    pub password_hash: String,
    /// A disabled account cannot log in; its sessions are gone.
    pub disabled: bool,
    /// When it was created.
    pub created_at_ms: i64,
}

/// A machine credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiToken {
    /// Name (who uses it: `prometheus`, `grafana`, ...).
    pub name: String,
    /// Role.
    pub role: Role,
    /// The OPDs of an `opd` token.
    pub opds: Vec<String>,
    /// When it was created.
    pub created_at_ms: i64,
    /// When it was revoked, if it was.
    pub revoked_at_ms: Option<i64>,
}

/// A live session and its account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The account (enabled, else there is no session).
    pub account: Account,
    /// The form token of this session.
    pub csrf: String,
    /// Created.
    pub created_at_ms: i64,
    /// Last request.
    pub last_seen_ms: i64,
}

/// One signed report handed out, as the register keeps it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SignedReport {
    /// Report number as printed.
    pub number: String,
    /// Whether the requester chose the number (else generated).
    pub number_given: bool,
    /// Date of issue as printed (YYYY-MM-DD).
    pub issued: String,
    /// Whether the requester chose the issue date (else today).
    pub issued_given: bool,
    /// First day of the period.
    pub from: String,
    /// Last day of the period.
    pub to: String,
    /// OPD id or `provinsi`.
    pub scope: String,
    /// Report format.
    pub format: String,
    /// SHA-256 of the bundle as delivered (hex).
    pub sha256: String,
    /// "user ani" or "token grafana".
    pub requester: String,
    /// The requester's role.
    pub role: String,
    /// Source address of the request.
    pub source: String,
    /// When it was signed.
    pub at_ms: i64,
}

/// A user as an OpenID Connect provider vouched for them, with the role and
/// OPDs `[web.oidc] roles` maps their claim to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcIdentity {
    /// The provider (`iss`).
    pub issuer: String,
    /// The user at the provider (`sub`), stable across renames.
    pub subject: String,
    /// The name to give a new account (`preferred_username`, `email` or
    /// `sub`), made unique: never an existing local account's name.
    pub preferred_name: String,
    /// Mapped role.
    pub role: Role,
    /// Mapped OPDs of an `opd` user.
    pub opds: Vec<String>,
}

/// The account an OpenID Connect sign-in resolved to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcLinked {
    /// The account now (role and OPDs as mapped).
    pub account: Account,
    /// The account before this sign-in; `None` when it was created.
    pub before: Option<Account>,
}

/// The password hash of an account that signs in only through OpenID
/// Connect: not a PHC string, so no password ever matches it.
pub const OIDC_NO_PASSWORD: &str = "!oidc";

/// Names to try, in order, for a new account of `preferred`: the name
/// cleaned to `[A-Za-z0-9._@-]` (at most 48 characters), then with `-2`,
/// `-3`, ... appended.
pub fn oidc_account_names(preferred: &str) -> impl Iterator<Item = String> {
    let clean: String = preferred
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '@' | '-'))
        .take(48)
        .collect();
    let base = if clean.is_empty() {
        "sso".to_string()
    } else {
        clean
    };
    std::iter::once(base.clone()).chain((2..1000).map(move |i| format!("{base}-{i}")))
}

/// Accounts, sessions and API tokens.
pub trait Accounts: Send + Sync {
    /// Add a signed report to the register.
    fn record_signed_report(&self, r: &SignedReport) -> Result<(), StoreError>;
    /// The register, newest first.
    fn signed_reports(&self) -> Result<Vec<SignedReport>, StoreError>;

    /// Create an account; [`StoreError::Exists`] when the name is taken.
    fn add_account(&self, a: &Account) -> Result<(), StoreError>;
    /// One account by name.
    fn account(&self, name: &str) -> Result<Option<Account>, StoreError>;
    /// Every account, by name.
    fn accounts(&self) -> Result<Vec<Account>, StoreError>;
    /// Replace the password hash; ends the account's sessions. `false`: no such account.
    fn set_password(&self, name: &str, hash: &str) -> Result<bool, StoreError>;
    /// Disable or enable; disabling ends the sessions. `false`: no such account.
    fn set_disabled(&self, name: &str, disabled: bool) -> Result<bool, StoreError>;
    /// Remove an account and its sessions. `false`: no such account.
    fn remove_account(&self, name: &str) -> Result<bool, StoreError>;
    /// Change a user's role and OPDs and end its sessions; false when there
    /// is no such user.
    fn set_role(&self, name: &str, role: Role, opds: &[String]) -> Result<bool, StoreError>;

    /// Store a new session (id as SHA-256), and delete every session created
    /// before `purge_created_before_ms` (past the absolute limit), so
    /// abandoned sessions do not pile up.
    fn add_session(
        &self,
        id_sha256: &[u8],
        account: &str,
        csrf: &str,
        now_ms: i64,
        purge_created_before_ms: i64,
    ) -> Result<(), StoreError>;
    /// The session of an id, if it exists, was used after `idle_after_ms`,
    /// was created after `created_after_ms` and its account is enabled.
    /// Expired sessions found on the way are deleted.
    fn session(
        &self,
        id_sha256: &[u8],
        idle_after_ms: i64,
        created_after_ms: i64,
    ) -> Result<Option<Session>, StoreError>;
    /// Record use of a session.
    fn touch_session(&self, id_sha256: &[u8], now_ms: i64) -> Result<(), StoreError>;
    /// End a session.
    fn remove_session(&self, id_sha256: &[u8]) -> Result<(), StoreError>;

    /// Store a new API token (as SHA-256); [`StoreError::Exists`] when the name is taken.
    fn add_api_token(&self, t: &ApiToken, sha256: &[u8]) -> Result<(), StoreError>;
    /// The unrevoked token with this digest.
    fn api_token(&self, sha256: &[u8]) -> Result<Option<ApiToken>, StoreError>;
    /// Every token, revoked ones included, by name.
    fn api_tokens(&self) -> Result<Vec<ApiToken>, StoreError>;
    /// Revoke a token by name. `false`: no such unrevoked token.
    fn revoke_api_token(&self, name: &str, now_ms: i64) -> Result<bool, StoreError>;

    /// Sign-in through OpenID Connect: the account linked to
    /// (`issuer`, `subject`) gets the mapped role and OPDs (its sessions end
    /// when they change); without a link, a new account (no password, see
    /// [`OIDC_NO_PASSWORD`]) is created under a free name from
    /// [`oidc_account_names`] and linked. One transaction.
    fn oidc_sign_in(&self, id: &OidcIdentity, now_ms: i64) -> Result<OidcLinked, StoreError>;
    /// The account linked to (`issuer`, `subject`), if any.
    fn oidc_account(&self, issuer: &str, subject: &str) -> Result<Option<String>, StoreError>;
}
