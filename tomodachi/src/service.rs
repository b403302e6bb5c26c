//! The `Service` builder: handlers, layers, state, options and lifecycle hooks.

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use futures_util::future::BoxFuture;
use tomodachi_core::{
    BoxError, Health, HealthReporter, Message, Outcome, ServiceIdentity, SharedEnvelope, Shutdown,
    Transport,
};
use tower::Layer;
use tower::util::BoxCloneSyncService;

use crate::Options;
use crate::health::{CheckFn, Probes};

/// A message handler after type erasure: what sources drive.
pub type BoxMessageService = BoxCloneSyncService<Message, Outcome, BoxError>;

/// `service` after type erasure.
pub(crate) fn boxed<T>(service: T) -> BoxMessageService
where
    T: tower::Service<Message, Response = Outcome> + Clone + Send + Sync + 'static,
    T::Error: Into<BoxError>,
    T::Future: Send + 'static,
{
    BoxCloneSyncService::new(tower::ServiceExt::map_err(service, Into::into))
}

/// One microservice: a name, its options, its handlers and its lifecycle hooks.
///
/// Build it, then [`run`](Service::run) it (or several with [`Process`](crate::Process)).
///
/// ```no_run
/// use tomodachi::{Schedule, Service};
///
/// async fn heartbeat() {
///     tracing::info!("heartbeat");
/// }
///
/// #[tokio::main]
/// async fn main() -> tomodachi::Exit {
///     Service::new("quickstart")
///         .schedule(Schedule::heartbeat(), heartbeat)
///         .on_start(|_| async { tracing::info!("starting up") })
///         .run()
///         .await
/// }
/// ```
pub struct Service<S = ()> {
    pub(crate) name: String,
    pub(crate) uuid: Option<String>,
    pub(crate) options: Options,
    pub(crate) state: S,
    pub(crate) envelope: Option<SharedEnvelope>,
    pub(crate) layers: Vec<LayerFn>,
    pub(crate) registrations: Vec<Registration>,
    pub(crate) hooks: Hooks,
    pub(crate) checks: Vec<(String, CheckFn)>,
}

pub(crate) type LayerFn = Arc<dyn Fn(BoxMessageService) -> BoxMessageService + Send + Sync>;

/// A hook after type erasure.
pub(crate) type HookFn = Box<dyn FnOnce() -> BoxFuture<'static, Result<(), BoxError>> + Send>;

/// The hooks of each lifecycle step, in registration order.
#[derive(Default)]
pub(crate) struct Hooks {
    pub(crate) on_start: Vec<HookFn>,
    pub(crate) on_started: Vec<HookFn>,
    pub(crate) on_stopping: Vec<HookFn>,
    pub(crate) on_stop: Vec<HookFn>,
}

impl Hooks {
    /// No hook at all.
    pub(crate) fn is_empty(&self) -> bool {
        self.on_start.is_empty()
            && self.on_started.is_empty()
            && self.on_stopping.is_empty()
            && self.on_stop.is_empty()
    }
}

/// Everything a transport needs when the service starts.
#[derive(Clone)]
#[allow(dead_code)] // identity, options and envelope serve the message transports
pub(crate) struct RunContext {
    pub(crate) identity: ServiceIdentity,
    pub(crate) options: Arc<Options>,
    pub(crate) shutdown: Shutdown,
    pub(crate) layers: Arc<[LayerFn]>,
    pub(crate) envelope: Option<SharedEnvelope>,
    pub(crate) resources: Arc<std::sync::Mutex<Resources>>,
    pub(crate) health: Health,
    pub(crate) probes: Probes,
}

/// Values the handlers of one service share (one AMQP connection, one set of AWS clients).
pub(crate) type Resources =
    std::collections::HashMap<std::any::TypeId, Box<dyn std::any::Any + Send + Sync>>;

impl RunContext {
    /// The service's shared `T`, made by `init` the first time it is asked for.
    #[allow(dead_code)] // used by the message transports
    pub(crate) fn shared<T: Clone + Send + Sync + 'static>(&self, init: impl FnOnce() -> T) -> T {
        let mut resources = self
            .resources
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let entry = resources
            .entry(std::any::TypeId::of::<T>())
            .or_insert_with(|| Box::new(init()));
        match entry.downcast_ref::<T>() {
            Some(value) => value.clone(),
            None => unreachable!("resources are keyed by their type"),
        }
    }

    /// `service` wrapped in the service's message layers (first added = outermost), then
    /// in the layer that hands it the service's publishers, in the envelope, if one is
    /// given, then (instrumented) in the telemetry layer, outermost of all: the one path of
    /// every message source, so a message that does not open gets the same record and
    /// outcome, and its span, with or without telemetry.
    pub(crate) fn wrap(
        &self,
        service: BoxMessageService,
        envelope: Option<&SharedEnvelope>,
    ) -> BoxMessageService {
        let publishers = crate::publishers::Publishers::of(self);
        wrap(&self.layers, service, envelope, Some(&publishers))
    }
}

/// `service` wrapped in `layers` (first = outermost), then in the layer that hands it the
/// service's `publishers` (if given), in the envelope, if one is given, then (instrumented)
/// in the telemetry layer: a message handler as every source, and
/// [`Service::handle`](crate::Service) in tests, run it.
#[cfg_attr(
    not(any(
        feature = "amqp",
        feature = "sqs",
        feature = "schedule",
        feature = "test-util"
    )),
    allow(dead_code)
)]
pub(crate) fn wrap(
    layers: &[LayerFn],
    service: BoxMessageService,
    envelope: Option<&SharedEnvelope>,
    publishers: Option<&crate::publishers::Publishers>,
) -> BoxMessageService {
    let mut service = service;
    for layer in layers.iter().rev() {
        service = layer(service);
    }
    // One box for the publishers and the envelope (a box per message).
    let publishers = publishers.map(crate::publishers::Publishers::message_layer);
    let service = match (envelope, publishers) {
        (Some(envelope), Some(publishers)) => BoxCloneSyncService::new(
            tomodachi_core::EnvelopeLayer::new(envelope.clone()).layer(publishers.layer(service)),
        ),
        (Some(envelope), None) => BoxCloneSyncService::new(
            tomodachi_core::EnvelopeLayer::new(envelope.clone()).layer(service),
        ),
        (None, Some(publishers)) => BoxCloneSyncService::new(publishers.layer(service)),
        (None, None) => service,
    };
    // `--opentelemetry-instrument`: the span is outermost, around the envelope.
    #[cfg(feature = "otel")]
    if let Some(telemetry) = crate::instrument::telemetry() {
        return BoxCloneSyncService::new(telemetry.message_layer().layer(service));
    }
    service
}

/// The work a source does after its setup; resolves once drained.
pub(crate) type Running = BoxFuture<'static, Result<(), BoxError>>;

#[cfg_attr(
    not(any(
        feature = "amqp",
        feature = "sqs",
        feature = "schedule",
        feature = "http"
    )),
    allow(dead_code)
)]
impl RunContext {
    /// Registers a source called `name` with the health registry (starting).
    pub(crate) fn reporter(&self, name: impl Into<String>) -> HealthReporter {
        self.health.reporter(name)
    }

    /// A started source's work as [`Running`], reported to `health`: ready now,
    /// draining from the moment shutdown reaches the sources, stopped once drained.
    pub(crate) fn running<F, E>(&self, health: HealthReporter, work: F) -> Running
    where
        F: Future<Output = Result<(), E>> + Send + 'static,
        E: Into<BoxError>,
    {
        health.ready();
        let shutdown = self.shutdown.clone();
        Box::pin(async move {
            let work = async move { work.await.map_err(Into::<BoxError>::into) };
            tokio::pin!(work);
            let result = tokio::select! {
                result = &mut work => result,
                () = shutdown.triggered() => {
                    health.draining();
                    work.await
                }
            };
            health.stopped();
            result
        })
    }
}

/// A transport handler waiting for the service to start.
pub(crate) struct Registration {
    pub(crate) transport: Transport,
    pub(crate) start:
        Box<dyn FnOnce(RunContext) -> BoxFuture<'static, Result<Running, BoxError>> + Send>,
}

impl Service<()> {
    /// A service called `name`, with default options and no state.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            uuid: None,
            options: Options::default(),
            state: (),
            envelope: None,
            layers: Vec::new(),
            registrations: Vec::new(),
            hooks: Hooks::default(),
            checks: Vec::new(),
        }
    }
}

impl<S> Service<S>
where
    S: Clone + Send + Sync + 'static,
{
    /// Sets the state handlers read with `State<T>` and hooks receive. Handlers added
    /// before keep the state they were added with.
    pub fn state<S2>(self, state: S2) -> Service<S2>
    where
        S2: Clone + Send + Sync + 'static,
    {
        Service {
            name: self.name,
            uuid: self.uuid,
            options: self.options,
            state,
            envelope: self.envelope,
            layers: self.layers,
            registrations: self.registrations,
            hooks: self.hooks,
            checks: self.checks,
        }
    }

    /// The state.
    pub fn state_ref(&self) -> &S {
        &self.state
    }

    /// Sets the service's uuid (random per process by default, as in tomodachi).
    #[must_use]
    pub fn uuid(mut self, uuid: impl Into<String>) -> Self {
        self.uuid = Some(uuid.into());
        self
    }

    /// Replaces the options (`TOMODACHI_*` variables still apply on top at run time).
    #[must_use]
    pub fn options(mut self, options: Options) -> Self {
        self.options = options;
        self
    }

    /// Changes the options in place.
    #[must_use]
    pub fn configure(mut self, f: impl FnOnce(&mut Options)) -> Self {
        f(&mut self.options);
        self
    }

    /// The options.
    pub fn options_ref(&self) -> &Options {
        &self.options
    }

    /// The envelope of the service's messages (tomodachi's `message_envelope`); without
    /// one, messages are raw.
    #[must_use]
    pub fn envelope(mut self, envelope: impl tomodachi_core::Envelope) -> Self {
        self.envelope = Some(tomodachi_core::envelope::shared(envelope));
        self
    }

    /// Wraps every message handler (AMQP, SNS+SQS, scheduled) in `layer`. The first layer
    /// added is the outermost; the envelope opens messages before any of them.
    ///
    /// Any tower layer works whose service answers `Message` with `Outcome`: its errors
    /// are classified as handler errors are (see the source's `on_failure`). How this
    /// order compares with `Handler::layer` and `HttpRouter::layer`:
    /// [`middleware`](crate::middleware).
    #[must_use]
    pub fn layer<L>(mut self, layer: L) -> Self
    where
        L: Layer<BoxMessageService> + Send + Sync + 'static,
        L::Service: tower::Service<Message, Response = Outcome> + Clone + Send + Sync + 'static,
        <L::Service as tower::Service<Message>>::Error: Into<BoxError>,
        <L::Service as tower::Service<Message>>::Future: Send + 'static,
    {
        self.layers.push(Arc::new(move |inner| {
            BoxCloneSyncService::new(tower::ServiceExt::map_err(layer.layer(inner), Into::into))
        }));
        self
    }

    /// Runs `hook` first of all, before any transport starts (tomodachi's
    /// `_start_service`). An error stops the service with exit code 1.
    #[must_use]
    pub fn on_start<F, Fut, R>(mut self, hook: F) -> Self
    where
        F: FnOnce(S) -> Fut + Send + 'static,
        Fut: Future<Output = R> + Send + 'static,
        R: HookResult,
    {
        let hook = self.hook(hook);
        self.hooks.on_start.push(hook);
        self
    }

    /// Runs `hook` once every transport is set up, before the service counts as started
    /// (`_started_service`). An error stops the service with exit code 1.
    #[must_use]
    pub fn on_started<F, Fut, R>(mut self, hook: F) -> Self
    where
        F: FnOnce(S) -> Fut + Send + 'static,
        Fut: Future<Output = R> + Send + 'static,
        R: HookResult,
    {
        let hook = self.hook(hook);
        self.hooks.on_started.push(hook);
        self
    }

    /// Runs `hook` when the service begins to stop, before transports drain
    /// (`_stopping_service`). Errors are logged.
    #[must_use]
    pub fn on_stopping<F, Fut, R>(mut self, hook: F) -> Self
    where
        F: FnOnce(S) -> Fut + Send + 'static,
        Fut: Future<Output = R> + Send + 'static,
        R: HookResult,
    {
        let hook = self.hook(hook);
        self.hooks.on_stopping.push(hook);
        self
    }

    /// Runs `hook` last, once every transport has drained (`_stop_service`). Errors are
    /// logged.
    #[must_use]
    pub fn on_stop<F, Fut, R>(mut self, hook: F) -> Self
    where
        F: FnOnce(S) -> Fut + Send + 'static,
        Fut: Future<Output = R> + Send + 'static,
        R: HookResult,
    {
        let hook = self.hook(hook);
        self.hooks.on_stop.push(hook);
        self
    }

    /// Adds a readiness check called `name` (a database ping, say): the readiness probe
    /// runs it on every request while the service is running, and answers 503 while it
    /// fails (the error is the reason in the probe's JSON). It gets the service's state.
    ///
    /// ```no_run
    /// use tomodachi::Service;
    ///
    /// #[derive(Clone)]
    /// struct Db;
    ///
    /// impl Db {
    ///     async fn ping(&self) -> Result<(), std::io::Error> {
    ///         Ok(())
    ///     }
    /// }
    ///
    /// # async fn tick() {}
    /// # async fn run() -> tomodachi::Exit {
    /// Service::new("orders")
    ///     .state(Db)
    ///     .health_check("database", |db: Db| async move { db.ping().await })
    ///     # .schedule(tomodachi::Schedule::heartbeat(), tick)
    ///     .run()
    ///     .await
    /// # }
    /// ```
    #[must_use]
    pub fn health_check<F, Fut, R>(mut self, name: impl Into<String>, check: F) -> Self
    where
        F: Fn(S) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = R> + Send + 'static,
        R: HookResult,
    {
        let check = crate::health::check_fn(self.state.clone(), check);
        self.checks.push((name.into(), check));
        self
    }

    fn hook<F, Fut, R>(&self, hook: F) -> HookFn
    where
        F: FnOnce(S) -> Fut + Send + 'static,
        Fut: Future<Output = R> + Send + 'static,
        R: HookResult,
    {
        let state = self.state.clone();
        Box::new(move || Box::pin(async move { hook(state).await.into_hook_result() }))
    }

    /// Adds a message source of your own: `source` (any [`Source`](tomodachi_core::Source),
    /// such as a transport written outside tomodachi, on core's
    /// [`Driver`](tomodachi_core::driver::Driver)) drives `service`, wrapped in the
    /// service's message layers, its envelope and (instrumented) telemetry, exactly as the
    /// built-in transports wrap theirs. It starts with the other transports and drains on
    /// shutdown; a setup error stops the service with exit code 1.
    ///
    /// ```
    /// use tomodachi::{BoxError, Message, Outcome, Service, Shutdown, Source};
    /// use tomodachi::core::stats::{TaskStats, Transport};
    ///
    /// static STATS: TaskStats = TaskStats::new();
    /// static IDLE: Transport = Transport::new("idle", &STATS);
    ///
    /// /// A source that waits for shutdown.
    /// struct Idle;
    ///
    /// impl<S: Send + 'static> Source<S> for Idle {
    ///     type Error = std::convert::Infallible;
    ///     type Running = futures_util::future::BoxFuture<'static, Result<(), Self::Error>>;
    ///
    ///     async fn start(self, _service: S, shutdown: Shutdown) -> Result<Self::Running, Self::Error> {
    ///         Ok(Box::pin(async move {
    ///             shutdown.triggered().await;
    ///             Ok(())
    ///         }))
    ///     }
    /// }
    ///
    /// let noop = tower::service_fn(|_: Message| async { Ok::<_, BoxError>(Outcome::Ack) });
    /// let service = Service::new("custom").source(IDLE, Idle, noop);
    /// # let _ = service;
    /// ```
    #[must_use]
    pub fn source<Src, T>(self, transport: Transport, source: Src, service: T) -> Self
    where
        Src: tomodachi_core::Source<BoxMessageService>,
        T: tower::Service<Message, Response = Outcome> + Clone + Send + Sync + 'static,
        T::Error: Into<BoxError>,
        T::Future: Send + 'static,
    {
        let service = boxed(service);
        self.register(transport, move |context| async move {
            let envelope = context.envelope.clone();
            let service = context.wrap(service, envelope.as_ref());
            let health = context.reporter(transport.as_str());
            let work = source
                .start(service, context.shutdown.clone())
                .await
                .map_err(Into::into)?;
            Ok(context.running(health, work))
        })
    }

    /// Registers a transport's handler (used by the transport methods): `start` sets the
    /// transport up when the service starts and returns the work to run.
    pub(crate) fn register<F, Fut>(self, transport: Transport, start: F) -> Self
    where
        F: FnOnce(RunContext) -> Fut + Send + 'static,
        Fut: Future<Output = Result<Running, BoxError>> + Send + 'static,
    {
        self.register_boxed(transport, move |context| Box::pin(start(context)))
    }

    /// [`register`](Self::register) for a `start` that boxes its own future. The built-in
    /// transports start in non-generic functions of this crate, so that their set-up and
    /// serving code is compiled once here, not in each program for its state type.
    pub(crate) fn register_boxed<F>(mut self, transport: Transport, start: F) -> Self
    where
        F: FnOnce(RunContext) -> BoxFuture<'static, Result<Running, BoxError>> + Send + 'static,
    {
        self.registrations.push(Registration {
            transport,
            start: Box::new(start),
        });
        self
    }

    /// `handler` with the service's state, boxed, and its name.
    #[cfg_attr(
        not(any(
            feature = "amqp",
            feature = "sqs",
            feature = "schedule",
            feature = "test-util"
        )),
        allow(dead_code)
    )]
    pub(crate) fn message_handler<H, T>(&self, handler: H) -> (BoxMessageService, &'static str)
    where
        H: tomodachi_core::Handler<T, S>,
        T: 'static,
    {
        let service = handler.with_state(self.state.clone());
        let name = service.name();
        (BoxCloneSyncService::new(service), name)
    }

    /// Runs the service as a process: reads the command line and `TOMODACHI_*`
    /// variables, sets up logging, starts, runs until SIGINT/SIGTERM or
    /// [`exit`](crate::exit), stops. Returns the exit code.
    pub fn run(self) -> impl Future<Output = crate::Exit> + Send + 'static {
        crate::Process::new().service(self).run()
    }

    /// [`run`](Service::run) with `settings` instead of the command line and the
    /// `TOMODACHI_*` variables of its flags: for a program that parses its own command
    /// line. A `tracing` subscriber the program installed before stays (tomodachi's
    /// logger is installed only where there is none).
    ///
    /// ```no_run
    /// use tomodachi::logging::{LogFormat, LogLevel};
    /// use tomodachi::{Schedule, Service, Settings};
    ///
    /// async fn tick() {}
    ///
    /// # async fn run() -> tomodachi::Exit {
    /// let settings = Settings { logger: LogFormat::Json, log_level: LogLevel::Debug, ..Settings::default() };
    /// Service::new("own-cli").schedule(Schedule::heartbeat(), tick).run_with(settings).await
    /// # }
    /// ```
    pub fn run_with(
        self,
        settings: crate::Settings,
    ) -> impl Future<Output = crate::Exit> + Send + 'static {
        crate::Process::new().settings(settings).service(self).run()
    }
}

impl<S> fmt::Debug for Service<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Service")
            .field("name", &self.name)
            .field("uuid", &self.uuid)
            .field("handlers", &self.registrations.len())
            .field("layers", &self.layers.len())
            .finish_non_exhaustive()
    }
}

/// What a lifecycle hook may return: `()` or `Result<(), E>`.
pub trait HookResult: Send {
    /// Converts into a result.
    fn into_hook_result(self) -> Result<(), BoxError>;
}

impl HookResult for () {
    fn into_hook_result(self) -> Result<(), BoxError> {
        Ok(())
    }
}

impl<E: Into<BoxError> + Send> HookResult for Result<(), E> {
    fn into_hook_result(self) -> Result<(), BoxError> {
        self.map_err(Into::into)
    }
}

/// A service with its state erased, ready to run in a [`Process`](crate::Process).
pub(crate) struct Plan {
    pub(crate) identity: ServiceIdentity,
    pub(crate) options: Options,
    pub(crate) envelope: Option<SharedEnvelope>,
    pub(crate) layers: Arc<[LayerFn]>,
    pub(crate) registrations: Vec<Registration>,
    pub(crate) hooks: Hooks,
    pub(crate) checks: Vec<(String, CheckFn)>,
}

impl<S> From<Service<S>> for Plan {
    fn from(service: Service<S>) -> Self {
        let identity = match service.uuid {
            Some(uuid) => ServiceIdentity::new(service.name, uuid),
            None => ServiceIdentity::with_random_uuid(service.name),
        };
        Plan {
            identity,
            options: service.options,
            envelope: service.envelope,
            layers: service.layers.into(),
            registrations: service.registrations,
            hooks: service.hooks,
            checks: service.checks,
        }
    }
}
