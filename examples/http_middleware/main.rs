//! tomodachi's HTTP middleware patterns as tower layers:
//!
//! - `BasicAuthLayer`, a plain `tower::Layer`: answers 401 by itself (tomodachi's
//!   middleware that does not call `func`) or puts the `User` into the request's
//!   extensions for the handler (tomodachi's `await func(user=...)`);
//! - `require_json`, a decorator-style early return (`@tomodachi.decorator` returning a
//!   response) written with axum's `middleware::from_fn`.
//!
//! ```text
//! cargo run -p tomodachi-examples --example http_middleware
//! curl -i localhost:9700/whoami                        # 401, WWW-Authenticate: Basic
//! curl -i -u sheep:wrong localhost:9700/whoami         # 401
//! curl -i -u sheep:baa localhost:9700/whoami           # 200 hello sheep
//! curl -i -u sheep:baa -d 'grass' localhost:9700/orders                  # 415 send JSON
//! curl -i -u sheep:baa -H 'content-type: application/json' \
//!     -d '{"item": "grass"}' localhost:9700/orders                       # 200 sheep ordered ...
//! ```
//!
//! The access log shows the login as `auth_user`.

use std::collections::HashMap;
use std::future::{Ready, ready};
use std::sync::Arc;
use std::task::{Context, Poll};

use base64::Engine as _;
use tomodachi::http::axum::extract::Request;
use tomodachi::http::axum::http::{StatusCode, header};
use tomodachi::http::axum::middleware::{self, Next};
use tomodachi::http::axum::response::{IntoResponse, Response};
use tomodachi::prelude::*;
use tower::Service;

/// Who the request authenticated as: what the auth layer passes to the handlers.
#[derive(Debug, Clone)]
struct User(String);

/// Checks `Authorization: Basic ...` against a user table.
#[derive(Debug, Clone)]
struct BasicAuthLayer {
    users: Arc<HashMap<String, String>>,
}

impl BasicAuthLayer {
    fn new<'a>(users: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let users = users
            .into_iter()
            .map(|(user, password)| (user.to_owned(), password.to_owned()))
            .collect();
        Self {
            users: Arc::new(users),
        }
    }
}

impl<S> tower::Layer<S> for BasicAuthLayer {
    type Service = BasicAuth<S>;

    fn layer(&self, inner: S) -> BasicAuth<S> {
        BasicAuth {
            inner,
            users: self.users.clone(),
        }
    }
}

/// The service of [`BasicAuthLayer`].
#[derive(Debug, Clone)]
struct BasicAuth<S> {
    inner: S,
    users: Arc<HashMap<String, String>>,
}

impl<S> BasicAuth<S> {
    /// The user of a valid `Authorization` header.
    fn user(&self, req: &Request) -> Option<User> {
        let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
        let (scheme, encoded) = value.split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("basic") {
            return None;
        }
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .ok()?;
        let (user, password) = std::str::from_utf8(&decoded).ok()?.split_once(':')?;
        (self.users.get(user)? == password).then(|| User(user.to_owned()))
    }
}

impl<S> Service<Request> for BasicAuth<S>
where
    S: Service<Request, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = futures_util::future::Either<Ready<Result<Response, S::Error>>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request) -> Self::Future {
        use futures_util::future::Either;
        match self.user(&req) {
            Some(user) => {
                // tomodachi's `await func(user=user)`: the handler extracts it.
                req.extensions_mut().insert(user);
                Either::Right(self.inner.call(req))
            }
            // Not calling the inner service is tomodachi's short-circuit.
            None => Either::Left(ready(Ok((
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, r#"Basic realm="tomodachi""#)],
                "unauthorized",
            )
                .into_response()))),
        }
    }
}

/// Decorator style: answers 415 itself unless the body is JSON, else runs the handler.
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

/// `GET /whoami`.
async fn whoami(Extension(User(user)): Extension<User>) -> String {
    format!("hello {user}")
}

/// `POST /orders` (JSON only).
async fn create_order(Extension(User(user)): Extension<User>, body: String) -> String {
    format!("{user} ordered {body}")
}

#[tokio::main]
async fn main() -> Exit {
    let router = HttpRouter::new()
        .route("/whoami", get(whoami))
        .route(
            "/orders",
            post(create_order).layer(middleware::from_fn(require_json)),
        )
        // On matched routes only: unknown paths stay 404 without asking for a password.
        .route_layer(BasicAuthLayer::new([("sheep", "baa")]));
    tomodachi::Service::new("middleware-example")
        .http(router)
        .run()
        .await
}
