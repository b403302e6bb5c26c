//! [`AccessLogFile`]: the access log appended to a file as JSON (`access_log = "path"`).

use std::fmt::Write as _;
use std::fs::File;
use std::io::Write as _;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use super::{AccessField, AccessLogWriter, AccessRecord};

/// Appends tomodachi's JSON access log records to a file (`access_log = "path"`).
///
/// ```no_run
/// use tomodachi_http::{AccessLogFile, AccessLogLayer};
///
/// let layer = AccessLogLayer::new().with_file(AccessLogFile::open("/var/log/access.log")?);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct AccessLogFile {
    file: Arc<Mutex<File>>,
}

impl AccessLogFile {
    /// Opens (creates, appends to) `path`.
    pub fn open(path: impl AsRef<Path>) -> std::io::Result<Self> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        Ok(Self {
            file: Arc::new(Mutex::new(file)),
        })
    }
}

impl AccessLogWriter for AccessLogFile {
    /// Writes one JSON line: `timestamp`, `logger`, `level`, `message`, then the fields.
    fn write(&self, record: &AccessRecord<'_>) {
        let mut line = String::with_capacity(320);
        let timestamp = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.6fZ");
        let _ = write!(
            line,
            r#"{{"timestamp": "{timestamp}", "logger": "tomodachi.http.response", "level": "info", "message": """#
        );
        record.for_each_field(|key, value| {
            let _ = match value {
                AccessField::Str(text) => write!(line, r#", "{key}": {}"#, json_string(text)),
                AccessField::Num(number) => write!(line, r#", "{key}": {number}"#),
            };
        });
        line.push_str("}\n");
        let mut file = self.file.lock().unwrap_or_else(PoisonError::into_inner);
        let _ = file.write_all(line.as_bytes());
    }
}

fn json_string(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|_| "\"\"".to_owned())
}
