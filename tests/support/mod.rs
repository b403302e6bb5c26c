//! Shared helpers for the cross-crate and wire-compatibility tests.
//!
//! The tests talk to real things: Python tomodachi (for wire compatibility), RabbitMQ and
//! moto. `bash scripts/test.sh` (or `source scripts/test-env.sh`) sets them up and exports
//! the `TOMODACHI_TEST_*` variables read here. A missing piece is a test failure that names
//! the variable and the command that fixes it, never a skip.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

/// Variable naming the Python interpreter of the venv with `tomodachi` and `pika`.
pub const PYTHON_ENV: &str = "TOMODACHI_TEST_PYTHON";
/// Variable naming the moto server's URL.
pub const MOTO_URL_ENV: &str = "TOMODACHI_TEST_MOTO_URL";
/// Variable naming the RabbitMQ URL.
pub const AMQP_URL_ENV: &str = "TOMODACHI_TEST_AMQP_URL";
/// Variable naming the `rabbitmqctl` executable.
pub const RABBITMQCTL_ENV: &str = "TOMODACHI_TEST_RABBITMQCTL";

/// How long one run of a Python script may take before the test fails.
pub const PYTHON_TIMEOUT: Duration = Duration::from_secs(60);

const SETUP_HINT: &str = "run the tests with `bash scripts/test.sh`, or `source scripts/test-env.sh` before `cargo test`";

/// The cache directory `scripts/test-env.sh` uses (`$TOMODACHI_RS_CACHE`, else
/// `~/.cache/tomodachi-rs`).
pub fn cache_dir() -> Option<PathBuf> {
    env::var_os("TOMODACHI_RS_CACHE")
        .map(PathBuf::from)
        .or_else(|| env::var_os("HOME").map(|home| Path::new(&home).join(".cache/tomodachi-rs")))
}

/// The Python interpreter with tomodachi installed.
///
/// Reads [`PYTHON_ENV`]; when it is unset, falls back to the venv `scripts/test-env.sh`
/// creates. Panics with instructions when neither exists.
pub fn python() -> PathBuf {
    match env::var_os(PYTHON_ENV) {
        Some(path) => {
            let path = PathBuf::from(path);
            assert!(
                path.is_file(),
                "{PYTHON_ENV}={} does not exist: the tomodachi venv is missing; {SETUP_HINT}",
                path.display()
            );
            path
        }
        None => {
            let fallback = cache_dir().map(|dir| dir.join("venv-tomodachi/bin/python"));
            match fallback {
                Some(path) if path.is_file() => path,
                _ => panic!(
                    "{PYTHON_ENV} is not set and there is no venv at {}: the Python tomodachi venv is missing; {SETUP_HINT}",
                    fallback.map_or_else(
                        || "~/.cache/tomodachi-rs/venv-tomodachi".into(),
                        |p| p.display().to_string()
                    )
                ),
            }
        }
    }
}

/// The path of a script in `tests/python/`.
pub fn python_script(name: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("python")
        .join(name);
    assert!(
        path.is_file(),
        "no Python test script at {}",
        path.display()
    );
    path
}

/// Runs `tests/python/<script>` with the tomodachi venv's Python, feeding `stdin`, and
/// returns its stdout.
///
/// Panics (failing the test) when the script exits non-zero, with its stderr, or when it
/// runs longer than [`PYTHON_TIMEOUT`] (the process is killed).
pub async fn run_python(script: &str, args: &[&str], stdin: &[u8]) -> Vec<u8> {
    let python = python();
    let script_path = python_script(script);
    let mut child = Command::new(&python)
        .arg(&script_path)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot start {} ({PYTHON_ENV}): {e}; {SETUP_HINT}",
                python.display()
            )
        });

    let mut input = child
        .stdin
        .take()
        .unwrap_or_else(|| panic!("{script}: no stdin pipe"));
    let stdin = stdin.to_vec();
    let writer = tokio::spawn(async move {
        // A script that exits early closes the pipe; its exit status tells why.
        let _ = input.write_all(&stdin).await;
    });

    let output = tokio::time::timeout(PYTHON_TIMEOUT, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("{script} did not finish within {PYTHON_TIMEOUT:?}"))
        .unwrap_or_else(|e| panic!("{script}: waiting for Python failed: {e}"));
    let _ = writer.await;
    assert!(
        output.status.success(),
        "{script} {args:?} failed ({}):\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// Runs a script that reads JSON on stdin and writes JSON on stdout.
pub async fn run_python_json<T: DeserializeOwned>(
    script: &str,
    args: &[&str],
    input: &impl Serialize,
) -> T {
    let input =
        serde_json::to_vec(input).unwrap_or_else(|e| panic!("{script}: unserializable input: {e}"));
    let output = run_python(script, args, &input).await;
    serde_json::from_slice(&output).unwrap_or_else(|e| {
        panic!(
            "{script} printed something that is not the expected JSON ({e}):\n{}",
            String::from_utf8_lossy(&output)
        )
    })
}

/// The moto server's URL ([`MOTO_URL_ENV`], default `http://127.0.0.1:4566`).
pub fn moto_url() -> String {
    env::var(MOTO_URL_ENV).unwrap_or_else(|_| "http://127.0.0.1:4566".to_owned())
}

/// The RabbitMQ URL ([`AMQP_URL_ENV`], default `amqp://guest:guest@127.0.0.1:5672/%2f`).
pub fn amqp_url() -> String {
    env::var(AMQP_URL_ENV).unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned())
}

/// Fails the test with a clear message unless something accepts TCP connections at
/// `addr` (`host:port`) within five seconds. `what` names the service in the message.
pub async fn expect_reachable(addr: &str, what: &str) {
    match tokio::time::timeout(Duration::from_secs(5), tokio::net::TcpStream::connect(addr)).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => panic!("{what} is not reachable at {addr}: {e}; {SETUP_HINT}"),
        Err(_) => panic!("{what} did not accept a connection at {addr} within 5 s; {SETUP_HINT}"),
    }
}

/// Service processes under test (the facade end-to-end tests).
pub mod child;
pub mod http;
