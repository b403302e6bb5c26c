//! The HTTP server on the service builder.

use tomodachi_core::Source;
use tomodachi_http::{HttpRouter, HttpServer};

use futures_util::future::BoxFuture;
use tomodachi_core::BoxError;

use crate::Service;
use crate::service::{RunContext, Running};

impl<S> Service<S>
where
    S: Clone + Send + Sync + 'static,
{
    /// Serves `router` over HTTP (tomodachi's `@http`, `@http_error`, `@http_static`,
    /// `@websocket`), with the options of `options.http`. Its handlers get the service's
    /// state and, as axum `Extension`s, the service's publishers
    /// (`Extension<SnsPublisher>`, ...). A service has one HTTP server: put every route into
    /// one router.
    ///
    /// ```no_run
    /// use tomodachi::http::HttpRouter;
    /// use tomodachi::http::axum::routing::get;
    /// use tomodachi::Service;
    ///
    /// async fn health() -> &'static str {
    ///     r#"{"status": "healthy"}"#
    /// }
    ///
    /// # async fn run() -> tomodachi::Exit {
    /// Service::new("http-example")
    ///     .http(HttpRouter::new().route("/health", get(health)))
    ///     .run()
    ///     .await
    /// # }
    /// ```
    #[must_use]
    pub fn http(self, router: HttpRouter<S>) -> Self {
        let router: HttpRouter = router.with_state(self.state.clone());
        self.register_boxed(tomodachi_http::TRANSPORT, move |context| {
            start(router, context)
        })
    }
}

/// Starts the HTTP server: not generic, so the server is compiled once in this crate, not
/// in each program for its state type.
#[inline(never)]
fn start(router: HttpRouter, context: RunContext) -> BoxFuture<'static, Result<Running, BoxError>> {
    Box::pin(async move {
        #[cfg(feature = "otel")]
        let router = match crate::instrument::telemetry() {
            Some(telemetry) => router.layer(
                telemetry
                    .http_layer()
                    .route_from(crate::instrument::http_route),
            ),
            None => router,
        };
        let health = context.reporter("http");
        let options = &context.options.health;
        let router = if options.enabled && options.port.is_none() {
            context
                .probes
                .add_to(router, options, &context.identity.name)
        } else {
            router
        };
        // The publishers go into each request's extensions in the server (a
        // `Router::layer` would wrap every route: a boxed service and future more per
        // request).
        let mut server = HttpServer::new(context.options.http.clone())
            .request_extensions(crate::publishers::Publishers::of(&context).extensions());
        if let Some(writer) = crate::logging::access::writer() {
            server = server.access_log_writer(writer);
        }
        let work = server.start(router, context.shutdown.clone()).await?;
        Ok(context.running(health, work))
    })
}
