//! The end-of-import summary: rows read, sent and rejected, and what the server acknowledged.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use crate::rows::Rejection;

/// The outcome of one import.
#[derive(Debug, Default, Clone)]
pub struct Summary {
    /// Records read from the file, rejected ones included, header excluded.
    pub rows_read: u64,
    /// Rows enqueued for sending, or printed by a dry run.
    pub rows_valid: u64,
    /// Rows not sent, in file order.
    pub rejected: Vec<Rejection>,
    /// Records the server acknowledged.
    pub delivered: u64,
    /// Records still queued when the flush timeout passed.
    pub undelivered: u64,
    /// Records dropped by the client, counted by reason.
    pub drops: BTreeMap<String, u64>,
    /// Whether every record was settled before the flush timeout.
    pub flushed: bool,
    /// The line at which reading stopped because the server stopped acknowledging records.
    pub stopped_at_line: Option<u64>,
    /// Time spent reading and enqueueing.
    pub read_time: Duration,
    /// Time until the final flush returned.
    pub total_time: Duration,
}

impl Summary {
    /// Returns whether the import is complete: no row rejected, nothing dropped or left
    /// undelivered, and the whole file read.
    pub fn is_success(&self) -> bool {
        self.rejected.is_empty()
            && self.drops.is_empty()
            && self.undelivered == 0
            && self.stopped_at_line.is_none()
            && self.delivered == self.rows_valid
    }

    /// Formats the summary of a dry run.
    pub fn render_dry_run(&self) -> String {
        let mut text = String::new();
        let _ = writeln!(
            text,
            "dry run: {} rows read, {} would be sent, {} rejected; nothing was sent",
            self.rows_read,
            self.rows_valid,
            self.rejected.len()
        );
        self.render_rejections(&mut text);
        text
    }

    /// Formats the summary of an import.
    pub fn render(&self) -> String {
        let mut text = String::new();
        let seconds = self.read_time.as_secs_f64().max(0.001);
        let _ = writeln!(
            text,
            "{} rows read, {} sent, {} rejected ({:.0} rows/s)",
            self.rows_read,
            self.rows_valid,
            self.rejected.len(),
            self.rows_read as f64 / seconds
        );
        let _ = writeln!(
            text,
            "{} records acknowledged by the server, {} dropped, {} not delivered (after {:.1} s)",
            self.delivered,
            self.drops.values().sum::<u64>(),
            self.undelivered,
            self.total_time.as_secs_f64()
        );

        for (reason, count) in &self.drops {
            let _ = writeln!(text, "dropped {count} records: {reason}");
        }
        if self.undelivered > 0 {
            let _ = writeln!(
                text,
                "{} records were still queued when the flush timeout passed; run the import again \
                 with a longer --flush-timeout (a repeated $set is harmless)",
                self.undelivered
            );
        }
        if let Some(line) = self.stopped_at_line {
            let _ = writeln!(
                text,
                "reading stopped before line {line} because the server acknowledged nothing; \
                 rows from line {line} on were not read"
            );
        }

        self.render_rejections(&mut text);
        text
    }

    fn render_rejections(&self, text: &mut String) {
        if self.rejected.is_empty() {
            return;
        }
        let _ = writeln!(text, "rejected rows:");
        for rejection in &self.rejected {
            let _ = writeln!(text, "  line {}: {}", rejection.line, rejection.reason);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_success_requires_delivery() {
        let mut summary = Summary {
            rows_read: 2,
            rows_valid: 2,
            delivered: 2,
            flushed: true,
            ..Summary::default()
        };
        assert!(summary.is_success());

        summary.delivered = 1;
        summary.undelivered = 1;
        assert!(!summary.is_success());
    }

    #[test]
    fn summary_lists_rejections() {
        let summary = Summary {
            rows_read: 3,
            rows_valid: 2,
            delivered: 2,
            rejected: vec![Rejection {
                line: 3,
                reason: "the row has 1 fields but the header has 2 columns".to_owned(),
            }],
            ..Summary::default()
        };

        let text = summary.render();

        assert!(!summary.is_success());
        assert!(text.starts_with("3 rows read, 2 sent, 1 rejected"), "{text}");
        assert!(text.contains("  line 3: the row has 1 fields"), "{text}");
    }
}
