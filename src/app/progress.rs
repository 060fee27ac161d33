//! Progress lines on stderr for long commands (`put`, `get`, `gc`, `fsck`), drawn only when stderr is a
//! terminal, at most ten times a second, and erased when the command ends.

use std::io::{IsTerminal, Read, Write};
use std::time::{Duration, Instant};

const REDRAW_EVERY: Duration = Duration::from_millis(100);
const BAR_WIDTH: usize = 24;

/// What is counted: bytes (shown in MiB with a rate) or items (shown as counts).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    /// Bytes moved.
    Bytes,
    /// Things examined (contents, chunks).
    Items,
}

/// One progress line.
pub struct Progress {
    label: String,
    unit: Unit,
    total: Option<u64>,
    start: Instant,
    last_draw: Option<Instant>,
    enabled: bool,
}

impl Progress {
    /// Starts a progress line for `label`; `total` is the amount expected when known.
    /// `CRONUSFS_NO_PROGRESS` set to anything turns it off.
    pub fn new(label: &str, unit: Unit, total: Option<u64>) -> Self {
        let enabled =
            std::io::stderr().is_terminal() && std::env::var_os("CRONUSFS_NO_PROGRESS").is_none();
        Progress {
            label: label.to_string(),
            unit,
            total,
            start: Instant::now(),
            last_draw: None,
            enabled,
        }
    }

    /// Sets the expected total.
    pub fn set_total(&mut self, total: u64) {
        self.total = Some(total);
    }

    /// Records that `done` has been reached, redrawing if the last draw is old enough.
    pub fn update(&mut self, done: u64) {
        if !self.enabled || self.last_draw.is_some_and(|t| t.elapsed() < REDRAW_EVERY) {
            return;
        }
        self.last_draw = Some(Instant::now());
        let line = render(
            &self.label,
            self.unit,
            done,
            self.total,
            self.start.elapsed(),
        );
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r\x1b[2K{line}");
        let _ = err.flush();
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if self.last_draw.is_some() {
            let _ = write!(std::io::stderr().lock(), "\r\x1b[2K");
        }
    }
}

/// Returns the text of a progress line (without the terminal control codes).
pub fn render(label: &str, unit: Unit, done: u64, total: Option<u64>, elapsed: Duration) -> String {
    let amount = |n: u64| match unit {
        Unit::Bytes => format!("{:.1} MiB", n as f64 / (1u64 << 20) as f64),
        Unit::Items => n.to_string(),
    };
    let mut line = format!("{label} ");
    match total {
        Some(t) if t > 0 => {
            let fraction = (done as f64 / t as f64).clamp(0.0, 1.0);
            let filled = (fraction * BAR_WIDTH as f64).round() as usize;
            line.push_str(&format!(
                "[{}{}] {:>3.0}% {} / {}",
                "#".repeat(filled),
                " ".repeat(BAR_WIDTH - filled),
                fraction * 100.0,
                amount(done),
                amount(t)
            ));
        }
        _ => line.push_str(&amount(done)),
    }
    let secs = elapsed.as_secs_f64();
    if unit == Unit::Bytes && secs > 0.0 {
        line.push_str(&format!(
            " {:.0} MiB/s",
            done as f64 / (1u64 << 20) as f64 / secs
        ));
    }
    line
}

/// A reader that reports the bytes read through it to a [`Progress`].
pub struct ProgressRead<R> {
    inner: R,
    done: u64,
    progress: Progress,
}

impl<R: Read> ProgressRead<R> {
    /// Wraps `inner`.
    pub fn new(inner: R, progress: Progress) -> Self {
        ProgressRead {
            inner,
            done: 0,
            progress,
        }
    }
}

impl<R: Read> Read for ProgressRead<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.done += n as u64;
        self.progress.update(self.done);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_a_bar_with_percent_amounts_and_rate() {
        let line = render(
            "put",
            Unit::Bytes,
            512 << 20,
            Some(1 << 30),
            Duration::from_secs(2),
        );
        assert_eq!(
            line,
            "put [############            ]  50% 512.0 MiB / 1024.0 MiB 256 MiB/s"
        );
    }

    #[test]
    fn renders_counts_without_a_total_or_rate() {
        let line = render("gc", Unit::Items, 42, None, Duration::from_secs(1));
        assert_eq!(line, "gc 42");
        let line = render("gc", Unit::Items, 7, Some(0), Duration::ZERO);
        assert_eq!(line, "gc 7");
    }

    #[test]
    fn clamps_past_the_total() {
        let line = render("get", Unit::Items, 15, Some(10), Duration::ZERO);
        assert!(
            line.starts_with("get [########################] 100% 15 / 10"),
            "{line}"
        );
    }
}
