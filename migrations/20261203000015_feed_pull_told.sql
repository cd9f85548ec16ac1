-- Which followers a pulled author's post (more followers than FANOUT_LIMIT,
-- merged into timelines on read) was logged for live. Each node logs the
-- post for the followers online on it; a follower online on two nodes
-- would get it twice, so a node logs it only for the followers whose row it
-- inserted here. Kept an hour (the nodes act within seconds), so no foreign
-- keys: they would cost a check per row on the delivery's path.
CREATE TABLE feed_pull_told (
    post_id BIGINT      NOT NULL,
    user_id BIGINT      NOT NULL,
    told_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (post_id, user_id)
);
-- Rows arrive in time order: a block-range index serves the pruning scan.
CREATE INDEX feed_pull_told_at_idx ON feed_pull_told USING brin (told_at);
