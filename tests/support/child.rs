//! A service process under test: its output lines as they come, signals, its exit.
//!
//! ```no_run
//! # async fn run() {
//! use tomodachi_tests::child::{Child, command, record};
//!
//! let mut child = Child::spawn(command(env!("CARGO_BIN_EXE_fixture")).arg("--logger").arg("json"));
//! child.wait_for("started", record("tomodachi.lifecycle", "started service successfully")).await;
//! child.signal("TERM");
//! let status = child.wait_exit(std::time::Duration::from_secs(5)).await;
//! assert_eq!(status.code(), Some(0));
//! # }
//! ```

use std::ffi::OsStr;
use std::fmt;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWriteExt, BufReader};
use tokio::process::{ChildStdin, Command};
use tokio::sync::mpsc;

/// How long [`Child::wait_for`] waits for a line before the test fails: generous, since
/// the machine running the tests may be busy; a passing test never waits this long.
pub const LINE_TIMEOUT: Duration = Duration::from_secs(30);

/// Variables the parent's environment may hold that change a service process's
/// behaviour; [`command`] removes them.
const PRIVATE_VARS: &[&str] = &[
    "NO_COLOR",
    "NOCOLOR",
    "CLICOLOR",
    "CLI_COLOR",
    "CLICOLOR_FORCE",
    "TERM",
];

/// A command running `program` with none of the `TOMODACHI_*` or colour variables of the
/// test's environment.
pub fn command(program: impl AsRef<OsStr>) -> Command {
    let mut command = Command::new(program);
    for (key, _) in std::env::vars_os() {
        let remove = key
            .to_str()
            .is_none_or(|k| k.starts_with("TOMODACHI_") || PRIVATE_VARS.contains(&k));
        if remove {
            command.env_remove(key);
        }
    }
    command
}

/// Which output a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Standard output (the banner).
    Stdout,
    /// Standard error (the log).
    Stderr,
}

/// One line of output.
#[derive(Debug, Clone)]
pub struct Line {
    /// Where it was written.
    pub stream: Stream,
    /// The text, without the line break.
    pub text: String,
    /// The text as a JSON object, if it is one on stderr (a `--logger json` record).
    pub record: Option<Value>,
}

impl Line {
    /// A string field of the JSON record (`logger`, `message`, `level`, ...).
    pub fn field(&self, key: &str) -> Option<&str> {
        self.record.as_ref()?.get(key)?.as_str()
    }

    /// The record's `logger`.
    pub fn logger(&self) -> Option<&str> {
        self.field("logger")
    }

    /// The record's `message`.
    pub fn message(&self) -> Option<&str> {
        self.field("message")
    }

    /// The record's `level`.
    pub fn level(&self) -> Option<&str> {
        self.field("level")
    }
}

impl fmt::Display for Line {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tag = match self.stream {
            Stream::Stdout => "out",
            Stream::Stderr => "err",
        };
        write!(f, "[{tag}] {}", self.text)
    }
}

/// A predicate matching the JSON record with this logger and message.
pub fn record(logger: &'static str, message: &'static str) -> impl Fn(&Line) -> bool {
    move |line| line.logger() == Some(logger) && line.message() == Some(message)
}

/// A predicate matching a JSON record with this message (any logger).
pub fn message(message: &'static str) -> impl Fn(&Line) -> bool {
    move |line| line.message() == Some(message)
}

/// A running (or exited) process and every line it has written so far.
#[derive(Debug)]
pub struct Child {
    child: tokio::process::Child,
    pid: u32,
    stdin: Option<ChildStdin>,
    incoming: mpsc::UnboundedReceiver<Line>,
    lines: Vec<Line>,
    cursor: usize,
    status: Option<ExitStatus>,
}

impl Child {
    /// Starts `command` with piped stdin, stdout and stderr; the process is killed when
    /// the `Child` is dropped. Panics if it cannot start.
    pub fn spawn(command: &mut Command) -> Child {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));
        let pid = child
            .id()
            .unwrap_or_else(|| panic!("{command:?} has no pid"));
        let (sender, incoming) = mpsc::unbounded_channel();
        if let Some(stdout) = child.stdout.take() {
            tokio::spawn(forward(stdout, Stream::Stdout, sender.clone()));
        }
        if let Some(stderr) = child.stderr.take() {
            tokio::spawn(forward(stderr, Stream::Stderr, sender));
        }
        Child {
            stdin: child.stdin.take(),
            child,
            pid,
            incoming,
            lines: Vec::new(),
            cursor: 0,
            status: None,
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Sends a signal (`"TERM"`, `"INT"`, ...) with `kill`. Panics if `kill` fails.
    pub fn signal(&self, signal: &str) {
        let status = std::process::Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid.to_string())
            .status()
            .unwrap_or_else(|e| panic!("cannot run kill: {e}"));
        assert!(
            status.success(),
            "kill -{signal} {} failed ({status})",
            self.pid
        );
    }

    /// Writes `line` and a line break to the process's stdin.
    pub async fn send_line(&mut self, line: &str) {
        let stdin = self
            .stdin
            .as_mut()
            .unwrap_or_else(|| panic!("the process's stdin is closed"));
        let write = async {
            stdin.write_all(line.as_bytes()).await?;
            stdin.write_all(b"\n").await?;
            stdin.flush().await
        };
        write
            .await
            .unwrap_or_else(|e| panic!("cannot write to the process's stdin: {e}"));
    }

    /// Waits for the first line after the previous match that satisfies `matches` and
    /// returns it; later calls look only at lines after it, so a sequence of calls also
    /// checks the order. Fails the test (showing the output) after [`LINE_TIMEOUT`] or when
    /// the process's output ends first. `what` names the line in the message.
    pub async fn wait_for(&mut self, what: &str, matches: impl Fn(&Line) -> bool) -> Line {
        let outcome = tokio::time::timeout(LINE_TIMEOUT, async {
            loop {
                if let Some(offset) = self.lines[self.cursor..].iter().position(&matches) {
                    let index = self.cursor + offset;
                    self.cursor = index + 1;
                    return Some(self.lines[index].clone());
                }
                match self.incoming.recv().await {
                    Some(line) => self.lines.push(line),
                    None => return None,
                }
            }
        })
        .await;
        match outcome {
            Ok(Some(line)) => line,
            Ok(None) => panic!(
                "the output ended without {what} (exit: {:?}); output:\n{}",
                self.child.try_wait().ok().flatten(),
                self.output()
            ),
            Err(_) => panic!(
                "no {what} within {LINE_TIMEOUT:?}; output so far:\n{}",
                self.output()
            ),
        }
    }

    /// As [`Child::wait_for`], but gives up quietly: `None` once `limit` has passed or the
    /// output has ended without a matching line (for drills that count what arrived).
    pub async fn wait_for_within(
        &mut self,
        limit: Duration,
        matches: impl Fn(&Line) -> bool,
    ) -> Option<Line> {
        tokio::time::timeout(limit, async {
            loop {
                if let Some(offset) = self.lines[self.cursor..].iter().position(&matches) {
                    let index = self.cursor + offset;
                    self.cursor = index + 1;
                    return Some(self.lines[index].clone());
                }
                self.lines.push(self.incoming.recv().await?);
            }
        })
        .await
        .ok()
        .flatten()
    }

    /// Waits up to `limit` for the process to exit, then for the rest of its output, and
    /// returns its status. Fails the test (showing the output) if it is still running.
    pub async fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        if let Some(status) = self.status {
            return status;
        }
        let status = match tokio::time::timeout(limit, self.child.wait()).await {
            Ok(Ok(status)) => status,
            Ok(Err(e)) => panic!("waiting for the process failed: {e}"),
            Err(_) => {
                self.drain_ready();
                panic!(
                    "the process did not exit within {limit:?}; output so far:\n{}",
                    self.output()
                )
            }
        };
        self.status = Some(status);
        // The readers end at EOF; a grandchild holding the pipes open must not hang us.
        let rest = tokio::time::timeout(LINE_TIMEOUT, async {
            while let Some(line) = self.incoming.recv().await {
                self.lines.push(line);
            }
        })
        .await;
        assert!(
            rest.is_ok(),
            "the output did not end within {LINE_TIMEOUT:?} of the exit"
        );
        status
    }

    /// Every line received so far.
    pub fn lines(&self) -> &[Line] {
        &self.lines
    }

    /// The JSON records on stderr received so far.
    pub fn records(&self) -> Vec<&Line> {
        self.lines.iter().filter(|l| l.record.is_some()).collect()
    }

    /// The text written to stdout so far, lines joined with `\n`.
    pub fn stdout(&self) -> String {
        self.text(Stream::Stdout)
    }

    /// The text written to stderr so far, lines joined with `\n`.
    pub fn stderr(&self) -> String {
        self.text(Stream::Stderr)
    }

    /// Everything received so far, one tagged line each (for failure messages).
    pub fn output(&self) -> String {
        self.lines
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn text(&self, stream: Stream) -> String {
        self.lines
            .iter()
            .filter(|l| l.stream == stream)
            .map(|l| l.text.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn drain_ready(&mut self) {
        while let Ok(line) = self.incoming.try_recv() {
            self.lines.push(line);
        }
    }
}

/// Sends each line of `output` to `sender` until EOF.
async fn forward(
    output: impl AsyncRead + Unpin,
    stream: Stream,
    sender: mpsc::UnboundedSender<Line>,
) {
    let mut lines = BufReader::new(output).lines();
    while let Ok(Some(text)) = lines.next_line().await {
        let record = match stream {
            Stream::Stderr => serde_json::from_str::<Value>(&text)
                .ok()
                .filter(Value::is_object),
            Stream::Stdout => None,
        };
        if sender
            .send(Line {
                stream,
                text,
                record,
            })
            .is_err()
        {
            break;
        }
    }
}

/// Runs `command` to its end (stdin closed at once) within `limit` and returns the
/// process with all its output. Fails the test if it runs longer.
pub async fn run_to_end(command: &mut Command, limit: Duration) -> (ExitStatus, Child) {
    let mut child = Child::spawn(command);
    drop(child.stdin.take());
    let status = child.wait_exit(limit).await;
    (status, child)
}
