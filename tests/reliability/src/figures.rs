//! The figures each scenario measures, printed on one line and optionally appended to a file.

use std::io::Write;

/// What one scenario measured. Printed by [`Figures::report`] as one `figures:` line, and
/// appended as one JSON line to the file named by `GROUPSCOPE_RELIABILITY_REPORT` when set.
#[derive(Debug, Clone, Default)]
pub struct Figures {
    /// The scenario, for example `kill -9 loop`.
    pub scenario: String,
    /// Records the API acknowledged (calls that returned `Ok`).
    pub tracked: u64,
    /// Acknowledged records found at the server.
    pub delivered: u64,
    /// Acknowledged records stored more than once after server-side deduplication.
    pub duplicated: u64,
    /// Records the server received again and deduplicated (sent twice on the wire).
    pub resent: u64,
    /// Acknowledged records neither at the server nor reported dropped.
    pub lost: u64,
    /// Records reported dropped through the drop callback.
    pub reported_dropped: u64,
    /// Retries counted by the client.
    pub retries: u64,
    /// Other measurements, such as latency percentiles, as `name=value` pairs.
    pub extra: Vec<(String, String)>,
}

impl Figures {
    /// Creates empty figures for `scenario`.
    pub fn new(scenario: &str) -> Figures {
        Figures {
            scenario: scenario.to_owned(),
            ..Figures::default()
        }
    }

    /// Adds one named measurement.
    pub fn with(mut self, name: &str, value: impl ToString) -> Figures {
        self.extra.push((name.to_owned(), value.to_string()));
        self
    }

    /// Prints the figures and appends them to `GROUPSCOPE_RELIABILITY_REPORT` when it is set.
    pub fn report(&self) {
        let mut json = serde_json::json!({
            "scenario": self.scenario,
            "tracked": self.tracked,
            "delivered": self.delivered,
            "duplicated": self.duplicated,
            "resent": self.resent,
            "lost": self.lost,
            "reported_dropped": self.reported_dropped,
            "retries": self.retries,
        });
        for (name, value) in &self.extra {
            json[name] = serde_json::Value::String(value.clone());
        }
        println!("figures: {json}");

        let Ok(path) = std::env::var("GROUPSCOPE_RELIABILITY_REPORT") else {
            return;
        };
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut file| writeln!(file, "{json}"));
        if let Err(error) = written {
            eprintln!("could not append figures to {path}: {error}");
        }
    }
}
