use super::legacy::LEGACY_KEYS;
use super::tree::{env_pairs, parse_bool_word};
use super::*;
use serde_json::json;
use std::ffi::OsString;

#[test]
fn health_defaults() {
    let options = Options::default();
    assert!(options.health.enabled);
    assert_eq!(options.health.port, None);
    assert_eq!(
        options.get("health").unwrap(),
        json!({
            "enabled": true,
            "live_path": "/health/live",
            "ready_path": "/health/ready",
            "port": null,
            "host": "0.0.0.0",
            "access_log": false,
            "liveness_timeout_seconds": 10
        })
    );
}

#[test]
fn unknown_keys_are_errors() {
    let mut options = Options::default();
    for key in [
        "",
        "nope",
        "health.nope",
        "health.port.x",
        "health..x",
        "watcher.ignored_dirs",
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
    let err = options
        .set("health.liveness_timeout_seconds", "x")
        .unwrap_err();
    match err {
        OptionsError::InvalidValue { key, expected, .. } => {
            assert_eq!(key, "health.liveness_timeout_seconds");
            assert!(expected.contains("integer"));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(options, Options::default());
    options
        .set("health", json!({"ready_path": "/ready"}))
        .unwrap();
    assert_eq!(options.health.ready_path, "/ready");
    assert_eq!(options.health.live_path, "/health/live");
    assert!(options.set("health", json!({"bogus": 1})).is_err());
    options.set_from_str("health.port", "9701").unwrap();
    assert_eq!(options.health.port, Some(9701));
}

#[test]
fn the_tree_round_trips_through_serde_with_deny_unknown_fields() {
    let value = serde_json::to_value(Options::default()).unwrap();
    let back: Options = serde_json::from_value(value).unwrap();
    assert_eq!(back, Options::default());
    let partial: Options = serde_json::from_value(json!({"health": {}})).unwrap();
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

#[cfg(feature = "http")]
#[test]
fn env_lists_take_json_or_commas() {
    let mut options = Options::default();
    options
        .apply_env([
            (
                "TOMODACHI_HTTP_REAL_IP_FROM",
                r#"["10.0.0.0/8", "127.0.0.1"]"#,
            ),
            ("TOMODACHI_LOGGER", "json"),
            ("OTHER", "x"),
        ])
        .unwrap();
    assert_eq!(options.http.real_ip_from, ["10.0.0.0/8", "127.0.0.1"]);
    options
        .apply_env([("TOMODACHI_HTTP_REAL_IP_FROM", " 10.0.0.0/8 , ::1,, ")])
        .unwrap();
    assert_eq!(options.http.real_ip_from, ["10.0.0.0/8", "::1"]);
    options
        .apply_env([("TOMODACHI_HTTP_REAL_IP_FROM", "")])
        .unwrap();
    assert!(options.http.real_ip_from.is_empty());
}

#[test]
fn a_bad_env_value_names_the_variable_and_changes_nothing() {
    let mut options = Options::default();
    let err = options
        .apply_env([
            ("TOMODACHI_HEALTH_READY_PATH", "/ready"),
            ("TOMODACHI_HEALTH_LIVENESS_TIMEOUT_SECONDS", "soon"),
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
            assert_eq!(var, "TOMODACHI_HEALTH_LIVENESS_TIMEOUT_SECONDS");
            assert_eq!(key, "health.liveness_timeout_seconds");
            assert_eq!(value, "soon");
            assert!(expected.contains("integer"));
        }
        other => panic!("{other:?}"),
    }
    assert!(
        err.to_string()
            .contains("TOMODACHI_HEALTH_LIVENESS_TIMEOUT_SECONDS")
    );
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
        assert!(matches!(err, OptionsError::NotUnicode { var } if var == "TOMODACHI_HTTP_HOST"));
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
    assert!(keys.contains(&"health.ready_path".to_owned()));
    assert!(keys.contains(&"health.port".to_owned()));
    assert!(!keys.contains(&"health".to_owned()));
    assert!(keys.contains(&"envelope.max_inflated_size".to_owned()));
}

#[test]
fn envelope_inflate_cap_from_env_and_key() {
    let mut options = Options::default();
    assert_eq!(
        options.get("envelope.max_inflated_size").unwrap(),
        json!(64 * 1024 * 1024)
    );
    assert_eq!(
        Options::env_var("envelope.max_inflated_size"),
        "TOMODACHI_ENVELOPE_MAX_INFLATED_SIZE"
    );
    options
        .apply_env([("TOMODACHI_ENVELOPE_MAX_INFLATED_SIZE", "1048576")])
        .unwrap();
    assert_eq!(options.envelope.max_inflated_size, 1 << 20);
    let err = options
        .apply_env([("TOMODACHI_ENVELOPE_MAX_INFLATED_SIZE", "-1")])
        .unwrap_err();
    assert!(err.to_string().contains("an integer"), "{err}");
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

#[cfg(all(feature = "http", feature = "sqs"))]
#[test]
fn legacy_keys_set_and_get_their_replacements() {
    let mut options = Options::default();
    options.set("http.max_upload_size", "10M").unwrap();
    assert_eq!(
        options.http.client_max_size,
        tomodachi_http::ByteSize::Text("10M".into())
    );
    options.set("aws.region_name", "eu-west-1").unwrap();
    assert_eq!(
        options.aws_sns_sqs.region_name.as_deref(),
        Some("eu-west-1")
    );
    options
        .set("aws_sns_sqs.aws_endpoint_url", "http://127.0.0.1:4566")
        .unwrap();
    for url in [
        &options.aws_endpoint_urls.sns,
        &options.aws_endpoint_urls.sqs,
        &options.aws_endpoint_urls.sts,
    ] {
        assert_eq!(url.as_deref(), Some("http://127.0.0.1:4566"));
    }
    assert_eq!(
        options.get("aws.sqs_endpoint_url").unwrap(),
        json!("http://127.0.0.1:4566")
    );
    assert!(options.set("aws.kms_data_key_reuse_period", "x").is_err());
    assert!(matches!(
        options.get("aws.nope"),
        Err(OptionsError::UnknownKey { .. })
    ));
}

#[test]
fn legacy_targets_exist() {
    let keys = Options::keys();
    let (http, sqs) = (cfg!(feature = "http"), cfg!(feature = "sqs"));
    for (legacy, targets) in LEGACY_KEYS {
        assert!(!keys.contains(&(*legacy).to_owned()), "{legacy}");
        for target in *targets {
            let feature_on = if target.starts_with("http.") {
                http
            } else {
                sqs
            };
            assert_eq!(keys.contains(&(*target).to_owned()), feature_on, "{target}");
        }
    }
}

/// Every key of Python tomodachi's `Options` (`options/definitions.py`), in its order,
/// and tomodachi-rs's own.
#[cfg(all(feature = "http", feature = "amqp", feature = "sqs"))]
#[test]
fn keys_are_python_tomodachis() {
    let expected = [
        "http.port",
        "http.host",
        "http.reuse_port",
        "http.content_type",
        "http.charset",
        "http.client_max_size",
        "http.termination_grace_period_seconds",
        "http.access_log",
        "http.real_ip_from",
        "http.real_ip_header",
        "http.keepalive_timeout",
        "http.keepalive_expiry",
        "http.max_keepalive_time",
        "http.max_keepalive_requests",
        "http.server_header",
        "aws_sns_sqs.region_name",
        "aws_sns_sqs.aws_access_key_id",
        "aws_sns_sqs.aws_secret_access_key",
        "aws_sns_sqs.topic_prefix",
        "aws_sns_sqs.queue_name_prefix",
        "aws_sns_sqs.sns_kms_master_key_id",
        "aws_sns_sqs.sqs_kms_master_key_id",
        "aws_sns_sqs.sqs_kms_data_key_reuse_period",
        "aws_sns_sqs.queue_policy",
        "aws_sns_sqs.wildcard_queue_policy",
        "aws_endpoint_urls.sns",
        "aws_endpoint_urls.sqs",
        "aws_endpoint_urls.sts",
        "amqp.host",
        "amqp.port",
        "amqp.login",
        "amqp.password",
        "amqp.exchange_name",
        "amqp.routing_key_prefix",
        "amqp.queue_name_prefix",
        "amqp.virtualhost",
        "amqp.ssl",
        "amqp.heartbeat",
        "amqp.queue_ttl",
        "amqp.qos.queue_prefetch_count",
        "amqp.qos.global_prefetch_count",
        // tomodachi-rs's own: coalesced acks.
        "amqp.ack.batch_size",
        "amqp.ack.max_delay_ms",
        "health.enabled",
        "health.live_path",
        "health.ready_path",
        "health.port",
        "health.host",
        "health.access_log",
        "health.liveness_timeout_seconds",
        // tomodachi-rs's own: the inflate cap of compressed envelope data.
        "envelope.max_inflated_size",
    ];
    let keys = Options::keys();
    let mut expected: Vec<String> = expected.iter().map(|k| (*k).to_owned()).collect();
    expected.sort();
    assert_eq!(keys, expected);
}
