//! Wire compatibility of the JSON envelope with Python tomodachi's `JsonBase`.
//!
//! Python builds, Rust opens; Rust seals, Python parses; and Rust's sealed bytes equal
//! Python's for the same message uuid and timestamp. Runs the scripts in `tests/python/`
//! with the tomodachi venv (`bash scripts/test.sh` sets it up).

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Value, json};
use std::io::Read;
use std::time::{SystemTime, UNIX_EPOCH};
use tomodachi_core::{
    Envelope, EnvelopeMetadata, JsonEnvelope, Message, ServiceIdentity, to_python_json,
};
use tomodachi_tests::run_python_json;

const SERVICE_NAME: &str = "wire-t\u{eb}st-\u{1f600}";
const SERVICE_UUID: &str = "5f0e1a4c-9b7d-4c1e-8a2b-3c4d5e6f7a8b";

/// One payload to send both ways.
struct Case {
    name: &'static str,
    topic: &'static str,
    data: Value,
    encoding: &'static str,
}

fn sender() -> ServiceIdentity {
    ServiceIdentity::new(SERVICE_NAME, SERVICE_UUID)
}

fn parse(text: &str) -> Value {
    serde_json::from_str(text)
        .unwrap_or_else(|e| panic!("bad JSON in the test itself ({e}): {text}"))
}

/// Python's `json.dumps(data)`, written by Rust (keys of these cases are already sorted, so
/// `Value`'s key order is Python's insertion order).
fn python_json(data: &Value) -> String {
    to_python_json(data)
        .expect("serializable test data")
        .get()
        .to_owned()
}

fn cases() -> Vec<Case> {
    let scalars = parse(
        r#"{
            "big": 9223372036854775813,
            "empty_list": [],
            "empty_object": {},
            "f": false,
            "floats": [0.1, 1.0, -0.0, 1e100, 1.5e-05, 0.0001, 123456789.123, 1e16, 9999999999999998.0, -2.5e-300],
            "i64_min": -9223372036854775808,
            "nested": {"a": {"b": [1, [2, [3, {"c": null}]]]}},
            "null": null,
            "t": true,
            "u64_max": 18446744073709551615
        }"#,
    );
    let unicode = parse(
        r#"{
            "bmp": "h\u00e9llo w\u00f6rld \u2713 \u4e2d\u6587 \u2028\u2029 \ufeff",
            "controls": "\"q\" \\ / \b\f\n\r\t \u0000\u0001\u001f \u007f",
            "non_bmp": "\ud83d\ude00 \ud834\udd1e \ud83c\uddf8\ud83c\uddea",
            "raw_utf8": "grüße 😀 𝄞"
        }"#,
    );
    let items: Vec<Value> = (0..1500)
        .map(|i| json!({"i": i, "name": format!("item-{i}-\u{fc}\u{1f600}"), "v": f64::from(i) * 0.25}))
        .collect();
    let compressed = json!({ "items": items });
    assert!(
        python_json(&compressed).len() >= 60_000,
        "compressed case must reach 60000 characters"
    );

    // json.dumps of a string of n characters "x" is n + 2 characters long.
    let just_below = Value::String("x".repeat(60_000 - 3));
    let at_threshold = Value::String("x".repeat(60_000 - 2));

    vec![
        Case {
            name: "scalars",
            topic: "order-paid",
            data: scalars,
            encoding: "raw",
        },
        Case {
            name: "unicode",
            topic: "t\u{f6}pic.\u{1f600}",
            data: unicode,
            encoding: "raw",
        },
        Case {
            name: "string",
            topic: "",
            data: json!("plain text"),
            encoding: "raw",
        },
        Case {
            name: "null",
            topic: "nothing",
            data: Value::Null,
            encoding: "raw",
        },
        Case {
            name: "top-level big int",
            topic: "n",
            data: parse("9223372036854775813"),
            encoding: "raw",
        },
        Case {
            name: "list",
            topic: "l",
            data: json!([1, "two", 3.5, [], {}]),
            encoding: "raw",
        },
        Case {
            name: "59999 characters",
            topic: "edge",
            data: just_below,
            encoding: "raw",
        },
        Case {
            name: "60000 characters",
            topic: "edge",
            data: at_threshold,
            encoding: "base64_gzip_json",
        },
        Case {
            name: "compressed",
            topic: "bulk",
            data: compressed,
            encoding: "base64_gzip_json",
        },
    ]
}

fn python_request(case: &Case) -> Value {
    json!({
        "service": {"name": SERVICE_NAME, "uuid": SERVICE_UUID},
        "topic": case.topic,
        "data": case.data,
    })
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs_f64()
}

fn inflate(base64_text: &str) -> String {
    let compressed = BASE64.decode(base64_text).expect("data is base64");
    let mut text = String::new();
    flate2::read::ZlibDecoder::new(compressed.as_slice())
        .read_to_string(&mut text)
        .expect("data is a zlib stream of UTF-8 text");
    text
}

/// The `timestamp` of a sealed payload exactly as written (no float parsing on the way).
fn timestamp_text(payload: &str) -> &str {
    let start = payload
        .find("\"timestamp\": ")
        .expect("payload has a timestamp")
        + "\"timestamp\": ".len();
    let len = payload[start..]
        .find([',', '}'])
        .expect("timestamp is followed by more JSON");
    &payload[start..start + len]
}

/// Splits a sealed payload into (message_uuid suffix after "<service uuid>.", timestamp text).
fn uuid_and_timestamp(payload: &str) -> (String, String) {
    let wire: Value = serde_json::from_str(payload).expect("sealed JSON");
    let message_uuid = wire["metadata"]["message_uuid"]
        .as_str()
        .expect("message_uuid is a string");
    let suffix = message_uuid
        .strip_prefix(&format!("{SERVICE_UUID}."))
        .unwrap_or_else(|| {
            panic!("message_uuid {message_uuid} does not start with the service uuid")
        });
    (suffix.to_owned(), timestamp_text(payload).to_owned())
}

#[tokio::test(flavor = "multi_thread")]
async fn python_built_messages_open_in_rust() {
    let cases = cases();
    let requests: Vec<Value> = cases.iter().map(python_request).collect();
    let payloads: Vec<String> =
        run_python_json("json_base_build.py", &["--batch"], &requests).await;
    assert_eq!(payloads.len(), cases.len());
    let started = now();

    for (case, payload) in cases.iter().zip(payloads) {
        let wire: Value = serde_json::from_str(&payload).expect("Python built JSON");
        let mut message = Message::new(payload.clone());
        JsonEnvelope.open(&mut message).unwrap_or_else(|e| {
            panic!(
                "{}: Rust cannot open Python's message: {e}\n{payload}",
                case.name
            )
        });

        // The body is the data exactly as Python's json.dumps writes it, decompressed if needed.
        let body = std::str::from_utf8(message.body()).expect("data is UTF-8");
        assert_eq!(body, python_json(&case.data), "{}: data text", case.name);
        assert_eq!(parse(body), case.data, "{}: data value", case.name);

        let metadata = message
            .context::<EnvelopeMetadata>()
            .unwrap_or_else(|| panic!("{}: open() left no EnvelopeMetadata", case.name));
        assert_eq!(metadata.service_name, SERVICE_NAME, "{}", case.name);
        assert_eq!(metadata.service_uuid, SERVICE_UUID, "{}", case.name);
        assert_eq!(metadata.topic, case.topic, "{}", case.name);
        assert_eq!(metadata.data_encoding, case.encoding, "{}", case.name);
        assert_eq!(
            metadata.protocol_version, "tomodachi-json-base--1.0.0",
            "{}",
            case.name
        );
        assert_eq!(
            Some(metadata.message_uuid.as_str()),
            wire["metadata"]["message_uuid"].as_str(),
            "{}",
            case.name
        );
        assert_eq!(
            Some(metadata.timestamp),
            wire["metadata"]["timestamp"].as_f64(),
            "{}",
            case.name
        );
        assert!(
            (metadata.timestamp - started).abs() < 120.0,
            "{}: timestamp {} is not about now ({started})",
            case.name,
            metadata.timestamp
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn rust_sealed_messages_parse_in_python() {
    let cases = cases();
    let sealed: Vec<String> = cases
        .iter()
        .map(|case| {
            let data = to_python_json(&case.data).expect("serializable test data");
            JsonEnvelope
                .seal(&sender(), case.topic, &data)
                .unwrap_or_else(|e| panic!("{}: seal failed: {e}", case.name))
        })
        .collect();
    let parsed: Vec<Value> = run_python_json("json_base_parse.py", &["--batch"], &sealed).await;
    assert_eq!(parsed.len(), cases.len());

    for ((case, payload), message) in cases.iter().zip(&sealed).zip(parsed) {
        let wire: Value = serde_json::from_str(payload).expect("Rust sealed JSON");
        assert_eq!(
            message["data"], case.data,
            "{}: data as Python sees it",
            case.name
        );
        assert_eq!(
            message["service"],
            json!({"name": SERVICE_NAME, "uuid": SERVICE_UUID}),
            "{}",
            case.name
        );
        let metadata = &message["metadata"];
        assert_eq!(metadata["topic"], case.topic, "{}", case.name);
        assert_eq!(metadata["data_encoding"], case.encoding, "{}", case.name);
        assert_eq!(
            metadata["protocol_version"], "tomodachi-json-base--1.0.0",
            "{}",
            case.name
        );
        assert_eq!(
            metadata["message_uuid"], wire["metadata"]["message_uuid"],
            "{}",
            case.name
        );
        assert_eq!(
            metadata["timestamp"].as_f64(),
            wire["metadata"]["timestamp"].as_f64(),
            "{}",
            case.name
        );
        assert!(
            metadata["timestamp"].as_f64().is_some(),
            "{}: Python sees a float timestamp",
            case.name
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn rust_sealing_matches_python_byte_for_byte() {
    let cases = cases();
    let mut sealed = Vec::new();
    let mut requests = Vec::new();
    for case in &cases {
        let data = to_python_json(&case.data).expect("serializable test data");
        let payload = JsonEnvelope
            .seal(&sender(), case.topic, &data)
            .unwrap_or_else(|e| panic!("{}: seal failed: {e}", case.name));
        // Python is given Rust's uuid4 and time.time() so the whole message can be compared.
        // The timestamp goes as text (Python's float() parses it exactly).
        let (uuid4, timestamp) = uuid_and_timestamp(&payload);
        let mut request = python_request(case);
        request["uuid4"] = json!(uuid4);
        request["timestamp"] = json!(timestamp);
        requests.push(request);
        sealed.push(payload);
    }
    let built: Vec<String> = run_python_json("json_base_build.py", &["--batch"], &requests).await;

    for ((case, rust), python) in cases.iter().zip(&sealed).zip(&built) {
        if case.encoding == "raw" {
            assert_eq!(
                rust, python,
                "{}: sealed bytes differ from Python's",
                case.name
            );
            continue;
        }
        // zlib implementations may pick different (equally valid) deflate streams, so the
        // compressed data is compared after inflating; everything around it byte for byte.
        let rust_wire: Value = serde_json::from_str(rust).expect("Rust sealed JSON");
        let python_wire: Value = serde_json::from_str(python).expect("Python built JSON");
        let rust_data = rust_wire["data"]
            .as_str()
            .expect("compressed data is a string");
        let python_data = python_wire["data"]
            .as_str()
            .expect("compressed data is a string");
        assert!(
            rust_data.starts_with("eJ"),
            "{}: zlib with default compression",
            case.name
        );
        assert_eq!(
            inflate(rust_data),
            inflate(python_data),
            "{}: inflated data",
            case.name
        );
        assert_eq!(
            inflate(rust_data),
            python_json(&case.data),
            "{}: inflated data text",
            case.name
        );
        assert_eq!(
            rust.replace(rust_data, "<data>"),
            python.replace(python_data, "<data>"),
            "{}: sealed bytes around the data differ from Python's",
            case.name
        );
    }
}

/// Floats that a fast (not correctly rounded) decimal parser reads one ulp off; Python reads
/// them exactly, so Rust must too or a relayed message changes its numbers.
const TRICKY_FLOATS: [&str; 3] = [
    "1795864403.2412515",
    "0.30000000000000004",
    "2.2250738585072014e-308",
];

#[tokio::test(flavor = "multi_thread")]
async fn python_floats_and_timestamps_are_read_exactly() {
    let data = parse(&format!("[{}]", TRICKY_FLOATS.join(", ")));
    let request = json!({
        "service": {"name": SERVICE_NAME, "uuid": SERVICE_UUID},
        "topic": "floats",
        "data": data,
        "timestamp": TRICKY_FLOATS[0],
    });
    let payload: Vec<String> =
        run_python_json("json_base_build.py", &["--batch"], &[request]).await;
    let payload = payload.into_iter().next().expect("one message");
    assert_eq!(
        timestamp_text(&payload),
        TRICKY_FLOATS[0],
        "Python wrote the pinned timestamp"
    );

    let mut message = Message::new(payload.clone());
    JsonEnvelope
        .open(&mut message)
        .expect("Rust opens Python's message");
    let metadata = message
        .context::<EnvelopeMetadata>()
        .expect("open() adds EnvelopeMetadata");
    let exact: f64 = TRICKY_FLOATS[0].parse().expect("a float");
    assert_eq!(
        metadata.timestamp.to_bits(),
        exact.to_bits(),
        "EnvelopeMetadata.timestamp {} is not Python's {exact}: serde_json parses floats correctly \
         rounded only with its `float_roundtrip` feature",
        metadata.timestamp
    );

    // Data read by a Rust handler and written again keeps Python's exact numbers.
    let body = std::str::from_utf8(message.body())
        .expect("data is UTF-8")
        .to_owned();
    let read: Vec<f64> = serde_json::from_str(&body).expect("data is a list of floats");
    for (value, text) in read.iter().zip(TRICKY_FLOATS) {
        let exact: f64 = text.parse().expect("a float");
        assert_eq!(
            value.to_bits(),
            exact.to_bits(),
            "data {text} was read as {value}: serde_json parses floats correctly rounded only with \
             its `float_roundtrip` feature"
        );
    }
    let resealed = to_python_json(&read).expect("floats serialize");
    assert_eq!(resealed.get(), body, "Python's data re-written by Rust");
}
