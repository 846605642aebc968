//! Tests of the configuration's layering, checks and redaction.

use std::path::Path;

use super::*;

fn env(pairs: &[(&str, &str)]) -> Sources {
    Sources {
        env: pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        ..Sources::default()
    }
}

#[test]
fn defaults_load() {
    let config = Config::load(&Sources::default()).unwrap();
    assert_eq!(config, Config::default());
    assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
}

#[test]
fn layers_override_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let toml_path = dir.path().join("confab.toml");
    std::fs::write(
        &toml_path,
        "listen = \"127.0.0.1:1111\"\n[auth]\nlockout_threshold = 3\nissuer = \"toml\"\n",
    )
    .unwrap();
    let dotenv_path = dir.path().join(".env");
    std::fs::write(
        &dotenv_path,
        "CONFAB_AUTH__ISSUER=dotenv\nCONFAB_LISTEN=127.0.0.1:2222\n",
    )
    .unwrap();
    let mut sources = env(&[("CONFAB_LISTEN", "127.0.0.1:3333"), ("UNRELATED", "x")]);
    sources.config_file = Some(toml_path);
    sources.dotenv_file = Some(dotenv_path);
    let config = Config::load(&sources).unwrap();
    assert_eq!(config.auth.lockout_threshold, 3);
    assert_eq!(config.auth.issuer, "dotenv");
    assert_eq!(config.listen.to_string(), "127.0.0.1:3333");

    sources.overrides.listen = Some("127.0.0.1:4444".parse().unwrap());
    let config = Config::load(&sources).unwrap();
    assert_eq!(config.listen.to_string(), "127.0.0.1:4444");
}

#[test]
fn unknown_keys_are_named() {
    let err = Config::load(&env(&[("CONFAB_AUTH__LOCKOUT_TRESHOLD", "3")])).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("lockout_treshold"), "{text}");

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("confab.toml");
    std::fs::write(&path, "[server]\nbody_limit = 5\n").unwrap();
    let sources = Sources {
        config_file: Some(path),
        ..Sources::default()
    };
    let text = Config::load(&sources).unwrap_err().to_string();
    assert!(text.contains("body_limit"), "{text}");
}

#[test]
fn secrets_from_files_and_aliases_are_redacted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db_url");
    std::fs::write(&path, "postgres://u:hunter2@localhost/db\n").unwrap();
    let config = Config::load(&env(&[("DATABASE_URL_FILE", path.to_str().unwrap())])).unwrap();
    assert_eq!(config.database_url(), "postgres://u:hunter2@localhost/db");
    assert!(!format!("{config:?}").contains("hunter2"));
    assert!(!config.to_redacted_toml().unwrap().contains("hunter2"));

    // The CONFAB_ spelling wins over the alias.
    let config = Config::load(&env(&[
        ("CONFAB_DATABASE__URL", "sqlite://b.db"),
        ("DATABASE_URL", "sqlite://a.db"),
    ]))
    .unwrap();
    assert_eq!(config.database_url(), "sqlite://b.db");
}

#[test]
fn redis_comes_from_redis_url_redacted_and_without_tls() {
    let config = Config::load(&env(&[("REDIS_URL", "redis://:hunter2@cache:6379/0")])).unwrap();
    assert_eq!(
        config.redis.url.as_deref(),
        Some("redis://:hunter2@cache:6379/0")
    );
    assert!(!format!("{config:?}").contains("hunter2"));
    assert!(!config.to_redacted_toml().unwrap().contains("hunter2"));
    for (url, says) in [
        ("rediss://cache:6380", "not built in"),
        ("http://cache:6379", "must start with redis://"),
    ] {
        let e = Config::load(&env(&[("REDIS_URL", url)]))
            .unwrap_err()
            .to_string();
        assert!(e.contains(says), "{url}: {e}");
    }
    let e = Config::load(&env(&[("CONFAB_REDIS__KEY_PREFIX", "a:b")]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("redis.key_prefix"), "{e}");
}

#[test]
fn sign_in_waits_must_grow_from_a_first_wait() {
    for (delay, longest) in [("0", "900"), ("901", "900")] {
        let text = Config::load(&env(&[
            ("CONFAB_AUTH__LOGIN_DELAY_SECS", delay),
            ("CONFAB_AUTH__LOCKOUT_DURATION_SECS", longest),
        ]))
        .unwrap_err()
        .to_string();
        assert!(text.contains("auth.login_delay_secs"), "{text}");
    }
}

#[test]
fn credentials_in_urls_are_redacted() {
    assert_eq!(
        redact_url("nats://user:hunter2@nats.internal:4222"),
        "nats://[redacted]@nats.internal:4222"
    );
    assert_eq!(
        redact_url("https://key:hunter2@llm.example/v1?x=@y"),
        "https://[redacted]@llm.example/v1?x=@y"
    );
    assert_eq!(
        redact_url("https://api.openai.com/v1"),
        "https://api.openai.com/v1"
    );
    assert_eq!(redact_url("not a url"), "not a url");

    let config = Config::load(&env(&[
        ("CONFAB_BUS__NATS_URL", "nats://user:hunter2@nats.internal:4222"),
        ("CONFAB_INFERENCE__PROVIDERS", r#"[{name = "up", kind = "openai", base_url = "https://u:hunter3@llm.example/v1", models = ["m"]}]"#),
    ]))
    .unwrap();
    // The values in force keep their credentials; every way of showing them does not.
    assert_eq!(
        config.bus.nats_url.as_deref(),
        Some("nats://user:hunter2@nats.internal:4222")
    );
    let shown = [format!("{config:?}"), config.to_redacted_toml().unwrap()];
    for text in shown {
        assert!(
            !text.contains("hunter2") && !text.contains("hunter3"),
            "{text}"
        );
        assert!(text.contains("[redacted]@nats.internal:4222"), "{text}");
        assert!(text.contains("[redacted]@llm.example/v1"), "{text}");
    }
}

#[test]
fn bad_values_fail_with_the_key() {
    let text = Config::load(&env(&[("CONFAB_LISTEN", "not-an-address")]))
        .unwrap_err()
        .to_string();
    assert!(text.contains("listen"), "{text}");
    let text = Config::load(&env(&[("CONFAB_AUTH__REGISTRATION", "sometimes")]))
        .unwrap_err()
        .to_string();
    assert!(text.contains("registration"), "{text}");
}

#[test]
fn pull_allow_lists_take_networks_and_host_names() {
    let mut config = Config::default();
    config.inference.pull_allow_private =
        vec!["10.0.0.0/8".into(), "::1".into(), "models.lan".into()];
    config.validate().unwrap();
    config
        .inference
        .pull_allow_private
        .push("http://models.lan".into());
    let text = config.validate().unwrap_err().to_string();
    assert!(
        text.contains("inference.pull_allow_private") && text.contains("http://models.lan"),
        "{text}"
    );
}

#[test]
fn chat_sampling_defaults_are_checked() {
    let config = Config::load(&env(&[("CONFAB_CHAT__DEFAULT_TEMPERATURE", "0.3")])).unwrap();
    assert!((config.chat.default_temperature - 0.3).abs() < 1e-9);
    for (key, value) in [
        ("CONFAB_CHAT__DEFAULT_TEMPERATURE", "2.5"),
        ("CONFAB_CHAT__TITLE_TEMPERATURE", "-1"),
        ("CONFAB_CHAT__DEFAULT_TOP_P", "0"),
        ("CONFAB_CHAT__TITLE_MAX_TOKENS", "0"),
    ] {
        let text = Config::load(&env(&[(key, value)])).unwrap_err().to_string();
        assert!(text.contains("chat.default_temperature"), "{key}: {text}");
    }
}

/// The documented example config must parse, name every key, and show the defaults.
#[test]
fn example_config_is_current() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../confab.example.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let example: toml::Table = toml::from_str(&text).unwrap();
    let defaults: toml::Table =
        toml::from_str(&Config::default().to_redacted_toml().unwrap()).unwrap();
    assert_eq!(
        example, defaults,
        "confab.example.toml differs from Config::default()"
    );
    let sources = Sources {
        config_file: Some(path),
        ..Sources::default()
    };
    assert_eq!(Config::load(&sources).unwrap(), Config::default());
}

#[test]
fn youtube_keys_come_from_the_seeds_names_and_stay_secret() {
    let config = Config::load(&env(&[
        ("YOUTUBE_API_KEY", "AIza-secret-key"),
        ("YOUTUBE_CREDENTIALS", r#"{"installed":{"client_id":"x"}}"#),
    ]))
    .unwrap();
    let youtube = &config.seo.youtube;
    assert_eq!(
        youtube.api_key.as_ref().map(Secret::expose),
        Some("AIza-secret-key")
    );
    assert!(youtube.credentials.is_some());
    assert!(!format!("{config:?}").contains("AIza-secret-key"));
    assert!(
        !config
            .to_redacted_toml()
            .unwrap()
            .contains("AIza-secret-key")
    );
}

#[test]
fn an_empty_well_known_variable_is_unset() {
    let config = Config::load(&env(&[
        ("YOUTUBE_API_KEY", ""),
        ("YOUTUBE_CREDENTIALS", ""),
        ("REDIS_URL", ""),
        ("DATABASE_URL", ""),
    ]))
    .unwrap();
    assert_eq!(config, Config::default());
}

#[test]
fn seo_settings_are_checked() {
    for (key, value, named) in [
        ("CONFAB_SEO__TEMPERATURE", "3", "seo.temperature"),
        (
            "CONFAB_SEO__GENERATIONS_PER_USER",
            "0",
            "seo.generations_per_user",
        ),
        (
            "CONFAB_SEO__SCORE_WEIGHTS__TITLE",
            "-1",
            "seo.score_weights",
        ),
        (
            "CONFAB_SEO__YOUTUBE__QUOTA_PROFILE",
            "2019",
            "seo.youtube.quota_profile",
        ),
        (
            "CONFAB_SEO__YOUTUBE__API_BASE",
            "ftp://x",
            "seo.youtube.api_base",
        ),
    ] {
        let text = Config::load(&env(&[(key, value)])).unwrap_err().to_string();
        assert!(text.contains(named), "{key}: {text}");
    }
}

#[test]
fn gateway_upstreams_and_limits_are_checked_by_key() {
    let mut config = Config::default();
    config.gateway.upstreams.auth = vec!["http://127.0.0.1:9001".into()];
    config.gateway.upstreams.inference = vec!["dns://confab-inference:8080".into()];
    config.validate().unwrap();
    assert_eq!(
        InstanceEntry::parse("dns://confab-inference:8080").unwrap(),
        InstanceEntry::Dns {
            host: "confab-inference".into(),
            port: 8080
        }
    );
    assert_eq!(
        InstanceEntry::parse("http://127.0.0.1:9001/").unwrap(),
        InstanceEntry::Static {
            authority: "127.0.0.1:9001".into(),
            tls: false
        }
    );
    assert_eq!(
        InstanceEntry::parse("https://chat.internal:8443").unwrap(),
        InstanceEntry::Static {
            authority: "chat.internal:8443".into(),
            tls: true
        }
    );
    for bad in [
        "ftp://x:1",
        "https://x:1/path",
        "http://x:1/path",
        "dns://x",
        "dns://:80",
        "http://u:p@x:1",
    ] {
        let mut config = Config::default();
        config.gateway.upstreams.chat = vec![bad.into()];
        let text = config.validate().unwrap_err().to_string();
        assert!(text.contains("gateway.upstreams.chat"), "{bad}: {text}");
    }
    for (key, value, named) in [
        (
            "CONFAB_GATEWAY__BREAKER_OPEN_MS",
            "40000",
            "gateway.breaker_open_ms",
        ),
        (
            "CONFAB_GATEWAY__BREAKER_ERROR_RATE",
            "2",
            "gateway.breaker_error_rate",
        ),
        ("CONFAB_GATEWAY__IP_BURST", "0", "gateway.ip_burst"),
        ("CONFAB_GATEWAY__THREADS", "257", "gateway.threads"),
        (
            "CONFAB_GATEWAY__CONNECT_TIMEOUT_MS",
            "0",
            "gateway.connect_timeout_ms",
        ),
        ("CONFAB_GATEWAY__UPSTREAMS__VIDEO", "[]", "video"),
    ] {
        let text = Config::load(&env(&[(key, value)])).unwrap_err().to_string();
        assert!(text.contains(named), "{key}: {text}");
    }
    let threads = |value: &str| {
        Config::load(&env(&[("CONFAB_GATEWAY__THREADS", value)]))
            .unwrap()
            .gateway
            .serving_threads()
    };
    assert_eq!(threads("3"), 3);
    assert!(threads("0") >= 1, "0 is one per core");
}

#[test]
fn tls_keys_come_in_pairs_and_versions_read_from_the_environment() {
    let config = Config::load(&env(&[
        ("CONFAB_SERVER__TLS__CERT", "/tls/cert.pem"),
        ("CONFAB_SERVER__TLS__KEY", "/tls/key.pem"),
        ("CONFAB_SERVER__TLS__MIN_VERSION", "1.2"),
    ]))
    .unwrap();
    assert!(config.server.tls.enabled());
    assert_eq!(config.server.tls.min_version, TlsVersion::V1_2);
    assert_eq!(Config::default().server.tls.min_version, TlsVersion::V1_3);
    let err = Config::load(&env(&[("CONFAB_SERVER__TLS__CERT", "/tls/cert.pem")]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("server.tls.key"), "{err}");
    let err = Config::load(&env(&[("CONFAB_SERVER__TLS__MIN_VERSION", "1.1")]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("min_version"), "{err}");
}

#[test]
fn require_tls_refuses_plain_service_urls() {
    let err = Config::load(&env(&[
        ("CONFAB_SERVICES__REQUIRE_TLS", "true"),
        ("CONFAB_SERVICES__AUTH_URL", "http://auth:8080"),
    ]))
    .unwrap_err()
    .to_string();
    assert!(err.contains("services.auth_url"), "{err}");
    let err = Config::load(&env(&[
        ("CONFAB_SERVICES__REQUIRE_TLS", "true"),
        ("CONFAB_GATEWAY__UPSTREAMS__CHAT", "[\"http://chat:8080\"]"),
    ]))
    .unwrap_err()
    .to_string();
    assert!(err.contains("gateway.upstreams.chat"), "{err}");
    let config = Config::load(&env(&[
        ("CONFAB_SERVICES__REQUIRE_TLS", "true"),
        ("CONFAB_SERVICES__AUTH_URL", "https://auth:8443"),
        ("CONFAB_SERVICES__CA_FILE", "/tls/ca.pem"),
        ("CONFAB_GATEWAY__UPSTREAMS__CHAT", "[\"https://chat:8443\"]"),
    ]))
    .unwrap();
    assert!(config.services.require_tls);
    assert_eq!(
        config.services.ca_file.as_deref(),
        Some(Path::new("/tls/ca.pem"))
    );
    let err = Config::load(&env(&[
        ("CONFAB_SERVICES__REQUIRE_TLS", "true"),
        ("CONFAB_GATEWAY__UPSTREAMS__CHAT", "[\"dns://chat:8443\"]"),
    ]))
    .unwrap_err()
    .to_string();
    assert!(err.contains("https://host:port"), "{err}");
}

#[test]
fn the_standard_opentelemetry_variables_configure_traces() {
    let config = Config::load(&env(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://otel-collector:4318"),
        ("OTEL_SERVICE_NAME", "confab-edge"),
    ]))
    .unwrap();
    assert_eq!(
        config.telemetry.otlp_endpoint.as_deref(),
        Some("http://otel-collector:4318")
    );
    assert_eq!(
        config.telemetry.service_name.as_deref(),
        Some("confab-edge")
    );
    // Empty, as Compose passes an unset one: tracing stays off.
    let config = Config::load(&env(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "")])).unwrap();
    assert_eq!(config.telemetry, TelemetryConfig::default());
    for (key, value, named) in [
        (
            "CONFAB_TELEMETRY__OTLP_ENDPOINT",
            "otel-collector:4318",
            "telemetry.otlp_endpoint",
        ),
        (
            "CONFAB_TELEMETRY__SAMPLE_RATIO",
            "1.5",
            "telemetry.sample_ratio",
        ),
        (
            "OTEL_SERVICE_NAME",
            &"x".repeat(200),
            "telemetry.service_name",
        ),
    ] {
        let text = Config::load(&env(&[(key, value)])).unwrap_err().to_string();
        assert!(text.contains(named), "{key}: {text}");
    }
}

#[test]
fn a_read_replica_follows_a_postgres_primary() {
    let config = Config::load(&env(&[
        ("DATABASE_URL", "postgres://u:hunter2@primary/confab"),
        ("DATABASE_READ_URL", "postgres://u:hunter2@replica/confab"),
    ]))
    .unwrap();
    assert_eq!(
        config.database.read_url.as_ref().map(Secret::expose),
        Some("postgres://u:hunter2@replica/confab")
    );
    assert!(!format!("{config:?}").contains("hunter2"));
    assert!(!config.to_redacted_toml().unwrap().contains("hunter2"));

    for (primary, replica, says) in [
        (
            "postgres://primary/confab",
            "sqlite://replica.db",
            "must be a postgres:// URL",
        ),
        (
            "sqlite://primary.db",
            "postgres://replica/confab",
            "needs database.url to be PostgreSQL",
        ),
    ] {
        let text = Config::load(&env(&[
            ("DATABASE_URL", primary),
            ("CONFAB_DATABASE__READ_URL", replica),
        ]))
        .unwrap_err()
        .to_string();
        assert!(text.contains("database.read_url"), "{text}");
        assert!(text.contains(says), "{text}");
    }
}

#[test]
fn storage_takes_the_aws_names_and_checks_what_it_is_given() {
    let config = Config::load(&env(&[
        ("CONFAB_STORAGE__BACKEND", "s3"),
        ("CONFAB_STORAGE__S3__BUCKET", "confab-blobs"),
        ("CONFAB_STORAGE__S3__PREFIX", "prod/eu"),
        ("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE"),
        ("AWS_SECRET_ACCESS_KEY", "very-secret"),
        ("AWS_REGION", "eu-west-1"),
        ("AWS_ENDPOINT_URL", "http://127.0.0.1:9000"),
    ]))
    .unwrap();
    let s3 = &config.storage.s3;
    assert_eq!(config.storage.backend, StorageBackend::S3);
    assert_eq!(s3.bucket.as_deref(), Some("confab-blobs"));
    assert_eq!(s3.region, "eu-west-1");
    assert_eq!(s3.endpoint.as_deref(), Some("http://127.0.0.1:9000"));
    assert_eq!(
        s3.secret_access_key.as_ref().unwrap().expose(),
        "very-secret"
    );
    let shown = format!("{config:?}");
    assert!(!shown.contains("very-secret"), "{shown}");
    assert_eq!(
        Config::default().storage.local_dir(Path::new("/data")),
        Path::new("/data/blobs")
    );
    // Empty well-known names (Compose's `${AWS_REGION:-}`) are unset.
    let config = Config::load(&env(&[("AWS_REGION", ""), ("AWS_ENDPOINT_URL", "")])).unwrap();
    assert_eq!(config, Config::default());
    for (pairs, named) in [
        (
            &[("CONFAB_STORAGE__BACKEND", "s3")][..],
            "storage.s3.bucket",
        ),
        (
            &[("CONFAB_STORAGE__S3__BUCKET", "Bad_Bucket")][..],
            "storage.s3.bucket",
        ),
        (
            &[("CONFAB_STORAGE__S3__PREFIX", "/a/../b")][..],
            "storage.s3.prefix",
        ),
        (
            &[("AWS_ENDPOINT_URL", "ftp://x")][..],
            "storage.s3.endpoint",
        ),
        (
            &[("AWS_ACCESS_KEY_ID", "only-the-id")][..],
            "storage.s3.access_key_id",
        ),
        (&[("CONFAB_STORAGE__BACKEND", "ftp")][..], "storage.backend"),
    ] {
        let error = Config::load(&env(pairs)).unwrap_err().to_string();
        assert!(error.contains(named), "{pairs:?}: {error}");
    }
}
