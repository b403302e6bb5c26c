//! One conformance suite for every message transport: the rules in `suite.rs`, run against
//! the in-memory transport, RabbitMQ and moto's SNS+SQS, and a broken transport that must
//! fail them.
//!
//! The broker fixtures need RabbitMQ and moto (`bash scripts/test.sh` starts them); one that
//! cannot be reached fails its tests with a clear message.
#![allow(missing_docs, clippy::unwrap_used)]

mod amqp;
mod memory;
mod sqs;
mod suite;

/// A name no other test (or run) uses.
fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

/// One test per rule for a fixture: `rules!(module, Fixture)`.
macro_rules! rules {
    ($transport:ident, $fixture:expr) => {
        mod $transport {
            #[allow(unused_imports)]
            use super::*;

            async fn rule(name: &str) {
                if let Err(violation) = suite::run(&$fixture, name).await {
                    panic!("{} breaks `{name}`: {violation}", stringify!($transport));
                }
            }

            rules!(@each
                handler_error_is_retried,
                panic_is_retried,
                drop_on_failure_acks,
                handler_timeout_is_retried,
                malformed_envelope_is_rejected,
                concurrency_limit_is_the_prefetch,
                shutdown_drains_in_flight_and_leaves_the_rest,
                dedup_layer_handles_a_message_once,
                attributes_and_metadata_reach_extractors,
            );
        }
    };
    (@each $($name:ident,)*) => {
        $(
            #[tokio::test(flavor = "current_thread")]
            async fn $name() {
                rule(stringify!($name)).await;
            }
        )*

        #[test]
        fn every_rule_is_run() {
            assert_eq!([$(stringify!($name)),*], super::suite::RULES);
        }
    };
}

rules!(in_memory, memory::Memory::default());
rules!(rabbitmq, amqp::RabbitMq);
rules!(sns_sqs, sqs::Moto);

/// A source that acks a message whose handler failed (an error or a panic) breaks the
/// retry rules and keeps the others (a handler timeout is a retry outcome, not a failure):
/// the suite reports exactly those two.
#[tokio::test(flavor = "current_thread")]
async fn a_source_that_acks_on_error_fails_the_suite() {
    let broken = memory::Memory::acking_on_error();
    for rule in suite::RULES {
        let result = suite::run(&broken, rule).await;
        match rule {
            "handler_error_is_retried" | "panic_is_retried" => {
                let violation = result.expect_err("the broken source passed a retry rule");
                assert!(
                    violation.contains("(the retry): expected 2 within"),
                    "{rule}: {violation}"
                );
            }
            _ => result.unwrap_or_else(|violation| panic!("{rule}: {violation}")),
        }
    }
}
