//! Harness of the groupscope reliability suite.
//!
//! The tests in `tests/` kill, fault, fuzz and load a real [`groupscope::Client`] against a
//! real `groupscope-server` started in-process on a loopback port with fault injection
//! enabled. This crate contains what they share: the server wrapper ([`TestServer`]), the client
//! settings that compress time ([`client_config`]), the delivery accounting that compares what
//! the API acknowledged with what the server stored ([`Ledger`]), and the measured figures
//! every scenario prints ([`Figures`]).

mod config;
mod figures;
mod ledger;
mod memory;
mod server;

pub use config::{TOKEN, client_config, long_mode, scaled};
pub use figures::Figures;
pub use ledger::{Ledger, Settlement, settle};
pub use memory::{peak_rss_kib, rss_kib};
pub use server::{RequestEntry, TestServer};
