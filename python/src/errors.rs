//! The mapping from [`groupscope::Error`] to the Python exception hierarchy.
//!
//! The exception classes are defined in `groupscope/errors.py` because several of them have
//! two bases (for example `InvalidPropertyError` is both a `GroupscopeError` and a
//! `ValueError`). This file is the only place that chooses a class for a core error.

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyType;

/// The Python module that defines the exception classes.
const ERRORS_MODULE: &str = "groupscope.errors";

/// Imports the exception class `name` from `groupscope.errors`, once per process.
fn exception_class<'py>(py: Python<'py>, cache: &'static PyOnceLock<Py<PyType>>, name: &str) -> PyResult<&'py Bound<'py, PyType>> {
    cache.import(py, ERRORS_MODULE, name)
}

/// Builds a Python exception of class `name` with `message`.
fn raise(py: Python<'_>, cache: &'static PyOnceLock<Py<PyType>>, name: &str, message: String) -> PyErr {
    match exception_class(py, cache, name) {
        Ok(class) => PyErr::from_type(class.clone(), message),
        Err(import_error) => import_error,
    }
}

macro_rules! exception_classes {
    ($($cache:ident => $name:literal),* $(,)?) => {
        $(static $cache: PyOnceLock<Py<PyType>> = PyOnceLock::new();)*
    };
}

exception_classes! {
    GROUPSCOPE_ERROR => "GroupscopeError",
    INVALID_CONFIG_ERROR => "InvalidConfigError",
    INVALID_EVENT_NAME_ERROR => "InvalidEventNameError",
    INVALID_PROPERTY_ERROR => "InvalidPropertyError",
    INVALID_GROUP_KEY_ERROR => "InvalidGroupKeyError",
    INVALID_GROUP_ID_ERROR => "InvalidGroupIdError",
    INVALID_DISTINCT_ID_ERROR => "InvalidDistinctIdError",
    INVALID_TIME_ERROR => "InvalidTimeError",
    STORAGE_ERROR => "StorageError",
    SHUT_DOWN_ERROR => "ShutDownError",
    UNSUPPORTED_VALUE_ERROR => "UnsupportedValueError",
    INVALID_ARGUMENT_ERROR => "InvalidArgumentError",
}

/// Converts a core error into the matching Python exception.
///
/// `groupscope::Error` is `#[non_exhaustive]`, so a variant added to the core later maps to
/// the base class `GroupscopeError` with the core's message until it gets its own class here.
pub fn to_py_err(py: Python<'_>, error: groupscope::Error) -> PyErr {
    use groupscope::Error;

    let message = error.to_string();
    match error {
        Error::InvalidConfig { .. } => raise(py, &INVALID_CONFIG_ERROR, "InvalidConfigError", message),
        Error::InvalidEventName { .. } => raise(py, &INVALID_EVENT_NAME_ERROR, "InvalidEventNameError", message),
        Error::InvalidProperty { .. } => raise(py, &INVALID_PROPERTY_ERROR, "InvalidPropertyError", message),
        Error::InvalidGroupKey { .. } => raise(py, &INVALID_GROUP_KEY_ERROR, "InvalidGroupKeyError", message),
        Error::InvalidGroupId { .. } => raise(py, &INVALID_GROUP_ID_ERROR, "InvalidGroupIdError", message),
        Error::InvalidDistinctId { .. } => raise(py, &INVALID_DISTINCT_ID_ERROR, "InvalidDistinctIdError", message),
        Error::InvalidTime { .. } => raise(py, &INVALID_TIME_ERROR, "InvalidTimeError", message),
        Error::Storage { .. } => raise(py, &STORAGE_ERROR, "StorageError", message),
        Error::ShutDown => raise(py, &SHUT_DOWN_ERROR, "ShutDownError", message),
        _ => raise(py, &GROUPSCOPE_ERROR, "GroupscopeError", message),
    }
}

/// Builds the `InvalidConfigError` for a constructor argument the binding checks itself.
pub fn invalid_config(py: Python<'_>, argument: &str, reason: &str) -> PyErr {
    let message = format!("invalid configuration: {argument} {reason}");
    raise(py, &INVALID_CONFIG_ERROR, "InvalidConfigError", message)
}

/// Builds the `InvalidArgumentError` (a `ValueError`) for a method argument outside its range.
pub fn invalid_argument(py: Python<'_>, message: String) -> PyErr {
    raise(py, &INVALID_ARGUMENT_ERROR, "InvalidArgumentError", message)
}

/// Builds the `UnsupportedValueError` (a `TypeError`) for a value that has no JSON form.
pub fn unsupported_value(py: Python<'_>, message: String) -> PyErr {
    match exception_class(py, &UNSUPPORTED_VALUE_ERROR, "UnsupportedValueError") {
        Ok(class) => PyErr::from_type(class.clone(), message),
        Err(_) => PyTypeError::new_err(message),
    }
}

/// Extension for turning core results into Python results.
pub trait IntoPyResult<T> {
    /// Maps the error with [`to_py_err`].
    fn into_py_result(self, py: Python<'_>) -> PyResult<T>;
}

impl<T> IntoPyResult<T> for Result<T, groupscope::Error> {
    fn into_py_result(self, py: Python<'_>) -> PyResult<T> {
        self.map_err(|error| to_py_err(py, error))
    }
}
