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

/// The `man` subcommand: the main page on stdout, or with `out` every page
/// written into that directory (their paths printed, one a line).
pub fn man_command(cmd: clap::Command, out: Option<&Path>) -> Result<(), ManError> {
    match out {
        None => man_page(cmd)
            .and_then(|page| io::stdout().write_all(&page))
            .map_err(ManError::Stdout),
        Some(dir) => {
            let files = man_pages(cmd, dir).map_err(|source| ManError::Dir {
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

/// Render the main man page (section 1, with the list of subcommands) as roff.
pub fn man_page(cmd: clap::Command) -> io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    clap_mangen::Man::new(cmd).render(&mut buf)?;
    Ok(buf)
}

/// Write `NAME.1` and one page per subcommand (`NAME-SUB.1`, nested ones
/// too) into `dir`, created if missing; returns the files written, sorted.
pub fn man_pages(cmd: clap::Command, dir: &Path) -> io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let mut written = Vec::new();
    write_pages(cmd, None, dir, &mut written)?;
    written.sort();
    Ok(written)
}

fn write_pages(
    cmd: clap::Command,
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
        write_pages(sub, Some((&name, &usage)), dir, written)?;
    }
    let path = dir.join(format!("{name}.1"));
    std::fs::write(&path, man_page(cmd.name(name).bin_name(usage))?)?;
    written.push(path);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
