//! What a handler subscribes to, and how its queue is set up.

use std::time::Duration;

use tomodachi_core::{Classify, Envelope, RetryOnFailure, SharedClassifier, SharedEnvelope};

use crate::Error;
#[cfg(feature = "sns")]
use crate::python_json::OrderedJson;

/// The dead-letter settings of a subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DeadLetter {
    /// Not given: the queue's redrive policy is left as it is.
    Unset,
    /// `dead_letter_queue_name=None`: the redrive policy is removed.
    Remove,
    /// A dead-letter queue (name or ARN) after `max_receive_count` receives.
    Queue {
        name: String,
        max_receive_count: u32,
    },
}

/// The filter policy of a subscription.
#[cfg(feature = "sns")]
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum FilterPolicy {
    /// Not given: the subscription has no `FilterPolicy` attribute.
    Unset,
    /// A policy (`None` in Python is the empty policy `{}`).
    Policy(OrderedJson),
    /// A policy string that is not JSON (fails the setup).
    Invalid(String),
}

/// A handler's subscription: the topic, the queue and its settings
/// (the arguments of Python tomodachi's `@aws_sns_sqs`).
///
/// A queue of its own, fed by [`SqsSender`](crate::SqsSender) (no SNS; all this crate builds
/// without its `sns` feature):
///
/// ```
/// use tomodachi_sqs::Subscription;
///
/// let subscription = Subscription::new().queue("orders").max_in_flight(4);
/// assert_eq!(subscription.topic_name(), None);
/// ```
///
/// A queue subscribed to an SNS topic (the `sns` feature):
///
/// ```
/// # #[cfg(feature = "sns")] {
/// use tomodachi_sqs::Subscription;
///
/// let subscription = Subscription::topic("order-paid")
///     .queue("orders")
///     .filter_policy(serde_json::json!({"currency": ["EUR"]}))
///     .visibility_timeout(60)
///     .dead_letter("orders-dlq", 3);
/// assert_eq!(subscription.topic_name(), Some("order-paid"));
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Subscription {
    pub(crate) topic: Option<String>,
    pub(crate) competing: Option<bool>,
    pub(crate) queue_name: Option<String>,
    #[cfg(feature = "sns")]
    pub(crate) filter_policy: FilterPolicy,
    #[cfg(feature = "sns")]
    pub(crate) visibility_timeout: Option<u32>,
    pub(crate) dead_letter: DeadLetter,
    pub(crate) fifo: bool,
    pub(crate) max_number_of_consumed_messages: i64,
    pub(crate) envelope: Option<SharedEnvelope>,
    pub(crate) classifier: SharedClassifier,
    pub(crate) handler_name: String,
    pub(crate) max_in_flight: Option<usize>,
    pub(crate) wait_time: Duration,
}

impl Default for Subscription {
    fn default() -> Self {
        Self {
            topic: None,
            competing: None,
            queue_name: None,
            #[cfg(feature = "sns")]
            filter_policy: FilterPolicy::Unset,
            #[cfg(feature = "sns")]
            visibility_timeout: None,
            dead_letter: DeadLetter::Unset,
            fifo: false,
            max_number_of_consumed_messages: 10,
            envelope: None,
            classifier: std::sync::Arc::new(RetryOnFailure),
            handler_name: "handler".into(),
            max_in_flight: None,
            wait_time: Duration::from_secs(20),
        }
    }
}

impl Subscription {
    /// A subscription without a topic: the handler consumes its queue (set one with
    /// [`queue`](Self::queue)), fed by [`SqsSender`](crate::SqsSender) or anything else.
    /// The queue (and a [`dead_letter`](Self::dead_letter) queue) is created if missing;
    /// as in tomodachi, a queue without a topic gets no policy, visibility timeout or
    /// redrive policy from the setup.
    pub fn new() -> Self {
        Self::default()
    }

    #[cfg(feature = "sns")]
    #[cfg_attr(docsrs, doc(cfg(feature = "sns")))]
    /// A subscription to `topic` (without the options' `topic_prefix`). `*` and `#` make
    /// it a wildcard subscription to every existing matching topic.
    pub fn topic(topic: impl Into<String>) -> Self {
        Self {
            topic: Some(topic.into()),
            ..Self::default()
        }
    }

    /// The topic, if any.
    pub fn topic_name(&self) -> Option<&str> {
        self.topic.as_deref()
    }

    /// The queue's name (the options' `queue_name_prefix` goes first, `.fifo` is not
    /// added), or an `arn:aws:sqs:…` ARN of an existing queue. Without it the name is
    /// derived from the topic as tomodachi derives it.
    #[must_use]
    pub fn queue(mut self, queue_name: impl Into<String>) -> Self {
        self.queue_name = Some(queue_name.into());
        self
    }

    /// Competing consumers (the default, `true`) share one queue per topic; a
    /// non-competing handler gets a queue of its own per service instance. A named queue
    /// must be competing.
    #[must_use]
    pub fn competing(mut self, competing: bool) -> Self {
        self.competing = Some(competing);
        self
    }

    #[cfg(feature = "sns")]
    #[cfg_attr(docsrs, doc(cfg(feature = "sns")))]
    /// The subscription's filter policy, from anything serializable; the key order is
    /// kept, so the `FilterPolicy` attribute is what Python's `json.dumps` would send.
    #[must_use]
    pub fn filter_policy(mut self, policy: impl serde::Serialize) -> Self {
        self.filter_policy = match serde_json::to_string(&policy) {
            Ok(text) => parse_policy(&text),
            Err(error) => FilterPolicy::Invalid(error.to_string()),
        };
        self
    }

    #[cfg(feature = "sns")]
    #[cfg_attr(docsrs, doc(cfg(feature = "sns")))]
    /// The filter policy as a JSON string (a bad string fails the setup).
    #[must_use]
    pub fn filter_policy_json(mut self, policy: &str) -> Self {
        self.filter_policy = parse_policy(policy);
        self
    }

    #[cfg(feature = "sns")]
    #[cfg_attr(docsrs, doc(cfg(feature = "sns")))]
    /// Python's `filter_policy=None`: the empty policy `{}`.
    #[must_use]
    pub fn empty_filter_policy(mut self) -> Self {
        self.filter_policy = FilterPolicy::Policy(OrderedJson::Object(Vec::new()));
        self
    }

    #[cfg(feature = "sns")]
    #[cfg_attr(docsrs, doc(cfg(feature = "sns")))]
    /// The queue's `VisibilityTimeout` in seconds (0..=43200), set when the queue has a
    /// topic and differs.
    #[must_use]
    pub fn visibility_timeout(mut self, seconds: u32) -> Self {
        self.visibility_timeout = Some(seconds);
        self
    }

    /// Dead-letter queue (name, prefixed like the queue, or ARN) after
    /// `max_receive_count` receives. The queue is created with a 14-day retention; the
    /// redrive policy is set on a queue with a topic only (as tomodachi does).
    #[must_use]
    pub fn dead_letter(mut self, queue_name: impl Into<String>, max_receive_count: u32) -> Self {
        self.dead_letter = DeadLetter::Queue {
            name: queue_name.into(),
            max_receive_count,
        };
        self
    }

    /// Python's `dead_letter_queue_name=None`: the queue's redrive policy is removed.
    #[must_use]
    pub fn no_dead_letter(mut self) -> Self {
        self.dead_letter = DeadLetter::Remove;
        self
    }

    /// A FIFO topic and queue (names end with `.fifo`); messages are taken one at a time.
    #[must_use]
    pub fn fifo(mut self, fifo: bool) -> Self {
        self.fifo = fifo;
        self
    }

    /// Messages per `ReceiveMessage` (1..=10; outside that, 10 as tomodachi does).
    #[must_use]
    pub fn max_number_of_consumed_messages(mut self, count: i64) -> Self {
        self.max_number_of_consumed_messages = count;
        self
    }

    /// Opens this handler's messages with `envelope` (Python's per-handler
    /// `message_envelope`). Without one the body is the notification's `Message`.
    #[must_use]
    pub fn envelope(mut self, envelope: impl Envelope) -> Self {
        self.envelope = Some(tomodachi_core::envelope::shared(envelope));
        self
    }

    /// The handler's name (Python's function name): part of a non-competing queue's name.
    #[must_use]
    pub fn handler_name(mut self, name: impl Into<String>) -> Self {
        self.handler_name = name.into();
        self
    }

    /// At most this many messages handled at once (default: the batch size; FIFO: 1).
    /// The consumer polls for more as soon as there is room.
    #[must_use]
    pub fn max_in_flight(mut self, count: usize) -> Self {
        self.max_in_flight = Some(count.max(1));
        self
    }

    /// `WaitTimeSeconds` of `ReceiveMessage` (default 20 s, at most 20 s).
    #[must_use]
    pub fn wait_time(mut self, wait: Duration) -> Self {
        self.wait_time = wait.min(Duration::from_secs(20));
        self
    }

    /// Messages per receive: tomodachi's rule (1 for FIFO queues).
    pub(crate) fn batch_size(&self, queue_url: &str) -> i32 {
        if queue_url.ends_with(".fifo") {
            return 1;
        }
        match self.max_number_of_consumed_messages {
            count @ 1..=10 => count as i32,
            _ => 10,
        }
    }

    /// Checks the combinations tomodachi rejects at startup.
    pub(crate) fn validate(&self) -> Result<(), Error> {
        if self.queue_name.is_some() && self.competing == Some(false) {
            return Err(Error::InvalidSubscription(
                "AWS SQS queue with predefined queue name must be competing".into(),
            ));
        }
        if let DeadLetter::Queue {
            name,
            max_receive_count,
        } = &self.dead_letter
            && (name.trim().is_empty() || *max_receive_count < 1)
        {
            return Err(Error::InvalidSubscription(
                "Invalid values specified for dead-letter queue parameters (dead_letter_queue_name and max_receive_count)".into(),
            ));
        }
        #[cfg(feature = "sns")]
        if let Some(timeout) = self.visibility_timeout
            && timeout > 43200
        {
            return Err(Error::InvalidSubscription(
                "SQS visibility_timeout is invalid".into(),
            ));
        }
        #[cfg(feature = "sns")]
        if let FilterPolicy::Invalid(reason) = &self.filter_policy {
            return Err(Error::InvalidSubscription(format!(
                "SQS filter_policy is invalid ({reason})"
            )));
        }
        if let Some(topic) = &self.topic
            && !topic.contains(['*', '#'])
        {
            crate::naming::validate_topic_name(topic)?;
        }
        Ok(())
    }
}

#[cfg(feature = "sns")]
fn parse_policy(text: &str) -> FilterPolicy {
    match serde_json::from_str::<OrderedJson>(text) {
        Ok(OrderedJson::Null) => FilterPolicy::Policy(OrderedJson::Object(Vec::new())),
        Ok(policy) => FilterPolicy::Policy(policy),
        Err(error) => FilterPolicy::Invalid(error.to_string()),
    }
}

/// Read access for the service builder (the facade fills in what the user left out).
impl Subscription {
    /// The name that identifies the handler (in logs and non-competing queue names).
    pub fn handler_name_ref(&self) -> &str {
        &self.handler_name
    }

    /// Takes the per-subscription envelope out (the caller opens messages itself, with an
    /// [`EnvelopeLayer`](tomodachi_core::EnvelopeLayer) of its own).
    pub fn take_envelope(&mut self) -> Option<SharedEnvelope> {
        self.envelope.take()
    }

    /// Decides the outcome of a message whose handler failed (returned an error or
    /// panicked): [`RetryOnFailure`] (the default: the message is received again after
    /// its visibility timeout), [`DropOnFailure`](tomodachi_core::DropOnFailure) (deleted,
    /// as Python tomodachi does) or your own [`classify_fn`](tomodachi_core::classify_fn).
    #[must_use]
    pub fn on_failure(mut self, classifier: impl Classify) -> Self {
        self.classifier = std::sync::Arc::new(classifier);
        self
    }

    /// The per-subscription envelope, if one was set.
    pub fn envelope_ref(&self) -> Option<&SharedEnvelope> {
        self.envelope.as_ref()
    }
}

#[cfg(all(test, feature = "sns"))]
mod tests {
    use super::*;

    #[test]
    fn startup_errors_have_tomodachis_messages() {
        let error = Subscription::topic("t")
            .queue("q")
            .competing(false)
            .validate()
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "AWS SQS queue with predefined queue name must be competing"
        );
        let error = Subscription::topic("t")
            .dead_letter("dlq", 0)
            .validate()
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "Invalid values specified for dead-letter queue parameters (dead_letter_queue_name and max_receive_count)"
        );
        let error = Subscription::topic("a.b").validate().unwrap_err();
        assert!(error.to_string().starts_with("Topic name (a.b) may only"));
        assert!(Subscription::topic("a.*").validate().is_ok());
        assert!(
            Subscription::topic("t")
                .filter_policy_json("{nope")
                .validate()
                .is_err()
        );
    }

    #[test]
    fn batch_size_follows_tomodachi() {
        let subscription = Subscription::topic("t");
        assert_eq!(subscription.batch_size("http://h/1/q"), 10);
        assert_eq!(subscription.batch_size("http://h/1/q.fifo"), 1);
        let subscription = subscription.max_number_of_consumed_messages(0);
        assert_eq!(subscription.batch_size("http://h/1/q"), 10);
        let subscription = subscription.max_number_of_consumed_messages(4);
        assert_eq!(subscription.batch_size("http://h/1/q"), 4);
    }
}
