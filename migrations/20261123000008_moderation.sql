-- Moderation: the analyzer's decisions, and content hidden by them.

-- Hidden content is shown to its author only. The reason is the decision's.
ALTER TABLE posts ADD COLUMN hidden_at TIMESTAMPTZ, ADD COLUMN hidden_reason TEXT;
ALTER TABLE comments ADD COLUMN hidden_at TIMESTAMPTZ, ADD COLUMN hidden_reason TEXT;

-- The moderation supervisor reads the outbox first; the feed and notification
-- supervisors only take events it has passed, so hidden content is never
-- fanned out or notified. Events the engine itself records start as done.
ALTER TABLE domain_events ADD COLUMN moderation_done BOOLEAN NOT NULL DEFAULT false;
CREATE INDEX domain_events_moderation_todo ON domain_events (id) WHERE NOT moderation_done;

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
