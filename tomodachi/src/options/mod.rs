//! The service options tree: tomodachi's option names and defaults, typed.
//!
//! [`Options`] holds one sub-tree per transport (behind that transport's feature) and the
//! `health` sub-tree. Every leaf has a dotted key (`http.port`,
//! `amqp.qos.queue_prefetch_count`) that can be read with [`Options::get`], changed with
//! [`Options::set`], and set from the environment as `TOMODACHI_` followed by the key in
//! upper case with dots turned into underscores (`TOMODACHI_HTTP_PORT`,
//! `TOMODACHI_AWS_ENDPOINT_URLS_SQS`, `TOMODACHI_AMQP_QOS_QUEUE_PREFETCH_COUNT`).
//!
//! ```
//! use tomodachi::options::Options;
//!
//! let mut options = Options::default();
//! options.set("health.ready_path", "/ready")?;
//! options.apply_env([("TOMODACHI_HEALTH_PORT", "9701")])?;
//! assert_eq!(options.health.ready_path, "/ready");
//! assert_eq!(options.get("health.port")?, serde_json::json!(9701));
//! assert!(options.get("health.nope").is_err());
//! # Ok::<(), tomodachi::options::OptionsError>(())
//! ```

use std::collections::HashMap;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[cfg(feature = "amqp")]
pub use tomodachi_amqp::{AckOptions, AmqpOptions, QosOptions};
#[cfg(feature = "http")]
pub use tomodachi_http::HttpOptions;
#[cfg(feature = "sqs")]
pub use tomodachi_sqs::{AwsEndpointUrlsOptions, AwsSnsSqsOptions};

pub use crate::health::HealthOptions;

/// Prefix of the environment variables that set options.
pub const ENV_PREFIX: &str = "TOMODACHI_";

/// All options of a service, with Python tomodachi's names and defaults.
///
/// Transport sub-trees exist when the facade's feature of that transport is enabled
/// (`http`, `sqs`, `amqp`). Build it as a struct literal, with the builder methods, or with
/// [`set`](Options::set) by key; read the environment with [`apply_env`](Options::apply_env)
/// or [`apply_process_env`](Options::apply_process_env).
///
/// ```
/// use tomodachi::options::{HealthOptions, Options};
///
/// let options = Options::new().health(HealthOptions {
///     port: Some(9701),
///     ..HealthOptions::default()
/// });
/// assert_eq!(options.get("health.port")?, serde_json::json!(9701));
/// # Ok::<(), tomodachi::options::OptionsError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Options {
    /// `http.*`: the HTTP transport.
    #[cfg(feature = "http")]
    pub http: HttpOptions,
    /// `aws_sns_sqs.*`: the SNS+SQS transport.
    #[cfg(feature = "sqs")]
    pub aws_sns_sqs: AwsSnsSqsOptions,
    /// `aws_endpoint_urls.*`: endpoint overrides of the AWS clients.
    #[cfg(feature = "sqs")]
    pub aws_endpoint_urls: AwsEndpointUrlsOptions,
    /// `amqp.*`: the AMQP transport.
    #[cfg(feature = "amqp")]
    pub amqp: AmqpOptions,
    /// `health.*`: the liveness and readiness endpoints.
    pub health: HealthOptions,
    /// `envelope.*`: limits of the message envelopes.
    pub envelope: EnvelopeOptions,
}

/// `envelope.*`: limits applied when envelopes open messages.
///
/// `max_inflated_size` (`TOMODACHI_ENVELOPE_MAX_INFLATED_SIZE`) caps, in bytes, what the
/// compressed data of one message (`base64_gzip_json`) may inflate to; a message over it
/// is rejected like any malformed envelope. It applies to every envelope of the process
/// (the largest of its services' values).
///
/// ```
/// let mut options = tomodachi::options::Options::default();
/// assert_eq!(options.envelope.max_inflated_size, 64 * 1024 * 1024);
/// options.apply_env([("TOMODACHI_ENVELOPE_MAX_INFLATED_SIZE", "1048576")])?;
/// assert_eq!(options.envelope.max_inflated_size, 1 << 20);
/// # Ok::<(), tomodachi::options::OptionsError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EnvelopeOptions {
    /// The most bytes compressed message data may inflate to (default 64 MiB).
    pub max_inflated_size: usize,
}

impl Default for EnvelopeOptions {
    fn default() -> Self {
        Self {
            max_inflated_size: tomodachi_core::envelope::DEFAULT_MAX_INFLATED_SIZE,
        }
    }
}

/// An option key that does not exist, a value of the wrong type, or a bad environment
/// variable.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OptionsError {
    /// The key names no option (or names a transport whose feature is disabled).
    #[error("unknown option `{key}`")]
    UnknownKey {
        /// The key as given.
        key: String,
    },
    /// A value given in code does not fit the option.
    #[error("invalid value for option `{key}`: expected {expected} ({reason})")]
    InvalidValue {
        /// The option key.
        key: String,
        /// What the option accepts.
        expected: &'static str,
        /// Why the value was refused.
        reason: String,
    },
    /// An environment variable holds a value that does not fit its option.
    #[error(
        "invalid value {value:?} in environment variable {var} (option `{key}`): expected {expected} ({reason})"
    )]
    InvalidEnv {
        /// The variable, such as `TOMODACHI_HTTP_PORT`.
        var: String,
        /// The option key, such as `http.port`.
        key: String,
        /// The variable's value.
        value: String,
        /// What the option accepts.
        expected: &'static str,
        /// Why the value was refused.
        reason: String,
    },
    /// An environment variable with the options prefix is not valid Unicode.
    #[error("environment variable {var} is not valid unicode")]
    NotUnicode {
        /// The variable (lossily decoded).
        var: String,
    },
    /// The options could not be turned into JSON (a custom serializer failed).
    #[error("options could not be serialized: {0}")]
    Serialize(#[source] serde_json::Error),
}

impl Options {
    /// The default options (the same as [`Options::default`]).
    pub fn new() -> Self {
        Self::default()
    }

    /// Replaces the `http` sub-tree.
    #[cfg(feature = "http")]
    #[must_use]
    pub fn http(mut self, http: HttpOptions) -> Self {
        self.http = http;
        self
    }

    /// Replaces the `aws_sns_sqs` sub-tree.
    #[cfg(feature = "sqs")]
    #[must_use]
    pub fn aws_sns_sqs(mut self, aws_sns_sqs: AwsSnsSqsOptions) -> Self {
        self.aws_sns_sqs = aws_sns_sqs;
        self
    }

    /// Replaces the `aws_endpoint_urls` sub-tree.
    #[cfg(feature = "sqs")]
    #[must_use]
    pub fn aws_endpoint_urls(mut self, aws_endpoint_urls: AwsEndpointUrlsOptions) -> Self {
        self.aws_endpoint_urls = aws_endpoint_urls;
        self
    }

    /// Replaces the `amqp` sub-tree.
    #[cfg(feature = "amqp")]
    #[must_use]
    pub fn amqp(mut self, amqp: AmqpOptions) -> Self {
        self.amqp = amqp;
        self
    }

    /// Replaces the `envelope` sub-tree.
    #[must_use]
    pub fn envelope(mut self, envelope: EnvelopeOptions) -> Self {
        self.envelope = envelope;
        self
    }

    /// Replaces the `health` sub-tree.
    #[must_use]
    pub fn health(mut self, health: HealthOptions) -> Self {
        self.health = health;
        self
    }

    /// The value of an option (a leaf) or of a sub-tree (an object), by dotted key.
    ///
    /// ```
    /// let options = tomodachi::options::Options::default();
    /// assert_eq!(options.get("health.ready_path")?, serde_json::json!("/health/ready"));
    /// assert!(options.get("health")?.is_object());
    /// assert!(options.get("no.such.key").is_err());
    /// # Ok::<(), tomodachi::options::OptionsError>(())
    /// ```
    pub fn get(&self, key: &str) -> Result<Value, OptionsError> {
        let mut tree = self.to_tree()?;
        if let Some(value) = take_at(&mut tree, key) {
            return Ok(value);
        }
        legacy_targets(key)
            .and_then(|targets| take_at(&mut tree, targets.first()?))
            .ok_or_else(|| unknown(key))
    }

    /// The value of an option by dotted key, deserialized as `T`.
    ///
    /// ```
    /// let options = tomodachi::options::Options::default();
    /// let port: Option<u16> = options.get_as("health.port")?;
    /// assert!(port.is_none());
    /// # Ok::<(), tomodachi::options::OptionsError>(())
    /// ```
    pub fn get_as<T: DeserializeOwned>(&self, key: &str) -> Result<T, OptionsError> {
        let value = self.get(key)?;
        serde_json::from_value(value).map_err(|e| OptionsError::InvalidValue {
            key: key.to_owned(),
            expected: "a value of the requested type",
            reason: e.to_string(),
        })
    }

    /// Sets an option (or a whole sub-tree) by dotted key.
    ///
    /// The key must exist and the value must fit the option's type; otherwise nothing
    /// changes and an error names the key. Python tomodachi's deprecated keys
    /// (`http.max_upload_size`, `aws.region_name`, `aws_sns_sqs.aws_endpoint_url`, ...) set
    /// the options they stand for, with a warning on the `tomodachi.options` logger.
    ///
    /// ```
    /// let mut options = tomodachi::options::Options::default();
    /// options.set("health.live_path", "/alive")?;
    /// assert_eq!(options.health.live_path, "/alive");
    /// assert!(options.set("health.live_path", 5).is_err());
    /// # Ok::<(), tomodachi::options::OptionsError>(())
    /// ```
    pub fn set<V: Serialize>(&mut self, key: &str, value: V) -> Result<&mut Self, OptionsError> {
        let value = serde_json::to_value(value).map_err(|e| OptionsError::InvalidValue {
            key: key.to_owned(),
            expected: "a serializable value",
            reason: e.to_string(),
        })?;
        let mut tree = self.to_tree()?;
        let keys: &[&str] = match slot_at(&mut tree, key) {
            Some(_) => &[key],
            None => legacy_targets(key).ok_or_else(|| unknown(key))?,
        };
        let mut expected = "a value of the option's type";
        for target in keys {
            let current = slot_at(&mut tree, target).ok_or_else(|| unknown(key))?;
            expected = expected_for(&declared_value(target).unwrap_or_else(|| current.clone()));
            *current = value.clone();
        }
        *self = serde_json::from_value(tree).map_err(|e| OptionsError::InvalidValue {
            key: key.to_owned(),
            expected,
            reason: e.to_string(),
        })?;
        Ok(self)
    }

    /// Sets an option by dotted key from text, parsed as an environment variable would be.
    ///
    /// Text for a number option is parsed as a number, for a boolean option as one of
    /// `1/true/yes/y/on` or `0/false/no/n/none/off`, for a list option as a JSON array or a
    /// comma-separated list, and for an option that is unset (`null`) as JSON, falling back
    /// to the text itself. Options that also take text (`http.client_max_size = "100M"`,
    /// `http.access_log = "/var/log/access.log"`) receive the text when it is not a number
    /// or a boolean.
    ///
    /// ```
    /// let mut options = tomodachi::options::Options::default();
    /// options.set_from_str("health.access_log", "yes")?;
    /// assert!(options.health.access_log);
    /// # Ok::<(), tomodachi::options::OptionsError>(())
    /// ```
    pub fn set_from_str(&mut self, key: &str, text: &str) -> Result<&mut Self, OptionsError> {
        let mut tree = self.to_tree()?;
        match apply_text(&mut tree, key, text)? {
            Ok(options) => {
                *self = options;
                Ok(self)
            }
            Err((expected, reason)) => Err(OptionsError::InvalidValue {
                key: key.to_owned(),
                expected,
                reason,
            }),
        }
    }

    /// Every option key (leaves only), sorted.
    ///
    /// ```
    /// let keys = tomodachi::options::Options::keys();
    /// assert!(keys.contains(&"health.ready_path".to_owned()));
    /// ```
    pub fn keys() -> Vec<String> {
        let tree = serde_json::to_value(Self::default()).unwrap_or(Value::Null);
        let mut keys = Vec::new();
        collect_leaf_keys(&tree, "", &mut keys);
        keys.sort();
        keys
    }

    /// The environment variable of an option key: `http.port` → `TOMODACHI_HTTP_PORT`.
    ///
    /// ```
    /// use tomodachi::options::Options;
    /// assert_eq!(Options::env_var("amqp.qos.queue_prefetch_count"), "TOMODACHI_AMQP_QOS_QUEUE_PREFETCH_COUNT");
    /// ```
    pub fn env_var(key: &str) -> String {
        let mut var = String::with_capacity(ENV_PREFIX.len() + key.len());
        var.push_str(ENV_PREFIX);
        var.extend(key.chars().map(|c| match c {
            '.' => '_',
            c => c.to_ascii_uppercase(),
        }));
        var
    }

    /// Applies `TOMODACHI_*` variables from the given `(name, value)` pairs.
    ///
    /// Each option key is looked up as [`Options::env_var`]; its value is parsed as in
    /// [`Options::set_from_str`]. Variables that name no option are ignored (other
    /// `TOMODACHI_*` variables, such as `TOMODACHI_LOGGER`, belong to the CLI). A value that
    /// does not fit fails with [`OptionsError::InvalidEnv`] naming the variable, and leaves
    /// `self` unchanged.
    ///
    /// ```
    /// let mut options = tomodachi::options::Options::default();
    /// let err = options
    ///     .apply_env([("TOMODACHI_HEALTH_LIVENESS_TIMEOUT_SECONDS", "soon")])
    ///     .unwrap_err();
    /// assert!(err.to_string().contains("TOMODACHI_HEALTH_LIVENESS_TIMEOUT_SECONDS"));
    /// ```
    pub fn apply_env<I, K, V>(&mut self, vars: I) -> Result<&mut Self, OptionsError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let vars: HashMap<String, String> = vars
            .into_iter()
            .filter(|(k, _)| k.as_ref().starts_with(ENV_PREFIX))
            .map(|(k, v)| (k.as_ref().to_owned(), v.as_ref().to_owned()))
            .collect();
        if vars.is_empty() {
            return Ok(self);
        }
        let mut tree = self.to_tree()?;
        let mut keys = Vec::new();
        collect_leaf_keys(&tree, "", &mut keys);
        let mut updated = None;
        for key in keys {
            let var = Self::env_var(&key);
            let Some(value) = vars.get(&var) else {
                continue;
            };
            match apply_text(&mut tree, &key, value)? {
                Ok(options) => updated = Some(options),
                Err((expected, reason)) => {
                    return Err(OptionsError::InvalidEnv {
                        var,
                        key,
                        value: value.clone(),
                        expected,
                        reason,
                    });
                }
            }
        }
        if let Some(options) = updated {
            *self = options;
        }
        Ok(self)
    }

    /// Applies `TOMODACHI_*` variables of this process's environment (see
    /// [`Options::apply_env`]).
    pub fn apply_process_env(&mut self) -> Result<&mut Self, OptionsError> {
        let vars = env_pairs(std::env::vars_os())?;
        self.apply_env(vars)
    }

    /// The default options with this process's `TOMODACHI_*` variables applied.
    pub fn from_env() -> Result<Self, OptionsError> {
        let mut options = Self::default();
        options.apply_process_env()?;
        Ok(options)
    }

    fn to_tree(&self) -> Result<Value, OptionsError> {
        serde_json::to_value(self).map_err(OptionsError::Serialize)
    }
}

mod legacy;
#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
mod tree;

use legacy::legacy_targets;
use tree::{
    apply_text, collect_leaf_keys, declared_value, env_pairs, expected_for, slot_at, take_at,
    unknown,
};
