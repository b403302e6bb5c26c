//! Property tests of envelope opening: whatever arrives, `open` returns (never panics), and
//! what `seal` wrote opens to the same data, compressed or not.
#![allow(clippy::unwrap_used, missing_docs)]

use proptest::prelude::*;
use tomodachi_core::{Envelope, EnvelopeMetadata, JsonEnvelope, Message, ServiceIdentity};

fn sender() -> ServiceIdentity {
    ServiceIdentity::new("fuzz", "0b8b8f4e-0000-4000-8000-000000000001")
}

/// JSON values as handlers send them: nested objects and arrays of strings (any Unicode),
/// integers, floats, booleans and null.
fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        (-1e9_f64..1e9).prop_map(serde_json::Value::from),
        ".{0,40}".prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(serde_json::Value::from),
            prop::collection::btree_map(".{0,12}", inner, 0..8)
                .prop_map(|map| serde_json::Value::Object(map.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..512)) {
        let mut message = Message::new(body);
        let _ = JsonEnvelope.open(&mut message);
    }

    #[test]
    fn sealed_data_opens_to_itself(data in json_value(), pad in 0_usize..3) {
        // Padding of 0, a little, or past the 60 000 characters that switch to compression.
        let data = match pad {
            0 => data,
            1 => serde_json::json!([data, "x".repeat(100)]),
            _ => serde_json::json!([data, "x".repeat(60_000)]),
        };
        let raw = tomodachi_core::to_python_json(&data).unwrap();
        let sealed = JsonEnvelope.seal(&sender(), "topic", &raw).unwrap();
        let mut message = Message::new(sealed);
        JsonEnvelope.open(&mut message).unwrap();
        prop_assert_eq!(message.body().as_ref(), raw.get().as_bytes());
        let metadata = message.context::<EnvelopeMetadata>().unwrap();
        prop_assert_eq!(&metadata.topic, "topic");
        let opened: serde_json::Value = serde_json::from_slice(message.body()).unwrap();
        prop_assert_eq!(opened, data);
    }

    #[test]
    fn damaged_envelopes_never_panic(
        data in json_value(),
        compressed in any::<bool>(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
    ) {
        let data = if compressed { serde_json::json!([data, "y".repeat(60_000)]) } else { data };
        let raw = tomodachi_core::to_python_json(&data).unwrap();
        let mut sealed = JsonEnvelope.seal(&sender(), "t", &raw).unwrap().into_bytes();
        for (index, byte) in flips {
            let at = index.index(sealed.len());
            sealed[at] = byte;
        }
        let mut message = Message::new(sealed);
        let _ = JsonEnvelope.open(&mut message);
    }
}
