//! Protobuf messages between tomodachi services, Rust or Python (tomodachi's `ProtobufBase`
//! envelope): every `Person` on routing key `people.created` gets a `Greeting` back on
//! `people.greeted`. The message types come from `people.proto` (see `build.rs`).
//!
//! ```text
//! cargo run -p tomodachi-example-protobuf
//! ```
//!
//! A person without a name is rejected by the validator (a warning, and the handler does
//! not run); a message that is not a `Person` is rejected the same way as a malformed envelope.

use tomodachi::amqp::{self, AmqpPublisher, Binding};
use tomodachi::{Proto, ProtobufEnvelope, Service};

/// The types generated from `people.proto`.
#[allow(unreachable_pub, missing_docs)]
mod people {
    include!(concat!(env!("OUT_DIR"), "/people.rs"));
}

use people::{Greeting, Person};

fn has_a_name(person: &Person) -> Result<(), &'static str> {
    if person.name.is_empty() {
        return Err("a person has a name");
    }
    Ok(())
}

async fn greet(publisher: AmqpPublisher, Proto(person): Proto<Person>) -> Result<(), amqp::Error> {
    tracing::info!(id = %person.id, name = %person.name, "greeting");
    let greeting = Greeting {
        person_id: person.id,
        text: format!("Hello, {}!", person.name),
    };
    publisher.publish(&Proto(greeting), "people.greeted").await
}

#[tokio::main]
async fn main() -> tomodachi::Exit {
    let people = ProtobufEnvelope::new().validator(has_a_name);
    Service::new("people")
        .envelope(ProtobufEnvelope::new())
        .amqp(
            Binding::routing_key("people.created").envelope(people),
            greet,
        )
        .run()
        .await
}
