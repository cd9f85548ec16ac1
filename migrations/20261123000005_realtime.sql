-- The real-time engine's tables: the domain-event outbox, home timelines and
-- notifications.

-- Domain events are written in the same transaction as the change they
-- announce, so none is lost if a process or a supervisor dies: each consumer
-- marks the rows it has handled, again in the same transaction as its effects.
CREATE TABLE domain_events (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    payload       JSONB       NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    feed_done     BOOLEAN     NOT NULL DEFAULT false,
    notify_done   BOOLEAN     NOT NULL DEFAULT false
);
CREATE INDEX domain_events_feed_todo ON domain_events (id) WHERE NOT feed_done;
CREATE INDEX domain_events_notify_todo ON domain_events (id) WHERE NOT notify_done;

-- Home timelines, written by the feed supervisor (fan-out on write).
CREATE TABLE timelines (
    user_id    BIGINT      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    post_id    BIGINT      NOT NULL REFERENCES posts (id) ON DELETE CASCADE,
    author_id  BIGINT      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (user_id, post_id)
);
CREATE INDEX timelines_user_author_idx ON timelines (user_id, author_id);

-- Authors with more followers than FANOUT_LIMIT: their posts are not written
-- out but merged into timelines when read.
CREATE TABLE feed_pull_authors (
    user_id    BIGINT      PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    marked_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TYPE notification_kind AS ENUM ('follow', 'reaction', 'comment', 'reply', 'mention', 'moderation');

CREATE TABLE notifications (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id    BIGINT            NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind       notification_kind NOT NULL,
    actor_id   BIGINT            REFERENCES users (id) ON DELETE CASCADE,
    post_id    BIGINT            REFERENCES posts (id) ON DELETE CASCADE,
    comment_id BIGINT            REFERENCES comments (id) ON DELETE CASCADE,
    -- Repeats of the same thing (liking, unliking, liking again) collapse
    -- into one notification: one row per key.
    dedup_key  TEXT              NOT NULL,
    data       JSONB             NOT NULL DEFAULT '{}',
    created_at TIMESTAMPTZ       NOT NULL DEFAULT now(),
    read_at    TIMESTAMPTZ,
    UNIQUE (user_id, dedup_key)
);
CREATE INDEX notifications_user_idx ON notifications (user_id, id DESC);
CREATE INDEX notifications_unread_idx ON notifications (user_id) WHERE read_at IS NULL;
