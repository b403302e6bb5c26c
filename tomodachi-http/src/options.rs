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
    /// Seconds in-flight requests may take to finish after shutdown starts (at least 2).
    pub termination_grace_period_seconds: u64,
    /// Access log: `true`, `false`, or a file path to also write JSON records to.
    pub access_log: AccessLog,
    /// Peers (CIDRs) whose `real_ip_header` is trusted.
    pub real_ip_from: Vec<String>,
    /// Header carrying the client address behind a trusted proxy.
    pub real_ip_header: String,
    /// Seconds an idle keep-alive connection stays open (0: no keep-alive).
    pub keepalive_timeout: u64,
    /// Python tomodachi's older name of `keepalive_timeout` (used when that is 0).
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
///
/// ```
/// use tomodachi_http::ByteSize;
///
/// assert_eq!(ByteSize::Text("100M".into()).bytes().unwrap(), 100 * 1024 * 1024);
/// assert_eq!(ByteSize::Text("64kb".into()).bytes().unwrap(), 64 * 1024);
/// assert_eq!(ByteSize::Bytes(2048).bytes().unwrap(), 2048);
/// assert!(ByteSize::Text("lots".into()).bytes().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ByteSize {
    /// A number of bytes.
    Bytes(u64),
    /// A size with a unit, such as `"100M"`.
    Text(String),
}

impl ByteSize {
    /// The size in bytes (units are powers of 1024, as tomodachi's), or why the text is
    /// not a size.
    pub fn bytes(&self) -> Result<u64, OptionError> {
        let text = match self {
            Self::Bytes(bytes) => return Ok(*bytes),
            Self::Text(text) => text,
        };
        let bad = || {
            OptionError::new(
                "client_max_size",
                format!("Bad value for http option client_max_size: {text}"),
            )
        };
        let upper = text.trim().to_ascii_uppercase();
        let (digits, unit) = match upper.find(|c: char| !c.is_ascii_digit()) {
            Some(at) => upper.split_at(at),
            None => (upper.as_str(), ""),
        };
        let factor: u64 = match unit {
            "" | "B" => 1,
            "K" | "KB" => 1024,
            "M" | "MB" => 1024 * 1024,
            "G" | "GB" => 1024 * 1024 * 1024,
            _ => return Err(bad()),
        };
        let number: u64 = digits.parse().map_err(|_| bad())?;
        number.checked_mul(factor).ok_or_else(bad)
    }
}

/// An option value the HTTP transport cannot run with (a startup error).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct OptionError {
    option: &'static str,
    message: String,
}

impl OptionError {
    pub(crate) fn new(option: &'static str, message: impl Into<String>) -> Self {
        Self {
            option,
            message: message.into(),
        }
    }

    /// The option's name under `http.` (such as `client_max_size`).
    pub fn option(&self) -> &'static str {
        self.option
    }
}

impl HttpOptions {
    /// Checks the options as tomodachi does at startup and returns the body size limit.
    ///
    /// Errors: `client_max_size` not a size, below 1024 bytes or above 1 GiB;
    /// `max_keepalive_requests`/`max_keepalive_time` without `keepalive_timeout`; a
    /// `real_ip_from` entry that is not an address or CIDR.
    pub fn validate(&self) -> Result<(), OptionError> {
        self.client_max_size_bytes()?;
        if self.keepalive_timeout == 0 && self.keepalive_expiry == 0 {
            if self.max_keepalive_requests.is_some_and(|n| n > 0) {
                return Err(OptionError::new(
                    "max_keepalive_requests",
                    "HTTP keep-alive must be enabled to use http option max_keepalive_requests - a http.keepalive_timeout option value is required",
                ));
            }
            if self.max_keepalive_time.is_some_and(|n| n > 0) {
                return Err(OptionError::new(
                    "max_keepalive_time",
                    "HTTP keep-alive must be enabled to use http option max_keepalive_time - a http.keepalive_timeout option value is required",
                ));
            }
        }
        crate::real_ip::parse_cidrs(&self.real_ip_from)?;
        Ok(())
    }

    /// `client_max_size` in bytes, checked to be within 1024 bytes and 1 GiB.
    pub fn client_max_size_bytes(&self) -> Result<u64, OptionError> {
        let bytes = self.client_max_size.bytes()?;
        let shown = match &self.client_max_size {
            ByteSize::Bytes(n) => n.to_string(),
            ByteSize::Text(text) => text.clone(),
        };
        if bytes < 1024 {
            return Err(OptionError::new(
                "client_max_size",
                format!("Too low value for http option client_max_size: {shown} ({bytes})"),
            ));
        }
        if bytes > 1024 * 1024 * 1024 {
            return Err(OptionError::new(
                "client_max_size",
                format!("Too high value for http option client_max_size: {shown} ({bytes})"),
            ));
        }
        Ok(bytes)
    }

    /// The keep-alive idle timeout in seconds (`keepalive_timeout`, else
    /// `keepalive_expiry`); 0 means keep-alive is off.
    pub fn effective_keepalive_timeout(&self) -> u64 {
        if self.keepalive_timeout > 0 {
            self.keepalive_timeout
        } else {
            self.keepalive_expiry
        }
    }

    /// The default `Content-Type` header value, built from `content_type` and `charset`
    /// as tomodachi does: a `charset=` inside `content_type` wins over `charset`.
    ///
    /// ```
    /// let mut options = tomodachi_http::HttpOptions::default();
    /// assert_eq!(options.default_content_type(), "text/plain; charset=utf-8");
    /// options.content_type = "application/json".into();
    /// options.charset = "latin-1".into();
    /// assert_eq!(options.default_content_type(), "application/json; charset=latin-1");
    /// ```
    pub fn default_content_type(&self) -> String {
        let mut parts = self.content_type.split(';');
        let base = parts.next().unwrap_or_default().trim();
        let charset = parts
            .filter_map(|part| part.trim().strip_prefix("charset="))
            .next()
            .map(str::trim)
            .unwrap_or(self.charset.trim());
        match (base.is_empty(), charset.is_empty()) {
            (true, _) => String::new(),
            (false, true) => base.to_owned(),
            (false, false) => format!("{base}; charset={charset}"),
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_matches_tomodachis_startup_errors() {
        assert!(HttpOptions::default().validate().is_ok());
        let low = HttpOptions {
            client_max_size: ByteSize::Bytes(1000),
            ..HttpOptions::default()
        };
        assert_eq!(low.validate().unwrap_err().option(), "client_max_size");
        let high = HttpOptions {
            client_max_size: ByteSize::Text("2G".into()),
            ..HttpOptions::default()
        };
        assert!(
            high.validate()
                .unwrap_err()
                .to_string()
                .starts_with("Too high value")
        );
        let orphan = HttpOptions {
            max_keepalive_time: Some(10),
            ..HttpOptions::default()
        };
        assert_eq!(
            orphan.validate().unwrap_err().option(),
            "max_keepalive_time"
        );
        let with_keep_alive = HttpOptions {
            keepalive_timeout: 5,
            max_keepalive_time: Some(10),
            max_keepalive_requests: Some(100),
            ..HttpOptions::default()
        };
        assert!(with_keep_alive.validate().is_ok());
        let bad_cidr = HttpOptions {
            real_ip_from: vec!["10.0.0.0/8".into(), "not-an-ip".into()],
            ..HttpOptions::default()
        };
        assert_eq!(bad_cidr.validate().unwrap_err().option(), "real_ip_from");
    }
}
