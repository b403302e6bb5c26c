//! stderr with a small buffer for the records written once per request.
//!
//! An access log record per request written straight to stderr costs one `write(2)` each:
//! at tens of thousands of requests per second that syscall is most of a request's cost.
//! [`BufferedStderr`] keeps those records (the [`BUFFERED_TARGETS`] at `INFO` and below) in a
//! process-wide buffer and writes it out in one call when
//!
//! - any other record is written (it goes out after the buffered ones, so the order on
//!   stderr is the order of the records),
//! - the buffer holds [`BUFFER_LIMIT`] bytes, or
//! - [`FLUSH_INTERVAL`] has passed since the first buffered record (a background thread,
//!   started on the first buffered record, asleep while the buffer is empty).
//!
//! No record is dropped: a full buffer is written by the thread that fills it. Every
//! lifecycle record is written at once, so a service that stops normally has written all
//! of its access log by its last line (`terminated service`). A process killed with
//! `SIGKILL`, aborted, or ended with `std::process::exit` right after serving can lose
//! the access log records of its last [`FLUSH_INTERVAL`].

use std::io::{self, Write};
use std::sync::{Condvar, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Duration;

use tracing::{Level, Metadata};
use tracing_subscriber::fmt::MakeWriter;

/// Targets whose `INFO`/`DEBUG`/`TRACE` records may wait in the buffer: the ones written
/// once per request.
pub const BUFFERED_TARGETS: &[&str] = &["tomodachi.http.response"];

/// The longest a buffered record waits before it is written.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(50);

/// The buffer is written out once it holds this many bytes.
pub const BUFFER_LIMIT: usize = 32 * 1024;

/// The process's stderr, buffering the [`BUFFERED_TARGETS`] (see the [module docs](self)).
///
/// Every `BufferedStderr` shares one buffer, so records from several layers stay in order.
#[derive(Debug, Clone, Copy, Default)]
pub struct BufferedStderr;

impl BufferedStderr {
    /// Writes out what is buffered.
    pub fn flush() {
        shared().flush_now();
    }
}

impl<'a> MakeWriter<'a> for BufferedStderr {
    type Writer = RecordWriter;

    fn make_writer(&'a self) -> RecordWriter {
        RecordWriter { buffered: false }
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> RecordWriter {
        RecordWriter {
            buffered: *meta.level() >= Level::INFO && BUFFERED_TARGETS.contains(&meta.target()),
        }
    }
}

/// Writes one record to [`BufferedStderr`], buffered or at once.
#[derive(Debug)]
pub struct RecordWriter {
    buffered: bool,
}

impl RecordWriter {
    /// A writer of a record that may wait in the buffer (a [`BUFFERED_TARGETS`] record).
    #[cfg_attr(not(feature = "http"), allow(dead_code))]
    pub(super) fn buffered() -> Self {
        Self { buffered: true }
    }
}

impl Write for RecordWriter {
    fn write(&mut self, record: &[u8]) -> io::Result<usize> {
        let shared = shared();
        let buffered = self.buffered && shared.flusher_running();
        let mut buffer = shared.lock();
        match add(&mut buffer, record, buffered) {
            Out::Nothing { first } => {
                drop(buffer);
                if first {
                    shared.pending.notify_one();
                }
            }
            Out::Record(record) => write_in_order(buffer, record),
            Out::Batch(batch) => write_in_order(buffer, &batch),
        }
        Ok(record.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// What a record leaves to write now.
#[derive(Debug, PartialEq)]
enum Out<'a> {
    /// It waits in the buffer (`first`: the buffer's first record, wake the flusher).
    Nothing { first: bool },
    /// The record alone (nothing was buffered).
    Record(&'a [u8]),
    /// What was buffered, the record last if it is not buffered.
    Batch(Vec<u8>),
}

/// Adds `record` to `buffer` (`buffered`) or takes what must be written now.
fn add<'a>(buffer: &mut Vec<u8>, record: &'a [u8], buffered: bool) -> Out<'a> {
    if buffered {
        let first = buffer.is_empty();
        buffer.extend_from_slice(record);
        if buffer.len() >= BUFFER_LIMIT {
            return Out::Batch(take(buffer));
        }
        return Out::Nothing { first };
    }
    if buffer.is_empty() {
        return Out::Record(record);
    }
    buffer.extend_from_slice(record);
    Out::Batch(take(buffer))
}

/// The buffer's bytes, leaving it empty with room for the next batch.
fn take(buffer: &mut Vec<u8>) -> Vec<u8> {
    std::mem::replace(buffer, Vec::with_capacity(BUFFER_LIMIT + BUFFER_LIMIT / 4))
}

/// Writes `bytes` to stderr once the buffer is released: the stderr lock is taken while
/// the buffer is still held, so writes go out in the order they were taken, and the other
/// threads append to the buffer meanwhile instead of waiting for the write. Write errors
/// are ignored: `eprintln!` could not report them either.
fn write_in_order(buffer: MutexGuard<'_, Vec<u8>>, bytes: &[u8]) {
    let mut stderr = io::stderr().lock();
    drop(buffer);
    let _ = stderr.write_all(bytes);
}

struct Shared {
    buffer: Mutex<Vec<u8>>,
    /// Signalled when the buffer gets its first record.
    pending: Condvar,
    /// Whether the flusher thread runs (started with the first buffered record).
    flusher: OnceLock<bool>,
}

fn shared() -> &'static Shared {
    static SHARED: OnceLock<Shared> = OnceLock::new();
    SHARED.get_or_init(|| Shared {
        buffer: Mutex::new(Vec::new()),
        pending: Condvar::new(),
        flusher: OnceLock::new(),
    })
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Vec<u8>> {
        self.buffer.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn flush_now(&self) {
        let mut buffer = self.lock();
        if !buffer.is_empty() {
            let batch = take(&mut buffer);
            write_in_order(buffer, &batch);
        }
    }

    /// Starts (once) the thread that writes the buffer [`FLUSH_INTERVAL`] after its first
    /// record. `false` if it cannot be started: then nothing is buffered.
    fn flusher_running(&'static self) -> bool {
        *self.flusher.get_or_init(|| {
            std::thread::Builder::new()
                .name("tomodachi-log".into())
                .stack_size(64 * 1024)
                .spawn(move || {
                    loop {
                        let mut buffer = self.lock();
                        while buffer.is_empty() {
                            buffer = self
                                .pending
                                .wait(buffer)
                                .unwrap_or_else(PoisonError::into_inner);
                        }
                        drop(buffer);
                        std::thread::sleep(FLUSH_INTERVAL);
                        self.flush_now();
                    }
                })
                .is_ok()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Counts the write calls.
    #[derive(Default)]
    struct Sink {
        data: Vec<u8>,
        writes: usize,
    }

    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.writes += 1;
            self.data.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// [`add`], writing what it leaves to write to `sink`; whether the flusher is woken.
    fn add_to(buffer: &mut Vec<u8>, record: &[u8], buffered: bool, sink: &mut Sink) -> bool {
        match add(buffer, record, buffered) {
            Out::Nothing { first } => first,
            Out::Record(record) => {
                let _ = sink.write_all(record);
                false
            }
            Out::Batch(batch) => {
                let _ = sink.write_all(&batch);
                false
            }
        }
    }

    #[test]
    fn buffered_records_go_out_in_order_before_the_next_unbuffered_one() {
        let (mut buffer, mut sink) = (Vec::new(), Sink::default());
        assert!(
            add_to(&mut buffer, b"a1\n", true, &mut sink),
            "first record wakes the flusher"
        );
        assert!(!add_to(&mut buffer, b"a2\n", true, &mut sink));
        assert_eq!(sink.writes, 0);
        assert!(!add_to(&mut buffer, b"lifecycle\n", false, &mut sink));
        assert_eq!(sink.data, b"a1\na2\nlifecycle\n");
        assert_eq!(sink.writes, 1, "one write for the batch");
        assert!(buffer.is_empty());
        assert!(!add_to(&mut buffer, b"now\n", false, &mut sink));
        assert_eq!(sink.writes, 2);
    }

    #[test]
    fn a_full_buffer_is_written_by_the_writer() {
        let (mut buffer, mut sink) = (Vec::new(), Sink::default());
        let record = [b'x'; 1000];
        for _ in 0..BUFFER_LIMIT / 1000 {
            add_to(&mut buffer, &record, true, &mut sink);
        }
        assert_eq!(sink.writes, 0);
        add_to(&mut buffer, &record, true, &mut sink);
        assert_eq!(sink.writes, 1);
        assert_eq!(sink.data.len(), (BUFFER_LIMIT / 1000 + 1) * 1000);
        assert!(buffer.is_empty());
    }

    #[test]
    fn only_the_access_log_at_info_and_below_is_buffered() {
        use tracing::subscriber::with_default;
        use tracing_subscriber::layer::SubscriberExt;

        #[derive(Clone, Default)]
        struct Seen(std::sync::Arc<Mutex<Vec<(String, bool)>>>);
        impl<'a> MakeWriter<'a> for Seen {
            type Writer = io::Sink;
            fn make_writer(&'a self) -> io::Sink {
                io::sink()
            }
            fn make_writer_for(&'a self, meta: &Metadata<'_>) -> io::Sink {
                let buffered = BufferedStderr.make_writer_for(meta).buffered;
                self.0
                    .lock()
                    .unwrap()
                    .push((meta.target().to_owned(), buffered));
                io::sink()
            }
        }
        let seen = Seen::default();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_subscriber::fmt::layer().with_writer(seen.clone()));
        with_default(subscriber, || {
            tracing::info!(target: "tomodachi.http.response", status_code = 200, "");
            tracing::warn!(target: "tomodachi.http.response", "slow");
            tracing::info!(target: "tomodachi.lifecycle", "terminated service");
            tracing::info!("user record");
        });
        let seen = seen.0.lock().unwrap().clone();
        let buffered: Vec<bool> = seen.iter().map(|(_, b)| *b).collect();
        assert_eq!(buffered, [true, false, false, false], "{seen:?}");
    }
}
