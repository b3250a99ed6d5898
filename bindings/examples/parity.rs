//! Runs the cross-language parity scenario from Rust against a groupscope-server.
//!
//! The Kotlin and Swift suites run the same scenario with their own token. They compare their
//! records at the server with the ones this program produced, field for field apart from the
//! token, `time`, `$time`, `$insert_id` and the random anonymous id.
//!
//! ```text
//! cargo run -p groupscope-ffi --example parity -- http://127.0.0.1:PORT TOKEN DATA_DIR
//! ```

use std::time::Duration;

use groupscope::{Client, Config, TrackOptions};
use serde_json::json;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let arguments: Vec<String> = std::env::args().collect();
    let [_, api_host, token, data_dir] = arguments.as_slice() else {
        return Err("usage: parity <loopback api host> <token> <data dir>".into());
    };
    if !api_host.starts_with("http://127.0.0.1:") {
        return Err(format!("the api host must be a loopback address, got {api_host}").into());
    }

    let mut config = Config::mobile(token.clone(), data_dir);
    config.api_host = api_host.clone();
    config.flush_interval = Duration::ZERO;
    let client = Client::new(config)?;

    client.identify("parity-user")?;
    client.set_group("company_id", [json!("acme"), json!(7)])?;
    client.add_group("team_id", "red")?;
    client.add_group("team_id", 5)?;
    client.add_group("team_id", "red")?;
    client.remove_group("company_id", 7)?;
    client.remove_group("company_id", "absent")?;
    client.register(json!({"app": "parity"}))?;

    // The values the Kotlin and Swift encoders produce for Instant, LocalDate, BigDecimal
    // 19.90, BigDecimal 40.0, a Decimal beyond a Double's precision, and NaN.
    let typed = json!({
        "text": "héllo \"quoted\" ✓",
        "count": 3,
        "negative": -42,
        "ratio": 0.25,
        "flag": false,
        "none": null,
        "at": "2026-12-04T20:15:30.123Z",
        "day": "2026-12-04",
        "price": 19.9,
        "seats": 40,
        "precise": "3.14159265358979323846264",
        "bad": null,
        "list": ["a", 1, null],
        "nested": {"k": "v", "n": [1, 2]},
    });
    let options = TrackOptions {
        non_finite_replaced: 1,
        ..TrackOptions::default()
    };
    client.track("Parity Typed", typed, options)?;

    let per_event = TrackOptions::default()
        .group("company_id", json!(["globex", 9]))
        .without_group("team_id");
    client.track("Parity Groups", json!({}), per_event)?;

    let acme = client.group("company_id", "acme")?;
    acme.set(json!({"plan": "enterprise", "seats": 40}))?;
    acme.set_once(json!({"founded": "2026-01-02"}))?;
    acme.unset(["seats"])?;
    acme.union(json!({"tags": ["beta", "eu"]}))?;
    acme.remove(json!({"tags": "eu"}))?;
    client.group("company_id", 9)?.delete()?;

    if !client.shutdown(Duration::from_secs(10)) {
        return Err("shutdown timed out before every record was delivered".into());
    }
    println!(
        "parity scenario delivered {} records",
        client.stats().delivered
    );
    Ok(())
}
