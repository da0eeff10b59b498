//! The one-shot commands of `pantau-collector` (main.rs only parses
//! arguments and prints).

pub mod report;
