//! [`AccessRecord`], what the access log writes for a request, and [`AccessLogWriter`],
//! where it can go instead of `tracing`.

use std::cell::Cell;
use std::fmt::{self, Write as _};
use std::net::IpAddr;
use std::time::Duration;

use base64::Engine as _;
use http::{HeaderValue, Version};

/// One access log record: tomodachi's fields for one request, as [`AccessLogLayer`]
/// logs them on `tomodachi.http.response`.
///
/// [`AccessRecord::for_each_field`] gives the fields that are present in tomodachi's order.
///
/// [`AccessLogLayer`]: super::AccessLogLayer
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct AccessRecord<'a> {
    /// The response's status, 499 when the client went away first.
    pub status_code: u16,
    /// The client's address ([`RealIp`](crate::RealIp) when known, else the peer's), or
    /// `""`.
    pub remote_ip: &'a str,
    /// The login of a Basic `Authorization` header.
    pub auth_user: Option<&'a str>,
    /// `GET`, `POST`, ...
    pub request_method: &'a str,
    /// The percent-decoded path.
    pub request_path: &'a str,
    /// The query string, if not empty.
    pub request_query_string: Option<&'a str>,
    /// `HTTP/1.1` and the like.
    pub http_version: &'static str,
    /// The response's `Content-Length` (or exact body size).
    pub response_content_length: Option<u64>,
    /// The request's `Content-Length`, else the bytes of the body the handler read.
    pub request_content_length: Option<u64>,
    /// The bytes of the body the handler read.
    pub request_content_read_length: Option<u64>,
    /// The `User-Agent` header, or `""`.
    pub user_agent: &'a str,
    /// How long the service took, as `"0.00063s"` (none for a 499 or an error).
    pub handler_elapsed_time: Option<&'a str>,
    /// How long the request took, as `"0.00063s"`.
    pub request_time: &'a str,
}

/// A value of an [`AccessRecord`] field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AccessField<'a> {
    /// Text (a JSON string).
    Str(&'a str),
    /// A count or status (a JSON number).
    Num(u64),
}

impl<'a> AccessRecord<'a> {
    /// Calls `f` with each field that is present, in tomodachi's order: `status_code`,
    /// `remote_ip`, `auth_user`, `request_method`, `request_path`,
    /// `request_query_string`, `http_version`, `response_content_length`,
    /// `request_content_length`, `request_content_read_length`, `user_agent`,
    /// `handler_elapsed_time`, `request_time`.
    ///
    /// ```
    /// # fn show(record: &tomodachi_http::AccessRecord<'_>) {
    /// use tomodachi_http::AccessField;
    ///
    /// let mut line = String::new();
    /// record.for_each_field(|name, value| match value {
    ///     AccessField::Str(text) => line.push_str(&format!(" {name}={text:?}")),
    ///     AccessField::Num(n) => line.push_str(&format!(" {name}={n}")),
    ///     _ => {}
    /// });
    /// # }
    /// ```
    pub fn for_each_field(&self, mut f: impl FnMut(&'static str, AccessField<'a>)) {
        use AccessField::{Num, Str};
        f("status_code", Num(u64::from(self.status_code)));
        f("remote_ip", Str(self.remote_ip));
        if let Some(user) = self.auth_user {
            f("auth_user", Str(user));
        }
        f("request_method", Str(self.request_method));
        f("request_path", Str(self.request_path));
        if let Some(query) = self.request_query_string {
            f("request_query_string", Str(query));
        }
        f("http_version", Str(self.http_version));
        if let Some(length) = self.response_content_length {
            f("response_content_length", Num(length));
        }
        if let Some(length) = self.request_content_length {
            f("request_content_length", Num(length));
        }
        if let Some(length) = self.request_content_read_length {
            f("request_content_read_length", Num(length));
        }
        f("user_agent", Str(self.user_agent));
        if let Some(elapsed) = self.handler_elapsed_time {
            f("handler_elapsed_time", Str(elapsed));
        }
        f("request_time", Str(self.request_time));
    }
}

/// Where [`AccessLogLayer`] writes its records instead of `tracing`
/// ([`AccessLogLayer::with_writer`]): a logger that formats them itself, without
/// `tracing`'s per-field dispatch, once per request.
///
/// `write` runs inside the request's response future, on a runtime worker: it should not
/// block (buffer, or hand the record to another thread, as the facade's logger does).
/// WebSocket open/closed records stay on `tracing`.
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use tomodachi_http::{AccessLogLayer, AccessLogWriter, AccessRecord};
///
/// #[derive(Default)]
/// struct Statuses(Mutex<Vec<u16>>);
///
/// impl AccessLogWriter for Statuses {
///     fn write(&self, record: &AccessRecord<'_>) {
///         self.0.lock().unwrap().push(record.status_code);
///     }
/// }
///
/// let layer = AccessLogLayer::new().with_writer(Arc::new(Statuses::default()));
/// ```
///
/// [`AccessLogLayer`]: super::AccessLogLayer
/// [`AccessLogLayer::with_writer`]: super::AccessLogLayer::with_writer
pub trait AccessLogWriter: Send + Sync + 'static {
    /// Whether records are written at all now (such as the logger's level allowing
    /// `info`); when it is `false` the record is not put together for this writer (a file
    /// given with [`AccessLogLayer::with_file`] still gets it).
    ///
    /// [`AccessLogLayer::with_file`]: super::AccessLogLayer::with_file
    fn enabled(&self) -> bool {
        true
    }

    /// Writes one record.
    fn write(&self, record: &AccessRecord<'_>);
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Seconds(pub(crate) Duration);

impl Seconds {
    /// The text, from the count of 10 µs as digits (`{:.5}` of an `f64` goes through the
    /// float and padding machinery): once per request.
    pub(crate) fn text(self) -> ShortText {
        let tens_of_micros = self
            .0
            .as_secs()
            .saturating_mul(100_000)
            .saturating_add(u64::from(self.0.subsec_nanos() + 5_000) / 10_000);
        let mut digits = itoa::Buffer::new();
        let digits = digits.format(tens_of_micros).as_bytes();
        let mut text = ShortText::default();
        match digits.len().checked_sub(5) {
            Some(whole) if whole > 0 => {
                text.push(&digits[..whole]);
                text.push(b".");
                text.push(&digits[whole..]);
            }
            _ => {
                text.push(b"0.");
                text.push(&b"00000"[digits.len()..]);
                text.push(digits);
            }
        }
        text.push(b"s");
        text
    }
}

impl fmt::Display for Seconds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.text().as_str())
    }
}

/// A client address as text, or `""` when it is unknown. The last address a thread
/// formatted is kept (a keep-alive connection or a proxy sends many requests from one);
/// IPv4 by hand (`Ipv4Addr`'s `Display` formats each octet through the padding
/// machinery).
pub(crate) fn ip_text(ip: Option<IpAddr>) -> ShortText {
    thread_local! {
        static LAST: Cell<Option<(IpAddr, ShortText)>> = const { Cell::new(None) };
    }
    let Some(ip) = ip else {
        return ShortText::default();
    };
    let last = LAST.try_with(Cell::get).ok().flatten();
    if let Some((last, text)) = last
        && last == ip
    {
        return text;
    }
    let text = format_ip(ip);
    let _ = LAST.try_with(|last| last.set(Some((ip, text))));
    text
}

fn format_ip(ip: IpAddr) -> ShortText {
    let mut text = ShortText::default();
    match ip {
        IpAddr::V4(ip) => {
            for (i, octet) in ip.octets().into_iter().enumerate() {
                if i > 0 {
                    text.push(b".");
                }
                let digits = [
                    b'0' + octet / 100,
                    b'0' + octet / 10 % 10,
                    b'0' + octet % 10,
                ];
                let skip = match octet {
                    0..=9 => 2,
                    10..=99 => 1,
                    _ => 0,
                };
                text.push(&digits[skip..]);
            }
        }
        IpAddr::V6(ip) => {
            let _ = write!(text, "{ip}");
        }
    }
    text
}

/// ASCII text of up to 48 bytes on the stack (an IPv6 address is at most 45).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ShortText {
    bytes: [u8; 48],
    len: usize,
}

impl Default for ShortText {
    fn default() -> Self {
        Self {
            bytes: [0; 48],
            len: 0,
        }
    }
}

impl ShortText {
    /// Appends what fits of `ascii`, a byte at a time (the pieces are a few bytes long:
    /// cheaper than a `memcpy` call each).
    fn push(&mut self, ascii: &[u8]) {
        for &byte in ascii {
            if let Some(slot) = self.bytes.get_mut(self.len) {
                *slot = byte;
                self.len += 1;
            }
        }
    }

    pub(crate) fn as_str(&self) -> &str {
        std::str::from_utf8(&self.bytes[..self.len]).unwrap_or_default()
    }
}

impl fmt::Write for ShortText {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if s.len() > self.bytes.len() - self.len {
            return Err(fmt::Error);
        }
        self.push(s.as_bytes());
        Ok(())
    }
}

pub(crate) fn version_str(version: Version) -> &'static str {
    match version {
        Version::HTTP_09 => "HTTP/0.9",
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_11 => "HTTP/1.1",
        Version::HTTP_2 => "HTTP/2.0",
        Version::HTTP_3 => "HTTP/3.0",
        _ => "HTTP/1.1",
    }
}

/// The login of a `Basic` `Authorization` header (tomodachi's `auth_user`).
pub(crate) fn basic_auth_user(value: &HeaderValue) -> Option<String> {
    let value = value.to_str().ok()?;
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (login, _) = decoded.split_once(':')?;
    Some(login.to_owned())
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_tomodachi() {
        assert_eq!(Seconds(Duration::from_micros(630)).to_string(), "0.00063s");
        assert_eq!(
            Seconds(Duration::from_nanos(1_234_565_001)).to_string(),
            "1.23457s"
        );
        assert_eq!(Seconds(Duration::ZERO).to_string(), "0.00000s");
        assert_eq!(Seconds(Duration::from_secs(12)).to_string(), "12.00000s");
        assert_eq!(Seconds(Duration::from_micros(10)).to_string(), "0.00001s");
        assert_eq!(
            Seconds(Duration::from_micros(99_999)).to_string(),
            "0.10000s"
        );
        assert_eq!(Seconds(Duration::from_millis(999)).to_string(), "0.99900s");
        assert_eq!(Seconds(Duration::from_secs(1)).to_string(), "1.00000s");
        // Saturates instead of overflowing.
        assert!(Seconds(Duration::MAX).to_string().ends_with('s'));
        for ip in [
            "0.0.0.0",
            "127.0.0.1",
            "127.0.0.1",
            "10.20.255.9",
            "255.255.255.255",
            "::1",
            "127.0.0.1",
        ] {
            assert_eq!(ip_text(Some(ip.parse().unwrap())).as_str(), ip);
        }
        let longest = "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255";
        assert_eq!(
            ip_text(Some(longest.parse().unwrap())).as_str(),
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"
        );
        assert_eq!(ip_text(None).as_str(), "");
        assert_eq!(
            basic_auth_user(&HeaderValue::from_static("Basic dXNlcjpwYXNz")).as_deref(),
            Some("user")
        );
        assert_eq!(basic_auth_user(&HeaderValue::from_static("Bearer x")), None);
    }
}
