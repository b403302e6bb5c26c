//! [`Completion`]: what the driver made of a message, for the layers that report it.

use std::sync::{Arc, Mutex, PoisonError};

use crate::Outcome;

/// What became of a message, as the driver decided it (after classifying an error or a
/// panic of the service).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Completed {
    /// The message's outcome; `failure` is the text of the service's error or panic, if
    /// it failed.
    Outcome {
        /// What the source does with the message.
        outcome: Outcome,
        /// The text of the error or panic the outcome was classified from.
        failure: Option<String>,
    },
    /// The message's future was dropped before it finished (its task aborted).
    Dropped,
}

type Waiter = Box<dyn FnOnce(&Completed) + Send>;

#[derive(Default)]
struct State {
    completed: Option<Completed>,
    waiting: Vec<Waiter>,
}

/// A handle a layer finds in the context of a [`Message`](crate::Message) the
/// [`Driver`](super::Driver) dispatches while [telemetry](crate::telemetry::enabled) is on:
/// it tells what the driver made of the message once the service has answered, failed or
/// panicked. The service's error or panic is classified by the driver, *outside* every
/// layer, so a layer that reports the message's outcome (a telemetry span) waits for it here.
///
/// ```
/// use tomodachi_core::driver::Completion;
///
/// let completion = Completion::default();
/// completion.on_complete(|completed| println!("{completed:?}"));
/// ```
#[derive(Clone, Default)]
pub struct Completion(Arc<Mutex<State>>);

impl std::fmt::Debug for Completion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        f.debug_struct("Completion")
            .field("completed", &state.completed)
            .finish_non_exhaustive()
    }
}

impl Completion {
    /// Calls `then` with what became of the message: at once if the driver has decided,
    /// when it does otherwise.
    pub fn on_complete(&self, then: impl FnOnce(&Completed) + Send + 'static) {
        let mut state = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        match state.completed.clone() {
            Some(completed) => {
                drop(state);
                then(&completed);
            }
            None => state.waiting.push(Box::new(then)),
        }
    }

    /// Records what became of the message (the first call counts) and tells the waiters.
    pub(super) fn complete(&self, completed: Completed) {
        let waiting = {
            let mut state = self.0.lock().unwrap_or_else(PoisonError::into_inner);
            if state.completed.is_some() {
                return;
            }
            state.completed = Some(completed.clone());
            std::mem::take(&mut state.waiting)
        };
        for then in waiting {
            then(&completed);
        }
    }
}
