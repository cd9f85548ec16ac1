//! The media pipeline, against both storage backends: a local directory
//! (a temporary one per test) and S3 (a fresh bucket per test on the server
//! named by S3_ENDPOINT; scripts/test.sh starts a throwaway moto_server).

use std::io::Cursor;
use std::path::{Path, PathBuf};

use image::{DynamicImage, ImageFormat, Rgb, RgbImage, Rgba, RgbaImage};
use reqwest::multipart::{Form, Part};
use reqwest::Response;
use rookery::config::{S3Settings, Settings, StorageSettings};
use rookery::domain::media::{self, MediaError, MediaService};
use s3::creds::Credentials;
use s3::{Bucket, BucketConfiguration, Region};
use serde_json::{json, Value};

use crate::helpers::{assert_problem, spawn_app_with, TestApp, TestUser};

/// Where local-storage URLs point; the tests fetch the path from the app.
const PUBLIC_URL: &str = "http://media.example";
/// Text that must not survive the re-encoding.
const GPS_SECRET: &[u8] = b"GPSLatitude=48.8584N;GPSLongitude=2.2945E";

enum Store {
    Local(tempfile::TempDir),
    S3(Box<Bucket>),
}

struct MediaTest {
    app: TestApp,
    store: Store,
    alice: TestUser,
    settings: StorageSettings,
}

fn env(name: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| {
            panic!(
                "{name} must be set for the S3 tests (S3_ENDPOINT, S3_ACCESS_KEY, S3_SECRET_KEY): \
                 run the tests through scripts/test.sh, which starts a throwaway moto_server"
            )
        })
}

/// A new, empty bucket on the test S3 server, and settings that use it.
async fn fresh_bucket() -> (Box<Bucket>, S3Settings) {
    let endpoint = env("S3_ENDPOINT");
    let (access_key, secret_key) = (env("S3_ACCESS_KEY"), env("S3_SECRET_KEY"));
    // Not us-east-1 by default: rust-s3 sends a LocationConstraint when
    // creating a bucket, and S3 (moto too) refuses one naming us-east-1.
    let region = std::env::var("S3_REGION")
        .ok()
        .filter(|r| !r.is_empty())
        .unwrap_or_else(|| "eu-west-1".into());
    let name = format!("rookery-test-{}", uuid::Uuid::new_v4().simple());
    let created = Bucket::create_with_path_style(
        &name,
        Region::Custom {
            region: region.clone(),
            endpoint: endpoint.clone(),
        },
        Credentials::new(Some(&access_key), Some(&secret_key), None, None, None).unwrap(),
        BucketConfiguration::default(),
    )
    .await
    .expect("create a test bucket on S3_ENDPOINT");
    assert!(
        created.success(),
        "create bucket: {}",
        created.response_text
    );
    let settings = S3Settings {
        bucket: name,
        region,
        endpoint: Some(endpoint),
        access_key,
        secret_key: secret_key.into(),
        path_style: true,
        // Presigned URLs: the harder case, and what a private bucket gets.
        public_url: None,
    };
    (created.bucket, settings)
}

async fn spawn(s3: bool, configure: impl FnOnce(&mut Settings)) -> MediaTest {
    let (store, settings) = if s3 {
        let (bucket, settings) = fresh_bucket().await;
        (Store::S3(bucket), StorageSettings::S3(settings))
    } else {
        let dir = tempfile::tempdir().unwrap();
        let settings = StorageSettings::Local {
            dir: dir.path().to_owned(),
        };
        (Store::Local(dir), settings)
    };
    let storage = settings.clone();
    let app = spawn_app_with(|s| {
        s.media.storage = storage;
        s.media.public_url = PUBLIC_URL.into();
        configure(s);
    })
    .await;
    let alice = app.user("alice").await;
    MediaTest {
        app,
        store,
        alice,
        settings,
    }
}

fn encode(image: DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    image.write_to(&mut out, format).unwrap();
    out.into_inner()
}

fn opaque(w: u32, h: u32) -> DynamicImage {
    DynamicImage::ImageRgb8(RgbImage::from_fn(w, h, |x, y| {
        Rgb([(x % 251) as u8, (y % 241) as u8, ((x + y) % 256) as u8])
    }))
}

fn with_alpha(w: u32, h: u32) -> DynamicImage {
    DynamicImage::ImageRgba8(RgbaImage::from_fn(w, h, |x, y| {
        Rgba([
            200,
            (x % 256) as u8,
            (y % 256) as u8,
            if x < w / 2 { 40 } else { 255 },
        ])
    }))
}

/// A JPEG with an EXIF APP1 segment (a valid, empty TIFF directory followed
/// by GPS-looking text) spliced in after the start-of-image marker.
fn jpeg_with_exif() -> Vec<u8> {
    let jpeg = encode(opaque(120, 80), ImageFormat::Jpeg);
    let mut payload = b"Exif\0\0MM\0\x2a\0\0\0\x08\0\0\0\0\0\0".to_vec();
    payload.extend_from_slice(GPS_SECRET);
    let length = u16::try_from(payload.len() + 2).unwrap();
    let mut out = jpeg[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&length.to_be_bytes());
    out.extend_from_slice(&payload);
    out.extend_from_slice(&jpeg[2..]);
    out
}

/// A 100-byte PNG whose header declares 50000x50000 pixels (10 GB decoded).
fn png_bomb() -> Vec<u8> {
    let mut png = encode(opaque(1, 1), ImageFormat::Png);
    png[16..20].copy_from_slice(&50_000u32.to_be_bytes());
    png[20..24].copy_from_slice(&50_000u32.to_be_bytes());
    let mut crc = u32::MAX;
    for &byte in &png[12..29] {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    png[29..33].copy_from_slice(&(!crc).to_be_bytes());
    png
}

fn form(bytes: Vec<u8>, file_name: &str, mime: &str) -> Form {
    Form::new().part(
        "file",
        Part::bytes(bytes)
            .file_name(file_name.to_owned())
            .mime_str(mime)
            .unwrap(),
    )
}

impl MediaTest {
    async fn upload(&self, form: Form) -> Response {
        self.app.upload(Some(&self.alice.access), form).await
    }

    async fn upload_ok(&self, bytes: Vec<u8>, file_name: &str, mime: &str) -> Value {
        let res = self.upload(form(bytes, file_name, mime)).await;
        let status = res.status();
        let body: Value = res.json().await.unwrap();
        assert_eq!(status, 201, "{file_name}: {body}");
        body
    }

    /// Fetches a media URL as a client would: local URLs through the app,
    /// S3 ones from the S3 server.
    async fn fetch(&self, url: &str) -> Response {
        let url = match url.strip_prefix(PUBLIC_URL) {
            Some(path) => self.app.url(path),
            None => url.to_owned(),
        };
        self.app.client.get(url).send().await.unwrap()
    }

    async fn fetch_bytes(&self, url: &str) -> Vec<u8> {
        let res = self.fetch(url).await;
        assert_eq!(res.status(), 200, "GET {url}");
        res.bytes().await.unwrap().to_vec()
    }

    /// The object under `key`, read from the store directly.
    async fn object(&self, key: &str) -> Option<Vec<u8>> {
        match &self.store {
            Store::Local(dir) => std::fs::read(dir.path().join(key)).ok(),
            Store::S3(bucket) => bucket.get_object(key).await.ok().map(|r| r.to_vec()),
        }
    }

    /// Every object key in the store.
    async fn keys(&self) -> Vec<String> {
        match &self.store {
            Store::Local(dir) => {
                let mut keys = Vec::new();
                list_files(dir.path(), dir.path(), &mut keys);
                keys.sort();
                keys
            }
            Store::S3(bucket) => {
                let mut keys: Vec<String> = bucket
                    .list(String::new(), None)
                    .await
                    .unwrap()
                    .into_iter()
                    .flat_map(|page| page.contents.into_iter().map(|o| o.key))
                    .collect();
                keys.sort();
                keys
            }
        }
    }

    async fn keys_of(&self, id: i64) -> (String, String) {
        sqlx::query_as("SELECT storage_key, thumb_key FROM media WHERE id = $1")
            .bind(id)
            .fetch_one(&self.app.db)
            .await
            .unwrap()
    }

    async fn row_count(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM media")
            .fetch_one(&self.app.db)
            .await
            .unwrap()
    }

    fn service(&self) -> MediaService {
        let mut settings = Settings::with_database(&self.app.database_url)
            .unwrap()
            .media;
        settings.storage = self.settings.clone();
        settings.public_url = PUBLIC_URL.into();
        MediaService::new(&settings, 1).unwrap()
    }
}

fn list_files(root: &Path, dir: &Path, out: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path: PathBuf = entry.unwrap().path();
        if path.is_dir() {
            list_files(root, &path, out);
        } else {
            let key = path.strip_prefix(root).unwrap().to_string_lossy();
            out.push(key.replace('\\', "/"));
        }
    }
}

fn dimensions(bytes: &[u8]) -> (u32, u32) {
    let image = image::load_from_memory(bytes).unwrap();
    (image.width(), image.height())
}

async fn uploads_are_processed_stored_and_served(s3: bool) {
    let t = spawn(s3, |_| {}).await;

    // PNG with transparency: kept as PNG, thumbnail too.
    let png = t
        .upload_ok(
            encode(with_alpha(300, 200), ImageFormat::Png),
            "a.png",
            "image/png",
        )
        .await;
    assert_eq!(png["content_type"], "image/png");
    assert_eq!(
        (png["width"].as_i64(), png["height"].as_i64()),
        (Some(300), Some(200))
    );
    assert!(png["id"].as_i64().is_some());
    assert!(
        png["blurhash"].as_str().is_some_and(|b| b.len() >= 6),
        "{png}"
    );
    let stored = t.fetch_bytes(png["url"].as_str().unwrap()).await;
    assert_eq!(image::guess_format(&stored).unwrap(), ImageFormat::Png);
    assert_eq!(png["bytes"].as_u64(), Some(stored.len() as u64));
    let thumb = t.fetch_bytes(png["thumbnail_url"].as_str().unwrap()).await;
    assert_eq!(image::guess_format(&thumb).unwrap(), ImageFormat::Png);

    // The object really is in the store, and what a client gets is what was stored.
    let (key, thumb_key) = t.keys_of(png["id"].as_i64().unwrap()).await;
    assert!(key.starts_with("m/") && key.ends_with(".png"), "{key}");
    assert!(thumb_key.ends_with("_thumb.png"), "{thumb_key}");
    assert_eq!(t.object(&key).await.as_deref(), Some(stored.as_slice()));

    // Opaque formats become JPEG; a GIF yields its first frame.
    for (bytes, name, mime) in [
        (
            encode(opaque(64, 48), ImageFormat::Jpeg),
            "b.jpg",
            "image/jpeg",
        ),
        (
            encode(opaque(64, 48), ImageFormat::Gif),
            "c.gif",
            "image/gif",
        ),
        (
            encode(
                DynamicImage::ImageRgba8(opaque(64, 48).to_rgba8()),
                ImageFormat::WebP,
            ),
            "d.webp",
            "image/webp",
        ),
    ] {
        let media = t.upload_ok(bytes, name, mime).await;
        assert_eq!(media["content_type"], "image/jpeg", "{name}");
        assert_eq!(
            (media["width"].as_i64(), media["height"].as_i64()),
            (Some(64), Some(48))
        );
        let res = t.fetch(media["url"].as_str().unwrap()).await;
        assert_eq!(res.status(), 200);
        assert_eq!(res.headers()["content-type"], "image/jpeg");
        let body = res.bytes().await.unwrap();
        assert_eq!(dimensions(&body), (64, 48));
    }

    // Large images are downscaled to 2048 on the longer side; thumbnails to 400.
    let big = t
        .upload_ok(
            encode(opaque(3000, 1000), ImageFormat::Png),
            "big.png",
            "image/png",
        )
        .await;
    assert_eq!(
        (big["width"].as_i64(), big["height"].as_i64()),
        (Some(2048), Some(683))
    );
    let stored = t.fetch_bytes(big["url"].as_str().unwrap()).await;
    assert_eq!(dimensions(&stored), (2048, 683));
    let thumb = t.fetch_bytes(big["thumbnail_url"].as_str().unwrap()).await;
    assert_eq!(dimensions(&thumb), (400, 133));

    // EXIF and GPS data are gone from what is stored.
    let exif = jpeg_with_exif();
    assert!(exif.windows(GPS_SECRET.len()).any(|w| w == GPS_SECRET));
    let media = t.upload_ok(exif, "holiday.jpg", "image/jpeg").await;
    let (key, thumb_key) = t.keys_of(media["id"].as_i64().unwrap()).await;
    for key in [key, thumb_key] {
        let stored = t.object(&key).await.expect("stored object");
        assert!(
            !stored.windows(GPS_SECRET.len()).any(|w| w == GPS_SECRET),
            "{key}"
        );
        assert!(!stored.windows(4).any(|w| w == b"Exif"), "{key}");
    }

    // The bytes decide the format, not the name or the declared type.
    let media = t
        .upload_ok(
            encode(with_alpha(20, 20), ImageFormat::Png),
            "photo.jpg",
            "image/jpeg",
        )
        .await;
    assert_eq!(media["content_type"], "image/png");
    let res = t
        .upload(form(
            b"just some text, honest".to_vec(),
            "x.png",
            "image/png",
        ))
        .await;
    assert_problem(res, 415).await;

    // Broken and hostile images are refused, without harm.
    let jpeg = encode(opaque(200, 200), ImageFormat::Jpeg);
    let res = t
        .upload(form(
            jpeg[..jpeg.len() * 2 / 3].to_vec(),
            "t.jpg",
            "image/jpeg",
        ))
        .await;
    assert!(assert_problem(res, 422).await["errors"]["file"].is_array());
    let res = t.upload(form(png_bomb(), "bomb.png", "image/png")).await;
    let problem = assert_problem(res, 422).await;
    assert!(
        problem["detail"].as_str().unwrap().contains("too large"),
        "{problem}"
    );

    // Seven uploads succeeded: seven rows, fourteen objects, nothing else left behind.
    assert_eq!(t.row_count().await, 7);
    let keys = t.keys().await;
    assert_eq!(keys.len(), 14, "{keys:?}");
    assert!(keys.iter().all(|k| k.starts_with("m/")), "{keys:?}");
}

#[actix_web::test]
async fn uploads_are_processed_stored_and_served_locally() {
    uploads_are_processed_stored_and_served(false).await;
}

#[actix_web::test]
async fn uploads_are_processed_stored_and_served_on_s3() {
    uploads_are_processed_stored_and_served(true).await;
}

#[actix_web::test]
async fn served_files_are_typed_cacheable_and_confined() {
    let t = spawn(false, |_| {}).await;
    let media = t
        .upload_ok(
            encode(opaque(50, 50), ImageFormat::Png),
            "a.png",
            "image/png",
        )
        .await;
    let url = media["url"].as_str().unwrap();
    assert!(url.starts_with(&format!("{PUBLIC_URL}/media/m/")), "{url}");
    let res = t.fetch(url).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "image/jpeg");
    assert_eq!(
        res.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
    assert_eq!(res.headers()["x-content-type-options"], "nosniff");

    // A file beside the media directory that traversal would reach.
    let Store::Local(dir) = &t.store else {
        unreachable!()
    };
    std::fs::write(dir.path().join("secret.jpg"), b"secret").unwrap();
    for path in [
        "/media/m/nothing-here.jpg",
        "/media/secret.jpg",
        "/media/m/..%2Fsecret.jpg",
        "/media/m%2F..%2Fsecret.jpg",
        "/media/m/%2E%2E/secret.jpg",
        "/media/..%2F..%2FCargo.toml",
        "/media/m/x.txt",
    ] {
        let res = t.app.get(path, None).await;
        assert_problem(res, 404).await;
    }
}

#[actix_web::test]
async fn uploads_need_auth_a_file_field_and_a_multipart_body() {
    let t = spawn(false, |_| {}).await;
    let png = encode(opaque(10, 10), ImageFormat::Png);
    let res = t
        .app
        .upload(None, form(png.clone(), "a.png", "image/png"))
        .await;
    assert_problem(res, 401).await;

    let wrong_field = Form::new().part("image", Part::bytes(png.clone()).file_name("a.png"));
    let res = t.upload(wrong_field).await;
    let problem = assert_problem(res, 422).await;
    assert!(problem["errors"]["file"].is_array(), "{problem}");

    // The form has one field, as the OpenAPI document says; another is
    // refused, even beside a good file.
    let extra_field = form(png, "a.png", "image/png").text("caption", "hello");
    let res = t.upload(extra_field).await;
    let problem = assert_problem(res, 422).await;
    assert!(
        problem["detail"].as_str().unwrap().contains("caption"),
        "{problem}"
    );

    let res = t
        .app
        .post(
            "/api/v1/media",
            Some(&t.alice.access),
            &serde_json::json!({"file": "x"}),
        )
        .await;
    assert_problem(res, 415).await;
    assert_eq!(t.row_count().await, 0);
}

#[actix_web::test]
async fn oversized_uploads_are_refused_early() {
    let limit = 32 * 1024;
    let t = spawn(false, |s| s.media.max_bytes = limit).await;
    let big = vec![0x42u8; 200 * 1024];

    // With a Content-Length, refused before the body is read.
    let res = t.upload(form(big.clone(), "big.png", "image/png")).await;
    let problem = assert_problem(res, 413).await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains(&limit.to_string()),
        "{problem}"
    );

    // Streamed without a length: refused once the limit is crossed.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        big.chunks(8 * 1024).map(|c| Ok(c.to_vec())).collect();
    let stream = reqwest::Body::wrap_stream(futures_util::stream::iter(chunks));
    let streamed = Form::new().part("file", Part::stream(stream).file_name("big.png"));
    let res = t.upload(streamed).await;
    assert_problem(res, 413).await;

    // Just under the limit gets through to the decoder (and is not an image).
    let res = t
        .upload(form(vec![b'x'; limit - 10], "small.txt", "text/plain"))
        .await;
    assert_problem(res, 415).await;
    assert_eq!(t.row_count().await, 0);
}

#[actix_web::test]
async fn a_storage_outage_is_a_503_and_leaves_no_row() {
    let t = spawn(false, |s| {
        s.media.storage = StorageSettings::S3(S3Settings {
            bucket: "unreachable".into(),
            region: "us-east-1".into(),
            // Nothing listens on port 1.
            endpoint: Some("http://127.0.0.1:1".into()),
            access_key: "k".into(),
            secret_key: "s".to_owned().into(),
            path_style: true,
            public_url: None,
        })
    })
    .await;
    let res = t
        .upload(form(
            encode(opaque(10, 10), ImageFormat::Png),
            "a.png",
            "image/png",
        ))
        .await;
    assert_problem(res, 503).await;
    assert_eq!(t.row_count().await, 0);
}

#[actix_web::test]
async fn a_missing_bucket_is_a_server_error_not_a_missing_resource() {
    let (_, mut settings) = fresh_bucket().await;
    settings.bucket = format!("rookery-absent-{}", uuid::Uuid::new_v4().simple());
    let t = spawn(false, |s| s.media.storage = StorageSettings::S3(settings)).await;
    let res = t
        .upload(form(
            encode(opaque(10, 10), ImageFormat::Png),
            "a.png",
            "image/png",
        ))
        .await;
    assert_problem(res, 500).await;
    assert_eq!(t.row_count().await, 0);
}

#[actix_web::test]
async fn a_failed_insert_deletes_the_stored_objects() {
    let t = spawn(false, |_| {}).await;
    sqlx::raw_sql(
        "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'refused'; END $$;
         CREATE TRIGGER refuse BEFORE INSERT ON media FOR EACH ROW EXECUTE FUNCTION refuse();",
    )
    .execute(&t.app.db)
    .await
    .unwrap();
    let res = t
        .upload(form(
            encode(opaque(10, 10), ImageFormat::Png),
            "a.png",
            "image/png",
        ))
        .await;
    assert_problem(res, 500).await;
    assert_eq!(t.keys().await, Vec::<String>::new());
}

async fn unattached_media_are_cleaned_up(s3: bool) {
    let t = spawn(s3, |_| {}).await;
    let png = || encode(opaque(30, 30), ImageFormat::Png);
    let old = t.upload_ok(png(), "old.png", "image/png").await["id"]
        .as_i64()
        .unwrap();
    let fresh = t.upload_ok(png(), "new.png", "image/png").await["id"]
        .as_i64()
        .unwrap();
    let posted = t.upload_ok(png(), "posted.png", "image/png").await["id"]
        .as_i64()
        .unwrap();
    let post = t.app.create_post(&t.alice.access, "with a picture").await["id"]
        .as_i64()
        .unwrap();
    let mut tx = t.app.db.begin().await.unwrap();
    media::attach(&mut tx, t.alice.id, post, &[posted])
        .await
        .unwrap();
    tx.commit().await.unwrap();
    sqlx::query("UPDATE media SET created_at = now() - interval '25 hours' WHERE id = ANY($1)")
        .bind(vec![old, posted])
        .execute(&t.app.db)
        .await
        .unwrap();
    let (old_key, old_thumb) = t.keys_of(old).await;
    assert!(t.object(&old_key).await.is_some());

    let deleted = t
        .service()
        .cleanup_unattached(&t.app.db, media::UNATTACHED_TTL)
        .await
        .unwrap();
    assert_eq!(deleted, 1);
    let ids: Vec<i64> = sqlx::query_scalar("SELECT id FROM media ORDER BY id")
        .fetch_all(&t.app.db)
        .await
        .unwrap();
    assert_eq!(ids, vec![fresh, posted]);
    assert!(t.object(&old_key).await.is_none());
    assert!(t.object(&old_thumb).await.is_none());
    assert_eq!(t.keys().await.len(), 4);
}

#[actix_web::test]
async fn unattached_media_are_cleaned_up_locally() {
    unattached_media_are_cleaned_up(false).await;
}

#[actix_web::test]
async fn unattached_media_are_cleaned_up_on_s3() {
    unattached_media_are_cleaned_up(true).await;
}

#[actix_web::test]
async fn attach_checks_ownership_and_keeps_order() {
    let t = spawn(false, |_| {}).await;
    let bob = t.app.user("bob").await;
    let png = || encode(opaque(30, 20), ImageFormat::Png);
    let mut mine = Vec::new();
    for i in 0..5 {
        mine.push(
            t.upload_ok(png(), &format!("{i}.png"), "image/png").await["id"]
                .as_i64()
                .unwrap(),
        );
    }
    let res = t
        .app
        .upload(Some(&bob.access), form(png(), "b.png", "image/png"))
        .await;
    let bobs = res.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
    let mut posts = vec![0];
    for i in 1..=3 {
        let post = t
            .app
            .create_post(&t.alice.access, &format!("post {i}"))
            .await;
        posts.push(post["id"].as_i64().unwrap());
    }

    let attach = |post: usize, ids: Vec<i64>| {
        let post = posts[post];
        let db = t.app.db.clone();
        let owner = t.alice.id;
        async move {
            let mut tx = db.begin().await.unwrap();
            let result = media::attach(&mut tx, owner, post, &ids).await;
            if result.is_ok() {
                tx.commit().await.unwrap();
            }
            result
        }
    };

    // Someone else's, unknown, repeated and too many: refused, naming the id.
    for (ids, bad) in [
        (vec![mine[0], bobs], Some(bobs)),
        (vec![mine[0], 999_999], Some(999_999)),
        (vec![mine[0], mine[0]], Some(mine[0])),
        (mine.clone(), None),
    ] {
        match attach(1, ids).await {
            Err(MediaError::NotAttachable(id)) => assert_eq!(Some(id), bad),
            Err(MediaError::TooManyAttachments { max }) => {
                assert_eq!(max, 4);
                assert!(bad.is_none());
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    let service = t.service();
    assert!(
        service
            .for_posts(&t.app.db, &[posts[1]])
            .await
            .unwrap()
            .is_empty(),
        "nothing attached"
    );

    attach(1, vec![mine[2], mine[0], mine[1]]).await.unwrap();
    attach(2, vec![mine[3]]).await.unwrap();
    // Already attached.
    assert!(matches!(
        attach(3, vec![mine[4], mine[0]]).await,
        Err(MediaError::NotAttachable(id)) if id == mine[0]
    ));

    let by_post = service.for_posts(&t.app.db, &posts[1..]).await.unwrap();
    let order: Vec<i64> = by_post[&posts[1]].iter().map(|m| m.id).collect();
    assert_eq!(order, vec![mine[2], mine[0], mine[1]]);
    assert_eq!(by_post[&posts[2]].len(), 1);
    assert!(!by_post.contains_key(&posts[3]));
    let view = &by_post[&posts[2]][0];
    assert_eq!((view.width, view.height), (30, 20));
    assert!(view.url.starts_with(PUBLIC_URL));
    assert_eq!(t.fetch(&view.thumbnail_url).await.status(), 200);
}

#[actix_web::test]
async fn the_media_routes_are_documented() {
    let t = spawn(false, |_| {}).await;
    let doc: Value = t.app.get("/openapi.json", None).await.json().await.unwrap();
    let upload = &doc["paths"]["/api/v1/media"]["post"];
    assert!(
        upload["requestBody"]["content"]["multipart/form-data"].is_object(),
        "{upload}"
    );
    assert!(upload["responses"]["201"].is_object());
    assert!(doc["paths"]["/media/{key}"]["get"].is_object());
    assert!(doc["components"]["schemas"]["MediaView"].is_object());
}

async fn posts_carry_their_images(s3: bool) {
    let t = spawn(s3, |_| {}).await;
    let app = &t.app;
    let alice = &t.alice;
    let bob = app.user("bobby").await;
    let id_of = |v: &Value| v["id"].as_i64().unwrap();
    let first = t
        .upload_ok(
            encode(opaque(40, 30), ImageFormat::Png),
            "1.png",
            "image/png",
        )
        .await;
    let second = t
        .upload_ok(
            encode(opaque(30, 40), ImageFormat::Png),
            "2.png",
            "image/png",
        )
        .await;

    // Attached in the order given, each with everything a client paints.
    let res = app
        .post(
            "/api/v1/posts",
            Some(&alice.access),
            &json!({"text": "two pictures", "media_ids": [id_of(&second), id_of(&first)]}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let post: Value = res.json().await.unwrap();
    let media = post["media"].as_array().unwrap();
    assert_eq!(media.len(), 2, "{post}");
    assert_eq!(media[0]["id"], second["id"]);
    assert_eq!(media[1]["id"], first["id"]);
    assert_eq!(
        (media[0]["width"].as_i64(), media[0]["height"].as_i64()),
        (Some(30), Some(40))
    );
    for key in ["url", "thumbnail_url", "blurhash", "content_type"] {
        assert!(media[0][key].is_string(), "{key}: {post}");
    }
    let image = t.fetch_bytes(media[0]["url"].as_str().unwrap()).await;
    assert_eq!(dimensions(&image), (30, 40));

    // Reads show the same media: the post, the author's list, the home feed.
    let path = format!("/api/v1/posts/{}", post["id"]);
    let fetched: Value = app
        .get(&path, Some(&bob.access))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(unsigned(&fetched["media"]), unsigned(&post["media"]));
    let listed: Value = app
        .get(&format!("/api/v1/users/{}/posts", alice.id), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        unsigned(&listed["items"][0]["media"]),
        unsigned(&post["media"])
    );

    // An attached image cannot be attached again, nor can someone else's,
    // nor one twice in one post; a refused post leaves no row.
    let bobs = {
        let res = app
            .upload(
                Some(&bob.access),
                form(
                    encode(opaque(10, 10), ImageFormat::Png),
                    "b.png",
                    "image/png",
                ),
            )
            .await;
        assert_eq!(res.status(), 201);
        res.json::<Value>().await.unwrap()
    };
    let third = t
        .upload_ok(
            encode(opaque(12, 12), ImageFormat::Png),
            "3.png",
            "image/png",
        )
        .await;
    for ids in [
        json!([id_of(&first)]),
        json!([id_of(&bobs)]),
        json!([id_of(&third), id_of(&third)]),
        json!([id_of(&third), 0]),
    ] {
        let res = app
            .post(
                "/api/v1/posts",
                Some(&alice.access),
                &json!({"text": "again", "media_ids": ids}),
            )
            .await;
        let problem = assert_problem(res, 422).await;
        assert!(
            problem["errors"]["media_ids"].is_array(),
            "{ids}: {problem}"
        );
    }
    let posts: i64 = sqlx::query_scalar("SELECT count(*) FROM posts")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(posts, 1);
    let attached: Option<i64> = sqlx::query_scalar("SELECT post_id FROM media WHERE id = $1")
        .bind(id_of(&third))
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(attached, None, "a refused post attaches nothing");

    // The third image is still free to use.
    let res = app
        .post(
            "/api/v1/posts",
            Some(&alice.access),
            &json!({"text": "third", "media_ids": [id_of(&third)]}),
        )
        .await;
    assert_eq!(res.status(), 201);
}

#[actix_web::test]
async fn posts_carry_their_images_locally() {
    posts_carry_their_images(false).await;
}

#[actix_web::test]
async fn posts_carry_their_images_on_s3() {
    posts_carry_their_images(true).await;
}

/// Media with their URLs' query strings removed: presigned S3 URLs carry the
/// second they were signed in, so two reads a second apart differ there
/// while naming the same objects.
fn unsigned(media: &Value) -> Value {
    let mut media = media.clone();
    for item in media.as_array_mut().into_iter().flatten() {
        for key in ["url", "thumbnail_url"] {
            if let Some(url) = item[key].as_str() {
                let bare = url.split('?').next().unwrap_or(url).to_owned();
                item[key] = Value::String(bare);
            }
        }
    }
    media
}
