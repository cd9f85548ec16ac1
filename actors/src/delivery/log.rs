//! The per-user event log: every event a user is sent is appended here first,
//! so a client that reconnects with the last id it saw gets exactly what it
//! missed. Owns `user_event_seq` and `user_events`.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use sqlx::{PgConnection, PgPool};

/// Kept at least this long...
pub const KEEP_HOURS: i64 = 24;
/// ...or at least this many per user, whichever keeps more.
pub const KEEP_LAST: i64 = 1000;

/// An event's `data`, serialized once and shared: one post reaches 10,000
/// followers as 10,000 events holding the same payload, so it is neither
/// copied nor serialized again per follower (nor per node it crosses).
#[derive(Debug, Clone)]
pub struct Payload(Arc<RawValue>);

impl Payload {
    pub fn new(value: &serde_json::Value) -> Self {
        // A `Value` always serializes; the `null` fallback only satisfies the type.
        Self(Arc::from(
            serde_json::value::to_raw_value(value).unwrap_or_default(),
        ))
    }

    /// Wraps JSON text (from the log); fails if it is not valid JSON.
    pub fn from_json(text: String) -> Result<Self, serde_json::Error> {
        Ok(Self(Arc::from(RawValue::from_string(text)?)))
    }

    /// The JSON text.
    pub fn get(&self) -> &str {
        self.0.get()
    }

    /// Whether both are the very same payload (not merely equal).
    pub fn same(&self, other: &Payload) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl PartialEq for Payload {
    fn eq(&self, other: &Self) -> bool {
        self.get() == other.get()
    }
}

impl Serialize for Payload {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Payload {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(Self(Arc::from(Box::<RawValue>::deserialize(deserializer)?)))
    }
}

/// One event in a user's stream, as sent to clients: `{id, type, ts, data}`.
/// Ephemeral events (pong, error, resync) have no id.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct UserEvent {
    #[serde(skip)]
    pub user_id: i64,
    pub id: Option<i64>,
    #[serde(rename = "type")]
    pub kind: String,
    pub ts: DateTime<Utc>,
    pub data: Payload,
}

impl UserEvent {
    pub fn ephemeral(user_id: i64, kind: &str, data: serde_json::Value) -> Self {
        Self {
            user_id,
            id: None,
            kind: kind.to_owned(),
            ts: Utc::now(),
            data: Payload::new(&data),
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| String::from("{}"))
    }
}

/// Whose streams an append goes to.
#[derive(Debug, Clone, Copy)]
pub enum Recipients<'a> {
    /// These users, which must be distinct.
    Users(&'a [i64]),
    /// The next `limit` followers of `author_id` after the id `after`, in id
    /// order: one fan-out step. Chosen by the append's own statement, which
    /// saves the round trip of reading them first (each step is on the
    /// delivery's critical path).
    Followers {
        author_id: i64,
        after: i64,
        limit: i64,
    },
}

/// Appends the same event to the streams of `to`, in the caller's
/// transaction; returns the events in user id order. The row lock on each
/// user's counter orders concurrent writers, so ids commit in order per user.
pub async fn append(
    tx: &mut PgConnection,
    to: Recipients<'_>,
    kind: &str,
    data: &serde_json::Value,
) -> Result<Vec<UserEvent>, sqlx::Error> {
    // One statement serves both: the branch not asked for selects nothing.
    let (users, author_id, after, limit): (&[i64], Option<i64>, i64, i64) = match to {
        Recipients::Users([]) => return Ok(Vec::new()),
        Recipients::Users(users) => (users, None, 0, 0),
        Recipients::Followers {
            author_id,
            after,
            limit,
        } => (&[], Some(author_id), after, limit),
    };
    let payload = Payload::new(data);
    let rows = sqlx::query!(
        r#"WITH targets AS (
               SELECT u AS user_id FROM unnest($1::bigint[]) AS u
               UNION ALL
               (SELECT follower_id FROM follows WHERE followee_id = $2 AND follower_id > $3
                ORDER BY follower_id LIMIT $4)
           ), seq AS (
               INSERT INTO user_event_seq (user_id, last_id) SELECT user_id, 1 FROM targets
               ON CONFLICT (user_id) DO UPDATE SET last_id = user_event_seq.last_id + 1
               RETURNING user_id, last_id
           )
           INSERT INTO user_events (user_id, id, kind, data)
           SELECT user_id, last_id, $5, $6 FROM seq
           RETURNING user_id, id, created_at"#,
        users,
        author_id,
        after,
        limit,
        kind,
        data
    )
    .fetch_all(&mut *tx)
    .await?;
    let mut events: Vec<UserEvent> = rows
        .into_iter()
        .map(|r| UserEvent {
            user_id: r.user_id,
            id: Some(r.id),
            kind: kind.to_owned(),
            ts: r.created_at,
            data: payload.clone(),
        })
        .collect();
    // RETURNING promises no order; a fan-out resumes after the last one.
    events.sort_unstable_by_key(|e| e.user_id);
    Ok(events)
}

pub enum Replay {
    /// Every event after the given id, in order.
    Events(Vec<UserEvent>),
    /// The id is older than what is kept (or unknown): refetch over REST,
    /// then continue from `last_id`, where the stream stands now.
    Resync { last_id: i64 },
}

/// Events of `user_id` after `after`, at most `limit`.
pub async fn replay(
    db: &PgPool,
    user_id: i64,
    after: i64,
    limit: i64,
) -> Result<Replay, sqlx::Error> {
    let seq = sqlx::query!(
        "SELECT last_id, pruned_through FROM user_event_seq WHERE user_id = $1",
        user_id
    )
    .fetch_optional(db)
    .await?;
    let (last_id, pruned_through) = seq.map_or((0, 0), |s| (s.last_id, s.pruned_through));
    if after < pruned_through || after > last_id || after < 0 {
        return Ok(Replay::Resync { last_id });
    }
    let rows = sqlx::query!(
        r#"SELECT id, kind, data::text AS "data!", created_at FROM user_events
           WHERE user_id = $1 AND id > $2 ORDER BY id LIMIT $3"#,
        user_id,
        after,
        limit
    )
    .fetch_all(db)
    .await?;
    let events = rows
        .into_iter()
        .map(|r| {
            Ok(UserEvent {
                user_id,
                id: Some(r.id),
                kind: r.kind,
                ts: r.created_at,
                data: Payload::from_json(r.data).map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()?;
    Ok(Replay::Events(events))
}

/// The id of the newest event of `user_id` (0 when none).
pub async fn last_id(db: &PgPool, user_id: i64) -> Result<i64, sqlx::Error> {
    Ok(sqlx::query_scalar!(
        "SELECT last_id FROM user_event_seq WHERE user_id = $1",
        user_id
    )
    .fetch_optional(db)
    .await?
    .unwrap_or(0))
}

/// Deletes events older than the retention window that are not among a
/// user's last `KEEP_LAST`, and records how far each stream was pruned.
pub async fn prune(db: &PgPool) -> Result<u64, sqlx::Error> {
    let mut tx = db.begin().await?;
    let pruned = sqlx::query!(
        r#"WITH gone AS (
               DELETE FROM user_events e USING user_event_seq s
               WHERE e.user_id = s.user_id
                 AND e.created_at < now() - make_interval(hours => $1::int)
                 AND e.id <= s.last_id - $2
               RETURNING e.user_id, e.id
           ), marks AS (
               SELECT user_id, max(id) AS max_id FROM gone GROUP BY user_id
           )
           UPDATE user_event_seq s SET pruned_through = GREATEST(s.pruned_through, m.max_id)
           FROM marks m WHERE s.user_id = m.user_id"#,
        i32::try_from(KEEP_HOURS).unwrap_or(24),
        KEEP_LAST
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    tx.commit().await?;
    Ok(pruned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_frame_carries_its_payload_verbatim() {
        let data = serde_json::json!({ "text": "a \"quoted\" line\n", "n": [1, 2] });
        let event = UserEvent {
            user_id: 5,
            id: Some(3),
            kind: "feed.post".into(),
            ts: Utc::now(),
            data: Payload::new(&data),
        };
        let frame: serde_json::Value = serde_json::from_str(&event.to_json()).unwrap();
        assert_eq!(frame["id"], 3);
        assert_eq!(frame["type"], "feed.post");
        assert_eq!(frame["data"], data);
        assert!(frame.get("user_id").is_none());
    }

    #[test]
    fn copies_share_one_payload() {
        let a = Payload::new(&serde_json::json!({ "id": 1 }));
        let b = a.clone();
        let c = Payload::new(&serde_json::json!({ "id": 1 }));
        assert!(a.same(&b));
        assert!(!a.same(&c));
        assert_eq!(a, c);
        assert!(Payload::from_json("{\"id\": 1}".into()).is_ok());
        assert!(Payload::from_json("{\"id\":".into()).is_err());
    }
}
