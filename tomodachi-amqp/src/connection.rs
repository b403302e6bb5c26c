//! One broker connection, shared by consumers and publishers, recovered after drops.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use lapin::uri::{AMQPAuthority, AMQPQueryString, AMQPScheme, AMQPUri, AMQPUserInfo};
use lapin::{Channel, Connection, ConnectionProperties};
use tokio::sync::Mutex;
use tomodachi_core::{HealthReporter, Shutdown};

use crate::{AmqpOptions, Error};

/// lapin's recovery back-off: first retry after this, doubling…
const RECOVERY_MIN_DELAY: Duration = Duration::from_millis(200);
/// …up to this…
const RECOVERY_MAX_DELAY: Duration = Duration::from_secs(5);
/// …this many times before it gives up.
const RECOVERY_TRIES: usize = 5;
/// How often [`watch`] looks at the connection's state.
const WATCH_EVERY: Duration = Duration::from_millis(100);

/// A lazily opened connection to the broker of [`AmqpOptions`] (host, port, login,
/// password, virtualhost, ssl, heartbeat), shared by every consumer and publisher given a
/// clone of it.
///
/// Each consumer and publisher gets its own channel on it. The connection recovers by
/// itself after a drop (lapin's auto-recover replays exchanges, queues, bindings, qos and
/// consumers); if recovery gives up, the next user opens a new connection.
///
/// ```
/// use tomodachi_amqp::{AmqpConnection, AmqpOptions};
///
/// let connection = AmqpConnection::new(AmqpOptions::default()).with_name("orders");
/// assert_eq!(connection.name(), Some("orders"));
/// ```
#[derive(Clone)]
pub struct AmqpConnection {
    inner: Arc<Inner>,
}

struct Inner {
    options: AmqpOptions,
    name: Option<String>,
    connection: Mutex<Option<Arc<Connection>>>,
}

impl fmt::Debug for AmqpConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AmqpConnection")
            .field("host", &self.inner.options.host)
            .field("port", &self.inner.options.port)
            .field("virtualhost", &self.inner.options.virtualhost)
            .field("name", &self.inner.name)
            .finish_non_exhaustive()
    }
}

impl AmqpConnection {
    /// A connection to the broker of `options`; nothing is opened until first used.
    pub fn new(options: AmqpOptions) -> Self {
        Self {
            inner: Arc::new(Inner {
                options,
                name: None,
                connection: Mutex::new(None),
            }),
        }
    }

    /// Sets the client-provided connection name (shown by `rabbitmqctl list_connections
    /// client_properties` and the management UI). Call before sharing the connection.
    #[must_use]
    pub fn with_name(self, name: impl Into<String>) -> Self {
        Self {
            inner: Arc::new(Inner {
                options: self.inner.options.clone(),
                name: Some(name.into()),
                connection: Mutex::new(None),
            }),
        }
    }

    /// The options it connects with.
    pub fn options(&self) -> &AmqpOptions {
        &self.inner.options
    }

    /// The client-provided connection name, if set.
    pub fn name(&self) -> Option<&str> {
        self.inner.name.as_deref()
    }

    /// Opens the connection now (it is otherwise opened on first use).
    ///
    /// # Errors
    ///
    /// [`Error::Connect`] if the broker cannot be reached or refuses the login.
    pub async fn connect(&self) -> Result<(), Error> {
        self.connection().await.map(drop)
    }

    /// Opens a new channel, connecting (again) if the connection is closed or failed.
    pub(crate) async fn channel(&self) -> Result<Channel, Error> {
        let connection = self.connection().await?;
        connection
            .create_channel()
            .await
            .map_err(|e| self.connect_error(&e))
    }

    async fn connection(&self) -> Result<Arc<Connection>, Error> {
        let mut slot = self.inner.connection.lock().await;
        if let Some(connection) = slot.as_ref() {
            let status = connection.status();
            if status.connected() || status.reconnecting() || status.connecting() {
                return Ok(Arc::clone(connection));
            }
        }
        let connection = Arc::new(self.open().await?);
        *slot = Some(Arc::clone(&connection));
        Ok(connection)
    }

    async fn open(&self) -> Result<Connection, Error> {
        self.open_with(true).await
    }

    /// Opens a connection of its own (not the shared one), with lapin's recovery or
    /// without it (a lease must see every drop).
    pub(crate) async fn open_with(&self, recover: bool) -> Result<Connection, Error> {
        let options = &self.inner.options;
        let uri = AMQPUri {
            scheme: if options.ssl {
                AMQPScheme::AMQPS
            } else {
                AMQPScheme::AMQP
            },
            authority: AMQPAuthority {
                userinfo: AMQPUserInfo {
                    username: options.login.clone(),
                    password: options.password.clone(),
                },
                host: options.host.clone(),
                port: options.port,
            },
            vhost: options.virtualhost.clone(),
            query: AMQPQueryString {
                heartbeat: Some(options.heartbeat),
                ..AMQPQueryString::default()
            },
        };
        // lapin retries the TCP connect (and each recovery) with this back-off: 0.2 s
        // doubling, 5 tries (about 6 s) so that startup fails in seconds without a
        // broker. Longer outages are the consumers' and publishers' own reconnect loops.
        let mut properties = ConnectionProperties::default();
        if recover {
            properties = properties.enable_auto_recover();
        }
        let mut properties = properties
            .configure_backoff(|backoff| {
                backoff
                    .with_min_delay(RECOVERY_MIN_DELAY)
                    .with_max_delay(RECOVERY_MAX_DELAY)
                    .with_max_times(RECOVERY_TRIES)
            })
            .with_client_property("product".into(), "tomodachi-rs".into());
        if let Some(name) = &self.inner.name {
            properties = properties.with_connection_name(name.as_str().into());
        }
        let connection = Connection::connect_uri(uri, properties)
            .await
            .map_err(|e| self.connect_error(&e))?;
        tracing::debug!(
            target: "tomodachi.amqp",
            host = %options.host,
            port = options.port,
            virtualhost = %options.virtualhost,
            "connected [amqp]"
        );
        tokio::spawn(watch(
            connection.status().clone(),
            connection.events_listener(),
            self.inner.name.clone().unwrap_or_default(),
        ));
        Ok(connection)
    }

    fn connect_error(&self, error: &lapin::Error) -> Error {
        let options = &self.inner.options;
        let error = Error::Connect {
            host: options.host.clone(),
            port: options.port,
            source: Box::new(error.clone()),
        };
        tracing::warn!(target: "tomodachi.amqp", "{error}");
        error
    }

    /// Closes the connection (consumers should be stopped first). A later use reopens it.
    pub async fn close(&self) {
        let connection = self.inner.connection.lock().await.take();
        if let Some(connection) = connection
            && connection.status().connected()
            && let Err(error) = connection.close(200, "OK".into()).await
        {
            tracing::debug!(target: "tomodachi.amqp", %error, "closing the connection failed");
        }
    }

    /// Reports this connection's drops and recoveries to `health` until `shutdown` or
    /// until the connection is replaced by a new one: degraded while lapin recovers it
    /// (or the broker blocks it), ready once it is connected again. lapin tells the start
    /// of a recovery by no event, so its status is read every 100 ms (a recovery takes
    /// at least its 200 ms back-off).
    pub(crate) async fn report_health(&self, health: HealthReporter, shutdown: Shutdown) {
        let Some(connection) = self.inner.connection.lock().await.clone() else {
            return;
        };
        let connection = Arc::downgrade(&connection);
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(Duration::from_millis(100));
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut last = None;
            loop {
                tokio::select! {
                    biased;
                    () = shutdown.triggered() => break,
                    _ = ticks.tick() => {}
                }
                let Some(connection) = connection.upgrade() else {
                    break;
                };
                let status = connection.status();
                let state = if status.connected() && !status.blocked() {
                    None
                } else if status.blocked() {
                    Some("connection blocked by the broker")
                } else if status.reconnecting() || status.connecting() {
                    Some("connection lost: recovering")
                } else {
                    Some("connection closed")
                };
                if last != Some(state) {
                    match state {
                        None => health.ready(),
                        Some(reason) => health.degraded(reason),
                    }
                    last = Some(state);
                }
                if status.closed() || status.errored() {
                    // Replaced by a new connection (the consumer reports on that one).
                    break;
                }
            }
        });
    }

    /// Whether the connection is open right now.
    pub async fn is_connected(&self) -> bool {
        self.inner
            .connection
            .lock()
            .await
            .as_ref()
            .is_some_and(|c| c.status().connected())
    }
}

/// Logs what happens to a connection, since lapin recovers it silently: the drop
/// (warning, with the reason when the broker or lapin gave one), each recovery attempt on
/// lapin's back-off schedule, and the recovery with how long the connection was down. Ends
/// when the connection is closed or its recovery gives up (the consumers' own reconnect
/// loop, which logs its retries, takes over then).
async fn watch(
    status: lapin::ConnectionStatus,
    events: impl futures_util::Stream<Item = lapin::Event> + Send + 'static,
    name: String,
) {
    use futures_util::StreamExt as _;

    struct Outage {
        since: tokio::time::Instant,
        attempt: u32,
        next_attempt: tokio::time::Instant,
        backoff: Duration,
    }

    tokio::pin!(events);
    let mut reason: Option<String> = None;
    let mut outage: Option<Outage> = None;
    loop {
        tokio::select! {
            event = events.next() => match event {
                Some(lapin::Event::Error(error)) => reason = Some(error.to_string()),
                Some(_) => {}
                None => return,
            },
            () = tokio::time::sleep(WATCH_EVERY) => {}
        }
        let now = tokio::time::Instant::now();
        if status.connected() {
            if let Some(outage) = outage.take() {
                let after = now - outage.since;
                tracing::warn!(
                    target: "tomodachi.amqp",
                    connection_name = %name,
                    after_ms = after.as_millis() as u64,
                    attempts = outage.attempt,
                    "connection to the broker recovered [amqp] after {after:.1?}"
                );
            }
        } else if status.reconnecting() || status.connecting() {
            match outage.as_mut() {
                None => {
                    // lapin reports the cause of a drop it recovers from only in its own
                    // record (`lapin::channel`, "Connection closed", ERROR, with the
                    // broker's close reason); errors it cannot recover from come as events.
                    let reason = reason.take().unwrap_or_else(|| {
                        "closed by the broker or the network (cause in lapin's record)".to_owned()
                    });
                    tracing::warn!(
                        target: "tomodachi.amqp",
                        connection_name = %name,
                        reason = %reason,
                        retry_in_ms = RECOVERY_MIN_DELAY.as_millis() as u64,
                        "connection to the broker lost [amqp]: {reason}"
                    );
                    outage = Some(Outage {
                        since: now,
                        attempt: 0,
                        next_attempt: now + RECOVERY_MIN_DELAY,
                        backoff: RECOVERY_MIN_DELAY,
                    });
                }
                Some(outage) if now >= outage.next_attempt => {
                    outage.attempt += 1;
                    outage.backoff = (outage.backoff * 2).min(RECOVERY_MAX_DELAY);
                    outage.next_attempt = now + outage.backoff;
                    tracing::warn!(
                        target: "tomodachi.amqp",
                        connection_name = %name,
                        attempt = outage.attempt,
                        down_ms = (now - outage.since).as_millis() as u64,
                        retry_in_ms = outage.backoff.as_millis() as u64,
                        "reconnecting to the broker [amqp] (attempt {}, next in {:?})",
                        outage.attempt,
                        outage.backoff
                    );
                }
                Some(_) => {}
            }
        } else if status.errored() {
            let reason = reason
                .take()
                .unwrap_or_else(|| "recovery failed".to_owned());
            tracing::warn!(
                target: "tomodachi.amqp",
                connection_name = %name,
                reason = %reason,
                "connection to the broker could not be recovered [amqp]: {reason}; consumers reconnect with a new connection"
            );
            return;
        } else if status.closed() || status.closing() {
            return;
        }
    }
}
