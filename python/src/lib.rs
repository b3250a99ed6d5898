//! `groupscope._native`: the pyo3 binding of the groupscope core.
//!
//! The public Python package `groupscope` wraps this module. The binding keeps three rules:
//!
//! - Every call that can wait releases the interpreter through [`detach::blocking`].
//! - No thread of the core ever attaches to Python. Log records ([`logging`]) and drop
//!   reports ([`drops`]) are queued, and threads that already hold the interpreter forward them.
//! - The last reference to a core client is dropped with the interpreter released.

mod client;
mod convert;
mod detach;
mod drops;
mod errors;
mod fork_gate;
mod logging;
mod stats;
mod utf8;

use pyo3::prelude::*;

/// Records are allocated on the caller's thread and freed on the worker's. glibc's allocator
/// takes the owning arena's lock for such a free, so the caller waits on it, while jemalloc
/// batches those frees in per-thread caches. jemalloc also takes its locks around `fork()`
/// (`pthread_atfork`), so a child never inherits one that the worker held.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// The Python module `groupscope._native`.
#[pymodule]
fn _native(module: &Bound<'_, PyModule>) -> PyResult<()> {
    logging::install();

    module.add_class::<client::Client>()?;
    module.add_class::<client::GroupHandle>()?;
    module.add_class::<client::GroupContext>()?;
    module.add_class::<drops::DropReport>()?;
    module.add_class::<stats::Stats>()?;
    module.add("LIB_VERSION", groupscope::LIB_VERSION)?;
    module.add_function(wrap_pyfunction!(forward_logs, module)?)?;
    module.add_function(wrap_pyfunction!(sync_log_level, module)?)?;
    module.add_function(wrap_pyfunction!(discard_logs, module)?)?;
    module.add_function(wrap_pyfunction!(close_fork_gate, module)?)?;
    module.add_function(wrap_pyfunction!(open_fork_gate, module)?)?;
    module.add_function(wrap_pyfunction!(reset_fork_gate, module)?)?;
    Ok(())
}

/// Waits until no thread is inside a core call and keeps new calls out. It is the first step
/// of the `before` hook of `os.register_at_fork`, which then parks every client's worker.
#[pyfunction]
fn close_fork_gate(py: Python<'_>) {
    fork_gate::close(py);
}

/// Lets core calls in again. It is the last step of the `after_in_parent` hook of
/// `os.register_at_fork`, after the hook resumed every client's worker.
#[pyfunction]
fn open_fork_gate() {
    fork_gate::open();
}

/// Lets core calls in again in the child; the first step of the `after_in_child` hook.
#[pyfunction]
fn reset_fork_gate() {
    fork_gate::reset_in_child();
}

/// Drops the core's queued log records without emitting them; used in a child after `fork()`.
#[pyfunction]
fn discard_logs() {
    logging::discard_pending();
}

/// Forwards the core's queued log records to the `groupscope` Python logger now.
#[pyfunction]
fn forward_logs(py: Python<'_>) {
    logging::forward_pending(py);
}

/// Reads the effective level of the `groupscope` Python logger again, so the core formats
/// only records that Python keeps. Call it after changing that logger's level.
#[pyfunction]
fn sync_log_level(py: Python<'_>) -> PyResult<()> {
    logging::sync_level(py)
}
