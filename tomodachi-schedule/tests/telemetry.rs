//! With telemetry on, each scheduled run carries a `Delivery` for tracing layers. (Own test
//! binary: the switch is process-wide.)

mod support;

use std::convert::Infallible;
use std::time::Duration;

use support::start_wall;
use tokio::sync::mpsc;
use tomodachi_core::telemetry::{self, Delivery};
use tomodachi_core::{Message, Outcome, Shutdown, Source};
use tomodachi_schedule::{Schedule, ScheduleSource};

#[tokio::test(start_paused = true)]
async fn scheduled_run_carries_a_delivery_when_telemetry_is_enabled() {
    telemetry::enable();
    let (tx, mut rx) = mpsc::unbounded_channel::<Option<Delivery>>();
    let service = tower::service_fn(move |message: Message| {
        let tx = tx.clone();
        async move {
            let _ = tx.send(message.context::<Delivery>().cloned());
            Ok::<_, Infallible>(Outcome::Ack)
        }
    });
    let shutdown = Shutdown::new();
    let running = ScheduleSource::new(Schedule::heartbeat())
        .named("sweep")
        .with_start_time(start_wall())
        .start(service, shutdown.clone())
        .await
        .expect("valid schedule");
    let running = tokio::spawn(running);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let delivery = rx.recv().await.expect("a run").expect("a Delivery");
    assert_eq!(delivery.system, telemetry::SCHEDULE);
    assert_eq!(&*delivery.handler, "sweep");
    let attribute = |key: &str| {
        delivery
            .attributes
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.to_string())
    };
    assert_eq!(attribute("function.trigger").as_deref(), Some("timer"));
    assert_eq!(
        attribute("function.time").as_deref(),
        Some("2024-05-01T12:00:01Z")
    );
    assert_eq!(attribute("function.interval").as_deref(), Some("1"));
    shutdown.trigger();
    running.await.expect("no panic").expect("drained");
}
