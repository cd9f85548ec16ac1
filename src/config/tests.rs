use secrecy::ExposeSecret as _;

use super::*;
use crate::cli::{
    DEFAULT_COMPAT_FEED_CAP, DEFAULT_MEDIA_MAX_BYTES, DEFAULT_TIMELINE_WRITE_DELAY_MS,
};

/// Parses and validates, as `main` does. The numeric ranges are refused
/// while parsing (tested in `cli`); what is refused here starts with the
/// variable's name.
fn parse(args: &[&str]) -> Result<Settings, ConfigError> {
    let mut all = vec!["rookery"];
    all.extend_from_slice(args);
    Settings::from_args(Cli::try_parse_from(all).expect("parses").settings)
}

#[test]
fn database_url_is_required_and_named() {
    // The environment may carry DATABASE_URL; an explicit empty flag wins over it.
    let err = parse(&["--database-url", ""]).unwrap_err();
    assert!(err.to_string().contains("DATABASE_URL"), "{err}");
}

#[test]
fn short_jwt_secret_is_refused() {
    let err = parse(&["--database-url", "postgres://x/y", "--jwt-secret", "short"]).unwrap_err();
    assert!(err.to_string().starts_with("JWT_SECRET"), "{err}");
}

#[test]
fn missing_jwt_secret_is_generated_and_flagged() {
    let s = parse(&["--database-url", "postgres://x/y", "--jwt-secret", ""]).unwrap();
    assert!(s.auth.jwt.generated);
    let secret = s.auth.jwt.secret.expose_secret();
    assert!(secret.len() >= MIN_JWT_SECRET_BYTES, "{secret}");
    let again = parse(&["--database-url", "postgres://x/y", "--jwt-secret", ""]).unwrap();
    assert_ne!(secret, again.auth.jwt.secret.expose_secret());
}

#[test]
fn malformed_redis_url_is_named() {
    let err = parse(&[
        "--database-url",
        "postgres://x/y",
        "--redis-url",
        "http://nope",
    ])
    .unwrap_err();
    assert!(err.to_string().starts_with("REDIS_URL"), "{err}");
}

#[test]
fn bad_log_filter_is_named() {
    let err = parse(&["--database-url", "postgres://x/y", "--log", "=,=[["]).unwrap_err();
    assert!(err.to_string().starts_with("ROOKERY_LOG"), "{err}");
}

#[test]
fn numbers_land_in_their_group_with_their_units() {
    let s = parse(&["--database-url", "postgres://x/y"]).unwrap();
    assert_eq!(
        s.realtime.timeline_write_delay,
        Duration::from_millis(DEFAULT_TIMELINE_WRITE_DELAY_MS)
    );
    assert_eq!(s.http.compat_feed_cap, DEFAULT_COMPAT_FEED_CAP);
    let s = parse(&[
        "--database-url",
        "postgres://x/y",
        "--refresh-token-ttl-days",
        "2",
        "--supervisor-batch-timeout",
        "7",
        "--db-acquire-timeout",
        "3",
    ])
    .unwrap();
    assert_eq!(s.auth.refresh_token_ttl, Duration::from_secs(2 * 24 * 3600));
    assert_eq!(s.realtime.supervisor_batch_timeout, Duration::from_secs(7));
    assert_eq!(s.database.acquire_timeout, Duration::from_secs(3));
}

#[test]
fn hash_concurrency_defaults_to_the_cores() {
    let s = parse(&["--database-url", "postgres://x/y"]).unwrap();
    let cores = std::thread::available_parallelism().unwrap().get();
    assert_eq!(s.auth.hash_concurrency, cores.min(MAX_HASH_CONCURRENCY));
    let s = parse(&[
        "--database-url",
        "postgres://x/y",
        "--hash-concurrency",
        "3",
    ])
    .unwrap();
    assert_eq!(s.auth.hash_concurrency, 3);
}

#[test]
fn media_defaults_to_a_local_directory() {
    let s = parse(&["--database-url", "postgres://x/y", "--s3-bucket", ""]).unwrap();
    assert_eq!(s.media.max_bytes, DEFAULT_MEDIA_MAX_BYTES);
    assert!(matches!(s.media.storage, StorageSettings::Local { .. }));
}

#[test]
fn s3_needs_credentials_named() {
    let err = parse(&[
        "--database-url",
        "postgres://x/y",
        "--s3-bucket",
        "media",
        "--s3-access-key",
        "",
    ])
    .unwrap_err();
    assert!(err.to_string().starts_with("S3_ACCESS_KEY"), "{err}");
}

#[test]
fn s3_settings_are_parsed() {
    let s = parse(&[
        "--database-url",
        "postgres://x/y",
        "--s3-bucket",
        "media",
        "--s3-access-key",
        "ak",
        "--s3-secret-key",
        "sk",
        "--s3-endpoint",
        "http://minio:9000/",
        "--s3-path-style",
        "false",
        "--s3-public-url",
        "",
    ])
    .unwrap();
    let StorageSettings::S3(s3) = s.media.storage else {
        panic!("expected S3 storage");
    };
    assert_eq!(s3.endpoint.as_deref(), Some("http://minio:9000"));
    assert!(!s3.path_style);
    assert!(s3.public_url.is_none());
}

#[test]
fn bad_public_url_is_named() {
    let err = parse(&[
        "--database-url",
        "postgres://x/y",
        "--public-url",
        "example.com",
    ])
    .unwrap_err();
    assert!(err.to_string().starts_with("ROOKERY_PUBLIC_URL"), "{err}");
}

#[test]
fn cors_origins_are_a_list_any_or_nothing() {
    let cors = |value: &str| {
        parse(&["--database-url", "postgres://x/y", "--cors-origins", value]).map(|s| s.http.cors)
    };
    assert_eq!(cors("").unwrap(), CorsOrigins::None);
    assert_eq!(cors("*").unwrap(), CorsOrigins::Any);
    assert_eq!(
        cors("https://a.example, http://localhost:3000/").unwrap(),
        CorsOrigins::List(vec![
            "https://a.example".into(),
            "http://localhost:3000".into()
        ])
    );
    for bad in [
        "a.example",
        "https://a.example/app",
        "*, https://a.example",
        "https://",
    ] {
        let err = cors(bad).unwrap_err();
        assert!(
            err.to_string().starts_with("ROOKERY_CORS_ORIGINS"),
            "{bad}: {err}"
        );
    }
}

#[test]
fn a_static_dir_needs_an_index() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_str().unwrap();
    let with = |args: &[&str]| {
        let mut all = vec!["--database-url", "postgres://x/y"];
        all.extend_from_slice(args);
        parse(&all)
    };
    let err = with(&["--static-dir", path]).unwrap_err();
    assert!(err.to_string().contains("index.html"), "{err}");
    std::fs::write(dir.path().join("index.html"), "<!doctype html>").unwrap();
    let s = with(&["--static-dir", path]).unwrap();
    assert_eq!(s.http.static_dir.as_deref(), Some(dir.path()));
}

#[test]
fn debug_output_hides_secrets() {
    let s = parse(&[
        "--database-url",
        "postgres://user:hunter2@x/y",
        "--jwt-secret",
        &"s".repeat(40),
    ])
    .unwrap();
    let shown = format!("{s:?}");
    assert!(!shown.contains("hunter2"));
    assert!(!shown.contains(&"s".repeat(40)));
}
