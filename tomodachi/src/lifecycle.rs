//! Start, run and stop services in tomodachi's order.
//!
//! `initializing service instance` → `starting the service` → `on_start` hooks → every
//! transport's setup → `enabled handler functions` → `on_started` hooks → `started service
//! successfully` → (SIGINT/SIGTERM/`exit`) → `stopping service` → `on_stopping` hooks →
//! every transport drains → `on_stop` hooks → `terminated service`.
//!
//! A failing `on_start`, transport setup or `on_started` logs `failed to start service`
//! and exits with 1, still running `on_stopping` and `on_stop`. A signal during startup
//! abandons the startup at once and stops the same way.
//!
//! Health: the probes' listeners (option `health.port`) start first and stop last; the
//! process is ready from `started service successfully` until shutdown starts.

use std::sync::Arc;

use futures_util::future::join_all;
use tomodachi_core::health::Phase;
use tomodachi_core::{BoxError, Health, Shutdown};

use crate::health::Probes;
use crate::service::{HookFn, Plan, RunContext, Running};

/// How the lifecycle ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ending {
    /// Stopped after a successful start.
    Stopped,
    /// The startup failed.
    Failed,
    /// Stopped by a signal (or `exit`) while starting.
    Interrupted,
}

/// Runs `plans` until `stop` is triggered. Transports watch a shutdown of their own that
/// is triggered only after the `on_stopping` hooks have run.
pub(crate) async fn run(mut plans: Vec<Plan>, stop: Shutdown) -> Ending {
    let sources_shutdown = Shutdown::new();
    let health = Health::new();
    let heartbeat = health.spawn_heartbeat(crate::health::HEARTBEAT);
    let checks = plans
        .iter_mut()
        .flat_map(|plan| std::mem::take(&mut plan.checks))
        .collect();
    let probes = Probes::new(health.clone(), stop.clone(), checks);
    // The probes' own listeners answer until the very end.
    let probes_shutdown = Shutdown::new();
    let mut probe_listeners = Vec::new();
    let mut identities = Vec::with_capacity(plans.len());
    let mut hooks = Vec::with_capacity(plans.len());
    let mut registrations = Vec::with_capacity(plans.len());
    // The envelopes' inflate cap is the process's: the largest any service asks for.
    if let Some(cap) = plans
        .iter()
        .map(|plan| plan.options.envelope.max_inflated_size)
        .max()
    {
        tomodachi_core::envelope::set_max_inflated_size(cap);
    }
    for plan in plans {
        tracing::info!(target: "tomodachi.lifecycle", service = &*plan.identity.name, uuid = &*plan.identity.uuid, "initializing service instance");
        let context = RunContext {
            identity: plan.identity.clone(),
            options: Arc::new(plan.options),
            shutdown: sources_shutdown.clone(),
            layers: plan.layers,
            envelope: plan.envelope,
            resources: Arc::default(),
            health: health.clone(),
            probes: probes.clone(),
        };
        identities.push(plan.identity);
        hooks.push(plan.hooks);
        registrations.push((context, plan.registrations));
    }
    for identity in &identities {
        tracing::info!(target: "tomodachi.lifecycle", service = &*identity.name, state = "starting", "starting the service");
    }

    let on_start: Vec<_> = hooks
        .iter_mut()
        .map(|h| std::mem::take(&mut h.on_start))
        .collect();
    let on_started: Vec<_> = hooks
        .iter_mut()
        .map(|h| std::mem::take(&mut h.on_started))
        .collect();
    let listeners: Vec<_> = registrations
        .iter()
        .map(|(context, _)| context.options.health.clone())
        .filter(|options| options.enabled)
        .filter_map(|options| Some((options.port?, options)))
        .collect();
    let startup = async {
        for (port, options) in &listeners {
            let listener = listen(&probes, options, *port, probes_shutdown.clone()).await?;
            probe_listeners.push(tokio::spawn(listener));
        }
        run_hooks_strict(on_start).await?;
        let mut running: Vec<Running> = Vec::new();
        for (context, registrations) in registrations {
            for registration in registrations {
                registration.transport.enable();
                running.push((registration.start)(context.clone()).await?);
            }
        }
        for identity in &identities {
            tracing::info!(target: "tomodachi.lifecycle", service = &*identity.name, state = "initialized", "enabled handler functions");
        }
        run_hooks_strict(on_started).await?;
        Ok::<_, BoxError>(running)
    };

    let (ending, running) = tokio::select! {
        biased;
        () = stop.triggered() => (Ending::Interrupted, Vec::new()),
        result = startup => match result {
            Ok(running) => (Ending::Stopped, running),
            Err(error) => {
                tracing::error!(target: "exception", "uncaught exception: {error}");
                for identity in &identities {
                    tracing::warn!(target: "tomodachi.lifecycle", service = &*identity.name, state = "aborting", "failed to start service");
                }
                (Ending::Failed, Vec::new())
            }
        },
    };

    // Logged before the transports' work is spawned, so that no handler record (such as
    // a schedule's first run) comes before it, as in tomodachi.
    if ending == Ending::Stopped {
        for identity in &identities {
            tracing::info!(target: "tomodachi.lifecycle", service = &*identity.name, state = "ready", "started service successfully");
        }
        health.set_phase(Phase::Running);
    }
    // A transport that fails while running stops the service with exit code 1.
    let tasks: Vec<_> = running
        .into_iter()
        .map(|running| {
            let stop = stop.clone();
            let sources_shutdown = sources_shutdown.clone();
            tokio::spawn(async move {
                let result = running.await;
                if let Err(error) = &result {
                    tracing::error!(target: "exception", "uncaught exception: {error}");
                    if !sources_shutdown.is_triggered() {
                        stop.set_exit_code(1);
                        stop.trigger();
                    }
                }
                result
            })
        })
        .collect();
    if ending == Ending::Stopped {
        stop.triggered().await;
    }
    health.set_phase(Phase::Stopping);

    for identity in &identities {
        tracing::info!(target: "tomodachi.lifecycle", service = &*identity.name, state = "stopping", "stopping service");
    }
    let on_stopping: Vec<_> = hooks
        .iter_mut()
        .map(|h| std::mem::take(&mut h.on_stopping))
        .collect();
    run_hooks_logged(on_stopping).await;
    sources_shutdown.trigger();
    for result in join_all(tasks).await {
        match result {
            Ok(Ok(())) => {}
            Ok(Err(_)) => {} // logged by the task
            Err(join) => tracing::error!(target: "exception", "uncaught exception: {join}"),
        }
    }
    let on_stop: Vec<_> = hooks
        .iter_mut()
        .map(|h| std::mem::take(&mut h.on_stop))
        .collect();
    run_hooks_logged(on_stop).await;
    probes_shutdown.trigger();
    for listener in join_all(probe_listeners).await {
        if let Ok(Err(error)) = listener {
            tracing::warn!(target: "tomodachi.health", "the health probes' listener failed: {error}");
        }
    }
    heartbeat.abort();
    for identity in &identities {
        tracing::info!(target: "tomodachi.lifecycle", service = &*identity.name, state = "terminated", "terminated service");
    }
    ending
}

/// Starts the probes' own listener on `port`.
#[cfg(feature = "http")]
async fn listen(
    probes: &Probes,
    options: &crate::health::HealthOptions,
    port: u16,
    shutdown: Shutdown,
) -> Result<Running, BoxError> {
    probes.listen(options, port, shutdown).await
}

/// Without the `http` feature there is no listener to start.
#[cfg(not(feature = "http"))]
async fn listen(
    _probes: &Probes,
    _options: &crate::health::HealthOptions,
    port: u16,
    _shutdown: Shutdown,
) -> Result<Running, BoxError> {
    Err(format!(
        "health.port is {port}: the health probes' listener needs the `http` feature of tomodachi"
    )
    .into())
}

async fn run_hooks_strict(hooks: Vec<Vec<HookFn>>) -> Result<(), BoxError> {
    for hook in hooks.into_iter().flatten() {
        hook().await?;
    }
    Ok(())
}

async fn run_hooks_logged(hooks: Vec<Vec<HookFn>>) {
    for hook in hooks.into_iter().flatten() {
        if let Err(error) = hook().await {
            tracing::error!(target: "exception", "uncaught exception: {error}");
        }
    }
}
