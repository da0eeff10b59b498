//! Pantau core: the domain vocabulary the agent and the collector share.
//! Small and synchronous on purpose: no tokio, rusqlite, tonic or web crate.
//!
//! - [`kind`]: `ProbeKind`, `Group`, `Outcome` and their config/label names.
//! - [`id`]: the one id rule and the `AgentId`, `OpdId`, `TargetId` newtypes.
//! - [`confload`]: layered TOML loading that reports every problem with its key.
//! - [`probe`]: the `[[targets]]` envelope and one module per probe kind owning
//!   its raw keys and their validation into a typed [`ProbeSpec`].
//! - [`clidocs`]: shell completions and man pages from the clap definitions.
//! - [`process`]: logging set-up for both binaries.

pub mod clidocs;
pub mod confload;
pub mod id;
pub mod kind;
pub mod probe;
pub mod process;

pub use id::{AgentId, InvalidId, OpdId, TargetId, valid_id};
pub use kind::{Group, Outcome, ProbeKind};
pub use probe::{ProbeSpec, Target};
