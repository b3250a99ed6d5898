//! The fork gate: parks the delivery worker at a safe point while the process forks.
//!
//! `fork()` copies only the forking thread into the child. Any lock another thread holds at
//! that instant stays held in the child forever. The worker holds SQLite's process-wide mutexes
//! (the memory allocator mutex among them) and its own connection's locks while it runs a
//! statement, so a child that forks at the wrong moment blocks when it opens a new connection.
//!
//! The worker is *busy* from the moment it starts until it stops, except while it waits: on the
//! command channel, in a sleep, or on an HTTP request. A waiting worker holds none of those
//! locks. [`ForkGate::close`] keeps the worker from becoming busy again and waits until it is
//! not busy, so a fork that follows finds it at a safe point. [`ForkGate::open`] lets it go on.
//! Entering and leaving the gate costs one uncontended mutex lock when no fork is in progress.
//!
//! Locks that the HTTP client takes during a request belong to the parent's transport, which
//! the child never uses: the child builds a new worker with a new transport.
//!
//! NOTE: a fork while the worker resolves a host name relies on the C library's own fork
//! handling of its resolver locks. The tests fork only with a numeric loopback address.

use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// Whether the worker is busy and whether a fork is in progress.
#[derive(Debug, Default)]
struct GateState {
    /// Set by [`ForkGate::close`] and cleared by [`ForkGate::open`].
    closed: bool,
    /// Set while the worker runs outside a wait.
    busy: bool,
}

/// The gate between one client's delivery worker and a thread that forks the process.
#[derive(Debug, Default)]
pub(crate) struct ForkGate {
    state: Mutex<GateState>,
    changed: Condvar,
}

/// Marks the worker busy until dropped, also when the worker thread panics.
pub(crate) struct Busy<'a> {
    gate: &'a ForkGate,
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.gate.leave();
    }
}

impl ForkGate {
    fn state(&self) -> MutexGuard<'_, GateState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Marks the worker busy for the lifetime of the returned guard. Waits while the gate is
    /// closed.
    pub(crate) fn enter_busy(&self) -> Busy<'_> {
        self.enter();
        Busy { gate: self }
    }

    /// Runs `wait`, a blocking wait that holds no storage lock, with the worker not busy, and
    /// marks the worker busy again once it returns. Called only by a busy worker.
    pub(crate) fn wait_outside<T>(&self, wait: impl FnOnce() -> T) -> T {
        self.leave();
        let result = wait();
        self.enter();
        result
    }

    fn enter(&self) {
        let mut state = self.state();
        while state.closed {
            state = self
                .changed
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
        state.busy = true;
    }

    fn leave(&self) {
        let mut state = self.state();
        state.busy = false;
        if state.closed {
            self.changed.notify_all();
        }
    }

    /// Closes the gate and waits up to `timeout` until the worker is not busy. Returns whether
    /// it is parked. The gate stays closed either way until [`ForkGate::open`].
    pub(crate) fn close(&self, timeout: Duration) -> bool {
        let deadline = Instant::now().checked_add(timeout);
        let mut state = self.state();
        state.closed = true;
        while state.busy {
            let left = match deadline {
                Some(deadline) => deadline.saturating_duration_since(Instant::now()),
                None => Duration::MAX,
            };
            if left.is_zero() {
                return false;
            }
            state = self
                .changed
                .wait_timeout(state, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        true
    }

    /// Opens the gate, so a worker parked by [`ForkGate::close`] goes on.
    pub(crate) fn open(&self) {
        let mut state = self.state();
        state.closed = false;
        self.changed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[test]
    fn close_returns_at_once_without_busy_worker() {
        let gate = ForkGate::default();

        assert!(gate.close(Duration::ZERO));
        gate.open();
    }

    #[test]
    fn close_times_out_while_worker_stays_busy() {
        let gate = ForkGate::default();
        let busy = gate.enter_busy();

        assert!(!gate.close(Duration::from_millis(50)));
        drop(busy);
        assert!(gate.close(Duration::ZERO));
    }

    #[test]
    fn closed_gate_parks_worker_until_open() {
        let gate = Arc::new(ForkGate::default());
        let (wait_started, started) = crossbeam_channel::bounded(0);
        let (release_wait, released) = crossbeam_channel::bounded::<()>(0);
        let steps_after_wait = Arc::new(AtomicUsize::new(0));

        let worker = {
            let gate = gate.clone();
            let steps_after_wait = steps_after_wait.clone();
            std::thread::spawn(move || {
                let _busy = gate.enter_busy();
                gate.wait_outside(|| {
                    wait_started.send(()).unwrap();
                    released.recv().unwrap();
                });
                steps_after_wait.fetch_add(1, Ordering::SeqCst);
            })
        };

        started.recv().unwrap();
        assert!(
            gate.close(Duration::from_secs(60)),
            "a worker inside a wait must count as parked"
        );
        release_wait.send(()).unwrap();
        // The wait ended, but the closed gate keeps the worker from its next step.
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(steps_after_wait.load(Ordering::SeqCst), 0);

        gate.open();
        worker.join().unwrap();
        assert_eq!(steps_after_wait.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn finished_worker_counts_as_parked() {
        let gate = Arc::new(ForkGate::default());
        let worker = {
            let gate = gate.clone();
            std::thread::spawn(move || {
                let _busy = gate.enter_busy();
                panic!("worker failed");
            })
        };

        assert!(worker.join().is_err());
        assert!(gate.close(Duration::ZERO));
    }
}
