//! `rabbitmqctl` for the tests that close a connection from the broker's side. Shared by
//! tomodachi-amqp's tests and the facade's AMQP health test (`#[path]`). The program is
//! `$TOMODACHI_TEST_RABBITMQCTL` (scripts/test-env.sh sets it), else `rabbitmqctl` on PATH.
#![allow(dead_code, unreachable_pub)]

use std::process::Output;

async fn rabbitmqctl(args: &[&str]) -> Output {
    let program =
        std::env::var("TOMODACHI_TEST_RABBITMQCTL").unwrap_or_else(|_| "rabbitmqctl".to_owned());
    let output = tokio::process::Command::new(&program)
        .args(args)
        .output()
        .await
        .unwrap_or_else(|error| {
            panic!("{program} must be installed for this test (scripts/test-env.sh): {error}")
        });
    assert!(
        output.status.success(),
        "rabbitmqctl {} failed: {output:?}",
        args[0]
    );
    output
}

/// The broker's pids of the connections whose client-provided name is `name`.
pub async fn connection_pids(name: &str) -> Vec<String> {
    pids_where(&format!("{{\"connection_name\",\"{name}\"}}")).await
}

/// The broker's pids of the connections whose client-provided name starts with `prefix`.
pub async fn connection_pids_with_prefix(prefix: &str) -> Vec<String> {
    pids_where(&format!("{{\"connection_name\",\"{prefix}")).await
}

/// The pids of the connections whose client properties contain `needle`.
async fn pids_where(needle: &str) -> Vec<String> {
    let output = rabbitmqctl(&[
        "list_connections",
        "-q",
        "--no-table-headers",
        "pid",
        "client_properties",
    ])
    .await;
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|line| line.contains(needle))
        .filter_map(|line| line.split('\t').next().map(str::to_owned))
        .collect()
}

/// Closes the connection `pid` (only it: other tests run at the same time), giving `why` as
/// the broker's reason.
pub async fn close_connection(pid: &str, why: &str) {
    rabbitmqctl(&["close_connection", pid, why]).await;
}

/// `messages_unacknowledged` of `queue`, from the broker itself (0 for a queue it does not
/// list).
pub async fn messages_unacknowledged(queue: &str) -> u64 {
    let output = rabbitmqctl(&[
        "list_queues",
        "-q",
        "--no-table-headers",
        "name",
        "messages_unacknowledged",
    ])
    .await;
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.split_once('\t'))
        .find(|(name, _)| *name == queue)
        .and_then(|(_, count)| count.trim().parse().ok())
        .unwrap_or(0)
}
