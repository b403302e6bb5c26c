//! Health of a process's sources: each reports its state, probes read them.
//!
//! A [`Health`] is the registry (one per process); every source gets a [`HealthReporter`]
//! from it and reports its transitions (starting → ready, degraded with a reason and back,
//! draining, stopped). Readers take a [`HealthSnapshot`] or watch for changes, as tonic's
//! health service does with its reporter and `watch` channel.
//!
//! ```
//! use tomodachi_core::health::{Health, Phase, SourceState};
//!
//! let health = Health::new();
//! let amqp = health.reporter("amqp:orders");
//! health.set_phase(Phase::Running);
//! assert!(!health.snapshot().is_ready()); // still starting
//!
//! amqp.ready();
//! assert!(health.snapshot().is_ready());
//!
//! amqp.degraded("connection lost: reconnecting");
//! let snapshot = health.snapshot();
//! assert!(!snapshot.is_ready());
//! assert_eq!(
//!     snapshot.sources()[0].state(),
//!     &SourceState::Degraded { reason: "connection lost: reconnecting".into() }
//! );
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;
use serde::ser::SerializeMap;
use tokio::sync::watch;
use tokio::time::Instant;

/// The state of one source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
#[non_exhaustive]
pub enum SourceState {
    /// Setting up (connecting, declaring, binding).
    Starting,
    /// Taking work.
    Ready,
    /// Running but not taking work as it should (reconnecting, receives failing).
    Degraded {
        /// What is wrong, for people.
        reason: String,
    },
    /// Shutdown started: takes no new work, finishes what is in flight.
    Draining,
    /// Done.
    Stopped,
}

/// Where the process is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Phase {
    /// `on_start`, the sources' setup and `on_started` are running.
    Starting,
    /// Started successfully.
    Running,
    /// Shutdown has started (signal or `exit`): the process is not ready from here on.
    Stopping,
}

/// One source in a [`HealthSnapshot`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceHealth {
    name: Arc<str>,
    state: SourceState,
    since: Instant,
}

impl SourceHealth {
    /// The source's name (`http`, `amqp:<queue>`, ...).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its state.
    pub fn state(&self) -> &SourceState {
        &self.state
    }

    /// How long it has been in this state.
    pub fn for_how_long(&self) -> Duration {
        self.since.elapsed()
    }
}

/// The health of every source at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthSnapshot {
    phase: Phase,
    sources: Vec<SourceHealth>,
}

impl HealthSnapshot {
    /// The lifecycle phase.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// The sources, in the order they registered.
    pub fn sources(&self) -> &[SourceHealth] {
        &self.sources
    }

    /// Ready: started, not stopping, and every source [`SourceState::Ready`].
    pub fn is_ready(&self) -> bool {
        self.phase == Phase::Running
            && self
                .sources
                .iter()
                .all(|source| source.state == SourceState::Ready)
    }
}

/// The JSON of a snapshot: `{"phase": …, "sources": {name: {"state": …, "reason": …,
/// "seconds": …}}}`.
impl Serialize for HealthSnapshot {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        struct Sources<'a>(&'a [SourceHealth]);
        impl Serialize for Sources<'_> {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let mut map = serializer.serialize_map(Some(self.0.len()))?;
                for source in self.0 {
                    map.serialize_entry(&*source.name, &Entry(source))?;
                }
                map.end()
            }
        }
        struct Entry<'a>(&'a SourceHealth);
        impl Serialize for Entry<'_> {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let (state, reason) = match &self.0.state {
                    SourceState::Starting => ("starting", None),
                    SourceState::Ready => ("ready", None),
                    SourceState::Degraded { reason } => ("degraded", Some(reason)),
                    SourceState::Draining => ("draining", None),
                    SourceState::Stopped => ("stopped", None),
                };
                let mut map = serializer.serialize_map(None)?;
                map.serialize_entry("state", state)?;
                if let Some(reason) = reason {
                    map.serialize_entry("reason", reason)?;
                }
                let seconds = self.0.for_how_long().as_millis() as f64 / 1000.0;
                map.serialize_entry("seconds", &seconds)?;
                map.end()
            }
        }
        let mut map = serializer.serialize_map(Some(2))?;
        map.serialize_entry("phase", &self.phase)?;
        map.serialize_entry("sources", &Sources(&self.sources))?;
        map.end()
    }
}

/// The health registry of a process: sources report into it, probes read it.
///
/// Cloning is cheap; every clone is the same registry.
#[derive(Debug, Clone)]
pub struct Health {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    state: watch::Sender<HealthSnapshot>,
    /// When the heartbeat last ran, in milliseconds since `epoch`.
    beat: AtomicU64,
    epoch: Instant,
}

impl Default for Health {
    fn default() -> Self {
        Self::new()
    }
}

impl Health {
    /// A registry with no sources, in [`Phase::Starting`].
    pub fn new() -> Self {
        let (state, _) = watch::channel(HealthSnapshot {
            phase: Phase::Starting,
            sources: Vec::new(),
        });
        Self {
            inner: Arc::new(Inner {
                state,
                beat: AtomicU64::new(0),
                epoch: Instant::now(),
            }),
        }
    }

    /// Registers a source called `name` (in [`SourceState::Starting`]) and returns its
    /// reporter. A name already taken gets a `#2`, `#3`, ... suffix.
    pub fn reporter(&self, name: impl Into<String>) -> HealthReporter {
        let name = name.into();
        let mut index = 0;
        self.inner.state.send_modify(|snapshot| {
            let taken = |candidate: &str| snapshot.sources.iter().any(|s| &*s.name == candidate);
            let mut unique = name.clone();
            let mut n = 1;
            while taken(&unique) {
                n += 1;
                unique = format!("{name}#{n}");
            }
            index = snapshot.sources.len();
            snapshot.sources.push(SourceHealth {
                name: unique.into(),
                state: SourceState::Starting,
                since: Instant::now(),
            });
        });
        HealthReporter {
            health: self.clone(),
            index,
        }
    }

    /// Moves the process to `phase` (the facade's lifecycle does this).
    pub fn set_phase(&self, phase: Phase) {
        self.inner.state.send_if_modified(|snapshot| {
            let changed = snapshot.phase != phase;
            snapshot.phase = phase;
            changed
        });
    }

    /// The health now.
    pub fn snapshot(&self) -> HealthSnapshot {
        self.inner.state.borrow().clone()
    }

    /// A receiver that sees every change (`changed().await`).
    pub fn subscribe(&self) -> watch::Receiver<HealthSnapshot> {
        self.inner.state.subscribe()
    }

    /// Records that the runtime ran the heartbeat now (see [`Health::since_heartbeat`]).
    pub fn beat(&self) {
        let millis = self.inner.epoch.elapsed().as_millis();
        self.inner
            .beat
            .store(u64::try_from(millis).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// Time since the last [`beat`](Health::beat) (since the registry was made, if none).
    pub fn since_heartbeat(&self) -> Duration {
        let beat = Duration::from_millis(self.inner.beat.load(Ordering::Relaxed));
        self.inner.epoch.elapsed().saturating_sub(beat)
    }

    /// Beats every `period` on the current runtime for as long as the registry exists:
    /// a runtime that stops running its tasks or timers stops the beats (liveness).
    pub fn spawn_heartbeat(&self, period: Duration) -> tokio::task::JoinHandle<()> {
        let weak = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(period);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                match weak.upgrade() {
                    Some(inner) => Health { inner }.beat(),
                    None => break,
                }
            }
        })
    }
}

/// A source's handle on the [`Health`] registry: report each transition.
///
/// [`HealthReporter::default`] is a reporter of its own registry that nobody reads, for
/// sources run without one.
#[derive(Debug, Clone)]
pub struct HealthReporter {
    health: Health,
    index: usize,
}

impl Default for HealthReporter {
    fn default() -> Self {
        Health::new().reporter("detached")
    }
}

impl HealthReporter {
    /// Reports `state` (a repeat of the current state changes nothing).
    pub fn set(&self, state: SourceState) {
        self.health.inner.state.send_if_modified(|snapshot| {
            match snapshot.sources.get_mut(self.index) {
                Some(source) if source.state != state => {
                    source.state = state;
                    source.since = Instant::now();
                    true
                }
                _ => false,
            }
        });
    }

    /// Reports [`SourceState::Ready`].
    pub fn ready(&self) {
        self.set(SourceState::Ready);
    }

    /// Reports [`SourceState::Degraded`] with `reason`.
    pub fn degraded(&self, reason: impl Into<String>) {
        self.set(SourceState::Degraded {
            reason: reason.into(),
        });
    }

    /// Reports [`SourceState::Draining`].
    pub fn draining(&self) {
        self.set(SourceState::Draining);
    }

    /// Reports [`SourceState::Stopped`].
    pub fn stopped(&self) {
        self.set(SourceState::Stopped);
    }

    /// The source's state now.
    pub fn state(&self) -> SourceState {
        self.health.inner.state.borrow().sources[self.index]
            .state
            .clone()
    }

    /// The source's name in the registry.
    pub fn name(&self) -> Arc<str> {
        self.health.inner.state.borrow().sources[self.index]
            .name
            .clone()
    }

    /// The registry it reports to.
    pub fn health(&self) -> &Health {
        &self.health
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_needs_running_phase_and_every_source_ready() {
        let health = Health::new();
        let a = health.reporter("amqp");
        let b = health.reporter("amqp");
        assert_eq!(&*b.name(), "amqp#2");
        a.ready();
        b.ready();
        assert!(!health.snapshot().is_ready(), "still starting");
        health.set_phase(Phase::Running);
        assert!(health.snapshot().is_ready());
        b.degraded("receive failing");
        assert!(!health.snapshot().is_ready());
        b.ready();
        assert!(health.snapshot().is_ready());
        health.set_phase(Phase::Stopping);
        assert!(!health.snapshot().is_ready());
    }

    #[tokio::test]
    async fn subscribers_see_changes_but_not_repeats() {
        let health = Health::new();
        let source = health.reporter("sqs:orders");
        let mut changes = health.subscribe();
        changes.mark_unchanged();
        source.ready();
        assert!(changes.has_changed().unwrap());
        changes.mark_unchanged();
        source.ready();
        assert!(!changes.has_changed().unwrap());
        source.degraded("ReceiveMessage failing");
        changes.changed().await.unwrap();
        assert_eq!(
            changes.borrow().sources()[0].state(),
            &SourceState::Degraded {
                reason: "ReceiveMessage failing".into()
            }
        );
    }

    #[test]
    fn json_names_each_source_and_its_state() {
        let health = Health::new();
        health.reporter("http").ready();
        health.reporter("amqp:orders").degraded("reconnecting");
        let json = serde_json::to_value(health.snapshot()).unwrap();
        assert_eq!(json["phase"], "starting");
        assert_eq!(json["sources"]["http"]["state"], "ready");
        assert_eq!(json["sources"]["amqp:orders"]["state"], "degraded");
        assert_eq!(json["sources"]["amqp:orders"]["reason"], "reconnecting");
        assert!(json["sources"]["http"]["seconds"].is_number());
        assert!(json["sources"]["http"].get("reason").is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn heartbeat_goes_stale_once_it_stops_running() {
        let health = Health::new();
        let task = health.spawn_heartbeat(Duration::from_secs(1));
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert!(health.since_heartbeat() <= Duration::from_millis(500));
        task.abort();
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert!(health.since_heartbeat() >= Duration::from_secs(10));
    }
}
