//! groupscope-server: a local, Mixpanel-compatible ingestion pipeline that shows which groups
//! each event belongs to.
//!
//! The server receives `/track`, `/engage`, `/groups` and `/import` as the official Mixpanel
//! SDKs and groupscope send them ([`decode`], [`validation`]). It decides the group
//! attribution of every event ([`attribution`]) and keeps group and user profiles
//! ([`profiles`]) in an embedded SQLite store ([`store`]). A JSON API under `/api` serves
//! events, profiles, activity feeds and reports by group ([`reports`]). [`check`] runs the same
//! attribution offline over a JSONL file. [`faults`] scripts failures for client tests, and
//! [`web`] serves a page at `/` that browses groups, profiles and activity feeds.
//!
//! ```no_run
//! use groupscope_server::{ProjectConfig, Server, ServerConfig};
//!
//! let project = ProjectConfig::from_toml("token = \"T\"\n[[group_keys]]\nproperty = \"company_id\"\n")?;
//! let server = Server::start(ServerConfig::new(project))?;
//! println!("listening on {}", server.url());
//! server.shutdown();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![deny(missing_docs)]

pub mod attribution;
pub mod check;
pub mod config;
pub mod decode;
pub mod faults;
pub mod http;
pub mod ingest;
pub mod profiles;
pub mod reports;
pub mod server;
pub mod store;
pub mod time;
pub mod validation;
#[path = "../web/web.rs"]
pub mod web;

pub use config::ProjectConfig;
pub use server::{RunningServer, Server, ServerConfig, StartError};
pub use store::DbLocation;
