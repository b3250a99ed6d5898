//! The exported `Client` and `GroupHandle` objects.
//!
//! Both wrap the core's types one to one. `track_encoded` and the methods ending in `_json`
//! take properties and group ids as JSON text. The Swift and Kotlin layers encode native values
//! into that text and present the idiomatic `track`, `setGroup`, `group(key:id:)` and profile
//! operations.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::callback::DropListener;
use crate::config::ClientConfig;
use crate::errors::GroupscopeError;
use crate::stats::Stats;
use crate::values;

/// How long releasing a client (Kotlin `close()`, the last Swift reference going away) waits
/// for queued records to be delivered. Records still queued then stay in the durable store and
/// are sent by the next client on the same data directory.
const RELEASE_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(2);

/// A groupscope client: records events and group changes and delivers them in the background.
///
/// Every method may be called from any thread. Releasing the client shuts it down, waiting at
/// most 2 s for delivery.
#[derive(uniffi::Object)]
pub struct Client {
    inner: Arc<groupscope::Client>,
}

#[uniffi::export]
impl Client {
    /// Starts a client for the project `token`: opens or creates the store in
    /// `config.data_dir`, loads the persisted identity and group super properties, and starts
    /// the delivery worker. `on_drop` receives a report for every record dropped without
    /// delivery.
    ///
    /// # Errors
    /// [`GroupscopeError::InvalidConfig`] naming the unusable setting, or
    /// [`GroupscopeError::Storage`] when the data directory cannot be used.
    #[uniffi::constructor(default(on_drop = None))]
    pub fn new(
        token: String,
        config: ClientConfig,
        on_drop: Option<Arc<dyn DropListener>>,
    ) -> Result<Arc<Self>, GroupscopeError> {
        let core_config = config.to_core(&token, on_drop)?;
        let inner = groupscope::Client::new(core_config)?;

        log::debug!(
            "groupscope client started with data directory {}",
            config.data_dir
        );
        Ok(Arc::new(Client {
            inner: Arc::new(inner),
        }))
    }

    /// Records an event described by `call_json`. Returns its `$insert_id`.
    ///
    /// `call_json` is one JSON object: `{"event": name, "properties": {...}, "groups": {...},
    /// "distinct_id": id}`, where only `event` is required. `groups` maps group keys to one id, a
    /// list of ids, or `null` to leave that key off this event, and wins over the group super
    /// properties. `non_finite_replaced` is how many NaN or infinite floats the caller's encoder
    /// replaced by `null`. The whole call is one string because every extra string argument
    /// costs Kotlin another JNA call to allocate its buffer.
    ///
    /// # Errors
    /// [`GroupscopeError::InvalidEventName`], [`GroupscopeError::InvalidProperty`],
    /// [`GroupscopeError::InvalidGroupId`], [`GroupscopeError::InvalidGroupKey`] or
    /// [`GroupscopeError::InvalidDistinctId`]; nothing is enqueued then.
    #[uniffi::method(default(non_finite_replaced = 0))]
    pub fn track_encoded(
        &self,
        call_json: String,
        non_finite_replaced: u64,
    ) -> Result<String, GroupscopeError> {
        let call = values::decode_track_call(&call_json)?;
        let options = groupscope::TrackOptions {
            distinct_id: call.distinct_id,
            groups: call.groups,
            time: None,
            non_finite_replaced,
        };

        Ok(self.inner.track(&call.event, call.properties, options)?)
    }

    /// Sets the identity and persists it.
    ///
    /// # Errors
    /// [`GroupscopeError::InvalidDistinctId`] or [`GroupscopeError::Storage`].
    pub fn identify(&self, distinct_id: String) -> Result<(), GroupscopeError> {
        Ok(self.inner.identify(&distinct_id)?)
    }

    /// Returns the current `distinct_id`: the identified one, or the persisted anonymous id.
    pub fn distinct_id(&self) -> String {
        self.inner.distinct_id()
    }

    /// Replaces the group super property `key` with `ids_json` (one id or a JSON list of
    /// strings and integers) and persists it.
    ///
    /// # Errors
    /// [`GroupscopeError::InvalidGroupKey`], [`GroupscopeError::InvalidGroupId`] or
    /// [`GroupscopeError::Storage`].
    pub fn set_group_json(&self, key: String, ids_json: String) -> Result<(), GroupscopeError> {
        let ids = values::decode_group_ids(&key, &ids_json)?;
        Ok(self.inner.set_group(&key, ids)?)
    }

    /// Adds one id (a JSON string or integer) to the group super property `key` unless it is
    /// there, and persists it.
    ///
    /// # Errors
    /// As [`Client::set_group_json`].
    pub fn add_group_json(&self, key: String, id_json: String) -> Result<(), GroupscopeError> {
        let id = values::decode_group_id(&key, &id_json)?;
        Ok(self.inner.add_group(&key, id)?)
    }

    /// Removes one id (a JSON string or integer) from the group super property `key`. Removing
    /// the last id removes the key; removing an absent id changes nothing.
    ///
    /// # Errors
    /// As [`Client::set_group_json`].
    pub fn remove_group_json(&self, key: String, id_json: String) -> Result<(), GroupscopeError> {
        let id = values::decode_group_id(&key, &id_json)?;
        Ok(self.inner.remove_group(&key, id)?)
    }

    /// Returns the group super properties: each group key with its ids, as strings.
    pub fn groups(&self) -> HashMap<String, Vec<String>> {
        self.inner
            .groups()
            .into_iter()
            .map(|(key, ids)| (key, ids.iter().map(|id| id.as_str().to_owned()).collect()))
            .collect()
    }

    /// Returns a handle on the group profile `(key, id)`, where `id_json` is a JSON string or
    /// integer.
    ///
    /// # Errors
    /// [`GroupscopeError::InvalidGroupKey`] or [`GroupscopeError::InvalidGroupId`].
    pub fn group_json(
        &self,
        key: String,
        id_json: String,
    ) -> Result<Arc<GroupHandle>, GroupscopeError> {
        let id = values::decode_group_id(&key, &id_json)?;
        let inner = self.inner.group(&key, id)?;
        Ok(Arc::new(GroupHandle { inner }))
    }

    /// Registers super properties (a JSON object) added to every later event, and persists
    /// them.
    ///
    /// # Errors
    /// [`GroupscopeError::InvalidProperty`] or [`GroupscopeError::Storage`].
    pub fn register_json(&self, properties_json: String) -> Result<(), GroupscopeError> {
        let properties = values::decode_object("properties", &properties_json)?;
        Ok(self.inner.register(properties)?)
    }

    /// Removes one super property.
    ///
    /// # Errors
    /// [`GroupscopeError::Storage`].
    pub fn unregister(&self, name: String) -> Result<(), GroupscopeError> {
        Ok(self.inner.unregister(&name)?)
    }

    /// Waits until every record enqueued before this call was delivered or dropped, or
    /// `timeout` passed. Returns whether everything was settled. Blocks the calling thread, so
    /// call it off the main thread.
    pub fn flush(&self, timeout: Duration) -> bool {
        self.inner.flush(timeout)
    }

    /// Starts a flush on a new thread and returns at once. Call it from the app's background
    /// lifecycle hook (`applicationDidEnterBackground`, `sceneDidEnterBackground` or
    /// `ProcessLifecycleOwner`'s `onStop`) with a `timeout` shorter than the time the system
    /// grants, about 25 s on iOS.
    pub fn flush_on_background(&self, timeout: Duration) {
        let inner = Arc::clone(&self.inner);
        let spawned = std::thread::Builder::new()
            .name("groupscope-background-flush".to_owned())
            .spawn(move || {
                if !inner.flush(timeout) {
                    log::info!(
                        "background flush timed out after {timeout:?}; the rest stays queued"
                    );
                }
            });

        if let Err(error) = spawned {
            log::warn!("background flush not started because no thread could be created: {error}");
        }
    }

    /// Flushes, stops the worker and closes the store, within `timeout`. Idempotent. Returns
    /// whether everything was delivered; undelivered records stay in the store for the next
    /// client.
    pub fn shutdown(&self, timeout: Duration) -> bool {
        self.inner.shutdown(timeout)
    }

    /// Stops all sending, clears queued records and persists the choice.
    ///
    /// # Errors
    /// [`GroupscopeError::Storage`] when the flag could not be persisted.
    pub fn opt_out(&self) -> Result<(), GroupscopeError> {
        Ok(self.inner.opt_out()?)
    }

    /// Resumes sending after `opt_out`.
    ///
    /// # Errors
    /// [`GroupscopeError::Storage`] when the flag could not be persisted.
    pub fn opt_in(&self) -> Result<(), GroupscopeError> {
        Ok(self.inner.opt_in()?)
    }

    /// Returns whether the client is opted out.
    pub fn is_opted_out(&self) -> bool {
        self.inner.is_opted_out()
    }

    /// Returns a snapshot of the delivery counters.
    pub fn stats(&self) -> Stats {
        self.inner.stats().into()
    }
}

impl Client {
    /// Records an event from already decoded properties, with no per-event options.
    #[cfg_attr(not(feature = "representation-benchmark"), allow(dead_code))]
    pub(crate) fn track_value(
        &self,
        event: &str,
        properties: serde_json::Value,
    ) -> Result<String, GroupscopeError> {
        Ok(self
            .inner
            .track(event, properties, groupscope::TrackOptions::default())?)
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        // A background flush may still hold the core client; it shuts down when that ends.
        if Arc::strong_count(&self.inner) == 1 {
            self.inner.shutdown(RELEASE_SHUTDOWN_TIMEOUT);
        }
    }
}

/// A handle on one group profile `(group key, group id)`. Each operation enqueues exactly one
/// `/groups` record for that profile.
#[derive(uniffi::Object)]
pub struct GroupHandle {
    inner: groupscope::GroupHandle,
}

#[uniffi::export]
impl GroupHandle {
    /// Sets properties (a JSON object) on the group profile, creating it if absent (`$set`).
    ///
    /// # Errors
    /// [`GroupscopeError::InvalidProperty`] unless `properties_json` is a JSON object.
    pub fn set_json(&self, properties_json: String) -> Result<(), GroupscopeError> {
        let properties = values::decode_object("properties", &properties_json)?;
        Ok(self.inner.set(properties)?)
    }

    /// Sets only the properties not yet present (`$set_once`).
    ///
    /// # Errors
    /// As [`GroupHandle::set_json`].
    pub fn set_once_json(&self, properties_json: String) -> Result<(), GroupscopeError> {
        let properties = values::decode_object("properties", &properties_json)?;
        Ok(self.inner.set_once(properties)?)
    }

    /// Deletes the named properties (`$unset`).
    ///
    /// # Errors
    /// [`GroupscopeError::InvalidProperty`] when `names` is empty.
    pub fn unset(&self, names: Vec<String>) -> Result<(), GroupscopeError> {
        Ok(self.inner.unset(names)?)
    }

    /// Adds values to list properties, each value kept once (`$union`). `values_json` maps
    /// each property name to a JSON list.
    ///
    /// # Errors
    /// [`GroupscopeError::InvalidProperty`] unless `values_json` is an object of lists.
    pub fn union_json(&self, values_json: String) -> Result<(), GroupscopeError> {
        let values = values::decode_object("values", &values_json)?;
        Ok(self.inner.union(values)?)
    }

    /// Removes one value from each named list property (`$remove`).
    ///
    /// # Errors
    /// [`GroupscopeError::InvalidProperty`] unless `values_json` is a JSON object.
    pub fn remove_json(&self, values_json: String) -> Result<(), GroupscopeError> {
        let values = values::decode_object("values", &values_json)?;
        Ok(self.inner.remove(values)?)
    }

    /// Deletes the whole group profile (`$delete`).
    ///
    /// # Errors
    /// [`GroupscopeError::ShutDown`] after shutdown.
    pub fn delete(&self) -> Result<(), GroupscopeError> {
        Ok(self.inner.delete()?)
    }

    /// Returns the group key of this handle.
    pub fn key(&self) -> String {
        self.inner.key().to_owned()
    }

    /// Returns the group id of this handle.
    pub fn id(&self) -> String {
        self.inner.id().to_owned()
    }
}
