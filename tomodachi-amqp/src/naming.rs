//! Routing-key encoding and queue-name derivation, byte for byte as Python tomodachi does
//! them, so that a Rust and a Python service configured alike bind the same keys and
//! consume from the same queues.

use std::fmt::Write as _;

use sha2::{Digest, Sha256};

/// Whether tomodachi keeps `c` as it is in a routing key.
///
/// Kept: ASCII letters and digits and `_*#,;.:<>!"%&/()[]{}\=?'^`~+|@$ -`.
const fn is_kept(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(
            c,
            '_' | '*'
                | '#'
                | ','
                | ';'
                | '.'
                | ':'
                | '<'
                | '>'
                | '!'
                | '"'
                | '%'
                | '&'
                | '/'
                | '('
                | ')'
                | '['
                | ']'
                | '{'
                | '}'
                | '\\'
                | '='
                | '?'
                | '\''
                | '^'
                | '`'
                | '~'
                | '+'
                | '|'
                | '@'
                | '$'
                | ' '
                | '-'
        )
}

/// Encodes a routing key the way tomodachi does before binding or publishing.
///
/// Every character outside the kept set (ASCII letters and digits and
/// `` _*#,;.:<>!"%&/()[]{}\=?'^`~+|@$ - ``) becomes `___` + the lowercase hex of its
/// UTF-8 bytes + `_`.
///
/// ```
/// use tomodachi_amqp::encode_routing_key;
///
/// assert_eq!(encode_routing_key("order.*"), "order.*");
/// assert_eq!(encode_routing_key("åäö"), "___c3a5____c3a4____c3b6_");
/// ```
pub fn encode_routing_key(routing_key: &str) -> String {
    if routing_key.chars().all(is_kept) {
        return routing_key.to_owned();
    }
    let mut out = String::with_capacity(routing_key.len() * 2);
    let mut utf8 = [0_u8; 4];
    for c in routing_key.chars() {
        if is_kept(c) {
            out.push(c);
        } else {
            out.push_str("___");
            for byte in c.encode_utf8(&mut utf8).as_bytes() {
                // Writing to a String cannot fail.
                let _ = write!(out, "{byte:02x}");
            }
            out.push('_');
        }
    }
    out
}

/// Reverses [`encode_routing_key`] (tomodachi's `decode_routing_key`).
///
/// Sequences `___` + 2, 4, 6 or 8 lowercase hex digits + `_` that decode to UTF-8 are
/// replaced by their text; anything else is kept as it is.
///
/// ```
/// use tomodachi_amqp::{decode_routing_key, encode_routing_key};
///
/// assert_eq!(decode_routing_key(&encode_routing_key("emoji😀.x")), "emoji😀.x");
/// ```
pub fn decode_routing_key(encoded: &str) -> String {
    let bytes = encoded.as_bytes();
    let mut out = String::with_capacity(encoded.len());
    let mut i = 0;
    let mut copied = 0;
    while i < bytes.len() {
        if bytes[i..].starts_with(b"___")
            && let Some((text, len)) = decode_escape(&bytes[i + 3..])
        {
            out.push_str(&encoded[copied..i]);
            out.push_str(&text);
            i += 3 + len;
            copied = i;
            continue;
        }
        i += 1;
    }
    out.push_str(&encoded[copied..]);
    out
}

/// Decodes `hex…_` at the start of `rest` (after `___`), preferring the shortest match as
/// Python's regex alternation does. Returns the text and the bytes consumed.
fn decode_escape(rest: &[u8]) -> Option<(String, usize)> {
    let hex_len = rest
        .iter()
        .take_while(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        .count();
    for digits in [2, 4, 6, 8] {
        if hex_len < digits || rest.get(digits) != Some(&b'_') {
            continue;
        }
        let raw: Vec<u8> = rest[..digits]
            .chunks(2)
            .map(|pair| (hex_value(pair[0]) << 4) | hex_value(pair[1]))
            .collect();
        return String::from_utf8(raw).ok().map(|text| (text, digits + 1));
    }
    None
}

const fn hex_value(digit: u8) -> u8 {
    match digit {
        b'0'..=b'9' => digit - b'0',
        _ => digit - b'a' + 10,
    }
}

/// Lowercase hex sha256 of the UTF-8 bytes of the concatenated parts.
fn sha256_hex(parts: &[&str]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part.as_bytes());
    }
    let digest = hasher.finalize();
    let mut out = String::with_capacity(64);
    for byte in digest {
        let _ = write!(out, "{byte:02x}");
    }
    out
}

/// The queue name tomodachi derives when a binding names no queue.
///
/// * competing: `queue_name_prefix + sha256(encode_routing_key(routing_key))`: every
///   instance of the service shares one queue;
/// * non-competing: `queue_name_prefix + sha256(encode_routing_key(routing_key) +
///   handler_name + service_uuid)`: one queue per handler and instance.
///
/// `routing_key` is the binding's key *without* `routing_key_prefix`, as in tomodachi.
///
/// ```
/// use tomodachi_amqp::auto_queue_name;
///
/// assert_eq!(
///     auto_queue_name("example.topic", true, "handler", "any-uuid", "pfx-"),
///     "pfx-6db12a9d302beb382083af15edb16743a71606430dccfd286ab4dd577289d175",
/// );
/// ```
pub fn auto_queue_name(
    routing_key: &str,
    competing: bool,
    handler_name: &str,
    service_uuid: &str,
    queue_name_prefix: &str,
) -> String {
    let encoded = encode_routing_key(routing_key);
    let hash = if competing {
        sha256_hex(&[&encoded])
    } else {
        sha256_hex(&[&encoded, handler_name, service_uuid])
    };
    format!("{queue_name_prefix}{hash}")
}

/// The key a queue is bound with and a message is published with:
/// `encode_routing_key(routing_key_prefix + routing_key)`.
///
/// ```
/// assert_eq!(tomodachi_amqp::wire_routing_key("dev.", "order.paid"), "dev.order.paid");
/// ```
pub fn wire_routing_key(routing_key_prefix: &str, routing_key: &str) -> String {
    if routing_key_prefix.is_empty() {
        encode_routing_key(routing_key)
    } else {
        encode_routing_key(&format!("{routing_key_prefix}{routing_key}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `(input, AmqpTransport.encode_routing_key(input))` from Python tomodachi 0.29.0.
    const ENCODED: &[(&str, &str)] = &[
        ("example.topic", "example.topic"),
        ("order.*", "order.*"),
        ("a.#", "a.#"),
        ("hello world", "hello world"),
        ("åäö.ü", "___c3a5____c3a4____c3b6_.___c3bc_"),
        ("tab\there", "tab___09_here"),
        ("emoji😀x", "emoji___f09f9880_x"),
        (
            "a/b:c=d?e'f^g`h~i+j|k@l$m -n",
            "a/b:c=d?e'f^g`h~i+j|k@l$m -n",
        ),
        ("sl\\ash", "sl\\ash"),
        ("x\ny", "x___0a_y"),
        ("éè", "___c3a9____c3a8_"),
        ("ß", "___c39f_"),
        ("中文", "___e4b8ad____e69687_"),
        ("\u{0}\u{7f}", "___00____7f_"),
        ("<>!\"%&()[]{},;", "<>!\"%&()[]{},;"),
    ];

    #[test]
    fn encodes_like_tomodachi() {
        for (input, expected) in ENCODED {
            assert_eq!(encode_routing_key(input), *expected, "encoding {input:?}");
        }
    }

    #[test]
    fn decode_reverses_encode() {
        for (input, encoded) in ENCODED {
            assert_eq!(decode_routing_key(encoded), *input, "decoding {encoded:?}");
        }
    }

    #[test]
    fn decode_keeps_what_is_not_an_escape() {
        assert_eq!(decode_routing_key("a___zz_b"), "a___zz_b");
        assert_eq!(decode_routing_key("___"), "___");
        assert_eq!(decode_routing_key("x___0a"), "x___0a");
        // invalid UTF-8 (a lone continuation byte) stays encoded
        assert_eq!(decode_routing_key("___80_"), "___80_");
    }

    /// `AmqpTransport.get_queue_name(encode_routing_key(rk), func, uuid, competing, ctx)`
    /// from Python tomodachi 0.29.0: `(routing_key, handler, uuid, competing, prefix, name)`.
    const QUEUES: &[(&str, &str, &str, bool, &str, &str)] = &[
        (
            "example.topic",
            "handler",
            "2d4e3a08-4c3b-4b6f-8a3a-0c0f6b7a0d11",
            false,
            "",
            "9e11c8be60e392882947a61a5cc798c1e7ceffe551add248d4d025bcd79a222d",
        ),
        (
            "example.topic",
            "handler",
            "2d4e3a08-4c3b-4b6f-8a3a-0c0f6b7a0d11",
            true,
            "",
            "6db12a9d302beb382083af15edb16743a71606430dccfd286ab4dd577289d175",
        ),
        (
            "example.topic",
            "handler",
            "2d4e3a08-4c3b-4b6f-8a3a-0c0f6b7a0d11",
            false,
            "pfx-",
            "pfx-9e11c8be60e392882947a61a5cc798c1e7ceffe551add248d4d025bcd79a222d",
        ),
        (
            "example.topic",
            "handler",
            "2d4e3a08-4c3b-4b6f-8a3a-0c0f6b7a0d11",
            true,
            "pfx-",
            "pfx-6db12a9d302beb382083af15edb16743a71606430dccfd286ab4dd577289d175",
        ),
        (
            "åäö.#",
            "on_event",
            "uuid-1",
            false,
            "",
            "7bbc03091b501ef27dbb1052e8b0efb21abbef3595d74458adec533784062aec",
        ),
        (
            "åäö.#",
            "on_event",
            "uuid-1",
            true,
            "q.",
            "q.74ec5eb959e3407975ce3fb53b58212aae3be9613e71ae485fc0fc40e57b1731",
        ),
    ];

    #[test]
    fn queue_names_like_tomodachi() {
        for (rk, handler, uuid, competing, prefix, expected) in QUEUES {
            assert_eq!(
                auto_queue_name(rk, *competing, handler, uuid, prefix),
                *expected,
                "queue name of {rk:?} competing={competing}"
            );
        }
    }

    #[test]
    fn wire_key_prefixes_before_encoding() {
        assert_eq!(wire_routing_key("", "a.b"), "a.b");
        assert_eq!(wire_routing_key("dev.", "ä"), "dev.___c3a4_");
        assert_eq!(wire_routing_key("ö.", "a"), "___c3b6_.a");
    }
}
