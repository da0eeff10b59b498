//! The storage conformance suite: checks written against the store traits,
//! run against every backend (SQLite today, in [`sqlite`]'s tests).

pub mod report;

#[cfg(test)]
mod sqlite;
