//! Domain events: what happened, as facts other parts of the system react to.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::outbox::ConsumerKind;

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    ToSchema,
    sqlx::Type,
)]
#[sqlx(type_name = "reaction_kind", rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum ReactionKind {
    Like,
    Love,
    Haha,
    Wow,
    Sad,
    Angry,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum DomainEvent {
    PostCreated {
        post_id: i64,
        author_id: i64,
    },
    PostEdited {
        post_id: i64,
        author_id: i64,
    },
    PostDeleted {
        post_id: i64,
        author_id: i64,
    },
    CommentCreated {
        comment_id: i64,
        post_id: i64,
        post_author_id: i64,
        author_id: i64,
        parent_author_id: Option<i64>,
    },
    ReactionAdded {
        post_id: i64,
        post_author_id: i64,
        user_id: i64,
        kind: ReactionKind,
    },
    Followed {
        follower_id: i64,
        followee_id: i64,
    },
    Unfollowed {
        follower_id: i64,
        followee_id: i64,
    },
    Blocked {
        blocker_id: i64,
        blocked_id: i64,
    },
    Mentioned {
        post_id: i64,
        author_id: i64,
        user_id: i64,
    },
    CommentEdited {
        comment_id: i64,
        post_id: i64,
        author_id: i64,
    },
    /// The feed supervisor's own follow-up to `PostCreated`: tell the
    /// followers with ids above `after` (the fan-out goes in chunks, each
    /// committed and delivered before the next is written).
    FanOut {
        post_id: i64,
        author_id: i64,
        after: i64,
    },
    /// The feed supervisor's own last step for a new post: write it into the
    /// followers' timelines (after their live events went out).
    TimelineWrite {
        post_id: i64,
        author_id: i64,
    },
    /// A user's credentials were revoked (a password change or an account
    /// deletion: all of them; `api_key_id`: that key only). Their live
    /// connections that used them close on every node.
    CredentialsRevoked {
        user_id: i64,
        api_key_id: Option<i64>,
    },
    /// A user marked notifications read (`ids`, or all when `None`).
    NotificationsRead {
        user_id: i64,
        ids: Option<Vec<i64>>,
    },
    /// A user took their reaction back.
    ReactionRemoved {
        post_id: i64,
        user_id: i64,
    },
    /// A user saw a post for the first time (its view count grew).
    PostViewed {
        post_id: i64,
        user_id: i64,
    },
    Unblocked {
        blocker_id: i64,
        blocked_id: i64,
    },
    /// A comment was deleted, with its replies.
    CommentDeleted {
        comment_id: i64,
        post_id: i64,
    },
    /// A user changed their display name or bio.
    ProfileEdited {
        user_id: i64,
    },
    /// The moderation supervisor hid content, or restored it after an edit.
    ContentModerated {
        subject: Subject,
        subject_id: i64,
        post_id: i64,
        author_id: i64,
        action: ModerationAction,
        reason: String,
    },
}

impl DomainEvent {
    /// The consumers that handle the event. Events that bring new text pass
    /// the moderation supervisor before the feed and notification supervisors
    /// act on them; the feed's own follow-up steps concern the feed alone.
    pub fn consumers(&self) -> &'static [ConsumerKind] {
        use ConsumerKind::{Feed, Moderation, Notifications};
        match self {
            Self::PostCreated { .. }
            | Self::PostEdited { .. }
            | Self::CommentCreated { .. }
            | Self::CommentEdited { .. }
            | Self::Mentioned { .. } => &[Moderation, Feed, Notifications],
            Self::FanOut { .. } | Self::TimelineWrite { .. } => &[Feed],
            Self::CredentialsRevoked { .. } => &[Notifications],
            // Only the read caches care (see `delivery::changes`).
            Self::ReactionRemoved { .. }
            | Self::PostViewed { .. }
            | Self::Unblocked { .. }
            | Self::CommentDeleted { .. }
            | Self::ProfileEdited { .. } => &[],
            _ => &[Feed, Notifications],
        }
    }
}

/// What moderation decides about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Subject {
    Post,
    Comment,
}

impl Subject {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Post => "post",
            Self::Comment => "comment",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ModerationAction {
    Hidden,
    Restored,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_text_is_moderated_first_and_fan_out_steps_stay_with_the_feed() {
        let created = DomainEvent::PostCreated {
            post_id: 1,
            author_id: 2,
        };
        assert_eq!(created.consumers()[0], ConsumerKind::Moderation);
        let step = DomainEvent::FanOut {
            post_id: 1,
            author_id: 2,
            after: 1000,
        };
        assert_eq!(step.consumers(), &[ConsumerKind::Feed]);
        let write = DomainEvent::TimelineWrite {
            post_id: 1,
            author_id: 2,
        };
        assert_eq!(write.consumers(), &[ConsumerKind::Feed]);
        let deleted = DomainEvent::PostDeleted {
            post_id: 1,
            author_id: 2,
        };
        assert_eq!(
            deleted.consumers(),
            &[ConsumerKind::Feed, ConsumerKind::Notifications]
        );
    }
}
