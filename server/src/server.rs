//! Starting and stopping the server. [`Server::start`] binds the listener, opens the store
//! and serves on a runtime of its own thread, so plain synchronous code, tests and async
//! programs can all embed it.

use std::collections::VecDeque;
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use groupscope::protocol::MAX_IMPORT_REQUEST_BYTES;
use tokio::sync::oneshot;

use crate::attribution::GroupKey;
use crate::config::{ProjectConfig, SetUpAt};
use crate::faults::Faults;
use crate::http::{self, AppState};
use crate::store::{DbLocation, Limits, Store, StoreError};
use crate::time;

/// Maximum bytes after decompression of one `/track`, `/engage` or `/groups` request by
/// default: 2000 records as Mixpanel allows, within its 10 MB `/import` limit.
pub const DEFAULT_MAX_REQUEST_BYTES: usize = MAX_IMPORT_REQUEST_BYTES;

/// How long [`RunningServer::shutdown`] waits for open requests before it stops anyway.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Everything the server needs to start.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The address to listen on; port 0 picks a free port. Defaults to `127.0.0.1:0`.
    pub listen: SocketAddr,
    /// The location of the store's data. Defaults to memory.
    pub db: DbLocation,
    /// The project settings.
    pub project: ProjectConfig,
    /// Whether `POST /api/faults` may script faults.
    pub fault_injection: bool,
    /// Maximum bytes after decompression of `/track`, `/engage` and `/groups` requests.
    pub max_request_bytes: usize,
    /// Maximum bytes after decompression of `/import` requests.
    pub max_import_request_bytes: usize,
}

impl ServerConfig {
    /// Creates the config of a loopback server on a free port with an in-memory store.
    pub fn new(project: ProjectConfig) -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            db: DbLocation::Memory,
            project,
            fault_injection: false,
            max_request_bytes: DEFAULT_MAX_REQUEST_BYTES,
            max_import_request_bytes: MAX_IMPORT_REQUEST_BYTES,
        }
    }
}

/// An error that stopped the server from starting.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The store could not be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The listen address could not be bound.
    #[error("failed to listen on {address}: {source}; choose another --listen address or port")]
    Bind {
        /// The address.
        address: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The runtime thread could not start.
    #[error("failed to start the server thread: {0}")]
    Thread(std::io::Error),
}

/// The reference server.
pub struct Server;

/// A server that is running; stops on [`RunningServer::shutdown`] or when dropped.
pub struct RunningServer {
    addr: SocketAddr,
    state: Arc<AppState>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    /// Opens the store, applies the configured group keys, binds the listener and starts
    /// serving on a thread of its own.
    ///
    /// # Errors
    /// [`StartError`] naming what failed.
    pub fn start(config: ServerConfig) -> Result<RunningServer, StartError> {
        config.project.validate()?;
        let limits = Limits {
            max_group_profiles_per_key: config.project.max_group_profiles_per_key,
            max_events_per_group_per_day: config.project.max_events_per_group_per_day,
        };
        let mut store = Store::open(&config.db, limits)?;
        apply_configured_keys(&mut store, &config.project)?;

        let listener = TcpListener::bind(config.listen).map_err(|source| StartError::Bind { address: config.listen, source })?;
        let addr = listener.local_addr().map_err(|source| StartError::Bind { address: config.listen, source })?;
        listener.set_nonblocking(true).map_err(|source| StartError::Bind { address: config.listen, source })?;

        let state = Arc::new(AppState {
            store: Mutex::new(store),
            project: config.project.clone(),
            faults: config.fault_injection.then(|| Mutex::new(Faults::default())),
            requests: Mutex::new(VecDeque::new()),
            max_request_bytes: config.max_request_bytes,
            max_import_request_bytes: config.max_import_request_bytes,
        });

        let (stop, stopped) = oneshot::channel();
        let router = http::router(Arc::clone(&state));
        let thread = std::thread::Builder::new()
            .name("groupscope-server".to_owned())
            .spawn(move || serve(listener, router, stopped))
            .map_err(StartError::Thread)?;

        log::info!(
            "groupscope-server started on http://{addr} with store {}{}",
            config.db,
            if config.fault_injection { " and fault injection enabled" } else { "" }
        );
        Ok(RunningServer { addr, state, stop: Some(stop), thread: Some(thread) })
    }
}

fn serve(listener: TcpListener, router: axum::Router, stopped: oneshot::Receiver<()>) {
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            log::error!("Failed to build the server runtime: {error}");
            return;
        }
    };
    runtime.block_on(async move {
        let listener = match tokio::net::TcpListener::from_std(listener) {
            Ok(listener) => listener,
            Err(error) => {
                log::error!("Failed to register the listener with the runtime: {error}");
                return;
            }
        };
        let (begin_grace, grace_started) = oneshot::channel::<()>();
        let server = axum::serve(listener, router).with_graceful_shutdown(async move {
            let _ = stopped.await;
            let _ = begin_grace.send(());
        });
        let deadline = async move {
            let _ = grace_started.await;
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        };
        tokio::select! {
            result = server => if let Err(error) = result {
                log::error!("The server stopped with an error: {error}");
            },
            () = deadline => log::warn!("Open requests did not finish within {SHUTDOWN_GRACE:?}; stopping anyway"),
        }
    });
}

/// Stores the keys of the config file. A key already in the store keeps its set-up time
/// when the file gives `"now"` or no time, and its display name when the file gives none,
/// so restarting the server does not move them. A key deleted through the API is skipped.
fn apply_configured_keys(store: &mut Store, project: &ProjectConfig) -> Result<(), StartError> {
    let now = time::now_ms();
    for setting in &project.group_keys {
        if store.is_deleted_group_key(&setting.property)? {
            log::warn!(
                "Group key {:?} is in the config file but was deleted through DELETE /api/group-keys, so it is not added; \
                 remove it from the config file, or add it again with POST /api/group-keys",
                setting.property
            );
            continue;
        }
        let existing = store.group_keys().iter().find(|k| k.property == setting.property).cloned();
        let explicit = match &setting.set_up_at {
            Some(SetUpAt::Text(text)) if text.eq_ignore_ascii_case("now") => None,
            other => other.as_ref(),
        };
        let set_up_at_ms = match (explicit, &existing) {
            (Some(set_up_at), _) => set_up_at.resolve(now).map_err(crate::config::ConfigError::Invalid)?,
            (None, Some(existing)) => existing.set_up_at_ms,
            (None, None) => now,
        };
        let display_name = match (&setting.display_name, &existing) {
            (Some(display_name), _) => display_name.clone(),
            (None, Some(existing)) => existing.display_name.clone(),
            (None, None) => setting.property.clone(),
        };
        store.upsert_group_key(&GroupKey { property: setting.property.clone(), display_name, set_up_at_ms })?;
    }
    if store.group_keys().len() > project.max_group_keys {
        log::warn!(
            "The store at {} has {} group keys, more than max_group_keys = {}; new keys are rejected until some are removed",
            store.location(),
            store.group_keys().len(),
            project.max_group_keys
        );
    }
    Ok(())
}

impl RunningServer {
    /// Returns the address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Returns the base URL, for example `http://127.0.0.1:41234`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Returns the shared state, for reading the store directly in-process.
    pub fn state(&self) -> &Arc<AppState> {
        &self.state
    }

    /// Stops accepting connections, waits up to [`SHUTDOWN_GRACE`] for open requests and
    /// joins the server thread. Blocks the calling thread; from async code call it inside
    /// `spawn_blocking`.
    pub fn shutdown(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                log::error!("The server thread of http://{} panicked", self.addr);
            }
            log::info!("groupscope-server on http://{} stopped", self.addr);
        }
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}
