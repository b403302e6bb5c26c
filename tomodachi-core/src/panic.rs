//! Handler panics: caught, told with their message and source location.
//!
//! A transport catches a handler's panic with [`catch_unwind`] (or the [`CatchUnwind`]
//! future) and logs one record for it. A process panic hook (the facade installs one
//! with `--logger json`) calls [`report_to_catcher`] first: inside those, the hook prints
//! nothing and keeps the panic's `file:line` for the catcher, which reads it with
//! [`location`]; outside them (a panic nobody catches) the hook reports it itself. So a
//! panic is one log record, never Rust's default lines beside it.
//!
//! ```
//! use tomodachi_core::panic;
//!
//! let caught = panic::catch_unwind(|| -> u32 { panic!("boom") }).unwrap_err();
//! assert_eq!(panic::message(&*caught), "boom");
//! ```

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::future::Future;
use std::panic::{PanicHookInfo, UnwindSafe};
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;

thread_local! {
    /// How many catching scopes of this crate the thread is in.
    static CATCHING: Cell<u32> = const { Cell::new(0) };
    /// The location of the last panic a catching scope of this thread caught.
    static LOCATION: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Counts a catching scope while it lives.
struct Scope;

impl Scope {
    fn enter() -> Self {
        CATCHING.with(|depth| depth.set(depth.get() + 1));
        Scope
    }
}

impl Drop for Scope {
    fn drop(&mut self) {
        CATCHING.with(|depth| depth.set(depth.get().saturating_sub(1)));
    }
}

/// [`std::panic::catch_unwind`], telling the panic hook that the panic is caught and
/// reported here.
pub fn catch_unwind<R>(f: impl FnOnce() -> R + UnwindSafe) -> std::thread::Result<R> {
    let _scope = Scope::enter();
    std::panic::catch_unwind(f)
}

pin_project! {
    /// Polls a future and catches its panics (as `futures_util`'s `CatchUnwind`), telling
    /// the panic hook that they are caught and reported by the caller.
    #[derive(Debug)]
    #[must_use = "futures do nothing unless polled"]
    pub struct CatchUnwind<F> {
        #[pin]
        inner: F,
    }
}

impl<F: Future + UnwindSafe> CatchUnwind<F> {
    /// Catches the panics of `inner`.
    pub fn new(inner: F) -> Self {
        Self { inner }
    }
}

impl<F: Future + UnwindSafe> Future for CatchUnwind<F> {
    type Output = std::thread::Result<F::Output>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = self.project().inner;
        match catch_unwind(std::panic::AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(output)) => Poll::Ready(Ok(output)),
            Err(panic) => Poll::Ready(Err(panic)),
        }
    }
}

/// The text of a panic payload (`panic!("...")`'s message, literal or formatted), or
/// `"panic with a non-string payload"`: the one place the workspace turns a caught panic
/// into words.
pub fn message(payload: &(dyn Any + Send)) -> &str {
    if let Some(message) = payload.downcast_ref::<&'static str>() {
        message
    } else if let Some(message) = payload.downcast_ref::<String>() {
        message
    } else {
        "panic with a non-string payload"
    }
}

/// The `file:line` of the panic this thread caught last, if a panic hook kept it (see
/// [`report_to_catcher`]). Taken: a second call returns `None`.
pub fn location() -> Option<String> {
    LOCATION.with(|location| location.borrow_mut().take())
}

/// For a process panic hook: when the panic happens inside [`catch_unwind`] or
/// [`CatchUnwind`], keeps its `file:line` for the catcher's record and returns `true`
/// (the hook should print nothing); else returns `false` (nobody will report it: the hook
/// should).
pub fn report_to_catcher(info: &PanicHookInfo<'_>) -> bool {
    if CATCHING.with(Cell::get) == 0 {
        return false;
    }
    LOCATION.with(|slot| *slot.borrow_mut() = hook_location(info));
    true
}

/// The `file:line` of a panic, for a hook that reports it itself.
pub fn hook_location(info: &PanicHookInfo<'_>) -> Option<String> {
    info.location()
        .map(|location| format!("{}:{}", location.file(), location.line()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hook_hands_caught_panics_to_the_catcher() {
        let handed = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let seen = handed.clone();
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            seen.store(report_to_catcher(info), std::sync::atomic::Ordering::SeqCst);
        }));
        let caught = catch_unwind(|| -> () { panic!("caught {}", 7) });
        std::panic::set_hook(previous);
        assert_eq!(message(&*caught.unwrap_err()), "caught 7");
        assert!(handed.load(std::sync::atomic::Ordering::SeqCst));
        let location = location().unwrap();
        assert!(
            location.starts_with("tomodachi-core/src/panic.rs:"),
            "{location}"
        );
        assert_eq!(super::location(), None);
    }

    #[test]
    fn a_payload_that_is_not_text_is_named_as_such() {
        let caught = catch_unwind(|| std::panic::panic_any(7_u32)).unwrap_err();
        assert_eq!(message(&*caught), "panic with a non-string payload");
    }
}
