//! Domain events: every write that others may care about is announced here,
//! from one place per resource, after its transaction commits. The real-time
//! engine subscribes to route them to feeds, notifications and sockets.

use serde::Serialize;
use tokio::sync::broadcast;

use crate::posts::ReactionKind;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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
    Mentioned {
        post_id: i64,
        author_id: i64,
        user_id: i64,
    },
}

/// The one sink every domain module emits into. Cloning shares the channel.
#[derive(Clone)]
pub struct EventSink {
    tx: broadcast::Sender<DomainEvent>,
}

impl EventSink {
    pub fn new(capacity: usize) -> Self {
        Self {
            tx: broadcast::channel(capacity.max(1)).0,
        }
    }

    /// Never blocks the write path; with no subscriber the event is dropped.
    pub fn emit(&self, event: DomainEvent) {
        tracing::debug!(?event, "domain event");
        let _ = self.tx.send(event);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<DomainEvent> {
        self.tx.subscribe()
    }
}
