-- Moderation: the analyzer's decisions, and content hidden by them.

-- Hidden content is shown to its author only. The reason is the decision's.
ALTER TABLE posts ADD COLUMN hidden_at TIMESTAMPTZ, ADD COLUMN hidden_reason TEXT;
ALTER TABLE comments ADD COLUMN hidden_at TIMESTAMPTZ, ADD COLUMN hidden_reason TEXT;

-- The outbox gets one pending row per consumer that must handle an event.
-- Each consumer locks and deletes only its own rows: with done-flags on the
-- event row, one consumer's lock made another skip the event and handle the
-- next one first. The moderation consumer reads first; the feed and
-- notification consumers stop short of its oldest pending event, so hidden
-- content is never fanned out or notified.
CREATE TABLE outbox_pending (
    consumer TEXT   NOT NULL CHECK (consumer IN ('moderation', 'feed', 'notifications')),
    event_id BIGINT NOT NULL REFERENCES domain_events (id) ON DELETE CASCADE,
    PRIMARY KEY (consumer, event_id)
);
CREATE INDEX outbox_pending_event_idx ON outbox_pending (event_id);
INSERT INTO outbox_pending (consumer, event_id)
    SELECT 'feed', id FROM domain_events WHERE NOT feed_done;
INSERT INTO outbox_pending (consumer, event_id)
    SELECT 'notifications', id FROM domain_events WHERE NOT notify_done;
ALTER TABLE domain_events DROP COLUMN feed_done, DROP COLUMN notify_done;

-- Every decision, for the author's appeal and the moderators' audit.
CREATE TABLE moderation_decisions (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    subject_type TEXT        NOT NULL CHECK (subject_type IN ('post', 'comment')),
    subject_id   BIGINT      NOT NULL,
    author_id    BIGINT      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    action       TEXT        NOT NULL CHECK (action IN ('hide', 'restore')),
    reason       TEXT        NOT NULL,
    -- NULL: the analyzer decided.
    decided_by   BIGINT      REFERENCES users (id) ON DELETE SET NULL,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX moderation_decisions_subject_idx ON moderation_decisions (subject_type, subject_id, id);
