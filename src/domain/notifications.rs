//! The caller's notifications over REST. The real-time engine writes them;
//! this module turns their rows into what clients see (actors as this viewer
//! may see them) and marks them read.

use chrono::{DateTime, Utc};
use rookery_actors::consumers::notifications::{self, NotificationKind};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Number;
use sqlx::PgPool;
use utoipa::openapi::schema::{
    ArrayBuilder, KnownFormat, ObjectBuilder, OneOfBuilder, Schema, SchemaFormat, Type,
};
use utoipa::openapi::RefOr;
use utoipa::{IntoParams, ToSchema};

use crate::domain::events::{DomainEvent, EventSink};
use crate::domain::pagination::{paginate, IdKey, Page, PageParams};
use crate::domain::social::{self, PublicProfile};
use crate::domain::DomainError;

#[derive(Debug, Deserialize, IntoParams)]
pub struct NotificationParams {
    /// Only unread notifications.
    #[serde(default)]
    pub unread_only: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct NotificationView {
    pub id: i64,
    pub kind: NotificationKind,
    /// Who did it.
    pub actor: Option<PublicProfile>,
    pub post_id: Option<i64>,
    pub comment_id: Option<i64>,
    /// Details by kind, e.g. `{"reaction": "love"}`.
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
    pub created_at: DateTime<Utc>,
    pub read: bool,
}

pub async fn notifications(
    db: &PgPool,
    user_id: i64,
    unread_only: bool,
    page: &PageParams,
) -> Result<Page<NotificationView>, DomainError> {
    let limit = page.limit()?;
    let before: Option<IdKey> = page.cursor()?;
    let rows =
        notifications::list(db, user_id, before.map(|k| k.id), unread_only, limit + 1).await?;
    let (rows, next_cursor) = paginate(rows, limit, |r| IdKey { id: r.id });
    let actor_ids: Vec<i64> = rows.iter().filter_map(|r| r.actor_id).collect();
    let actors = social::profiles(db, Some(user_id), &actor_ids).await?;
    let items = rows
        .into_iter()
        .map(|r| NotificationView {
            id: r.id,
            kind: r.kind,
            actor: r.actor_id.and_then(|a| actors.get(&a).cloned()),
            post_id: r.post_id,
            comment_id: r.comment_id,
            data: r.data,
            created_at: r.created_at,
            read: r.read_at.is_some(),
        })
        .collect();
    Ok(Page { items, next_cursor })
}

pub async fn unread_count(db: &PgPool, user_id: i64) -> Result<i64, DomainError> {
    Ok(notifications::unread_count(db, user_id).await?)
}

/// Either `{"ids": [...]}` or `{"all": true}`; both, or neither, is a 422.
#[derive(Debug, Deserialize)]
pub struct MarkRead {
    /// These notifications...
    #[serde(default, deserialize_with = "whole_numbers")]
    pub ids: Option<Vec<i64>>,
    /// ...or all of them.
    #[serde(default)]
    pub all: bool,
}

/// JSON has one kind of number, and JSON Schema counts `458.0` as an
/// integer: ids are read from integers in the i64 range, and from numbers
/// written with a zero fraction below 2^53 in magnitude, where a double still
/// holds every whole number exactly (past it, `-9223372036854775809` would
/// round into the i64 range).
fn whole_numbers<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<i64>>, D::Error> {
    let numbers: Option<Vec<Number>> = Option::deserialize(d)?;
    numbers
        .map(|numbers| {
            numbers
                .iter()
                .map(|n| {
                    whole_number(n).ok_or_else(|| {
                        D::Error::custom(format!("{n} is not a whole number in the 64-bit range"))
                    })
                })
                .collect()
        })
        .transpose()
}

fn whole_number(n: &Number) -> Option<i64> {
    const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53
    n.as_i64().or_else(|| {
        n.as_f64()
            .filter(|f| f.fract() == 0.0 && f.abs() < EXACT)
            .map(|f| f as i64)
    })
}

/// Written out, because the derived schema cannot say "one or the other".
impl utoipa::PartialSchema for MarkRead {
    fn schema() -> RefOr<Schema> {
        let flag = |value: bool| {
            ObjectBuilder::new()
                .schema_type(Type::Boolean)
                .enum_values(Some([value]))
        };
        let ids = ArrayBuilder::new().items(
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64))),
        );
        let these = ObjectBuilder::new()
            .description(Some("These notifications (`all` absent or false)"))
            .property("ids", ids)
            .required("ids")
            .property("all", flag(false));
        let every = ObjectBuilder::new()
            .description(Some("All of them (`ids` absent or null)"))
            .property("all", flag(true))
            .required("all")
            .property("ids", ObjectBuilder::new().schema_type(Type::Null));
        OneOfBuilder::new().item(these).item(every).into()
    }
}

impl ToSchema for MarkRead {}

/// Returns the unread count afterwards. The user's other connections are
/// told (`notifications.read`) through the outbox.
pub async fn mark_read(
    db: &PgPool,
    events: &EventSink,
    user_id: i64,
    req: &MarkRead,
) -> Result<i64, DomainError> {
    let ids = match (&req.ids, req.all) {
        (Some(_), true) | (None, false) => {
            return Err(DomainError::invalid(
                "ids",
                "send either {\"ids\": [...]} or {\"all\": true}",
            ));
        }
        (Some(ids), false) => Some(ids.clone()),
        (None, true) => None,
    };
    let mut tx = db.begin().await?;
    let changed = notifications::mark_read(&mut tx, user_id, ids.as_deref()).await?;
    if changed > 0 {
        events
            .commit(tx, vec![DomainEvent::NotificationsRead { user_id, ids }])
            .await?;
    } else {
        tx.commit().await?;
    }
    unread_count(db, user_id).await
}
