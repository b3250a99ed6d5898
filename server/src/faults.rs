//! Fault injection for client tests: scripted responses per ingestion endpoint, consumed in
//! order before normal behaviour resumes. Only a server started with fault injection
//! enabled accepts scripts.
//!
//! A script such as
//! `{"endpoint":"track","responses":[{"status":503},{"status":429,"retry_after":2},{"delay_ms":500},{"drop_connection":true}],"max_body_bytes":1000000}`
//! makes the next four `/track` requests fail in those ways, and lowers the body limit of
//! `/track` to 1,000,000 bytes until the faults are cleared.

use std::collections::{BTreeMap, VecDeque};

use groupscope::protocol::Endpoint;
use serde::{Deserialize, Serialize};

/// The endpoint name that matches every ingestion endpoint in a script.
pub const ANY_ENDPOINT: &str = "*";

/// A script posted to `POST /api/faults`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultScript {
    /// `track`, `engage`, `groups`, `import` or `*` for all of them.
    pub endpoint: String,
    /// Responses used by the next requests, in order.
    #[serde(default)]
    pub responses: Vec<FaultStep>,
    /// A lower body limit for the endpoint, in bytes after decompression.
    #[serde(default)]
    pub max_body_bytes: Option<usize>,
}

/// The scripted response to one request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultStep {
    /// The response status, sent without storing anything. `None` or 200 handles the
    /// request normally after the delay.
    #[serde(default)]
    pub status: Option<u16>,
    /// The `Retry-After` header, in seconds.
    #[serde(default)]
    pub retry_after: Option<u64>,
    /// The wait before responding, in milliseconds.
    #[serde(default)]
    pub delay_ms: Option<u64>,
    /// Close the connection without a complete response.
    #[serde(default)]
    pub drop_connection: bool,
    /// The response body; defaults to a JSON error like Mixpanel's.
    #[serde(default)]
    pub body: Option<String>,
}

impl FaultStep {
    /// Returns whether this step responds without handling the request.
    pub fn replaces_response(&self) -> bool {
        self.drop_connection || self.status.is_some_and(|status| status != 200)
    }

    /// Returns a short description for the request log, for example `status 429`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(delay) = self.delay_ms {
            parts.push(format!("delay {delay} ms"));
        }
        if self.drop_connection {
            parts.push("dropped connection".to_owned());
        } else if let Some(status) = self.status {
            parts.push(format!("status {status}"));
        }
        if let Some(retry_after) = self.retry_after {
            parts.push(format!("Retry-After {retry_after}"));
        }
        parts.join(", ")
    }
}

/// The pending faults.
#[derive(Debug, Default)]
pub struct Faults {
    queues: BTreeMap<String, VecDeque<FaultStep>>,
    max_body_bytes: BTreeMap<String, usize>,
}

/// The pending faults as `GET /api/faults` returns them.
#[derive(Debug, Clone, Serialize)]
pub struct PendingFaults {
    /// Steps not yet used, per endpoint.
    pub responses: BTreeMap<String, Vec<FaultStep>>,
    /// Lowered body limits, per endpoint.
    pub max_body_bytes: BTreeMap<String, usize>,
}

impl Faults {
    /// Appends a script to the pending faults.
    ///
    /// # Errors
    /// A message naming the endpoint or step that is invalid.
    pub fn add(&mut self, script: FaultScript) -> Result<(), String> {
        if script.endpoint != ANY_ENDPOINT && Endpoint::from_name(&script.endpoint).is_none() {
            return Err(format!(
                "invalid endpoint {:?}: use track, engage, groups, import or * for all",
                script.endpoint
            ));
        }
        for (index, step) in script.responses.iter().enumerate() {
            if let Some(status) = step.status.filter(|status| !(100..=599).contains(status)) {
                return Err(format!("responses[{index}]: invalid status {status}: use an HTTP status from 100 to 599"));
            }
        }
        if let Some(limit) = script.max_body_bytes {
            self.max_body_bytes.insert(script.endpoint.clone(), limit);
        }
        self.queues.entry(script.endpoint).or_default().extend(script.responses);
        Ok(())
    }

    /// Takes the next step for `endpoint`: its own script first, then the `*` script.
    pub fn next(&mut self, endpoint: Endpoint) -> Option<FaultStep> {
        for name in [endpoint.name(), ANY_ENDPOINT] {
            if let Some(step) = self.queues.get_mut(name).and_then(VecDeque::pop_front) {
                return Some(step);
            }
        }
        None
    }

    /// Returns the lowered body limit of `endpoint`, if any.
    pub fn max_body_bytes(&self, endpoint: Endpoint) -> Option<usize> {
        self.max_body_bytes.get(endpoint.name()).or_else(|| self.max_body_bytes.get(ANY_ENDPOINT)).copied()
    }

    /// Removes every pending fault and limit.
    pub fn clear(&mut self) {
        self.queues.clear();
        self.max_body_bytes.clear();
    }

    /// Returns the pending faults.
    pub fn pending(&self) -> PendingFaults {
        PendingFaults {
            responses: self
                .queues
                .iter()
                .filter(|(_, steps)| !steps.is_empty())
                .map(|(name, steps)| (name.clone(), steps.iter().cloned().collect()))
                .collect(),
            max_body_bytes: self.max_body_bytes.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn script(json: &str) -> FaultScript {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn steps_are_consumed_in_order_per_endpoint() {
        let mut faults = Faults::default();
        faults.add(script(r#"{"endpoint":"track","responses":[{"status":503},{"status":429,"retry_after":2}]}"#)).unwrap();
        assert_eq!(faults.next(Endpoint::Engage), None);
        assert_eq!(faults.next(Endpoint::Track).unwrap().status, Some(503));
        assert_eq!(faults.next(Endpoint::Track).unwrap().retry_after, Some(2));
        assert_eq!(faults.next(Endpoint::Track), None);
    }

    #[test]
    fn wildcard_applies_to_all_endpoints() {
        let mut faults = Faults::default();
        faults.add(script(r#"{"endpoint":"*","responses":[{"drop_connection":true}],"max_body_bytes":10}"#)).unwrap();
        assert_eq!(faults.max_body_bytes(Endpoint::Import), Some(10));
        assert!(faults.next(Endpoint::Groups).unwrap().drop_connection);
    }

    #[test]
    fn invalid_scripts_are_rejected() {
        let mut faults = Faults::default();
        assert!(faults.add(script(r#"{"endpoint":"trak"}"#)).unwrap_err().contains("trak"));
        assert!(faults.add(script(r#"{"endpoint":"track","responses":[{"status":42}]}"#)).unwrap_err().contains("42"));
    }
}
