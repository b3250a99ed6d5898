//! The `Client` and `GroupHandle` classes of `groupscope._native`.
//!
//! Each method converts its Python arguments (see [`crate::convert`]), calls the core, and maps
//! a core error with [`crate::errors::to_py_err`]. Methods that can wait release the interpreter
//! through [`crate::detach::blocking`]. Every method first forwards queued log records and drop
//! reports to Python, because the core's worker thread never does that itself.

use std::mem::ManuallyDrop;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use groupscope::{Config, GroupIds, TrackOptions};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyString};
use serde_json::Value;

use crate::convert::{self, Converter};
use crate::detach::blocking;
use crate::drops::QueuedDrops;
use crate::errors::{IntoPyResult, invalid_config, unsupported_value};
use crate::logging;
use crate::stats::Stats;

/// State shared by a client and its group handles.
struct Shared {
    drops: Arc<QueuedDrops>,
    on_drop: Option<Py<PyAny>>,
    /// A `contextvars.ContextVar` whose value is the request-scoped groups (a `dict`) or `None`.
    groups_var: Py<PyAny>,
    /// The bound method `groups_var.get`, kept so `track` skips the attribute lookup.
    groups_var_get: Py<PyAny>,
    /// Whether the client has a durable store. Recording calls then release the interpreter,
    /// because they can wait on the core's state lock while another thread writes the store.
    durable: bool,
    /// Non-finite floats replaced in calls whose core method takes no count (group profile
    /// operations and super properties); added to `Stats.non_finite_replaced`.
    non_finite_outside_track: AtomicU64,
}

impl Shared {
    /// Forwards queued log records and drop reports to Python.
    fn forward_to_python(&self, py: Python<'_>) {
        logging::forward_pending(py);
        if let Some(callback) = &self.on_drop {
            self.drops.deliver(py, callback);
        }
    }

    /// Runs a call that takes the core's state lock, releasing the interpreter when the client
    /// has a durable store.
    fn record<T: Send>(&self, py: Python<'_>, work: impl FnOnce() -> T + Send) -> T {
        if self.durable { blocking(py, work) } else { work() }
    }

    fn count_non_finite(&self, converter: &Converter<'_>, call: &str) {
        let replaced = converter.non_finite_replaced();
        if replaced > 0 {
            self.non_finite_outside_track.fetch_add(replaced, Ordering::Relaxed);
            warn_non_finite(replaced, call);
        }
    }
}

/// Total non-finite floats replaced in this process, for rate-limiting the warning.
static NON_FINITE_WARNINGS: AtomicU64 = AtomicU64::new(0);

/// Logs a warning about replaced non-finite floats the first time and then each time the
/// process total passes a power of two, so a hot loop cannot flood the log.
fn warn_non_finite(replaced: u64, call: &str) {
    let before = NON_FINITE_WARNINGS.fetch_add(replaced, Ordering::Relaxed);
    let after = before + replaced;
    if before == 0 || (after.ilog2() > before.ilog2()) {
        log::warn!(
            target: "groupscope",
            "replaced {replaced} NaN or infinite float(s) with null in {call} ({after} so far in this process); send finite numbers or None"
        );
    }
}

/// A groupscope client: records events and group changes and delivers them in the background.
#[pyclass(module = "groupscope._native", name = "Client", subclass, weakref, frozen)]
pub struct Client {
    /// Wrapped in `ManuallyDrop` so `Drop` can release the interpreter while the core joins
    /// its worker thread.
    core: ManuallyDrop<Arc<groupscope::Client>>,
    shared: Arc<Shared>,
}

/// Converts a number of seconds from a constructor argument into a `Duration`.
fn seconds(py: Python<'_>, argument: &str, value: f64) -> PyResult<Duration> {
    Duration::try_from_secs_f64(value)
        .map_err(|_| invalid_config(py, argument, &format!("must be a finite number of seconds >= 0, got {value}")))
}

/// Converts a count from a constructor argument, rejecting zero.
fn positive(py: Python<'_>, argument: &str, value: usize) -> PyResult<usize> {
    if value == 0 {
        return Err(invalid_config(py, argument, "must be at least 1, got 0"));
    }
    Ok(value)
}

#[pymethods]
impl Client {
    #[new]
    #[pyo3(signature = (
        token,
        *,
        api_host = None,
        data_dir = None,
        batch_size = 50,
        import_batch_size = 2000,
        flush_interval = 1.0,
        max_queue_records = 100_000,
        max_queue_bytes = 104_857_600,
        max_request_bytes = 1_048_576,
        max_import_request_bytes = 10_000_000,
        request_timeout = 10.0,
        initial_retry_delay = 2.0,
        max_retry_delay = 60.0,
        max_attempts_per_cycle = 3,
        gzip = true,
        import_credentials = None,
        project_id = None,
        on_drop = None,
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        token: String,
        api_host: Option<String>,
        data_dir: Option<PathBuf>,
        batch_size: usize,
        import_batch_size: usize,
        flush_interval: f64,
        max_queue_records: usize,
        max_queue_bytes: usize,
        max_request_bytes: usize,
        max_import_request_bytes: usize,
        request_timeout: f64,
        initial_retry_delay: f64,
        max_retry_delay: f64,
        max_attempts_per_cycle: u32,
        gzip: bool,
        import_credentials: Option<String>,
        project_id: Option<String>,
        on_drop: Option<Py<PyAny>>,
    ) -> PyResult<Self> {
        if let Some(callback) = &on_drop
            && !callback.bind(py).is_callable()
        {
            return Err(invalid_config(py, "on_drop", "must be callable with one DropReport argument, or None"));
        }
        logging::sync_level(py)?;

        let drops = Arc::new(QueuedDrops::new());
        let mut config = Config::new(token);
        if let Some(api_host) = api_host {
            config.api_host = api_host;
        }
        let durable = data_dir.is_some();
        config.data_dir = data_dir;
        config.batch_size = positive(py, "batch_size", batch_size)?;
        config.import_batch_size = positive(py, "import_batch_size", import_batch_size)?;
        config.flush_interval = seconds(py, "flush_interval", flush_interval)?;
        config.max_queue_records = positive(py, "max_queue_records", max_queue_records)?;
        config.max_queue_bytes = positive(py, "max_queue_bytes", max_queue_bytes)?;
        config.max_request_bytes = positive(py, "max_request_bytes", max_request_bytes)?;
        config.max_import_request_bytes = positive(py, "max_import_request_bytes", max_import_request_bytes)?;
        config.request_timeout = seconds(py, "request_timeout", request_timeout)?;
        config.initial_retry_delay = seconds(py, "initial_retry_delay", initial_retry_delay)?;
        config.max_retry_delay = seconds(py, "max_retry_delay", max_retry_delay)?;
        config.max_attempts_per_cycle = max_attempts_per_cycle;
        config.gzip = gzip;
        config.import_credentials = import_credentials;
        config.project_id = project_id;
        let drop_callback: Arc<dyn groupscope::DropCallback> = drops.clone();
        config.on_drop = Some(drop_callback);

        let core = blocking(py, move || groupscope::Client::new(config)).into_py_result(py)?;

        let groups_var = py
            .import("contextvars")?
            .getattr("ContextVar")?
            .call1(("groupscope_request_groups",))?
            .unbind();
        let groups_var_get = groups_var.getattr(py, "get")?;
        let shared = Shared {
            drops,
            on_drop,
            groups_var,
            groups_var_get,
            durable,
            non_finite_outside_track: AtomicU64::new(0),
        };
        Ok(Client {
            core: ManuallyDrop::new(Arc::new(core)),
            shared: Arc::new(shared),
        })
    }

    /// Records an event for `/track` and returns its `$insert_id`.
    #[pyo3(signature = (event, properties = None, *, distinct_id = None, groups = None, time = None))]
    fn track(
        &self,
        py: Python<'_>,
        event: &Bound<'_, PyString>,
        properties: Option<&Bound<'_, PyAny>>,
        distinct_id: Option<&Bound<'_, PyString>>,
        groups: Option<&Bound<'_, PyDict>>,
        time: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<String> {
        self.shared.forward_to_python(py);
        let (event, properties, options) = self.event_arguments(py, event, properties, distinct_id, groups, time)?;
        let core = &self.core;
        self.shared
            .record(py, || core.track(&event, properties, options))
            .into_py_result(py)
    }

    /// Records an event for `/import`, which accepts events of any age, and returns its
    /// `$insert_id`.
    #[pyo3(signature = (event, properties = None, *, distinct_id = None, groups = None, time = None))]
    fn import_event(
        &self,
        py: Python<'_>,
        event: &Bound<'_, PyString>,
        properties: Option<&Bound<'_, PyAny>>,
        distinct_id: Option<&Bound<'_, PyString>>,
        groups: Option<&Bound<'_, PyDict>>,
        time: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<String> {
        self.shared.forward_to_python(py);
        let (event, properties, options) = self.event_arguments(py, event, properties, distinct_id, groups, time)?;
        let core = &self.core;
        self.shared
            .record(py, || core.import(&event, properties, options))
            .into_py_result(py)
    }

    /// Sets the identity and persists it.
    fn identify(&self, py: Python<'_>, distinct_id: &Bound<'_, PyString>) -> PyResult<()> {
        self.shared.forward_to_python(py);
        let distinct_id = convert::python_str(distinct_id);
        let core = &self.core;
        blocking(py, || core.identify(&distinct_id)).into_py_result(py)
    }

    /// The current `distinct_id`.
    #[getter]
    fn distinct_id(&self, py: Python<'_>) -> String {
        self.shared.forward_to_python(py);
        let core = &self.core;
        self.shared.record(py, || core.distinct_id())
    }

    /// Replaces the group super property `key` with `ids` (one id or a list of ids).
    fn set_group(&self, py: Python<'_>, key: &Bound<'_, PyString>, ids: &Bound<'_, PyAny>) -> PyResult<()> {
        self.shared.forward_to_python(py);
        let key = convert::python_str(key);
        let ids = Converter::new(py).value(&key, ids)?;
        let core = &self.core;
        blocking(py, || match &ids {
            Value::Array(items) => core.set_group(&key, items),
            single => core.set_group(&key, [single]),
        })
        .into_py_result(py)
    }

    /// Adds one id to the group super property `key` unless it is present.
    fn add_group(&self, py: Python<'_>, key: &Bound<'_, PyString>, id: &Bound<'_, PyAny>) -> PyResult<()> {
        self.shared.forward_to_python(py);
        let key = convert::python_str(key);
        let id = Converter::new(py).value(&key, id)?;
        let core = &self.core;
        blocking(py, || core.add_group(&key, &id)).into_py_result(py)
    }

    /// Removes one id from the group super property `key`.
    fn remove_group(&self, py: Python<'_>, key: &Bound<'_, PyString>, id: &Bound<'_, PyAny>) -> PyResult<()> {
        self.shared.forward_to_python(py);
        let key = convert::python_str(key);
        let id = Converter::new(py).value(&key, id)?;
        let core = &self.core;
        blocking(py, || core.remove_group(&key, &id)).into_py_result(py)
    }

    /// Returns the group super properties as `{key: [ids]}`.
    fn current_groups<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        self.shared.forward_to_python(py);
        let core = &self.core;
        let groups = self.shared.record(py, || core.groups());
        let result = PyDict::new(py);
        for (key, ids) in groups {
            let ids: Vec<&str> = ids.iter().map(|id| id.as_str()).collect();
            result.set_item(key, ids)?;
        }
        Ok(result)
    }

    /// Returns a handle on the group profile `(key, id)`.
    fn group(&self, py: Python<'_>, key: &Bound<'_, PyString>, id: &Bound<'_, PyAny>) -> PyResult<GroupHandle> {
        self.shared.forward_to_python(py);
        let key = convert::python_str(key);
        let id = Converter::new(py).value(&key, id)?;
        let core = self.core.group(&key, &id).into_py_result(py)?;
        Ok(GroupHandle {
            core,
            shared: self.shared.clone(),
        })
    }

    /// Returns a context manager that adds `groups` to every event tracked inside it.
    #[pyo3(signature = (**groups))]
    fn groups(&self, py: Python<'_>, groups: Option<&Bound<'_, PyDict>>) -> PyResult<GroupContext> {
        self.shared.forward_to_python(py);
        let checked = PyDict::new(py);
        if let Some(groups) = groups {
            for (key, ids) in groups.iter() {
                let key_text = convert::python_str(key.cast::<PyString>()?);
                if !ids.is_none() {
                    let value = Converter::new(py).value(&key_text, &ids)?;
                    GroupIds::from_json(&key_text, &value).into_py_result(py)?;
                }
                checked.set_item(key, ids)?;
            }
        }
        Ok(GroupContext {
            groups_var: self.shared.groups_var.clone_ref(py),
            groups: checked.unbind(),
            tokens: Vec::new(),
        })
    }

    /// Registers super properties added to every later event.
    fn register(&self, py: Python<'_>, properties: &Bound<'_, PyAny>) -> PyResult<()> {
        self.shared.forward_to_python(py);
        let mut converter = Converter::new(py);
        let properties = converter.properties("properties", Some(properties))?;
        self.shared.count_non_finite(&converter, "register");
        let core = &self.core;
        blocking(py, || core.register(properties)).into_py_result(py)
    }

    /// Removes one super property.
    fn unregister(&self, py: Python<'_>, name: &Bound<'_, PyString>) -> PyResult<()> {
        self.shared.forward_to_python(py);
        let name = convert::python_str(name);
        let core = &self.core;
        blocking(py, || core.unregister(&name)).into_py_result(py)
    }

    /// Waits until everything recorded before this call was delivered or dropped, or `timeout`
    /// seconds passed. Returns whether everything was settled.
    #[pyo3(signature = (timeout = 10.0))]
    fn flush(&self, py: Python<'_>, timeout: f64) -> PyResult<bool> {
        self.shared.forward_to_python(py);
        let timeout = timeout_seconds(timeout)?;
        let core = &self.core;
        let settled = blocking(py, || core.flush(timeout));
        self.shared.forward_to_python(py);
        Ok(settled)
    }

    /// Flushes, stops the worker and closes the store within `timeout` seconds. Idempotent.
    /// Returns whether everything was delivered.
    #[pyo3(signature = (timeout = 10.0))]
    fn shutdown(&self, py: Python<'_>, timeout: f64) -> PyResult<bool> {
        self.shared.forward_to_python(py);
        let timeout = timeout_seconds(timeout)?;
        let core = &self.core;
        let delivered = blocking(py, || core.shutdown(timeout));
        self.shared.forward_to_python(py);
        Ok(delivered)
    }

    /// Stops all sending, clears queued records and persists the choice.
    fn opt_out(&self, py: Python<'_>) -> PyResult<()> {
        self.shared.forward_to_python(py);
        let core = &self.core;
        let result = blocking(py, || core.opt_out());
        self.shared.forward_to_python(py);
        result.into_py_result(py)
    }

    /// Resumes sending after `opt_out()`.
    fn opt_in(&self, py: Python<'_>) -> PyResult<()> {
        self.shared.forward_to_python(py);
        let core = &self.core;
        blocking(py, || core.opt_in()).into_py_result(py)
    }

    /// Whether the client is opted out.
    #[getter]
    fn is_opted_out(&self, py: Python<'_>) -> bool {
        let core = &self.core;
        self.shared.record(py, || core.is_opted_out())
    }

    /// Returns a snapshot of the delivery counters.
    fn stats(&self, py: Python<'_>) -> Stats {
        self.shared.forward_to_python(py);
        let mut stats = self.core.stats();
        stats.non_finite_replaced += self.shared.non_finite_outside_track.load(Ordering::Relaxed);
        Stats::from(stats)
    }

    /// Rebuilds the worker and reopens the store in a child process after `os.fork()`.
    ///
    /// Drop reports queued before the fork belong to the parent, which delivers them, so the
    /// child discards its copy.
    fn _reinit_after_fork(&self, py: Python<'_>) {
        self.shared.drops.discard();
        let core = &self.core;
        blocking(py, || core.reinit_after_fork());
    }

    /// Forwards queued log records and drop reports to Python now.
    fn _forward_to_python(&self, py: Python<'_>) {
        self.shared.forward_to_python(py);
    }
}

impl Client {
    /// Converts the arguments shared by `track` and `import_event`.
    fn event_arguments<'py>(
        &self,
        py: Python<'py>,
        event: &Bound<'py, PyString>,
        properties: Option<&Bound<'py, PyAny>>,
        distinct_id: Option<&Bound<'py, PyString>>,
        groups: Option<&Bound<'py, PyDict>>,
        time: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<(String, Value, TrackOptions)> {
        let mut converter = Converter::new(py);
        let properties = converter.properties("properties", properties)?;
        let mut options = TrackOptions {
            distinct_id: distinct_id.map(convert::python_str),
            groups: self.event_groups(py, &mut converter, groups)?,
            time: time.map(event_time).transpose()?,
            non_finite_replaced: 0,
        };
        options.non_finite_replaced = converter.non_finite_replaced();

        // The core counts these and logs the warning for events.
        let event = convert::python_str(event);
        Ok((event, properties, options))
    }

    /// Merges the request-scoped groups with the `groups=` argument, which wins per key.
    fn event_groups<'py>(
        &self,
        py: Python<'py>,
        converter: &mut Converter<'py>,
        explicit: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Vec<(String, Option<Value>)>> {
        let mut merged: Vec<(String, Option<Value>)> = Vec::new();

        let scoped = self.shared.groups_var_get.bind(py).call1((py.None(),))?;
        if let Ok(scoped) = scoped.cast::<PyDict>() {
            add_event_groups(&mut merged, converter, scoped)?;
        }
        if let Some(explicit) = explicit {
            add_event_groups(&mut merged, converter, explicit)?;
        }
        Ok(merged)
    }
}

/// Adds `{key: ids or None}` to `merged`, replacing earlier entries of the same key.
fn add_event_groups<'py>(
    merged: &mut Vec<(String, Option<Value>)>,
    converter: &mut Converter<'py>,
    groups: &Bound<'py, PyDict>,
) -> PyResult<()> {
    for (key, ids) in groups.iter() {
        let Ok(key) = key.cast::<PyString>() else {
            return Err(unsupported_value(
                groups.py(),
                format!("group keys must be str, got {}; pass groups={{\"company_id\": \"acme\"}}", key.repr()?),
            ));
        };
        let key = convert::python_str(key);
        let ids = if ids.is_none() { None } else { Some(converter.value(&key, &ids)?) };
        merged.retain(|(existing, _)| *existing != key);
        merged.push((key, ids));
    }
    Ok(())
}

/// Converts a `time=` argument to seconds or milliseconds since the epoch, as the core reads
/// numbers: below 1e11 they are seconds, otherwise milliseconds. A `datetime` becomes seconds.
fn event_time(time: &Bound<'_, PyAny>) -> PyResult<f64> {
    let py = time.py();
    if time.cast::<PyBool>().is_err() && (time.cast::<PyInt>().is_ok() || time.cast::<PyFloat>().is_ok()) {
        return time.extract();
    }
    if convert::is_datetime(time)? {
        return convert::datetime_seconds(time);
    }
    let type_name = time.get_type().name()?;
    Err(unsupported_value(
        py,
        format!("time must be a datetime or a number of seconds or milliseconds since the epoch, not {type_name}"),
    ))
}

fn timeout_seconds(timeout: f64) -> PyResult<Duration> {
    Duration::try_from_secs_f64(timeout).map_err(|_| {
        pyo3::exceptions::PyValueError::new_err(format!(
            "invalid timeout {timeout}: pass a finite number of seconds >= 0"
        ))
    })
}

impl Drop for Client {
    fn drop(&mut self) {
        // SAFETY: `drop` runs once, and no method can run after it, so `core` is not used again.
        let core = unsafe { ManuallyDrop::take(&mut self.core) };

        // Dropping the last reference may join the worker thread. The interpreter is released
        // first, so other Python threads keep running during the join.
        Python::attach(|py| blocking(py, move || drop(core)));
    }
}

/// A context manager that adds groups to every event tracked inside it (`contextvars`-based,
/// so it is local to the current thread or asyncio task). Nested contexts merge, the inner
/// one winning per key.
#[pyclass(module = "groupscope._native", name = "GroupContext")]
pub struct GroupContext {
    groups_var: Py<PyAny>,
    groups: Py<PyDict>,
    /// Reset tokens of the active `__enter__` calls, innermost last.
    tokens: Vec<Py<PyAny>>,
}

#[pymethods]
impl GroupContext {
    fn __enter__(mut slf: PyRefMut<'_, Self>) -> PyResult<PyRefMut<'_, Self>> {
        let py = slf.py();
        let var = slf.groups_var.bind(py);
        let merged = PyDict::new(py);
        let current = var.call_method1("get", (py.None(),))?;
        if let Ok(current) = current.cast::<PyDict>() {
            merged.update(current.as_mapping())?;
        }
        merged.update(slf.groups.bind(py).as_mapping())?;
        let token = var.call_method1("set", (merged,))?.unbind();
        slf.tokens.push(token);
        Ok(slf)
    }

    fn __exit__(
        &mut self,
        py: Python<'_>,
        _exc_type: Option<&Bound<'_, PyAny>>,
        _exc_value: Option<&Bound<'_, PyAny>>,
        _traceback: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        if let Some(token) = self.tokens.pop() {
            self.groups_var.bind(py).call_method1("reset", (token,))?;
        }
        Ok(false)
    }
}

/// A handle on one group profile `(key, id)`; each call enqueues one `/groups` record.
#[pyclass(module = "groupscope._native", name = "GroupHandle", frozen)]
pub struct GroupHandle {
    core: groupscope::GroupHandle,
    shared: Arc<Shared>,
}

#[pymethods]
impl GroupHandle {
    /// The group key.
    #[getter]
    fn key(&self) -> &str {
        self.core.key()
    }

    /// The group id.
    #[getter]
    fn id(&self) -> &str {
        self.core.id()
    }

    /// Sets properties on the group profile, creating it if absent (`$set`).
    fn set(&self, py: Python<'_>, properties: &Bound<'_, PyAny>) -> PyResult<()> {
        let properties = self.profile_properties(py, properties, "set")?;
        let core = &self.core;
        self.shared.record(py, || core.set(properties)).into_py_result(py)
    }

    /// Sets only the properties not yet present (`$set_once`).
    fn set_once(&self, py: Python<'_>, properties: &Bound<'_, PyAny>) -> PyResult<()> {
        let properties = self.profile_properties(py, properties, "set_once")?;
        let core = &self.core;
        self.shared.record(py, || core.set_once(properties)).into_py_result(py)
    }

    /// Deletes the named properties (`$unset`); `names` is one name or an iterable of names.
    fn unset(&self, py: Python<'_>, names: &Bound<'_, PyAny>) -> PyResult<()> {
        self.shared.forward_to_python(py);
        let names: Vec<String> = match names.cast::<PyString>() {
            Ok(name) => vec![convert::python_str(name)],
            Err(_) => names
                .try_iter()?
                .map(|name| name.and_then(|name| Ok(convert::python_str(name.cast::<PyString>()?))))
                .collect::<PyResult<_>>()?,
        };
        let core = &self.core;
        self.shared.record(py, || core.unset(names)).into_py_result(py)
    }

    /// Adds values to list properties, each value kept once (`$union`).
    fn union(&self, py: Python<'_>, values: &Bound<'_, PyAny>) -> PyResult<()> {
        let values = self.profile_properties(py, values, "union")?;
        let core = &self.core;
        self.shared.record(py, || core.union(values)).into_py_result(py)
    }

    /// Removes one value from each named list property (`$remove`).
    fn remove(&self, py: Python<'_>, values: &Bound<'_, PyAny>) -> PyResult<()> {
        let values = self.profile_properties(py, values, "remove")?;
        let core = &self.core;
        self.shared.record(py, || core.remove(values)).into_py_result(py)
    }

    /// Deletes the whole group profile (`$delete`).
    fn delete(&self, py: Python<'_>) -> PyResult<()> {
        self.shared.forward_to_python(py);
        let core = &self.core;
        self.shared.record(py, || core.delete()).into_py_result(py)
    }

    fn __repr__(&self) -> String {
        format!("GroupHandle(key={:?}, id={:?})", self.core.key(), self.core.id())
    }
}

impl GroupHandle {
    fn profile_properties(&self, py: Python<'_>, properties: &Bound<'_, PyAny>, operation: &str) -> PyResult<Value> {
        self.shared.forward_to_python(py);
        let mut converter = Converter::new(py);
        let converted = converter.properties("properties", Some(properties))?;
        self.shared.count_non_finite(&converter, &format!("group {operation}"));
        Ok(converted)
    }
}
