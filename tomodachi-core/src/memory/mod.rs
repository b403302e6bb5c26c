//! An in-memory transport for tests (the `test-util` feature): a real message source and
//! publisher without a broker.
//!
//! A [`Broker`] holds named [`Queue`]s and topics. Publishing to a topic puts a copy of
//! the message on every queue subscribed to it; a queue's messages go to one consumer each
//! (competing consumers), as on SNS+SQS and RabbitMQ. A [`MemorySource`] drives a service
//! through core's [`Driver`](crate::driver::Driver), exactly as the SQS and AMQP sources
//! do, and settles each [`Outcome`](crate::Outcome) the way a broker would:
//!
//! | outcome | the message |
//! |---|---|
//! | `Ack` | removed |
//! | `Retry { delay }` | back on the queue (after `delay`), its receive count kept |
//! | `Reject` | moved to the queue's dead-letter queue, or dropped if it has none |
//!
//! A message received more times than the queue's
//! [`dead_letter`](Queue::dead_letter) limit is moved to the dead-letter queue instead of
//! being delivered again (SQS's `maxReceiveCount`). Handlers read the delivery with the
//! [`MemoryContext`] extractor and message attributes with
//! [`Attributes`]; they publish with a [`MemoryPublisher`].
//!
//! ```
//! use tomodachi_core::memory::{Broker, MemoryContext, MemorySource};
//! use tomodachi_core::{HandlerWithoutStateExt as _, Shutdown, Source as _};
//!
//! async fn flaky(context: MemoryContext) -> Result<(), std::io::Error> {
//!     match context.receive_count {
//!         1 => Err(std::io::Error::other("try again")),
//!         _ => Ok(()),
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let broker = Broker::new();
//! let queue = broker.queue("orders");
//! broker.subscribe("order-paid", &queue);
//! broker.publish("order-paid", "order 7");
//!
//! let shutdown = Shutdown::new();
//! let running = tokio::spawn(MemorySource::new(&queue).serve(flaky.into_service(), shutdown.clone()));
//! queue.settled(2).await; // the first receive failed and was retried, the second acked
//! shutdown.trigger();
//! running.await.unwrap().unwrap();
//! assert!(queue.is_empty());
//! # }
//! ```

mod publisher;
mod source;

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{Notify, watch};

pub use publisher::{MemoryPublisher, PublishError};
pub use source::{MemorySource, TRANSPORT};

use crate::extract::{FromMessageParts, Parts, Rejection};
use crate::{Attributes, Message};

/// A broker in memory: topics and queues. Clones share it.
#[derive(Debug, Clone, Default)]
pub struct Broker {
    inner: Arc<BrokerInner>,
}

#[derive(Debug, Default)]
struct BrokerInner {
    queues: Mutex<HashMap<String, Queue>>,
    topics: Mutex<HashMap<String, Vec<Queue>>>,
    ids: AtomicU64,
}

impl Broker {
    /// An empty broker.
    pub fn new() -> Self {
        Self::default()
    }

    /// The queue called `name`, declared on first use.
    pub fn queue(&self, name: &str) -> Queue {
        lock(&self.inner.queues)
            .entry(name.to_owned())
            .or_insert_with(|| Queue {
                inner: Arc::new(QueueInner {
                    name: name.into(),
                    broker: Arc::downgrade(&self.inner),
                    state: Mutex::default(),
                    notify: Notify::new(),
                    settled: watch::channel(0).0,
                }),
            })
            .clone()
    }

    /// Delivers what is published to `topic` to `queue` as well (an SNS subscription, an
    /// AMQP binding). Subscribing twice delivers once.
    pub fn subscribe(&self, topic: &str, queue: &Queue) {
        let mut topics = lock(&self.inner.topics);
        let queues = topics.entry(topic.to_owned()).or_default();
        if !queues
            .iter()
            .any(|known| Arc::ptr_eq(&known.inner, &queue.inner))
        {
            queues.push(queue.clone());
        }
    }

    /// Publishes `body` to `topic`: a copy for every subscribed queue. Returns how many
    /// queues got it.
    pub fn publish(&self, topic: &str, body: impl Into<Bytes>) -> usize {
        self.publish_with(topic, body, Attributes::default())
    }

    /// Publishes `body` with message `attributes` to `topic` (see [`Broker::publish`]).
    pub fn publish_with(
        &self,
        topic: &str,
        body: impl Into<Bytes>,
        attributes: Attributes,
    ) -> usize {
        let body = body.into();
        let queues = lock(&self.inner.topics)
            .get(topic)
            .cloned()
            .unwrap_or_default();
        for queue in &queues {
            queue.push(Stored {
                id: self.next_id(),
                body: body.clone(),
                attributes: attributes.clone(),
                topic: Some(topic.into()),
                receive_count: 0,
            });
        }
        queues.len()
    }

    fn next_id(&self) -> Arc<str> {
        next_id(&self.inner)
    }
}

fn next_id(broker: &BrokerInner) -> Arc<str> {
    format!("memory-{}", broker.ids.fetch_add(1, Ordering::Relaxed) + 1).into()
}

/// A queue of a [`Broker`]. Clones are the same queue.
#[derive(Debug, Clone)]
pub struct Queue {
    inner: Arc<QueueInner>,
}

#[derive(Debug)]
struct QueueInner {
    name: Arc<str>,
    broker: std::sync::Weak<BrokerInner>,
    state: Mutex<QueueState>,
    notify: Notify,
    /// Messages settled so far (acked, retried or rejected), for tests to await.
    settled: watch::Sender<usize>,
}

#[derive(Debug, Default)]
struct QueueState {
    ready: VecDeque<Stored>,
    /// Received and not settled, or waiting out a retry's delay.
    in_flight: usize,
    dead_letter: Option<(Queue, u32)>,
}

#[derive(Debug, Clone)]
struct Stored {
    id: Arc<str>,
    body: Bytes,
    attributes: Attributes,
    topic: Option<Arc<str>>,
    receive_count: u32,
}

impl Queue {
    /// The queue's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Moves a message received more than `max_receives` times (or rejected) to
    /// `dead_letter_queue` (SQS's redrive policy).
    #[must_use]
    pub fn dead_letter(self, dead_letter_queue: &Queue, max_receives: u32) -> Self {
        self.state().dead_letter = Some((dead_letter_queue.clone(), max_receives));
        self
    }

    /// Sends `body` straight to the queue (SQS `SendMessage`, AMQP's default exchange).
    pub fn send(&self, body: impl Into<Bytes>) {
        self.send_with(body, Attributes::default());
    }

    /// Sends `body` with message `attributes` straight to the queue.
    pub fn send_with(&self, body: impl Into<Bytes>, attributes: Attributes) {
        let id = match self.inner.broker.upgrade() {
            Some(broker) => next_id(&broker),
            None => "memory-orphan".into(),
        };
        self.push(Stored {
            id,
            body: body.into(),
            attributes,
            topic: None,
            receive_count: 0,
        });
    }

    /// Messages waiting to be received.
    pub fn len(&self) -> usize {
        self.state().ready.len()
    }

    /// Messages received and not settled yet, or waiting out a retry's delay.
    pub fn in_flight(&self) -> usize {
        self.state().in_flight
    }

    /// Neither waiting nor in flight: every message was acked, rejected or dead-lettered.
    pub fn is_empty(&self) -> bool {
        let state = self.state();
        state.ready.is_empty() && state.in_flight == 0
    }

    /// The bodies of the messages waiting, in order.
    pub fn bodies(&self) -> Vec<Bytes> {
        self.state()
            .ready
            .iter()
            .map(|stored| stored.body.clone())
            .collect()
    }

    /// Messages settled so far (each ack, retry or reject counts once).
    pub fn settled_count(&self) -> usize {
        *self.inner.settled.borrow()
    }

    /// Waits until `count` messages in all have been settled on this queue (acked,
    /// retried or rejected): what a test awaits instead of sleeping.
    pub async fn settled(&self, count: usize) {
        let mut settled = self.inner.settled.subscribe();
        // The sender lives as long as the queue, so `wait_for` only ends when it is met.
        let _ = settled.wait_for(|settled| *settled >= count).await;
    }

    /// Takes the next waiting message now, as a consumer would (its receive count goes up
    /// and it is in flight until its [`Delivery`] is settled). `None` if none is waiting.
    pub fn try_receive(&self) -> Option<Delivery> {
        let stored = {
            let mut state = self.state();
            let stored = loop {
                let mut stored = state.ready.pop_front()?;
                stored.receive_count += 1;
                match &state.dead_letter {
                    Some((dead_letter, max)) if stored.receive_count > *max => {
                        let dead_letter = dead_letter.clone();
                        dead_letter.push(stored);
                    }
                    _ => break stored,
                }
            };
            state.in_flight += 1;
            if !state.ready.is_empty() {
                // Another consumer may be waiting for the rest.
                self.inner.notify.notify_one();
            }
            stored
        };
        Some(Delivery {
            queue: self.clone(),
            stored: Some(stored),
        })
    }

    /// Waits for the next message and takes it (see [`Queue::try_receive`]).
    pub async fn receive(&self) -> Delivery {
        loop {
            if let Some(delivery) = self.try_receive() {
                return delivery;
            }
            self.inner.notify.notified().await;
        }
    }

    fn push(&self, stored: Stored) {
        self.state().ready.push_back(stored);
        self.inner.notify.notify_one();
    }

    fn state(&self) -> MutexGuard<'_, QueueState> {
        lock(&self.inner.state)
    }

    fn count_settled(&self) {
        self.inner.settled.send_modify(|settled| *settled += 1);
    }
}

/// One message taken from a [`Queue`], in flight until settled. Dropping it unsettled
/// puts the message back on the queue (a consumer that went away).
#[derive(Debug)]
pub struct Delivery {
    queue: Queue,
    stored: Option<Stored>,
}

impl Delivery {
    /// The message, with its [`MemoryContext`] and its [`Attributes`] as context.
    pub fn message(&self) -> Message {
        let Some(stored) = &self.stored else {
            return Message::default();
        };
        Message::new(stored.body.clone())
            .with_context(MemoryContext {
                queue: self.queue.inner.name.clone(),
                topic: stored.topic.clone(),
                message_id: stored.id.clone(),
                receive_count: stored.receive_count,
            })
            .with_context(stored.attributes.clone())
    }

    /// Removes the message.
    pub fn ack(mut self) {
        if self.stored.take().is_some() {
            self.queue.state().in_flight -= 1;
            self.queue.count_settled();
        }
    }

    /// Puts the message back on the queue, after `delay` if there is one.
    pub fn retry(mut self, delay: Option<Duration>) {
        let Some(stored) = self.stored.take() else {
            return;
        };
        let queue = self.queue.clone();
        queue.count_settled();
        match delay {
            None | Some(Duration::ZERO) => queue.requeue(stored),
            Some(delay) => {
                drop(tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    queue.requeue(stored);
                }));
            }
        }
    }

    /// Moves the message to the dead-letter queue, or drops it if the queue has none.
    pub fn reject(mut self) {
        let Some(stored) = self.stored.take() else {
            return;
        };
        let dead_letter = {
            let mut state = self.queue.state();
            state.in_flight -= 1;
            state.dead_letter.as_ref().map(|(queue, _)| queue.clone())
        };
        if let Some(dead_letter) = dead_letter {
            dead_letter.push(stored);
        }
        self.queue.count_settled();
    }
}

impl Drop for Delivery {
    fn drop(&mut self) {
        if let Some(stored) = self.stored.take() {
            self.queue.requeue(stored);
        }
    }
}

impl Queue {
    fn requeue(&self, stored: Stored) {
        self.state().in_flight -= 1;
        self.push(stored);
    }
}

/// What the in-memory transport knows about a delivery (an extractor).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MemoryContext {
    /// The queue's name.
    pub queue: Arc<str>,
    /// The topic it was published to; `None` when it was sent straight to the queue.
    pub topic: Option<Arc<str>>,
    /// The broker's id of the message (the same on every redelivery).
    pub message_id: Arc<str>,
    /// How many times the message has been received, this time included (1 the first
    /// time).
    pub receive_count: u32,
}

impl<S> FromMessageParts<S> for MemoryContext {
    type Rejection = Rejection;

    fn from_message_parts(parts: &Parts, _state: &S) -> Result<Self, Rejection> {
        parts
            .context::<MemoryContext>()
            .cloned()
            .ok_or_else(Rejection::missing_context::<MemoryContext>)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_fan_out_and_queues_compete() {
        let broker = Broker::new();
        let (a, b) = (broker.queue("a"), broker.queue("b"));
        broker.subscribe("t", &a);
        broker.subscribe("t", &b);
        broker.subscribe("t", &b);
        assert_eq!(broker.publish("t", "one"), 2);
        assert_eq!(broker.publish("nobody", "two"), 0);
        assert_eq!((a.len(), b.len()), (1, 1));

        let first = a.try_receive().unwrap();
        assert!(a.try_receive().is_none(), "one consumer per message");
        assert_eq!(a.in_flight(), 1);
        let context = first.message().context::<MemoryContext>().cloned().unwrap();
        assert_eq!(context.topic.as_deref(), Some("t"));
        assert_eq!(context.receive_count, 1);
        first.ack();
        assert!(a.is_empty());
        assert_eq!(a.settled_count(), 1);
    }

    #[test]
    fn retries_count_receives_and_dead_letter_after_the_limit() {
        let broker = Broker::new();
        let dlq = broker.queue("dlq");
        let queue = broker.queue("q").dead_letter(&dlq, 2);
        queue.send("work");
        for count in 1..=2 {
            let delivery = queue.try_receive().unwrap();
            let message = delivery.message();
            assert_eq!(
                message.context::<MemoryContext>().unwrap().receive_count,
                count
            );
            delivery.retry(None);
        }
        assert!(
            queue.try_receive().is_none(),
            "the third receive dead-letters"
        );
        assert!(queue.is_empty());
        assert_eq!(dlq.bodies(), [Bytes::from("work")]);

        queue.send("bad");
        queue.try_receive().unwrap().reject();
        assert_eq!(dlq.len(), 2);
        drop(dlq.try_receive());
        assert_eq!(dlq.len(), 2, "a dropped delivery goes back");
    }

    #[tokio::test(start_paused = true)]
    async fn a_delayed_retry_comes_back_after_its_delay() {
        let queue = Broker::new().queue("q");
        queue.send("later");
        queue.receive().await.retry(Some(Duration::from_secs(30)));
        tokio::task::yield_now().await;
        assert_eq!((queue.len(), queue.in_flight()), (0, 1));
        let delivery = queue.receive().await;
        assert_eq!(
            delivery
                .message()
                .context::<MemoryContext>()
                .unwrap()
                .receive_count,
            2
        );
    }
}
