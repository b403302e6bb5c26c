//! Walking the options as a JSON tree: keys, leaves, and text parsed into values.

use std::ffi::OsString;

use serde_json::Value;

use super::{ENV_PREFIX, Options, OptionsError};

/// Decodes `TOMODACHI_*` pairs of an OS environment; other variables are skipped even
/// when they are not Unicode.
pub(super) fn env_pairs(
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

pub(super) fn unknown(key: &str) -> OptionsError {
    OptionsError::UnknownKey {
        key: key.to_owned(),
    }
}

pub(super) fn slot_at<'a>(tree: &'a mut Value, key: &str) -> Option<&'a mut Value> {
    if key.is_empty() {
        return None;
    }
    key.split('.')
        .try_fold(tree, |node, part| node.as_object_mut()?.get_mut(part))
}

/// The default value of an option: its declared type.
pub(super) fn declared_value(key: &str) -> Option<Value> {
    let mut defaults = serde_json::to_value(Options::default()).ok()?;
    take_at(&mut defaults, key)
}

pub(super) fn take_at(tree: &mut Value, key: &str) -> Option<Value> {
    slot_at(tree, key).map(Value::take)
}

pub(super) fn collect_leaf_keys(node: &Value, prefix: &str, keys: &mut Vec<String>) {
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
pub(super) fn expected_for(current: &Value) -> &'static str {
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
pub(super) fn candidates(current: &Value, text: &str) -> Vec<Value> {
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
pub(super) fn apply_text(
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
