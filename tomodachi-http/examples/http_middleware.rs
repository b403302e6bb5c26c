//! tomodachi's HTTP middleware patterns as tower layers: a Basic-auth layer that answers
//! 401 by itself or tells the handler who the user is, and a decorator-style early return.
//!
//! `cargo run -p tomodachi-http --example http_middleware`, then
//! `curl -i -u sheep:baa localhost:9700/whoami` (and without `-u`).

use std::collections::HashMap;
use std::future::{Ready, ready};
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::extract::{Extension, Request};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use futures_util::future::Either;
use http::{StatusCode, header};
use tomodachi_core::Shutdown;
use tomodachi_http::{HttpOptions, HttpRouter, HttpServer};
use tower::{Layer, Service};

/// Who the request authenticated as (what the handler extracts).
#[derive(Debug, Clone)]
struct User(String);

/// Checks `Authorization: Basic ...` against a user table; 401 without a known user.
#[derive(Debug, Clone)]
struct BasicAuthLayer {
    users: Arc<HashMap<String, String>>,
}

impl<S> Layer<S> for BasicAuthLayer {
    type Service = BasicAuth<S>;

    fn layer(&self, inner: S) -> BasicAuth<S> {
        BasicAuth {
            inner,
            users: self.users.clone(),
        }
    }
}

#[derive(Debug, Clone)]
struct BasicAuth<S> {
    inner: S,
    users: Arc<HashMap<String, String>>,
}

impl<S> BasicAuth<S> {
    fn user(&self, req: &Request) -> Option<String> {
        let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
        let encoded = value.strip_prefix("Basic ")?;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .ok()?;
        let (user, password) = std::str::from_utf8(&decoded).ok()?.split_once(':')?;
        (self.users.get(user)? == password).then(|| user.to_owned())
    }
}

impl<S> Service<Request> for BasicAuth<S>
where
    S: Service<Request, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Either<Ready<Result<Response, S::Error>>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request) -> Self::Future {
        match self.user(&req) {
            Some(user) => {
                req.extensions_mut().insert(User(user));
                Either::Right(self.inner.call(req))
            }
            None => Either::Left(ready(Ok((
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, r#"Basic realm="tomodachi""#)],
                "unauthorized",
            )
                .into_response()))),
        }
    }
}

/// Decorator-style: answers by itself unless the body is JSON.
async fn require_json(req: Request, next: Next) -> Response {
    let is_json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes().starts_with(b"application/json"));
    if !is_json {
        return (StatusCode::UNSUPPORTED_MEDIA_TYPE, "send JSON").into_response();
    }
    next.run(req).await
}

async fn whoami(Extension(User(user)): Extension<User>) -> String {
    format!("hello {user}")
}

async fn create_order(Extension(User(user)): Extension<User>, body: String) -> String {
    format!("{user} ordered {body}")
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt().with_target(true).init();
    let users = HashMap::from([("sheep".to_owned(), "baa".to_owned())]);
    let router = HttpRouter::new()
        .regex_route(
            "/orders",
            post(create_order).layer(middleware::from_fn(require_json)),
        )
        .route("/whoami", get(whoami))
        .route_layer(BasicAuthLayer {
            users: Arc::new(users),
        });
    let shutdown = Shutdown::new();
    shutdown.listen_for_signals()?;
    HttpServer::new(HttpOptions::default())
        .serve(router, shutdown)
        .await?;
    Ok(())
}
