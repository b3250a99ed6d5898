//! Import progress on stderr: a progress bar with rate and ETA on a terminal, and a plain line
//! every few seconds otherwise, so logs of scheduled jobs stay readable.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How often a plain progress line is printed when stderr is not a terminal.
const LINE_INTERVAL: Duration = Duration::from_secs(2);

/// Counters shown with the progress.
#[derive(Debug, Clone, Copy, Default)]
pub struct Counts {
    /// Bytes of the file read so far.
    pub bytes_read: u64,
    /// Rows read so far, rejected ones included.
    pub rows_read: u64,
    /// Rows rejected so far.
    pub rows_rejected: u64,
    /// Records the server acknowledged so far.
    pub acknowledged: u64,
}

/// Progress display of one import.
pub enum Progress {
    /// An `indicatif` bar on a terminal.
    Bar(ProgressBar),
    /// Plain lines at [`LINE_INTERVAL`].
    Lines {
        /// Size of the file in bytes.
        total_bytes: u64,
        /// When the import started.
        started: Instant,
        /// When the last line was printed.
        last_line: Instant,
    },
}

impl Progress {
    /// Creates the display for a file of `total_bytes`: a bar when stderr is a terminal.
    pub fn start(total_bytes: u64) -> Self {
        let now = Instant::now();
        if !std::io::stderr().is_terminal() {
            return Progress::Lines {
                total_bytes,
                started: now,
                last_line: now,
            };
        }

        let bar = ProgressBar::with_draw_target(Some(total_bytes), ProgressDrawTarget::stderr());
        let style = ProgressStyle::with_template(
            "{bar:32.cyan/blue} {percent:>3}% {msg} | {binary_bytes_per_sec} | ETA {eta}",
        )
        .expect("the progress template is valid")
        .progress_chars("=> ");
        bar.set_style(style);
        Progress::Bar(bar)
    }

    /// Updates the display; prints a plain line only when [`LINE_INTERVAL`] has passed.
    pub fn update(&mut self, counts: Counts) {
        match self {
            Progress::Bar(bar) => {
                bar.set_position(counts.bytes_read);
                let elapsed = bar.elapsed().as_secs_f64().max(0.001);
                bar.set_message(format!(
                    "{} rows, {:.0} rows/s, {} rejected, {} acknowledged",
                    counts.rows_read,
                    counts.rows_read as f64 / elapsed,
                    counts.rows_rejected,
                    counts.acknowledged
                ));
            }
            Progress::Lines {
                total_bytes,
                started,
                last_line,
            } => {
                if last_line.elapsed() < LINE_INTERVAL {
                    return;
                }
                *last_line = Instant::now();
                eprintln!("{}", progress_line(counts, *total_bytes, started.elapsed()));
            }
        }
    }

    /// Prints a message without breaking the bar.
    pub fn println(&self, message: &str) {
        match self {
            Progress::Bar(bar) => bar.println(message),
            Progress::Lines { .. } => {
                let mut stderr = std::io::stderr().lock();
                let _ = writeln!(stderr, "{message}");
            }
        }
    }

    /// Removes the bar once reading is done.
    pub fn finish(&self) {
        if let Progress::Bar(bar) = self {
            bar.finish_and_clear();
        }
    }
}

/// Formats one plain progress line: rows, share of the file, rate and the estimated time left.
fn progress_line(counts: Counts, total_bytes: u64, elapsed: Duration) -> String {
    let seconds = elapsed.as_secs_f64().max(0.001);
    let fraction = if total_bytes == 0 {
        1.0
    } else {
        counts.bytes_read as f64 / total_bytes as f64
    };
    let remaining = if fraction > 0.0 {
        seconds * (1.0 - fraction) / fraction
    } else {
        0.0
    };
    format!(
        "progress: {} rows read ({:.0}% of the file), {:.0} rows/s, {} rejected, {} acknowledged, about {:.0} s left",
        counts.rows_read,
        fraction * 100.0,
        counts.rows_read as f64 / seconds,
        counts.rows_rejected,
        counts.acknowledged,
        remaining
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_line_rate_and_eta() {
        let counts = Counts {
            bytes_read: 250,
            rows_read: 1000,
            rows_rejected: 3,
            acknowledged: 900,
        };

        let line = progress_line(counts, 1000, Duration::from_secs(2));

        assert_eq!(
            line,
            "progress: 1000 rows read (25% of the file), 500 rows/s, 3 rejected, 900 acknowledged, about 6 s left"
        );
    }
}
