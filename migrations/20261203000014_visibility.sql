-- The one visibility rule, for every read (the server's and the real-time
-- engine's): what a viewer (NULL: anonymous) may see. Each is a plain SQL
-- function of one SELECT, so the planner inlines it into the calling query:
-- the plans are those of the rule written out (anti-joins on `blocks`, index
-- scans), with the rule written once.

-- Users: active, and no block between them and the viewer, either way.
CREATE FUNCTION visible_users(viewer bigint) RETURNS SETOF users
LANGUAGE sql STABLE AS $$
    SELECT u.* FROM users u
    WHERE u.status = 'active'
      AND NOT EXISTS (SELECT 1 FROM blocks b
                      WHERE (b.blocker_id = viewer AND b.blocked_id = u.id)
                         OR (b.blocker_id = u.id AND b.blocked_id = viewer))
$$;

-- Posts: not deleted, by a user the viewer may see, and not hidden by
-- moderation unless the viewer wrote it.
CREATE FUNCTION visible_posts(viewer bigint) RETURNS SETOF posts
LANGUAGE sql STABLE AS $$
    SELECT p.* FROM posts p
    WHERE p.deleted_at IS NULL
      AND (p.hidden_at IS NULL OR p.author_id = viewer)
      AND EXISTS (SELECT 1 FROM visible_users(viewer) u WHERE u.id = p.author_id)
$$;

-- Comments: the same for the comment, on a post the viewer may see.
CREATE FUNCTION visible_comments(viewer bigint) RETURNS SETOF comments
LANGUAGE sql STABLE AS $$
    SELECT c.* FROM comments c
    WHERE c.deleted_at IS NULL
      AND (c.hidden_at IS NULL OR c.author_id = viewer)
      AND EXISTS (SELECT 1 FROM visible_users(viewer) u WHERE u.id = c.author_id)
      AND EXISTS (SELECT 1 FROM visible_posts(viewer) p WHERE p.id = c.post_id)
$$;
