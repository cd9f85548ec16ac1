-- The social graph, posts, comments, reactions and views.

CREATE TABLE follows (
    follower_id BIGINT      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    followee_id BIGINT      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (follower_id, followee_id),
    CHECK (follower_id <> followee_id)
);
-- Followers of a user, newest first, and the keyset cursor (created_at, follower_id).
CREATE INDEX follows_followee_idx ON follows (followee_id, created_at DESC, follower_id DESC);
CREATE INDEX follows_follower_idx ON follows (follower_id, created_at DESC, followee_id DESC);

CREATE TABLE blocks (
    blocker_id BIGINT      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    blocked_id BIGINT      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (blocker_id, blocked_id),
    CHECK (blocker_id <> blocked_id)
);
CREATE INDEX blocks_blocked_idx ON blocks (blocked_id, blocker_id);

CREATE TABLE posts (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    author_id       BIGINT      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    text            TEXT        NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    edited_at       TIMESTAMPTZ,
    -- Soft delete: the row stays so ids are never reused, but every read skips it.
    deleted_at      TIMESTAMPTZ,
    -- Counters kept exact by updating them in the same transaction as the row
    -- they count (the UPDATE's row lock serialises concurrent writers).
    comments_count  BIGINT      NOT NULL DEFAULT 0,
    reactions_count BIGINT      NOT NULL DEFAULT 0,
    views_count     BIGINT      NOT NULL DEFAULT 0
);
CREATE INDEX posts_author_idx ON posts (author_id, id DESC) WHERE deleted_at IS NULL;

CREATE TABLE post_edits (
    id        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    post_id   BIGINT      NOT NULL REFERENCES posts (id) ON DELETE CASCADE,
    -- The text as it was before the edit that replaced it.
    text      TEXT        NOT NULL,
    -- When this version was first published (the post's creation or a previous edit).
    valid_from TIMESTAMPTZ NOT NULL,
    replaced_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX post_edits_post_idx ON post_edits (post_id, id);

CREATE TABLE post_hashtags (
    post_id BIGINT NOT NULL REFERENCES posts (id) ON DELETE CASCADE,
    -- Lower-cased, without the '#'.
    tag     TEXT   NOT NULL,
    PRIMARY KEY (post_id, tag)
);
CREATE INDEX post_hashtags_tag_idx ON post_hashtags (tag, post_id DESC);

CREATE TABLE post_mentions (
    post_id BIGINT NOT NULL REFERENCES posts (id) ON DELETE CASCADE,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (post_id, user_id)
);
CREATE INDEX post_mentions_user_idx ON post_mentions (user_id, post_id DESC);

CREATE TABLE comments (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    post_id       BIGINT      NOT NULL REFERENCES posts (id) ON DELETE CASCADE,
    author_id     BIGINT      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- One level of nesting: a reply's parent is always a top-level comment.
    parent_id     BIGINT      REFERENCES comments (id) ON DELETE CASCADE,
    text          TEXT        NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    edited_at     TIMESTAMPTZ,
    deleted_at    TIMESTAMPTZ,
    replies_count BIGINT      NOT NULL DEFAULT 0
);
CREATE INDEX comments_post_idx ON comments (post_id, id) WHERE parent_id IS NULL AND deleted_at IS NULL;
CREATE INDEX comments_parent_idx ON comments (parent_id, id) WHERE deleted_at IS NULL;

CREATE TYPE reaction_kind AS ENUM ('like', 'love', 'haha', 'wow', 'sad', 'angry');

CREATE TABLE reactions (
    post_id    BIGINT        NOT NULL REFERENCES posts (id) ON DELETE CASCADE,
    user_id    BIGINT        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind       reaction_kind NOT NULL,
    created_at TIMESTAMPTZ   NOT NULL DEFAULT now(),
    PRIMARY KEY (post_id, user_id)
);
CREATE INDEX reactions_post_kind_idx ON reactions (post_id, kind, created_at DESC, user_id DESC);
CREATE INDEX reactions_post_time_idx ON reactions (post_id, created_at DESC, user_id DESC);

CREATE TABLE post_views (
    post_id    BIGINT      NOT NULL REFERENCES posts (id) ON DELETE CASCADE,
    viewer_id  BIGINT      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (post_id, viewer_id)
);
