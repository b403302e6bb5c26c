//! The example against the real broker (RabbitMQ at 127.0.0.1:5672): a `Person` gets its
//! `Greeting`; a person without a name is rejected by the validator and gets none.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::mpsc;
use tomodachi::amqp::{AmqpOptions, AmqpPublisher, Binding, Consumer};
use tomodachi::core::Source;
use tomodachi::{Handler, Proto, ProtobufEnvelope, ServiceIdentity, Shutdown, State};

#[allow(unreachable_pub)]
mod people {
    include!(concat!(env!("OUT_DIR"), "/people.rs"));
}

use people::{Greeting, Person};

const TIMEOUT: Duration = Duration::from_secs(30);

async fn on_greeting(
    State(seen): State<mpsc::UnboundedSender<Greeting>>,
    Proto(greeting): Proto<Greeting>,
) {
    let _ = seen.send(greeting);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_is_greeted_and_a_nameless_one_is_rejected() {
    assert!(
        std::net::TcpStream::connect("127.0.0.1:5672").is_ok(),
        "RabbitMQ is not reachable at 127.0.0.1:5672: `source scripts/test-env.sh` starts it"
    );
    // Routing keys and queues of this run alone.
    let prefix = format!("test-{}.", uuid_like());
    let options = AmqpOptions {
        routing_key_prefix: prefix.clone(),
        queue_name_prefix: prefix.clone(),
        queue_ttl: 60,
        ..AmqpOptions::default()
    };

    let (seen, mut greetings) = mpsc::unbounded_channel();
    let shutdown = Shutdown::new();
    let greeted = Consumer::new(
        options.clone(),
        Binding::routing_key("people.greeted").envelope(ProtobufEnvelope::new()),
        ServiceIdentity::with_random_uuid("test"),
    )
    .start(on_greeting.with_state(seen), shutdown.clone())
    .await
    .unwrap();
    let greeted = tokio::spawn(greeted);

    let mut service = tokio::process::Command::new(env!("CARGO_BIN_EXE_protobuf_service"))
        .args(["--logger", "json"])
        .env("TOMODACHI_AMQP_ROUTING_KEY_PREFIX", &prefix)
        .env("TOMODACHI_AMQP_QUEUE_NAME_PREFIX", &prefix)
        .env("TOMODACHI_AMQP_QUEUE_TTL", "60")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut log = BufReader::new(service.stderr.take().unwrap()).lines();
    let mut wait_for = async |text: &str| {
        tokio::time::timeout(TIMEOUT, async {
            while let Some(line) = log.next_line().await.unwrap() {
                if line.contains(text) {
                    return line;
                }
            }
            panic!("the example exited before logging {text:?}");
        })
        .await
        .unwrap_or_else(|_| panic!("no {text:?} from the example within {TIMEOUT:?}"))
    };
    wait_for("started service successfully").await;

    let publisher = AmqpPublisher::new(options, ServiceIdentity::with_random_uuid("test"))
        .envelope(ProtobufEnvelope::new());
    let nameless = Person {
        id: "1".into(),
        ..Person::default()
    };
    publisher
        .publish(&Proto(nameless), "people.created")
        .await
        .unwrap();
    let warning = wait_for("a person has a name").await;
    assert!(warning.contains("tomodachi.envelope"), "{warning}");

    let ada = Person {
        id: "2".into(),
        name: "Ada".into(),
        email: String::new(),
    };
    publisher
        .publish(&Proto(ada), "people.created")
        .await
        .unwrap();
    let greeting = tokio::time::timeout(TIMEOUT, greetings.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        greeting,
        Greeting {
            person_id: "2".into(),
            text: "Hello, Ada!".into()
        }
    );
    // The nameless person got no greeting: Ada's is the first.
    assert!(greetings.try_recv().is_err());

    publisher.close().await;
    shutdown.trigger();
    tokio::time::timeout(TIMEOUT, greeted)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

fn uuid_like() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{nanos:x}-{}", std::process::id())
}
