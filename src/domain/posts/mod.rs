//! Posts: creation with hashtags, mentions and media, edits with history,
//! deletion, and the reads that assemble a post for a viewer. Owns `posts`,
//! `post_edits`, `post_hashtags`, `post_mentions`, `reactions` and `post_views`.
//!
//! A post is visible to a viewer when it is not deleted, its author is active,
//! and no block stands between the two. Invisible posts answer 404.

pub mod reactions;
pub mod text;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::types::Json;
use sqlx::{PgConnection, PgExecutor, PgPool};
use utoipa::ToSchema;

use crate::domain::accounts::users::{self, CachedUser};
use crate::domain::accounts::{Principal, Status};
use crate::domain::cache::Caches;
use crate::domain::events::{DomainEvent, EventSink};
use crate::domain::media::{self, MediaService, MediaView, StoredMedia};
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

/// A post as the read cache keeps it: what every viewer shares, whatever its
/// state (a deleted or hidden post is kept as such, so it answers 404 from
/// memory too). What one viewer may see of it is decided on each read.
#[derive(Debug)]
pub struct CachedPost {
    pub id: i64,
    pub author_id: i64,
    pub text: String,
    pub created_at: DateTime<Utc>,
    pub edited_at: Option<DateTime<Utc>>,
    pub comments_count: i64,
    pub views_count: i64,
    pub hidden: bool,
    pub hidden_reason: Option<String>,
    pub deleted: bool,
    pub hashtags: Vec<String>,
    /// The users mentioned, whatever their state.
    pub mentions: Vec<i64>,
    pub reactions: Json<BTreeMap<ReactionKind, i64>>,
    pub media: Vec<StoredMedia>,
}

impl CachedPost {
    /// The rule of `visible_posts`, over cached rows: not deleted, by an
    /// active author with no block between them and the viewer, and not
    /// hidden unless the viewer wrote it.
    fn visible_to(&self, viewer: &Viewer, author: Option<&CachedUser>) -> bool {
        !self.deleted
            && (!self.hidden || viewer.id == Some(self.author_id))
            && author.is_some_and(|a| viewer.sees(a))
    }
}

/// What of a viewer's own state a page needs: one query for the page.
#[derive(Default)]
pub(crate) struct Viewer {
    id: Option<i64>,
    /// Users in a block relation with the viewer, either way.
    blocked: HashSet<i64>,
    follows: HashSet<i64>,
    followers: HashSet<i64>,
    reactions: HashMap<i64, ReactionKind>,
}

impl Viewer {
    /// The rule of `visible_users`: active, and no block either way.
    pub(crate) fn sees(&self, user: &CachedUser) -> bool {
        user.status == Status::Active && !self.blocked.contains(&user.id)
    }

    pub(crate) fn profile(&self, user: &CachedUser) -> PublicProfile {
        PublicProfile {
            id: user.id,
            username: user.username.clone(),
            display_name: user.display_name.clone(),
            bio: user.bio.clone(),
            role: user.role,
            created_at: user.created_at,
            followers_count: user.followers_count,
            following_count: user.following_count,
            posts_count: user.posts_count,
            followed_by_me: self.id.map(|_| self.follows.contains(&user.id)),
            follows_me: self.id.map(|_| self.followers.contains(&user.id)),
        }
    }

    /// The viewer's blocks and follows among `users`, and their reactions
    /// among `posts`.
    pub(crate) async fn load(
        db: &PgPool,
        viewer: Option<i64>,
        users: &[i64],
        posts: &[i64],
    ) -> Result<Self, DomainError> {
        let Some(id) = viewer else {
            return Ok(Self::default());
        };
        let row = sqlx::query!(
            r#"SELECT
                 ARRAY(SELECT b.blocked_id FROM blocks b WHERE b.blocker_id = $1 AND b.blocked_id = ANY($2)
                       UNION ALL
                       SELECT b.blocker_id FROM blocks b WHERE b.blocked_id = $1 AND b.blocker_id = ANY($2))
                     AS "blocked!",
                 ARRAY(SELECT f.followee_id FROM follows f WHERE f.follower_id = $1 AND f.followee_id = ANY($2))
                     AS "follows!",
                 ARRAY(SELECT f.follower_id FROM follows f WHERE f.followee_id = $1 AND f.follower_id = ANY($2))
                     AS "followers!",
                 (SELECT coalesce(json_agg(json_build_object('post_id', r.post_id, 'kind', r.kind)), '[]')
                  FROM reactions r WHERE r.user_id = $1 AND r.post_id = ANY($3))
                     AS "reactions!: Json<Vec<MyReaction>>""#,
            id,
            users,
            posts
        )
        .fetch_one(db)
        .await?;
        Ok(Self {
            id: Some(id),
            blocked: row.blocked.into_iter().collect(),
            follows: row.follows.into_iter().collect(),
            followers: row.followers.into_iter().collect(),
            reactions: row
                .reactions
                .0
                .into_iter()
                .map(|r| (r.post_id, r.kind))
                .collect(),
        })
    }
}

#[derive(Debug, Deserialize)]
struct MyReaction {
    post_id: i64,
    kind: ReactionKind,
}

/// The posts among `ids` that exist, whatever their state, from the cache
/// where it has them.
pub(crate) async fn cached(
    db: &PgPool,
    caches: &Caches,
    ids: &[i64],
) -> Result<HashMap<i64, Arc<CachedPost>>, DomainError> {
    let (mut found, missed, ticket) = caches.posts.get_many(ids);
    if missed.is_empty() {
        return Ok(found);
    }
    let (rows, mut stored) = tokio::try_join!(
        async {
            sqlx::query!(
                r#"SELECT p.id, p.author_id, p.text, p.created_at, p.edited_at,
                          p.comments_count, p.views_count, p.hidden_at IS NOT NULL AS "hidden!",
                          p.hidden_reason, p.deleted_at IS NOT NULL AS "deleted!",
                          ARRAY(SELECT t.tag FROM post_hashtags t WHERE t.post_id = p.id ORDER BY t.tag)
                              AS "hashtags!",
                          ARRAY(SELECT m.user_id FROM post_mentions m WHERE m.post_id = p.id)
                              AS "mentions!",
                          (SELECT coalesce(json_object_agg(k.kind, k.n), '{}')
                           FROM (SELECT r.kind, count(*) AS n FROM reactions r WHERE r.post_id = p.id
                                 GROUP BY r.kind) k) AS "reactions!: Json<BTreeMap<ReactionKind, i64>>"
                   FROM posts p WHERE p.id = ANY($1)"#,
                &missed
            )
            .fetch_all(db)
            .await
        },
        media::stored_for_posts(db, &missed),
    )?;
    let loaded: HashMap<i64, Arc<CachedPost>> = rows
        .into_iter()
        .map(|r| {
            let post = CachedPost {
                id: r.id,
                author_id: r.author_id,
                text: r.text,
                created_at: r.created_at,
                edited_at: r.edited_at,
                comments_count: r.comments_count,
                views_count: r.views_count,
                hidden: r.hidden,
                hidden_reason: r.hidden_reason,
                deleted: r.deleted,
                hashtags: r.hashtags,
                mentions: r.mentions,
                reactions: r.reactions,
                media: stored.remove(&r.id).unwrap_or_default(),
            };
            (r.id, Arc::new(post))
        })
        .collect();
    caches.posts.fill(ticket, &missed, &loaded);
    found.extend(loaded);
    Ok(found)
}

/// The posts the viewer may see among `ids`, fully assembled, in the order
/// of `ids`. Posts and users come from the read cache; the viewer's own
/// state (blocks, follows, reactions) is one query for the page.
pub async fn load(
    db: &PgPool,
    caches: &Caches,
    media: &MediaService,
    viewer: Option<i64>,
    ids: &[i64],
) -> Result<Vec<PostView>, DomainError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let posts = cached(db, caches, ids).await?;
    let mut user_ids: Vec<i64> = posts
        .values()
        .flat_map(|p| std::iter::once(p.author_id).chain(p.mentions.iter().copied()))
        .collect();
    user_ids.sort_unstable();
    user_ids.dedup();
    let post_ids: Vec<i64> = posts.keys().copied().collect();
    let (users, me) = tokio::try_join!(
        async {
            users::cached(db, caches, &user_ids)
                .await
                .map_err(DomainError::from)
        },
        Viewer::load(db, viewer, &user_ids, &post_ids),
    )?;
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        let Some(post) = posts.get(id) else { continue };
        let author = users.get(&post.author_id).map(|a| &**a);
        let Some(author) = author.filter(|a| post.visible_to(&me, Some(a))) else {
            continue;
        };
        let mut mentions: Vec<Mention> = post
            .mentions
            .iter()
            .filter_map(|m| users.get(m))
            .filter(|u| me.sees(u))
            .map(|u| Mention {
                id: u.id,
                username: u.username.clone(),
            })
            .collect();
        mentions.sort_by(|a, b| a.username.cmp(&b.username));
        let kinds = post.reactions.0.clone();
        out.push(PostView {
            id: post.id,
            author: me.profile(author),
            text: post.text.clone(),
            hashtags: post.hashtags.clone(),
            mentions,
            media: media.views(&post.media).await?,
            counts: PostCounts {
                comments: post.comments_count,
                views: post.views_count,
                reactions_total: kinds.values().sum(),
                reactions: kinds,
            },
            my_reaction: me.reactions.get(id).copied(),
            created_at: post.created_at,
            edited_at: post.edited_at,
            hidden_reason: post.hidden_reason.clone(),
        });
    }
    Ok(out)
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
    caches: &Caches,
    media: &MediaService,
    viewer: Option<i64>,
    post_id: i64,
) -> Result<PostView, DomainError> {
    load(db, caches, media, viewer, &[post_id])
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
    caches: &Caches,
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
        items: load(db, caches, media, viewer, &ids).await?,
        next_cursor,
    })
}
