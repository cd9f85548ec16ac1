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

-- Notifications: the viewer's own, whose actor, post and comment they may
-- still see (a notification of a comment since deleted, or from someone
-- since blocked, is gone).
CREATE FUNCTION visible_notifications(viewer bigint) RETURNS SETOF notifications
LANGUAGE sql STABLE AS $$
    SELECT n.* FROM notifications n
    WHERE n.user_id = viewer
      AND (n.actor_id IS NULL
           OR EXISTS (SELECT 1 FROM visible_users(viewer) u WHERE u.id = n.actor_id))
      AND (n.post_id IS NULL
           OR EXISTS (SELECT 1 FROM visible_posts(viewer) p WHERE p.id = n.post_id))
      AND (n.comment_id IS NULL
           OR EXISTS (SELECT 1 FROM visible_comments(viewer) c WHERE c.id = n.comment_id))
$$;
