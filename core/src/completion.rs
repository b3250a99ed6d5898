//! A one-shot boolean result that threads can wait for and futures can poll.
//!
//! The worker completes one when a flush or shutdown settles; callers block on it with a
//! timeout, or await it through [`CompletionFuture`] without blocking a runtime thread.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

#[derive(Default)]
struct Slot {
    result: Option<bool>,
    wakers: Vec<Waker>,
}

/// A boolean set once; later sets are ignored.
#[derive(Default)]
pub(crate) struct Completion {
    slot: Mutex<Slot>,
    ready: Condvar,
}

impl Completion {
    /// Creates an unset completion.
    pub(crate) fn new() -> Arc<Completion> {
        Arc::new(Completion::default())
    }

    /// Sets the result unless it is set, and wakes every waiter.
    pub(crate) fn complete(&self, result: bool) {
        let wakers = {
            let mut slot = self.slot.lock().unwrap_or_else(PoisonError::into_inner);
            if slot.result.is_some() {
                return;
            }
            slot.result = Some(result);
            std::mem::take(&mut slot.wakers)
        };
        self.ready.notify_all();
        for waker in wakers {
            waker.wake();
        }
    }

    /// Returns the result if it is set.
    pub(crate) fn result(&self) -> Option<bool> {
        self.slot
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .result
    }

    /// Blocks until the result is set or `timeout` passed. Returns `None` on timeout.
    pub(crate) fn wait(&self, timeout: Duration) -> Option<bool> {
        let deadline = Instant::now().checked_add(timeout);
        let mut slot = self.slot.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if let Some(result) = slot.result {
                return Some(result);
            }
            let remaining = match deadline {
                Some(deadline) => deadline.checked_duration_since(Instant::now())?,
                None => Duration::from_secs(3600),
            };
            if remaining.is_zero() {
                return None;
            }
            slot = self
                .ready
                .wait_timeout(slot, remaining)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

/// A future that resolves to a [`Completion`]'s result.
pub(crate) struct CompletionFuture(pub(crate) Arc<Completion>);

impl Future for CompletionFuture {
    type Output = bool;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<bool> {
        let mut slot = self.0.slot.lock().unwrap_or_else(PoisonError::into_inner);
        match slot.result {
            Some(result) => Poll::Ready(result),
            None => {
                if !slot.wakers.iter().any(|waker| waker.will_wake(cx.waker())) {
                    slot.wakers.push(cx.waker().clone());
                }
                Poll::Pending
            }
        }
    }
}

/// Runs `work` on a helper thread and returns a future of its result, so an async caller never
/// blocks its runtime thread. If the thread cannot be started the future resolves to `false`.
pub(crate) fn run_blocking(
    name: &str,
    work: impl FnOnce() -> bool + Send + 'static,
) -> CompletionFuture {
    let completion = Completion::new();
    let done = completion.clone();
    let spawned = std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            let result = work();
            done.complete(result);
        });
    if let Err(error) = spawned {
        log::warn!("Could not start the {name} thread: {error}; the future resolves to false");
        completion.complete(false);
    }
    CompletionFuture(completion)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_result_wins() {
        let completion = Completion::new();
        completion.complete(true);
        completion.complete(false);
        assert_eq!(completion.wait(Duration::ZERO), Some(true));
    }

    #[test]
    fn wait_times_out_when_unset() {
        let completion = Completion::new();
        assert_eq!(completion.wait(Duration::from_millis(10)), None);
    }
}
