//! The quickstart: starts groupscope-server in-process on an in-memory store, tracks a
//! realistic stream through the groupscope client, and prints which companies the events
//! were attributed to, and why some were not.
//!
//! The stream has three companies with group profiles, users in one or two companies, two
//! sign-ups tracked before the `company_id` key was set up (never backfilled), and two
//! tracking mistakes: an empty company id and an integer one.

use std::error::Error;
use std::io::Write;
use std::time::Duration;

use groupscope::{Client, Config, TrackOptions};
use groupscope_server::{ProjectConfig, Server, ServerConfig};
use serde_json::{Value, json};

/// The project token the quickstart uses.
pub const TOKEN: &str = "quickstart-token";

/// The group key the quickstart sets up.
pub const GROUP_KEY: &str = "company_id";

/// How long the quickstart waits for the client to deliver everything.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(30);

/// One company in the summary.
#[derive(Debug, Clone, PartialEq)]
pub struct CompanySummary {
    /// The group id.
    pub id: String,
    /// Events attributed to the company.
    pub events: u64,
    /// Distinct users among them.
    pub unique_users: u64,
    /// The group profile properties, `null` without a profile.
    pub profile: Value,
}

/// An event that was not attributed to a company.
#[derive(Debug, Clone, PartialEq)]
pub struct NotAttributed {
    /// The event name.
    pub event: String,
    /// The user.
    pub distinct_id: String,
    /// The reason code, for example `before_set_up`.
    pub reason: String,
    /// The reason for people.
    pub message: String,
}

/// The quickstart's findings.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// Events stored by the server.
    pub events: u64,
    /// Companies in id order.
    pub companies: Vec<CompanySummary>,
    /// Events carrying `company_id` that were not attributed.
    pub not_attributed: Vec<NotAttributed>,
    /// Warnings about attributed events, as `(event, message)`.
    pub warnings: Vec<(String, String)>,
}

/// A user of the stream: their id, companies and the events they do.
struct User {
    id: &'static str,
    companies: &'static [&'static str],
    events: &'static [&'static str],
}

const USERS: &[User] = &[
    User { id: "alice", companies: &["acme"], events: &["Dashboard Viewed", "Report Exported", "Invited Teammate"] },
    User { id: "bob", companies: &["acme", "globex"], events: &["Dashboard Viewed", "Report Exported"] },
    User { id: "carol", companies: &["globex"], events: &["Dashboard Viewed", "Dashboard Viewed", "Plan Upgraded"] },
    User { id: "dave", companies: &["initech"], events: &["Dashboard Viewed"] },
];

/// Runs the quickstart and writes its report to `out`.
///
/// # Errors
/// When the server cannot start, the client rejects a call, delivery does not finish within
/// 30 s, or the server's API cannot be read.
pub fn run(out: &mut impl Write) -> Result<Summary, Box<dyn Error>> {
    let project = ProjectConfig { token: Some(TOKEN.to_owned()), ..ProjectConfig::default() };
    let server = Server::start(ServerConfig::new(project))?;
    let api = Api::new(server.url());
    writeln!(out, "groupscope-server is running on {} with an in-memory store.", server.url())?;

    let client = Client::new(Config {
        api_host: server.url(),
        flush_interval: Duration::from_millis(50),
        ..Config::new(TOKEN)
    })?;

    // Two sign-ups arrive before the group key exists, so they stay unattributed forever.
    for user in ["alice", "bob"] {
        client.track("Signed Up", json!({"source": "landing page"}), TrackOptions::default().distinct_id(user).group(GROUP_KEY, "acme"))?;
    }
    deliver(&client)?;
    std::thread::sleep(Duration::from_millis(5));

    api.post("/api/group-keys", &json!({"property": GROUP_KEY, "display_name": "Company", "set_up_at": "now"}))?;
    writeln!(out, "Set up the group key {GROUP_KEY:?} after the first two sign-ups.")?;
    std::thread::sleep(Duration::from_millis(5));

    let profiles = [
        ("acme", json!({"$name": "Acme Corp", "plan": "enterprise", "seats": 120})),
        ("globex", json!({"$name": "Globex", "plan": "team", "seats": 15})),
        ("initech", json!({"$name": "Initech", "plan": "free", "seats": 3})),
    ];
    for (id, properties) in profiles {
        client.group(GROUP_KEY, id)?.set(properties)?;
    }
    client.group(GROUP_KEY, "acme")?.union(json!({"regions": ["eu", "us"]}))?;

    for user in USERS {
        client.identify(user.id)?;
        client.set_group(GROUP_KEY, user.companies.iter().copied())?;
        for event in user.events {
            client.track(event, json!({"plan_page": false}), TrackOptions::default())?;
        }
    }

    // Two tracking mistakes: an empty id attributes nothing, an integer id is read as a string.
    client.identify("erin")?;
    client.track("Dashboard Viewed", json!({GROUP_KEY: ""}), TrackOptions::default())?;
    client.track("Dashboard Viewed", json!({GROUP_KEY: 1042}), TrackOptions::default())?;
    deliver(&client)?;
    client.shutdown(Duration::from_secs(5));

    let summary = summarize(&api)?;
    print_summary(out, &summary)?;
    server.shutdown();
    Ok(summary)
}

fn deliver(client: &Client) -> Result<(), Box<dyn Error>> {
    if client.flush(FLUSH_TIMEOUT) {
        Ok(())
    } else {
        Err(format!("the client did not deliver every record within {FLUSH_TIMEOUT:?}; stats: {:?}", client.stats()).into())
    }
}

/// Reads the server's JSON API over loopback HTTP.
struct Api {
    base: String,
    agent: ureq::Agent,
}

impl Api {
    fn new(base: String) -> Api {
        let agent = ureq::Agent::config_builder().proxy(None).build().into();
        Api { base, agent }
    }

    fn get(&self, path: &str) -> Result<Value, Box<dyn Error>> {
        let text = self.agent.get(format!("{}{path}", self.base)).call()?.body_mut().read_to_string()?;
        Ok(serde_json::from_str(&text)?)
    }

    fn post(&self, path: &str, body: &Value) -> Result<Value, Box<dyn Error>> {
        let text = self
            .agent
            .post(format!("{}{path}", self.base))
            .header("Content-Type", "application/json")
            .send(body.to_string().as_bytes())?
            .body_mut()
            .read_to_string()?;
        Ok(serde_json::from_str(&text)?)
    }
}

fn summarize(api: &Api) -> Result<Summary, Box<dyn Error>> {
    let groups = api.get(&format!("/api/groups/{GROUP_KEY}"))?;
    let mut companies = Vec::new();
    for group in groups["groups"].as_array().into_iter().flatten() {
        let id = group["id"].as_str().unwrap_or_default().to_owned();
        let detail = api.get(&format!("/api/groups/{GROUP_KEY}/{id}"))?;
        companies.push(CompanySummary {
            events: group["event_count"].as_u64().unwrap_or(0),
            unique_users: group["unique_users"].as_u64().unwrap_or(0),
            profile: detail["profile"]["properties"].clone(),
            id,
        });
    }

    let events = api.get("/api/events?limit=10000")?;
    let events = events["events"].as_array().cloned().unwrap_or_default();
    let mut not_attributed = Vec::new();
    let mut warnings = Vec::new();
    for event in events.iter().rev() {
        let name = event["event"].as_str().unwrap_or_default().to_owned();
        for reason in event["attribution"]["not_attributed"].as_array().into_iter().flatten() {
            not_attributed.push(NotAttributed {
                event: name.clone(),
                distinct_id: event["distinct_id"].as_str().unwrap_or_default().to_owned(),
                reason: reason["code"].as_str().unwrap_or_default().to_owned(),
                message: reason["message"].as_str().unwrap_or_default().to_owned(),
            });
        }
        for warning in event["attribution"]["warnings"].as_array().into_iter().flatten() {
            warnings.push((name.clone(), warning["message"].as_str().unwrap_or_default().to_owned()));
        }
    }
    Ok(Summary { events: events.len() as u64, companies, not_attributed, warnings })
}

fn print_summary(out: &mut impl Write, summary: &Summary) -> std::io::Result<()> {
    writeln!(out, "The server stored {} events.", summary.events)?;
    for company in &summary.companies {
        writeln!(out)?;
        let name = company.profile.get("$name").and_then(Value::as_str).unwrap_or("no profile");
        writeln!(out, "{GROUP_KEY} = {:?} ({name})", company.id)?;
        writeln!(out, "  attributed events: {}", company.events)?;
        writeln!(out, "  unique users:      {}", company.unique_users)?;
        writeln!(out, "  group profile:     {}", company.profile)?;
    }

    writeln!(out)?;
    writeln!(out, "Events not attributed to a company ({}):", summary.not_attributed.len())?;
    for event in &summary.not_attributed {
        writeln!(out, "  {:?} by {}: {}: {}", event.event, event.distinct_id, event.reason, event.message)?;
    }
    if !summary.warnings.is_empty() {
        writeln!(out)?;
        writeln!(out, "Warnings ({}):", summary.warnings.len())?;
        for (event, message) in &summary.warnings {
            writeln!(out, "  {event:?}: {message}")?;
        }
    }
    Ok(())
}
