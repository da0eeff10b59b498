//! The five renderers. HTML, PDF, XLSX and CSV render the neutral
//! [`model`](super::model) of a report and know no section; JSON serialises
//! the report's data.
//!
//! - [`html`]: printable, self-contained HTML.
//! - [`pdf`]: native A4 PDF/A-2b (krilla, DejaVu Sans subset).
//! - [`xlsx`]: a spreadsheet, one sheet per section group.
//! - [`csv`]: machine records with plain numbers.
//! - [`json`]: the [`Report`](super::Report) as is (machine figures).

pub mod csv;
pub mod html;
pub mod json;
pub mod pdf;
pub mod xlsx;

// Words and numbers in the report's language, under their old path for the
// report pages, the web module and the review text.
pub(crate) use super::text::BULAN;
pub use super::text::{data_until, date, date_time, group_label, latency, num, period, rfc3339, t};
// Table rows of the report pages (web.rs), which render text tables of
// their own.
pub use super::sections::availability::{group_cells, group_headers};
pub use super::sections::incidents::{incident_headers, incident_rows};
