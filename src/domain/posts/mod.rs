//! Posts: creation with hashtags, mentions and media, edits with history,
//! deletion, and the reads that assemble a post for a viewer. Owns `posts`,
//! `post_edits`, `post_hashtags`, `post_mentions`, `reactions` and `post_views`.
//!
//! A post is visible to a viewer when it is not deleted, its author is active,
//! and no block stands between the two. Invisible posts answer 404.

pub mod reactions;
pub mod text;

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::types::Json;
use sqlx::{PgConnection, PgExecutor, PgPool};
use utoipa::ToSchema;

use crate::domain::accounts::Principal;
use crate::domain::events::{DomainEvent, EventSink};
use crate::domain::media::{self, MediaService, MediaView};
use crate::domain::pagination::{paginate, IdKey, Page, PageParams};
use crate::domain::social::{self, PublicProfile};
use crate::domain::DomainError;

pub use reactions::ReactionKind;
use text::Text;

pub const MAX_MEDIA: usize = 4;

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Mention {
    pub id: i64,
    pub username: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PostCounts {
    pub comments: i64,
    /// Distinct viewers.
    pub views: i64,
    /// Reactions by kind; kinds nobody used are absent.
    #[schema(value_type = BTreeMap<String, i64>)]
    pub reactions: BTreeMap<ReactionKind, i64>,
    pub reactions_total: i64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PostView {
    pub id: i64,
    pub author: PublicProfile,
    pub text: String,
    pub hashtags: Vec<String>,
    pub mentions: Vec<Mention>,
    /// Attached images, in the order given at creation.
    pub media: Vec<MediaView>,
    pub counts: PostCounts,
    /// The caller's own reaction, if any.
    pub my_reaction: Option<ReactionKind>,
    pub created_at: DateTime<Utc>,
    pub edited_at: Option<DateTime<Utc>>,
    /// Why moderation hid the post; only its author sees a hidden post.
    pub hidden_reason: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PostVersion {
    pub text: String,
    /// When this version was published.
    pub published_at: DateTime<Utc>,
    /// When an edit replaced it; null for the current version.
    pub replaced_at: Option<DateTime<Utc>>,
}

struct PostRow {
    id: i64,
    author_id: i64,
    text: String,
    created_at: DateTime<Utc>,
    edited_at: Option<DateTime<Utc>>,
    comments_count: i64,
    views_count: i64,
    hidden_reason: Option<String>,
    hashtags: Vec<String>,
    mentions: Json<Vec<Mention>>,
    reactions: Json<BTreeMap<ReactionKind, i64>>,
    my_reaction: Option<ReactionKind>,
}

fn invalid_text(message: String) -> DomainError {
    DomainError::invalid("text", message)
}

/// The author of a post the viewer may see, or 404.
pub async fn visible_author(
    db: impl PgExecutor<'_>,
    viewer: Option<i64>,
    post_id: i64,
) -> Result<i64, DomainError> {
    sqlx::query_scalar!(
        r#"SELECT p.author_id AS "author_id!" FROM visible_posts($2) p WHERE p.id = $1"#,
        post_id,
        viewer as Option<i64>
    )
    .fetch_optional(db)
    .await?
    .ok_or(DomainError::NotFound("post"))
}

/// Stores the tags and the mentions of existing users (not those in a block
/// relation with the author); returns the ids of the users mentioned.
async fn store_tags_and_mentions(
    tx: &mut PgConnection,
    post_id: i64,
    author_id: i64,
    text: &Text,
) -> Result<Vec<i64>, DomainError> {
    let text = text.as_str();
    let tags = text::hashtags(text);
    sqlx::query!(
        "INSERT INTO post_hashtags (post_id, tag) SELECT $1, unnest($2::text[]) ON CONFLICT DO NOTHING",
        post_id,
        &tags
    )
    .execute(&mut *tx)
    .await?;
    let names = text::mentions(text);
    let mentioned = sqlx::query_scalar!(
        "INSERT INTO post_mentions (post_id, user_id)
         SELECT $1, u.id FROM visible_users($3) u WHERE u.username = ANY($2)
         ON CONFLICT DO NOTHING
         RETURNING user_id",
        post_id,
        &names,
        author_id
    )
    .fetch_all(&mut *tx)
    .await?;
    Ok(mentioned)
}

/// Writes a post in the caller's transaction; returns its id and the events
/// that announce it, for the caller to commit.
pub async fn create(
    tx: &mut PgConnection,
    author_id: i64,
    raw_text: &str,
    media_ids: &[i64],
) -> Result<(i64, Vec<DomainEvent>), DomainError> {
    let text = text::validate(raw_text, text::TEXT_MAX).map_err(invalid_text)?;
    if media_ids.len() > MAX_MEDIA {
        return Err(DomainError::invalid(
            "media_ids",
            format!("at most {MAX_MEDIA} media per post"),
        ));
    }
    let post_id = sqlx::query_scalar!(
        "INSERT INTO posts (author_id, text) VALUES ($1, $2) RETURNING id",
        author_id,
        text.as_str()
    )
    .fetch_one(&mut *tx)
    .await?;
    let mentioned = store_tags_and_mentions(tx, post_id, author_id, &text).await?;
    media::attach(tx, author_id, post_id, media_ids).await?;
    let mut announced = vec![DomainEvent::PostCreated { post_id, author_id }];
    announced.extend(
        mentioned
            .into_iter()
            .filter(|id| *id != author_id)
            .map(|user_id| DomainEvent::Mentioned {
                post_id,
                author_id,
                user_id,
            }),
    );
    Ok((post_id, announced))
}

/// The posts the viewer may see among `ids`, fully assembled, in the order of `ids`.
pub async fn load(
    db: &PgPool,
    media: &MediaService,
    viewer: Option<i64>,
    ids: &[i64],
) -> Result<Vec<PostView>, DomainError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let rows = rows(db, viewer, ids).await?;
    let (found, author_ids) = keys(&rows);
    // Independent reads, on two pool connections at once.
    let (attachments, authors) = tokio::try_join!(
        async { media.for_posts(db, &found).await.map_err(DomainError::from) },
        social::profiles(db, viewer, &author_ids),
    )?;
    Ok(assemble(ids, rows, attachments, authors))
}

/// [`load`] inside a transaction, which sees its own writes: a write answers
/// from what it wrote, before it commits.
pub async fn load_in(
    conn: &mut PgConnection,
    media: &MediaService,
    viewer: Option<i64>,
    ids: &[i64],
) -> Result<Vec<PostView>, DomainError> {
    let rows = rows(&mut *conn, viewer, ids).await?;
    let (found, author_ids) = keys(&rows);
    let attachments = media.for_posts(&mut *conn, &found).await?;
    let authors = social::profiles(&mut *conn, viewer, &author_ids).await?;
    Ok(assemble(ids, rows, attachments, authors))
}

/// One round trip for the posts and what hangs off them (tags, mentions,
/// reaction counts, the viewer's reaction): a feed page is 20 of these.
async fn rows(
    db: impl PgExecutor<'_>,
    viewer: Option<i64>,
    ids: &[i64],
) -> Result<Vec<PostRow>, DomainError> {
    Ok(sqlx::query_as!(
        PostRow,
        r#"SELECT p.id AS "id!", p.author_id AS "author_id!", p.text AS "text!",
                  p.created_at AS "created_at!", p.edited_at, p.comments_count AS "comments_count!",
                  p.views_count AS "views_count!", p.hidden_reason,
                  ARRAY(SELECT t.tag FROM post_hashtags t WHERE t.post_id = p.id ORDER BY t.tag)
                      AS "hashtags!",
                  (SELECT coalesce(json_agg(json_build_object('id', mu.id, 'username', mu.username)
                                            ORDER BY mu.username), '[]')
                   FROM post_mentions m JOIN visible_users($2) mu ON mu.id = m.user_id
                   WHERE m.post_id = p.id) AS "mentions!: Json<Vec<Mention>>",
                  (SELECT coalesce(json_object_agg(k.kind, k.n), '{}')
                   FROM (SELECT r.kind, count(*) AS n FROM reactions r WHERE r.post_id = p.id
                         GROUP BY r.kind) k) AS "reactions!: Json<BTreeMap<ReactionKind, i64>>",
                  (SELECT r.kind FROM reactions r WHERE r.post_id = p.id AND r.user_id = $2)
                      AS "my_reaction: ReactionKind"
           FROM visible_posts($2) p WHERE p.id = ANY($1)"#,
        ids,
        viewer as Option<i64>
    )
    .fetch_all(db)
    .await?)
}

/// The posts found, and their authors.
fn keys(rows: &[PostRow]) -> (Vec<i64>, Vec<i64>) {
    (
        rows.iter().map(|r| r.id).collect(),
        rows.iter().map(|r| r.author_id).collect(),
    )
}

fn assemble(
    ids: &[i64],
    rows: Vec<PostRow>,
    mut attachments: HashMap<i64, Vec<MediaView>>,
    authors: HashMap<i64, PublicProfile>,
) -> Vec<PostView> {
    let mut by_id: HashMap<i64, PostView> = HashMap::new();
    for row in rows {
        let Some(author) = authors.get(&row.author_id).cloned() else {
            continue;
        };
        let kinds = row.reactions.0;
        let view = PostView {
            id: row.id,
            author,
            text: row.text,
            hashtags: row.hashtags,
            mentions: row.mentions.0,
            media: attachments.remove(&row.id).unwrap_or_default(),
            counts: PostCounts {
                comments: row.comments_count,
                views: row.views_count,
                reactions_total: kinds.values().sum(),
                reactions: kinds,
            },
            my_reaction: row.my_reaction,
            created_at: row.created_at,
            edited_at: row.edited_at,
            hidden_reason: row.hidden_reason,
        };
        by_id.insert(row.id, view);
    }
    ids.iter().filter_map(|id| by_id.remove(id)).collect()
}

pub async fn get(
    db: &PgPool,
    media: &MediaService,
    viewer: Option<i64>,
    post_id: i64,
) -> Result<PostView, DomainError> {
    load(db, media, viewer, &[post_id])
        .await?
        .pop()
        .ok_or(DomainError::NotFound("post"))
}

/// [`get`] inside the transaction of a write.
pub async fn get_in(
    conn: &mut PgConnection,
    media: &MediaService,
    viewer: Option<i64>,
    post_id: i64,
) -> Result<PostView, DomainError> {
    load_in(conn, media, viewer, &[post_id])
        .await?
        .pop()
        .ok_or(DomainError::NotFound("post"))
}

/// The author only. The text before the edit goes into the history.
pub async fn edit(
    db: &PgPool,
    events: &EventSink,
    editor: i64,
    post_id: i64,
    raw_text: &str,
) -> Result<(), DomainError> {
    let author_id = visible_author(db, Some(editor), post_id).await?;
    if author_id != editor {
        return Err(DomainError::Forbidden("only the author may edit a post"));
    }
    let text = text::validate(raw_text, text::TEXT_MAX).map_err(invalid_text)?;
    let mut tx = db.begin().await?;
    let current = sqlx::query!(
        "SELECT text, created_at, edited_at FROM posts WHERE id = $1 AND deleted_at IS NULL FOR UPDATE",
        post_id
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(DomainError::NotFound("post"))?;
    sqlx::query!(
        "INSERT INTO post_edits (post_id, text, valid_from) VALUES ($1, $2, $3)",
        post_id,
        current.text,
        current.edited_at.unwrap_or(current.created_at)
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!(
        "UPDATE posts SET text = $2, edited_at = now() WHERE id = $1",
        post_id,
        text.as_str()
    )
    .execute(&mut *tx)
    .await?;
    let before: Vec<i64> = sqlx::query_scalar!(
        "SELECT user_id FROM post_mentions WHERE post_id = $1",
        post_id
    )
    .fetch_all(&mut *tx)
    .await?;
    sqlx::query!("DELETE FROM post_hashtags WHERE post_id = $1", post_id)
        .execute(&mut *tx)
        .await?;
    sqlx::query!("DELETE FROM post_mentions WHERE post_id = $1", post_id)
        .execute(&mut *tx)
        .await?;
    let after = store_tags_and_mentions(&mut tx, post_id, author_id, &text).await?;
    let mut announced = vec![DomainEvent::PostEdited { post_id, author_id }];
    announced.extend(
        after
            .into_iter()
            .filter(|id| *id != author_id && !before.contains(id))
            .map(|user_id| DomainEvent::Mentioned {
                post_id,
                author_id,
                user_id,
            }),
    );
    events.commit(tx, announced).await?;
    Ok(())
}

/// The author, or a moderator or admin.
pub async fn delete(
    db: &PgPool,
    events: &EventSink,
    by: &Principal,
    post_id: i64,
) -> Result<(), DomainError> {
    let author_id = visible_author(db, Some(by.user_id), post_id).await?;
    if author_id != by.user_id && !by.role.can_moderate() {
        return Err(DomainError::Forbidden(
            "only the author or a moderator may delete a post",
        ));
    }
    let mut tx = db.begin().await?;
    let deleted = sqlx::query!(
        "UPDATE posts SET deleted_at = now() WHERE id = $1 AND deleted_at IS NULL",
        post_id
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    let announced = if deleted > 0 {
        vec![DomainEvent::PostDeleted { post_id, author_id }]
    } else {
        Vec::new()
    };
    events.commit(tx, announced).await?;
    Ok(())
}

/// Every version, oldest first, the current one last.
pub async fn history(
    db: &PgPool,
    viewer: Option<i64>,
    post_id: i64,
) -> Result<Vec<PostVersion>, DomainError> {
    visible_author(db, viewer, post_id).await?;
    let mut versions: Vec<PostVersion> = sqlx::query_as!(
        PostVersion,
        r#"SELECT text, valid_from AS published_at, replaced_at AS "replaced_at?" FROM post_edits
           WHERE post_id = $1 ORDER BY id"#,
        post_id
    )
    .fetch_all(db)
    .await?;
    let current = sqlx::query!(
        "SELECT text, created_at, edited_at FROM posts WHERE id = $1",
        post_id
    )
    .fetch_one(db)
    .await?;
    versions.push(PostVersion {
        text: current.text,
        published_at: current.edited_at.unwrap_or(current.created_at),
        replaced_at: None,
    });
    Ok(versions)
}

/// A user's posts, newest first.
pub async fn by_user(
    db: &PgPool,
    media: &MediaService,
    viewer: Option<i64>,
    user_id: i64,
    page: &PageParams,
) -> Result<Page<PostView>, DomainError> {
    social::profile(db, viewer, user_id).await?;
    let limit = page.limit()?;
    let cursor: Option<IdKey> = page.cursor()?;
    let ids = sqlx::query_scalar!(
        r#"SELECT p.id AS "id!" FROM visible_posts($4) p
           WHERE p.author_id = $1 AND ($2::bigint IS NULL OR p.id < $2)
           ORDER BY p.id DESC LIMIT $3"#,
        user_id,
        cursor.map(|c| c.id),
        limit + 1,
        viewer as Option<i64>
    )
    .fetch_all(db)
    .await?;
    let (ids, next_cursor) = paginate(ids, limit, |id| IdKey { id: *id });
    Ok(Page {
        items: load(db, media, viewer, &ids).await?,
        next_cursor,
    })
}
