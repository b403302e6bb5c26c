//! Readiness follows the AMQP connection: the service's own connection (found by its
//! client-provided name) is closed by the broker, readiness turns 503 with the AMQP
//! source degraded, and comes back to 200 once the connection has recovered.
#![cfg(all(feature = "amqp", feature = "http"))]
#![allow(clippy::unwrap_used)]

use std::time::Duration;

#[path = "../../tomodachi-amqp/tests/support/rabbitmqctl.rs"]
mod rabbitmqctl;
mod support;

use rabbitmqctl::{close_connection, connection_pids};
use support::{free_port, probe, until_ready_is};
use tomodachi::amqp::Binding;
use tomodachi::{Exit, Process, Raw, Service};

async fn handle(Raw(_body): Raw) {}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_turns_503_while_the_amqp_connection_recovers() {
    if std::net::TcpStream::connect_timeout(
        &"127.0.0.1:5672".parse().unwrap(),
        Duration::from_secs(3),
    )
    .is_err()
    {
        panic!(
            "RabbitMQ is not reachable at 127.0.0.1:5672: start it (`.ci/run` and scripts/test-env.sh do)"
        );
    }
    let unique = format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let name = format!("health-amqp-{unique}");
    let uuid = format!("uuid-{unique}");
    let port = free_port();
    let service = Service::new(&name)
        .uuid(&uuid)
        .amqp(Binding::routing_key(format!("health.{unique}")), handle)
        .configure(|options| {
            options.amqp.queue_ttl = 120;
            options.health.host = "127.0.0.1".into();
            options.health.port = Some(port);
        });
    let process = Process::new()
        .without_signals()
        .without_logging()
        .args(["health-amqp"])
        .env(Vec::<(String, String)>::new())
        .service(service);
    let shutdown = process.shutdown();
    let running = tokio::spawn(process.run());

    let ready = until_ready_is(port, 200, "ready after startup").await;
    let sources = ready["sources"].as_object().unwrap();
    let amqp = sources
        .keys()
        .find(|key| key.starts_with("amqp:"))
        .unwrap_or_else(|| panic!("no amqp source: {ready}"))
        .clone();
    assert_eq!(sources[&amqp]["state"], "ready", "{ready}");

    // The facade names its connection "<service>:<uuid>": close only that one.
    let connection_name = format!("{name} ({uuid})");
    let pids = connection_pids(&connection_name).await;
    assert_eq!(
        pids.len(),
        1,
        "one connection named {connection_name}: {pids:?}"
    );
    close_connection(&pids[0], "closed by the tomodachi health test").await;

    let degraded = until_ready_is(port, 503, "not ready after the close").await;
    assert_eq!(degraded["status"], "not_ready", "{degraded}");
    assert_eq!(degraded["phase"], "running", "{degraded}");
    assert_eq!(
        degraded["sources"][&amqp]["state"], "degraded",
        "{degraded}"
    );
    assert!(
        degraded["sources"][&amqp]["reason"]
            .as_str()
            .is_some_and(|r| !r.is_empty()),
        "{degraded}"
    );
    let (live, body) = probe(port, "/health/live").await;
    assert_eq!(live, 200, "a lost broker is not a wedged process: {body}");

    let recovered = until_ready_is(port, 200, "ready again after the recovery").await;
    assert_eq!(recovered["sources"][&amqp]["state"], "ready", "{recovered}");
    let pids = connection_pids(&connection_name).await;
    assert_eq!(pids.len(), 1, "reconnected under the same name: {pids:?}");

    shutdown.trigger();
    let exit = tokio::time::timeout(Duration::from_secs(30), running)
        .await
        .expect("stopped within 30 s")
        .unwrap();
    assert_eq!(exit, Exit::SUCCESS);
}
