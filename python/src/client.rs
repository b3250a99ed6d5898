//! The `Client` and `GroupHandle` classes of `groupscope._native`.
//!
//! Each method converts its Python arguments (see [`crate::convert`]), calls the core, and maps
//! a core error with [`crate::errors::to_py_err`]. Methods that can wait release the interpreter
//! through [`crate::detach::blocking`]. Every method first forwards queued log records and drop
//! reports to Python, because the core's worker thread never does that itself.

use std::mem::ManuallyDrop;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use groupscope::{Config, EncodedProperties, GroupIds, ProfileOperation, TrackOptions};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use serde_json::Value;

use crate::convert::{self, Converter};
use crate::detach::blocking;
use crate::fork_gate;
use crate::drops::QueuedDrops;
use crate::errors::{IntoPyResult, invalid_argument, invalid_config, unsupported_value};
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
    /// Set when a `with client.groups(...)` block is first entered. Until then `groups_var`
    /// has no value anywhere, so `track` skips reading it.
    groups_var_used: Arc<AtomicBool>,
    /// A `contextvars.ContextVar` whose value is a tuple of `(GroupContext, reset token)`
    /// pairs, innermost last: the `with client.groups(...)` blocks open in the current thread
    /// or asyncio task.
    group_tokens_var: Py<PyAny>,
    /// Whether the client has a durable store. Recording calls then release the interpreter,
    /// because they can wait on the core's state lock while another thread writes the store.
    durable: bool,
    /// Non-finite floats replaced in calls whose core method takes no count (group profile
    /// operations and super properties); added to `Stats.non_finite_replaced`.
    non_finite_outside_track: AtomicU64,
    /// Set by the interpreter's exit hook before it shuts the client down. Recording calls
    /// made after that (from daemon threads) are ignored instead of raising `ShutDownError`.
    exited: AtomicBool,
    /// Whether a call ignored after exit was logged, so the debug record appears once.
    logged_call_after_exit: AtomicBool,
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
    /// has a durable store. The call passes the fork gate.
    fn record<T: Send>(&self, py: Python<'_>, work: impl FnOnce() -> T + Send) -> T {
        if self.durable {
            blocking(py, || {
                let _pass = fork_gate::enter_detached();
                work()
            })
        } else {
            let _pass = fork_gate::enter(py);
            work()
        }
    }

    /// Returns the default value in place of `ShutDownError` after the exit hook shut the
    /// client down, and logs the first such call at debug level.
    fn ignore_after_exit<T: Default>(&self, result: Result<T, groupscope::Error>) -> Result<T, groupscope::Error> {
        match result {
            Err(groupscope::Error::ShutDown) if self.exited.load(Ordering::Acquire) => {
                if !self.logged_call_after_exit.swap(true, Ordering::Relaxed) {
                    log::debug!(
                        target: "groupscope",
                        "ignoring a call made after the exit hook shut the client down (logged once)"
                    );
                }
                Ok(T::default())
            }
            other => other,
        }
    }

    fn count_non_finite(&self, converter: &Converter<'_>, call: &str) {
        let replaced = converter.non_finite_replaced();
        if replaced > 0 {
            self.non_finite_outside_track.fetch_add(replaced, Ordering::Relaxed);
            warn_non_finite(replaced, call);
        }
    }
}

/// Runs a short core call with the interpreter released, through the fork gate.
fn gated<T: Send>(py: Python<'_>, work: impl FnOnce() -> T + Send) -> T {
    blocking(py, || {
        let _pass = fork_gate::enter_detached();
        work()
    })
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

/// Converts a number of seconds from a constructor argument into a `Duration`; `None` keeps
/// the core's default.
fn seconds(py: Python<'_>, argument: &str, value: Option<&Bound<'_, PyAny>>, default: Duration) -> PyResult<Duration> {
    let Some(value) = value.filter(|value| !value.is_none()) else {
        return Ok(default);
    };
    let invalid = || {
        let value_repr = value.repr().map(|text| text.to_string()).unwrap_or_default();
        invalid_config(py, argument, &format!("must be a finite number of seconds >= 0, got {value_repr}"))
    };
    if value.cast::<PyBool>().is_ok() || (value.cast::<PyInt>().is_err() && value.cast::<PyFloat>().is_err()) {
        return Err(invalid());
    }
    let number: f64 = value.extract().map_err(|_| invalid())?;
    Duration::try_from_secs_f64(number).map_err(|_| invalid())
}

/// Converts a count from a constructor argument, rejecting values below 1; `None` keeps the
/// core's default.
fn positive(py: Python<'_>, argument: &str, value: Option<&Bound<'_, PyAny>>, default: usize) -> PyResult<usize> {
    let Some(value) = value.filter(|value| !value.is_none()) else {
        return Ok(default);
    };
    let value_repr = value.repr().map(|text| text.to_string()).unwrap_or_default();
    if value.cast::<PyBool>().is_ok() || value.cast::<PyInt>().is_err() {
        return Err(invalid_config(py, argument, &format!("must be an int >= 1, got {value_repr}")));
    }
    let is_negative = value.lt(0).unwrap_or(false);
    match value.extract::<usize>() {
        Ok(count) if count >= 1 => Ok(count),
        Err(_) if !is_negative => Err(invalid_config(
            py,
            argument,
            &format!("must be an int at most {}, got {value_repr}", usize::MAX),
        )),
        _ => Err(invalid_config(py, argument, &format!("must be an int >= 1, got {value_repr}"))),
    }
}

/// Reads a `str` argument of a method, raising a `TypeError` that names the argument.
fn str_argument(value: &Bound<'_, PyAny>, argument: &str, example: &str) -> PyResult<String> {
    match value.cast::<PyString>() {
        Ok(text) => Ok(convert::python_str(text)),
        Err(_) => {
            let type_name = value.get_type().name().map(|name| name.to_string()).unwrap_or_default();
            Err(pyo3::exceptions::PyTypeError::new_err(format!(
                "{argument} must be a str, not {type_name}; pass for example {argument}={example}"
            )))
        }
    }
}

/// Reads a `dict` argument of a method, raising a `TypeError` that names the argument.
fn dict_argument<'a, 'py>(value: &'a Bound<'py, PyAny>, argument: &str, example: &str) -> PyResult<&'a Bound<'py, PyDict>> {
    value.cast::<PyDict>().map_err(|_| {
        let type_name = value.get_type().name().map(|name| name.to_string()).unwrap_or_default();
        pyo3::exceptions::PyTypeError::new_err(format!(
            "{argument} must be a dict, not {type_name}; pass for example {argument}={example}"
        ))
    })
}

#[pymethods]
impl Client {
    #[new]
    #[pyo3(signature = (
        token,
        *,
        api_host = None,
        data_dir = None,
        batch_size = None,
        import_batch_size = None,
        flush_interval = None,
        max_queue_records = None,
        max_queue_bytes = None,
        max_request_bytes = None,
        max_import_request_bytes = None,
        request_timeout = None,
        initial_retry_delay = None,
        max_retry_delay = None,
        max_attempts_per_cycle = None,
        gzip = true,
        import_credentials = None,
        project_id = None,
        on_drop = None,
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        token: &Bound<'_, PyAny>,
        api_host: Option<String>,
        data_dir: Option<PathBuf>,
        batch_size: Option<&Bound<'_, PyAny>>,
        import_batch_size: Option<&Bound<'_, PyAny>>,
        flush_interval: Option<&Bound<'_, PyAny>>,
        max_queue_records: Option<&Bound<'_, PyAny>>,
        max_queue_bytes: Option<&Bound<'_, PyAny>>,
        max_request_bytes: Option<&Bound<'_, PyAny>>,
        max_import_request_bytes: Option<&Bound<'_, PyAny>>,
        request_timeout: Option<&Bound<'_, PyAny>>,
        initial_retry_delay: Option<&Bound<'_, PyAny>>,
        max_retry_delay: Option<&Bound<'_, PyAny>>,
        max_attempts_per_cycle: Option<&Bound<'_, PyAny>>,
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

        let Ok(token) = token.cast::<PyString>() else {
            let value_repr = token.repr()?.to_string();
            return Err(invalid_config(py, "token", &format!("must be the project token as a str, got {value_repr}")));
        };
        let drops = Arc::new(QueuedDrops::new());
        // Arguments left as None keep these core defaults.
        let mut config = Config::new(convert::python_str(token));
        if let Some(api_host) = api_host {
            config.api_host = api_host;
        }
        let durable = data_dir.is_some();
        config.data_dir = data_dir;
        config.batch_size = positive(py, "batch_size", batch_size, config.batch_size)?;
        config.import_batch_size = positive(py, "import_batch_size", import_batch_size, config.import_batch_size)?;
        config.flush_interval = seconds(py, "flush_interval", flush_interval, config.flush_interval)?;
        config.max_queue_records = positive(py, "max_queue_records", max_queue_records, config.max_queue_records)?;
        config.max_queue_bytes = positive(py, "max_queue_bytes", max_queue_bytes, config.max_queue_bytes)?;
        config.max_request_bytes = positive(py, "max_request_bytes", max_request_bytes, config.max_request_bytes)?;
        config.max_import_request_bytes = positive(
            py,
            "max_import_request_bytes",
            max_import_request_bytes,
            config.max_import_request_bytes,
        )?;
        config.request_timeout = seconds(py, "request_timeout", request_timeout, config.request_timeout)?;
        config.initial_retry_delay = seconds(py, "initial_retry_delay", initial_retry_delay, config.initial_retry_delay)?;
        config.max_retry_delay = seconds(py, "max_retry_delay", max_retry_delay, config.max_retry_delay)?;
        let attempts = positive(py, "max_attempts_per_cycle", max_attempts_per_cycle, config.max_attempts_per_cycle as usize)?;
        config.max_attempts_per_cycle = u32::try_from(attempts)
            .map_err(|_| invalid_config(py, "max_attempts_per_cycle", &format!("must be at most {}, got {attempts}", u32::MAX)))?;
        config.gzip = gzip;
        config.import_credentials = import_credentials;
        config.project_id = project_id;
        let drop_callback: Arc<dyn groupscope::DropCallback> = drops.clone();
        config.on_drop = Some(drop_callback);

        // Opening a store runs SQLite on this thread, so it passes the fork gate like a
        // recording call.
        let core = gated(py, move || groupscope::Client::new(config)).into_py_result(py)?;

        let groups_var = py
            .import("contextvars")?
            .getattr("ContextVar")?
            .call1(("groupscope_request_groups",))?
            .unbind();
        let groups_var_get = groups_var.getattr(py, "get")?;
        let group_tokens_var = py
            .import("contextvars")?
            .getattr("ContextVar")?
            .call1(("groupscope_group_context_tokens",))?
            .unbind();
        let shared = Shared {
            drops,
            on_drop,
            groups_var,
            groups_var_get,
            groups_var_used: Arc::new(AtomicBool::new(false)),
            group_tokens_var,
            durable,
            non_finite_outside_track: AtomicU64::new(0),
            exited: AtomicBool::new(false),
            logged_call_after_exit: AtomicBool::new(false),
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
        event: &Bound<'_, PyAny>,
        properties: Option<&Bound<'_, PyAny>>,
        distinct_id: Option<&Bound<'_, PyAny>>,
        groups: Option<&Bound<'_, PyAny>>,
        time: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<String> {
        self.shared.forward_to_python(py);
        let (event, properties, options) = self.event_arguments(py, event, properties, distinct_id, groups, time)?;
        let core = &self.core;
        let result = self.shared.record(py, || core.track_encoded(&event, &properties, options));
        self.shared.ignore_after_exit(result).into_py_result(py)
    }

    /// Records an event for `/import`, which accepts events of any age, and returns its
    /// `$insert_id`.
    #[pyo3(signature = (event, properties = None, *, distinct_id = None, groups = None, time = None))]
    fn import_event(
        &self,
        py: Python<'_>,
        event: &Bound<'_, PyAny>,
        properties: Option<&Bound<'_, PyAny>>,
        distinct_id: Option<&Bound<'_, PyAny>>,
        groups: Option<&Bound<'_, PyAny>>,
        time: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<String> {
        self.shared.forward_to_python(py);
        let (event, properties, options) = self.event_arguments(py, event, properties, distinct_id, groups, time)?;
        let core = &self.core;
        let result = self.shared.record(py, || core.import_encoded(&event, &properties, options));
        self.shared.ignore_after_exit(result).into_py_result(py)
    }

    /// Sets the identity and persists it.
    fn identify(&self, py: Python<'_>, distinct_id: &Bound<'_, PyAny>) -> PyResult<()> {
        self.shared.forward_to_python(py);
        let distinct_id = str_argument(distinct_id, "distinct_id", "\"user-42\"")?;
        let core = &self.core;
        gated(py, || core.identify(&distinct_id)).into_py_result(py)
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
        gated(py, || match &ids {
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
        gated(py, || core.add_group(&key, &id)).into_py_result(py)
    }

    /// Removes one id from the group super property `key`.
    fn remove_group(&self, py: Python<'_>, key: &Bound<'_, PyString>, id: &Bound<'_, PyAny>) -> PyResult<()> {
        self.shared.forward_to_python(py);
        let key = convert::python_str(key);
        let id = Converter::new(py).value(&key, id)?;
        let core = &self.core;
        gated(py, || core.remove_group(&key, &id)).into_py_result(py)
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
        let core = {
            let _pass = fork_gate::enter(py);
            self.core.group(&key, &id).into_py_result(py)?
        };
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
            groups_var_used: self.shared.groups_var_used.clone(),
            tokens_var: self.shared.group_tokens_var.clone_ref(py),
            groups: checked.unbind(),
        })
    }

    /// Records a user-profile update for `/engage`: `operation` is the engage key (`"$set"`,
    /// `"$set_once"`, `"$add"`, `"$append"`, `"$union"`, `"$remove"`, `"$unset"` or
    /// `"$delete"`) and `value` its value.
    #[pyo3(signature = (distinct_id, operation, value = None))]
    fn engage(
        &self,
        py: Python<'_>,
        distinct_id: &Bound<'_, PyAny>,
        operation: &Bound<'_, PyAny>,
        value: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        self.shared.forward_to_python(py);
        let distinct_id = str_argument(distinct_id, "distinct_id", "\"user-42\"")?;
        let operation_key = str_argument(operation, "operation", "\"$set\"")?;
        let Some(operation) = ProfileOperation::from_key(&operation_key) else {
            let keys: Vec<&str> = ProfileOperation::ALL.iter().map(|operation| operation.key()).collect();
            return Err(invalid_argument(
                py,
                format!("invalid profile operation {operation_key:?}; pass one of {}", keys.join(", ")),
            ));
        };
        let mut converter = Converter::new(py);
        let value = match value {
            Some(value) => converter.value("value", value)?,
            None => Value::Null,
        };
        self.shared.count_non_finite(&converter, &format!("profile {}", operation.key()));
        let core = &self.core;
        let result = self.shared.record(py, || core.engage(&distinct_id, operation, value));
        self.shared.ignore_after_exit(result).into_py_result(py)
    }

    /// Registers super properties added to every later event.
    fn register(&self, py: Python<'_>, properties: &Bound<'_, PyAny>) -> PyResult<()> {
        self.shared.forward_to_python(py);
        let mut converter = Converter::new(py);
        let properties = converter.properties("properties", Some(properties))?;
        self.shared.count_non_finite(&converter, "register");
        let core = &self.core;
        gated(py, || core.register(properties)).into_py_result(py)
    }

    /// Removes one super property.
    fn unregister(&self, py: Python<'_>, name: &Bound<'_, PyString>) -> PyResult<()> {
        self.shared.forward_to_python(py);
        let name = convert::python_str(name);
        let core = &self.core;
        gated(py, || core.unregister(&name)).into_py_result(py)
    }

    /// Waits until everything recorded before this call was delivered or dropped, or `timeout`
    /// seconds passed. Returns whether everything was settled.
    #[pyo3(signature = (timeout = Timeout::DEFAULT))]
    fn flush(&self, py: Python<'_>, timeout: Timeout) -> PyResult<bool> {
        self.shared.forward_to_python(py);
        let timeout = timeout.0;
        let core = &self.core;
        let settled = blocking(py, || core.flush(timeout));
        self.shared.forward_to_python(py);
        Ok(settled)
    }

    /// Flushes, stops the worker and closes the store within `timeout` seconds. Idempotent.
    /// Returns whether everything was delivered.
    #[pyo3(signature = (timeout = Timeout::DEFAULT))]
    fn shutdown(&self, py: Python<'_>, timeout: Timeout) -> PyResult<bool> {
        self.shared.forward_to_python(py);
        let timeout = timeout.0;
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
        gated(py, || core.opt_in()).into_py_result(py)
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

    /// Parks the delivery worker at a safe point before `os.fork()`. The `before` fork hook
    /// calls it after it closed the fork gate. Returns whether the worker is parked, and the
    /// core logs a warning when it is not.
    fn _prepare_fork(&self, py: Python<'_>) -> bool {
        let core = &self.core;
        blocking(py, || core.prepare_fork())
    }

    /// Lets the parked delivery worker go on in the parent after `os.fork()`.
    fn _after_fork_in_parent(&self, py: Python<'_>) {
        let core = &self.core;
        blocking(py, || core.after_fork_in_parent());
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

    /// Shuts the client down from the interpreter's exit hook. Later recording calls are
    /// ignored, and dropping the client does not wait for the worker again.
    fn _shutdown_at_exit(&self, py: Python<'_>, timeout: Timeout) -> PyResult<bool> {
        self.shared.exited.store(true, Ordering::Release);
        self.shutdown(py, timeout)
    }

    /// Forwards queued log records and drop reports to Python now.
    fn _forward_to_python(&self, py: Python<'_>) {
        self.shared.forward_to_python(py);
    }
}

/// Reads the `names` argument of `unset`: one `str`, or an iterable of `str`.
fn unset_names(names: &Bound<'_, PyAny>) -> PyResult<Vec<String>> {
    if let Ok(name) = names.cast::<PyString>() {
        return Ok(vec![convert::python_str(name)]);
    }
    let type_error = |found: &Bound<'_, PyAny>| {
        let type_name = found.get_type().name().map(|name| name.to_string()).unwrap_or_default();
        pyo3::exceptions::PyTypeError::new_err(format!(
            "names must be a str or an iterable of str, got {type_name}; pass for example names=[\"plan\", \"seats\"]"
        ))
    };
    let Ok(iterator) = names.try_iter() else {
        return Err(type_error(names));
    };
    let mut collected = Vec::new();
    for name in iterator {
        let name = name?;
        match name.cast::<PyString>() {
            Ok(text) => collected.push(convert::python_str(text)),
            Err(_) => return Err(type_error(&name)),
        }
    }
    Ok(collected)
}

impl Client {
    /// Converts the arguments shared by `track` and `import_event`.
    fn event_arguments<'py>(
        &self,
        py: Python<'py>,
        event: &Bound<'py, PyAny>,
        properties: Option<&Bound<'py, PyAny>>,
        distinct_id: Option<&Bound<'py, PyAny>>,
        groups: Option<&Bound<'py, PyAny>>,
        time: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<(String, EncodedProperties, TrackOptions)> {
        let event = str_argument(event, "event", "\"Signed Up\"")?;
        let distinct_id = distinct_id
            .filter(|value| !value.is_none())
            .map(|value| str_argument(value, "distinct_id", "\"user-42\""))
            .transpose()?;
        let groups = groups
            .filter(|value| !value.is_none())
            .map(|value| dict_argument(value, "groups", "{\"company_id\": \"acme\"}"))
            .transpose()?;
        let mut converter = Converter::new(py);
        let properties = converter.encode_properties("properties", properties)?;
        let options = TrackOptions {
            distinct_id,
            groups: self.event_groups(py, &mut converter, groups)?,
            time: time.filter(|value| !value.is_none()).map(event_time).transpose()?,
            // The core counts and logs the non-finite numbers of the properties; the ones in
            // Decimal values and per-event group ids are counted here.
            non_finite_replaced: converter.non_finite_replaced(),
        };
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

        if self.shared.groups_var_used.load(Ordering::Acquire) {
            let scoped = self.shared.groups_var_get.bind(py).call1((py.None(),))?;
            if let Ok(scoped) = scoped.cast::<PyDict>() {
                add_event_groups(&mut merged, converter, scoped)?;
            }
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
    // A snapshot of the items, because converting an id can run Python code that changes the dict.
    for pair in groups.items().iter() {
        let (key, ids): (Bound<'py, PyAny>, Bound<'py, PyAny>) = pair.extract()?;
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

/// The `timeout` argument of `flush` and `shutdown`: a finite number of seconds >= 0.
struct Timeout(Duration);

impl Timeout {
    const DEFAULT: Timeout = Timeout(Duration::from_secs(10));
}

impl<'a, 'py> FromPyObject<'a, 'py> for Timeout {
    type Error = PyErr;

    fn extract(timeout: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        let py = timeout.py();
        let invalid = || {
            let value_repr = timeout.repr().map(|text| text.to_string()).unwrap_or_default();
            invalid_argument(py, format!("invalid timeout {value_repr}: pass a finite number of seconds >= 0"))
        };
        if timeout.cast::<PyBool>().is_ok() || (timeout.cast::<PyInt>().is_err() && timeout.cast::<PyFloat>().is_err()) {
            return Err(invalid());
        }
        let seconds: f64 = timeout.extract().map_err(|_| invalid())?;
        Duration::try_from_secs_f64(seconds).map(Timeout).map_err(|_| invalid())
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        // SAFETY: `drop` runs once, and no method can run after it, so `core` is not used again.
        let core = unsafe { ManuallyDrop::take(&mut self.core) };

        // After the exit hook's shutdown, the core's `Drop` would wait up to 1 s more for a
        // worker that is still in a request, past `exit_timeout`. The process is ending, so
        // the client is leaked instead.
        if self.shared.exited.load(Ordering::Acquire) {
            std::mem::forget(core);
            return;
        }

        // Dropping the last reference may join the worker thread. The interpreter is released
        // first, so other Python threads keep running during the join.
        Python::attach(|py| blocking(py, move || drop(core)));
    }
}

/// A context manager that adds groups to every event tracked inside it (`contextvars`-based,
/// so it is local to the current thread or asyncio task). Nested contexts merge, the inner
/// one winning per key.
///
/// The reset tokens live in a context variable, not in the object, so one object can be
/// entered again, nested, or shared by concurrent threads and asyncio tasks.
#[pyclass(module = "groupscope._native", name = "GroupContext", frozen)]
pub struct GroupContext {
    groups_var: Py<PyAny>,
    /// The client's `groups_var_used` (see `Shared`).
    groups_var_used: Arc<AtomicBool>,
    /// The client's `group_tokens_var` (see `Shared`).
    tokens_var: Py<PyAny>,
    groups: Py<PyDict>,
}

#[pymethods]
impl GroupContext {
    fn __enter__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, Self>> {
        let py = slf.py();
        let this = slf.get();
        this.groups_var_used.store(true, Ordering::Release);
        let var = this.groups_var.bind(py);
        let merged = PyDict::new(py);
        let current = var.call_method1("get", (py.None(),))?;
        if let Ok(current) = current.cast::<PyDict>() {
            merged.update(current.as_mapping())?;
        }
        merged.update(this.groups.bind(py).as_mapping())?;
        let token = var.call_method1("set", (merged,))?;

        let tokens_var = this.tokens_var.bind(py);
        let open = tokens_var.call_method1("get", (PyTuple::empty(py),))?;
        let entry = PyTuple::new(py, [slf.as_any().clone(), token])?;
        let open = open.add(PyTuple::new(py, [entry])?)?;
        tokens_var.call_method1("set", (open,))?;
        Ok(slf.clone())
    }

    fn __exit__(
        slf: &Bound<'_, Self>,
        _exc_type: Option<&Bound<'_, PyAny>>,
        _exc_value: Option<&Bound<'_, PyAny>>,
        _traceback: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        let py = slf.py();
        let this = slf.get();
        let tokens_var = this.tokens_var.bind(py);
        let open = tokens_var.call_method1("get", (PyTuple::empty(py),))?;
        let open = open.cast::<PyTuple>()?;

        // The innermost entry of this object in the current thread or task.
        let mut found = None;
        for (index, entry) in open.iter().enumerate().rev() {
            if entry.get_item(0)?.is(slf) {
                found = Some((index, entry.get_item(1)?));
                break;
            }
        }
        let Some((index, token)) = found else {
            return Err(pyo3::exceptions::PyRuntimeError::new_err(
                "this GroupContext is not open in the current thread or asyncio task; exit it in the thread or task that entered it",
            ));
        };

        // A task created inside the block inherits the entry, but its token belongs to the
        // context of the task that entered, so `reset` raises `ValueError` there.
        if let Err(error) = this.groups_var.bind(py).call_method1("reset", (token,)) {
            if error.is_instance_of::<pyo3::exceptions::PyValueError>(py) {
                return Err(pyo3::exceptions::PyRuntimeError::new_err(
                    "this GroupContext was entered in another thread or asyncio task; exit it in the thread or task that entered it",
                ));
            }
            return Err(error);
        }
        let remaining = PyList::empty(py);
        for (position, entry) in open.iter().enumerate() {
            if position != index {
                remaining.append(entry)?;
            }
        }
        tokens_var.call_method1("set", (PyTuple::new(py, remaining)?,))?;
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
        let result = self.shared.record(py, || core.set(properties));
        self.shared.ignore_after_exit(result).into_py_result(py)
    }

    /// Sets only the properties not yet present (`$set_once`).
    fn set_once(&self, py: Python<'_>, properties: &Bound<'_, PyAny>) -> PyResult<()> {
        let properties = self.profile_properties(py, properties, "set_once")?;
        let core = &self.core;
        let result = self.shared.record(py, || core.set_once(properties));
        self.shared.ignore_after_exit(result).into_py_result(py)
    }

    /// Deletes the named properties (`$unset`); `names` is one name or an iterable of names.
    fn unset(&self, py: Python<'_>, names: &Bound<'_, PyAny>) -> PyResult<()> {
        self.shared.forward_to_python(py);
        let names = unset_names(names)?;
        let core = &self.core;
        let result = self.shared.record(py, || core.unset(names));
        self.shared.ignore_after_exit(result).into_py_result(py)
    }

    /// Adds values to list properties, each value kept once (`$union`).
    fn union(&self, py: Python<'_>, values: &Bound<'_, PyAny>) -> PyResult<()> {
        let values = self.profile_properties(py, values, "union")?;
        let core = &self.core;
        let result = self.shared.record(py, || core.union(values));
        self.shared.ignore_after_exit(result).into_py_result(py)
    }

    /// Removes one value from each named list property (`$remove`).
    fn remove(&self, py: Python<'_>, values: &Bound<'_, PyAny>) -> PyResult<()> {
        let values = self.profile_properties(py, values, "remove")?;
        let core = &self.core;
        let result = self.shared.record(py, || core.remove(values));
        self.shared.ignore_after_exit(result).into_py_result(py)
    }

    /// Deletes the whole group profile (`$delete`).
    fn delete(&self, py: Python<'_>) -> PyResult<()> {
        self.shared.forward_to_python(py);
        let core = &self.core;
        let result = self.shared.record(py, || core.delete());
        self.shared.ignore_after_exit(result).into_py_result(py)
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
