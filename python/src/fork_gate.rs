//! A gate that keeps core calls away from the instant of `fork()`.
//!
//! A recording call holds the core's state lock, and with a `data_dir` the SQLite connection,
//! while it runs. `fork()` copies a held lock into the child, where no thread releases it, so
//! the child's first call would deadlock. Every binding call that takes those locks, and
//! client creation, which opens the store, passes the gate. The `os.register_at_fork` hooks
//! close the gate before a fork, waiting for the calls in flight to leave, and open it again in
//! the parent and the child.
//!
//! The gate covers caller threads only. The `before` hook then calls the core's
//! `prepare_fork` on every live client, which parks the client's delivery worker outside
//! SQLite, and the `after_in_parent` hook resumes the workers before it opens the gate.
//!
//! NOTE: `flush`, `shutdown` and `opt_out` do not pass the gate, because they can wait for
//! seconds and would delay the fork. They take the state lock only for a moment.

use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

use pyo3::Python;

struct GateState {
    closed: bool,
    /// Calls between `enter` and the drop of their `Pass`.
    active: usize,
}

static STATE: Mutex<GateState> = Mutex::new(GateState { closed: false, active: 0 });
static CHANGED: Condvar = Condvar::new();

fn state() -> MutexGuard<'static, GateState> {
    STATE.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Permission to call the core; leaves the gate when dropped.
pub struct Pass(());

impl Drop for Pass {
    fn drop(&mut self) {
        let mut state = state();
        state.active -= 1;
        // Only a closing gate waits for the count to reach zero; notifying otherwise would
        // cost every recording call a system call.
        if state.active == 0 && state.closed {
            CHANGED.notify_all();
        }
    }
}

/// Enters the gate from a thread attached to the interpreter. Waits only while a fork is in
/// progress, and then with the interpreter released, because the forking thread needs it.
pub fn enter(py: Python<'_>) -> Pass {
    {
        let mut state = state();
        if !state.closed {
            state.active += 1;
            return Pass(());
        }
    }
    py.detach(enter_detached)
}

/// Enters the gate from a thread that released the interpreter.
pub fn enter_detached() -> Pass {
    let mut state = state();
    while state.closed {
        state = CHANGED.wait(state).unwrap_or_else(PoisonError::into_inner);
    }
    state.active += 1;
    Pass(())
}

/// Closes the gate and waits until no call is inside; called before `fork()`.
pub fn close(py: Python<'_>) {
    py.detach(|| {
        let mut state = state();
        state.closed = true;
        while state.active > 0 {
            state = CHANGED.wait(state).unwrap_or_else(PoisonError::into_inner);
        }
    });
}

/// Opens the gate in the parent after `fork()`.
pub fn open() {
    let mut state = state();
    state.closed = false;
    CHANGED.notify_all();
}

/// Opens the gate in the child after `fork()`, where only the forking thread exists.
pub fn reset_in_child() {
    let mut state = state();
    state.closed = false;
    state.active = 0;
}
