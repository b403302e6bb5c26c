//! Benchmarks of the core message path: envelope open/seal and handler dispatch.
//!
//! `cargo bench -p tomodachi-core --bench core`

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use serde::{Deserialize, Serialize};
use tomodachi_core::{
    Attributes, Data, Envelope, EnvelopeLayer, Handler, JsonEnvelope, Message, MessageUuid,
    Outcome, ServiceIdentity, State, to_python_json,
};
use tower_layer::Layer;
use tower_service::Service;

#[derive(Debug, Serialize, Deserialize)]
struct Order {
    id: u64,
    customer: String,
    items: Vec<Item>,
    note: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct Item {
    sku: String,
    quantity: u32,
    price: f64,
}

/// An order whose JSON is about 1 KB.
fn order() -> Order {
    Order {
        id: 1_234_567,
        customer: "customer-0042".into(),
        items: (0..12)
            .map(|i| Item {
                sku: format!("sku-{i:04}-abcdefgh"),
                quantity: i,
                price: 9.95 + f64::from(i),
            })
            .collect(),
        note: "ö".repeat(40),
    }
}

fn envelope(c: &mut Criterion) {
    let sender = ServiceIdentity::new("bench", "7c0d9e2a-1c1b-4f43-9a5e-0b7c7d9e0a11");
    let data = to_python_json(&order()).expect("serializable");
    let sealed = JsonEnvelope
        .seal(&sender, "orders", &data)
        .expect("sealable");
    let body = bytes::Bytes::from(sealed);
    eprintln!(
        "payload: data {} bytes, envelope {} bytes",
        data.get().len(),
        body.len()
    );

    c.bench_function("json_envelope_open_deserialize_1kb", |b| {
        b.iter(|| {
            let mut message = Message::new(body.clone());
            JsonEnvelope.open(&mut message).expect("opens");
            let order: Order = serde_json::from_slice(message.body()).expect("deserializes");
            black_box(order)
        });
    });

    let raw_data = bytes::Bytes::copy_from_slice(data.get().as_bytes());
    c.bench_function("baseline_serde_json_deserialize_1kb", |b| {
        b.iter(|| {
            let order: Order = serde_json::from_slice(black_box(&raw_data)).expect("deserializes");
            black_box(order)
        });
    });

    c.bench_function("json_envelope_open_only", |b| {
        b.iter(|| {
            let mut message = Message::new(body.clone());
            JsonEnvelope.open(&mut message).expect("opens");
            black_box(message)
        });
    });

    c.bench_function("json_envelope_seal_1kb", |b| {
        let order = order();
        b.iter(|| {
            let data = to_python_json(black_box(&order)).expect("serializable");
            black_box(
                JsonEnvelope
                    .seal(&sender, "orders", &data)
                    .expect("sealable"),
            )
        });
    });
}

async fn handler(
    State(_state): State<u32>,
    _uuid: MessageUuid,
    _attributes: Attributes,
    Data(order): Data<Order>,
) -> Outcome {
    black_box(order);
    Outcome::Ack
}

async fn three_extractors(
    State(_state): State<u32>,
    _attributes: Attributes,
    Data(n): Data<u64>,
) -> Outcome {
    black_box(n);
    Outcome::Ack
}

fn dispatch(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let mut service = three_extractors.with_state(7_u32);
    c.bench_function("dispatch_3_extractors", |b| {
        b.iter(|| {
            let future = service.call(Message::new(bytes::Bytes::from_static(b"42")));
            black_box(runtime.block_on(future).expect("infallible"))
        });
    });

    let sender = ServiceIdentity::new("bench", "7c0d9e2a-1c1b-4f43-9a5e-0b7c7d9e0a11");
    let data = to_python_json(&order()).expect("serializable");
    let body = bytes::Bytes::from(
        JsonEnvelope
            .seal(&sender, "orders", &data)
            .expect("sealable"),
    );
    let mut stack = EnvelopeLayer::new(JsonEnvelope).layer(handler.with_state(7_u32));
    c.bench_function("envelope_layer_and_4_extractor_handler_1kb", |b| {
        b.iter(|| {
            let future = stack.call(Message::new(body.clone()));
            black_box(runtime.block_on(future).expect("infallible"))
        });
    });
}

criterion_group!(benches, envelope, dispatch);
criterion_main!(benches);
