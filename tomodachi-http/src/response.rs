//! tomodachi's response forms: raised HTTP errors and a response builder.

use std::fmt;

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};

/// Marks a response as raised (router 404/405, 413, a panic, an [`HttpError`]): the
/// router's error handler for its status replaces it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Raised;

/// Marks a response no handler produced (the router's 404 and 405, the 413 of the body
/// limit): its access record has no `handler_elapsed_time`, as in tomodachi.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Unhandled;

/// `response`, marked [`Unhandled`].
pub(crate) fn unhandled(mut response: Response) -> Response {
    response.extensions_mut().insert(Unhandled);
    response
}

/// Marks a response whose `Content-Type` is meant as it is, `application/octet-stream`
/// included: an [`HttpResponse`] with a content type, a static file. Without it the server
/// sends a bytes body (axum's `application/octet-stream` for `Vec<u8>`, `Bytes`,
/// `&'static [u8]`) with the `content_type` option, as tomodachi does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ExplicitContentType;

/// axum's content type of a bytes body.
pub(crate) const OCTET_STREAM: HeaderValue = HeaderValue::from_static("application/octet-stream");

/// The charset a [`HttpResponse`] asked for without a content type: the server's default
/// content type is used with it.
#[derive(Debug, Clone)]
pub(crate) struct DefaultCharset(pub(crate) HeaderValue);

/// The content type of tomodachi's error bodies, whatever the `content_type` option says.
pub(crate) const TEXT_PLAIN_UTF8: HeaderValue =
    HeaderValue::from_static("text/plain; charset=utf-8");

/// A raised error response: `text/plain; charset=utf-8` with `body`, marked [`Raised`].
pub(crate) fn raised(status: StatusCode, body: impl Into<Body>) -> Response {
    let mut response = Response::new(body.into());
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, TEXT_PLAIN_UTF8);
    response.extensions_mut().insert(Raised);
    response
}

/// The raised response of `status` without an error handler: the reason phrase as the
/// body ("Not Found"), or an empty body for server errors.
pub(crate) fn raised_default(status: StatusCode) -> Response {
    if status.is_server_error() {
        raised(status, Body::empty())
    } else {
        raised(status, status.canonical_reason().unwrap_or_default())
    }
}

/// An HTTP error a handler raises (tomodachi's `raise web.HTTPNotFound()`): the router's
/// error handler for its status runs (see
/// [`HttpRouter::http_error`](crate::HttpRouter::http_error)); without one, the response
/// is the status with its reason phrase as a `text/plain` body (empty for 5xx).
///
/// Returning a status (`StatusCode::NOT_FOUND`, `(StatusCode::NOT_FOUND, "gone")`) is a
/// plain response instead, as returning `(404, body)` is in tomodachi.
///
/// ```
/// use tomodachi_http::HttpError;
///
/// async fn order(id: String) -> Result<String, HttpError> {
///     if id == "7" { Ok("order 7".into()) } else { Err(HttpError::NOT_FOUND) }
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpError {
    status: StatusCode,
    message: Option<String>,
}

impl HttpError {
    /// 400 Bad Request.
    pub const BAD_REQUEST: Self = Self::new(StatusCode::BAD_REQUEST);
    /// 401 Unauthorized.
    pub const UNAUTHORIZED: Self = Self::new(StatusCode::UNAUTHORIZED);
    /// 403 Forbidden.
    pub const FORBIDDEN: Self = Self::new(StatusCode::FORBIDDEN);
    /// 404 Not Found.
    pub const NOT_FOUND: Self = Self::new(StatusCode::NOT_FOUND);
    /// 405 Method Not Allowed.
    pub const METHOD_NOT_ALLOWED: Self = Self::new(StatusCode::METHOD_NOT_ALLOWED);
    /// 500 Internal Server Error (empty body).
    pub const INTERNAL_SERVER_ERROR: Self = Self::new(StatusCode::INTERNAL_SERVER_ERROR);
    /// 503 Service Unavailable (empty body).
    pub const SERVICE_UNAVAILABLE: Self = Self::new(StatusCode::SERVICE_UNAVAILABLE);

    /// An error with `status`.
    pub const fn new(status: StatusCode) -> Self {
        Self {
            status,
            message: None,
        }
    }

    /// Uses `message` as the body (when no error handler replaces it).
    pub fn with_message(mut self, message: impl Into<String>) -> Self {
        self.message = Some(message.into());
        self
    }

    /// The status.
    pub fn status(&self) -> StatusCode {
        self.status
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.message {
            Some(message) => write!(f, "{}: {message}", self.status),
            None => write!(f, "{}", self.status),
        }
    }
}

impl std::error::Error for HttpError {}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        match self.message {
            Some(message) => raised(self.status, message),
            None => raised_default(self.status),
        }
    }
}

/// tomodachi's `HttpResponse(body, status, reason, headers, content_type, charset)`.
///
/// Without a content type (neither [`content_type`](Self::content_type) nor a
/// `Content-Type` header) the server's default from the `content_type`/`charset` options
/// is used; a `Content-Type` header is sent verbatim and wins over
/// [`content_type`](Self::content_type)/[`charset`](Self::charset). Bodies are bytes:
/// Rust strings are UTF-8 already, so `charset` only names the encoding.
///
/// A handler returning bytes (`Vec<u8>`, `Bytes`, `&'static [u8]`) is sent with the
/// `content_type` option, as in tomodachi (axum would say `application/octet-stream`);
/// to send `application/octet-stream`, say so here:
/// `HttpResponse::new(bytes).content_type("application/octet-stream")`.
///
/// ```
/// use http::StatusCode;
/// use tomodachi_http::HttpResponse;
///
/// async fn created() -> HttpResponse {
///     HttpResponse::new(r#"{"id": 7}"#)
///         .status(StatusCode::CREATED)
///         .content_type("application/json")
///         .header("x-order-id", "7")
/// }
/// ```
#[derive(Debug, Clone, Default)]
pub struct HttpResponse {
    status: StatusCode,
    body: Bytes,
    headers: HeaderMap,
    content_type: Option<String>,
    charset: Option<String>,
    invalid_header: Option<String>,
}

impl HttpResponse {
    /// A 200 response with `body`.
    pub fn new(body: impl Into<Bytes>) -> Self {
        Self {
            body: body.into(),
            ..Self::default()
        }
    }

    /// Sets the status.
    pub fn status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    /// Appends a header. An invalid name or value makes the response a logged 500.
    pub fn header<K, V>(mut self, name: K, value: V) -> Self
    where
        K: TryInto<HeaderName>,
        V: TryInto<HeaderValue>,
    {
        match (name.try_into(), value.try_into()) {
            (Ok(name), Ok(value)) => {
                self.headers.append(name, value);
            }
            _ => self.invalid_header = Some("invalid header in HttpResponse".to_owned()),
        }
        self
    }

    /// Sets the content type (without parameters, such as `application/json`).
    pub fn content_type(mut self, content_type: impl Into<String>) -> Self {
        self.content_type = Some(content_type.into());
        self
    }

    /// Sets the charset appended to the content type.
    pub fn charset(mut self, charset: impl Into<String>) -> Self {
        self.charset = Some(charset.into());
        self
    }
}

impl IntoResponse for HttpResponse {
    fn into_response(self) -> Response {
        if let Some(error) = self.invalid_header {
            tracing::error!(target: "exception", "uncaught exception: {error}");
            return raised_default(StatusCode::INTERNAL_SERVER_ERROR);
        }
        let mut response = Response::new(Body::from(self.body));
        *response.status_mut() = self.status;
        *response.headers_mut() = self.headers;
        if response.headers().contains_key(CONTENT_TYPE) || self.content_type.is_some() {
            response.extensions_mut().insert(ExplicitContentType);
        }
        if !response.headers().contains_key(CONTENT_TYPE) {
            let value = match (self.content_type, self.charset) {
                (Some(content_type), Some(charset)) => {
                    Some(format!("{content_type}; charset={charset}"))
                }
                (Some(content_type), None) => Some(content_type),
                (None, Some(charset)) => {
                    if let Ok(charset) = HeaderValue::try_from(charset) {
                        response.extensions_mut().insert(DefaultCharset(charset));
                    }
                    None
                }
                (None, None) => None,
            };
            if let Some(value) = value.and_then(|value| HeaderValue::try_from(value).ok()) {
                response.headers_mut().insert(CONTENT_TYPE, value);
            }
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raised_errors_carry_reason_phrase_and_marker() {
        let response = HttpError::NOT_FOUND.into_response();
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert_eq!(
            response.headers()[CONTENT_TYPE],
            "text/plain; charset=utf-8"
        );
        assert!(response.extensions().get::<Raised>().is_some());
        let response = HttpError::INTERNAL_SERVER_ERROR.into_response();
        assert_eq!(http_body::Body::size_hint(response.body()).exact(), Some(0));
    }

    #[test]
    fn http_response_content_type_forms() {
        let response = HttpResponse::new("x")
            .content_type("application/json")
            .charset("utf-8")
            .into_response();
        assert_eq!(
            response.headers()[CONTENT_TYPE],
            "application/json; charset=utf-8"
        );
        let response = HttpResponse::new("x")
            .header("content-type", "text/html")
            .content_type("application/json")
            .into_response();
        assert_eq!(response.headers()[CONTENT_TYPE], "text/html");
        let response = HttpResponse::new("x").into_response();
        assert!(!response.headers().contains_key(CONTENT_TYPE));
        let response = HttpResponse::new("x")
            .header("bad header", "v")
            .into_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }
}
