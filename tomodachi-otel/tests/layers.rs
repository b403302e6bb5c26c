//! Spans and metrics of the message and HTTP layers, with in-memory exporters.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use http::{Request, Response, StatusCode};
use opentelemetry::trace::{SpanKind, Status, TraceContextExt};
use opentelemetry::{Key, KeyValue, Value};
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData};
use opentelemetry_sdk::metrics::{InMemoryMetricExporter, PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use tomodachi_core::telemetry::{
    AWS_SNS, AWS_SQS, Delivery, HttpRoute, Publish, PublishRequest, RABBITMQ, SCHEDULE,
};
use tomodachi_core::{Message, Outcome};
use tomodachi_otel::Telemetry;
use tower::{Layer, ServiceExt, service_fn};

const TRACE_ID: &str = "0af7651916cd43dd8448eb211c80319c";
const PARENT_SPAN: &str = "b7ad6b7169203331";
const TRACEPARENT: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

struct Harness {
    spans: InMemorySpanExporter,
    metrics: InMemoryMetricExporter,
    meter_provider: SdkMeterProvider,
    telemetry: Telemetry,
}

fn harness() -> Harness {
    let spans = InMemorySpanExporter::default();
    let tracer_provider = SdkTracerProvider::builder()
        .with_simple_exporter(spans.clone())
        .build();
    let metrics = InMemoryMetricExporter::default();
    let meter_provider = SdkMeterProvider::builder()
        .with_reader(PeriodicReader::builder(metrics.clone()).build())
        .build();
    let telemetry = Telemetry::new(&tracer_provider, &meter_provider);
    Harness {
        spans,
        metrics,
        meter_provider,
        telemetry,
    }
}

fn attr<'a>(span: &'a SpanData, key: &str) -> Option<&'a Value> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| &kv.value)
}

fn attr_str(span: &SpanData, key: &str) -> Option<String> {
    attr(span, key).map(|v| v.as_str().into_owned())
}

fn only_span(h: &Harness) -> SpanData {
    let mut spans = h.spans.get_finished_spans().unwrap();
    assert_eq!(spans.len(), 1, "{spans:#?}");
    spans.remove(0)
}

async fn handle(h: &Harness, message: Message, outcome: Outcome) -> Option<(String, String)> {
    let seen = Arc::new(Mutex::new(None));
    let seen2 = seen.clone();
    let handler = service_fn(move |_message: Message| {
        let seen = seen2.clone();
        async move {
            *seen.lock().unwrap() = tomodachi_otel::current_trace_ids();
            Ok::<_, Infallible>(outcome)
        }
    });
    let result = h
        .telemetry
        .message_layer()
        .layer(handler)
        .oneshot(message)
        .await
        .unwrap();
    assert_eq!(result, outcome);
    seen.lock().unwrap().clone()
}

#[tokio::test]
async fn amqp_delivery_is_a_consumer_span_child_of_its_traceparent() {
    let h = harness();
    let message = Message::new("{}").with_context(
        Delivery::new(RABBITMQ, "amq.topic", "on_order")
            .routing("order.paid")
            .message_id(Some("m-1"))
            .traceparent(Some(TRACEPARENT.into())),
    );
    let seen = handle(&h, message, Outcome::Ack).await;

    let span = only_span(&h);
    assert_eq!(span.name, "order.paid process");
    assert_eq!(span.span_kind, SpanKind::Consumer);
    assert_eq!(span.span_context.trace_id().to_string(), TRACE_ID);
    assert_eq!(span.parent_span_id.to_string(), PARENT_SPAN);
    assert!(span.parent_span_is_remote);
    assert_eq!(span.instrumentation_scope.name(), "tomodachi");
    assert_eq!(
        attr_str(&span, "messaging.system").as_deref(),
        Some("rabbitmq")
    );
    assert_eq!(
        attr_str(&span, "messaging.operation").as_deref(),
        Some("process")
    );
    assert_eq!(
        attr_str(&span, "messaging.destination.name").as_deref(),
        Some("amq.topic")
    );
    assert_eq!(
        attr_str(&span, "messaging.rabbitmq.destination.routing_key").as_deref(),
        Some("order.paid")
    );
    assert_eq!(
        attr_str(&span, "messaging.message.id").as_deref(),
        Some("m-1")
    );
    assert_eq!(
        attr_str(&span, "code.function").as_deref(),
        Some("on_order")
    );
    assert_eq!(attr_str(&span, "tomodachi.outcome").as_deref(), Some("ack"));
    assert_eq!(span.status, Status::Unset);
    // The handler ran inside the span.
    assert_eq!(
        seen,
        Some((TRACE_ID.to_owned(), span.span_context.span_id().to_string()))
    );
}

#[tokio::test]
async fn sqs_delivery_names_the_topic_and_its_publish_destination() {
    let h = harness();
    let message = Message::new("{}").with_context(
        Delivery::new(AWS_SQS, "orders-queue", "on_paid")
            .routing("order-paid")
            .message_id(Some("sns-1")),
    );
    handle(&h, message, Outcome::Ack).await;
    let span = only_span(&h);
    assert_eq!(span.name, "order-paid process");
    assert_eq!(span.span_kind, SpanKind::Consumer);
    // No traceparent: a root span.
    assert_eq!(span.parent_span_id, opentelemetry::trace::SpanId::INVALID);
    assert_eq!(
        attr_str(&span, "messaging.system").as_deref(),
        Some("aws_sqs")
    );
    assert_eq!(
        attr_str(&span, "messaging.destination.name").as_deref(),
        Some("orders-queue")
    );
    assert_eq!(
        attr_str(&span, "messaging.destination.kind").as_deref(),
        Some("queue")
    );
    assert_eq!(
        attr_str(&span, "messaging.destination_publish.name").as_deref(),
        Some("order-paid")
    );
    assert_eq!(
        attr_str(&span, "messaging.destination_publish.kind").as_deref(),
        Some("topic")
    );
    assert_eq!(
        attr_str(&span, "messaging.message.id").as_deref(),
        Some("sns-1")
    );

    // A queue-only delivery is named after the queue.
    h.spans.reset();
    let message = Message::new("{}").with_context(Delivery::new(AWS_SQS, "jobs", "on_job"));
    handle(&h, message, Outcome::Ack).await;
    let span = only_span(&h);
    assert_eq!(span.name, "jobs process");
    assert_eq!(
        attr_str(&span, "messaging.destination_publish.kind").as_deref(),
        Some("queue")
    );
}

#[tokio::test]
async fn schedule_run_is_an_internal_span_named_after_the_function() {
    let h = harness();
    let message = Message::new("").with_context(
        Delivery::new(SCHEDULE, "", "sweep")
            .attribute("function.trigger", "timer")
            .attribute("function.interval", "*/5 * * * *"),
    );
    handle(&h, message, Outcome::Ack).await;
    let span = only_span(&h);
    assert_eq!(span.name, "sweep");
    assert_eq!(span.span_kind, SpanKind::Internal);
    assert_eq!(attr_str(&span, "code.function").as_deref(), Some("sweep"));
    assert_eq!(
        attr_str(&span, "function.trigger").as_deref(),
        Some("timer")
    );
    assert_eq!(
        attr_str(&span, "function.interval").as_deref(),
        Some("*/5 * * * *")
    );
    assert_eq!(attr(&span, "messaging.system"), None);
}

#[tokio::test]
async fn retry_and_reject_are_errors_with_their_outcome() {
    let h = harness();
    for (outcome, name) in [(Outcome::retry(), "retry"), (Outcome::reject(), "reject")] {
        h.spans.reset();
        let message =
            Message::new("{}").with_context(Delivery::new(RABBITMQ, "amq.topic", "h").routing("k"));
        handle(&h, message, outcome).await;
        let span = only_span(&h);
        assert_eq!(attr_str(&span, "tomodachi.outcome").as_deref(), Some(name));
        assert!(
            matches!(span.status, Status::Error { .. }),
            "{:?}",
            span.status
        );
    }
}

#[tokio::test]
async fn message_without_delivery_passes_through_unrecorded() {
    let h = harness();
    handle(&h, Message::new("x"), Outcome::Ack).await;
    assert!(h.spans.get_finished_spans().unwrap().is_empty());
}

/// A publish request as a transport's would be: a destination and the headers it sends.
#[derive(Debug, Clone)]
struct TestPublish {
    system: &'static str,
    routing_key: &'static str,
    headers: Vec<(String, String)>,
}

impl PublishRequest for TestPublish {
    fn publish(&self) -> Publish<'_> {
        Publish::new(self.system, self.routing_key).exchange("amq.topic")
    }

    fn inject(&mut self, key: &str, value: &str) {
        self.headers.push((key.to_owned(), value.to_owned()));
    }
}

#[tokio::test]
async fn publish_inside_a_handler_is_a_producer_child_and_injects_its_context() {
    let h = harness();
    // The "broker": answers with the headers the publish carried.
    let publisher =
        h.telemetry
            .publish_layer()
            .layer(service_fn(|publish: TestPublish| async move {
                Ok::<_, Infallible>(publish.headers)
            }));
    let injected = Arc::new(Mutex::new(Vec::<(String, String)>::new()));
    let injected2 = injected.clone();
    let handler = service_fn(move |_message: Message| {
        let publisher = publisher.clone();
        let injected = injected2.clone();
        async move {
            let request = TestPublish {
                system: RABBITMQ,
                routing_key: "order.shipped",
                headers: Vec::new(),
            };
            *injected.lock().unwrap() = publisher.oneshot(request).await?;
            Ok::<_, Infallible>(Outcome::Ack)
        }
    });
    let message = Message::new("{}").with_context(
        Delivery::new(RABBITMQ, "amq.topic", "on_order")
            .routing("order.paid")
            .traceparent(Some(TRACEPARENT.into())),
    );
    h.telemetry
        .message_layer()
        .layer(handler)
        .oneshot(message)
        .await
        .unwrap();

    let spans = h.spans.get_finished_spans().unwrap();
    let producer = spans
        .iter()
        .find(|s| s.name == "order.shipped publish")
        .unwrap();
    let consumer = spans
        .iter()
        .find(|s| s.name == "order.paid process")
        .unwrap();
    assert_eq!(producer.span_kind, SpanKind::Producer);
    assert_eq!(producer.parent_span_id, consumer.span_context.span_id());
    assert_eq!(producer.span_context.trace_id().to_string(), TRACE_ID);
    assert_eq!(producer.status, Status::Unset);
    assert_eq!(
        attr_str(producer, "messaging.rabbitmq.destination.routing_key").as_deref(),
        Some("order.shipped")
    );
    assert_eq!(
        attr_str(producer, "messaging.destination.name").as_deref(),
        Some("amq.topic")
    );
    assert_eq!(
        attr_str(producer, "messaging.operation").as_deref(),
        Some("publish")
    );
    let injected = injected.lock().unwrap().clone();
    // No empty `tracestate` (SNS refuses empty attribute values).
    assert!(injected.iter().all(|(_, v)| !v.is_empty()), "{injected:?}");
    assert_eq!(injected.len(), 1, "{injected:?}");
    let traceparent = &injected.iter().find(|(k, _)| k == "traceparent").unwrap().1;
    assert_eq!(
        traceparent,
        &format!("00-{TRACE_ID}-{}-01", producer.span_context.span_id())
    );
}

#[tokio::test]
async fn failed_publish_ends_its_producer_span_with_the_error() {
    let h = harness();
    let publisher = h
        .telemetry
        .publish_layer()
        .layer(service_fn(|_publish: TestPublish| async {
            Err::<(), _>("Topic does not exist")
        }));
    let request = TestPublish {
        system: AWS_SNS,
        routing_key: "order-paid",
        headers: Vec::new(),
    };
    let error = publisher.oneshot(request).await.unwrap_err();
    assert_eq!(error, "Topic does not exist");

    let spans = h.spans.get_finished_spans().unwrap();
    assert_eq!(spans.len(), 1);
    let producer = &spans[0];
    assert_eq!(producer.name, "order-paid publish");
    assert_eq!(producer.span_kind, SpanKind::Producer);
    assert_eq!(producer.status, Status::error("Topic does not exist"));
    assert_eq!(
        attr_str(producer, "messaging.destination.name").as_deref(),
        Some("order-paid")
    );
    assert_eq!(
        attr_str(producer, "messaging.system").as_deref(),
        Some("aws_sns")
    );
}

async fn http_call(
    h: &Harness,
    layer: tomodachi_otel::HttpTraceLayer,
    request: Request<()>,
    status: StatusCode,
) {
    let _ = h;
    let service = service_fn(move |_request: Request<()>| async move {
        let mut response = Response::new(());
        *response.status_mut() = status;
        Ok::<_, Infallible>(response)
    });
    let response = layer.layer(service).oneshot(request).await.unwrap();
    assert_eq!(response.status(), status);
}

#[tokio::test]
async fn http_request_is_a_server_span_named_after_its_route() {
    let h = harness();
    let mut request = Request::get("http://ignored/items/42?full=1")
        .header("host", "shop.example:8080")
        .header("user-agent", "curl/8")
        .header("traceparent", TRACEPARENT)
        .body(())
        .unwrap();
    request
        .extensions_mut()
        .insert(HttpRoute(Arc::from("/items/{id}")));
    http_call(&h, h.telemetry.http_layer(), request, StatusCode::OK).await;

    let span = only_span(&h);
    assert_eq!(span.name, "GET /items/{id}");
    assert_eq!(span.span_kind, SpanKind::Server);
    assert_eq!(span.span_context.trace_id().to_string(), TRACE_ID);
    assert_eq!(span.parent_span_id.to_string(), PARENT_SPAN);
    assert_eq!(
        attr_str(&span, "http.request.method").as_deref(),
        Some("GET")
    );
    assert_eq!(
        attr_str(&span, "http.route").as_deref(),
        Some("/items/{id}")
    );
    assert_eq!(attr_str(&span, "url.path").as_deref(), Some("/items/42"));
    assert_eq!(attr_str(&span, "url.query").as_deref(), Some("full=1"));
    assert_eq!(
        attr_str(&span, "server.address").as_deref(),
        Some("shop.example")
    );
    assert_eq!(attr(&span, "server.port"), Some(&Value::I64(8080)));
    assert_eq!(
        attr_str(&span, "user_agent.original").as_deref(),
        Some("curl/8")
    );
    assert_eq!(
        attr_str(&span, "network.protocol.version").as_deref(),
        Some("1.1")
    );
    assert_eq!(
        attr(&span, "http.response.status_code"),
        Some(&Value::I64(200))
    );
    assert_eq!(span.status, Status::Unset);
}

#[tokio::test]
async fn http_unrouted_request_is_named_after_the_method_and_5xx_is_an_error() {
    let h = harness();
    let request = Request::post("/nowhere").body(()).unwrap();
    http_call(
        &h,
        h.telemetry.http_layer(),
        request,
        StatusCode::BAD_GATEWAY,
    )
    .await;
    let span = only_span(&h);
    assert_eq!(span.name, "POST");
    assert!(matches!(span.status, Status::Error { .. }));
    assert_eq!(attr(&span, "http.route"), None);

    // 4xx (other than 499) is not an error of the server.
    h.spans.reset();
    let request = Request::get("/x").body(()).unwrap();
    http_call(&h, h.telemetry.http_layer(), request, StatusCode::NOT_FOUND).await;
    assert_eq!(only_span(&h).status, Status::Unset);
}

#[tokio::test]
async fn http_route_can_come_from_the_response_or_a_custom_reader() {
    let h = harness();
    let service = service_fn(|_request: Request<()>| async {
        let mut response = Response::new(());
        response
            .extensions_mut()
            .insert(HttpRoute(Arc::from("/late/{x}")));
        Ok::<_, Infallible>(response)
    });
    h.telemetry
        .http_layer()
        .layer(service)
        .oneshot(Request::get("/late/1").body(()).unwrap())
        .await
        .unwrap();
    let span = only_span(&h);
    assert_eq!(span.name, "GET /late/{x}");
    assert_eq!(attr_str(&span, "http.route").as_deref(), Some("/late/{x}"));

    #[derive(Clone)]
    struct Matched(&'static str);
    h.spans.reset();
    let layer = h
        .telemetry
        .http_layer()
        .route_from(|ext| ext.get::<Matched>().map(|m| m.0));
    let mut request = Request::delete("/a/1").body(()).unwrap();
    request.extensions_mut().insert(Matched("/a/{id}"));
    http_call(&h, layer, request, StatusCode::NO_CONTENT).await;
    assert_eq!(only_span(&h).name, "DELETE /a/{id}");
}

#[tokio::test]
async fn excluded_urls_produce_no_span() {
    let mut h = harness();
    h.telemetry = h
        .telemetry
        .clone()
        .with_excluded_urls(["^/health", "metrics"])
        .unwrap();
    for path in ["/health", "/healthz", "/internal/metrics"] {
        let request = Request::get(path).body(()).unwrap();
        http_call(&h, h.telemetry.http_layer(), request, StatusCode::OK).await;
    }
    assert!(h.spans.get_finished_spans().unwrap().is_empty());
    let request = Request::get("/api/health").body(()).unwrap();
    http_call(&h, h.telemetry.http_layer(), request, StatusCode::OK).await;
    assert_eq!(only_span(&h).name, "GET");
}

fn find_metric<'a>(
    metrics: &'a [opentelemetry_sdk::metrics::data::ResourceMetrics],
    name: &str,
) -> Option<&'a opentelemetry_sdk::metrics::data::Metric> {
    metrics
        .iter()
        .flat_map(|rm| rm.scope_metrics())
        .flat_map(|sm| sm.metrics())
        .filter(|m| m.name() == name)
        .last()
}

fn has<'a>(mut attributes: impl Iterator<Item = &'a KeyValue>, key: &str, value: Value) -> bool {
    attributes.any(|kv| kv.key == Key::new(key.to_owned()) && kv.value == value)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_use_tomodachi_names_units_and_outcome_counters() {
    let h = harness();
    for outcome in [Outcome::Ack, Outcome::Ack, Outcome::retry()] {
        let message = Message::new("{}")
            .with_context(Delivery::new(RABBITMQ, "amq.topic", "on_order").routing("k"));
        handle(&h, message, outcome).await;
    }
    let message = Message::new("").with_context(Delivery::new(SCHEDULE, "", "sweep"));
    handle(&h, message, Outcome::Ack).await;
    let request = Request::get("/x").body(()).unwrap();
    http_call(&h, h.telemetry.http_layer(), request, StatusCode::OK).await;

    let provider = h.meter_provider.clone();
    tokio::task::spawn_blocking(move || provider.force_flush().unwrap())
        .await
        .unwrap();
    let metrics = h.metrics.get_finished_metrics().unwrap();

    let duration = find_metric(&metrics, "messaging.rabbitmq.duration").unwrap();
    assert_eq!(duration.unit(), "s");
    let AggregatedMetrics::F64(MetricData::Histogram(histogram)) = duration.data() else {
        panic!("not a histogram: {:?}", duration.data());
    };
    let counts: u64 = histogram.data_points().map(|p| p.count()).sum();
    assert_eq!(counts, 3);
    assert!(histogram.data_points().any(|p| has(
        p.attributes(),
        "function.success",
        Value::Bool(false)
    )));

    let handled = find_metric(&metrics, "messaging.rabbitmq.handled").unwrap();
    let AggregatedMetrics::U64(MetricData::Sum(sum)) = handled.data() else {
        panic!("not a counter: {:?}", handled.data());
    };
    let by_outcome = |outcome: &'static str| {
        sum.data_points()
            .filter(|p| has(p.attributes(), "tomodachi.outcome", Value::from(outcome)))
            .map(|p| p.value())
            .sum::<u64>()
    };
    assert_eq!(by_outcome("ack"), 2);
    assert_eq!(by_outcome("retry"), 1);
    assert_eq!(by_outcome("reject"), 0);

    let active = find_metric(&metrics, "messaging.rabbitmq.active_tasks").unwrap();
    assert_eq!(active.unit(), "{message}");
    let AggregatedMetrics::I64(MetricData::Sum(active)) = active.data() else {
        panic!("not an up-down counter");
    };
    assert!(active.data_points().all(|p| p.value() == 0));

    assert_eq!(
        find_metric(&metrics, "function.duration").unwrap().unit(),
        "s"
    );
    assert_eq!(
        find_metric(&metrics, "function.active_tasks")
            .unwrap()
            .unit(),
        "{task}"
    );
    assert_eq!(
        find_metric(&metrics, "http.server.duration")
            .unwrap()
            .unit(),
        "s"
    );
    assert_eq!(
        find_metric(&metrics, "http.server.active_requests")
            .unwrap()
            .unit(),
        "{request}"
    );
}

#[test]
fn current_trace_ids_is_none_outside_a_span() {
    assert_eq!(tomodachi_otel::current_trace_ids(), None);
    let cx = opentelemetry::Context::new();
    assert!(!cx.span().span_context().is_valid());
}

/// A series' duration histogram (one instrument bound to its attributes per series) under
/// delta temporality: each collection holds only that interval's requests, the series
/// comes back after an idle interval, and its attributes are those of an unbound record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_duration_series_under_delta_temporality() {
    use opentelemetry_sdk::metrics::{InMemoryMetricExporterBuilder, Temporality};
    let metrics = InMemoryMetricExporterBuilder::new()
        .with_temporality(Temporality::Delta)
        .build();
    let meter_provider = SdkMeterProvider::builder()
        .with_reader(PeriodicReader::builder(metrics.clone()).build())
        .build();
    let tracer_provider = SdkTracerProvider::builder().build();
    let telemetry = Telemetry::new(&tracer_provider, &meter_provider);
    let h = Harness {
        spans: InMemorySpanExporter::default(),
        metrics: metrics.clone(),
        meter_provider,
        telemetry,
    };
    let call = |path: &'static str| {
        let mut request = Request::get(path).body(()).unwrap();
        request
            .extensions_mut()
            .insert(HttpRoute(Arc::from("/items/{id}")));
        request
    };
    let flush = || {
        let provider = h.meter_provider.clone();
        let metrics = metrics.clone();
        async move {
            tokio::task::spawn_blocking(move || provider.force_flush().unwrap())
                .await
                .unwrap();
            let finished = metrics.get_finished_metrics().unwrap();
            metrics.reset();
            let Some(duration) = find_metric(&finished, "http.server.duration") else {
                return Vec::new();
            };
            let AggregatedMetrics::F64(MetricData::Histogram(histogram)) = duration.data() else {
                panic!("not a histogram: {:?}", duration.data());
            };
            histogram
                .data_points()
                .map(|p| {
                    let mut attributes: Vec<String> = p
                        .attributes()
                        .map(|kv| format!("{}={}", kv.key, kv.value))
                        .collect();
                    attributes.sort();
                    (attributes.join(","), p.count())
                })
                .collect::<Vec<_>>()
        }
    };
    let series = "http.request.method=GET,http.response.status_code=200,http.route=/items/{id},\
                  network.protocol.version=1.1,url.scheme=http";
    for path in ["/items/1", "/items/2"] {
        http_call(&h, h.telemetry.http_layer(), call(path), StatusCode::OK).await;
    }
    assert_eq!(flush().await, [(series.to_owned(), 2)]);
    assert_eq!(flush().await, [], "an idle interval exports no point");
    http_call(
        &h,
        h.telemetry.http_layer(),
        call("/items/3"),
        StatusCode::OK,
    )
    .await;
    assert_eq!(flush().await, [(series.to_owned(), 1)]);
}
