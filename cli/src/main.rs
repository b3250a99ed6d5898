//! `groupscope`: command-line tools for groupscope.
//!
//! `groupscope import-groups FILE.csv --group-key company_id --token TOKEN --api-host URL`
//! creates or updates one group profile per CSV row with a `$set`, through the same client
//! and delivery as the SDKs, so it works against Mixpanel and the groupscope reference server
//! alike. Exit codes: 0 when every row was delivered, 1 when a row was rejected or a record
//! was not delivered, 2 when the import could not start.

mod import;
mod infer;
mod progress;
mod rows;
mod summary;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::import::{ImportOptions, dry_run, import};

/// Command-line tools for groupscope.
#[derive(Debug, Parser)]
#[command(name = "groupscope", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create or update group profiles from a CSV file: one `$set` per row.
    ///
    /// The first row names the columns. One column contains the group id, and every other column is a
    /// profile property whose type is inferred from its text: numbers, true/false, dates,
    /// bracketed lists like [a, b], and strings. Empty cells are left out.
    ImportGroups(ImportGroupsArgs),
}

#[derive(Debug, Args)]
struct ImportGroupsArgs {
    /// The CSV file (RFC 4180, UTF-8, comma-separated, with a header row).
    file: PathBuf,

    /// The group key of the profiles, for example company_id.
    #[arg(long)]
    group_key: String,

    /// The group id column [default: the column named like --group-key].
    #[arg(long)]
    id_column: Option<String>,

    /// The project token.
    #[arg(long, env = "GROUPSCOPE_TOKEN", hide_env_values = true, required_unless_present = "dry_run")]
    token: Option<String>,

    /// The ingestion host with its scheme: https://api.mixpanel.com (or api-eu, api-in) for
    /// Mixpanel, or the URL a groupscope-server printed.
    #[arg(long, env = "GROUPSCOPE_API_HOST", required_unless_present = "dry_run")]
    api_host: Option<String>,

    /// Print the record of every valid row as one JSON line on stdout, and send nothing.
    #[arg(long)]
    dry_run: bool,

    /// Records per /groups request, 1 to 50.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u16).range(1..=50))]
    batch_size: u16,

    /// Seconds to wait at the end for the server to acknowledge every record. Reading also
    /// stops when 10,000 records are waiting and none is acknowledged for this long.
    #[arg(long, default_value_t = 60)]
    flush_timeout: u64,
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();

    let cli = Cli::parse();
    match cli.command {
        Command::ImportGroups(args) => run_import_groups(args),
    }
}

fn run_import_groups(args: ImportGroupsArgs) -> ExitCode {
    let options = ImportOptions {
        path: args.file,
        group_key: args.group_key,
        id_column: args.id_column,
        token: args.token.unwrap_or_default(),
        api_host: args.api_host.unwrap_or_default(),
        batch_size: usize::from(args.batch_size),
        flush_timeout: Duration::from_secs(args.flush_timeout),
    };

    if args.dry_run {
        let mut stdout = std::io::stdout().lock();
        return match dry_run(&options, &mut stdout) {
            Ok(summary) => {
                eprint!("{}", summary.render_dry_run());
                if summary.rejected.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) }
            }
            Err(error) => {
                eprintln!("error: {error}");
                ExitCode::from(2)
            }
        };
    }

    match import(&options) {
        Ok(summary) => {
            eprint!("{}", summary.render());
            if summary.is_success() { ExitCode::SUCCESS } else { ExitCode::from(1) }
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(2)
        }
    }
}
