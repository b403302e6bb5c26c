//! `HttpRouter`: an axum router plus tomodachi's regex routes, error handlers and static
//! files.

use std::collections::HashMap;
use std::convert::Infallible;
#[cfg(feature = "fs")]
use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::extract::Request;
use axum::handler::Handler;
use axum::response::IntoResponse;
use axum::routing::{MethodRouter, Route, any};
#[cfg(feature = "fs")]
use http::Response;
use http::StatusCode;
#[cfg(feature = "fs")]
use tower::ServiceExt;
#[cfg(feature = "fs")]
use tower_http::services::ServeDir;
use tower_layer::Layer;
use tower_service::Service;

#[cfg(feature = "fs")]
use crate::IgnoreLoggingLayer;
use crate::error_handler::ErrorHandlerLayer;
use crate::guard::GuardLayer;
#[cfg(any(feature = "regex", feature = "regex-lite"))]
use crate::regex_route::{self, RegexDispatch, RegexRoute};
#[cfg(feature = "fs")]
use crate::response::ExplicitContentType;
use crate::response::{raised_default, unhandled};

async fn not_found() -> axum::response::Response {
    unhandled(raised_default(StatusCode::NOT_FOUND))
}

/// Routes of an HTTP service: axum paths and tomodachi-style regex paths in one router,
/// per-status error handlers and static directories.
///
/// - [`route`](Self::route): an axum path (`/orders/{id}`), matched by axum.
/// - `regex_route` (feature `regex-lite` or `regex`): tomodachi's `@http(method, url)`: the pattern
///   must match the whole percent-decoded path (case-sensitive, no slash normalisation,
///   query ignored); regex routes are tried in registration order after the axum paths,
///   and the first whose pattern matches handles the request. Its `MethodRouter` answers
///   `HEAD` for `GET` and 405 with `Allow` for other methods. Named groups are read with
///   the [`Groups`](crate::Groups) extractor. Registering the same pattern again merges the
///   method routers (`get` and `post` on one path, as two tomodachi decorators).
/// - [`http_error`](Self::http_error): tomodachi's `@http_error(status_code=N)`.
/// - `http_static` (feature `fs`): tomodachi's `@http_static(path, base_url)`.
///
/// Handlers are ordinary axum handlers; layers are ordinary tower layers.
///
/// ```
/// use axum::routing::get;
/// use tomodachi_http::{Groups, HttpRouter};
///
/// async fn resource(groups: Groups) -> String {
///     format!("id = {}", groups.get("id").unwrap_or_default())
/// }
///
/// let router: HttpRouter = HttpRouter::new()
///     .route("/health", get(|| async { r#"{"status": "healthy"}"# }))
///     .regex_route(r"/resource/(?P<id>[^/]+?)/?", get(resource))
///     .http_error(http::StatusCode::NOT_FOUND, || async { r#"{"error": "not-found"}"# });
/// ```
#[must_use]
pub struct HttpRouter<S = ()> {
    router: Router<S>,
    #[cfg(any(feature = "regex", feature = "regex-lite"))]
    regex_routes: Vec<RegexRoute<S>>,
    not_found: MethodRouter<S>,
    error_handlers: Vec<(StatusCode, MethodRouter<S>)>,
    /// Routes served only where no other route matches (see `fallback_route`).
    fallback_routes: Router<S>,
    /// The paths given to `route` and `route_service`, for `has_route`.
    paths: Vec<String>,
}

impl<S> std::fmt::Debug for HttpRouter<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut debug = f.debug_struct("HttpRouter");
        debug.field("router", &self.router);
        #[cfg(any(feature = "regex", feature = "regex-lite"))]
        debug.field("regex_routes", &self.regex_routes);
        debug
            .field(
                "error_handlers",
                &self
                    .error_handlers
                    .iter()
                    .map(|(status, _)| status)
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl<S> Default for HttpRouter<S>
where
    S: Clone + Send + Sync + 'static,
{
    fn default() -> Self {
        Self::new()
    }
}

impl From<Router> for HttpRouter {
    fn from(router: Router) -> Self {
        Self::new().merge(router)
    }
}

impl<S> HttpRouter<S>
where
    S: Clone + Send + Sync + 'static,
{
    /// An empty router: every path is 404.
    pub fn new() -> Self {
        Self {
            router: Router::new(),
            #[cfg(any(feature = "regex", feature = "regex-lite"))]
            regex_routes: Vec::new(),
            not_found: any(not_found),
            error_handlers: Vec::new(),
            fallback_routes: Router::new(),
            paths: Vec::new(),
        }
    }

    /// Adds an axum path route (see [`axum::Router::route`]; panics as it does).
    pub fn route(mut self, path: &str, method_router: MethodRouter<S>) -> Self {
        self.router = self.router.route(path, method_router);
        self.paths.push(path.to_owned());
        self
    }

    /// Adds a route that only answers where none of the router's other routes matches,
    /// whenever those are added: the router's own routes (axum paths, regex routes,
    /// merged and nested routers) always win. For routes a framework adds to every
    /// service, such as the health probes.
    ///
    /// ```
    /// use axum::routing::get;
    /// use tomodachi_http::HttpRouter;
    ///
    /// let router: HttpRouter = HttpRouter::new()
    ///     .fallback_route("/health/live", get(|| async { "default" }))
    ///     .route("/health/live", get(|| async { "the service's own" }));
    /// assert!(router.has_route("/health/live"));
    /// ```
    pub fn fallback_route(mut self, path: &str, method_router: MethodRouter<S>) -> Self {
        self.fallback_routes = self.fallback_routes.route(path, method_router);
        self
    }

    /// Whether a route added with [`route`](Self::route), [`route_service`](Self::route_service)
    /// or `regex_route` answers at exactly `path` (the paths of
    /// merged and nested routers are not seen; fallback routes do not count).
    pub fn has_route(&self, path: &str) -> bool {
        if self.paths.iter().any(|p| p == path) {
            return true;
        }
        #[cfg(any(feature = "regex", feature = "regex-lite"))]
        if self
            .regex_routes
            .iter()
            .any(|route| route.regex.is_match(path))
        {
            return true;
        }
        false
    }

    /// Adds a service at an axum path (see [`axum::Router::route_service`]).
    pub fn route_service<T>(mut self, path: &str, service: T) -> Self
    where
        T: Service<Request, Error = Infallible> + Clone + Send + Sync + 'static,
        T::Response: IntoResponse,
        T::Future: Send + 'static,
    {
        self.router = self.router.route_service(path, service);
        self.paths.push(path.to_owned());
        self
    }

    /// Adds a tomodachi regex route (features `regex-lite` or `regex`).
    ///
    /// # Panics
    ///
    /// If `pattern` is not a valid regex, or the same pattern already has a handler for one
    /// of `method_router`'s methods (as axum panics on bad or overlapping routes). Use
    /// [`try_regex_route`](Self::try_regex_route) for patterns from configuration.
    #[cfg(any(feature = "regex", feature = "regex-lite"))]
    #[cfg_attr(docsrs, doc(cfg(any(feature = "regex", feature = "regex-lite"))))]
    pub fn regex_route(self, pattern: &str, method_router: MethodRouter<S>) -> Self {
        match self.try_regex_route(pattern, method_router) {
            Ok(router) => router,
            Err(error) => panic!("Bad http route pattern '{pattern}': {error}"),
        }
    }

    /// Adds a tomodachi regex route, or returns why the pattern is not a valid regex.
    #[cfg(any(feature = "regex", feature = "regex-lite"))]
    #[cfg_attr(docsrs, doc(cfg(any(feature = "regex", feature = "regex-lite"))))]
    pub fn try_regex_route(
        mut self,
        pattern: &str,
        method_router: MethodRouter<S>,
    ) -> Result<Self, crate::PatternError> {
        let regex = regex_route::compile(pattern)?;
        if let Some(existing) = self
            .regex_routes
            .iter_mut()
            .find(|route| route.pattern == pattern)
        {
            let current = std::mem::replace(&mut existing.method_router, MethodRouter::new());
            existing.method_router = current.merge(method_router);
        } else {
            self.regex_routes.push(RegexRoute {
                pattern: pattern.to_owned(),
                regex,
                method_router,
            });
        }
        Ok(self)
    }

    /// Registers an error handler for `status` (tomodachi's `@http_error`).
    ///
    /// It runs for raised errors of that status: the router's 404 and 405, the 413 of
    /// `client_max_size`, the 500 of a panic, and [`HttpError`](crate::HttpError)s that
    /// handlers return. It is an ordinary axum handler: it can extract the request's
    /// parts (not its body) and [`ErrorStatus`](crate::ErrorStatus). Its response's status
    /// defaults to `status` (a handler returning a plain 200 body answers with `status`).
    /// If it panics, the 500 handler (if any) runs, else an empty 500 is sent.
    pub fn http_error<H, T>(mut self, status: StatusCode, handler: H) -> Self
    where
        H: Handler<T, S>,
        T: 'static,
    {
        self.error_handlers
            .retain(|(existing, _)| *existing != status);
        self.error_handlers.push((status, any(handler)));
        self
    }

    #[cfg(feature = "fs")]
    /// Serves the files below `dir` at `base` (tomodachi's `@http_static(path, base_url)`):
    /// `GET`/`HEAD` only (405 otherwise), with content types, ranges and
    /// `ETag`/`Last-Modified`; directories, missing files and paths that try to leave
    /// `dir` are 404 (through the 404 error handler, if any). `dir` is relative to the
    /// process's working directory.
    ///
    /// # Panics
    ///
    /// If `base` is `/` or empty (serve a whole site with a fallback service instead).
    pub fn http_static(self, dir: impl Into<PathBuf>, base: &str) -> Self {
        self.add_static(dir.into(), base, None)
    }

    #[cfg(feature = "fs")]
    /// [`http_static`](Self::http_static) whose access log records are hidden as `ignore`
    /// says (tomodachi's `@http_static(path, base_url, ignore_logging=...)`): all of them,
    /// or those of some statuses (a missing file's 404 included).
    ///
    /// ```
    /// use tomodachi_http::{HttpRouter, IgnoreLoggingLayer};
    ///
    /// let router: HttpRouter = HttpRouter::new()
    ///     .http_static_ignore_logging("assets", "/assets", IgnoreLoggingLayer::statuses([200, 304]));
    /// ```
    ///
    /// # Panics
    ///
    /// As [`http_static`](Self::http_static).
    pub fn http_static_ignore_logging(
        self,
        dir: impl Into<PathBuf>,
        base: &str,
        ignore: IgnoreLoggingLayer,
    ) -> Self {
        self.add_static(dir.into(), base, Some(ignore))
    }

    #[cfg(feature = "fs")]
    fn add_static(mut self, dir: PathBuf, base: &str, ignore: Option<IgnoreLoggingLayer>) -> Self {
        let base = base.trim_end_matches('/');
        assert!(
            !base.is_empty(),
            "http_static needs a base path other than '/'"
        );
        let base = if base.starts_with('/') {
            base.to_owned()
        } else {
            format!("/{base}")
        };
        let serve_dir = ServeDir::new(dir).append_index_html_on_directories(false);
        let serve_dir = <ServeDir as ServiceExt<Request>>::map_response(
            serve_dir,
            |response: Response<tower_http::services::fs::ServeFileSystemResponseBody>| {
                if response.status() == StatusCode::NOT_FOUND {
                    raised_default(StatusCode::NOT_FOUND)
                } else {
                    let mut response = response.map(axum::body::Body::new);
                    response.extensions_mut().insert(ExplicitContentType);
                    response
                }
            },
        );
        let service = tower::util::option_layer(ignore).layer(serve_dir);
        self.router = self.router.nest_service(&base, service);
        self
    }

    /// Merges an axum router's routes (see [`axum::Router::merge`]). An axum fallback of
    /// the merged router is replaced by the regex routes and the 404 response when the
    /// router is finished: register a catch-all regex route (`".*"`) instead.
    pub fn merge<R: Into<Router<S>>>(mut self, other: R) -> Self {
        self.router = self.router.merge(other);
        self
    }

    /// Nests an axum router at `path` (see [`axum::Router::nest`]).
    pub fn nest(mut self, path: &str, router: Router<S>) -> Self {
        self.router = self.router.nest(path, router);
        self
    }

    /// Applies a tower layer to every route added so far, to the not-found response and to
    /// the error handlers registered so far (as [`axum::Router::layer`]; tomodachi runs
    /// `@http_error` handlers through the middlewares too, so an error handler sees what
    /// the layer put on the request). Fallible middleware needs axum's `HandleErrorLayer`.
    pub fn layer<L>(mut self, layer: L) -> Self
    where
        L: Layer<Route> + Clone + Send + Sync + 'static,
        L::Service: Service<Request> + Clone + Send + Sync + 'static,
        <L::Service as Service<Request>>::Response: IntoResponse + 'static,
        <L::Service as Service<Request>>::Error: Into<Infallible> + 'static,
        <L::Service as Service<Request>>::Future: Send + 'static,
    {
        self.router = self.router.layer(layer.clone());
        #[cfg(any(feature = "regex", feature = "regex-lite"))]
        {
            self.regex_routes = self
                .regex_routes
                .into_iter()
                .map(|route| RegexRoute {
                    method_router: route.method_router.layer(layer.clone()),
                    ..route
                })
                .collect();
        }
        self.error_handlers = self
            .error_handlers
            .into_iter()
            .map(|(status, handler)| (status, handler.layer(layer.clone())))
            .collect();
        self.not_found = self.not_found.layer(layer);
        self
    }

    /// Applies a tower layer to the routes added so far, not to the not-found response
    /// (as [`axum::Router::route_layer`]).
    pub fn route_layer<L>(mut self, layer: L) -> Self
    where
        L: Layer<Route> + Clone + Send + Sync + 'static,
        L::Service: Service<Request, Error = Infallible> + Clone + Send + Sync + 'static,
        <L::Service as Service<Request>>::Response: IntoResponse + 'static,
        <L::Service as Service<Request>>::Future: Send + 'static,
    {
        if self.router.has_routes() {
            self.router = self.router.route_layer(layer.clone());
        }
        #[cfg(any(feature = "regex", feature = "regex-lite"))]
        {
            self.regex_routes = self
                .regex_routes
                .into_iter()
                .map(|route| RegexRoute {
                    method_router: route.method_router.route_layer(layer.clone()),
                    ..route
                })
                .collect();
        }
        #[cfg(not(any(feature = "regex", feature = "regex-lite")))]
        drop(layer);
        self
    }

    /// Provides the state of the handlers (see [`axum::Router::with_state`]).
    pub fn with_state<S2>(self, state: S) -> HttpRouter<S2>
    where
        S2: Clone + Send + Sync + 'static,
    {
        HttpRouter {
            router: self.router.with_state(state.clone()),
            #[cfg(any(feature = "regex", feature = "regex-lite"))]
            regex_routes: self
                .regex_routes
                .into_iter()
                .map(|route| RegexRoute {
                    pattern: route.pattern,
                    regex: route.regex,
                    method_router: route.method_router.with_state(state.clone()),
                })
                .collect(),
            not_found: self.not_found.with_state(state.clone()),
            error_handlers: self
                .error_handlers
                .into_iter()
                .map(|(status, handler)| (status, handler.with_state(state.clone())))
                .collect(),
            fallback_routes: self.fallback_routes.with_state(state.clone()),
            paths: self.paths,
        }
    }
}

impl HttpRouter {
    /// The whole router as one axum [`Router`]: regex routes, error handlers, panics as
    /// logged 500s. Serve it with [`HttpServer`](crate::HttpServer) to get the options'
    /// behaviour too (body limit, access log, keep-alive, real IP, drain), or with any
    /// axum server.
    pub fn into_router(self) -> Router {
        self.finish()
    }

    fn finish(self) -> Router {
        let (mut router, error_handlers) = self.into_parts();
        router = router.layer(GuardLayer);
        if let Some(error_handlers) = error_handlers {
            router = router.layer(error_handlers);
        }
        router
    }

    /// The routes (regex routes as the fallback), and the layer running the error
    /// handlers, if any: the server wraps them in its own layers, outside the router
    /// (`Router::layer` would box each layer's service and future per route).
    pub(crate) fn into_parts(self) -> (Router, Option<ErrorHandlerLayer>) {
        let Self {
            router,
            #[cfg(any(feature = "regex", feature = "regex-lite"))]
            regex_routes,
            mut not_found,
            error_handlers,
            fallback_routes,
            paths: _,
        } = self;
        if fallback_routes.has_routes() {
            not_found = axum::routing::any_service(fallback_routes.fallback_service(not_found));
        }
        #[cfg(any(feature = "regex", feature = "regex-lite"))]
        let router = router.fallback_service(RegexDispatch::new(regex_routes, not_found));
        #[cfg(not(any(feature = "regex", feature = "regex-lite")))]
        let router = router.fallback_service(not_found);
        let error_handlers = (!error_handlers.is_empty()).then(|| {
            let handlers: HashMap<StatusCode, MethodRouter> = error_handlers.into_iter().collect();
            ErrorHandlerLayer::new(Arc::new(handlers))
        });
        (router, error_handlers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::routing::{get, post};
    use http_body_util::BodyExt;

    async fn call(
        router: &Router,
        method: &str,
        uri: &str,
    ) -> (StatusCode, http::HeaderMap, String) {
        let request = Request::builder()
            .method(method)
            .uri(uri)
            .body(Body::empty())
            .unwrap();
        let response = router.clone().oneshot(request).await.unwrap();
        let (parts, body) = response.into_parts();
        let body = body.collect().await.unwrap().to_bytes();
        (
            parts.status,
            parts.headers,
            String::from_utf8(body.to_vec()).unwrap(),
        )
    }

    #[tokio::test]
    async fn regex_routes_in_order_with_merge_and_fallbacks() {
        let router = HttpRouter::new()
            .route("/axum", get(|| async { "axum" }))
            .regex_route("/sheep", get(|| async { "count" }))
            .regex_route("/sheep", post(|| async { "added" }))
            .regex_route("/a/.*", get(|| async { "first" }))
            .regex_route("/a/b", get(|| async { "second" }))
            .into_router();
        assert_eq!(call(&router, "GET", "/axum").await.2, "axum");
        assert_eq!(call(&router, "GET", "/sheep").await.2, "count");
        assert_eq!(call(&router, "POST", "/sheep").await.2, "added");
        assert_eq!(call(&router, "GET", "/a/b").await.2, "first");
        let (status, headers, body) = call(&router, "DELETE", "/sheep").await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(body, "Method Not Allowed");
        assert_eq!(headers["allow"], "GET,HEAD,POST");
        let (status, headers, body) = call(&router, "GET", "/sheep/").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(body, "Not Found");
        assert_eq!(headers["content-type"], "text/plain; charset=utf-8");
        let (status, _, body) = call(&router, "POST", "/axum").await;
        assert_eq!(
            (status, body.as_str()),
            (StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed")
        );
    }

    #[tokio::test]
    async fn state_reaches_regex_routes_and_error_handlers() {
        let router = HttpRouter::<&'static str>::new()
            .regex_route(
                "/s",
                get(|tomodachi_core::State(s): tomodachi_core::State<&'static str>| async move { s }),
            )
            .http_error(
                StatusCode::NOT_FOUND,
                |tomodachi_core::State(s): tomodachi_core::State<&'static str>| async move {
                    format!("missing {s}")
                },
            )
            .with_state::<()>("state")
            .into_router();
        assert_eq!(call(&router, "GET", "/s").await.2, "state");
        let (status, _, body) = call(&router, "GET", "/x").await;
        assert_eq!(
            (status, body.as_str()),
            (StatusCode::NOT_FOUND, "missing state")
        );
    }

    #[tokio::test]
    async fn layers_see_the_matched_route_of_axum_and_regex_routes() {
        use axum::extract::MatchedPath;
        use tomodachi_core::telemetry::HttpRoute;

        // A middleware that answers with the route it sees, as a tracing layer reads it.
        let seen = |request: Request| {
            let ext = request.extensions();
            let route = ext
                .get::<HttpRoute>()
                .map(|r| format!("regex {}", r.as_str()))
                .or_else(|| {
                    ext.get::<MatchedPath>()
                        .map(|m| format!("axum {}", m.as_str()))
                })
                .unwrap_or_else(|| "none".to_owned());
            async move { Ok::<_, Infallible>(route.into_response()) }
        };
        let router = HttpRouter::new()
            .route("/items/{id}", get(|| async { "" }))
            .regex_route(r"^/resource/(?P<id>[^/]+?)/?$", get(|| async { "" }))
            .layer(axum::middleware::from_fn(
                move |request: Request, _next: axum::middleware::Next| seen(request),
            ))
            .into_router();
        assert_eq!(call(&router, "GET", "/items/7").await.2, "axum /items/{id}");
        assert_eq!(
            call(&router, "GET", "/resource/7").await.2,
            "regex /resource/(?P<id>[^/]+?)/?"
        );
        assert_eq!(call(&router, "GET", "/nowhere").await.2, "none");
    }
}
