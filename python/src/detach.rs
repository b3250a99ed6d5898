//! The one place where a call releases the interpreter.
//!
//! Every binding method that can wait (on the delivery worker, on the network or on the
//! store) goes through [`blocking`], so other Python threads keep running meanwhile and no
//! method can forget to release the interpreter.

use pyo3::Python;
use pyo3::marker::Ungil;

/// Runs `work` with the interpreter released and returns its result.
///
/// `work` must not touch Python objects; the `Ungil` bound makes the compiler check that no
/// Python reference moves into it.
pub fn blocking<T, F>(py: Python<'_>, work: F) -> T
where
    F: Ungil + FnOnce() -> T,
    T: Ungil,
{
    py.detach(work)
}
