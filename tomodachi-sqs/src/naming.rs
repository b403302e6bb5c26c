//! Topic and queue names, derived and encoded exactly as Python tomodachi does.

use std::fmt::Write as _;

use sha2::{Digest, Sha256};

use crate::Error;

/// Checks a topic name as tomodachi's `validate_topic_name` does: at most 256 characters,
/// and only `[A-Za-z0-9_-]` once trailing `.`, `f`, `i`, `o` characters are stripped (Python's
/// `rstrip(".fifo")`, which strips a character set, not a suffix).
///
/// ```
/// use tomodachi_sqs::naming::validate_topic_name;
///
/// assert!(validate_topic_name("order-paid").is_ok());
/// assert!(validate_topic_name("orders.fifo").is_ok());
/// assert_eq!(
///     validate_topic_name("order.paid").unwrap_err().to_string(),
///     "Topic name (order.paid) may only contain alphanumeric characters, hyphens (-), and underscores (_)."
/// );
/// ```
pub fn validate_topic_name(topic: &str) -> Result<(), Error> {
    if topic.chars().count() > 256 {
        return Err(Error::InvalidName(format!(
            "Topic name ({topic}) is too long."
        )));
    }
    if !valid_charset(topic) {
        return Err(Error::InvalidName(format!(
            "Topic name ({topic}) may only contain alphanumeric characters, hyphens (-), and underscores (_)."
        )));
    }
    Ok(())
}

/// Checks a queue name as tomodachi's `validate_queue_name` does: at most 80 characters,
/// `[A-Za-z0-9_-]` once trailing `.fifo` characters are stripped.
///
/// ```
/// use tomodachi_sqs::naming::validate_queue_name;
///
/// assert!(validate_queue_name("orders.fifo").is_ok());
/// assert!(validate_queue_name("orders/eu").is_err());
/// ```
pub fn validate_queue_name(queue_name: &str) -> Result<(), Error> {
    if queue_name.chars().count() > 80 {
        return Err(Error::InvalidName(format!(
            "Queue name ({queue_name}) is too long."
        )));
    }
    if !valid_charset(queue_name) {
        return Err(Error::InvalidName(format!(
            "Queue name ({queue_name}) may only contain alphanumeric characters, hyphens (-), and underscores (_)."
        )));
    }
    Ok(())
}

fn valid_charset(name: &str) -> bool {
    name.trim_end_matches(['.', 'f', 'i', 'o'])
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Encodes a topic as an SNS topic name: every character outside `[a-zA-Z0-9_*#-]`
/// (except the `.` of a trailing `.fifo`) becomes `___<hex of its UTF-8 bytes>_`.
///
/// ```
/// use tomodachi_sqs::naming::encode_topic;
///
/// assert_eq!(encode_topic("a.b c"), "a___2e_b___20_c");
/// assert_eq!(encode_topic("foo.bar.fifo"), "foo___2e_bar.fifo");
/// ```
pub fn encode_topic(topic: &str) -> String {
    let mut encoded = String::with_capacity(topic.len());
    for (index, ch) in topic.char_indices() {
        let kept = ch.is_ascii_alphanumeric() || matches!(ch, '_' | '*' | '#' | '-');
        if kept || (ch == '.' && &topic[index..] == ".fifo") {
            encoded.push(ch);
            continue;
        }
        let mut bytes = [0_u8; 4];
        encoded.push_str("___");
        for byte in ch.encode_utf8(&mut bytes).as_bytes() {
            let _ = write!(encoded, "{byte:02x}");
        }
        encoded.push('_');
    }
    encoded
}

/// Decodes what [`encode_topic`] encoded (`___<2, 4, 6 or 8 lowercase hex digits>_`).
///
/// ```
/// use tomodachi_sqs::naming::decode_topic;
///
/// assert_eq!(decode_topic("a___2e_b___20_c"), "a.b c");
/// ```
pub fn decode_topic(encoded: &str) -> String {
    let bytes = encoded.as_bytes();
    let mut decoded: Vec<u8> = Vec::with_capacity(bytes.len());
    let mut index = 0;
    'outer: while index < bytes.len() {
        if bytes[index..].starts_with(b"___") {
            let start = index + 3;
            for digits in [2_usize, 4, 6, 8] {
                let end = start + digits;
                let Some(hex) = bytes.get(start..end) else {
                    break;
                };
                if bytes.get(end) != Some(&b'_')
                    || !hex.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
                {
                    continue;
                }
                let Some(chunk) = unhex(hex) else { continue };
                if std::str::from_utf8(&chunk).is_ok() {
                    decoded.extend_from_slice(&chunk);
                    index = end + 1;
                    continue 'outer;
                }
            }
        }
        decoded.push(bytes[index]);
        index += 1;
    }
    String::from_utf8(decoded).unwrap_or_else(|_| encoded.to_owned())
}

fn unhex(hex: &[u8]) -> Option<Vec<u8>> {
    hex.chunks(2)
        .map(|pair| {
            let text = std::str::from_utf8(pair).ok()?;
            u8::from_str_radix(text, 16).ok()
        })
        .collect()
}

/// The SNS topic name of `topic`: `topic_prefix + topic`, plus `.fifo` for FIFO topics
/// (not encoded; see [`encode_topic`]).
pub fn topic_name(topic: &str, topic_prefix: &str, fifo: bool) -> String {
    let mut name = format!("{topic_prefix}{topic}");
    if fifo && !name.ends_with(".fifo") {
        name.push_str(".fifo");
    }
    name
}

/// The topic of a notification's `TopicArn`: its last segment, decoded, minus the prefix.
///
/// ```
/// use tomodachi_sqs::naming::topic_from_arn;
///
/// assert_eq!(topic_from_arn("arn:aws:sns:eu-west-1:123456789012:dev-a___2e_b", "dev-"), "a.b");
/// ```
pub fn topic_from_arn(topic_arn: &str, topic_prefix: &str) -> String {
    let last = topic_arn.rsplit(':').next().unwrap_or(topic_arn);
    let decoded = decode_topic(last);
    match decoded.strip_prefix(topic_prefix) {
        Some(rest) if !topic_prefix.is_empty() => rest.to_owned(),
        _ => decoded,
    }
}

/// The queue name tomodachi generates for a handler without `queue_name`.
///
/// Competing consumers share `sha256(encode_topic(topic))`; a non-competing handler gets
/// its own `sha256(encode_topic(topic) + handler_name + service_uuid)`. The
/// `queue_name_prefix` goes first and FIFO queues end with `.fifo`.
///
/// ```
/// use tomodachi_sqs::naming::auto_queue_name;
///
/// assert_eq!(
///     auto_queue_name("example-topic", "handler", "uuid-1", true, "", false),
///     "f853ced2cc64f4bcf57126e89dbbcb07bad57a592a7b4c365da34855dc972275"
/// );
/// ```
pub fn auto_queue_name(
    topic: &str,
    handler_name: &str,
    service_uuid: &str,
    competing: bool,
    queue_name_prefix: &str,
    fifo: bool,
) -> String {
    let encoded = encode_topic(topic);
    let mut hasher = Sha256::new();
    hasher.update(encoded.as_bytes());
    if !competing {
        hasher.update(handler_name.as_bytes());
        hasher.update(service_uuid.as_bytes());
    }
    let digest = hasher.finalize();
    let mut name = String::with_capacity(queue_name_prefix.len() + 69);
    name.push_str(queue_name_prefix);
    for byte in digest {
        let _ = write!(name, "{byte:02x}");
    }
    if fifo && !name.ends_with(".fifo") {
        name.push_str(".fifo");
    }
    name
}

/// `queue_name_prefix + queue_name` (tomodachi's `prefix_queue_name`).
pub fn prefix_queue_name(queue_name: &str, queue_name_prefix: &str) -> String {
    format!("{queue_name_prefix}{queue_name}")
}

/// The name of a queue from its URL (the last path segment).
pub fn queue_name_from_url(queue_url: &str) -> &str {
    queue_url.rsplit('/').next().unwrap_or(queue_url)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Constants computed with Python tomodachi 0.29 (`AWSSNSSQSTransport`).
    #[test]
    fn encode_and_decode_match_python() {
        let cases = [
            ("example-topic", "example-topic"),
            ("a.b c", "a___2e_b___20_c"),
            ("x.fifo", "x.fifo"),
            ("a.fifo.fifo", "a___2e_fifo.fifo"),
            ("å/ü€😀", "___c3a5____2f____c3bc____e282ac____f09f9880_"),
            ("foo.bar.fifo", "foo___2e_bar.fifo"),
            ("#*", "#*"),
            ("under_score", "under_score"),
        ];
        for (topic, encoded) in cases {
            assert_eq!(encode_topic(topic), encoded, "encode {topic}");
            assert_eq!(decode_topic(encoded), topic, "decode {encoded}");
        }
    }

    #[test]
    fn auto_queue_names_match_python() {
        assert_eq!(
            auto_queue_name("example-topic", "handler", "uuid-1", false, "", false),
            "d1a0a5a7eaf44da2d36ca458bbda6f93c3a76c07599acb62da1255eda194d9ac"
        );
        assert_eq!(
            auto_queue_name("example-topic", "handler", "uuid-1", true, "", false),
            "f853ced2cc64f4bcf57126e89dbbcb07bad57a592a7b4c365da34855dc972275"
        );
        assert_eq!(
            auto_queue_name("a.b", "handler", "uuid-1", false, "pre-", true),
            "pre-3752b55885a3065e602fbd9d6be724c2d884d253d0fb08089257305451014c9e.fifo"
        );
        assert_eq!(
            auto_queue_name("a.b", "handler", "uuid-1", true, "pre-", true),
            "pre-e70bf145fc74710c160d44625308350585d3cad6a3753e93394d94021848f1f2.fifo"
        );
        assert_eq!(
            auto_queue_name("", "handler", "uuid-1", true, "", false),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn topic_names_and_validation_match_python() {
        assert_eq!(topic_name("t", "tp-", true), "tp-t.fifo");
        assert_eq!(topic_name("t.fifo", "tp-", true), "tp-t.fifo");
        for ok in ["ok-topic", "ok.fifo", "fifo.fifo", "a.fofi"] {
            assert!(validate_topic_name(ok).is_ok(), "{ok}");
        }
        for bad in ["bad.topic", "bad topic"] {
            assert!(validate_topic_name(bad).is_err(), "{bad}");
        }
        let long = "x".repeat(257);
        assert_eq!(
            validate_topic_name(&long).unwrap_err().to_string(),
            format!("Topic name ({long}) is too long.")
        );
        assert_eq!(
            topic_from_arn("arn:aws:sns:us-east-1:123456789012:tp-a___2e_b", "tp-"),
            "a.b"
        );
        assert_eq!(
            topic_from_arn("arn:aws:sns:us-east-1:123456789012:other", "tp-"),
            "other"
        );
    }
}
