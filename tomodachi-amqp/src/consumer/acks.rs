//! Coalesced acks: one `basic.ack` with `multiple` for a run of completed deliveries.
//!
//! A channel's delivery tags grow by one per delivery. `basic.ack(N, multiple = true)` acks
//! every delivery of the channel up to `N` that is still outstanding (AMQP 0-9-1, and
//! RabbitMQ: a delivery already nacked or rejected is not outstanding, so it is untouched).
//! So this module keeps, per channel, the deliveries handed to handlers and not yet settled
//! on the broker, in tag order, and acks the run of completed ones at their front with one
//! frame, once `batch` completions wait or `delay` has passed since one started waiting.
//!
//! - A delivery whose handler still runs is never covered: the multiple ack stops before
//!   the first unfinished tag. Completions behind an unfinished one are acked singly when
//!   the delay passes or when `batch` of them wait, so a slow handler never holds the
//!   prefetch window.
//! - Nacks and rejects go out singly, and the tag counts as settled only once its frame
//!   has been sent; every frame goes out under one lock, in the order it was decided, so a
//!   later multiple ack never passes a nack still on its way.
//! - A channel that closes or recovers starts a new epoch: completions of the old one are
//!   dropped (the broker redelivers those deliveries; a recovered channel numbers from 1).
//!
//! What a crash costs: deliveries completed and not yet acked (fewer than `batch`, or the
//! completions of one `delay`; never more than the prefetch) are delivered again.
//!
//! Measured (bench/amqp, BENCHMARKS.md): RabbitMQ spends most of a consumer's broker CPU
//! per ack frame; one frame per 32 deliveries is what moves the consumer past bare lapin.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures_util::future::join_all;
use lapin::Acker;
use lapin::options::BasicAckOptions;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// The coalescing acks of one channel (see the [module docs](self)).
#[derive(Debug)]
pub(super) struct Acks {
    inner: Arc<Inner>,
    timer: JoinHandle<()>,
}

/// What a delivery's settler keeps: the channel's acks and the epoch it was delivered in.
#[derive(Debug, Clone)]
pub(super) struct Ticket {
    inner: Arc<Inner>,
    epoch: u64,
}

#[derive(Debug)]
struct Inner {
    batch: usize,
    delay: Duration,
    state: Mutex<State>,
    /// Held while a frame is decided and sent: frames go out in the order they were decided.
    send: tokio::sync::Mutex<()>,
    /// A completion started waiting: the timer starts its delay.
    waiting: Notify,
}

#[derive(Debug, Default)]
struct State {
    epoch: u64,
    last_tag: u64,
    /// Deliveries handed to handlers and not settled on the broker, in tag order; `Some`
    /// once completed (the acker to ack it with).
    open: VecDeque<(u64, Option<Acker>)>,
    /// How many of `open` are completed.
    completed: usize,
    /// A flush for a full batch is on its way.
    flushing: bool,
}

impl Acks {
    /// Acks of one channel: at most `batch` completions wait (`batch` ≥ 2), none longer
    /// than about `delay`.
    pub(super) fn new(batch: usize, delay: Duration) -> Self {
        let inner = Arc::new(Inner {
            batch,
            delay,
            state: Mutex::new(State::default()),
            send: tokio::sync::Mutex::new(()),
            waiting: Notify::new(),
        });
        let timer = tokio::spawn({
            let inner = inner.clone();
            async move {
                loop {
                    inner.waiting.notified().await;
                    tokio::time::sleep(inner.delay).await;
                    inner.flush(true).await;
                }
            }
        });
        Self { inner, timer }
    }

    /// A delivery with `tag` goes to its handler. A tag not above the last one means the
    /// channel was opened again (recovery): a new epoch.
    pub(super) fn open(&self, tag: u64) -> Ticket {
        let mut state = self.inner.lock();
        if tag <= state.last_tag {
            state.reset();
        }
        state.last_tag = tag;
        state.open.push_back((tag, None));
        Ticket {
            inner: self.inner.clone(),
            epoch: state.epoch,
        }
    }

    /// The channel failed: what was delivered on it will be delivered again.
    pub(super) fn reset(&self) {
        self.inner.lock().reset();
    }

    /// Acks every completion now (before the channel closes).
    pub(super) async fn flush(&self) {
        self.inner.flush(true).await;
    }
}

impl Drop for Acks {
    fn drop(&mut self) {
        self.timer.abort();
    }
}

impl State {
    fn reset(&mut self) {
        self.epoch += 1;
        self.last_tag = 0;
        self.open.clear();
        self.completed = 0;
    }

    fn position(&self, tag: u64) -> Option<usize> {
        self.open.binary_search_by_key(&tag, |(t, _)| *t).ok()
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding it; a poisoned lock still holds consistent state.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Sends the acks due: the completed run at the front with one multiple ack; with
    /// `all` (or when a full batch waits behind an unfinished delivery) the completions
    /// behind it singly.
    async fn flush(&self, all: bool) {
        let _sending = self.send.lock().await;
        let (front, singles) = {
            let mut state = self.lock();
            state.flushing = false;
            let mut front = None;
            while let Some((_, Some(_))) = state.open.front() {
                if let Some((tag, acker)) = state.open.pop_front() {
                    front = acker.map(|acker| (tag, acker));
                    state.completed -= 1;
                }
            }
            let mut singles = Vec::new();
            if state.completed > 0 && (all || state.completed >= self.batch) {
                singles.reserve(state.completed);
                state.open.retain_mut(|(tag, acker)| match acker.take() {
                    Some(acker) => {
                        singles.push((*tag, acker));
                        false
                    }
                    None => true,
                });
                state.completed = 0;
            }
            (front, singles)
        };
        if let Some((tag, acker)) = front {
            let result = acker.ack(BasicAckOptions { multiple: true }).await;
            super::delivery::settled("ack (multiple)", tag, result);
        }
        join_all(singles.into_iter().map(|(tag, acker)| async move {
            let result = acker.ack(BasicAckOptions::default()).await;
            super::delivery::settled("ack", tag, result);
        }))
        .await;
    }
}

impl Ticket {
    /// The handler of `tag` completed: ack it with the others (now, if a batch is full).
    pub(super) async fn complete(self, tag: u64, acker: Acker) {
        let (first, full) = {
            let mut state = self.inner.lock();
            let position = (state.epoch == self.epoch)
                .then(|| state.position(tag))
                .flatten();
            let Some(position) = position else {
                drop(state);
                // Delivered on a channel that has closed since: redelivered by the broker.
                super::delivery::settled("ack", tag, Ok(false));
                return;
            };
            state.open[position].1 = Some(acker);
            state.completed += 1;
            let full = state.completed >= self.inner.batch && !state.flushing;
            state.flushing |= full;
            (state.completed == 1, full)
        };
        if first {
            self.inner.waiting.notify_one();
        }
        if full {
            self.inner.flush(false).await;
        }
    }

    /// Settles `tag` singly with `settle` (a nack or reject); the tag counts as settled
    /// once its frame is out, so no multiple ack decided later covers it before.
    pub(super) async fn single<F: Future<Output = ()>>(self, tag: u64, settle: F) {
        let _sending = self.inner.send.lock().await;
        settle.await;
        let mut state = self.inner.lock();
        if state.epoch == self.epoch
            && let Some(position) = state.position(tag)
        {
            state.open.remove(position);
        }
    }
}
