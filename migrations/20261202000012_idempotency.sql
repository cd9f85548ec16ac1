-- Idempotency keys: a creating write sent with `Idempotency-Key` stores its
-- answer here, in the write's own transaction, so the same key from the same
-- user within 24 hours replays that answer instead of writing again.
CREATE TABLE idempotency_keys (
    user_id     BIGINT      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    key         TEXT        NOT NULL,
    -- SHA-256 of the method, the path and the request's content: the same key
    -- with another request is refused, not replayed.
    fingerprint BYTEA       NOT NULL,
    status      SMALLINT    NOT NULL,
    location    TEXT,
    body        BYTEA       NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, key)
);
-- Pruning of keys past their 24 hours.
CREATE INDEX idempotency_keys_created_idx ON idempotency_keys (created_at);
