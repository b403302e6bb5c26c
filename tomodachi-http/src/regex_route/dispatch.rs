//! The regex routes (`regex-lite`, or `regex` with that feature): compiled patterns and
//! the router's fallback that tries them in order.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::extract::Request;
use axum::response::Response;
use axum::routing::MethodRouter;
use futures_util::future::BoxFuture;
#[cfg(feature = "regex")]
use regex::Regex;
#[cfg(not(feature = "regex"))]
use regex_lite::Regex;
use tomodachi_core::telemetry::HttpRoute;
use tower::ServiceExt;
use tower_service::Service;

use super::{Groups, decode_path, mark_method_not_allowed};

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
}
