//! The service's publishers, made once when it starts from its options, identity and
//! envelope, on the connection and clients its consumers share, and put into the extensions
//! of every message and HTTP request its handlers get.
//!
//! A handler of any kind takes `Extension<SnsPublisher>` (axum's in HTTP handlers); a
//! message or scheduled handler may also take the publisher itself as an argument.

#[cfg(feature = "amqp")]
use tomodachi_amqp::{AmqpConnection, AmqpPublisher};
use tomodachi_core::Message;
#[cfg(feature = "sns")]
use tomodachi_sqs::SnsPublisher;
#[cfg(feature = "sqs")]
use tomodachi_sqs::{LazyAwsClients, SqsSender};
use tower::util::MapRequestLayer;

use crate::service::RunContext;

/// Every publisher the service's features provide (none without `amqp` or `sqs`).
#[derive(Clone)]
pub(crate) struct Publishers {
    #[cfg(feature = "amqp")]
    amqp: AmqpPublisher,
    #[cfg(feature = "sns")]
    sns: SnsPublisher,
    #[cfg(feature = "sqs")]
    sqs: SqsSender,
}

impl Publishers {
    /// The service's publishers, made the first time they are asked for.
    #[cfg_attr(not(any(feature = "amqp", feature = "sqs")), allow(unused_variables))]
    pub(crate) fn of(context: &RunContext) -> Self {
        #[cfg(feature = "amqp")]
        let connection = amqp_connection(context);
        #[cfg(feature = "sqs")]
        let clients = aws_clients(context);
        context.shared(|| {
            #[cfg(feature = "amqp")]
            let mut amqp = AmqpPublisher::with_connection(connection, context.identity.clone());
            #[cfg(feature = "sns")]
            let mut sns = SnsPublisher::with_clients(clients.clone(), context.identity.clone());
            #[cfg(feature = "sqs")]
            let mut sqs = SqsSender::with_clients(clients, context.identity.clone());
            if let Some(envelope) = &context.envelope {
                #[cfg(feature = "amqp")]
                {
                    amqp = amqp.envelope(envelope.clone());
                }
                #[cfg(feature = "sns")]
                {
                    sns = sns.envelope(envelope.clone());
                }
                #[cfg(feature = "sqs")]
                {
                    sqs = sqs.envelope(envelope.clone());
                }
            }
            // `--opentelemetry-instrument`: a PRODUCER span around each publish.
            #[cfg(feature = "otel")]
            if let Some(telemetry) = crate::instrument::telemetry() {
                #[cfg(feature = "amqp")]
                {
                    amqp = amqp.layer(telemetry.publish_layer());
                }
                #[cfg(feature = "sns")]
                {
                    sns = sns.layer(telemetry.publish_layer());
                }
                #[cfg(feature = "sqs")]
                {
                    sqs = sqs.layer(telemetry.publish_layer());
                }
            }
            Self {
                #[cfg(feature = "amqp")]
                amqp,
                #[cfg(feature = "sns")]
                sns,
                #[cfg(feature = "sqs")]
                sqs,
            }
        })
    }

    /// Puts a clone of each publisher into `extensions`.
    #[cfg_attr(not(any(feature = "amqp", feature = "sqs")), allow(unused_variables))]
    fn insert(&self, extensions: &mut http::Extensions) {
        #[cfg(feature = "amqp")]
        extensions.insert(self.amqp.clone());
        #[cfg(feature = "sns")]
        extensions.insert(self.sns.clone());
        #[cfg(feature = "sqs")]
        extensions.insert(self.sqs.clone());
    }

    /// The layer that hands the publishers to message and scheduled handlers.
    pub(crate) fn message_layer(
        &self,
    ) -> MapRequestLayer<impl Fn(Message) -> Message + Clone + Send + Sync + 'static> {
        let publishers = self.clone();
        MapRequestLayer::new(move |mut message: Message| {
            publishers.insert(message.extensions_mut());
            message
        })
    }

    /// The extensions that hand the publishers to HTTP handlers (as axum `Extension`s;
    /// the server puts them into every request).
    #[cfg(feature = "http")]
    pub(crate) fn extensions(&self) -> http::Extensions {
        let mut extensions = http::Extensions::new();
        self.insert(&mut extensions);
        extensions
    }
}

/// The service's one AMQP connection (opened when first used).
#[cfg(feature = "amqp")]
pub(crate) fn amqp_connection(context: &RunContext) -> AmqpConnection {
    // Named after the service, so that an operator finds it in `rabbitmqctl
    // list_connections name client_properties` and the management UI.
    let name = format!("{} ({})", context.identity.name, context.identity.uuid);
    context.shared(|| AmqpConnection::new(context.options.amqp.clone()).with_name(name))
}

/// The service's one set of AWS clients (made when first used).
#[cfg(feature = "sqs")]
pub(crate) fn aws_clients(context: &RunContext) -> LazyAwsClients {
    context.shared(|| {
        LazyAwsClients::new(
            context.options.aws_sns_sqs.clone(),
            context.options.aws_endpoint_urls.clone(),
        )
    })
}
