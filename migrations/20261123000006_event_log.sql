-- The per-user event log behind real-time delivery and replay: every event a
-- user is sent is stored here first, with an id that increases strictly per user.

CREATE TABLE user_event_seq (
    user_id        BIGINT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    last_id        BIGINT NOT NULL DEFAULT 0,
    -- Events up to this id may have been pruned; replay from before it cannot be exact.
    pruned_through BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE user_events (
    user_id    BIGINT      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    id         BIGINT      NOT NULL,
    kind       TEXT        NOT NULL,
    data       JSONB       NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, id)
);
CREATE INDEX user_events_created_idx ON user_events (created_at);
