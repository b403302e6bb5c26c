//! A process running one or more services: command line, logging, signals, exit code.

use std::ffi::OsString;
use std::process::{ExitCode, Termination};
use std::sync::Mutex;

use tomodachi_core::Shutdown;

use crate::lifecycle::{self, Ending};
use crate::service::Plan;

/// The exit code of a service process (`main` can return it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Exit(i32);

impl Exit {
    /// Exit code 0.
    pub const SUCCESS: Exit = Exit(0);
    /// Exit code 1: the service failed to start (or has neither handlers nor hooks).
    pub const FAILURE: Exit = Exit(1);
    /// Exit code 2: bad command line or environment.
    pub const USAGE: Exit = Exit(2);

    /// The numeric code.
    pub const fn code(self) -> i32 {
        self.0
    }
}

impl From<i32> for Exit {
    fn from(code: i32) -> Self {
        Exit(code)
    }
}

impl Termination for Exit {
    fn report(self) -> ExitCode {
        ExitCode::from(u8::try_from(self.0 & 0xff).unwrap_or(1))
    }
}

/// The shutdown of the running process, for [`exit`].
static CURRENT: Mutex<Option<Shutdown>> = Mutex::new(None);

/// Stops the running service(s) gracefully with exit code `code` (tomodachi's
/// `tomodachi.exit(code)`): `on_stopping`, transports drain, `on_stop`, exit.
///
/// Does nothing when no service is running.
pub fn exit(code: i32) {
    let current = CURRENT
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .clone();
    if let Some(shutdown) = current {
        shutdown.exit(code);
    }
}

/// Runs one or more services in one process.
///
/// ```no_run
/// use tomodachi::{Process, Schedule, Service};
///
/// async fn tick() {}
///
/// # async fn run() -> tomodachi::Exit {
/// Process::new()
///     .service(Service::new("a").schedule(Schedule::heartbeat(), tick))
///     .service(Service::new("b").schedule(Schedule::minutely(), tick))
///     .run()
///     .await
/// # }
/// ```
#[derive(Default)]
pub struct Process {
    plans: Vec<Plan>,
    args: Option<Vec<OsString>>,
    env: Option<Vec<(String, String)>>,
    settings: Option<crate::cli::Settings>,
    shutdown: Shutdown,
    signals: bool,
    logging: bool,
    opentelemetry: bool,
    #[cfg(feature = "otel")]
    telemetry: Option<tomodachi_otel::Telemetry>,
}

impl std::fmt::Debug for Process {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Process")
            .field("services", &self.plans.len())
            .finish_non_exhaustive()
    }
}

impl Process {
    /// A process with no services yet, reading the real command line and environment.
    pub fn new() -> Self {
        Self {
            signals: true,
            logging: true,
            ..Self::default()
        }
    }

    /// Adds a service.
    #[must_use]
    pub fn service<S>(mut self, service: crate::Service<S>) -> Self {
        self.plans.push(service.into());
        self
    }

    /// Uses these arguments instead of the process's (the first is the program name).
    #[must_use]
    pub fn args<I, A>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = A>,
        A: Into<OsString>,
    {
        self.args = Some(args.into_iter().map(Into::into).collect());
        self
    }

    /// Uses these variables instead of the process's environment.
    #[must_use]
    pub fn env<I, K, V>(mut self, vars: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        self.env = Some(
            vars.into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        );
        self
    }

    /// Runs with these settings instead of reading the command line and the `TOMODACHI_*`
    /// variables of its flags (`TOMODACHI_LOGGER`, ...): for a program with a command
    /// line of its own. The options' variables (`TOMODACHI_HTTP_PORT`, ...) still apply.
    #[must_use]
    pub fn settings(mut self, settings: crate::cli::Settings) -> Self {
        self.settings = Some(settings);
        self
    }

    /// Does not install SIGINT/SIGTERM handlers (stop it with [`Process::shutdown`]).
    #[must_use]
    pub fn without_signals(mut self) -> Self {
        self.signals = false;
        self
    }

    /// Turns on OpenTelemetry instrumentation as `--opentelemetry-instrument` /
    /// `TOMODACHI_OPENTELEMETRY_INSTRUMENT=1` do (needs the `otel` feature): spans and
    /// metrics for every handler, `traceparent` on every publish, exporters from `OTEL_*`.
    #[must_use]
    pub fn opentelemetry_instrument(mut self) -> Self {
        self.opentelemetry = true;
        self
    }

    /// Instruments every handler with `telemetry` (built from your own tracer and meter
    /// providers: your exporters, sampler, views) instead of the providers `OTEL_*` would
    /// build. The publish hook is installed as with [`Process::opentelemetry_instrument`];
    /// flushing and shutting down the providers stays yours.
    #[cfg(feature = "otel")]
    #[must_use]
    pub fn opentelemetry(mut self, telemetry: tomodachi_otel::Telemetry) -> Self {
        self.telemetry = Some(telemetry);
        self
    }

    /// Does not install a global logger (for tests that install their own).
    #[must_use]
    pub fn without_logging(mut self) -> Self {
        self.logging = false;
        self
    }

    /// The process's shutdown: trigger it (or call [`exit`]) to stop the services.
    pub fn shutdown(&self) -> Shutdown {
        self.shutdown.clone()
    }

    /// Runs every service until a signal or [`exit`], then stops them. Returns the exit code.
    ///
    /// The future is boxed here, in this crate: its whole state machine (start-up, the
    /// transports, the lifecycle, shutdown) is compiled once with tomodachi, not again in
    /// every program that awaits it (an `async fn`'s body is compiled where it is polled).
    /// One allocation per process.
    #[inline(never)]
    pub fn run(self) -> impl Future<Output = Exit> + Send + 'static {
        let run: futures_util::future::BoxFuture<'static, Exit> = Box::pin(self.run_inner());
        run
    }

    async fn run_inner(mut self) -> Exit {
        // Signals first, so that a signal during startup stops the process promptly.
        if self.signals
            && let Err(error) = self.shutdown.listen_for_signals()
        {
            eprintln!("tomodachi: cannot install signal handlers: {error}");
            return Exit::FAILURE;
        }
        *CURRENT
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(self.shutdown.clone());

        let env = self
            .env
            .take()
            .unwrap_or_else(|| std::env::vars().collect());
        let args = self
            .args
            .take()
            .unwrap_or_else(|| std::env::args_os().collect());
        let parsed = match self.settings {
            Some(settings) => Ok(settings),
            None => {
                crate::cli::Settings::parse(args, env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            }
        };
        let settings = match parsed {
            Ok(settings) => settings,
            Err(crate::cli::CliOutcome::Exit { code, output }) => {
                if code == 0 {
                    print!("{output}");
                } else {
                    eprint!("{output}");
                }
                return Exit(code);
            }
        };
        if self.logging {
            // A subscriber installed before (the program's own, or a first process's)
            // stays: `init` only installs one where there is none.
            let _ = crate::logging::init(settings.logger, settings.log_level);
        }
        crate::context::mark_init();

        for plan in &mut self.plans {
            if let Err(error) = plan
                .options
                .apply_env(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            {
                tracing::error!(target: "tomodachi.init", "invalid options: {error}");
                return Exit::FAILURE;
            }
        }
        let names: Vec<&str> = self.plans.iter().map(|plan| &*plan.identity.name).collect();
        // Coloured on a terminal unless NO_COLOR (or the like) is set.
        let _ = crate::banner::print(&names, settings.production);
        for plan in &self.plans {
            let servers = plan
                .registrations
                .iter()
                .filter(|registration| registration.transport.as_str() == "http")
                .count();
            if servers > 1 {
                tracing::error!(target: "tomodachi.init", service = &*plan.identity.name, "http() was called {servers} times: a service has one HTTP router, put every route into it");
                return Exit::FAILURE;
            }
        }
        // A service with lifecycle hooks and no handlers runs until stopped, as in
        // tomodachi; one with neither has nothing to do.
        if self.plans.is_empty()
            || self
                .plans
                .iter()
                .any(|plan| plan.registrations.is_empty() && plan.hooks.is_empty())
        {
            tracing::warn!(target: "tomodachi.init", "no transport handlers defined");
            return Exit::FAILURE;
        }

        let instrument = self.opentelemetry || settings.opentelemetry_instrument;
        #[cfg(feature = "otel")]
        let first = self.plans.first().map(|plan| plan.identity.clone());
        #[cfg(feature = "otel")]
        let installed = match (instrument, first) {
            _ if self.telemetry.is_some() => {
                crate::instrument::use_telemetry(self.telemetry.take());
                None
            }
            (true, Some(identity)) => match crate::instrument::install(&identity, &env).await {
                Ok(installed) => Some(installed),
                Err(error) => {
                    tracing::error!(target: "tomodachi.opentelemetry", "opentelemetry instrumentation failed: {error}");
                    return Exit::FAILURE;
                }
            },
            _ => None,
        };
        #[cfg(not(feature = "otel"))]
        if instrument {
            tracing::warn!(target: "tomodachi.opentelemetry", "--opentelemetry-instrument needs the `otel` feature of tomodachi: running without instrumentation");
        }

        let ending = lifecycle::run(std::mem::take(&mut self.plans), self.shutdown.clone()).await;
        #[cfg(feature = "otel")]
        if let Some(installed) = installed {
            crate::instrument::shutdown(installed).await;
        }
        *CURRENT
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = None;
        match (ending, self.shutdown.exit_code()) {
            (Ending::Failed, _) => Exit::FAILURE,
            (_, Some(code)) => Exit(code),
            (_, None) => Exit::SUCCESS,
        }
    }
}

#[cfg(test)]
mod tests {
    /// A service's run can be spawned onto a runtime.
    #[test]
    fn run_is_send() {
        fn assert_send<T: Send>(_: &T) {}
        let run = super::Process::new().run();
        assert_send(&run);
    }
}
