//! stderr with small buffers for the records written once per request.
//!
//! An access log record per request written straight to stderr costs one `write(2)` each:
//! at tens of thousands of requests per second that syscall is most of a request's cost.
//! [`BufferedStderr`] keeps those records (the [`BUFFERED_TARGETS`] at `INFO` and below) in a
//! buffer of the thread that makes them (no lock shared between threads on the way) and
//! writes a buffer out in one call when
//!
//! - any other record is written: every thread's buffer goes out first, so a record on
//!   stderr follows every buffered record made before it (buffered records of different
//!   threads may appear out of time order among themselves, never after a later
//!   unbuffered record),
//! - the buffer holds [`BUFFER_LIMIT`] bytes, or
//! - [`FLUSH_INTERVAL`] has passed since a record went into an empty buffer (a background
//!   thread, started on the first buffered record, parked while nothing is buffered), or
//! - its thread ends.
//!
//! No record is dropped: a full buffer is written by the thread that fills it. Every
//! lifecycle record is written at once, so a service that stops normally has written all
//! of its access log by its last line (`terminated service`). A process killed with
//! `SIGKILL`, aborted, or ended with `std::process::exit` right after serving can lose
//! the access log records of its last [`FLUSH_INTERVAL`].

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::thread::Thread;
use std::time::Duration;

use tracing::{Level, Metadata};
use tracing_subscriber::fmt::MakeWriter;

/// Targets whose `INFO`/`DEBUG`/`TRACE` records may wait in a buffer: the ones written
/// once per request.
pub const BUFFERED_TARGETS: &[&str] = &["tomodachi.http.response"];

/// The longest a buffered record waits before it is written.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(50);

/// A thread's buffer is written out once it holds this many bytes.
pub const BUFFER_LIMIT: usize = 32 * 1024;

/// The process's stderr, buffering the [`BUFFERED_TARGETS`] until [`BUFFER_LIMIT`] or [`FLUSH_INTERVAL`].
///
/// Every `BufferedStderr` shares the same buffers, so records from several layers stay in
/// order.
#[derive(Debug, Clone, Copy, Default)]
pub struct BufferedStderr;

impl BufferedStderr {
    /// Writes out what every thread has buffered.
    pub fn flush() {
        let mut stderr = io::stderr().lock();
        let batch = shared().take_all();
        let _ = stderr.write_all(&batch);
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
        let buffered = self.buffered
            && shared.flusher().is_some()
            && LOCAL
                .try_with(|local| local.add(record, || io::stderr().lock()))
                .is_ok();
        if !buffered {
            shared.write_unbuffered(record, &mut io::stderr().lock());
        }
        Ok(record.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The buffer of one thread, registered with [`Shared`] while the thread lives.
type Buffer = Arc<Mutex<Vec<u8>>>;

/// Locks `mutex`; a poisoned one is used as it is (its buffers hold whole records).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

thread_local! {
    static LOCAL: Local = Local::register(shared());
}

/// A thread's buffer; written out when the thread ends. The locks are always taken in
/// the order stderr, registry, thread buffer; a thread adding a record holds its own
/// buffer's lock alone.
struct Local {
    buffer: Buffer,
    shared: &'static Shared,
}

impl Local {
    fn register(shared: &'static Shared) -> Self {
        let buffer = Buffer::default();
        lock(&shared.buffers).push(buffer.clone());
        Self { buffer, shared }
    }

    /// Adds `record`; writes the buffer to `out` (the locked stderr) once it is full.
    fn add<W: Write>(&self, record: &[u8], out: impl FnOnce() -> W) {
        let mut buffer = lock(&self.buffer);
        let first = buffer.is_empty();
        buffer.extend_from_slice(record);
        let full = buffer.len() >= BUFFER_LIMIT;
        drop(buffer);
        if full {
            let mut out = out();
            let mut buffer = lock(&self.buffer);
            let _ = out.write_all(&buffer);
            buffer.clear();
        } else if first {
            self.shared.schedule_flush();
        }
    }

    /// Leaves the registry, writing what is left to `out` (the locked stderr).
    fn close(&self, out: &mut impl Write) {
        lock(&self.shared.buffers).retain(|buffer| !Arc::ptr_eq(buffer, &self.buffer));
        let mut buffer = lock(&self.buffer);
        let _ = out.write_all(&buffer);
        buffer.clear();
    }
}

impl Drop for Local {
    fn drop(&mut self) {
        self.close(&mut io::stderr().lock());
    }
}

struct Shared {
    /// Every living thread's buffer.
    buffers: Mutex<Vec<Buffer>>,
    /// Whether the flusher will write the buffers out (set when a record goes into an
    /// empty buffer, cleared by the flusher before it writes them).
    scheduled: AtomicBool,
    /// The flusher thread (started with the first buffered record; `None` if it could not
    /// be started: then nothing is buffered).
    flusher: OnceLock<Option<Thread>>,
}

fn shared() -> &'static Shared {
    static SHARED: Shared = Shared::new();
    &SHARED
}

impl Shared {
    const fn new() -> Self {
        Self {
            buffers: Mutex::new(Vec::new()),
            scheduled: AtomicBool::new(false),
            flusher: OnceLock::new(),
        }
    }

    /// Writes `record` to `out` (the locked stderr) after what every thread has buffered,
    /// in one call.
    fn write_unbuffered(&self, record: &[u8], out: &mut impl Write) {
        let mut batch = self.take_all();
        if batch.is_empty() {
            let _ = out.write_all(record);
        } else {
            batch.extend_from_slice(record);
            let _ = out.write_all(&batch);
        }
    }

    /// What every thread has buffered, in the order the threads first buffered a record,
    /// leaving the buffers empty (and their room for the next records). The caller holds
    /// the stderr lock.
    fn take_all(&self) -> Vec<u8> {
        let mut batch = Vec::new();
        for buffer in lock(&self.buffers).iter() {
            let mut buffer = lock(buffer);
            batch.extend_from_slice(&buffer);
            buffer.clear();
        }
        batch
    }

    /// Makes sure the flusher writes the buffers within [`FLUSH_INTERVAL`]: wakes it
    /// unless it is already due to.
    fn schedule_flush(&self) {
        if !self.scheduled.swap(true, Ordering::AcqRel)
            && let Some(Some(flusher)) = self.flusher.get()
        {
            flusher.unpark();
        }
    }

    /// The thread that writes the buffers [`FLUSH_INTERVAL`] after a record went into an
    /// empty one (started once).
    fn flusher(&'static self) -> Option<&'static Thread> {
        self.flusher
            .get_or_init(|| {
                std::thread::Builder::new()
                    .name("tomodachi-log".into())
                    .stack_size(64 * 1024)
                    .spawn(move || {
                        loop {
                            // `park` returns at once if `schedule_flush` came first.
                            while !self.scheduled.load(Ordering::Acquire) {
                                std::thread::park();
                            }
                            std::thread::sleep(FLUSH_INTERVAL);
                            // Cleared first: a record that finds its buffer emptied by the
                            // flush below schedules the next one.
                            self.scheduled.store(false, Ordering::Release);
                            BufferedStderr::flush();
                        }
                    })
                    .ok()
                    .map(|handle| handle.thread().clone())
            })
            .as_ref()
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

    impl Write for &mut Sink {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.writes += 1;
            self.data.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// A registry of its own (no flusher thread, nothing written to the real stderr).
    fn shared() -> &'static Shared {
        Box::leak(Box::new(Shared::new()))
    }

    #[test]
    fn every_threads_buffered_records_go_out_before_the_next_unbuffered_one() {
        let shared = shared();
        let (one, two) = (Local::register(shared), Local::register(shared));
        let mut sink = Sink::default();
        one.add(b"a1\n", || &mut sink);
        two.add(b"b1\n", || &mut sink);
        one.add(b"a2\n", || &mut sink);
        assert_eq!(sink.writes, 0);
        shared.write_unbuffered(b"lifecycle\n", &mut &mut sink);
        assert_eq!(sink.data, b"a1\na2\nb1\nlifecycle\n");
        assert_eq!(sink.writes, 1, "one write for the batch");
        shared.write_unbuffered(b"now\n", &mut &mut sink);
        assert_eq!(sink.writes, 2, "nothing was left buffered");
        assert_eq!(sink.data, b"a1\na2\nb1\nlifecycle\nnow\n");
    }

    #[test]
    fn a_full_buffer_is_written_by_its_thread() {
        let shared = shared();
        let (local, mut sink) = (Local::register(shared), Sink::default());
        let record = [b'x'; 1000];
        for _ in 0..BUFFER_LIMIT / 1000 {
            local.add(&record, || &mut sink);
        }
        assert_eq!(sink.writes, 0);
        local.add(&record, || &mut sink);
        assert_eq!(sink.writes, 1);
        assert_eq!(sink.data.len(), (BUFFER_LIMIT / 1000 + 1) * 1000);
        assert!(shared.take_all().is_empty());
    }

    #[test]
    fn a_record_into_an_empty_buffer_schedules_a_flush() {
        let shared = shared();
        let (local, mut sink) = (Local::register(shared), Sink::default());
        local.add(b"a1\n", || &mut sink);
        assert!(
            shared.scheduled.swap(false, Ordering::AcqRel),
            "first record"
        );
        local.add(b"a2\n", || &mut sink);
        assert!(
            !shared.scheduled.load(Ordering::Acquire),
            "the buffer was not empty"
        );
        assert_eq!(shared.take_all(), b"a1\na2\n");
        local.add(b"a3\n", || &mut sink);
        assert!(
            shared.scheduled.load(Ordering::Acquire),
            "emptied by the flush"
        );
        local.close(&mut &mut sink);
        assert_eq!(sink.data, b"a3\n");
    }

    #[test]
    fn a_thread_that_ends_writes_its_buffer() {
        let shared = shared();
        let (local, mut sink) = (Local::register(shared), Sink::default());
        local.add(b"a1\n", || &mut sink);
        local.close(&mut &mut sink);
        assert_eq!(sink.data, b"a1\n");
        assert!(lock(&shared.buffers).is_empty(), "unregistered");
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
