//! Command-line flags and `TOMODACHI_*`/colour variables of a real service process (the
//! `fixture` binary, tests/bin/fixture.rs), as behaviour reference §7 and §8 describe.
//!
//! Most tests use `FIXTURE=exit_after_start`: a service whose handler calls
//! `tomodachi::exit(0)` once it runs, so each process starts, logs and stops by itself.

use std::time::Duration;

use tokio::process::Command;
use tomodachi_tests::child::{Child, command, run_to_end};

/// A generous bound for a process that stops by itself.
const RUN_LIMIT: Duration = Duration::from_secs(15);

const BANNER_TITLE: &str = "tomodachi-rs  友達";

/// The fixture in `mode` with `args`.
fn fixture(mode: &str, args: &[&str]) -> Command {
    let mut command = command(env!("CARGO_BIN_EXE_fixture"));
    command.env("FIXTURE", mode).args(args);
    command
}

/// Runs `command` to its end.
async fn run(mut command: Command) -> (Option<i32>, Child) {
    let (status, child) = run_to_end(&mut command, RUN_LIMIT).await;
    (status.code(), child)
}

#[tokio::test]
async fn version_flags_print_the_version_and_exit_0() {
    let expected = format!(
        "tomodachi-rs {} (compatible with tomodachi {})",
        env!("CARGO_PKG_VERSION"),
        tomodachi::TOMODACHI_COMPATIBLE_VERSION
    );
    for flag in ["--version", "-V", "-v"] {
        let (code, child) = run(fixture("lifecycle", &[flag])).await;
        assert_eq!(code, Some(0), "{flag}: {}", child.output());
        assert_eq!(child.stdout(), expected, "{flag}");
        assert_eq!(child.stderr(), "", "{flag}");
    }
}

#[tokio::test]
async fn an_unknown_flag_exits_2_naming_it() {
    let (code, child) = run(fixture("exit_after_start", &["--potatoes"])).await;
    assert_eq!(code, Some(2), "{}", child.output());
    assert!(child.stderr().contains("--potatoes"), "{}", child.output());
    assert_eq!(child.stdout(), "", "no banner before the usage error");
}

#[tokio::test]
async fn a_logger_flag_disagreeing_with_its_variable_exits_2() {
    let mut command = fixture("exit_after_start", &["--logger", "json"]);
    command.env("TOMODACHI_LOGGER", "console");
    let (code, child) = run(command).await;
    assert_eq!(code, Some(2), "{}", child.output());
    let stderr = child.stderr();
    assert!(
        stderr.contains("--logger") && stderr.contains("TOMODACHI_LOGGER"),
        "{stderr}"
    );
    assert!(!stderr.contains("started service"), "it never starts");

    // Agreeing values are fine.
    let mut command = fixture("exit_after_start", &["--logger", "json"]);
    command.env("TOMODACHI_LOGGER", "JSON");
    let (code, child) = run(command).await;
    assert_eq!(code, Some(0), "{}", child.output());
    assert!(!child.records().is_empty(), "{}", child.output());
}

#[tokio::test]
async fn production_mode_hides_the_banner() {
    let (code, child) = run(fixture("exit_after_start", &[])).await;
    assert_eq!(code, Some(0), "{}", child.output());
    let banner = child.stdout();
    assert!(banner.contains(BANNER_TITLE), "{banner}");
    assert!(
        banner.contains(&format!("[pid: {}]", child.pid())),
        "{banner}"
    );
    assert!(
        banner.contains("service                ⇢ fixture"),
        "{banner}"
    );
    assert!(
        !child.stderr().contains(BANNER_TITLE),
        "the banner goes to stdout only"
    );

    let mut command = fixture("exit_after_start", &[]);
    command.env("TOMODACHI_PRODUCTION", "1");
    let (code, child) = run(command).await;
    assert_eq!(code, Some(0), "{}", child.output());
    assert_eq!(
        child.stdout(),
        "",
        "TOMODACHI_PRODUCTION=1 prints no banner"
    );
    assert!(child.stderr().contains("started service successfully"));

    let (code, child) = run(fixture("exit_after_start", &["--production"])).await;
    assert_eq!(code, Some(0), "{}", child.output());
    assert_eq!(child.stdout(), "", "--production prints no banner");

    // An off word leaves the banner on.
    let mut command = fixture("exit_after_start", &[]);
    command.env("TOMODACHI_PRODUCTION", "false");
    let (_, child) = run(command).await;
    assert!(child.stdout().contains(BANNER_TITLE), "{}", child.output());
}

#[tokio::test]
async fn log_level_warning_hides_info_records() {
    let (code, child) = run(fixture("exit_after_start", &["--logger", "json"])).await;
    assert_eq!(code, Some(0), "{}", child.output());
    assert!(
        child
            .records()
            .iter()
            .any(|l| l.level() == Some("info")
                && l.message() == Some("started service successfully")),
        "info records by default: {}",
        child.output()
    );

    for (args, var) in [
        (&["--logger", "json", "--log-level", "warning"][..], None),
        (&["--logger", "json"][..], Some("WARNING")),
        (&["--logger", "json", "-l", "30"][..], None),
    ] {
        let mut command = fixture("exit_after_start", args);
        if let Some(level) = var {
            command.env("TOMODACHI_LOG_LEVEL", level);
        }
        let (code, child) = run(command).await;
        assert_eq!(code, Some(0), "{args:?} {var:?}: {}", child.output());
        let records = child.records();
        assert!(
            records.iter().any(|l| l.level() == Some("warning")
                && l.message() == Some("tomodachi.exit [0] was called")),
            "{args:?} {var:?}: warnings stay: {}",
            child.output()
        );
        let levels: Vec<_> = records.iter().filter_map(|l| l.level()).collect();
        assert!(
            levels.iter().all(|level| *level != "info"),
            "{args:?} {var:?}: {levels:?}"
        );
        assert_eq!(
            records.len(),
            child
                .lines()
                .iter()
                .filter(|l| l.stream == tomodachi_tests::child::Stream::Stderr)
                .count(),
            "every stderr line is a JSON record: {}",
            child.stderr()
        );
    }
}

#[tokio::test]
async fn an_invalid_option_variable_exits_1_naming_it() {
    let mut command = fixture("exit_after_start", &["--logger", "json"]);
    command.env("TOMODACHI_HTTP_PORT", "notaport");
    let (code, child) = run(command).await;
    assert_eq!(code, Some(1), "{}", child.output());
    let error = child
        .records()
        .into_iter()
        .find(|l| l.level() == Some("error"))
        .cloned()
        .unwrap_or_else(|| panic!("no error record:\n{}", child.output()));
    assert_eq!(error.logger(), Some("tomodachi.init"), "{error}");
    let text = error.message().unwrap_or_default();
    assert!(
        text.contains("TOMODACHI_HTTP_PORT") && text.contains("notaport"),
        "{text}"
    );
    assert!(
        !child.stderr().contains("starting the service"),
        "it never starts: {}",
        child.output()
    );

    // A valid value of the same variable is accepted.
    let mut command = fixture("exit_after_start", &["--logger", "json"]);
    command.env("TOMODACHI_HTTP_PORT", "9701");
    let (code, child) = run(command).await;
    assert_eq!(code, Some(0), "{}", child.output());
}

/// Runs the fixture on a pseudo-terminal (with `script`) so that it may colour its
/// output, and returns everything it wrote there.
async fn on_a_terminal(no_color: Option<&str>) -> String {
    let program = env!("CARGO_BIN_EXE_fixture");
    let mut command = command("script");
    command
        .args(["-q", "-e", "-c", program, "/dev/null"])
        .env("FIXTURE", "exit_after_start")
        .env("TERM", "xterm-256color");
    if let Some(value) = no_color {
        command.env("NO_COLOR", value);
    }
    let (code, child) = run(command).await;
    assert_eq!(code, Some(0), "script failed: {}", child.output());
    let text = child.stdout();
    assert!(text.contains("started service successfully"), "{text}");
    assert!(text.contains(BANNER_TITLE), "{text}");
    text
}

#[tokio::test]
async fn no_color_turns_off_ansi_escapes_on_a_terminal() {
    let coloured = on_a_terminal(None).await;
    let log_line = coloured
        .lines()
        .find(|l| l.contains("started service successfully"))
        .unwrap_or_default();
    assert!(
        log_line.contains("\x1b["),
        "a terminal gets colours: {log_line:?}"
    );
    let title = coloured
        .lines()
        .find(|l| l.contains(BANNER_TITLE))
        .unwrap_or_default();
    assert!(title.contains("\x1b["), "the banner too: {title:?}");

    let plain = on_a_terminal(Some("1")).await;
    assert!(!plain.contains('\x1b'), "NO_COLOR=1: {plain:?}");
}
