//! [`DynamoDbLease`]: one replica runs each scheduled tick, by a DynamoDB conditional write.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::client::Waiters;
use aws_sdk_dynamodb::error::{BuildError, DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    ScalarAttributeType, TimeToLiveSpecification,
};
use futures_util::future::BoxFuture;
use tomodachi_core::{BoxError, Lease};

use crate::error::aws;
use crate::{AwsSnsSqsOptions, Error, sdk_config};

const KEY: &str = "lease";
const EXPIRES: &str = "expires_at";

/// A lease on DynamoDB whose term is one tick: each replica writes the item
/// `<name>/<job>/<due time>` on condition that it does not exist yet; the one write that
/// succeeds runs the tick.
///
/// The item carries a TTL (`expires_at`, [`keep_for`](Self::keep_for) after the due time,
/// default one day) so the table cleans itself.
///
/// - **At most one run per tick, never two**: DynamoDB's conditional write on one item is
///   atomic, whatever the replicas' clocks say, since the item is named by the schedule's
///   due time, not by a clock reading. (A replica whose clock is behind by more than
///   `keep_for` could find the item gone; keep `keep_for` well above any skew.)
/// - **No takeover**: there is no leader to replace. A replica that dies loses only a
///   tick it had claimed and not finished; the next tick goes to a live replica.
/// - **Losing DynamoDB**: a failed write is an error and the tick is skipped, so a replica
///   cut off from DynamoDB runs nothing.
/// - **Ticks the replicas agree on**: the item is named by the time `LeaseLayer` claims,
///   the due time for cron expressions, interval words (`"1 minute"`, `"hourly"`, ...),
///   timestamps and `"1 second"`. An interval of n > 1 seconds (`Schedule::interval(30)`,
///   `"5 minutes"`) counts from each replica's start, so its ticks are claimed by their
///   epoch-aligned window of n seconds: each window runs once, on whichever replica's tick
///   in it comes first.
///
/// Costs one write per replica per tick.
///
/// # Against moto
///
/// moto's DynamoDB (`moto_server`) does not keep the atomicity above: it serves requests on
/// threads and checks a PutItem's condition, then writes the item, with no lock in between,
/// so two replicas' concurrent writes of one tick's item can both succeed there and the tick
/// runs twice. Serve moto on one thread for tests of this lease (tomodachi-rs's
/// `scripts/test-env.sh` starts one on 127.0.0.1:4567: werkzeug's `run_simple` with
/// `threaded=False` around `moto.server.DomainDispatcherApplication`). Real DynamoDB orders
/// the conditional writes of one item: exactly one succeeds.
///
/// ```no_run
/// # async fn run() -> Result<(), tomodachi_sqs::Error> {
/// use tomodachi_sqs::{AwsSnsSqsOptions, DynamoDbLease};
///
/// let lease = DynamoDbLease::from_options(&AwsSnsSqsOptions::default(), None, "leases", "reports").await?;
/// lease.create_table().await?;
/// // LeaseLayer::new(lease) around the scheduled handlers (tomodachi-schedule).
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct DynamoDbLease {
    inner: Arc<Inner>,
}

struct Inner {
    client: Client,
    table: String,
    name: String,
    owner: String,
    keep_for: Duration,
}

impl fmt::Debug for DynamoDbLease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DynamoDbLease")
            .field("table", &self.inner.table)
            .field("name", &self.inner.name)
            .field("owner", &self.inner.owner)
            .field("keep_for", &self.inner.keep_for)
            .finish_non_exhaustive()
    }
}

impl DynamoDbLease {
    /// The lease `name` (one per service, usually its name) in `table`, with your client.
    pub fn new(client: Client, table: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            inner: Arc::new(Inner {
                client,
                table: table.into(),
                name: name.into(),
                owner: uuid::Uuid::new_v4().to_string(),
                keep_for: Duration::from_secs(24 * 60 * 60),
            }),
        }
    }

    /// The lease with a client made from the service's AWS options (region, credentials)
    /// and `endpoint_url` (moto, LocalStack) if given.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] if the options lack a region or hold partial credentials.
    pub async fn from_options(
        options: &AwsSnsSqsOptions,
        endpoint_url: Option<&str>,
        table: impl Into<String>,
        name: impl Into<String>,
    ) -> Result<Self, Error> {
        let config = sdk_config(options).await?;
        let mut builder = aws_sdk_dynamodb::config::Builder::from(&config);
        if let Some(url) = endpoint_url {
            builder = builder.endpoint_url(url);
        }
        Ok(Self::new(Client::from_conf(builder.build()), table, name))
    }

    /// How long an item is kept after its tick's due time (default one day).
    #[must_use]
    pub fn keep_for(self, keep_for: Duration) -> Self {
        let inner = &self.inner;
        Self {
            inner: Arc::new(Inner {
                client: inner.client.clone(),
                table: inner.table.clone(),
                name: inner.name.clone(),
                owner: inner.owner.clone(),
                keep_for,
            }),
        }
    }

    /// Creates the table (key `lease`, on-demand billing, TTL on `expires_at`) unless it
    /// exists, and waits until it is ACTIVE (a new table takes a few seconds), so the first
    /// claims find it.
    ///
    /// # Errors
    ///
    /// [`Error::Aws`] if DynamoDB refuses, [`Error::Setup`] if the table is not ACTIVE
    /// within five minutes.
    pub async fn create_table(&self) -> Result<(), Error> {
        let inner = &self.inner;
        let created = inner
            .client
            .create_table()
            .table_name(&inner.table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name(KEY)
                    .attribute_type(ScalarAttributeType::S)
                    .build()
                    .map_err(invalid)?,
            )
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name(KEY)
                    .key_type(KeyType::Hash)
                    .build()
                    .map_err(invalid)?,
            )
            .send()
            .await;
        // A new table is CREATING for a few seconds on DynamoDB (at once ACTIVE on moto) and
        // takes reads and writes only once ACTIVE: wait for that before the TTL and the claims.
        match created {
            Ok(_) => self.until_active().await?,
            Err(error) if error.code() == Some("ResourceInUseException") => {
                return self.until_active().await;
            }
            Err(error) => return Err(aws("CreateTable", error)),
        }
        inner
            .client
            .update_time_to_live()
            .table_name(&inner.table)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .enabled(true)
                    .attribute_name(EXPIRES)
                    .build()
                    .map_err(invalid)?,
            )
            .send()
            .await
            .map_err(|error| aws("UpdateTimeToLive", error))?;
        Ok(())
    }

    /// Waits (up to five minutes) for the table to be ACTIVE.
    async fn until_active(&self) -> Result<(), Error> {
        let table = &self.inner.table;
        self.inner
            .client
            .wait_until_table_exists()
            .table_name(table)
            .wait(Duration::from_secs(300))
            .await
            .map_err(|error| {
                Error::Setup(format!(
                    "DynamoDB lease table {table} did not become ACTIVE: {}",
                    DisplayErrorContext(error)
                ))
            })?;
        Ok(())
    }
}

fn invalid(error: BuildError) -> Error {
    Error::Setup(format!("invalid DynamoDB lease table definition: {error}"))
}

impl Lease for DynamoDbLease {
    fn claim<'a>(&'a self, job: &'a str, due: SystemTime) -> BoxFuture<'a, Result<bool, BoxError>> {
        Box::pin(async move {
            let inner = &self.inner;
            let due_ms = due
                .duration_since(UNIX_EPOCH)
                .map_err(|e| -> BoxError { e.to_string().into() })?
                .as_millis();
            let expires = due + inner.keep_for;
            let expires = expires
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs();
            let written = inner
                .client
                .put_item()
                .table_name(&inner.table)
                .item(
                    KEY,
                    AttributeValue::S(format!("{}/{job}/{due_ms}", inner.name)),
                )
                .item("owner", AttributeValue::S(inner.owner.clone()))
                .item(EXPIRES, AttributeValue::N(expires.to_string()))
                .condition_expression("attribute_not_exists(#key)")
                .expression_attribute_names("#key", KEY)
                .send()
                .await;
            match written {
                Ok(_) => Ok(true),
                Err(SdkError::ServiceError(error))
                    if error.err().is_conditional_check_failed_exception() =>
                {
                    Ok(false)
                }
                Err(error) => Err(aws("PutItem", error).into()),
            }
        })
    }
}
