//! `rookery seed-demo`: two users whose API keys are their names, following
//! each other, with a few posts that carry an image, so the web client can
//! be tried at once. Idempotent: running it again creates only what is
//! missing. The keys are public knowledge: never run this in production.

use crate::domain::cache::{CacheSettings, Caches};
use std::io::Cursor;

use image::{DynamicImage, ImageFormat, Rgb, RgbImage};
use sqlx::PgPool;

use crate::domain::accounts::tokens::random_token;
use crate::domain::accounts::users::{self, NewAccount};
use crate::domain::accounts::{api_keys, auth, AccountError, PasswordHasher, Role};
use crate::domain::events::EventSink;
use crate::domain::media::{MediaError, MediaService};
use crate::domain::pagination::{PageParams, MAX_LIMIT};
use crate::domain::posts::{self, reactions, ReactionKind};
use crate::domain::social;
use crate::domain::DomainError;

/// Username and API key of each demo user (the same text).
pub const USERS: [&str; 2] = ["test", "test1"];

/// Index into [`USERS`] of the author, the text, and the hue of its picture.
const POSTS: [(usize, &str, u8); 3] = [
    (0, "Hello from the demo account! #rookery", 0),
    (1, "The second demo account says hi to @test", 1),
    (0, "A third post, to like and unlike", 2),
];

#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    #[error(transparent)]
    Account(#[from] AccountError),
    #[error(transparent)]
    Domain(#[from] DomainError),
    #[error(transparent)]
    Media(#[from] MediaError),
    #[error("{0}")]
    Conflict(String),
    #[error("making the demo image: {0}")]
    Image(#[from] image::ImageError),
}

/// Seeds the demo data and returns one line per thing made or found.
pub async fn seed(
    db: &PgPool,
    hasher: &PasswordHasher,
    media: &MediaService,
    events: &EventSink,
) -> Result<Vec<String>, SeedError> {
    let mut report = Vec::new();
    let mut ids = Vec::with_capacity(USERS.len());
    for name in USERS {
        let id = ensure_user(db, hasher, name, &mut report).await?;
        ensure_key(db, id, name, &mut report).await?;
        ids.push(id);
    }
    for (i, &follower) in ids.iter().enumerate() {
        for (j, &followee) in ids.iter().enumerate() {
            if i != j {
                let mut tx = db.begin().await.map_err(DomainError::from)?;
                let (_, announced) = social::follow(&mut tx, follower, followee).await?;
                events
                    .commit(tx, announced)
                    .await
                    .map_err(DomainError::from)?;
                report.push(format!("{} follows {}", USERS[i], USERS[j]));
            }
        }
    }
    let mut first_post = None;
    for (author, text, hue) in POSTS {
        let author_id = ids[author];
        let post_id = match find_post(db, media, author_id, text).await? {
            Some(id) => {
                report.push(format!("post {id} by {} already exists", USERS[author]));
                id
            }
            None => {
                let uploaded = media
                    .upload(db, events, None, author_id, picture(hue)?, |m| {
                        (m.id, m.url.clone())
                    })
                    .await?;
                let (image_id, image_url): (i64, String) =
                    serde_json::from_slice(&uploaded.body)
                        .map_err(|e| MediaError::Internal(e.to_string()))?;
                let mut tx = db.begin().await.map_err(DomainError::from)?;
                let (id, announced) = posts::create(&mut tx, author_id, text, &[image_id]).await?;
                events
                    .commit(tx, announced)
                    .await
                    .map_err(DomainError::from)?;
                report.push(format!(
                    "created post {id} by {} with image {image_id} ({image_url})",
                    USERS[author]
                ));
                id
            }
        };
        first_post.get_or_insert(post_id);
    }
    // One like, so the feed's ranking by likes shows.
    if let (Some(post_id), Some(&liker)) = (first_post, ids.get(1)) {
        let mut tx = db.begin().await.map_err(DomainError::from)?;
        let announced = reactions::react(&mut tx, liker, post_id, ReactionKind::Like).await?;
        events
            .commit(tx, announced)
            .await
            .map_err(DomainError::from)?;
        report.push(format!("{} likes post {post_id}", USERS[1]));
    }
    Ok(report)
}

async fn ensure_user(
    db: &PgPool,
    hasher: &PasswordHasher,
    name: &str,
    report: &mut Vec<String>,
) -> Result<i64, SeedError> {
    // The demo users sign in with their API keys only: the password is
    // random and never shown.
    let password = random_token(24);
    let email = format!("{name}@example.com");
    let created = users::register(
        db,
        hasher,
        NewAccount {
            username: name,
            email: &email,
            password: &password,
            display_name: None,
            role: Role::User,
        },
    )
    .await;
    match created {
        Ok(account) => {
            report.push(format!("created user {name} (id {})", account.id));
            Ok(account.id)
        }
        Err(AccountError::Taken(_)) => {
            let profile = social::profile_by_username(db, None, name)
                .await
                .map_err(|_| {
                    SeedError::Conflict(format!(
                        "cannot create user {name}: the username or the email {email} is taken \
                         by an account that is not an active user named {name}"
                    ))
                })?;
            report.push(format!("user {name} already exists (id {})", profile.id));
            Ok(profile.id)
        }
        Err(e) => Err(e.into()),
    }
}

async fn ensure_key(
    db: &PgPool,
    user_id: i64,
    key: &str,
    report: &mut Vec<String>,
) -> Result<(), SeedError> {
    // A tool alone: its cache starts empty and dies with it.
    let caches = Caches::new(CacheSettings::default());
    match auth::from_api_key(db, &caches, key).await {
        Ok(owner) if owner.user_id == user_id => {
            report.push(format!("API key '{key}' of {key} already exists"));
            Ok(())
        }
        Ok(owner) => Err(SeedError::Conflict(format!(
            "the API key '{key}' already belongs to {}, not to the demo user",
            owner.username
        ))),
        Err(AccountError::Token(_)) => {
            api_keys::insert(db, user_id, "demo key (rookery seed-demo)", key).await?;
            report.push(format!("created API key '{key}' for {key}"));
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

/// The author's visible post with exactly this text, if any.
async fn find_post(
    db: &PgPool,
    media: &MediaService,
    author_id: i64,
    text: &str,
) -> Result<Option<i64>, DomainError> {
    let caches = Caches::new(CacheSettings::default());
    let mut cursor = None;
    loop {
        let params = PageParams {
            limit: Some(MAX_LIMIT),
            cursor,
        };
        let page = posts::by_user(db, &caches, media, Some(author_id), author_id, &params).await?;
        if let Some(post) = page.items.iter().find(|p| p.text == text) {
            return Ok(Some(post.id));
        }
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return Ok(None),
        }
    }
}

/// A small PNG made here, so the demo needs no files: diagonal stripes over
/// a gradient, tinted by `hue`.
fn picture(hue: u8) -> Result<Vec<u8>, image::ImageError> {
    let (w, h) = (480u32, 270u32);
    let image = RgbImage::from_fn(w, h, |x, y| {
        let stripe = ((x + y) / 24) % 2 == 0;
        let a = u8::try_from(x * 255 / w).unwrap_or(u8::MAX);
        let b = u8::try_from(y * 255 / h).unwrap_or(u8::MAX);
        let lift = if stripe { 40 } else { 0 };
        let [r, g, bl] = match hue % 3 {
            0 => [a, b, 200],
            1 => [200, a, b],
            _ => [b, 200, a],
        };
        Rgb([
            r.saturating_add(lift),
            g.saturating_add(lift),
            bl.saturating_add(lift),
        ])
    });
    let mut out = Cursor::new(Vec::new());
    DynamicImage::ImageRgb8(image).write_to(&mut out, ImageFormat::Png)?;
    Ok(out.into_inner())
}
