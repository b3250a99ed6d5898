//! The public client: validates calls, updates persisted state and enqueues records.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use serde_json::Value;

use crate::groups::IntoGroupId;
use crate::{Config, Error, GroupIds, Stats};

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
pub struct Client {
    _private: (),
}

/// A handle on one group profile `(group key, group id)`. Each operation enqueues exactly one
/// `/groups` record for that profile.
pub struct GroupHandle {
    _private: (),
}

impl Client {
    /// Starts a client: opens or creates the store in `config.data_dir`, loads the persisted
    /// identity, group super properties and opt-out flag, and starts the delivery worker.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for an unusable configuration. A corrupt store is not an
    /// error: it is moved aside, replaced and reported as a [`crate::DropReason::StoreReset`].
    pub fn new(config: Config) -> Result<Client, Error> {
        let _ = config;
        todo!()
    }

    /// Records an event for `/track`. Returns its `$insert_id`.
    ///
    /// `properties` is a JSON object or `null`. Call-site properties win over super
    /// properties, and per-event groups in `options` win over group super properties.
    ///
    /// # Errors
    /// [`Error::InvalidEventName`], [`Error::InvalidProperty`], [`Error::InvalidGroupId`],
    /// [`Error::InvalidDistinctId`] or [`Error::InvalidTime`]; nothing is enqueued then.
    pub fn track(&self, event: &str, properties: Value, options: TrackOptions) -> Result<String, Error> {
        let _ = (event, properties, options);
        todo!()
    }

    /// Records an event for `/import`, which accepts events of any age. Same rules as
    /// [`Client::track`].
    ///
    /// # Errors
    /// As [`Client::track`].
    pub fn import(&self, event: &str, properties: Value, options: TrackOptions) -> Result<String, Error> {
        let _ = (event, properties, options);
        todo!()
    }

    /// Sets the identity and persists it; releases user-profile updates held while anonymous.
    ///
    /// # Errors
    /// [`Error::InvalidDistinctId`], or [`Error::Storage`] when the identity could not be persisted.
    pub fn identify(&self, distinct_id: &str) -> Result<(), Error> {
        let _ = distinct_id;
        todo!()
    }

    /// Returns the current `distinct_id`: the identified one, or the persisted anonymous id.
    pub fn distinct_id(&self) -> String {
        todo!()
    }

    /// Replaces the group super property `key` with `ids` and persists it.
    ///
    /// # Errors
    /// [`Error::InvalidGroupKey`], [`Error::InvalidGroupId`] or [`Error::Storage`].
    pub fn set_group<I, T>(&self, key: &str, ids: I) -> Result<(), Error>
    where
        I: IntoIterator<Item = T>,
        T: IntoGroupId,
    {
        let _ = GroupIds::collect(key, ids)?;
        todo!()
    }

    /// Adds one id to the group super property `key` unless it is there, and persists it.
    ///
    /// # Errors
    /// [`Error::InvalidGroupKey`], [`Error::InvalidGroupId`] or [`Error::Storage`].
    pub fn add_group(&self, key: &str, id: impl IntoGroupId) -> Result<(), Error> {
        let _ = id.into_group_id(key)?;
        todo!()
    }

    /// Removes one id from the group super property `key`; removing the last id removes the
    /// key, and removing an absent id changes nothing.
    ///
    /// # Errors
    /// [`Error::InvalidGroupKey`], [`Error::InvalidGroupId`] or [`Error::Storage`].
    pub fn remove_group(&self, key: &str, id: impl IntoGroupId) -> Result<(), Error> {
        let _ = id.into_group_id(key)?;
        todo!()
    }

    /// Returns the group super properties.
    pub fn groups(&self) -> BTreeMap<String, GroupIds> {
        todo!()
    }

    /// Returns a handle on the group profile `(key, id)`.
    ///
    /// # Errors
    /// [`Error::InvalidGroupKey`] or [`Error::InvalidGroupId`].
    pub fn group(&self, key: &str, id: impl IntoGroupId) -> Result<GroupHandle, Error> {
        let _ = id.into_group_id(key)?;
        todo!()
    }

    /// Registers super properties added to every later event, and persists them.
    ///
    /// # Errors
    /// [`Error::InvalidProperty`] or [`Error::Storage`].
    pub fn register(&self, properties: Value) -> Result<(), Error> {
        let _ = properties;
        todo!()
    }

    /// Removes one super property.
    ///
    /// # Errors
    /// [`Error::Storage`].
    pub fn unregister(&self, name: &str) -> Result<(), Error> {
        let _ = name;
        todo!()
    }

    /// Waits until every record enqueued before this call was acknowledged or dropped, or
    /// `timeout` passed. Returns whether everything was settled.
    pub fn flush(&self, timeout: Duration) -> bool {
        let _ = timeout;
        todo!()
    }

    /// The async form of [`Client::flush`]; never blocks the runtime thread.
    pub fn flush_async(&self, timeout: Duration) -> impl Future<Output = bool> + Send + 'static {
        let _ = timeout;
        async { todo!() }
    }

    /// Flushes, stops the worker and closes the store, within `timeout`. Idempotent, and safe
    /// from a drop callback. Returns whether everything was delivered.
    pub fn shutdown(&self, timeout: Duration) -> bool {
        let _ = timeout;
        todo!()
    }

    /// The async form of [`Client::shutdown`].
    pub fn shutdown_async(&self, timeout: Duration) -> impl Future<Output = bool> + Send + 'static {
        let _ = timeout;
        async { todo!() }
    }

    /// Stops all sending, clears queued records and persists the choice.
    ///
    /// # Errors
    /// [`Error::Storage`] when the flag could not be persisted.
    pub fn opt_out(&self) -> Result<(), Error> {
        todo!()
    }

    /// Resumes sending after [`Client::opt_out`].
    ///
    /// # Errors
    /// [`Error::Storage`] when the flag could not be persisted.
    pub fn opt_in(&self) -> Result<(), Error> {
        todo!()
    }

    /// Returns whether the client is opted out.
    pub fn is_opted_out(&self) -> bool {
        todo!()
    }

    /// Returns a snapshot of the counters.
    pub fn stats(&self) -> Stats {
        todo!()
    }

    /// Rebuilds the worker and reopens the store in a child process after `fork()`.
    ///
    /// Records queued before the fork stay with the parent, so none is sent twice.
    pub fn reinit_after_fork(&self) {
        todo!()
    }
}

impl GroupHandle {
    /// Sets properties on the group profile, creating it if absent (`$set`).
    ///
    /// # Errors
    /// [`Error::InvalidProperty`] unless `properties` is a JSON object.
    pub fn set(&self, properties: Value) -> Result<(), Error> {
        let _ = properties;
        todo!()
    }

    /// Sets only the properties not yet present (`$set_once`).
    ///
    /// # Errors
    /// [`Error::InvalidProperty`] unless `properties` is a JSON object.
    pub fn set_once(&self, properties: Value) -> Result<(), Error> {
        let _ = properties;
        todo!()
    }

    /// Deletes the named properties (`$unset`).
    ///
    /// # Errors
    /// [`Error::InvalidProperty`] when `names` is empty.
    pub fn unset<I, S>(&self, names: I) -> Result<(), Error>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let _ = names.into_iter().map(Into::into).collect::<Vec<String>>();
        todo!()
    }

    /// Adds values to list properties, each value kept once (`$union`). `values` maps each
    /// property name to a list.
    ///
    /// # Errors
    /// [`Error::InvalidProperty`] unless `values` is an object of lists.
    pub fn union(&self, values: Value) -> Result<(), Error> {
        let _ = values;
        todo!()
    }

    /// Removes one value from each named list property (`$remove`).
    ///
    /// # Errors
    /// [`Error::InvalidProperty`] unless `values` is a JSON object.
    pub fn remove(&self, values: Value) -> Result<(), Error> {
        let _ = values;
        todo!()
    }

    /// Deletes the whole group profile (`$delete`).
    ///
    /// # Errors
    /// [`Error::ShutDown`] after shutdown.
    pub fn delete(&self) -> Result<(), Error> {
        todo!()
    }

    /// Returns the group key of this handle.
    pub fn key(&self) -> &str {
        todo!()
    }

    /// Returns the group id of this handle.
    pub fn id(&self) -> &str {
        todo!()
    }
}
