//! AWS clients built from the service's options.

use std::fmt;
use std::sync::Arc;

use aws_config::{BehaviorVersion, ConfigLoader, Region, SdkConfig};
use aws_sdk_sqs::config::Credentials;
use tokio::sync::OnceCell;

use crate::{AwsEndpointUrlsOptions, AwsSnsSqsOptions, Error};

/// The AWS clients every part of the transport shares (cheap to clone): SQS, and with the
/// `sns` feature SNS and STS.
///
/// Built from the options as Python tomodachi builds its botocore clients: region and keys
/// from `aws_sns_sqs` (the AWS default chain for what is `None`), endpoints from
/// `aws_endpoint_urls` (STS falls back to the SNS endpoint). TLS is rustls; no OpenSSL.
///
/// ```no_run
/// # async fn demo() -> Result<(), tomodachi_sqs::Error> {
/// use tomodachi_sqs::{AwsClients, AwsEndpointUrlsOptions, AwsSnsSqsOptions};
///
/// let options = AwsSnsSqsOptions { region_name: Some("eu-west-1".into()), ..Default::default() };
/// let clients = AwsClients::from_options(&options, &AwsEndpointUrlsOptions::default()).await?;
/// # let _ = clients;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct AwsClients {
    sqs: aws_sdk_sqs::Client,
    #[cfg(feature = "sns")]
    sns: aws_sdk_sns::Client,
    #[cfg(feature = "sns")]
    sts: aws_sdk_sts::Client,
}

impl AwsClients {
    /// Clients from the `aws_sns_sqs` and `aws_endpoint_urls` options.
    pub async fn from_options(
        options: &AwsSnsSqsOptions,
        endpoints: &AwsEndpointUrlsOptions,
    ) -> Result<Self, Error> {
        let config = sdk_config(options).await?;
        Ok(Self::from_sdk_config(&config, endpoints))
    }

    /// Clients from an SDK configuration, with the endpoint overrides.
    pub fn from_sdk_config(config: &SdkConfig, endpoints: &AwsEndpointUrlsOptions) -> Self {
        let mut sqs = aws_sdk_sqs::config::Builder::from(config);
        if let Some(url) = &endpoints.sqs {
            sqs = sqs.endpoint_url(url);
        }
        #[cfg(feature = "sns")]
        let (sns, sts) = {
            let mut sns = aws_sdk_sns::config::Builder::from(config);
            if let Some(url) = &endpoints.sns {
                sns = sns.endpoint_url(url);
            }
            let mut sts = aws_sdk_sts::config::Builder::from(config);
            if let Some(url) = endpoints.sts.as_ref().or(endpoints.sns.as_ref()) {
                sts = sts.endpoint_url(url);
            }
            (sns, sts)
        };
        Self {
            sqs: aws_sdk_sqs::Client::from_conf(sqs.build()),
            #[cfg(feature = "sns")]
            sns: aws_sdk_sns::Client::from_conf(sns.build()),
            #[cfg(feature = "sns")]
            sts: aws_sdk_sts::Client::from_conf(sts.build()),
        }
    }

    /// Clients you built yourself (with interceptors, retry or timeout settings).
    ///
    /// Without the `sns` feature, make the clients from a configuration and put your SQS
    /// client in: `AwsClients::from_sdk_config(&config, &endpoints).with_sqs(sqs)`.
    #[cfg(feature = "sns")]
    #[cfg_attr(docsrs, doc(cfg(feature = "sns")))]
    pub fn new(
        sqs: aws_sdk_sqs::Client,
        sns: aws_sdk_sns::Client,
        sts: aws_sdk_sts::Client,
    ) -> Self {
        Self { sqs, sns, sts }
    }

    /// These clients with `sqs` (one you built yourself) as the SQS client.
    #[must_use]
    pub fn with_sqs(mut self, sqs: aws_sdk_sqs::Client) -> Self {
        self.sqs = sqs;
        self
    }

    /// The SQS client.
    pub fn sqs(&self) -> &aws_sdk_sqs::Client {
        &self.sqs
    }

    /// The SNS client.
    #[cfg(feature = "sns")]
    #[cfg_attr(docsrs, doc(cfg(feature = "sns")))]
    pub fn sns(&self) -> &aws_sdk_sns::Client {
        &self.sns
    }

    /// The STS client (used to look topics up by ARN).
    #[cfg(feature = "sns")]
    #[cfg_attr(docsrs, doc(cfg(feature = "sns")))]
    pub fn sts(&self) -> &aws_sdk_sts::Client {
        &self.sts
    }

    /// The region the SNS client uses (without the `sns` feature, the SQS client's).
    pub fn region(&self) -> Option<&str> {
        #[cfg(feature = "sns")]
        let region = self.sns.config().region();
        #[cfg(not(feature = "sns"))]
        let region = self.sqs.config().region();
        region.map(Region::as_ref)
    }
}

/// The AWS clients of a service, made from its options the first time they are needed and
/// then shared by every consumer and publisher given a clone (what
/// [`AmqpConnection`](https://docs.rs/tomodachi-amqp) is for AMQP).
///
/// A service that only publishes builds no client until its first publish; a failure to
/// make them (no region) is that publish's error, and the next use tries again.
///
/// ```no_run
/// # async fn demo() -> Result<(), tomodachi_sqs::Error> {
/// use tomodachi_core::ServiceIdentity;
/// use tomodachi_sqs::{AwsEndpointUrlsOptions, AwsSnsSqsOptions, LazyAwsClients, SqsSender};
///
/// let clients = LazyAwsClients::new(AwsSnsSqsOptions::default(), AwsEndpointUrlsOptions::default());
/// let identity = ServiceIdentity::with_random_uuid("orders");
/// let sender = SqsSender::with_clients(clients.clone(), identity.clone());
/// let other = SqsSender::with_clients(clients.clone(), identity); // the same clients
/// sender.send(&serde_json::json!({"order": 7}), "orders").await?; // the clients are made here
/// # let _ = other;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct LazyAwsClients {
    inner: Arc<Lazy>,
}

struct Lazy {
    options: AwsSnsSqsOptions,
    endpoints: AwsEndpointUrlsOptions,
    clients: OnceCell<AwsClients>,
}

impl fmt::Debug for LazyAwsClients {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LazyAwsClients")
            .field("region_name", &self.inner.options.region_name)
            .field("endpoints", &self.inner.endpoints)
            .field("made", &self.inner.clients.initialized())
            .finish_non_exhaustive()
    }
}

impl LazyAwsClients {
    /// Clients to be made from these options on first use.
    pub fn new(options: AwsSnsSqsOptions, endpoints: AwsEndpointUrlsOptions) -> Self {
        Self {
            inner: Arc::new(Lazy {
                options,
                endpoints,
                clients: OnceCell::new(),
            }),
        }
    }

    /// Clients already made; `options` are the rest of what publishers and consumers read
    /// (prefixes, KMS keys, ...).
    pub fn ready(clients: AwsClients, options: AwsSnsSqsOptions) -> Self {
        Self {
            inner: Arc::new(Lazy {
                options,
                endpoints: AwsEndpointUrlsOptions::default(),
                clients: OnceCell::new_with(Some(clients)),
            }),
        }
    }

    /// The `aws_sns_sqs` options.
    pub fn options(&self) -> &AwsSnsSqsOptions {
        &self.inner.options
    }

    /// The clients, made now if this is the first use.
    ///
    /// # Errors
    ///
    /// As [`AwsClients::from_options`]; a later call tries again.
    pub async fn get(&self) -> Result<&AwsClients, Error> {
        self.inner
            .clients
            .get_or_try_init(|| {
                AwsClients::from_options(&self.inner.options, &self.inner.endpoints)
            })
            .await
    }
}

/// The HTTPS client of the TLS feature this crate was built with: `rustls-ring` sets one, with
/// `rustls` the SDK's default client (rustls with aws-lc-rs) is used.
#[cfg(feature = "rustls-ring")]
fn with_https_client(loader: ConfigLoader) -> Result<ConfigLoader, Error> {
    use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
    Ok(loader.http_client(
        aws_smithy_http_client::Builder::new()
            .tls_provider(Provider::Rustls(CryptoMode::Ring))
            .build_https(),
    ))
}

/// The HTTPS client of the TLS feature this crate was built with: `rustls-ring` sets one, with
/// `rustls` the SDK's default client (rustls with aws-lc-rs) is used.
#[cfg(all(feature = "rustls", not(feature = "rustls-ring")))]
#[allow(clippy::unnecessary_wraps)] // the same signature as the other TLS choices
fn with_https_client(loader: ConfigLoader) -> Result<ConfigLoader, Error> {
    Ok(loader)
}

/// Built without a TLS feature there is no HTTPS client: say so before any request fails.
#[cfg(not(any(feature = "rustls", feature = "rustls-ring")))]
fn with_https_client(_loader: ConfigLoader) -> Result<ConfigLoader, Error> {
    let message = "tomodachi-sqs was built without an HTTPS client: enable its `rustls` or \
                   `rustls-ring` feature (tomodachi: `rustls` or `rustls-ring`)";
    tracing::warn!(target: "tomodachi.awssnssqs", "{message}");
    Err(Error::Config(message.into()))
}

/// The SDK configuration of the options: region and static keys where given, the AWS
/// default chain for the rest.
///
/// Fails as tomodachi does (`"Invalid credentials [sqs] to AWS (…)"`) when only one of the
/// two keys is set or no region can be found.
pub async fn sdk_config(options: &AwsSnsSqsOptions) -> Result<SdkConfig, Error> {
    let mut loader = with_https_client(aws_config::defaults(BehaviorVersion::latest()))?;
    if let Some(region) = &options.region_name {
        loader = loader.region(Region::new(region.clone()));
    }
    match (&options.aws_access_key_id, &options.aws_secret_access_key) {
        (Some(id), Some(secret)) => {
            loader = loader.credentials_provider(Credentials::new(
                id.clone(),
                secret.clone(),
                None,
                None,
                "tomodachi-options",
            ));
        }
        (None, None) => {}
        _ => {
            let message = "Invalid credentials [sqs] to AWS (Partial credentials found in explicit, \
                           missing: aws_access_key_id or aws_secret_access_key)";
            tracing::warn!(target: "tomodachi.awssnssqs", "{message}");
            return Err(Error::Config(message.into()));
        }
    }
    let config = loader.load().await;
    if config.region().is_none() {
        let message = "Invalid credentials [sqs] to AWS (You must specify a region.)";
        tracing::warn!(target: "tomodachi.awssnssqs", "{message}");
        return Err(Error::Config(message.into()));
    }
    Ok(config)
}
