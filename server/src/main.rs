//! The `groupscope-server` command: `serve` runs the reference server, `check` runs the
//! attribution checker over a JSONL file.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use groupscope_server::store::Store;
use groupscope_server::{DbLocation, ProjectConfig, Server, ServerConfig, check, time};

/// The default listen address: loopback only.
const DEFAULT_LISTEN: &str = "127.0.0.1:8750";

#[derive(Parser)]
#[command(name = "groupscope-server", version, about = "A local Mixpanel-compatible ingestion server that shows which groups each event belongs to.")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs the server until it receives Ctrl-C or SIGTERM.
    Serve {
        /// The address to listen on; port 0 picks a free port.
        #[arg(long, default_value = DEFAULT_LISTEN)]
        listen: SocketAddr,
        /// The SQLite database file, or :memory: for a store lost at exit.
        #[arg(long, default_value = ":memory:")]
        db: String,
        /// The project config file (TOML): token, credentials, group keys and limits.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Accepts fault scripts on POST /api/faults, for client tests.
        #[arg(long)]
        fault_injection: bool,
    },
    /// Checks the attribution of the events in a JSONL file, one event per line.
    Check {
        /// The JSONL file; - reads standard input.
        events: PathBuf,
        /// The project config file (TOML) with the group keys.
        #[arg(long)]
        config: PathBuf,
        /// The server's SQLite database file, read-only: keys without set_up_at in the config
        /// use the set-up time stored there. Without it, such keys count as set up before
        /// every event.
        #[arg(long)]
        db: Option<PathBuf>,
        /// The output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    /// A summary for people.
    Text,
    /// The full report as JSON.
    Json,
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve { listen, db, config, fault_injection } => serve(listen, &db, config, fault_injection),
        Command::Check { events, config, db, format } => run_check(&events, &config, db.as_deref(), format),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

fn load_config(path: Option<&PathBuf>) -> Result<ProjectConfig, String> {
    match path {
        Some(path) => ProjectConfig::from_file(path).map_err(|error| error.to_string()),
        None => Ok(ProjectConfig::default()),
    }
}

fn serve(listen: SocketAddr, db: &str, config: Option<PathBuf>, fault_injection: bool) -> Result<(), String> {
    let project = load_config(config.as_ref())?;
    if !listen.ip().is_loopback() {
        log::warn!("Listening on {listen}, which is reachable from other machines; the API has no authentication");
    }
    let server = Server::start(ServerConfig {
        listen,
        db: DbLocation::parse(db),
        fault_injection,
        ..ServerConfig::new(project)
    })
    .map_err(|error| error.to_string())?;

    let mut stdout = std::io::stdout();
    let _ = writeln!(stdout, "listening on {}", server.url());
    let _ = stdout.flush();

    wait_for_stop_signal();
    log::info!("Stop signal received; shutting down");
    server.shutdown();
    Ok(())
}

fn wait_for_stop_signal() {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            log::error!("Failed to build the signal runtime ({error}); stopping now");
            return;
        }
    };
    runtime.block_on(async {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            match signal(SignalKind::terminate()) {
                Ok(mut terminate) => {
                    tokio::select! {
                        _ = tokio::signal::ctrl_c() => {},
                        _ = terminate.recv() => {},
                    }
                }
                Err(error) => {
                    log::warn!("Failed to listen for SIGTERM ({error}); only Ctrl-C stops the server");
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    });
}

fn run_check(events: &PathBuf, config: &PathBuf, db: Option<&Path>, format: Format) -> Result<(), String> {
    let project = load_config(Some(config))?;
    let now = time::now_ms();
    let stored = match db {
        Some(path) if !path.exists() => return Err(format!("database file {} not found; pass the --db file the server uses", path.display())),
        Some(path) => Store::read_group_keys(path).map_err(|error| error.to_string())?,
        None => Vec::new(),
    };
    let keys = check::resolve_keys(&project, &stored, now)?;
    if keys.is_empty() {
        return Err(format!("{} configures no [[group_keys]]; add at least one to check attribution", config.display()));
    }

    let report = if events.as_os_str() == "-" {
        check::check_keys(std::io::stdin().lock(), &keys, now)
    } else {
        let file = std::fs::File::open(events).map_err(|error| format!("failed to open {}: {error}", events.display()))?;
        check::check_keys(std::io::BufReader::new(file), &keys, now)
    }
    .map_err(|error| format!("failed to read {}: {error}", events.display()))?;

    let output = match format {
        Format::Text => check::render_text(&report, &events.display().to_string()),
        Format::Json => serde_json::to_string_pretty(&report).map_err(|error| error.to_string())? + "\n",
    };
    std::io::stdout().write_all(output.as_bytes()).map_err(|error| format!("failed to write the report: {error}"))
}
