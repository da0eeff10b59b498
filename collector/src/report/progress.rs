//! Progress of a long report run (`pantau-collector report`), on stderr.
//!
//! The report code calls [`step`] and [`opd`] at its stages; they do nothing
//! unless the caller installed a sink for the current thread with [`with`],
//! so the web pages and tests that build reports stay silent.

use std::cell::RefCell;
use std::io::Write;
use std::time::Instant;

/// Where progress goes.
pub struct Sink {
    out: Box<dyn Write>,
    /// Rewrite one line in place (a terminal) instead of one line per step.
    terminal: bool,
    started: Instant,
    /// A line is open (terminal mode) and must be ended before the next step.
    open: bool,
}

impl std::fmt::Debug for Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sink")
            .field("terminal", &self.terminal)
            .finish()
    }
}

impl Sink {
    /// Progress to `out`; `terminal` rewrites the OPD counter in place.
    pub fn new(out: Box<dyn Write>, terminal: bool) -> Self {
        Sink {
            out,
            terminal,
            started: Instant::now(),
            open: false,
        }
    }

    fn end_open_line(&mut self) {
        if self.open {
            let _ = writeln!(self.out);
            self.open = false;
        }
    }
}

thread_local! {
    static SINK: RefCell<Option<Sink>> = const { RefCell::new(None) };
}

/// Run `f` with progress going to `sink` (on this thread), then print the
/// elapsed time when `f` succeeded.
pub fn with<T, E>(sink: Sink, f: impl FnOnce() -> Result<T, E>) -> Result<T, E> {
    SINK.with(|s| *s.borrow_mut() = Some(sink));
    let r = f();
    let sink = SINK.with(|s| s.borrow_mut().take());
    if let Some(mut sink) = sink {
        sink.end_open_line();
        if r.is_ok() {
            let secs = sink.started.elapsed().as_secs_f64();
            let _ = writeln!(sink.out, "Selesai dalam {secs:.1} s / Done in {secs:.1} s");
        }
        let _ = sink.out.flush();
    }
    r
}

/// A stage of the report: Bahasa Indonesia, then English.
pub fn step(id: &str, en: &str) {
    SINK.with(|s| {
        if let Some(sink) = s.borrow_mut().as_mut() {
            sink.end_open_line();
            let _ = writeln!(sink.out, "{id}… / {en}…");
            let _ = sink.out.flush();
        }
    });
}

/// OPD `i` (1-based) of `n` is being assembled.
pub fn opd(i: usize, n: usize, id: &str) {
    SINK.with(|s| {
        if let Some(sink) = s.borrow_mut().as_mut() {
            let line = format!(
                "Menyusun laporan… {i}/{n} OPD ({id}) / Assembling the report… {i} of {n} OPDs"
            );
            if sink.terminal {
                // \r and clear to the end of the line: one line that counts up.
                let _ = write!(sink.out, "\r{line}\x1b[K");
                sink.open = i < n;
                if i == n {
                    let _ = writeln!(sink.out);
                }
            } else {
                let _ = writeln!(sink.out, "{line}");
            }
            let _ = sink.out.flush();
        }
    });
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);

    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn text(b: &Buf) -> String {
        String::from_utf8(b.0.lock().unwrap().clone()).unwrap()
    }

    #[test]
    fn nothing_is_printed_without_a_sink() {
        step("Memperbarui", "Refreshing");
        opd(1, 2, "x");
    }

    #[test]
    fn lines_per_step_and_per_opd_then_done() {
        let b = Buf::default();
        let r: Result<(), ()> = with(Sink::new(Box::new(b.clone()), false), || {
            step("Memperbarui rekap", "Refreshing rollups");
            opd(1, 2, "bappeda");
            opd(2, 2, "dinkes");
            step("Menandatangani", "Signing");
            Ok(())
        });
        assert!(r.is_ok());
        let t = text(&b);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0], "Memperbarui rekap… / Refreshing rollups…");
        assert_eq!(
            lines[1],
            "Menyusun laporan… 1/2 OPD (bappeda) / Assembling the report… 1 of 2 OPDs"
        );
        assert_eq!(
            lines[2],
            "Menyusun laporan… 2/2 OPD (dinkes) / Assembling the report… 2 of 2 OPDs"
        );
        assert_eq!(lines[3], "Menandatangani… / Signing…");
        assert!(lines[4].starts_with("Selesai dalam "), "{t}");
        // The sink is gone after `with`.
        step("tidak", "not shown");
        assert!(!text(&b).contains("not shown"));
    }

    #[test]
    fn a_terminal_counts_up_in_place() {
        let b = Buf::default();
        let _: Result<(), ()> = with(Sink::new(Box::new(b.clone()), true), || {
            opd(1, 3, "a");
            opd(2, 3, "b");
            step("Menulis", "Writing");
            Err(())
        });
        let t = text(&b);
        assert_eq!(t.matches('\r').count(), 2, "{t:?}");
        assert!(
            t.contains(
                "2/3 OPD (b) / Assembling the report… 2 of 3 OPDs\x1b[K\nMenulis… / Writing…\n"
            ),
            "{t:?}"
        );
        assert!(
            !t.contains("Selesai"),
            "no done line after a failure: {t:?}"
        );
    }
}
