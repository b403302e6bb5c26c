//! The service options tree: tomodachi's option names and defaults, typed.
//!
//! [`Options`] holds one sub-tree per transport (behind that transport's feature) and the
//! `watcher` sub-tree. Every leaf has a dotted key (`http.port`,
//! `amqp.qos.queue_prefetch_count`) that can be read with [`Options::get`], changed with
//! [`Options::set`], and set from the environment as `TOMODACHI_` followed by the key in
//! upper case with dots turned into underscores (`TOMODACHI_HTTP_PORT`,
//! `TOMODACHI_AWS_ENDPOINT_URLS_SQS`, `TOMODACHI_AMQP_QOS_QUEUE_PREFETCH_COUNT`).
//!
//! ```
//! use tomodachi::options::Options;
//!
//! let mut options = Options::default();
//! options.set("watcher.ignored_dirs", ["target"])?;
//! options.apply_env([("TOMODACHI_WATCHER_WATCHED_FILE_ENDINGS", ".rs,.toml")])?;
//! assert_eq!(options.watcher.ignored_dirs, ["target"]);
//! assert_eq!(options.get("watcher.watched_file_endings")?, serde_json::json!([".rs", ".toml"]));
//! assert!(options.get("watcher.nope").is_err());
//! # Ok::<(), tomodachi::options::OptionsError>(())
//! ```

use std::collections::HashMap;
use std::ffi::OsString;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[cfg(feature = "amqp")]
pub use tomodachi_amqp::{AmqpOptions, QosOptions};
#[cfg(feature = "http")]
pub use tomodachi_http::HttpOptions;
#[cfg(feature = "sqs")]
pub use tomodachi_sqs::{AwsEndpointUrlsOptions, AwsSnsSqsOptions};

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
/// use tomodachi::options::{Options, WatcherOptions};
///
/// let options = Options::new().watcher(WatcherOptions {
///     ignored_dirs: vec!["target".into()],
///     ..WatcherOptions::default()
/// });
/// assert_eq!(options.get("watcher.ignored_dirs")?, serde_json::json!(["target"]));
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
    /// `watcher.*`: the development file watcher.
    pub watcher: WatcherOptions,
}

/// `watcher.*`: which files the development file watcher ignores and watches.
///
/// Both lists are empty by default.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WatcherOptions {
    /// Directory names never watched.
    pub ignored_dirs: Vec<String>,
    /// File endings watched on top of the built-in ones.
    pub watched_file_endings: Vec<String>,
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

    /// Replaces the `watcher` sub-tree.
    #[must_use]
    pub fn watcher(mut self, watcher: WatcherOptions) -> Self {
        self.watcher = watcher;
        self
    }

    /// The value of an option (a leaf) or of a sub-tree (an object), by dotted key.
    ///
    /// ```
    /// let options = tomodachi::options::Options::default();
    /// assert_eq!(options.get("watcher.ignored_dirs")?, serde_json::json!([]));
    /// assert!(options.get("watcher")?.is_object());
    /// assert!(options.get("no.such.key").is_err());
    /// # Ok::<(), tomodachi::options::OptionsError>(())
    /// ```
    pub fn get(&self, key: &str) -> Result<Value, OptionsError> {
        let mut tree = self.to_tree()?;
        take_at(&mut tree, key).ok_or_else(|| unknown(key))
    }

    /// The value of an option by dotted key, deserialized as `T`.
    ///
    /// ```
    /// let options = tomodachi::options::Options::default();
    /// let dirs: Vec<String> = options.get_as("watcher.ignored_dirs")?;
    /// assert!(dirs.is_empty());
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
    /// changes and an error names the key.
    ///
    /// ```
    /// let mut options = tomodachi::options::Options::default();
    /// options.set("watcher.ignored_dirs", vec!["node_modules"])?;
    /// assert_eq!(options.watcher.ignored_dirs, ["node_modules"]);
    /// assert!(options.set("watcher.ignored_dirs", 5).is_err());
    /// # Ok::<(), tomodachi::options::OptionsError>(())
    /// ```
    pub fn set<V: Serialize>(&mut self, key: &str, value: V) -> Result<&mut Self, OptionsError> {
        let value = serde_json::to_value(value).map_err(|e| OptionsError::InvalidValue {
            key: key.to_owned(),
            expected: "a serializable value",
            reason: e.to_string(),
        })?;
        let mut tree = self.to_tree()?;
        let current = slot_at(&mut tree, key).ok_or_else(|| unknown(key))?;
        let expected = expected_for(&declared_value(key).unwrap_or_else(|| current.clone()));
        *current = value;
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
    /// options.set_from_str("watcher.ignored_dirs", "target, .git")?;
    /// assert_eq!(options.watcher.ignored_dirs, ["target", ".git"]);
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

    /// Every option key (leaves only), in declaration order.
    ///
    /// ```
    /// let keys = tomodachi::options::Options::keys();
    /// assert!(keys.contains(&"watcher.ignored_dirs".to_owned()));
    /// ```
    pub fn keys() -> Vec<String> {
        let tree = serde_json::to_value(Self::default()).unwrap_or(Value::Null);
        let mut keys = Vec::new();
        collect_leaf_keys(&tree, "", &mut keys);
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
    ///     .apply_env([("TOMODACHI_WATCHER_IGNORED_DIRS", "[1")])
    ///     .unwrap_err();
    /// assert!(err.to_string().contains("TOMODACHI_WATCHER_IGNORED_DIRS"));
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

/// Decodes `TOMODACHI_*` pairs of an OS environment; other variables are skipped even
/// when they are not Unicode.
fn env_pairs(
    vars: impl IntoIterator<Item = (OsString, OsString)>,
) -> Result<Vec<(String, String)>, OptionsError> {
    let mut pairs = Vec::new();
    for (k, v) in vars {
        let Some(k) = k.to_str() else { continue };
        if !k.starts_with(ENV_PREFIX) {
            continue;
        }
        let v = v
            .into_string()
            .map_err(|_| OptionsError::NotUnicode { var: k.to_owned() })?;
        pairs.push((k.to_owned(), v));
    }
    Ok(pairs)
}

fn unknown(key: &str) -> OptionsError {
    OptionsError::UnknownKey {
        key: key.to_owned(),
    }
}

fn slot_at<'a>(tree: &'a mut Value, key: &str) -> Option<&'a mut Value> {
    if key.is_empty() {
        return None;
    }
    key.split('.')
        .try_fold(tree, |node, part| node.as_object_mut()?.get_mut(part))
}

/// The default value of an option: its declared type.
fn declared_value(key: &str) -> Option<Value> {
    let mut defaults = serde_json::to_value(Options::default()).ok()?;
    take_at(&mut defaults, key)
}

fn take_at(tree: &mut Value, key: &str) -> Option<Value> {
    slot_at(tree, key).map(Value::take)
}

fn collect_leaf_keys(node: &Value, prefix: &str, keys: &mut Vec<String>) {
    if let Value::Object(map) = node {
        for (name, child) in map {
            let key = if prefix.is_empty() {
                name.clone()
            } else {
                format!("{prefix}.{name}")
            };
            match child {
                Value::Object(m) if !m.is_empty() => collect_leaf_keys(child, &key, keys),
                _ => keys.push(key),
            }
        }
    }
}

/// Describes what an option accepts from the JSON type of its (default) value.
fn expected_for(current: &Value) -> &'static str {
    match current {
        Value::Bool(_) => "a boolean (1/0, true/false, yes/no, on/off)",
        Value::Number(n) if n.is_f64() => "a number",
        Value::Number(_) => "an integer",
        Value::String(_) => "a string",
        Value::Array(_) => "a list (JSON array or comma-separated)",
        Value::Object(_) => "an object",
        Value::Null => "a value of the option's type",
    }
}

/// Parses a boolean word; `None` if it is none.
pub(crate) fn parse_bool_word(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "y" | "on" => Some(true),
        "0" | "false" | "no" | "n" | "none" | "off" => Some(false),
        _ => None,
    }
}

/// The JSON values tried, in order, for text given to an option whose default value is
/// `current`.
fn candidates(current: &Value, text: &str) -> Vec<Value> {
    let as_string = Value::String(text.to_owned());
    let trimmed = text.trim();
    let json = || serde_json::from_str::<Value>(trimmed).ok();
    match current {
        Value::Bool(_) => match parse_bool_word(text) {
            Some(b) => vec![Value::Bool(b)],
            None => vec![as_string],
        },
        Value::Number(_) => match json() {
            Some(n @ Value::Number(_)) => vec![n, as_string],
            _ => vec![as_string],
        },
        Value::String(_) => vec![as_string],
        Value::Array(_) => {
            if trimmed.starts_with('[') {
                return json().into_iter().collect();
            }
            let items: Vec<&str> = trimmed
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .collect();
            let strings = items
                .iter()
                .map(|s| Value::String((*s).to_owned()))
                .collect();
            let parsed = items
                .iter()
                .map(|s| serde_json::from_str(s).unwrap_or_else(|_| Value::String((*s).to_owned())))
                .collect();
            vec![Value::Array(strings), Value::Array(parsed)]
        }
        Value::Object(_) => json().into_iter().collect(),
        Value::Null => json().into_iter().chain([as_string]).collect(),
    }
}

/// Puts `text` into the leaf `key` of `tree`, trying each candidate value until the tree
/// deserializes. The outer error is an unknown key; the inner one what was expected and
/// why the last candidate was refused.
#[allow(clippy::type_complexity)]
fn apply_text(
    tree: &mut Value,
    key: &str,
    text: &str,
) -> Result<Result<Options, (&'static str, String)>, OptionsError> {
    let slot = slot_at(tree, key).ok_or_else(|| unknown(key))?;
    let original = slot.clone();
    // The default value's type is the option's main type (an `access_log` that is a file
    // path now still reads "false" as a boolean).
    let declared = declared_value(key).unwrap_or_else(|| original.clone());
    let expected = expected_for(&declared);
    let mut reason = String::from("not parseable");
    for candidate in candidates(&declared, text) {
        if let Some(slot) = slot_at(tree, key) {
            *slot = candidate;
        }
        match serde_json::from_value::<Options>(tree.clone()) {
            Ok(options) => return Ok(Ok(options)),
            Err(e) => reason = e.to_string(),
        }
    }
    if let Some(slot) = slot_at(tree, key) {
        *slot = original;
    }
    Ok(Err((expected, reason)))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn watcher_defaults_are_empty() {
        let options = Options::default();
        assert!(options.watcher.ignored_dirs.is_empty());
        assert!(options.watcher.watched_file_endings.is_empty());
        assert_eq!(
            options.get("watcher").unwrap(),
            json!({"ignored_dirs": [], "watched_file_endings": []})
        );
    }

    #[test]
    fn unknown_keys_are_errors() {
        let mut options = Options::default();
        for key in [
            "",
            "nope",
            "watcher.nope",
            "watcher.ignored_dirs.x",
            "watcher..x",
        ] {
            assert!(
                matches!(options.get(key), Err(OptionsError::UnknownKey { key: k }) if k == key),
                "{key}"
            );
            assert!(matches!(
                options.set(key, 1),
                Err(OptionsError::UnknownKey { .. })
            ));
            assert!(matches!(
                options.set_from_str(key, "1"),
                Err(OptionsError::UnknownKey { .. })
            ));
        }
        assert_eq!(options, Options::default());
    }

    #[test]
    fn set_checks_the_type_and_leaves_options_unchanged_on_error() {
        let mut options = Options::default();
        let err = options.set("watcher.ignored_dirs", "x").unwrap_err();
        match err {
            OptionsError::InvalidValue { key, expected, .. } => {
                assert_eq!(key, "watcher.ignored_dirs");
                assert!(expected.contains("list"));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(options, Options::default());
        options
            .set("watcher", json!({"ignored_dirs": ["a"]}))
            .unwrap();
        assert_eq!(options.watcher.ignored_dirs, ["a"]);
        assert!(options.set("watcher", json!({"bogus": 1})).is_err());
    }

    #[test]
    fn the_tree_round_trips_through_serde_with_deny_unknown_fields() {
        let value = serde_json::to_value(Options::default()).unwrap();
        let back: Options = serde_json::from_value(value).unwrap();
        assert_eq!(back, Options::default());
        let partial: Options = serde_json::from_value(json!({"watcher": {}})).unwrap();
        assert_eq!(partial, Options::default());
        assert!(serde_json::from_value::<Options>(json!({"bogus": {}})).is_err());
    }

    #[test]
    fn env_var_names() {
        assert_eq!(Options::env_var("http.port"), "TOMODACHI_HTTP_PORT");
        assert_eq!(
            Options::env_var("aws_endpoint_urls.sqs"),
            "TOMODACHI_AWS_ENDPOINT_URLS_SQS"
        );
        assert_eq!(
            Options::env_var("amqp.qos.queue_prefetch_count"),
            "TOMODACHI_AMQP_QOS_QUEUE_PREFETCH_COUNT"
        );
    }

    #[test]
    fn env_lists_take_json_or_commas() {
        let mut options = Options::default();
        options
            .apply_env([
                ("TOMODACHI_WATCHER_IGNORED_DIRS", r#"["a,b", "c"]"#),
                ("TOMODACHI_WATCHER_WATCHED_FILE_ENDINGS", " .rs , .toml,, "),
                ("TOMODACHI_LOGGER", "json"),
                ("OTHER", "x"),
            ])
            .unwrap();
        assert_eq!(options.watcher.ignored_dirs, ["a,b", "c"]);
        assert_eq!(options.watcher.watched_file_endings, [".rs", ".toml"]);
        options
            .apply_env([("TOMODACHI_WATCHER_IGNORED_DIRS", "")])
            .unwrap();
        assert!(options.watcher.ignored_dirs.is_empty());
    }

    #[test]
    fn a_bad_env_value_names_the_variable_and_changes_nothing() {
        let mut options = Options::default();
        let err = options
            .apply_env([
                ("TOMODACHI_WATCHER_WATCHED_FILE_ENDINGS", ".rs"),
                ("TOMODACHI_WATCHER_IGNORED_DIRS", "[1, 2"),
            ])
            .unwrap_err();
        match &err {
            OptionsError::InvalidEnv {
                var,
                key,
                value,
                expected,
                ..
            } => {
                assert_eq!(var, "TOMODACHI_WATCHER_IGNORED_DIRS");
                assert_eq!(key, "watcher.ignored_dirs");
                assert_eq!(value, "[1, 2");
                assert!(expected.contains("list"));
            }
            other => panic!("{other:?}"),
        }
        assert!(err.to_string().contains("TOMODACHI_WATCHER_IGNORED_DIRS"));
        assert_eq!(options, Options::default());
    }

    #[test]
    fn process_env_pairs_skip_foreign_non_unicode_and_reject_ours() {
        #[cfg(unix)]
        {
            use std::os::unix::ffi::OsStringExt;
            let bad = OsString::from_vec(vec![0xff, 0xfe]);
            let pairs = env_pairs([
                (OsString::from("PATH_X"), bad.clone()),
                (OsString::from("TOMODACHI_HTTP_PORT"), OsString::from("1")),
            ])
            .unwrap();
            assert_eq!(pairs, [("TOMODACHI_HTTP_PORT".to_owned(), "1".to_owned())]);
            let err = env_pairs([(OsString::from("TOMODACHI_HTTP_HOST"), bad)]).unwrap_err();
            assert!(
                matches!(err, OptionsError::NotUnicode { var } if var == "TOMODACHI_HTTP_HOST")
            );
        }
    }

    #[test]
    fn bool_words() {
        for t in ["1", "true", "YES", "y", "On"] {
            assert_eq!(parse_bool_word(t), Some(true), "{t}");
        }
        for f in ["0", "false", "No", "n", "none", "OFF"] {
            assert_eq!(parse_bool_word(f), Some(false), "{f}");
        }
        assert_eq!(parse_bool_word("maybe"), None);
    }

    #[test]
    fn keys_list_every_leaf() {
        let keys = Options::keys();
        assert!(keys.contains(&"watcher.ignored_dirs".to_owned()));
        assert!(keys.contains(&"watcher.watched_file_endings".to_owned()));
        assert!(!keys.contains(&"watcher".to_owned()));
    }

    #[cfg(feature = "http")]
    mod http {
        use super::*;

        #[test]
        fn defaults_and_get() {
            let options = Options::default();
            assert_eq!(options.get("http.port").unwrap(), json!(9700));
            assert_eq!(options.get_as::<u16>("http.port").unwrap(), 9700);
            assert_eq!(options.get("http.host").unwrap(), json!("0.0.0.0"));
            assert_eq!(options.get("http.max_keepalive_time").unwrap(), Value::Null);
            assert_eq!(
                options.get("http").unwrap()["server_header"],
                json!("tomodachi")
            );
            assert!(options.get_as::<bool>("http.port").is_err());
        }

        #[test]
        fn set_in_code() {
            let mut options = Options::default();
            options.set("http.port", 8080).unwrap();
            options.set("http.max_keepalive_time", Some(30)).unwrap();
            assert_eq!(options.http.port, 8080);
            assert_eq!(options.http.max_keepalive_time, Some(30));
            assert!(options.set("http.port", 70_000).is_err());
            assert!(options.set("http.port", "80").is_err());
            assert_eq!(options.http.port, 8080);
            let built = Options::new().http(HttpOptions {
                port: 1,
                ..HttpOptions::default()
            });
            assert_eq!(built.get("http.port").unwrap(), json!(1));
        }

        #[test]
        fn env_numbers_bools_strings_and_untagged_values() {
            let mut options = Options::default();
            options
                .apply_env([
                    ("TOMODACHI_HTTP_PORT", "8080"),
                    ("TOMODACHI_HTTP_REUSE_PORT", "off"),
                    ("TOMODACHI_HTTP_HOST", "127.0.0.1"),
                    ("TOMODACHI_HTTP_CLIENT_MAX_SIZE", "100M"),
                    ("TOMODACHI_HTTP_ACCESS_LOG", "/tmp/access.log"),
                    ("TOMODACHI_HTTP_MAX_KEEPALIVE_REQUESTS", "10"),
                    ("TOMODACHI_HTTP_REAL_IP_FROM", "10.0.0.0/8,127.0.0.1"),
                ])
                .unwrap();
            assert_eq!(options.http.port, 8080);
            assert!(!options.http.reuse_port);
            assert_eq!(options.http.host, "127.0.0.1");
            assert_eq!(
                options.http.client_max_size,
                tomodachi_http::ByteSize::Text("100M".into())
            );
            assert_eq!(
                options.http.access_log,
                tomodachi_http::AccessLog::File("/tmp/access.log".into())
            );
            assert_eq!(options.http.max_keepalive_requests, Some(10));
            assert_eq!(options.http.real_ip_from, ["10.0.0.0/8", "127.0.0.1"]);
            options
                .apply_env([
                    ("TOMODACHI_HTTP_ACCESS_LOG", "false"),
                    ("TOMODACHI_HTTP_CLIENT_MAX_SIZE", "1024"),
                ])
                .unwrap();
            assert_eq!(
                options.http.access_log,
                tomodachi_http::AccessLog::Enabled(false)
            );
            assert_eq!(
                options.http.client_max_size,
                tomodachi_http::ByteSize::Bytes(1024)
            );
        }

        #[test]
        fn env_bad_port_is_typed_error() {
            let mut options = Options::default();
            for bad in ["abc", "70000", "-1", "", "1.5"] {
                let err = options
                    .apply_env([("TOMODACHI_HTTP_PORT", bad)])
                    .unwrap_err();
                match err {
                    OptionsError::InvalidEnv {
                        var,
                        key,
                        value,
                        expected,
                        ..
                    } => {
                        assert_eq!(var, "TOMODACHI_HTTP_PORT");
                        assert_eq!(key, "http.port");
                        assert_eq!(value, bad);
                        assert_eq!(expected, "an integer");
                    }
                    other => panic!("{other:?}"),
                }
            }
            assert_eq!(options.http.port, 9700);
        }

        #[test]
        fn env_bad_bool_is_typed_error() {
            let mut options = Options::default();
            let err = options
                .apply_env([("TOMODACHI_HTTP_REUSE_PORT", "maybe")])
                .unwrap_err();
            assert!(
                matches!(err, OptionsError::InvalidEnv { ref var, expected, .. } if var == "TOMODACHI_HTTP_REUSE_PORT" && expected.contains("boolean")),
                "{err:?}"
            );
        }

        #[test]
        fn env_overrides_values_set_in_code() {
            let mut options = Options::new().http(HttpOptions {
                port: 1234,
                host: "::1".into(),
                ..HttpOptions::default()
            });
            options
                .apply_env([("TOMODACHI_HTTP_PORT", "4321")])
                .unwrap();
            assert_eq!(options.http.port, 4321);
            assert_eq!(options.http.host, "::1");
        }
    }

    #[cfg(feature = "amqp")]
    mod amqp {
        use super::*;

        #[test]
        fn nested_qos_keys() {
            let mut options = Options::default();
            assert_eq!(
                options.get("amqp.qos.queue_prefetch_count").unwrap(),
                json!(100)
            );
            assert_eq!(
                options.get("amqp.qos").unwrap()["global_prefetch_count"],
                json!(400)
            );
            options
                .apply_env([
                    ("TOMODACHI_AMQP_QOS_QUEUE_PREFETCH_COUNT", "5"),
                    ("TOMODACHI_AMQP_SSL", "yes"),
                    ("TOMODACHI_AMQP_VIRTUALHOST", "/vh"),
                ])
                .unwrap();
            assert_eq!(options.amqp.qos.queue_prefetch_count, 5);
            assert!(options.amqp.ssl);
            assert_eq!(options.amqp.virtualhost, "/vh");
            assert!(Options::keys().contains(&"amqp.qos.global_prefetch_count".to_owned()));
            options.set("amqp.qos.global_prefetch_count", 7).unwrap();
            assert_eq!(options.amqp.qos.global_prefetch_count, 7);
        }
    }

    #[cfg(feature = "sqs")]
    mod sqs {
        use super::*;

        #[test]
        fn null_leaves_take_json_then_text() {
            let mut options = Options::default();
            assert_eq!(options.get("aws_endpoint_urls.sqs").unwrap(), Value::Null);
            options
                .apply_env([
                    ("TOMODACHI_AWS_ENDPOINT_URLS_SQS", "http://127.0.0.1:4566"),
                    ("TOMODACHI_AWS_SNS_SQS_REGION_NAME", "123"),
                    ("TOMODACHI_AWS_SNS_SQS_SQS_KMS_DATA_KEY_REUSE_PERIOD", "300"),
                    ("TOMODACHI_AWS_SNS_SQS_SNS_KMS_MASTER_KEY_ID", ""),
                ])
                .unwrap();
            assert_eq!(
                options.aws_endpoint_urls.sqs.as_deref(),
                Some("http://127.0.0.1:4566")
            );
            assert_eq!(options.aws_sns_sqs.region_name.as_deref(), Some("123"));
            assert_eq!(options.aws_sns_sqs.sqs_kms_data_key_reuse_period, Some(300));
            assert_eq!(
                options.aws_sns_sqs.sns_kms_master_key_id.as_deref(),
                Some("")
            );
            let err = options
                .apply_env([(
                    "TOMODACHI_AWS_SNS_SQS_SQS_KMS_DATA_KEY_REUSE_PERIOD",
                    "soon",
                )])
                .unwrap_err();
            assert!(
                matches!(err, OptionsError::InvalidEnv { var, .. } if var == "TOMODACHI_AWS_SNS_SQS_SQS_KMS_DATA_KEY_REUSE_PERIOD")
            );
        }
    }
}
