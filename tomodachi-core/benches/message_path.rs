//! The per-message path of a message source in core, for instruction counts (callgrind):
//! core's driver (readiness, the call, errors and panics classified) around
//! `EnvelopeLayer` and a 4-extractor handler, a 1 KB JSON-enveloped order; no task and no
//! settle (the same in every source). No criterion: a plain loop of
//! `MESSAGE_PATH_ROUNDS` messages (default 100 000), so that two runs under
//! `valgrind --tool=callgrind` with different rounds give the instructions per message.
//!
//! `cargo bench -p tomodachi-core --bench message_path`
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use futures_util::FutureExt as _;
use serde::{Deserialize, Serialize};
use tomodachi_core::{
    Attributes, Data, Envelope, EnvelopeLayer, Handler, JsonEnvelope, Message, MessageUuid,
    Outcome, ServiceIdentity, State, to_python_json,
};
use tower_layer::Layer;

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

async fn handler(
    State(_state): State<u32>,
    _uuid: MessageUuid,
    _attributes: Attributes,
    Data(order): Data<Order>,
) -> Outcome {
    black_box(order);
    Outcome::Ack
}

static STATS: tomodachi_core::stats::TaskStats = tomodachi_core::stats::TaskStats::new();
static TRANSPORT: tomodachi_core::Transport =
    tomodachi_core::Transport::new("message_path", &STATS);

fn main() {
    let rounds: u32 = std::env::var("MESSAGE_PATH_ROUNDS")
        .ok()
        .and_then(|rounds| rounds.parse().ok())
        .unwrap_or(100_000);
    let sender = ServiceIdentity::new("bench", "7c0d9e2a-1c1b-4f43-9a5e-0b7c7d9e0a11");
    let data = to_python_json(&order()).expect("serializable");
    let body = bytes::Bytes::from(
        JsonEnvelope
            .seal(&sender, "orders", &data)
            .expect("sealable"),
    );
    let stack = EnvelopeLayer::new(JsonEnvelope).layer(handler.with_state(7_u32));
    let mut driver =
        tomodachi_core::driver::Driver::new(TRANSPORT, stack, tomodachi_core::Shutdown::new());
    for _ in 0..rounds {
        let ready = driver.ready().now_or_never().unwrap().unwrap().unwrap();
        let outcome = ready
            .call(Message::new(body.clone()))
            .now_or_never()
            .unwrap();
        assert!(black_box(outcome).is_ack());
    }
}
