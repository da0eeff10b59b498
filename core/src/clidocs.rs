//! Shell completions and man pages generated from a clap command definition,
//! shared by `pantau-agent` and `pantau-collector` (`completions SHELL`,
//! `man [--out DIR]`), so they never drift from the real command line.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The shells completions can be generated for.
pub use clap_complete::Shell;

/// Write the completion script for `shell` to `out`.
pub fn completions(mut cmd: clap::Command, shell: Shell, out: &mut dyn Write) {
    let name = cmd.get_name().to_string();
    clap_complete::generate(shell, &mut cmd, name, out);
}

/// Why `man` could not write its pages.
#[derive(Debug, thiserror::Error)]
pub enum ManError {
    /// Writing the main page to stdout failed.
    #[error("cannot write the man page: {0}")]
    Stdout(#[source] io::Error),
    /// Creating the directory or writing a page into it failed.
    #[error("cannot write man pages into {}: {source}", dir.display())]
    Dir {
        /// The `--out` directory.
        dir: PathBuf,
        /// Cause.
        source: io::Error,
    },
}

/// Sections a man page has beside what clap knows: each a list of
/// (term, explanation) pairs, in plain text (escaped for roff here).
#[derive(Debug, Clone, Copy, Default)]
pub struct ManExtra {
    /// EXIT STATUS: code and meaning.
    pub exit_status: &'static [(&'static str, &'static str)],
    /// ENVIRONMENT: variable and meaning.
    pub environment: &'static [(&'static str, &'static str)],
    /// FILES: path and meaning.
    pub files: &'static [(&'static str, &'static str)],
    /// SEE ALSO: other pages, e.g. `pantau-agent.toml(5)`.
    pub see_also: &'static [&'static str],
}

/// Text made safe for roff: backslashes doubled, and a line never starts
/// with a control character (`.` or `'`).
pub fn roff_escape(text: &str) -> String {
    let text = text.replace('\\', "\\e").replace('-', "\\-");
    text.lines()
        .map(|l| match l.chars().next() {
            Some('.' | '\'') => format!("\\&{l}"),
            _ => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// `.SH NAME` with one tagged paragraph per (term, text).
fn tagged_section(title: &str, items: &[(&str, &str)], out: &mut Vec<u8>) {
    if items.is_empty() {
        return;
    }
    out.extend_from_slice(format!(".SH \"{title}\"\n").as_bytes());
    for (term, text) in items {
        let body = format!(
            ".TP\n\\fB{}\\fR\n{}\n",
            roff_escape(term),
            roff_escape(text)
        );
        out.extend_from_slice(body.as_bytes());
    }
}

/// The `man` subcommand: the main page on stdout, or with `out` every page
/// written into that directory (their paths printed, one a line).
pub fn man_command(
    cmd: clap::Command,
    extra: &ManExtra,
    out: Option<&Path>,
) -> Result<(), ManError> {
    match out {
        None => man_page(cmd, extra)
            .and_then(|page| io::stdout().write_all(&page))
            .map_err(ManError::Stdout),
        Some(dir) => {
            let files = man_pages(cmd, extra, dir).map_err(|source| ManError::Dir {
                dir: dir.to_path_buf(),
                source,
            })?;
            for f in files {
                println!("{}", f.display());
            }
            Ok(())
        }
    }
}

/// Render the main man page (section 1, with the list of subcommands) as
/// roff, with the `extra` sections before VERSION.
pub fn man_page(cmd: clap::Command, extra: &ManExtra) -> io::Result<Vec<u8>> {
    let man = clap_mangen::Man::new(cmd);
    let mut buf = Vec::new();
    man.render_title(&mut buf)?;
    man.render_name_section(&mut buf)?;
    man.render_synopsis_section(&mut buf)?;
    man.render_description_section(&mut buf)?;
    man.render_options_section(&mut buf)?;
    man.render_subcommands_section(&mut buf)?;
    man.render_extra_section(&mut buf)?;
    tagged_section("EXIT STATUS", extra.exit_status, &mut buf);
    tagged_section("ENVIRONMENT", extra.environment, &mut buf);
    tagged_section("FILES", extra.files, &mut buf);
    if !extra.see_also.is_empty() {
        let refs: Vec<String> = extra
            .see_also
            .iter()
            .map(|r| match r.split_once('(') {
                Some((name, sec)) => format!("\\fB{}\\fR({sec}", roff_escape(name)),
                None => roff_escape(r),
            })
            .collect();
        buf.extend_from_slice(format!(".SH \"SEE ALSO\"\n{}\n", refs.join(", ")).as_bytes());
    }
    man.render_version_section(&mut buf)?;
    man.render_authors_section(&mut buf)?;
    Ok(buf)
}

/// Write `NAME.1` and one page per subcommand (`NAME-SUB.1`, nested ones
/// too) into `dir`, created if missing; returns the files written, sorted.
/// Every page carries the `extra` sections (exit status, environment and
/// files hold for each command).
pub fn man_pages(cmd: clap::Command, extra: &ManExtra, dir: &Path) -> io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let mut written = Vec::new();
    write_pages(cmd, extra, None, dir, &mut written)?;
    written.sort();
    Ok(written)
}

fn write_pages(
    cmd: clap::Command,
    extra: &ManExtra,
    parent: Option<(&str, &str)>,
    dir: &Path,
    written: &mut Vec<PathBuf>,
) -> io::Result<()> {
    // Page name `pantau-agent-run`, usage `pantau-agent run`.
    let (name, usage) = match parent {
        None => (cmd.get_name().to_string(), cmd.get_name().to_string()),
        Some((pname, pusage)) => (
            format!("{pname}-{}", cmd.get_name()),
            format!("{pusage} {}", cmd.get_name()),
        ),
    };
    let version = cmd.get_version().map(str::to_string);
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let mut sub = sub.clone();
        if let Some(v) = &version {
            sub = sub.version(v.clone());
        }
        write_pages(sub, extra, Some((&name, &usage)), dir, written)?;
    }
    let path = dir.join(format!("{name}.1"));
    std::fs::write(&path, man_page(cmd.name(name).bin_name(usage), extra)?)?;
    written.push(path);
    Ok(())
}

/// A section-5 page (a file format) from a part of the configuration
/// reference in Markdown: `### ` headings become subsections, table rows
/// tagged paragraphs (key in bold, then default and allowed values when the
/// table has them), other text paragraphs; `code` is bold. `name` is the
/// page (`pantau-agent.toml`), `summary` its NAME line.
pub fn file_format_page(name: &str, summary: &str, markdown: &str, extra: &ManExtra) -> Vec<u8> {
    let mut out = format!(
        ".TH {} 5\n.SH NAME\n{} \\- {}\n.SH DESCRIPTION\n",
        roff_escape(&name.to_uppercase()),
        roff_escape(name),
        inline(summary)
    );
    let mut paragraph = Vec::new();
    let flush = |paragraph: &mut Vec<&str>, out: &mut String| {
        if !paragraph.is_empty() {
            out.push_str(&format!(".PP\n{}\n", inline(&paragraph.join(" "))));
            paragraph.clear();
        }
    };
    for line in markdown.lines() {
        let line = line.trim_end();
        if let Some(h) = line.strip_prefix("### ").or(line.strip_prefix("## ")) {
            flush(&mut paragraph, &mut out);
            out.push_str(&format!(".SS \"{}\"\n", plain(h)));
        } else if line.starts_with('|') {
            flush(&mut paragraph, &mut out);
            let cells: Vec<&str> = line.trim_matches('|').split(" | ").map(str::trim).collect();
            let header = cells
                .first()
                .is_some_and(|c| *c == "key" || c.starts_with("---"));
            if header
                || cells
                    .iter()
                    .all(|c| c.chars().all(|ch| ch == '-' || ch == '|'))
            {
                continue;
            }
            let (term, detail, meaning) = match cells.as_slice() {
                [k, d, a, m] => (*k, format!(" (default: {d}; allowed: {a})"), *m),
                [k, f, m] => (*k, format!(" (for: {f})"), *m),
                [k, m] => (*k, String::new(), *m),
                _ => (line, String::new(), ""),
            };
            out.push_str(&format!(
                ".TP\n{}{}\n{}\n",
                inline(term),
                inline(&detail),
                inline(meaning)
            ));
        } else if line.is_empty() {
            flush(&mut paragraph, &mut out);
        } else {
            paragraph.push(line);
        }
    }
    flush(&mut paragraph, &mut out);
    let mut page = out.into_bytes();
    tagged_section("ENVIRONMENT", extra.environment, &mut page);
    tagged_section("FILES", extra.files, &mut page);
    if !extra.see_also.is_empty() {
        let refs: Vec<String> = extra.see_also.iter().map(|r| roff_escape(r)).collect();
        page.extend_from_slice(format!(".SH \"SEE ALSO\"\n{}\n", refs.join(", ")).as_bytes());
    }
    page
}

/// Markdown emphasis removed, escaped for roff.
fn plain(text: &str) -> String {
    roff_escape(&text.replace("**", "").replace('`', ""))
}

/// Escaped for roff, `code` in bold, `**` dropped.
fn inline(text: &str) -> String {
    text.replace("**", "")
        .split('`')
        .enumerate()
        .map(|(i, part)| {
            let part = roff_escape(part).replace('\n', " ");
            if i % 2 == 1 {
                format!("\\fB{part}\\fR")
            } else {
                part
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_format_pages_escape_and_tag_table_rows() {
        let md = "Intro with `a.b` and **bold**.\n.dot line\n\n.starts a paragraph\n\n### Sub-head\n\n\
| key | default | allowed | meaning |\n|---|---|---|---|\n| `x.y` | 5 | 1-9 | what \\ it is |\n";
        let page = String::from_utf8(file_format_page(
            "demo.toml",
            "the demo file",
            md,
            &ManExtra::default(),
        ))
        .unwrap();
        assert!(page.starts_with(".TH DEMO.TOML 5\n.SH NAME\ndemo.toml \\- the demo file\n"));
        assert!(
            page.contains("Intro with \\fBa.b\\fR and bold. .dot line\n"),
            "{page}"
        );
        assert!(page.contains(".PP\n\\&.starts a paragraph\n"), "{page}");
        assert!(page.contains(".SS \"Sub\\-head\"\n"), "{page}");
        assert!(
            page.contains(".TP\n\\fBx.y\\fR (default: 5; allowed: 1\\-9)\nwhat \\e it is\n"),
            "{page}"
        );
        assert!(!page.contains("|---"), "{page}");
        assert!(!page.contains("**"));
    }

    #[test]
    fn man_errors_name_the_directory() {
        let e = ManError::Dir {
            dir: PathBuf::from("/nonexistent/man"),
            source: io::Error::from(io::ErrorKind::PermissionDenied),
        };
        assert_eq!(
            e.to_string(),
            "cannot write man pages into /nonexistent/man: permission denied"
        );
    }
}
