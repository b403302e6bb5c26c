//! tomodachi-style regex routes: full match on the decoded path, first match wins. The
//! routes themselves need the `regex-lite` or the `regex` feature (`dispatch`); the
//! [`Groups`] extractor, the path decoding and the 405 marking are always here.

use std::borrow::Cow;
use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::response::Response;
use http::StatusCode;
use http::header::ALLOW;
use http::request::Parts;

use crate::response::{Raised, raised_default, unhandled};

#[cfg(any(feature = "regex", feature = "regex-lite"))]
mod dispatch;
#[cfg(any(feature = "regex", feature = "regex-lite"))]
pub use dispatch::PatternError;
#[cfg(any(feature = "regex", feature = "regex-lite"))]
pub(crate) use dispatch::{RegexDispatch, RegexRoute, compile};

/// The named groups of the regex route that matched (tomodachi passes them as keyword
/// arguments).
///
/// ```
/// use tomodachi_http::{Groups, HttpRouter};
/// use axum::routing::get;
///
/// async fn resource(groups: Groups) -> String {
///     format!("id = {}", groups.get("id").unwrap_or_default())
/// }
///
/// let router: HttpRouter = HttpRouter::new().regex_route(r"/resource/(?P<id>[^/]+?)/?", get(resource));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Groups(Arc<HashMap<String, String>>);

impl Groups {
    /// The value of the named group, if it took part in the match.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// Parses the named group's value; `None` when missing or unparsable.
    pub fn parse<T: std::str::FromStr>(&self, name: &str) -> Option<T> {
        self.get(name)?.parse().ok()
    }

    /// Every named group that took part in the match.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Groups {
    type Rejection = Infallible;

    /// Empty when the request was not routed by a regex route with named groups.
    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<Groups>()
            .cloned()
            .unwrap_or_default())
    }
}

/// Percent-decodes a path (tomodachi matches on aiohttp's decoded `request.path`).
pub(crate) fn decode_path(path: &str) -> Cow<'_, str> {
    if !path.contains('%') {
        return Cow::Borrowed(path);
    }
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(hi), Some(lo)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push((hi * 16 + lo) as u8);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

/// axum's own 405 (empty body, `Allow` set) becomes a raised "Method Not Allowed".
pub(crate) fn mark_method_not_allowed(response: Response) -> Response {
    if response.status() != StatusCode::METHOD_NOT_ALLOWED
        || response.extensions().get::<Raised>().is_some()
        || http_body::Body::size_hint(response.body()).exact() != Some(0)
    {
        return response;
    }
    let mut raised = unhandled(raised_default(StatusCode::METHOD_NOT_ALLOWED));
    if let Some(allow) = response.headers().get(ALLOW) {
        raised.headers_mut().insert(ALLOW, allow.clone());
    }
    raised
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_percent_escapes() {
        assert_eq!(decode_path("/a%20b/%C3%A5"), "/a b/å");
        assert_eq!(decode_path("/plain"), "/plain");
        assert_eq!(decode_path("/bad%zz%"), "/bad%zz%");
    }
}
