//! The rules every message transport keeps, written once against [`Fixture`].
//!
//! Each rule starts consumers on a fresh queue of the fixture, sends messages, watches the
//! handler and the log, stops, and looks at what is left in the queue. A rule returns
//! `Err(what went wrong)` instead of panicking, so a test can show that a broken transport
//! fails it (`broken_fixture_fails_the_suite` in `main.rs`).

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;
use tomodachi::core::{BoxError, ServiceIdentity};
use tomodachi::{
    Attributes, BoxMessageService, DedupLayer, Envelope, EnvelopeLayer, HandlerTimeoutLayer,
    JsonEnvelope, Message, Metadata, Outcome, Shutdown,
};
use tower::limit::ConcurrencyLimitLayer;
use tower::util::BoxCloneSyncService;
use tower::{Layer, Service};
use tracing_subscriber::layer::SubscriberExt as _;

/// The topic every rule's envelopes name.
pub(crate) const TOPIC: &str = "conformance";

/// What a rule asks of a consumer beyond the service.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Consume {
    /// Failed handlers are acked (`DropOnFailure`) instead of retried.
    pub(crate) drop_on_failure: bool,
}

/// A transport under test: makes fresh queues.
pub(crate) trait Fixture: Sync {
    /// The queue type.
    type Queue: Queue;

    /// How long a rule waits for something that must happen (a redelivery included).
    fn patience(&self) -> Duration;

    /// How long a rule watches for something that must not happen.
    fn watch_for(&self) -> Duration;

    /// A queue no other test uses, with a dead-letter queue where the transport has one.
    fn queue(&self) -> impl Future<Output = Self::Queue> + Send;
}

/// One queue of a fixture.
pub(crate) trait Queue: Send + Sync {
    /// Starts one consumer of the queue driving `service`; it is running (set up) when
    /// this returns.
    fn consume(
        &self,
        service: BoxMessageService,
        consume: Consume,
    ) -> impl Future<Output = Running> + Send;

    /// Sends `body` with string `attributes` (AMQP: headers) to the queue.
    fn send(&self, body: &str, attributes: &[(&str, &str)]) -> impl Future<Output = ()> + Send;

    /// Messages still in the queue, waiting or unacknowledged, once every consumer has
    /// stopped.
    fn left(&self) -> impl Future<Output = usize> + Send;

    /// Messages in the dead-letter queue, where the transport has one the test can see.
    fn dead_lettered(&self) -> impl Future<Output = Option<usize>> + Send;
}

/// A started consumer.
#[derive(Debug)]
pub(crate) struct Running {
    /// Its shutdown.
    pub(crate) shutdown: Shutdown,
    /// Its work.
    pub(crate) task: JoinHandle<Result<(), BoxError>>,
}

impl Running {
    /// Triggers shutdown and waits for the drain.
    async fn stop(self, patience: Duration) -> Result<(), String> {
        self.shutdown.trigger();
        self.stopped(patience).await
    }

    /// Waits for the consumer to end (shutdown triggered before).
    async fn stopped(self, patience: Duration) -> Result<(), String> {
        match tokio::time::timeout(patience, self.task).await {
            Err(_) => Err(format!("the consumer did not stop within {patience:?}")),
            Ok(Err(join)) => Err(format!("the consumer task failed: {join}")),
            Ok(Ok(Err(error))) => Err(format!("the consumer failed: {error}")),
            Ok(Ok(Ok(()))) => Ok(()),
        }
    }
}

/// Fails the rule with a message unless `condition` holds.
macro_rules! ensure {
    ($condition:expr, $($message:tt)+) => {
        if !$condition {
            return Err(format!($($message)+));
        }
    };
}

/// Every rule by name, for the tests of each transport and the broken fixture.
pub(crate) const RULES: [&str; 9] = [
    "handler_error_is_retried",
    "panic_is_retried",
    "drop_on_failure_acks",
    "handler_timeout_is_retried",
    "malformed_envelope_is_rejected",
    "concurrency_limit_is_the_prefetch",
    "shutdown_drains_in_flight_and_leaves_the_rest",
    "dedup_layer_handles_a_message_once",
    "attributes_and_metadata_reach_extractors",
];

/// Runs the rule called `name` against `fixture`.
pub(crate) async fn run<F: Fixture>(fixture: &F, name: &str) -> Result<(), String> {
    match name {
        "handler_error_is_retried" => failure_is_retried(fixture, Fail::Error).await,
        "panic_is_retried" => failure_is_retried(fixture, Fail::Panic).await,
        "drop_on_failure_acks" => drop_on_failure_acks(fixture).await,
        "handler_timeout_is_retried" => failure_is_retried(fixture, Fail::Hang).await,
        "malformed_envelope_is_rejected" => malformed_envelope_is_rejected(fixture).await,
        "concurrency_limit_is_the_prefetch" => concurrency_limit_is_the_prefetch(fixture).await,
        "shutdown_drains_in_flight_and_leaves_the_rest" => shutdown_drains(fixture).await,
        "dedup_layer_handles_a_message_once" => dedup_layer_handles_a_message_once(fixture).await,
        "attributes_and_metadata_reach_extractors" => attributes_and_metadata(fixture).await,
        _ => Err(format!("no rule called {name}")),
    }
}

/// A JSON envelope around `data`, as a tomodachi service publishes it.
fn sealed(data: &serde_json::Value) -> String {
    let data = tomodachi::to_python_json(data).expect("JSON data serializes");
    JsonEnvelope
        .seal(
            &ServiceIdentity::with_random_uuid("conformance-sender"),
            TOPIC,
            &data,
        )
        .expect("the JSON envelope seals")
}

/// What the handler sees and does: calls counted, answers counted, a gate it may wait on.
#[derive(Clone)]
struct Probe {
    calls: watch::Sender<usize>,
    answered: watch::Sender<usize>,
    running: Arc<Mutex<(usize, usize)>>,
    gate: Arc<Semaphore>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

/// What a handler read from a message: its attributes and, if opened, the envelope's metadata.
type Seen = (Attributes, Option<Metadata>);

impl Probe {
    fn new() -> Self {
        Self {
            calls: watch::channel(0).0,
            answered: watch::channel(0).0,
            running: Arc::default(),
            gate: Arc::new(Semaphore::new(Semaphore::MAX_PERMITS)),
            seen: Arc::default(),
        }
    }

    /// Handlers wait at the gate until it is opened.
    fn close_gate(&self) {
        self.gate.forget_permits(Semaphore::MAX_PERMITS);
    }

    fn open_gate(&self) {
        self.gate.add_permits(Semaphore::MAX_PERMITS);
    }

    fn calls(&self) -> usize {
        *self.calls.borrow()
    }

    fn most_at_once(&self) -> usize {
        self.running.lock().unwrap_or_else(|p| p.into_inner()).1
    }

    async fn until(
        counter: &watch::Sender<usize>,
        count: usize,
        patience: Duration,
        what: &str,
    ) -> Result<(), String> {
        let mut receiver = counter.subscribe();
        let reached = tokio::time::timeout(patience, receiver.wait_for(|n| *n >= count)).await;
        match reached {
            Ok(Ok(_)) => Ok(()),
            _ => Err(format!(
                "{what}: expected {count} within {patience:?}, saw {}",
                *counter.borrow()
            )),
        }
    }

    async fn calls_reach(
        &self,
        count: usize,
        patience: Duration,
        what: &str,
    ) -> Result<(), String> {
        Self::until(&self.calls, count, patience, what).await
    }

    async fn answers_reach(
        &self,
        count: usize,
        patience: Duration,
        what: &str,
    ) -> Result<(), String> {
        Self::until(&self.answered, count, patience, what).await
    }

    /// The service a consumer drives: answers counted, outside `inner` (`layers` around
    /// the handler, then the JSON envelope, as the facade builds it).
    fn service(
        &self,
        handler: impl Fn(Probe, Message, usize) -> HandlerFuture + Clone + Send + Sync + 'static,
        layers: impl FnOnce(BoxMessageService) -> BoxMessageService,
    ) -> BoxMessageService {
        let probe = self.clone();
        let inner = BoxCloneSyncService::new(tower::service_fn(move |message: Message| {
            let probe = probe.clone();
            let call = {
                let mut call = 0;
                probe.calls.send_modify(|calls| {
                    *calls += 1;
                    call = *calls;
                });
                call
            };
            handler(probe, message, call)
        }));
        let opened =
            BoxCloneSyncService::new(EnvelopeLayer::new(JsonEnvelope).layer(layers(inner)));
        BoxCloneSyncService::new(Answers {
            inner: opened,
            answered: self.answered.clone(),
        })
    }

    /// Runs `work` counted as running (for the most handlers at once).
    async fn running<T>(&self, work: impl Future<Output = T>) -> T {
        {
            let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
            running.0 += 1;
            running.1 = running.1.max(running.0);
        }
        let output = work.await;
        self.running.lock().unwrap_or_else(|p| p.into_inner()).0 -= 1;
        output
    }
}

type HandlerFuture = futures_util::future::BoxFuture<'static, Result<Outcome, BoxError>>;

/// Counts the answers of the service (its outcomes, whatever they are).
#[derive(Clone)]
struct Answers {
    inner: BoxMessageService,
    answered: watch::Sender<usize>,
}

impl Service<Message> for Answers {
    type Response = Outcome;
    type Error = BoxError;
    type Future = HandlerFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, message: Message) -> Self::Future {
        let future = self.inner.call(message);
        let answered = self.answered.clone();
        Box::pin(async move {
            let result = future.await;
            answered.send_modify(|answered| *answered += 1);
            result
        })
    }
}

#[derive(Clone, Copy, Debug)]
enum Fail {
    Error,
    Panic,
    Hang,
}

/// A handler error, a panic or a handler timeout on the first delivery is retried: the
/// message comes back, and once handled it is gone.
async fn failure_is_retried<F: Fixture>(fixture: &F, fail: Fail) -> Result<(), String> {
    let queue = fixture.queue().await;
    let probe = Probe::new();
    let service = probe.service(
        move |_probe, _message, call| {
            Box::pin(async move {
                if call == 1 {
                    match fail {
                        Fail::Error => return Err("the database is away".into()),
                        Fail::Panic => panic!("the first delivery panics"),
                        Fail::Hang => std::future::pending::<()>().await,
                    }
                }
                Ok(Outcome::Ack)
            })
        },
        |inner| match fail {
            Fail::Hang => BoxCloneSyncService::new(
                HandlerTimeoutLayer::new(Duration::from_millis(300)).layer(inner),
            ),
            _ => inner,
        },
    );
    let running = queue.consume(service, Consume::default()).await;
    queue.send(&sealed(&serde_json::json!("work")), &[]).await;
    probe
        .calls_reach(
            2,
            fixture.patience(),
            &format!("deliveries after a {fail:?} (the retry)"),
        )
        .await?;
    running.stop(fixture.patience()).await?;
    let left = queue.left().await;
    ensure!(
        left == 0,
        "{left} message(s) left after the retry was handled"
    );
    Ok(())
}

/// With `DropOnFailure` a failed message is acknowledged: handled once, gone.
async fn drop_on_failure_acks<F: Fixture>(fixture: &F) -> Result<(), String> {
    let queue = fixture.queue().await;
    let probe = Probe::new();
    let service = probe.service(
        |_probe, _message, _call| Box::pin(async { Err("always fails".into()) }),
        |inner| inner,
    );
    let running = queue
        .consume(
            service,
            Consume {
                drop_on_failure: true,
            },
        )
        .await;
    queue.send(&sealed(&serde_json::json!("work")), &[]).await;
    probe
        .answers_reach(1, fixture.patience(), "the failed delivery")
        .await?;
    let again = probe.calls_reach(2, fixture.watch_for(), "").await;
    ensure!(
        again.is_err(),
        "a message dropped on failure was delivered again"
    );
    running.stop(fixture.patience()).await?;
    let left = queue.left().await;
    ensure!(
        left == 0,
        "{left} message(s) left: DropOnFailure did not acknowledge"
    );
    Ok(())
}

/// A body that is no envelope is rejected (never handled, never redelivered) with
/// the envelope's one log record.
async fn malformed_envelope_is_rejected<F: Fixture>(fixture: &F) -> Result<(), String> {
    let records = Records::default();
    let _log =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(records.clone()));
    let queue = fixture.queue().await;
    let probe = Probe::new();
    let service = probe.service(
        |_probe, _message, _call| Box::pin(async { Ok(Outcome::Ack) }),
        |inner| inner,
    );
    let running = queue.consume(service, Consume::default()).await;
    queue.send("this is not an envelope", &[]).await;
    probe
        .answers_reach(1, fixture.patience(), "the malformed message")
        .await?;
    let again = probe.answers_reach(2, fixture.watch_for(), "").await;
    ensure!(again.is_err(), "the rejected message was delivered again");
    running.stop(fixture.patience()).await?;
    ensure!(
        probe.calls() == 0,
        "the handler was called with a malformed envelope"
    );
    let left = queue.left().await;
    ensure!(
        left == 0,
        "{left} message(s) left: the malformed message was not rejected"
    );
    if let Some(dead) = queue.dead_lettered().await {
        ensure!(
            dead == 1,
            "{dead} message(s) in the dead-letter queue, expected the rejected one"
        );
    }
    let expected = Record {
        target: "exception".into(),
        level: tracing::Level::ERROR,
        message: "uncaught exception: malformed envelope: expected ident at line 1 column 2".into(),
        fields: BTreeMap::from([
            ("message_body".into(), "this is not an envelope".into()),
            ("outcome".into(), "reject".into()),
        ]),
    };
    let found = records.matching("exception");
    ensure!(
        found == [expected.clone()],
        "expected exactly one record {expected:?} on `exception`, got {found:?}"
    );
    Ok(())
}

/// `ConcurrencyLimitLayer(2)` is the prefetch: never more than 2 handlers at once, and
/// the rest waits for room.
async fn concurrency_limit_is_the_prefetch<F: Fixture>(fixture: &F) -> Result<(), String> {
    let queue = fixture.queue().await;
    let probe = Probe::new();
    probe.close_gate();
    let service = probe.service(gated, |inner| {
        BoxCloneSyncService::new(ConcurrencyLimitLayer::new(2).layer(inner))
    });
    let running = queue.consume(service, Consume::default()).await;
    for n in 0..5 {
        queue.send(&sealed(&serde_json::json!(n)), &[]).await;
    }
    probe
        .calls_reach(2, fixture.patience(), "handlers started up to the limit")
        .await?;
    let third = probe.calls_reach(3, fixture.watch_for(), "").await;
    ensure!(
        third.is_err(),
        "a third handler started while two held the limit of 2"
    );
    probe.open_gate();
    probe
        .answers_reach(5, fixture.patience(), "every message once room was made")
        .await?;
    running.stop(fixture.patience()).await?;
    let most = probe.most_at_once();
    ensure!(most == 2, "{most} handlers ran at once with a limit of 2");
    let left = queue.left().await;
    ensure!(left == 0, "{left} message(s) left after all were handled");
    Ok(())
}

/// Waits at the probe's gate, then acks.
fn gated(probe: Probe, _message: Message, _call: usize) -> HandlerFuture {
    Box::pin(async move {
        let gate = probe.gate.clone();
        probe
            .running(async move {
                let _permit = gate.acquire().await;
            })
            .await;
        Ok(Outcome::Ack)
    })
}

/// Shutdown stops taking messages, lets the ones in flight finish and settles them, and
/// leaves the ones not started in the queue.
async fn shutdown_drains<F: Fixture>(fixture: &F) -> Result<(), String> {
    let queue = fixture.queue().await;
    let probe = Probe::new();
    probe.close_gate();
    let service = probe.service(gated, |inner| {
        BoxCloneSyncService::new(ConcurrencyLimitLayer::new(2).layer(inner))
    });
    let running = queue.consume(service, Consume::default()).await;
    for n in 0..5 {
        queue.send(&sealed(&serde_json::json!(n)), &[]).await;
    }
    probe
        .calls_reach(2, fixture.patience(), "handlers started up to the limit")
        .await?;
    running.shutdown.trigger();
    probe.open_gate();
    running.stopped(fixture.patience()).await?;
    let (calls, answered) = (probe.calls(), *probe.answered.borrow());
    ensure!(
        calls == 2 && answered == 2,
        "{calls} handler(s) started and {answered} finished during the drain, expected the 2 in flight"
    );
    let left = queue.left().await;
    ensure!(
        left == 3,
        "{left} message(s) left after shutdown, expected the 3 never started (the 2 in flight settled)"
    );
    Ok(())
}

/// Under `DedupLayer` the same message (by `message_uuid`) is handled once; both copies
/// are settled.
async fn dedup_layer_handles_a_message_once<F: Fixture>(fixture: &F) -> Result<(), String> {
    let queue = fixture.queue().await;
    let probe = Probe::new();
    let service = probe.service(
        |_probe, _message, _call| Box::pin(async { Ok(Outcome::Ack) }),
        |inner| BoxCloneSyncService::new(DedupLayer::default().layer(inner)),
    );
    let running = queue.consume(service, Consume::default()).await;
    let body = sealed(&serde_json::json!("once"));
    queue.send(&body, &[]).await;
    queue.send(&body, &[]).await;
    probe
        .answers_reach(2, fixture.patience(), "both copies answered")
        .await?;
    running.stop(fixture.patience()).await?;
    let calls = probe.calls();
    ensure!(
        calls == 1,
        "the handler ran {calls} times for one message_uuid"
    );
    let left = queue.left().await;
    ensure!(
        left == 0,
        "{left} message(s) left: a duplicate was not settled"
    );
    Ok(())
}

/// The message's attributes and the envelope's metadata reach the extractors.
async fn attributes_and_metadata<F: Fixture>(fixture: &F) -> Result<(), String> {
    let queue = fixture.queue().await;
    let probe = Probe::new();
    let service = probe.service(
        |probe, message, _call| {
            Box::pin(async move {
                let parts = message.parts();
                let attributes =
                    <Attributes as tomodachi::FromMessageParts<()>>::from_message_parts(parts, &())
                        .unwrap_or_default();
                let metadata =
                    <Metadata as tomodachi::FromMessageParts<()>>::from_message_parts(parts, &())
                        .ok();
                probe
                    .seen
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push((attributes, metadata));
                Ok(Outcome::Ack)
            })
        },
        |inner| inner,
    );
    let running = queue.consume(service, Consume::default()).await;
    let body = sealed(&serde_json::json!({"order": 7}));
    let message_uuid = serde_json::from_str::<serde_json::Value>(&body).expect("sealed is JSON")
        ["metadata"]["message_uuid"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    queue.send(&body, &[("event", "paid")]).await;
    probe
        .answers_reach(1, fixture.patience(), "the message")
        .await?;
    running.stop(fixture.patience()).await?;
    let seen = probe.seen.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let Some((attributes, metadata)) = seen.first() else {
        return Err("the handler never ran".into());
    };
    ensure!(
        attributes.get("event").and_then(|value| value.as_str()) == Some("paid"),
        "Attributes did not hold event=paid: {attributes:?}"
    );
    let Some(Metadata(metadata)) = metadata else {
        return Err("Metadata was not available to the handler".into());
    };
    ensure!(
        metadata.message_uuid == message_uuid && metadata.topic == TOPIC,
        "Metadata was {metadata:?}, expected message_uuid {message_uuid} on {TOPIC}"
    );
    Ok(())
}

/// One log record, as the rules compare them.
#[derive(Debug, Clone, PartialEq)]
struct Record {
    target: String,
    level: tracing::Level,
    message: String,
    fields: BTreeMap<String, String>,
}

/// Records the events of the current thread's subscriber.
#[derive(Debug, Clone, Default)]
struct Records(Arc<Mutex<Vec<Record>>>);

impl Records {
    fn matching(&self, target: &str) -> Vec<Record> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|record| record.target == target)
            .cloned()
            .collect()
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Records {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        struct Visit<'a>(&'a mut Record);
        impl tracing::field::Visit for Visit<'_> {
            fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
                self.0.fields.insert(field.name().into(), value.into());
            }
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                if field.name() == "message" {
                    self.0.message = format!("{value:?}");
                } else {
                    self.0
                        .fields
                        .insert(field.name().into(), format!("{value:?}"));
                }
            }
        }
        let mut record = Record {
            target: event.metadata().target().into(),
            level: *event.metadata().level(),
            message: String::new(),
            fields: BTreeMap::new(),
        };
        event.record(&mut Visit(&mut record));
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(record);
    }
}
