//! The neutral report model: what every section produces and the only thing
//! the HTML, PDF, XLSX and CSV renderers read (JSON serialises the
//! [`Report`](super::Report) data itself, see [`super::render::json`]).
//!
//! A [`Document`] is a list of [`Section`]s; a section is a list of
//! [`Block`]s: headings, paragraphs, tables of typed [`Cell`]s, lists,
//! key-value fields, figures, a framed box, machine records. Text is already
//! in the report's language; numbers stay numbers until a renderer writes
//! them (with the language's decimal mark, or as spreadsheet numbers).
//!
//! A block names the media that show it ([`Media`]): a paginated document,
//! a spreadsheet and a machine CSV do not present a section the same way
//! (a spreadsheet wants numbers in cells where a page wants a sentence; the
//! CSV wants plain values and machine column names), so a section may give
//! one block to some media and another to the rest. Renderers only ask
//! "is this block for me", never which section it came from.

use super::Lang;
use super::text::{latency, num};

/// A whole rendered report.
#[derive(Debug, Clone)]
pub struct Document {
    /// Language of the text (decimal marks of number cells).
    pub lang: Lang,
    /// Window or file title (HTML `<title>`).
    pub title: String,
    /// Running footer of every page (PDF), before the page number.
    pub footer: String,
    /// Sections in reading order.
    pub sections: Vec<Section>,
    /// The letterhead at the top of the first page (PDF), when there is one.
    pub letterhead: Option<Letterhead>,
    /// Date of issue, UTC ms, and the zone's offset in minutes (the PDF's
    /// document date, which PDF/A requires).
    pub issued: (i64, i64),
}

/// A letterhead ("kop surat"): the agency, its unit and a logo.
#[derive(Debug, Clone, Default)]
pub struct Letterhead {
    /// Agency (province) name.
    pub agency: String,
    /// Unit under it (`[report] unit`).
    pub unit: Option<String>,
    /// Logo, PNG bytes (`[report] letterhead_logo`).
    pub logo: Option<std::sync::Arc<Vec<u8>>>,
}

/// One section of a report.
#[derive(Debug, Clone)]
pub struct Section {
    /// Stable machine name (`availability`, `incidents`, ...): tests and
    /// HTML classes use it; renderers never branch on it.
    pub id: &'static str,
    /// Spreadsheets: the section starts a new sheet (else it continues the
    /// previous one).
    pub sheet: Option<Sheet>,
    /// Content.
    pub blocks: Vec<Block>,
}

/// A spreadsheet sheet a section starts.
#[derive(Debug, Clone)]
pub struct Sheet {
    /// Sheet name.
    pub name: &'static str,
    /// Column widths (column, width in characters).
    pub widths: Vec<(u16, f64)>,
}

/// The renderers a block is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Media(u8);

impl Media {
    /// Printable HTML.
    pub const HTML: Media = Media(1);
    /// PDF.
    pub const PDF: Media = Media(2);
    /// Spreadsheet (XLSX).
    pub const SHEET: Media = Media(4);
    /// Machine CSV.
    pub const CSV: Media = Media(8);
    /// Both paginated documents.
    pub const PRINT: Media = Media(1 | 2);
    /// Every human-readable medium.
    pub const VISUAL: Media = Media(1 | 2 | 4);
    /// No medium.
    pub const NONE: Media = Media(0);

    /// Both sets.
    pub const fn or(self, o: Media) -> Media {
        Media(self.0 | o.0)
    }

    /// `o` when `cond`, else nothing.
    pub const fn when(cond: bool, o: Media) -> Media {
        if cond { o } else { Media::NONE }
    }

    /// Whether the set holds every medium of `o`.
    pub const fn has(self, o: Media) -> bool {
        self.0 & o.0 == o.0
    }
}

/// A block and the media that show it.
#[derive(Debug, Clone)]
pub struct Block {
    /// Who shows it.
    pub media: Media,
    /// What it is.
    pub body: Body,
}

impl Block {
    /// A block for every human-readable medium (CSV takes records only).
    pub fn new(body: Body) -> Block {
        Block {
            media: Media::VISUAL,
            body,
        }
    }

    /// The same block, for `media` only.
    pub fn only(self, media: Media) -> Block {
        Block { media, ..self }
    }
}

/// Block content.
#[derive(Debug, Clone)]
pub enum Body {
    /// A heading: level 1 (document), 2 (section) or 3 (sub-section), with
    /// an optional section number that spreadsheets leave out.
    Heading {
        /// 1, 2 or 3.
        level: u8,
        /// "4a" in "4a. Maintenance windows".
        number: Option<String>,
        /// Text.
        text: String,
    },
    /// A paragraph.
    Para(Para),
    /// A table.
    Table(Table),
    /// Bulleted items.
    List(Vec<String>),
    /// Label and value pairs.
    Fields {
        /// How they are set.
        style: FieldStyle,
        /// (label, value).
        rows: Vec<(String, String)>,
    },
    /// A drawing.
    Figure(Diagram),
    /// Blocks set apart in a frame kept on one page (`keep` points high).
    Frame {
        /// Style name of the frame (an HTML class).
        class: &'static str,
        /// Room the frame needs on the page, points (PDF).
        keep: f32,
        /// Content.
        blocks: Vec<Block>,
    },
    /// Sign-off lines set on the right, blank lines for the signature.
    Signature(Vec<String>),
    /// Vertical space: points in a PDF, one empty row in a spreadsheet.
    Gap(f32),
    /// Machine records (CSV): column names and plain values.
    Records(Records),
}

/// Paragraph sizes (PDF points; HTML keeps its own styles).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Size {
    /// 11 pt, the agency under the title.
    Lead,
    /// 9 pt.
    Body,
    /// 8.5 pt, methodology text.
    Small,
    /// 8 pt, explanations under a heading.
    Note,
}

/// A paragraph: spans of text.
#[derive(Debug, Clone)]
pub struct Para {
    /// Size.
    pub size: Size,
    /// Content.
    pub spans: Vec<Span>,
}

impl Para {
    /// Plain text.
    pub fn text(size: Size, text: impl Into<String>) -> Block {
        Block::new(Body::Para(Para {
            size,
            spans: vec![Span::Text(text.into())],
        }))
    }
}

/// Part of a paragraph.
#[derive(Debug, Clone)]
pub enum Span {
    /// Plain text.
    Text(String),
    /// Emphasised text.
    Strong(String),
    /// A key, digest or command, set in a fixed-width font where there is one.
    Code(String),
    /// A line break (a new line of its own in a PDF or spreadsheet).
    Break,
}

/// How label-value pairs are set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldStyle {
    /// `label: value` lines.
    Lines,
    /// A two-column box, values in a fixed-width font.
    Boxed,
}

/// A table.
#[derive(Debug, Clone)]
pub struct Table {
    /// Column headers; empty for a headerless row block.
    pub columns: Vec<String>,
    /// Rows.
    pub rows: Vec<Vec<Cell>>,
    /// Relative column widths on a page (PDF).
    pub weights: Vec<f32>,
    /// What a table without rows shows.
    pub empty: Empty,
}

/// What a table without rows shows.
#[derive(Debug, Clone, PartialEq)]
pub enum Empty {
    /// Its headers only.
    Headers,
    /// One row across the table with this text (pages); spreadsheets keep
    /// the headers only.
    Row(String),
    /// This text instead of the table (pages); spreadsheets write it under
    /// the headers.
    Text(String),
}

/// What a number measures: spreadsheets keep two decimals for measures and
/// none for counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Percent.
    Percent,
    /// Milliseconds.
    Millis,
    /// Megabit per second.
    Mbps,
    /// Minutes.
    Minutes,
    /// A count (results, tests, polls, OPDs).
    Count,
}

impl Unit {
    /// Whether the unit is a whole count (no decimals in spreadsheets).
    pub fn whole(self) -> bool {
        matches!(self, Unit::Minutes | Unit::Count)
    }
}

/// Decimals a number is shown with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Places {
    /// Always this many.
    Fixed(usize),
    /// A latency: one decimal, more below 1 ms (see [`latency`]).
    Latency,
}

/// A table cell.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// Text as is.
    Text(String),
    /// A number ("-" when absent).
    Num {
        /// Value.
        value: Option<f64>,
        /// Decimals in text.
        places: Places,
        /// What it measures.
        unit: Unit,
    },
    /// A number written in words of its own ("54 (duration so far)", or a
    /// count without thousands separators); spreadsheets get the number.
    Shown {
        /// Value.
        value: f64,
        /// Text.
        text: String,
    },
    /// An OPD (or other entity) with its name: "id — name" where there is
    /// room (HTML), the id alone on a narrow page (PDF).
    Named {
        /// Id.
        id: String,
        /// Name.
        name: String,
    },
    /// Not applicable: "-" on a page, an empty cell in a spreadsheet.
    Missing,
}

impl Cell {
    /// Text cell.
    pub fn text(s: impl Into<String>) -> Cell {
        Cell::Text(s.into())
    }

    /// Number with fixed decimals.
    pub fn num(value: Option<f64>, places: usize, unit: Unit) -> Cell {
        Cell::Num {
            value,
            places: Places::Fixed(places),
            unit,
        }
    }

    /// A whole count, shown with thousands separators.
    pub fn count(value: u64, unit: Unit) -> Cell {
        Cell::num(Some(value as f64), 0, unit)
    }

    /// A count shown with its plain digits.
    pub fn plain(value: i64) -> Cell {
        Cell::Shown {
            value: value as f64,
            text: value.to_string(),
        }
    }

    /// The cell as text in `l`; `wide` where there is room for names.
    pub fn show(&self, l: Lang, wide: bool) -> String {
        match self {
            Cell::Text(s) => s.clone(),
            Cell::Num { value: None, .. } | Cell::Missing => "-".into(),
            Cell::Num {
                value: Some(v),
                places: Places::Fixed(p),
                ..
            } => num(*v, *p, l),
            Cell::Num {
                value: Some(v),
                places: Places::Latency,
                ..
            } => latency(Some(*v), l),
            Cell::Shown { text, .. } => text.clone(),
            Cell::Named { id, name } if wide => format!("{id} — {name}"),
            Cell::Named { id, .. } => id.clone(),
        }
    }
}

/// Machine records: one CSV block.
#[derive(Debug, Clone)]
pub struct Records {
    /// Column names.
    pub columns: Vec<&'static str>,
    /// Plain values (numbers with a decimal point, RFC 3339 times).
    pub rows: Vec<Vec<String>>,
}

/// A drawing of marks joined by lines, in abstract units (top-left origin).
#[derive(Debug, Clone, Default)]
pub struct Diagram {
    /// Accessible caption.
    pub caption: String,
    /// Width.
    pub width: f64,
    /// Height.
    pub height: f64,
    /// Marks.
    pub marks: Vec<Mark>,
    /// Lines between two marks (indices).
    pub lines: Vec<(usize, usize)>,
}

/// One mark of a [`Diagram`].
#[derive(Debug, Clone)]
pub struct Mark {
    /// Centre, x.
    pub x: f64,
    /// Centre, y.
    pub y: f64,
    /// Label under the mark.
    pub label: String,
    /// Style name (an SVG class).
    pub class: String,
    /// Address it stands for, if any (an SVG data attribute).
    pub address: Option<String>,
    /// Shape.
    pub shape: Shape,
    /// Colour role.
    pub tone: Tone,
}

/// Mark shapes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// A small circle.
    Dot,
    /// A small square.
    Square,
}

/// Colour roles; each renderer has its palette.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    /// Blue.
    Primary,
    /// Dark grey.
    Neutral,
    /// Light grey.
    Muted,
    /// Green.
    Positive,
}

/// A heading block.
pub fn heading(level: u8, number: Option<&str>, text: impl Into<String>) -> Block {
    Block::new(Body::Heading {
        level,
        number: number.map(str::to_string),
        text: text.into(),
    })
}

/// A gap block for `media`.
pub fn gap(points: f32, media: Media) -> Block {
    Block::new(Body::Gap(points)).only(media)
}

/// A table block.
pub fn table(columns: Vec<String>, rows: Vec<Vec<Cell>>, weights: &[f32], empty: Empty) -> Block {
    Block::new(Body::Table(Table {
        columns,
        rows,
        weights: weights.to_vec(),
        empty,
    }))
}

/// A CSV block.
pub fn records(columns: Vec<&'static str>, rows: Vec<Vec<String>>) -> Block {
    Block::new(Body::Records(Records { columns, rows })).only(Media::CSV)
}

/// Strings from static labels.
pub fn labels(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_as_text() {
        let l = Lang::Id;
        assert_eq!(
            Cell::num(Some(3700.0), 0, Unit::Minutes).show(l, true),
            "3.700"
        );
        assert_eq!(Cell::num(None, 2, Unit::Percent).show(l, true), "-");
        assert_eq!(Cell::plain(3700).show(l, true), "3700");
        let lat = Cell::Num {
            value: Some(0.04),
            places: Places::Latency,
            unit: Unit::Millis,
        };
        assert_eq!(lat.show(Lang::En, false), "0.040");
        let opd = Cell::Named {
            id: "dinkes".into(),
            name: "Dinas Kesehatan".into(),
        };
        assert_eq!(opd.show(l, true), "dinkes — Dinas Kesehatan");
        assert_eq!(opd.show(l, false), "dinkes");
        assert_eq!(Cell::Missing.show(l, false), "-");
        assert!(Media::PRINT.has(Media::PDF) && !Media::PRINT.has(Media::SHEET));
        assert!(
            Media::when(true, Media::HTML)
                .or(Media::SHEET)
                .has(Media::SHEET)
        );
    }
}
