//! The `http` sub-tree of the service options, with Python tomodachi's defaults.

use serde::{Deserialize, Serialize};

/// Options of the HTTP transport (`options.http.*`, `TOMODACHI_HTTP_*`).
///
/// Defaults are Python tomodachi's.
///
/// ```
/// let options = tomodachi_http::HttpOptions::default();
/// assert_eq!(options.port, 9700);
/// assert_eq!(options.server_header, "tomodachi");
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpOptions {
    /// TCP port to listen on.
    pub port: u16,
    /// Address to bind.
    pub host: String,
    /// Set `SO_REUSEPORT` on the listening socket.
    pub reuse_port: bool,
    /// Default `Content-Type` of responses.
    pub content_type: String,
    /// Default charset of text responses.
    pub charset: String,
    /// Largest accepted request body: bytes, or a string such as `"100M"`.
    pub client_max_size: ByteSize,
    /// Seconds in-flight requests may take to finish after shutdown starts.
    pub termination_grace_period_seconds: u64,
    /// Access log: `true`, `false`, or a file path to also write JSON records to.
    pub access_log: AccessLog,
    /// Peers (CIDRs) whose `real_ip_header` is trusted.
    pub real_ip_from: Vec<String>,
    /// Header carrying the client address behind a trusted proxy.
    pub real_ip_header: String,
    /// Seconds an idle keep-alive connection stays open (0: no keep-alive).
    pub keepalive_timeout: u64,
    /// Python tomodachi's `keepalive_expiry` (accepted, unused by aiohttp).
    pub keepalive_expiry: u64,
    /// Close a keep-alive connection once it is this many seconds old.
    pub max_keepalive_time: Option<u64>,
    /// Close a keep-alive connection after this many responses.
    pub max_keepalive_requests: Option<u64>,
    /// Value of the `Server` header of every response.
    pub server_header: String,
}

impl Default for HttpOptions {
    fn default() -> Self {
        Self {
            port: 9700,
            host: "0.0.0.0".to_owned(),
            reuse_port: cfg!(target_os = "linux"),
            content_type: "text/plain; charset=utf-8".to_owned(),
            charset: "utf-8".to_owned(),
            client_max_size: ByteSize::Bytes(104_857_600),
            termination_grace_period_seconds: 30,
            access_log: AccessLog::Enabled(true),
            real_ip_from: Vec::new(),
            real_ip_header: "X-Forwarded-For".to_owned(),
            keepalive_timeout: 0,
            keepalive_expiry: 0,
            max_keepalive_time: None,
            max_keepalive_requests: None,
            server_header: "tomodachi".to_owned(),
        }
    }
}

/// A size in bytes, written as a number or as `"N[B|K|KB|M|MB|G|GB]"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ByteSize {
    /// A number of bytes.
    Bytes(u64),
    /// A size with a unit, such as `"100M"`.
    Text(String),
}

/// The `access_log` option: on, off, or also written to a file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AccessLog {
    /// Log (or not) to the service's logger.
    Enabled(bool),
    /// Log, and also append JSON records to this file.
    File(String),
}
