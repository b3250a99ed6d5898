//! Client settings for tests: loopback host, short delays, and the long-mode switch.

use std::path::Path;
use std::time::Duration;

use groupscope::Config;

/// The project token the test server accepts.
pub const TOKEN: &str = "reliability-token";

/// Returns whether `GROUPSCOPE_LONG=1` selects the long variants (100 kills, a 10 minute
/// outage, longer fuzzing and load).
pub fn long_mode() -> bool {
    std::env::var("GROUPSCOPE_LONG").is_ok_and(|value| value == "1")
}

/// Returns `short` in the default run and `long` with `GROUPSCOPE_LONG=1`.
pub fn scaled<T>(short: T, long: T) -> T {
    if long_mode() { long } else { short }
}

/// Returns a client configuration aimed at `api_host` (a loopback URL) with delays compressed
/// for tests: a 50 ms flush interval, retries from 10 ms to 200 ms and a 2 s request timeout.
pub fn client_config(api_host: &str, data_dir: Option<&Path>) -> Config {
    let mut config = Config::new(TOKEN);
    config.api_host = api_host.to_owned();
    config.data_dir = data_dir.map(Path::to_path_buf);
    config.flush_interval = Duration::from_millis(50);
    config.request_timeout = Duration::from_secs(2);
    config.initial_retry_delay = Duration::from_millis(10);
    config.max_retry_delay = Duration::from_millis(200);
    config
}
