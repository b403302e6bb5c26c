//! Command-line flags and `TOMODACHI_*` variables of a service process.
//!
//! | flag | variable | default |
//! |---|---|---|
//! | `--production` | `TOMODACHI_PRODUCTION` | off: the banner is printed |
//! | `--log-level`, `-l`, `--log` | `TOMODACHI_LOG_LEVEL` | `info` |
//! | `--logger console\|json\|disabled` (`python` = `console`) | `TOMODACHI_LOGGER` | `console` |
//! | `--opentelemetry-instrument` | `TOMODACHI_OPENTELEMETRY_INSTRUMENT` | off |
//! | `--version`, `-v`, `-V` | | |
//!
//! A switch variable is on unless empty or one of `0`, `no`, `none`, `false`, `off`. When a
//! flag and its variable both give a value and the values differ, parsing fails; every
//! failure exits with code 2 (as a clap usage error does), `--help` and `--version` with 0.
//!
//! The parser is hand-written (clap's rules for these flags: `--flag value`, `--flag=value`,
//! `-lvalue`, each flag at most once, no positional arguments). With the `clap` feature,
//! [`Args`] is also a clap parser, to flatten into a program's own.
//!
//! ```
//! use tomodachi::cli::Settings;
//! use tomodachi::logging::{LogFormat, LogLevel};
//!
//! let settings = Settings::parse(
//!     ["orders", "--log-level", "debug"],
//!     [("TOMODACHI_LOGGER", "json"), ("TOMODACHI_PRODUCTION", "1")],
//! )?;
//! assert_eq!(settings.log_level, LogLevel::Debug);
//! assert_eq!(settings.logger, LogFormat::Json);
//! assert!(settings.production);
//!
//! let conflict = Settings::parse(["orders", "--logger", "json"], [("TOMODACHI_LOGGER", "console")]);
//! assert!(matches!(conflict, Err(tomodachi::cli::CliOutcome::Exit { code: 2, .. })));
//! # Ok::<(), tomodachi::cli::CliOutcome>(())
//! ```

use std::ffi::OsString;

#[cfg(feature = "clap")]
use clap::{ArgAction, Parser};

use crate::logging::{LogFormat, LogLevel};

/// `--version` output after the program name: this crate's version and the Python
/// tomodachi version it is wire-compatible with.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (compatible with tomodachi 0.29.0)"
);

const PRODUCTION_VAR: &str = "TOMODACHI_PRODUCTION";
const LOG_LEVEL_VAR: &str = "TOMODACHI_LOG_LEVEL";
const LOGGER_VAR: &str = "TOMODACHI_LOGGER";
const OPENTELEMETRY_VAR: &str = "TOMODACHI_OPENTELEMETRY_INSTRUMENT";

/// `--help` output.
const HELP: &str = "\
Runs the tomodachi-rs service(s) of this program.

Usage: tomodachi-rs [OPTIONS]

Options:
      --production                Hide the info banner (production mode)
  -l, --log-level <LEVEL>         Minimum log level: debug, info, warning, error or critical (or a number) [aliases: --log]
      --logger <FORMAT>           Log format: console, json or disabled (python = console)
      --opentelemetry-instrument  Instrument the service(s) with OpenTelemetry
  -v, --version                   Print the version and exit
  -h, --help                      Print help
";

/// The command-line flags as given (no environment applied).
///
/// With the `clap` feature it derives `clap::Parser` and `clap::Args`, so a program with
/// flags of its own can `#[command(flatten)]` it into its parser and then call
/// [`Settings::resolve`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[cfg_attr(feature = "clap", derive(Parser))]
#[cfg_attr(
    feature = "clap",
    command(
        name = "tomodachi-rs",
        version = VERSION,
        disable_version_flag = true,
        about = "Runs the tomodachi-rs service(s) of this program."
    )
)]
pub struct Args {
    /// Hide the info banner (production mode).
    #[cfg_attr(feature = "clap", arg(long))]
    pub production: bool,

    /// Minimum log level: debug, info, warning, error or critical (or a number).
    #[cfg_attr(
        feature = "clap",
        arg(
            long = "log-level",
            short = 'l',
            visible_alias = "log",
            value_name = "LEVEL"
        )
    )]
    pub log_level: Option<LogLevel>,

    /// Log format: console, json or disabled (python = console).
    #[cfg_attr(feature = "clap", arg(long, value_name = "FORMAT"))]
    pub logger: Option<LogFormat>,

    /// Instrument the service(s) with OpenTelemetry.
    #[cfg_attr(feature = "clap", arg(long))]
    pub opentelemetry_instrument: bool,

    /// Print the version and exit.
    #[cfg(feature = "clap")]
    #[arg(short = 'v', short_alias = 'V', long, action = ArgAction::Version)]
    version: Option<bool>,
}

impl Args {
    /// Parses `args` (the first is the program name) as clap would for these flags.
    ///
    /// # Errors
    ///
    /// [`CliError::Usage`]: a usage error (exit code 2), or the `--help` or `--version`
    /// text (exit code 0).
    pub fn try_parse_args<I, T>(args: I) -> Result<Self, CliError>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString>,
    {
        // The parser itself is not generic: compiled once, not per argument type.
        Self::parse_os_args(args.into_iter().skip(1).map(Into::into).collect())
    }

    /// [`try_parse_args`](Self::try_parse_args) on the arguments after the program name.
    fn parse_os_args(args: Vec<OsString>) -> Result<Self, CliError> {
        let mut parsed = Args::default();
        let mut seen: Vec<&'static str> = Vec::new();
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let arg = arg.into_string().map_err(|arg| {
                usage(format!(
                    "invalid UTF-8 was detected in '{}'",
                    arg.to_string_lossy()
                ))
            })?;
            let (name, inline) = match arg.split_once('=') {
                Some((name, value)) if name.starts_with("--") => (name, Some(value)),
                _ if arg.starts_with("-l") && arg.len() > 2 => {
                    ("-l", Some(arg[2..].strip_prefix('=').unwrap_or(&arg[2..])))
                }
                _ => (arg.as_str(), None),
            };
            let flag = match name {
                "-h" | "--help" => return Err(print(HELP.to_owned())),
                "-v" | "-V" | "--version" => {
                    return Err(print(format!("tomodachi-rs {VERSION}\n")));
                }
                "--production" => "--production",
                "--opentelemetry-instrument" => "--opentelemetry-instrument",
                "-l" | "--log-level" | "--log" => "--log-level <LEVEL>",
                "--logger" => "--logger <FORMAT>",
                _ => return Err(usage(format!("unexpected argument '{arg}' found"))),
            };
            if seen.contains(&flag) {
                return Err(usage(format!(
                    "the argument '{flag}' cannot be used multiple times"
                )));
            }
            seen.push(flag);
            let takes_value = flag.ends_with('>');
            if !takes_value {
                if let Some(value) = inline {
                    return Err(usage(format!(
                        "unexpected value '{value}' for '{flag}' found; no more were expected"
                    )));
                }
                match flag {
                    "--production" => parsed.production = true,
                    _ => parsed.opentelemetry_instrument = true,
                }
                continue;
            }
            let value = match inline {
                Some(value) => value.to_owned(),
                None => match args.next().map(OsString::into_string) {
                    Some(Ok(value)) if !value.starts_with('-') || value == "-" => value,
                    _ => {
                        return Err(usage(format!(
                            "a value is required for '{flag}' but none was supplied"
                        )));
                    }
                },
            };
            let invalid =
                |reason: String| usage(format!("invalid value '{value}' for '{flag}': {reason}"));
            if flag == "--logger <FORMAT>" {
                parsed.logger = Some(value.parse().map_err(|e| invalid(format!("{e}")))?);
            } else {
                parsed.log_level = Some(value.parse().map_err(|e| invalid(format!("{e}")))?);
            }
        }
        Ok(parsed)
    }
}

/// A usage error as clap prints it.
fn usage(message: String) -> CliError {
    CliError::Usage {
        code: 2,
        output: format!(
            "error: {message}\n\nUsage: tomodachi-rs [OPTIONS]\n\nFor more information, try '--help'.\n"
        ),
    }
}

/// `--help` or `--version`: print and exit 0.
fn print(output: String) -> CliError {
    CliError::Usage { code: 0, output }
}

/// The process settings from flags and environment together.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Settings {
    /// Production mode: no banner.
    pub production: bool,
    /// Minimum log level.
    pub log_level: LogLevel,
    /// Log format.
    pub logger: LogFormat,
    /// Instrument with OpenTelemetry.
    pub opentelemetry_instrument: bool,
}

/// Why the command line and environment give no [`Settings`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CliError {
    /// A usage error (exit code 2), or a `--help`/`--version` request (exit code 0).
    #[error("{output}")]
    Usage {
        /// 2 for a usage error, 0 for `--help`/`--version`.
        code: i32,
        /// What to print: the error and the usage line, or the help or version text.
        output: String,
    },
    /// A variable holds a value its flag would not accept.
    #[error("invalid {var} environment value '{value}': {reason}")]
    InvalidEnv {
        /// The variable.
        var: &'static str,
        /// Its value.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A flag and its variable give different values.
    #[error("invalid value for {flag} option: '{cli}' differs from env {var} ('{env}')")]
    Conflict {
        /// The flag, such as `--log-level`.
        flag: &'static str,
        /// The flag's value.
        cli: String,
        /// The variable, such as `TOMODACHI_LOG_LEVEL`.
        var: &'static str,
        /// The variable's value.
        env: String,
    },
}

impl CliError {
    /// The process exit code: 0 for `--help`/`--version`, 2 for every error.
    pub fn exit_code(&self) -> i32 {
        match self {
            Self::Usage { code, .. } => *code,
            _ => 2,
        }
    }

    /// The text to print: help or version text (for stdout), or an error (for stderr).
    pub fn render(&self) -> String {
        match self {
            Self::Usage { output, .. } => output.clone(),
            other => format!("error: {other}\n"),
        }
    }
}

/// The end of parsing when the process should not run: print `output` (to stdout when
/// `code` is 0, else to stderr) and exit with `code`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{output}")]
pub enum CliOutcome {
    /// Exit with this code after printing this text.
    Exit {
        /// 0 for `--help`/`--version`, 2 for errors.
        code: i32,
        /// What to print.
        output: String,
    },
}

/// A clap error of a program's own parser that flattens [`Args`].
#[cfg(feature = "clap")]
impl From<clap::Error> for CliError {
    fn from(error: clap::Error) -> Self {
        Self::Usage {
            code: error.exit_code(),
            output: error.render().to_string(),
        }
    }
}

impl From<CliError> for CliOutcome {
    fn from(error: CliError) -> Self {
        Self::Exit {
            code: error.exit_code(),
            output: error.render(),
        }
    }
}

impl Settings {
    /// Parses `args` (the first is the program name) and the `TOMODACHI_*` variables among
    /// `env`.
    pub fn parse<I, T, E, K, V>(args: I, env: E) -> Result<Self, CliOutcome>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
        E: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        Self::try_parse(args, env).map_err(CliOutcome::from)
    }

    /// As [`Settings::parse`], with the error kept typed.
    pub fn try_parse<I, T, E, K, V>(args: I, env: E) -> Result<Self, CliError>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
        E: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let args = Args::try_parse_args(args)?;
        Self::resolve(args, env)
    }

    /// This process's arguments and environment.
    pub fn from_process() -> Result<Self, CliOutcome> {
        let env = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)));
        Self::parse(std::env::args_os(), env)
    }

    /// Combines parsed flags with the `TOMODACHI_*` variables among `env`.
    pub fn resolve<E, K, V>(args: Args, env: E) -> Result<Self, CliError>
    where
        E: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut production = None;
        let mut log_level = None;
        let mut logger = None;
        let mut opentelemetry = None;
        for (k, v) in env {
            let slot = match k.as_ref() {
                PRODUCTION_VAR => &mut production,
                LOG_LEVEL_VAR => &mut log_level,
                LOGGER_VAR => &mut logger,
                OPENTELEMETRY_VAR => &mut opentelemetry,
                _ => continue,
            };
            let value = v.as_ref().trim();
            *slot = (!value.is_empty()).then(|| value.to_owned());
        }

        let log_level = merge(
            "--log-level",
            args.log_level,
            LOG_LEVEL_VAR,
            log_level,
            |s: &str| s.parse::<LogLevel>().map_err(|e| e.to_string()),
        )?;
        let logger = merge("--logger", args.logger, LOGGER_VAR, logger, |s: &str| {
            s.parse::<LogFormat>().map_err(|e| e.to_string())
        })?;
        Ok(Self {
            production: args.production || switch_on(production.as_deref()),
            log_level: log_level.unwrap_or_default(),
            logger: logger.unwrap_or_default(),
            opentelemetry_instrument: args.opentelemetry_instrument
                || switch_on(opentelemetry.as_deref()),
        })
    }
}

/// A switch variable is on unless unset, empty or a false word.
fn switch_on(value: Option<&str>) -> bool {
    value.is_some_and(|v| {
        !matches!(
            v.trim().to_ascii_lowercase().as_str(),
            "" | "0" | "no" | "none" | "false" | "off"
        )
    })
}

/// The value of a flag and its variable: either, or both when they agree.
fn merge<T: PartialEq + std::fmt::Display>(
    flag: &'static str,
    cli: Option<T>,
    var: &'static str,
    env: Option<String>,
    parse: impl Fn(&str) -> Result<T, String>,
) -> Result<Option<T>, CliError> {
    let from_env = match &env {
        Some(value) => Some(parse(value).map_err(|reason| CliError::InvalidEnv {
            var,
            value: value.clone(),
            reason,
        })?),
        None => None,
    };
    match (cli, from_env) {
        (Some(cli), Some(from_env)) if cli != from_env => Err(CliError::Conflict {
            flag,
            cli: cli.to_string(),
            var,
            env: env.unwrap_or_default(),
        }),
        (Some(value), _) | (None, Some(value)) => Ok(Some(value)),
        (None, None) => Ok(None),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const NO_ENV: [(&str, &str); 0] = [];

    fn parse(args: &[&str], env: &[(&str, &str)]) -> Result<Settings, CliError> {
        Settings::try_parse(
            std::iter::once("svc").chain(args.iter().copied()),
            env.iter().copied(),
        )
    }

    #[test]
    fn defaults() {
        let settings = parse(&[], &[]).unwrap();
        assert_eq!(settings, Settings::default());
        assert!(!settings.production);
        assert_eq!(settings.log_level, LogLevel::Info);
        assert_eq!(settings.logger, LogFormat::Console);
        assert!(!settings.opentelemetry_instrument);
    }

    #[test]
    fn flags() {
        let settings = parse(
            &[
                "--production",
                "--log-level",
                "WARNING",
                "--logger",
                "json",
                "--opentelemetry-instrument",
            ],
            &[],
        )
        .unwrap();
        assert_eq!(
            settings,
            Settings {
                production: true,
                log_level: LogLevel::Warning,
                logger: LogFormat::Json,
                opentelemetry_instrument: true,
            }
        );
        for spelling in [
            &["-l", "debug"][..],
            &["--log", "debug"],
            &["--log-level=debug"],
        ] {
            assert_eq!(parse(spelling, &[]).unwrap().log_level, LogLevel::Debug);
        }
        assert_eq!(
            parse(&["--logger", "python"], &[]).unwrap().logger,
            LogFormat::Console
        );
        assert_eq!(
            parse(&["--logger", "disabled"], &[]).unwrap().logger,
            LogFormat::Disabled
        );
        assert_eq!(
            parse(&["-l", "10"], &[]).unwrap().log_level,
            LogLevel::Debug
        );
    }

    #[test]
    fn environment() {
        let settings = parse(
            &[],
            &[
                ("TOMODACHI_PRODUCTION", "yes"),
                ("TOMODACHI_LOG_LEVEL", "error"),
                ("TOMODACHI_LOGGER", "JSON"),
                ("TOMODACHI_OPENTELEMETRY_INSTRUMENT", "1"),
                ("TOMODACHI_HTTP_PORT", "1"),
            ],
        )
        .unwrap();
        assert_eq!(
            settings,
            Settings {
                production: true,
                log_level: LogLevel::Error,
                logger: LogFormat::Json,
                opentelemetry_instrument: true,
            }
        );
    }

    #[test]
    fn switch_words() {
        for off in ["", "0", "no", "None", "FALSE", "off"] {
            let settings = parse(
                &[],
                &[
                    ("TOMODACHI_PRODUCTION", off),
                    ("TOMODACHI_OPENTELEMETRY_INSTRUMENT", off),
                ],
            )
            .unwrap();
            assert!(!settings.production, "{off:?}");
            assert!(!settings.opentelemetry_instrument, "{off:?}");
        }
        for on in ["1", "true", "yes", "on", "anything"] {
            assert!(
                parse(&[], &[("TOMODACHI_PRODUCTION", on)])
                    .unwrap()
                    .production,
                "{on}"
            );
        }
        // An off variable is "not given", as in tomodachi: the flag still turns it on.
        assert!(
            parse(&["--production"], &[("TOMODACHI_PRODUCTION", "0")])
                .unwrap()
                .production
        );
    }

    #[test]
    fn agreeing_flag_and_variable_are_fine() {
        let settings = parse(
            &["--log-level", "warn", "--logger", "python"],
            &[
                ("TOMODACHI_LOG_LEVEL", "WARNING"),
                ("TOMODACHI_LOGGER", "console"),
            ],
        )
        .unwrap();
        assert_eq!(settings.log_level, LogLevel::Warning);
        assert_eq!(settings.logger, LogFormat::Console);
    }

    #[test]
    fn disagreeing_flag_and_variable_exit_2() {
        let err = parse(
            &["--log-level", "debug"],
            &[("TOMODACHI_LOG_LEVEL", "info")],
        )
        .unwrap_err();
        assert_eq!(err.exit_code(), 2);
        match &err {
            CliError::Conflict {
                flag,
                cli,
                var,
                env,
            } => {
                assert_eq!(*flag, "--log-level");
                assert_eq!(cli, "debug");
                assert_eq!(*var, "TOMODACHI_LOG_LEVEL");
                assert_eq!(env, "info");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            err.render(),
            "error: invalid value for --log-level option: 'debug' differs from env TOMODACHI_LOG_LEVEL ('info')\n"
        );
        let err = parse(&["--logger", "json"], &[("TOMODACHI_LOGGER", "console")]).unwrap_err();
        assert!(matches!(
            err,
            CliError::Conflict {
                flag: "--logger",
                ..
            }
        ));
    }

    #[test]
    fn bad_variables_exit_2() {
        let err = parse(&[], &[("TOMODACHI_LOG_LEVEL", "loud")]).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(
            matches!(&err, CliError::InvalidEnv { var: "TOMODACHI_LOG_LEVEL", value, .. } if value == "loud")
        );
        assert!(err.to_string().contains("expected 'debug'"), "{err}");
        let err = parse(&[], &[("TOMODACHI_LOGGER", "xml")]).unwrap_err();
        assert!(matches!(
            err,
            CliError::InvalidEnv {
                var: "TOMODACHI_LOGGER",
                ..
            }
        ));
        // Checked even when the flag is given.
        assert!(parse(&["-l", "info"], &[("TOMODACHI_LOG_LEVEL", "loud")]).is_err());
    }

    #[test]
    fn usage_errors_exit_2() {
        for args in [
            &["--log-level", "loud"][..],
            &["--log-level"],
            &["--logger", "xml"],
            &["--unknown"],
            &["service.py"],
            &["--production=1"],
        ] {
            let err = parse(args, &[]).unwrap_err();
            assert!(matches!(err, CliError::Usage { .. }), "{args:?}");
            assert_eq!(err.exit_code(), 2, "{args:?}");
            assert!(err.render().starts_with("error:"), "{}", err.render());
        }
    }

    #[test]
    fn version_and_help_exit_0() {
        for flag in ["--version", "-v", "-V"] {
            let outcome = Settings::parse(["svc", flag], NO_ENV).unwrap_err();
            assert_eq!(
                outcome,
                CliOutcome::Exit {
                    code: 0,
                    output: format!(
                        "tomodachi-rs {} (compatible with tomodachi {})\n",
                        env!("CARGO_PKG_VERSION"),
                        crate::TOMODACHI_COMPATIBLE_VERSION
                    ),
                },
                "{flag}"
            );
        }
        let CliOutcome::Exit { code, output } =
            Settings::parse(["svc", "--help"], NO_ENV).unwrap_err();
        assert_eq!(code, 0);
        for text in [
            "--production",
            "--log-level",
            "--logger",
            "--opentelemetry-instrument",
        ] {
            assert!(output.contains(text), "{output}");
        }
    }

    #[test]
    fn outcome_of_an_error() {
        let outcome = Settings::parse(["svc", "--nope"], NO_ENV).unwrap_err();
        let CliOutcome::Exit { code, output } = outcome;
        assert_eq!(code, 2);
        assert!(output.contains("--nope"), "{output}");
    }

    #[test]
    fn repeated_flags_and_attached_values() {
        assert_eq!(parse(&["-ldebug"], &[]).unwrap().log_level, LogLevel::Debug);
        assert_eq!(
            parse(&["-l=error"], &[]).unwrap().log_level,
            LogLevel::Error
        );
        for args in [
            &["--production", "--production"][..],
            &["-l", "info", "--log", "debug"],
            &["--log-level", "--production"],
            &["--", "--production"],
        ] {
            let err = parse(args, &[]).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{args:?}");
            assert!(
                err.render().contains("Usage: tomodachi-rs"),
                "{}",
                err.render()
            );
        }
    }

    #[cfg(feature = "clap")]
    #[test]
    fn args_flatten_into_a_program_parser() {
        #[derive(Parser)]
        struct Program {
            #[command(flatten)]
            tomodachi: Args,
            #[arg(long)]
            workers: u8,
        }
        let program = Program::try_parse_from(["p", "--workers", "3", "--logger", "json"]).unwrap();
        assert_eq!(program.workers, 3);
        let settings = Settings::resolve(program.tomodachi, NO_ENV).unwrap();
        assert_eq!(settings.logger, LogFormat::Json);
    }
}
