//! `rookery seed-bench`: the load-test data set, at a tiny size.

use std::process::Command;

use serde_json::Value;

use crate::helpers::spawn_app;

const BIN: &str = env!("CARGO_BIN_EXE_rookery");

fn seed_bench(database_url: &str, keys_file: &std::path::Path) -> std::process::Output {
    Command::new(BIN)
        .args([
            "seed-bench",
            "--users",
            "50",
            "--posts",
            "500",
            "--follows-per-user",
            "5",
            "--celebrity-followers",
            "10,30",
            "--keys-file",
        ])
        .arg(keys_file)
        .env_remove("REDIS_URL")
        .env("DATABASE_URL", database_url)
        // The celebrity with 30 followers is over the limit: merged on read.
        .env("ROOKERY_FANOUT_LIMIT", "20")
        .env("ROOKERY_LOG", "warn")
        .output()
        .unwrap()
}

async fn count(db: &sqlx::PgPool, sql: &str) -> i64 {
    sqlx::query_scalar::<_, i64>(sql)
        .fetch_one(db)
        .await
        .unwrap()
}

#[actix_web::test]
async fn seed_bench_loads_users_who_can_sign_in_and_refuses_to_load_twice() {
    let app = spawn_app().await;
    let dir = tempfile::tempdir().unwrap();
    let keys_file = dir.path().join("users.json");

    let out = seed_bench(&app.database_url, &keys_file);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("hashed once"), "{stdout}");

    let db = &app.db;
    assert_eq!(count(db, "SELECT count(*) FROM users").await, 52);
    assert_eq!(count(db, "SELECT count(*) FROM api_keys").await, 52);
    assert_eq!(count(db, "SELECT count(*) FROM posts").await, 500);
    assert_eq!(
        count(db, "SELECT count(*) FROM follows").await,
        50 * 5 + 10 + 30
    );
    assert!(count(db, "SELECT count(*) FROM post_hashtags").await >= 500);
    // Both celebrities have posts; only the one over ROOKERY_FANOUT_LIMIT is pulled.
    assert_eq!(
        count(
            db,
            "SELECT count(DISTINCT author_id) FROM posts WHERE author_id IN \
             (SELECT id FROM users WHERE username LIKE 'bench_celeb%')"
        )
        .await,
        2
    );
    assert_eq!(
        count(
            db,
            "SELECT count(*) FROM feed_pull_authors pa JOIN users u ON u.id = pa.user_id \
             WHERE u.username = 'bench_celeb1_30'"
        )
        .await,
        1
    );
    assert_eq!(count(db, "SELECT count(*) FROM feed_pull_authors").await, 1);
    // Timelines hold exactly what fan-out would have written: every post of
    // every followed author that is not pulled (100 newest at most, and no
    // author has that many here).
    let expected = count(
        db,
        "SELECT count(*) FROM follows f JOIN posts p ON p.author_id = f.followee_id \
         WHERE f.followee_id NOT IN (SELECT user_id FROM feed_pull_authors)",
    )
    .await;
    assert!(expected > 0);
    assert_eq!(count(db, "SELECT count(*) FROM timelines").await, expected);
    assert_eq!(
        count(
            db,
            "SELECT count(*) FROM timelines t WHERE NOT EXISTS (SELECT 1 FROM follows f \
             WHERE f.follower_id = t.user_id AND f.followee_id = t.author_id)"
        )
        .await,
        0
    );

    // The keys file: every user with a working API key; the celebrities apart.
    let keys: Value = serde_json::from_slice(&std::fs::read(&keys_file).unwrap()).unwrap();
    let users = keys["users"].as_array().unwrap();
    assert_eq!(users.len(), 50);
    let celebrities = keys["celebrities"].as_array().unwrap();
    assert_eq!(celebrities.len(), 2);
    assert_eq!(celebrities[0]["fanned_out"], true);
    assert_eq!(celebrities[1]["fanned_out"], false);
    let res = app
        .client
        .get(app.url("/api/v1/feed"))
        .header("api-key", users[0]["api_key"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let feed: Value = res.json().await.unwrap();
    assert!(!feed["items"].as_array().unwrap().is_empty(), "{feed}");
    // Users 0..30 follow the pulled celebrity: their feeds merge its posts in.
    let celeb_id = celebrities[1]["id"].as_i64().unwrap();
    let mut cursor: Option<String> = None;
    let mut saw_celebrity = false;
    for _ in 0..20 {
        let path = match &cursor {
            Some(c) => format!("/api/v1/feed?limit=100&cursor={c}"),
            None => "/api/v1/feed?limit=100".into(),
        };
        let page: Value = app
            .client
            .get(app.url(&path))
            .header("api-key", users[0]["api_key"].as_str().unwrap())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        saw_celebrity |= page["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["author"]["id"].as_i64() == Some(celeb_id));
        match page["next_cursor"].as_str() {
            Some(c) if !saw_celebrity => cursor = Some(c.to_owned()),
            _ => break,
        }
    }
    assert!(saw_celebrity, "the pulled celebrity's posts are merged in");

    // The shared password signs in.
    let res = app.login("bench_00000", "bench-password").await;
    assert_eq!(res.status(), 200);

    // A second run refuses and changes nothing.
    let again = seed_bench(&app.database_url, &dir.path().join("again.json"));
    assert!(!again.status.success());
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(stderr.contains("already holds 52 users"), "{stderr}");
    assert_eq!(count(db, "SELECT count(*) FROM users").await, 52);
}
