//! `rookery seed-microblog`: the microblog feed benchmark's data set, at a
//! tiny size, seeded by calling the generator on the test database, then
//! read through the API as the benchmark reads it.

use std::process::Command;

use rookery::cli::DEFAULT_COMPAT_FEED_CAP;
use rookery::seed::microblog::{self, MicroblogOptions};
use serde_json::Value;

use crate::helpers::{spawn_app, TestApp};

const BIN: &str = env!("CARGO_BIN_EXE_rookery");

async fn get(app: &TestApp, path: &str, key: &str) -> Value {
    let res = app
        .client
        .get(app.url(path))
        .header("api-key", key)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{path}");
    res.json().await.unwrap()
}

async fn counters(app: &TestApp) -> Vec<(i64, i64, i64, i64)> {
    sqlx::query_as(
        "SELECT id, followers_count, following_count, posts_count FROM users ORDER BY id",
    )
    .fetch_all(&app.db)
    .await
    .unwrap()
}

#[actix_web::test]
async fn seed_microblog_gives_the_viewer_a_feed_with_images_and_likes_and_runs_once() {
    let app = spawn_app().await;
    let dir = tempfile::tempdir().unwrap();
    let options = MicroblogOptions {
        followees: 6,
        tweets: 40,
        images: 9,
        likes: 70,
        likers: 12,
        liker_keys: 4,
        feed_cap: DEFAULT_COMPAT_FEED_CAP,
        seed: 3,
        keys_file: dir.path().join("microblog-users.json"),
    };
    let seeded = microblog::seed(&app.db, &options).await.unwrap();
    assert_eq!(
        (
            seeded.tweets,
            seeded.images,
            seeded.likes,
            seeded.expected_tweets
        ),
        (40, 9, 70, 40)
    );

    // The viewer's feed: every post, 9 with an image, 70 likes in all, most liked first.
    let feed = get(&app, "/api/tweets", &seeded.viewer.api_key).await;
    let tweets = feed["tweets"].as_array().unwrap();
    assert_eq!(tweets.len(), 40);
    let attachments: Vec<&str> = tweets
        .iter()
        .flat_map(|t| t["attachments"].as_array().unwrap())
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(attachments.len(), 9);
    assert!(
        attachments
            .iter()
            .all(|a| a.contains("/media/m/") && a.ends_with(".jpg")),
        "{attachments:?}"
    );
    let likes: Vec<usize> = tweets
        .iter()
        .map(|t| t["likes"].as_array().unwrap().len())
        .collect();
    assert_eq!(likes.iter().sum::<usize>(), 70);
    assert!(likes.windows(2).all(|w| w[0] >= w[1]), "{likes:?}");
    assert!(tweets.iter().all(|t| t["author"]["name"]
        .as_str()
        .unwrap()
        .starts_with("mb_author_")));
    let mut ids: Vec<i64> = tweets.iter().map(|t| t["id"].as_i64().unwrap()).collect();
    ids.sort_unstable();
    assert_eq!(ids, seeded.tweet_ids);

    // The viewer follows exactly the authors, and the profile counts say so.
    let me = get(&app, "/api/users/me", &seeded.viewer.api_key).await;
    assert_eq!(me["user"]["following"].as_array().unwrap().len(), 6);
    assert_eq!(me["user"]["name"], "mb_viewer");
    let following: i64 = sqlx::query_scalar("SELECT following_count FROM users WHERE id = $1")
        .bind(seeded.viewer.id)
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(following, 6);
    // Every counter is what a recount finds, and every post's like count too.
    let before = counters(&app).await;
    sqlx::query("SELECT recount_profiles()")
        .execute(&app.db)
        .await
        .unwrap();
    assert_eq!(counters(&app).await, before);
    let posts_total: i64 = before.iter().map(|c| c.3).sum();
    assert_eq!(posts_total, 40);
    let wrong: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM posts p WHERE reactions_count <> \
         (SELECT count(*) FROM reactions r WHERE r.post_id = p.id)",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(wrong, 0);

    // The keys file: the likers' keys work, and their likes are as listed.
    let file: Value = serde_json::from_slice(&std::fs::read(&options.keys_file).unwrap()).unwrap();
    assert_eq!(file["viewer"]["api_key"], seeded.viewer.api_key.as_str());
    assert_eq!(file["expected_tweets"], 40);
    assert_eq!(file["tweet_ids"].as_array().unwrap().len(), 40);
    let likers = file["likers"].as_array().unwrap();
    assert_eq!(likers.len(), 4);
    for liker in likers {
        let id = liker["id"].as_i64().unwrap();
        let listed: Vec<i64> = liker["liked"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_i64().unwrap())
            .collect();
        let stored: Vec<i64> = sqlx::query_scalar(
            "SELECT post_id FROM reactions WHERE user_id = $1 AND kind = 'like' ORDER BY post_id",
        )
        .bind(id)
        .fetch_all(&app.db)
        .await
        .unwrap();
        assert_eq!(listed, stored);
        let me = get(&app, "/api/users/me", liker["api_key"].as_str().unwrap()).await;
        assert_eq!(me["user"]["id"], id);
    }
    // A liker likes a post through the API, as the benchmark does.
    let post = seeded.tweet_ids[0];
    let res = app
        .client
        .post(app.url(&format!("/api/tweets/{post}/likes")))
        .header("api-key", &seeded.likers[0].user.api_key)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    // A second run, through the binary, refuses with exit code 2 and changes nothing.
    let users: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(users, 1 + 6 + 12);
    let again = Command::new(BIN)
        .args(["seed-microblog", "--followees", "2", "--tweets", "5"])
        .args(["--images", "1", "--likes", "3", "--likers", "2"])
        .args(["--liker-keys", "1", "--keys-file"])
        .arg(dir.path().join("again.json"))
        .env_remove("REDIS_URL")
        .env("DATABASE_URL", &app.database_url)
        .env("ROOKERY_LOG", "warn")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert_eq!(again.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("already holds the user mb_viewer"),
        "{stderr}"
    );
    assert!(!dir.path().join("again.json").exists());
    let after: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(after, users);
}
