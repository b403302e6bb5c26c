//! Handlers as services: extraction, outcomes, failures and classifiers.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde::Deserialize;
use tomodachi_core::{
    AttributeValue, Attributes, Data, DropOnFailure, Extension, Handler, HandlerFailure,
    HandlerWithoutStateExt, Message, MessageUuid, Outcome, Raw, RetryOnFailure, State, classify_fn,
    driver,
};
use tower::ServiceExt;

#[derive(Debug, Deserialize)]
struct Order {
    id: u64,
}

#[derive(Debug, thiserror::Error)]
#[error("database unavailable")]
struct DbDown;

fn run<H, T>(handler: H, message: Message) -> Outcome
where
    H: Handler<T, ()>,
    T: 'static,
{
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap()
        .block_on(driver::oneshot(
            handler.into_service(),
            message,
            RetryOnFailure,
        ))
        .unwrap()
}

#[test]
fn return_types_map_to_outcomes() {
    assert_eq!(run(|| async {}, Message::new("")), Outcome::Ack);
    assert_eq!(
        run(|| async { Outcome::Reject }, Message::new("")),
        Outcome::Reject
    );
    assert_eq!(
        run(|| async { Ok::<_, DbDown>(()) }, Message::new("")),
        Outcome::Ack
    );
    assert_eq!(
        run(
            || async { Ok::<_, DbDown>(Outcome::retry_after(Duration::from_secs(3))) },
            Message::new("")
        ),
        Outcome::retry_after(Duration::from_secs(3))
    );
}

#[test]
fn errors_and_panics_are_retried_by_default() {
    assert_eq!(
        run(|| async { Err::<(), _>(DbDown) }, Message::new("")),
        Outcome::retry()
    );
    assert_eq!(
        run(|| async { panic!("handler bug") as () }, Message::new("")),
        Outcome::retry(),
        "a panicking handler is a retry, not a crash"
    );
    struct Explodes;
    impl<S> tomodachi_core::FromMessageParts<S> for Explodes {
        type Rejection = std::convert::Infallible;
        fn from_message_parts(_: &tomodachi_core::Parts, _: &S) -> Result<Self, Self::Rejection> {
            panic!("extractor bug")
        }
    }
    assert_eq!(
        run(|_: Explodes| async {}, Message::new("")),
        Outcome::retry(),
        "a panicking extractor is a retry too"
    );
}

#[tokio::test]
async fn classifiers_replace_the_default() {
    let failing = || async { Err::<(), _>(DbDown) };
    let dropped = driver::oneshot(failing.into_service(), Message::new(""), DropOnFailure)
        .await
        .map_err(|error| error.to_string());
    assert_eq!(dropped, Ok(Outcome::Ack));

    let by_kind = || {
        classify_fn(|failure: &HandlerFailure<'_>| match failure {
            HandlerFailure::Panic(_) => Outcome::Reject,
            HandlerFailure::Error(error) if error.to_string().contains("database") => {
                Outcome::retry_after(Duration::from_secs(9))
            }
            HandlerFailure::Error(_) => Outcome::retry(),
        })
    };
    let panicking = || async { panic!("bug") as () };
    assert_eq!(
        driver::oneshot(panicking.into_service(), Message::new(""), by_kind())
            .await
            .map_err(|error| error.to_string()),
        Ok(Outcome::Reject)
    );
    assert_eq!(
        driver::oneshot(failing.into_service(), Message::new(""), by_kind())
            .await
            .map_err(|error| error.to_string()),
        Ok(Outcome::retry_after(Duration::from_secs(9)))
    );
    assert_eq!(
        driver::oneshot(failing.into_service(), Message::new(""), RetryOnFailure)
            .await
            .map_err(|error| error.to_string()),
        Ok(Outcome::retry())
    );
}

#[test]
fn bad_data_is_rejected_without_calling_the_handler() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    let handler = move |Data(order): Data<Order>| {
        counted.fetch_add(1, Ordering::SeqCst);
        async move { assert_eq!(order.id, 1) }
    };
    assert_eq!(
        run(handler.clone(), Message::new(r#"{"id": "not a number"}"#)),
        Outcome::Reject
    );
    assert_eq!(
        run(handler.clone(), Message::new("not json")),
        Outcome::Reject
    );
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    assert_eq!(run(handler, Message::new(r#"{"id": 1}"#)), Outcome::Ack);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[test]
fn missing_context_and_extensions_are_retried() {
    #[derive(Clone)]
    struct User;
    assert_eq!(
        run(|_uuid: MessageUuid| async {}, Message::new("")),
        Outcome::retry()
    );
    assert_eq!(
        run(|_user: Extension<User>| async {}, Message::new("")),
        Outcome::retry()
    );
    let mut message = Message::new("");
    message.extensions_mut().insert(User);
    assert_eq!(
        run(|_user: Extension<User>| async {}, message),
        Outcome::Ack
    );
}

#[tokio::test]
async fn context_extractors_state_and_body_together() {
    #[derive(Clone)]
    struct AppState {
        seen: Arc<AtomicUsize>,
    }
    async fn handler(
        State(state): State<AppState>,
        attributes: Attributes,
        missing: Option<MessageUuid>,
        Raw(body): Raw,
    ) -> Outcome {
        assert!(missing.is_none());
        assert_eq!(attributes.get("kind"), Some(&AttributeValue::from("order")));
        assert_eq!(&body[..], b"payload");
        state.seen.fetch_add(1, Ordering::SeqCst);
        Outcome::Ack
    }
    let state = AppState {
        seen: Arc::default(),
    };
    let mut attributes = Attributes::default();
    attributes.0.insert("kind".into(), "order".into());
    let message = Message::new("payload").with_context(attributes);
    let outcome = handler.with_state(state.clone()).oneshot(message).await;
    assert_eq!(outcome.unwrap(), Outcome::Ack);
    assert_eq!(state.seen.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn sixteen_extractors() {
    #[allow(clippy::too_many_arguments)]
    async fn wide(
        _: Attributes,
        _: Attributes,
        _: Attributes,
        _: Attributes,
        _: Attributes,
        _: Attributes,
        _: Attributes,
        _: Attributes,
        _: Attributes,
        _: Attributes,
        _: Attributes,
        _: Attributes,
        _: Attributes,
        _: Attributes,
        _: Attributes,
        Data(n): Data<u32>,
    ) -> Outcome {
        if n == 16 {
            Outcome::Ack
        } else {
            Outcome::Reject
        }
    }
    assert_eq!(
        wide.into_service()
            .oneshot(Message::new("16"))
            .await
            .unwrap(),
        Outcome::Ack
    );
}

#[tokio::test]
async fn handler_names_come_from_the_function() {
    async fn on_order_paid() {}
    assert_eq!(on_order_paid.into_service().name(), "on_order_paid");
    assert_eq!(
        on_order_paid.into_service().named("custom").name(),
        "custom"
    );
}

#[tokio::test]
async fn malformed_envelopes_never_reach_the_handler() {
    use tomodachi_core::{EnvelopeLayer, JsonEnvelope};
    use tower::Layer;

    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    let handler = move |Data(order): Data<Order>| {
        counted.fetch_add(1, Ordering::SeqCst);
        async move { assert_eq!(order.id, 5) }
    };
    let service = EnvelopeLayer::new(JsonEnvelope).layer(handler.into_service());
    for body in ["{not json", r#"{"data": {"id": 5}}"#, r#"{"id": 5}"#] {
        assert_eq!(
            service.clone().oneshot(Message::new(body)).await.unwrap(),
            Outcome::Reject,
            "{body}"
        );
    }
    assert_eq!(calls.load(Ordering::SeqCst), 0);

    let lenient = EnvelopeLayer::new(JsonEnvelope)
        .on_error(Outcome::Ack)
        .layer(service.clone().into_inner());
    assert_eq!(
        lenient.oneshot(Message::new("{not json")).await.unwrap(),
        Outcome::Ack
    );

    let valid = r#"{"service": {"name": "s", "uuid": "u"}, "metadata": {"message_uuid": "u.1", "protocol_version": "tomodachi-json-base--1.0.0", "timestamp": 1.5, "topic": "t", "data_encoding": "raw"}, "data": {"id": 5}}"#;
    assert_eq!(
        service.oneshot(Message::new(valid)).await.unwrap(),
        Outcome::Ack
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}
