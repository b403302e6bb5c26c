//! tomodachi-style regex routes: full match on the decoded path, first match wins.

use std::borrow::Cow;
use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::extract::{FromRequestParts, Request};
use axum::response::Response;
use axum::routing::MethodRouter;
use futures_util::future::BoxFuture;
use http::StatusCode;
use http::header::ALLOW;
use http::request::Parts;
#[cfg(feature = "regex")]
use regex::Regex;
#[cfg(not(feature = "regex"))]
use regex_lite::Regex;
use tomodachi_core::telemetry::HttpRoute;
use tower::ServiceExt;
use tower_service::Service;

use crate::response::{Raised, raised_default, unhandled};

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

/// Why a regex route's pattern does not compile: `regex::Error` with the `regex` feature,
/// `regex_lite::Error` without it.
#[cfg(feature = "regex")]
pub use regex::Error as PatternError;
/// Why a regex route's pattern does not compile: `regex::Error` with the `regex` feature,
/// `regex_lite::Error` without it.
#[cfg(not(feature = "regex"))]
pub use regex_lite::Error as PatternError;

/// tomodachi's pattern: one leading `^` and one trailing `$` are dropped, the rest must
/// match the whole path.
pub(crate) fn compile(pattern: &str) -> Result<Regex, PatternError> {
    let inner = pattern.strip_prefix('^').unwrap_or(pattern);
    let inner = inner.strip_suffix('$').unwrap_or(inner);
    Regex::new(&format!("^(?:{inner})$"))
}

pub(crate) struct RegexRoute<S> {
    pub(crate) pattern: String,
    pub(crate) regex: Regex,
    pub(crate) method_router: MethodRouter<S>,
}

impl<S> std::fmt::Debug for RegexRoute<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegexRoute")
            .field("pattern", &self.pattern)
            .finish_non_exhaustive()
    }
}

#[derive(Clone)]
struct Compiled {
    regex: Regex,
    named: bool,
    /// The pattern without `^`/`$`, for telemetry (tomodachi's `http.route`).
    route: HttpRoute,
    method_router: MethodRouter,
}

/// The router's fallback: regex routes in registration order, then not found.
#[derive(Clone)]
pub(crate) struct RegexDispatch {
    routes: Arc<[Compiled]>,
    not_found: MethodRouter,
}

impl std::fmt::Debug for RegexDispatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegexDispatch")
            .field("routes", &self.routes.len())
            .finish_non_exhaustive()
    }
}

impl RegexDispatch {
    pub(crate) fn new(routes: Vec<RegexRoute<()>>, not_found: MethodRouter) -> Self {
        let routes = routes
            .into_iter()
            .map(|route| Compiled {
                named: route.regex.capture_names().flatten().next().is_some(),
                route: HttpRoute(Arc::from(unanchored(&route.pattern))),
                regex: route.regex,
                method_router: route.method_router,
            })
            .collect();
        Self { routes, not_found }
    }
}

/// The pattern without its `^` and `$` anchors (tomodachi's span name and `http.route`).
fn unanchored(pattern: &str) -> &str {
    let pattern = pattern.strip_prefix('^').unwrap_or(pattern);
    pattern.strip_suffix('$').unwrap_or(pattern)
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

impl Service<Request> for RegexDispatch {
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut req: Request) -> Self::Future {
        let mut chosen = None;
        {
            let path = decode_path(req.uri().path());
            for route in self.routes.iter() {
                if route.named {
                    if let Some(captures) = route.regex.captures(&path) {
                        let groups = route
                            .regex
                            .capture_names()
                            .flatten()
                            .filter_map(|name| {
                                Some((name.to_owned(), captures.name(name)?.as_str().to_owned()))
                            })
                            .collect();
                        chosen = Some((
                            route.method_router.clone(),
                            route.route.clone(),
                            Some(Groups(Arc::new(groups))),
                        ));
                        break;
                    }
                } else if route.regex.is_match(&path) {
                    chosen = Some((route.method_router.clone(), route.route.clone(), None));
                    break;
                }
            }
        }
        match chosen {
            Some((method_router, route, groups)) => {
                req.extensions_mut().insert(route);
                if let Some(groups) = groups {
                    req.extensions_mut().insert(groups);
                }
                Box::pin(async move {
                    let Ok(response) = method_router.oneshot(req).await;
                    Ok(mark_method_not_allowed(response))
                })
            }
            None => {
                let not_found = self.not_found.clone();
                Box::pin(async move { not_found.oneshot(req).await })
            }
        }
    }
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
    fn full_match_and_anchor_stripping() {
        let regex = compile(r"^/resource/(?P<id>[^/]+?)/?$").unwrap();
        assert!(regex.is_match("/resource/7"));
        assert!(regex.is_match("/resource/7/"));
        assert!(!regex.is_match("/resource/7/x"));
        assert!(!regex.is_match("/Resource/7"));
        let alternation = compile("/a|/b").unwrap();
        assert!(alternation.is_match("/a") && alternation.is_match("/b"));
        assert!(!alternation.is_match("/ab"));
    }

    #[test]
    fn decodes_percent_escapes() {
        assert_eq!(decode_path("/a%20b/%C3%A5"), "/a b/å");
        assert_eq!(decode_path("/plain"), "/plain");
        assert_eq!(decode_path("/bad%zz%"), "/bad%zz%");
    }
}
