//! The public client: validates calls, updates persisted state and enqueues records.
//!
//! Every call runs on the caller's thread. It validates its input and writes state changes to
//! the store in one transaction, so they are durable when the call returns. Then it builds the
//! outbound records and sends them to the worker over a channel. No call touches the network. One mutex
//! orders state changes and the records they produce, so records reach the worker in the order
//! the calls were made.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::{JoinHandle, ThreadId};
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;
use serde_json::{Map, Value, json};

use crate::completion::{self, Completion};
use crate::dir_lock::DataDirLock;
use crate::encode::EncodedProperties;
use crate::event::{self, EncodedContext, EventContext};
use crate::fork::ForkGate;
use crate::groups::{IntoGroupId, validate_group_key};
use crate::profile::{self, ProfileOperation};
use crate::protocol::Endpoint;
use crate::queue::{MemoryQueue, Queue, Record};
use crate::stats::{Counters, DropReason, DropReport};
use crate::storage::{
    self, HeldUpdate, PersistedState, SqliteQueue, StateChange, StateStore, keys,
};
use crate::transport::HttpTransport;
use crate::worker::{Command, Settings, Shared, Worker};
use crate::{Config, Error, GroupIds, Stats};

/// How long dropping a [`Client`] without calling [`Client::shutdown`] waits for delivery.
const DROP_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(1);

/// How long [`Client::opt_out`] waits for the worker to clear the queue. The worker applies
/// commands between requests, so a request in flight can delay it by up to `request_timeout`.
const OPT_OUT_WAIT: Duration = Duration::from_secs(5);

/// How long [`Client::prepare_fork`] waits for the worker to reach a safe point. A worker
/// busy for longer is stuck (for example in the drop callback, or waiting up to the store's
/// 5 s busy timeout for another process), and the fork should not wait for it.
const FORK_PARK_TIMEOUT: Duration = Duration::from_secs(1);

/// Options of one `track` or `import` call.
#[derive(Debug, Clone, Default)]
pub struct TrackOptions {
    /// The `distinct_id` of this event instead of the client's identity.
    pub distinct_id: Option<String>,
    /// Per-event groups. `Some(ids)` replaces the group super property of that key for this
    /// event only (one id or a list of ids); `None` removes the key from this event.
    pub groups: Vec<(String, Option<Value>)>,
    /// The event time: seconds since the epoch below 1e11, milliseconds otherwise.
    /// Defaults to now.
    pub time: Option<f64>,
    /// How many non-finite floats a binding replaced by `null` while converting the
    /// properties of this call; added to [`Stats::non_finite_replaced`].
    pub non_finite_replaced: u64,
}

impl TrackOptions {
    /// Sets the `distinct_id` of this event.
    pub fn distinct_id(mut self, distinct_id: impl Into<String>) -> Self {
        self.distinct_id = Some(distinct_id.into());
        self
    }

    /// Attributes this event to `ids` for `key` instead of the group super property.
    pub fn group(mut self, key: impl Into<String>, ids: impl Into<Value>) -> Self {
        self.groups.push((key.into(), Some(ids.into())));
        self
    }

    /// Removes `key` from this event even when a group super property sets it.
    pub fn without_group(mut self, key: impl Into<String>) -> Self {
        self.groups.push((key.into(), None));
        self
    }

    /// Sets the event time, in seconds below 1e11 and milliseconds otherwise.
    pub fn time(mut self, time: f64) -> Self {
        self.time = Some(time);
        self
    }
}

/// A groupscope client. Cheap to share: every method takes `&self` and the type is
/// `Send + Sync`.
///
/// Dropping the client shuts it down with a 1 s bound; call [`Client::shutdown`] first to
/// choose the bound.
pub struct Client {
    inner: Arc<Inner>,
}

/// A handle on one group profile `(group key, group id)`. Each operation enqueues exactly one
/// `/groups` record for that profile.
pub struct GroupHandle {
    inner: Arc<Inner>,
    key: String,
    id: String,
}

struct Inner {
    config: Config,
    shared: Arc<Shared>,
    core: Mutex<Core>,
    worker: Mutex<WorkerThread>,
    shut_down: AtomicBool,
    shutdown_done: Arc<Completion>,
    /// The lock on `config.data_dir`, released when the worker stopped or the client is dropped.
    data_dir_lock: Mutex<Option<DataDirLock>>,
}

/// State changed by calls, behind one mutex.
struct Core {
    state: PersistedState,
    /// The state connection; `None` without `data_dir`.
    store: Option<StateStore>,
    /// Profile updates held until `identify`, when there is no store.
    held_in_memory: Vec<HeldUpdate>,
    sender: Sender<Command>,
    /// The encoded super properties and group super properties; `None` after they change,
    /// until the next event encodes them again.
    encoded_context: Option<EncodedContext>,
}

struct WorkerThread {
    join: Option<JoinHandle<()>>,
    thread_id: Option<ThreadId>,
    /// Parks the worker around `fork()`.
    fork_gate: Arc<ForkGate>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Client {
    /// Starts a client: opens or creates the store in `config.data_dir`, loads the persisted
    /// identity, group super properties and opt-out flag, and starts the delivery worker.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for an unusable configuration, and [`Error::Storage`] when the
    /// store cannot be opened for a reason other than corruption (for example a read-only
    /// folder) or when another client, in this or another process, uses the same `data_dir`.
    /// A corrupt store is not an error: it is moved aside, replaced and reported as a
    /// [`crate::DropReason::StoreReset`].
    pub fn new(config: Config) -> Result<Client, Error> {
        config.validate()?;
        let shared = Arc::new(Shared {
            stats: Counters::default(),
            on_drop: config.on_drop.clone(),
        });

        let mut reports = Vec::new();
        let mut store = None;
        let data_dir_lock = config
            .data_dir
            .as_deref()
            .map(DataDirLock::acquire)
            .transpose()?;
        if let Some(data_dir) = &config.data_dir {
            let opened = storage::open(data_dir)?;
            if opened.reset_from.is_some() {
                shared.stats.store_resets.fetch_add(1, Ordering::Relaxed);
                reports.push(DropReport {
                    reason: DropReason::StoreReset,
                    count: opened.salvage.lost_records,
                    insert_ids: Vec::new(),
                });
            }
            store = Some(opened.state);
        }

        let mut state = match &store {
            Some(store) => store.load()?,
            None => PersistedState::default(),
        };
        if state.anonymous_id.is_none() {
            let anonymous_id = format!("$device:{}", uuid::Uuid::new_v4());
            if let Some(store) = store.as_mut() {
                store.apply(&StateChange {
                    values: vec![(keys::ANONYMOUS_ID, Some(anonymous_id.clone()))],
                    ..StateChange::default()
                })?;
            }
            state.anonymous_id = Some(anonymous_id);
        }

        let queue = open_queue(config.data_dir.as_ref(), true)?;
        // Published here so `stats().queued` counts the stored records as soon as `new` returns.
        shared
            .stats
            .in_worker
            .store(queue.len() as u64, Ordering::Relaxed);
        let (sender, receiver) = crossbeam_channel::unbounded();
        let worker = Worker::new(
            receiver,
            queue,
            Box::new(HttpTransport::new(config.request_timeout)),
            Settings::from_config(&config),
            shared.clone(),
            state.opted_out,
        );
        let fork_gate = worker.fork_gate();
        let join = worker.spawn(reports).map_err(|e| Error::Storage {
            path: config.data_dir.clone().unwrap_or_default(),
            message: format!(
                "could not start the {} thread: {e}",
                crate::worker::THREAD_NAME
            ),
        })?;
        log::info!(
            "groupscope {} started for token {} with {} to {}",
            crate::LIB_VERSION,
            crate::protocol::redact_token(&config.token),
            match &config.data_dir {
                Some(dir) => format!("a durable store in {}", dir.display()),
                None => "an in-memory queue".to_owned(),
            },
            config.api_host
        );

        let thread_id = Some(join.thread().id());
        Ok(Client {
            inner: Arc::new(Inner {
                config,
                shared,
                core: Mutex::new(Core {
                    state,
                    store,
                    held_in_memory: Vec::new(),
                    encoded_context: None,
                    sender,
                }),
                worker: Mutex::new(WorkerThread {
                    join: Some(join),
                    thread_id,
                    fork_gate,
                }),
                shut_down: AtomicBool::new(false),
                shutdown_done: Completion::new(),
                data_dir_lock: Mutex::new(data_dir_lock),
            }),
        })
    }

    /// Records an event for `/track`. Returns its `$insert_id`.
    ///
    /// `properties` is a JSON object or `null`. Call-site properties win over super
    /// properties, and per-event groups in `options` win over group super properties.
    ///
    /// The event's `distinct_id` is [`TrackOptions::distinct_id`] when set, else a
    /// `distinct_id` property (call-site or super property), else the client's identity: the
    /// id given to [`Client::identify`], or the anonymous id the client created. Either source
    /// may give `""`, an event with no user. The property may also be a JSON integer, sent as
    /// given, or `null`, sent as `null` (no user) on `/track` and rejected by
    /// [`Client::import`], which needs `""` for no user. Mixpanel's placeholders (`"null"`,
    /// `"anonymous"`, `"0"`, `0`, `-1` and the others in
    /// [`crate::protocol::FORBIDDEN_DISTINCT_IDS`], in any letter case), strings of only
    /// whitespace, and booleans, floating-point numbers, lists and objects are rejected.
    /// [`Client::identify`] and [`Client::engage`] need a user and reject `""`.
    ///
    /// # Errors
    /// [`Error::InvalidEventName`], [`Error::InvalidProperty`], [`Error::InvalidGroupKey`],
    /// [`Error::InvalidGroupId`], [`Error::InvalidDistinctId`] or [`Error::InvalidTime`];
    /// nothing is enqueued then. [`Error::ShutDown`] after shutdown.
    pub fn track(
        &self,
        event: &str,
        properties: Value,
        options: TrackOptions,
    ) -> Result<String, Error> {
        let properties = EncodedProperties::from_value(properties)?;
        self.inner
            .record_event(Endpoint::Track, event, &properties, options)
    }

    /// Records an event for `/track` whose properties a [`PropertiesWriter`](crate::PropertiesWriter) already encoded.
    /// Same rules as [`Client::track`]; this form skips building a [`Value`], which is what
    /// language bindings use.
    ///
    /// # Errors
    /// As [`Client::track`].
    pub fn track_encoded(
        &self,
        event: &str,
        properties: &EncodedProperties,
        options: TrackOptions,
    ) -> Result<String, Error> {
        self.inner
            .record_event(Endpoint::Track, event, properties, options)
    }

    /// Records an event for `/import`, which accepts events of any age. Same rules as
    /// [`Client::track`], except that a `distinct_id` property of `null` is rejected.
    ///
    /// # Errors
    /// As [`Client::track`].
    pub fn import(
        &self,
        event: &str,
        properties: Value,
        options: TrackOptions,
    ) -> Result<String, Error> {
        let properties = EncodedProperties::from_value(properties)?;
        self.inner
            .record_event(Endpoint::Import, event, &properties, options)
    }

    /// Records an event for `/import` whose properties a [`PropertiesWriter`](crate::PropertiesWriter) already encoded.
    ///
    /// # Errors
    /// As [`Client::track`].
    pub fn import_encoded(
        &self,
        event: &str,
        properties: &EncodedProperties,
        options: TrackOptions,
    ) -> Result<String, Error> {
        self.inner
            .record_event(Endpoint::Import, event, properties, options)
    }

    /// Enqueues one user-profile update for `distinct_id`: a `/engage` record
    /// `{"$token", "$distinct_id", "$time", "<operation key>": value}`, with `$time` in ms.
    ///
    /// The value shape depends on the operation; see [`ProfileOperation`]. While opted out,
    /// nothing is enqueued, the update is counted in [`Stats::dropped_opted_out`] and the call
    /// succeeds.
    ///
    /// # Errors
    /// [`Error::InvalidDistinctId`] or [`Error::InvalidProperty`] for a value of the wrong
    /// shape, or for an update too large for one request; nothing is enqueued then.
    /// [`Error::ShutDown`] after shutdown.
    pub fn engage(
        &self,
        distinct_id: &str,
        operation: ProfileOperation,
        value: Value,
    ) -> Result<(), Error> {
        self.inner.ensure_running()?;
        event::validate_distinct_id(distinct_id)?;
        let value = profile::validate(operation, value)?;

        let core = lock(&self.inner.core);
        if core.state.opted_out {
            log::debug!("Opted out; the {} profile update is not sent", operation.key());
            self.inner.shared.stats.count_drop(&DropReason::OptedOut, 1);
            return Ok(());
        }
        let record = event::build_engage(
            &self.inner.config.token,
            distinct_id,
            operation.key(),
            value,
            event::now_ms(),
        );
        self.inner.check_record_fits(&record, || {
            format!("the {} update of user {distinct_id:?}", operation.key())
        })?;
        self.inner.enqueue(&core, record);
        Ok(())
    }

    /// Sets the identity and persists it; releases user-profile updates held while anonymous.
    ///
    /// # Errors
    /// [`Error::InvalidDistinctId`], or [`Error::Storage`] when the identity could not be persisted.
    pub fn identify(&self, distinct_id: &str) -> Result<(), Error> {
        self.inner.ensure_running()?;
        event::validate_distinct_id(distinct_id)?;

        let mut core = lock(&self.inner.core);
        let mut state = core.state.clone();
        state.distinct_id = Some(distinct_id.to_owned());
        let release = !state.opted_out;
        self.inner.commit(
            &mut core,
            state,
            vec![(keys::DISTINCT_ID, Some(distinct_id.to_owned()))],
            None,
            release,
        )
    }

    /// Returns the current `distinct_id`: the identified one, or the persisted anonymous id.
    pub fn distinct_id(&self) -> String {
        lock(&self.inner.core).distinct_id().to_owned()
    }

    /// Replaces the group super property `key` with `ids` and persists it. An empty `ids`
    /// removes the key. When a user is identified, a user-profile `$set` of the list (or
    /// `$unset` of the key) is sent too.
    ///
    /// # Errors
    /// [`Error::InvalidGroupKey`], [`Error::InvalidGroupId`] or [`Error::Storage`].
    pub fn set_group<I, T>(&self, key: &str, ids: I) -> Result<(), Error>
    where
        I: IntoIterator<Item = T>,
        T: IntoGroupId,
    {
        self.inner.ensure_running()?;
        validate_group_key(key)?;
        let ids = GroupIds::collect(key, ids)?;
        crate::validate::check_group_id_count(key, ids.len())?;

        let mut core = lock(&self.inner.core);
        let mut state = core.state.clone();
        let profile = if ids.is_empty() {
            state.groups.remove(key);
            ("$unset", json!([key]))
        } else {
            let mut value = Map::new();
            value.insert(key.to_owned(), ids.to_json());
            state.groups.insert(key.to_owned(), ids);
            ("$set", Value::Object(value))
        };
        let values = vec![(keys::GROUPS, Some(storage::encode_groups(&state.groups)))];
        self.inner
            .commit(&mut core, state, values, Some(profile), false)
    }

    /// Adds one id to the group super property `key` unless it is there, and persists it.
    /// When the id was added and a user is identified, a user-profile `$union` is sent.
    ///
    /// # Errors
    /// [`Error::InvalidGroupKey`], [`Error::InvalidGroupId`] or [`Error::Storage`].
    pub fn add_group(&self, key: &str, id: impl IntoGroupId) -> Result<(), Error> {
        self.inner.ensure_running()?;
        validate_group_key(key)?;
        let id = id.into_group_id(key)?;

        let mut core = lock(&self.inner.core);
        let mut state = core.state.clone();
        if !state
            .groups
            .entry(key.to_owned())
            .or_default()
            .insert(id.clone())
        {
            return Ok(());
        }
        crate::validate::check_group_id_count(key, state.groups[key].len())?;
        let mut value = Map::new();
        value.insert(key.to_owned(), json!([id.as_str()]));
        let values = vec![(keys::GROUPS, Some(storage::encode_groups(&state.groups)))];
        self.inner.commit(
            &mut core,
            state,
            values,
            Some(("$union", Value::Object(value))),
            false,
        )
    }

    /// Removes one id from the group super property `key`; removing the last id removes the
    /// key, and removing an absent id changes nothing. When a user is identified, a
    /// user-profile `$remove` (or `$unset` when the key went away) is sent.
    ///
    /// # Errors
    /// [`Error::InvalidGroupKey`], [`Error::InvalidGroupId`] or [`Error::Storage`].
    pub fn remove_group(&self, key: &str, id: impl IntoGroupId) -> Result<(), Error> {
        self.inner.ensure_running()?;
        validate_group_key(key)?;
        let id = id.into_group_id(key)?;

        let mut core = lock(&self.inner.core);
        let mut state = core.state.clone();
        let Some(ids) = state.groups.get_mut(key) else {
            return Ok(());
        };
        if !ids.remove(&id) {
            return Ok(());
        }
        let profile = if ids.is_empty() {
            state.groups.remove(key);
            ("$unset", json!([key]))
        } else {
            let mut value = Map::new();
            value.insert(key.to_owned(), Value::String(id.as_str().to_owned()));
            ("$remove", Value::Object(value))
        };
        let values = vec![(keys::GROUPS, Some(storage::encode_groups(&state.groups)))];
        self.inner
            .commit(&mut core, state, values, Some(profile), false)
    }

    /// Returns the group super properties.
    pub fn groups(&self) -> BTreeMap<String, GroupIds> {
        lock(&self.inner.core).state.groups.clone()
    }

    /// Returns a handle on the group profile `(key, id)`.
    ///
    /// # Errors
    /// [`Error::InvalidGroupKey`] or [`Error::InvalidGroupId`].
    pub fn group(&self, key: &str, id: impl IntoGroupId) -> Result<GroupHandle, Error> {
        validate_group_key(key)?;
        let id = id.into_group_id(key)?;
        Ok(GroupHandle {
            inner: self.inner.clone(),
            key: key.to_owned(),
            id: id.as_str().to_owned(),
        })
    }

    /// Registers super properties added to every later event, and persists them.
    ///
    /// # Errors
    /// [`Error::InvalidProperty`] unless `properties` is a JSON object with non-empty names,
    /// or [`Error::Storage`].
    pub fn register(&self, properties: Value) -> Result<(), Error> {
        self.inner.ensure_running()?;
        let properties = event::properties_object(properties)?;

        let mut core = lock(&self.inner.core);
        let mut state = core.state.clone();
        state.super_properties.extend(properties);
        let values = vec![(
            keys::SUPER_PROPERTIES,
            Some(Value::Object(state.super_properties.clone()).to_string()),
        )];
        self.inner.commit(&mut core, state, values, None, false)
    }

    /// Removes one super property.
    ///
    /// # Errors
    /// [`Error::Storage`].
    pub fn unregister(&self, name: &str) -> Result<(), Error> {
        self.inner.ensure_running()?;

        let mut core = lock(&self.inner.core);
        let mut state = core.state.clone();
        if state.super_properties.remove(name).is_none() {
            return Ok(());
        }
        let values = vec![(
            keys::SUPER_PROPERTIES,
            Some(Value::Object(state.super_properties.clone()).to_string()),
        )];
        self.inner.commit(&mut core, state, values, None, false)
    }

    /// Waits until every record enqueued before this call was acknowledged or dropped, or
    /// `timeout` passed. Returns whether everything was settled.
    ///
    /// Returns `false` early when a flush cycle ends with records still queued (the server
    /// kept failing), and at once when called from the drop callback, which runs on the
    /// worker thread.
    pub fn flush(&self, timeout: Duration) -> bool {
        self.inner.flush(timeout)
    }

    /// Flushes like [`Client::flush`] and returns a future of the result. The wait runs on a
    /// helper thread that wakes the future, so awaiting it does not block the runtime thread.
    pub fn flush_async(&self, timeout: Duration) -> impl Future<Output = bool> + Send + 'static {
        let inner = self.inner.clone();
        completion::run_blocking("groupscope-flush", move || inner.flush(timeout))
    }

    /// Flushes, stops the worker and closes the store, within `timeout`. Idempotent, and safe
    /// from a drop callback. Returns whether everything was delivered.
    ///
    /// Called from the drop callback (on the worker thread), it sends the stop request, returns
    /// `false` without waiting, and the worker stops after the callback returns. A request in flight when
    /// `timeout` passes finishes in the background, bounded by `request_timeout`.
    pub fn shutdown(&self, timeout: Duration) -> bool {
        self.inner.shutdown(timeout)
    }

    /// Shuts down like [`Client::shutdown`] and returns a future of the result, waiting on a
    /// helper thread as [`Client::flush_async`] does.
    pub fn shutdown_async(&self, timeout: Duration) -> impl Future<Output = bool> + Send + 'static {
        let inner = self.inner.clone();
        completion::run_blocking("groupscope-shutdown", move || inner.shutdown(timeout))
    }

    /// Stops all sending, clears queued records and persists the choice. Group and identity
    /// changes made while opted out are stored but not sent.
    ///
    /// The worker clears the queue in call order, after the records enqueued before this call.
    /// `opt_out` waits up to 5 s for that, so `stats()` shows `queued` 0 and the cleared
    /// records in `dropped_opted_out` when it returns. The wait ends after 5 s even when a
    /// request is still in flight, and it is skipped on the worker thread (in the drop
    /// callback). In both cases the counters catch up once the worker applies the opt-out.
    ///
    /// # Errors
    /// [`Error::Storage`] when the flag could not be persisted.
    pub fn opt_out(&self) -> Result<(), Error> {
        self.inner.set_opted_out(true)
    }

    /// Resumes sending after [`Client::opt_out`].
    ///
    /// # Errors
    /// [`Error::Storage`] when the flag could not be persisted.
    pub fn opt_in(&self) -> Result<(), Error> {
        self.inner.set_opted_out(false)
    }

    /// Returns whether the client is opted out.
    pub fn is_opted_out(&self) -> bool {
        lock(&self.inner.core).state.opted_out
    }

    /// Returns a snapshot of the counters.
    pub fn stats(&self) -> Stats {
        self.inner.shared.stats.snapshot()
    }

    /// Parks the delivery worker at a safe point before `fork()`, and keeps it there until
    /// [`Client::after_fork_in_parent`]. Returns whether the worker is parked.
    ///
    /// A lock that another thread holds at the instant of `fork()` stays held in the child
    /// forever. At the safe point the worker runs no SQLite statement and holds none of the
    /// client's locks, so the child's [`Client::reinit_after_fork`] can open new connections.
    /// The worker reaches it at once when it waits for records, sleeps, or waits on an HTTP
    /// request, so a request in flight does not delay the fork. A worker that stays busy for
    /// more than 1 s is not waited for. The call then logs a warning and returns `false`, and
    /// the child may block in [`Client::reinit_after_fork`]. The call is cheap for a client
    /// that was shut down, whose worker stopped, or that has no `data_dir`.
    ///
    /// Covers the worker only: the caller must keep its other threads out of client calls
    /// until the fork returned, because a call in progress holds the client's state lock and,
    /// with a `data_dir`, the state connection.
    ///
    /// Call it in the thread that forks, right before `fork()`, and then
    /// [`Client::after_fork_in_parent`] in the parent and [`Client::reinit_after_fork`] in the
    /// child.
    pub fn prepare_fork(&self) -> bool {
        self.inner.prepare_fork()
    }

    /// Lets the worker parked by [`Client::prepare_fork`] go on. Call it in the parent after
    /// `fork()` returned, also when `fork()` failed. Does nothing without a parked worker.
    pub fn after_fork_in_parent(&self) {
        self.inner.after_fork_in_parent();
    }

    /// Rebuilds the worker and reopens the store in a child process after `fork()`.
    ///
    /// Records queued before the fork stay with the parent, so none is sent twice: the child's
    /// worker starts with an empty in-memory queue, or reads only the rows the child appends
    /// to a durable queue. Call it in the child before any other call. The child's new worker
    /// runs without waiting for [`Client::after_fork_in_parent`], which belongs to the parent.
    ///
    /// Without [`Client::prepare_fork`] before the fork, a worker busy with the store at that
    /// instant can leave a SQLite lock held in the child, and this call then blocks forever.
    /// A lock of another caller thread can do the same (see [`Client::prepare_fork`]).
    pub fn reinit_after_fork(&self) {
        self.inner.reinit_after_fork();
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.inner.shutdown(DROP_SHUTDOWN_TIMEOUT);
    }
}

impl Core {
    fn distinct_id(&self) -> &str {
        self.state
            .distinct_id
            .as_deref()
            .or(self.state.anonymous_id.as_deref())
            .unwrap_or_default()
    }
}

fn open_queue(data_dir: Option<&PathBuf>, claim_all: bool) -> Result<Box<dyn Queue>, Error> {
    Ok(match data_dir {
        Some(dir) => Box::new(SqliteQueue::open(dir, claim_all)?),
        None => Box::new(MemoryQueue::new()),
    })
}

impl Inner {
    fn ensure_running(&self) -> Result<(), Error> {
        if self.shut_down.load(Ordering::Acquire) {
            return Err(Error::ShutDown);
        }
        Ok(())
    }

    fn on_worker_thread(&self) -> bool {
        lock(&self.worker).thread_id == Some(std::thread::current().id())
    }

    /// Sends a record to the worker. Called with the core lock held, so records keep the order
    /// of the calls that made them.
    fn enqueue(&self, core: &Core, record: Record) {
        self.shared.stats.enqueued.fetch_add(1, Ordering::Relaxed);
        self.shared.stats.in_channel.fetch_add(1, Ordering::Relaxed);
        if core.sender.send(Command::Enqueue(record)).is_err() {
            self.shared.stats.in_channel.fetch_sub(1, Ordering::Relaxed);
            log::warn!("The delivery worker is gone; a record was not queued");
        }
    }

    /// Checks that `record` fits in one request to its endpoint, so the worker never drops it
    /// as too large. `describe` names the record in the error.
    ///
    /// # Errors
    /// [`Error::InvalidProperty`] when the record does not fit.
    fn check_record_fits(
        &self,
        record: &Record,
        describe: impl FnOnce() -> String,
    ) -> Result<(), Error> {
        let (max_request_bytes, setting) = match record.endpoint {
            Endpoint::Import => (self.config.max_import_request_bytes, "max_import_request_bytes"),
            _ => (self.config.max_request_bytes, "max_request_bytes"),
        };
        crate::validate::check_record_size(
            record.endpoint,
            record.body.len(),
            max_request_bytes,
            setting,
            describe,
        )
    }

    fn record_event(
        &self,
        endpoint: Endpoint,
        name: &str,
        properties: &EncodedProperties,
        options: TrackOptions,
    ) -> Result<String, Error> {
        self.ensure_running()?;
        let mut core = lock(&self.core);
        if core.encoded_context.is_none() {
            core.encoded_context = Some(EncodedContext::new(
                &self.config.token,
                &core.state.super_properties,
                &core.state.groups,
            ));
        }
        let core = core;
        let context = EventContext {
            distinct_id: core.distinct_id(),
        };
        let encoded_context = core
            .encoded_context
            .as_ref()
            .expect("the encoded context was built above");
        let (record, insert_id) = event::build_event(
            endpoint,
            &context,
            encoded_context,
            name,
            properties,
            &options,
        )?;
        self.check_record_fits(&record, || format!("event {name:?}"))?;

        let non_finite_replaced = options.non_finite_replaced + properties.non_finite_replaced();
        if non_finite_replaced > 0 {
            let before = self
                .shared
                .stats
                .non_finite_replaced
                .fetch_add(non_finite_replaced, Ordering::Relaxed);
            let after = before + non_finite_replaced;
            // Logged the first time and then each time the total passes a power of two, so a
            // hot loop cannot flood the log.
            if before == 0 || after.ilog2() > before.ilog2() {
                log::warn!(
                    "Replaced {non_finite_replaced} non-finite numbers with null in the properties of event {name:?} ({after} so far); send finite numbers or null"
                );
            }
        }
        if core.state.opted_out {
            log::debug!("Opted out; event {name:?} is not sent");
            self.shared.stats.count_drop(&DropReason::OptedOut, 1);
            return Ok(insert_id);
        }
        self.enqueue(&core, record);
        Ok(insert_id)
    }

    /// Persists `state` (through `values`), its user-profile update and, with `release_held`,
    /// the release of held updates, in one transaction. Then it applies the state in memory and
    /// enqueues the profile records. On error nothing changed.
    fn commit(
        &self,
        core: &mut Core,
        state: PersistedState,
        values: Vec<(&'static str, Option<String>)>,
        profile: Option<(&str, Value)>,
        release_held: bool,
    ) -> Result<(), Error> {
        let time_ms = event::now_ms();
        let mut change = StateChange {
            values,
            hold: Vec::new(),
            release_held,
        };
        let mut records = Vec::new();
        if let Some((operation, value)) = profile {
            if !state.opted_out {
                match &state.distinct_id {
                    Some(distinct_id) => records.push(event::build_engage(
                        &self.config.token,
                        distinct_id,
                        operation,
                        value,
                        time_ms,
                    )),
                    None => change.hold.push(HeldUpdate {
                        operation: operation.to_owned(),
                        value,
                        time_ms,
                    }),
                }
            }
        }

        let released = match core.store.as_mut() {
            Some(store) => store.apply(&change)?,
            None => {
                core.held_in_memory.extend(change.hold);
                if release_held {
                    std::mem::take(&mut core.held_in_memory)
                } else {
                    Vec::new()
                }
            }
        };
        if let Some(distinct_id) = &state.distinct_id {
            for held in released {
                records.push(event::build_engage(
                    &self.config.token,
                    distinct_id,
                    &held.operation,
                    held.value,
                    held.time_ms,
                ));
            }
        }

        core.state = state;
        core.encoded_context = None;
        for record in records {
            self.enqueue(core, record);
        }
        Ok(())
    }

    fn set_opted_out(&self, opted_out: bool) -> Result<(), Error> {
        self.ensure_running()?;
        let mut core = lock(&self.core);
        let mut state = core.state.clone();
        state.opted_out = opted_out;
        let values = vec![(
            keys::OPTED_OUT,
            Some(if opted_out { "1" } else { "0" }.to_owned()),
        )];
        // Held updates stay held while opted out; opting in releases them if identified.
        let release = !opted_out && state.distinct_id.is_some();
        self.commit(&mut core, state, values, None, release)?;

        let command = if opted_out {
            Command::OptOut
        } else {
            Command::OptIn
        };
        if core.sender.send(command).is_err() {
            log::warn!(
                "The delivery worker is gone; the opt-out flag is persisted but the queue was not cleared"
            );
        } else if opted_out {
            self.wait_for_opt_out(core);
        }
        log::info!(
            "{}",
            if opted_out {
                "Opted out of tracking"
            } else {
                "Opted in to tracking"
            }
        );
        Ok(())
    }

    /// Waits up to [`OPT_OUT_WAIT`] for the worker to apply the opt-out sent just before.
    /// A flush queued behind the opt-out completes once the worker cleared the queue.
    fn wait_for_opt_out(&self, core: MutexGuard<'_, Core>) {
        let applied = Completion::new();
        let sent = core.sender.send(Command::Flush(applied.clone())).is_ok();
        drop(core);
        if !sent || self.on_worker_thread() {
            return;
        }
        if applied.wait(OPT_OUT_WAIT).is_none() {
            log::debug!(
                "The worker did not apply the opt-out within {OPT_OUT_WAIT:?}; stats() shows the cleared records once it does"
            );
        }
    }

    fn flush(&self, timeout: Duration) -> bool {
        if self.shut_down.load(Ordering::Acquire) {
            return self.shutdown_done.result().unwrap_or(false);
        }
        let done = Completion::new();
        {
            let core = lock(&self.core);
            if core.sender.send(Command::Flush(done.clone())).is_err() {
                return false;
            }
        }
        if self.on_worker_thread() {
            log::debug!("flush called on the worker thread; not waiting");
            return false;
        }
        done.wait(timeout).unwrap_or(false)
    }

    fn shutdown(&self, timeout: Duration) -> bool {
        let on_worker = self.on_worker_thread();
        if self.shut_down.swap(true, Ordering::AcqRel) {
            if on_worker {
                return self.shutdown_done.result().unwrap_or(false);
            }
            return self.shutdown_done.wait(timeout).unwrap_or(false);
        }

        let deadline = Instant::now()
            .checked_add(timeout)
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(86_400 * 365));
        let sent = lock(&self.core)
            .sender
            .send(Command::Shutdown {
                deadline,
                done: self.shutdown_done.clone(),
            })
            .is_ok();
        if !sent {
            self.shutdown_done.complete(false);
            return false;
        }
        if on_worker {
            log::debug!(
                "shutdown called on the worker thread; the worker stops after the current callback returns"
            );
            return false;
        }

        match self.shutdown_done.wait(timeout) {
            Some(result) => {
                let join = lock(&self.worker).join.take();
                if join.is_some_and(|join| join.join().is_err()) {
                    log::error!("The delivery worker panicked");
                }
                // The worker no longer writes the store, so another client may open it.
                lock(&self.data_dir_lock).take();
                log::info!("groupscope shut down; everything delivered: {result}");
                result
            }
            None => {
                log::warn!(
                    "The delivery worker did not stop within {timeout:?}; it stops after its current request"
                );
                false
            }
        }
    }

    fn prepare_fork(&self) -> bool {
        let fork_gate = lock(&self.worker).fork_gate.clone();
        if fork_gate.close(FORK_PARK_TIMEOUT) {
            return true;
        }
        log::warn!(
            "The delivery worker did not reach a safe point within {FORK_PARK_TIMEOUT:?} before fork(); the child may block when it reopens the store"
        );
        false
    }

    fn after_fork_in_parent(&self) {
        let fork_gate = lock(&self.worker).fork_gate.clone();
        fork_gate.open();
    }

    fn reinit_after_fork(&self) {
        crate::protocol::reseed_after_fork();
        if self.shut_down.load(Ordering::Acquire) {
            return;
        }
        let mut core = lock(&self.core);

        // The parent's connection, channel and thread handle must not be closed or joined in
        // the child: closing a SQLite connection inherited through fork() can disturb the
        // parent's locks, and the parent's worker thread does not exist here. They are leaked.
        if let Some(store) = &core.store {
            match store.reopen() {
                Ok(fresh) => std::mem::forget(core.store.replace(fresh)),
                Err(error) => log::error!(
                    "Could not reopen the store after fork: {error}; state changes will fail"
                ),
            }
        }
        let (sender, receiver) = crossbeam_channel::unbounded();
        std::mem::forget(std::mem::replace(&mut core.sender, sender));
        self.shared.stats.reset();

        let queue = match open_queue(self.config.data_dir.as_ref(), false) {
            Ok(queue) => queue,
            Err(error) => {
                log::error!(
                    "Could not open the queue after fork: {error}; using an in-memory queue"
                );
                Box::new(MemoryQueue::new())
            }
        };
        let worker = Worker::new(
            receiver,
            queue,
            Box::new(HttpTransport::new(self.config.request_timeout)),
            Settings::from_config(&self.config),
            self.shared.clone(),
            core.state.opted_out,
        );
        let mut thread = lock(&self.worker);
        // The parent's gate may be closed, and its mutex may have been held by the parent's
        // worker at the fork, so the child's worker gets its own.
        std::mem::forget(std::mem::replace(&mut thread.fork_gate, worker.fork_gate()));
        match worker.spawn(Vec::new()) {
            Ok(join) => {
                thread.thread_id = Some(join.thread().id());
                std::mem::forget(thread.join.replace(join));
            }
            Err(error) => log::error!("Could not start the delivery worker after fork: {error}"),
        }
        log::info!(
            "Delivery worker restarted in process {}",
            std::process::id()
        );
    }

    fn enqueue_group_update(
        &self,
        key: &str,
        id: &str,
        operation: &str,
        value: Value,
    ) -> Result<(), Error> {
        self.ensure_running()?;
        let record = event::build_group_update(&self.config.token, key, id, operation, value);
        self.check_record_fits(&record, || {
            format!("the {operation} update of group ({key:?}, {id:?})")
        })?;
        let core = lock(&self.core);
        if core.state.opted_out {
            log::debug!("Opted out; the {operation} of group ({key}, {id}) is not sent");
            self.shared.stats.count_drop(&DropReason::OptedOut, 1);
            return Ok(());
        }
        self.enqueue(&core, record);
        Ok(())
    }
}

impl GroupHandle {
    /// Sets properties on the group profile, creating it if absent (`$set`).
    ///
    /// # Errors
    /// [`Error::InvalidProperty`] unless `properties` is a JSON object, or [`Error::ShutDown`].
    pub fn set(&self, properties: Value) -> Result<(), Error> {
        let value = event::validate_object_operation("$set", properties)?;
        self.inner
            .enqueue_group_update(&self.key, &self.id, "$set", value)
    }

    /// Sets only the properties not yet present (`$set_once`).
    ///
    /// # Errors
    /// [`Error::InvalidProperty`] unless `properties` is a JSON object, or [`Error::ShutDown`].
    pub fn set_once(&self, properties: Value) -> Result<(), Error> {
        let value = event::validate_object_operation("$set_once", properties)?;
        self.inner
            .enqueue_group_update(&self.key, &self.id, "$set_once", value)
    }

    /// Deletes the named properties (`$unset`).
    ///
    /// # Errors
    /// [`Error::InvalidProperty`] when `names` is empty or contains an empty name, or
    /// [`Error::ShutDown`].
    pub fn unset<I, S>(&self, names: I) -> Result<(), Error>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let value = event::validate_unset(names.into_iter().map(Into::into).collect())?;
        self.inner
            .enqueue_group_update(&self.key, &self.id, "$unset", value)
    }

    /// Adds values to list properties, each value kept once (`$union`). `values` maps each
    /// property name to a list.
    ///
    /// # Errors
    /// [`Error::InvalidProperty`] unless `values` is an object of lists, or [`Error::ShutDown`].
    pub fn union(&self, values: Value) -> Result<(), Error> {
        let value = event::validate_union(values)?;
        self.inner
            .enqueue_group_update(&self.key, &self.id, "$union", value)
    }

    /// Removes one value from each named list property (`$remove`).
    ///
    /// # Errors
    /// [`Error::InvalidProperty`] unless `values` is a JSON object, or [`Error::ShutDown`].
    pub fn remove(&self, values: Value) -> Result<(), Error> {
        let value = event::validate_object_operation("$remove", values)?;
        self.inner
            .enqueue_group_update(&self.key, &self.id, "$remove", value)
    }

    /// Deletes the whole group profile (`$delete`).
    ///
    /// # Errors
    /// [`Error::ShutDown`] after shutdown.
    pub fn delete(&self) -> Result<(), Error> {
        self.inner.enqueue_group_update(
            &self.key,
            &self.id,
            "$delete",
            Value::String(String::new()),
        )
    }

    /// Returns the group key of this handle.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Returns the group id of this handle.
    pub fn id(&self) -> &str {
        &self.id
    }
}
