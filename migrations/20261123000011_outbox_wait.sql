-- An outbox row may wait before its consumer takes it up. The feed
-- supervisor's timeline write for a new post (a bulk insert, 10,000 rows for
-- 10,000 followers) waits until the post's live delivery is over, instead of
-- competing with it for the same cores. NULL: take it up at once.
ALTER TABLE outbox_pending ADD COLUMN not_before TIMESTAMPTZ;
