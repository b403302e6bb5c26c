//! [`AmqpLease`]: one replica runs a scheduled job, chosen by RabbitMQ's single active
//! consumer.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use lapin::ConnectionStatus;
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use tokio::task::JoinHandle;
use tomodachi_core::{BoxError, Lease, Shutdown};

use crate::{AmqpConnection, AmqpOptions, Error};

const LOG: &str = "tomodachi.amqp";
/// The lease queue goes away this long after its last consumer.
const QUEUE_EXPIRES_MS: i32 = 10 * 60 * 1000;
/// Wait between attempts while the broker cannot be reached.
const RETRY: Duration = Duration::from_secs(1);

/// A lease on RabbitMQ: the replica whose consumer the broker made the *single active
/// consumer* of the queue `tomodachi.lease.<name>` runs the scheduled jobs.
///
/// Every replica consumes from that queue (`x-single-active-consumer`) on a connection of
/// its own (no automatic recovery, so every drop is seen) and puts one token message in it.
/// The broker delivers messages to one consumer only; the replica holding an unacked token
/// is the leader (it acks extra tokens, keeping one). When the leader's connection closes
/// (process killed, connection closed, shutdown), the broker requeues its token to the
/// next consumer: the takeover is the broker's, with no timer of ours.
///
/// - **At most one run per tick.** A new leader runs only ticks due at least
///   [`guard`](Self::guard) (default 1 s) after it got the token, so a tick the old leader
///   may have run just before it died is not run again, as long as the replicas' clocks
///   differ by less than the guard. A tick due within the guard of a takeover is lost.
/// - **Shutdown** of the leader closes its connection first: the token moves at once.
/// - **Losing the broker** ends leadership at once: a replica whose connection dropped runs
///   nothing until it holds a token again. (A network partition is noticed by AMQP
///   heartbeats, on both sides, after about two heartbeat intervals: a partition shorter
///   than that from the client's view but longer from the broker's could overlap two
///   leaders for up to the difference; keep the guard above it.)
///
/// ```no_run
/// # async fn run() {
/// use tomodachi_amqp::{AmqpLease, AmqpOptions};
/// use tomodachi_core::Shutdown;
///
/// let lease = AmqpLease::new(AmqpOptions::default(), "reports").start();
/// // LeaseLayer::new(lease.clone()) around the scheduled handlers (tomodachi-schedule), and
/// // when the service stops:
/// lease.release().await;
/// # }
/// ```
#[derive(Clone)]
pub struct AmqpLease {
    inner: Arc<Inner>,
}

struct Inner {
    options: AmqpOptions,
    queue: String,
    connection_name: String,
    guard: Duration,
    held: Mutex<Option<Held>>,
    stop: Shutdown,
    task: Mutex<Option<JoinHandle<()>>>,
}

/// The token this replica holds: since when, on which connection.
struct Held {
    since: SystemTime,
    connection: ConnectionStatus,
}

impl fmt::Debug for AmqpLease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AmqpLease")
            .field("queue", &self.inner.queue)
            .field("connection_name", &self.inner.connection_name)
            .field("guard", &self.inner.guard)
            .finish_non_exhaustive()
    }
}

impl AmqpLease {
    /// The lease `name` (one per service, usually its name) on the broker of `options`.
    /// Nothing happens until [`start`](Self::start).
    pub fn new(options: AmqpOptions, name: &str) -> Self {
        Self {
            inner: Arc::new(Inner {
                options,
                queue: format!("tomodachi.lease.{name}"),
                connection_name: format!("tomodachi-lease.{name}.{}", uuid::Uuid::new_v4()),
                guard: Duration::from_secs(1),
                held: Mutex::new(None),
                stop: Shutdown::new(),
                task: Mutex::new(None),
            }),
        }
    }

    /// How long after taking over a new leader waits before it runs a tick (default 1 s):
    /// above the clock skew between replicas. Set it before [`start`](Self::start).
    #[must_use]
    pub fn guard(self, guard: Duration) -> Self {
        let inner = &self.inner;
        Self {
            inner: Arc::new(Inner {
                options: inner.options.clone(),
                queue: inner.queue.clone(),
                connection_name: inner.connection_name.clone(),
                guard,
                held: Mutex::new(None),
                stop: Shutdown::new(),
                task: Mutex::new(None),
            }),
        }
    }

    /// Starts competing for the lease, in a task of its own, until
    /// [`release`](Self::release). Call within a tokio runtime.
    #[must_use]
    pub fn start(self) -> Self {
        let task = tokio::spawn(compete(self.clone(), self.inner.stop.clone()));
        if let Ok(mut slot) = self.inner.task.lock() {
            *slot = Some(task);
        }
        self
    }

    /// Lets go of the lease at once (the broker hands it to another replica) and stops
    /// competing; returns once the lease connection is closed. Call it when the service
    /// stops, before its handlers drain: no tick runs here after it.
    pub async fn release(&self) {
        self.inner.stop.trigger();
        self.set_held(None);
        let task = self.inner.task.lock().ok().and_then(|mut slot| slot.take());
        if let Some(task) = task {
            let _ = task.await;
        }
    }

    /// The name of this replica's lease connection (`tomodachi-lease.<name>.<uuid>`).
    pub fn connection_name(&self) -> &str {
        &self.inner.connection_name
    }

    /// Whether this replica holds the lease now.
    pub fn is_leader(&self) -> bool {
        self.held_since().is_some()
    }

    fn held_since(&self) -> Option<SystemTime> {
        let held = self.inner.held.lock().ok()?;
        held.as_ref()
            .filter(|held| held.connection.connected())
            .map(|held| held.since)
    }

    fn set_held(&self, held: Option<Held>) {
        if let Ok(mut slot) = self.inner.held.lock() {
            *slot = held;
        }
    }
}

impl Lease for AmqpLease {
    fn claim<'a>(
        &'a self,
        _job: &'a str,
        due: SystemTime,
    ) -> BoxFuture<'a, Result<bool, BoxError>> {
        let held = self.held_since();
        let guard = self.inner.guard;
        Box::pin(async move { Ok(held.is_some_and(|since| due >= since + guard)) })
    }
}

async fn compete(lease: AmqpLease, shutdown: Shutdown) {
    while !shutdown.is_triggered() {
        let error = hold(&lease, &shutdown).await;
        lease.set_held(None);
        match error {
            None => break,
            Some(error) => {
                tracing::warn!(target: LOG, queue = %lease.inner.queue, "lease lost or not reachable, trying again: {error}");
                tokio::select! {
                    () = shutdown.triggered() => break,
                    () = tokio::time::sleep(RETRY) => {}
                }
            }
        }
    }
    lease.set_held(None);
}

/// One connection's life: consume, put a token in, hold the first token delivered. `None`
/// once shutdown closed it; the error otherwise.
async fn hold(lease: &AmqpLease, shutdown: &Shutdown) -> Option<Error> {
    let inner = &lease.inner;
    let channel_error = |e: lapin::Error| Error::Channel {
        operation: "hold the lease",
        source: Box::new(e),
    };
    let connection = match AmqpConnection::new(inner.options.clone())
        .with_name(inner.connection_name.clone())
        .open_with(false)
        .await
    {
        Ok(connection) => connection,
        Err(error) => return Some(error),
    };
    let session = async {
        let channel = connection.create_channel().await.map_err(channel_error)?;
        let mut arguments = FieldTable::default();
        arguments.insert("x-single-active-consumer".into(), AMQPValue::Boolean(true));
        arguments.insert("x-expires".into(), AMQPValue::LongInt(QUEUE_EXPIRES_MS));
        channel
            .queue_declare(
                inner.queue.as_str().into(),
                QueueDeclareOptions::default(),
                arguments,
            )
            .await
            .map_err(|e| Error::DeclareQueue {
                queue: inner.queue.clone(),
                source: Box::new(e),
            })?;
        let consumer = channel
            .basic_consume(
                inner.queue.as_str().into(),
                "".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(channel_error)?;
        channel
            .basic_publish(
                "".into(),
                inner.queue.as_str().into(),
                BasicPublishOptions::default(),
                b"lease",
                lapin::BasicProperties::default(),
            )
            .await
            .map_err(channel_error)?;
        Ok::<_, Error>((channel, consumer))
    };
    let (_channel, mut consumer) = match session.await {
        Ok(session) => session,
        Err(error) => {
            let _ = connection.close(200, "OK".into()).await;
            return Some(error);
        }
    };
    let mut token: Option<Delivery> = None;
    let error = loop {
        tokio::select! {
            () = shutdown.triggered() => break None,
            next = consumer.next() => match next {
                Some(Ok(delivery)) if token.is_none() => {
                    token = Some(delivery);
                    lease.set_held(Some(Held { since: SystemTime::now(), connection: connection.status().clone() }));
                    tracing::info!(target: LOG, queue = %inner.queue, connection = %inner.connection_name, "took the lease");
                }
                Some(Ok(extra)) => {
                    // Each replica puts a token in; the leader keeps one.
                    if let Err(e) = extra.ack(BasicAckOptions::default()).await {
                        break Some(channel_error(e));
                    }
                }
                Some(Err(e)) => break Some(channel_error(e)),
                None => break Some(Error::Channel { operation: "hold the lease", source: "the consumer was cancelled".into() }),
            },
        }
    };
    // Let go first, then close: the token goes back to the queue for the next consumer.
    lease.set_held(None);
    let _ = connection.close(200, "OK".into()).await;
    error
}
