-- Uploaded images. A row is made on upload, unattached; creating a post
-- attaches it (post_id, position). Rows never attached are swept after a day.

CREATE TABLE media (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    owner_id     BIGINT      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- Set when a post takes the image. A deleted post is soft-deleted, so its
    -- media stay attached (and hidden with it).
    post_id      BIGINT      REFERENCES posts (id) ON DELETE SET NULL,
    -- Order within the post, 0 first; set together with post_id.
    position     SMALLINT CHECK (position BETWEEN 0 AND 3),
    -- Object keys, random: knowing one key tells nothing about another.
    storage_key  TEXT        NOT NULL UNIQUE,
    thumb_key    TEXT        NOT NULL UNIQUE,
    content_type TEXT        NOT NULL,
    width        INTEGER     NOT NULL CHECK (width > 0),
    height       INTEGER     NOT NULL CHECK (height > 0),
    -- Size of the stored (re-encoded) image, not of the upload.
    bytes        BIGINT      NOT NULL CHECK (bytes >= 0),
    blurhash     TEXT        NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- The cleanup sweep: unattached rows, oldest first.
CREATE INDEX media_unattached_idx ON media (created_at) WHERE post_id IS NULL;
-- A post's media in order; one item per slot.
CREATE UNIQUE INDEX media_post_position_key ON media (post_id, position) WHERE post_id IS NOT NULL;
CREATE INDEX media_owner_idx ON media (owner_id);
