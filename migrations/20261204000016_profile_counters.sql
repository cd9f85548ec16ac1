-- Profile counters as columns, kept by triggers in the transaction of every
-- change, so a profile is read without counting. They count what the lists
-- show an anonymous caller: followers and followees that are active (a
-- deleted or suspended account drops out of both counts, and comes back if
-- reinstated), and posts neither deleted nor hidden by moderation.
ALTER TABLE users
    ADD COLUMN followers_count bigint NOT NULL DEFAULT 0,
    ADD COLUMN following_count bigint NOT NULL DEFAULT 0,
    ADD COLUMN posts_count bigint NOT NULL DEFAULT 0;

-- Every counter from scratch: for this migration, and for bulk loads that
-- disable the triggers (`rookery seed-bench`).
CREATE FUNCTION recount_profiles() RETURNS void
LANGUAGE sql AS $$
    UPDATE users u SET
        followers_count = (SELECT count(*) FROM follows f
                           JOIN users a ON a.id = f.follower_id AND a.status = 'active'
                           WHERE f.followee_id = u.id),
        following_count = (SELECT count(*) FROM follows f
                           JOIN users a ON a.id = f.followee_id AND a.status = 'active'
                           WHERE f.follower_id = u.id),
        posts_count = (SELECT count(*) FROM posts p
                       WHERE p.author_id = u.id AND p.deleted_at IS NULL AND p.hidden_at IS NULL)
$$;

SELECT recount_profiles();

-- The two rows are locked in id order first: two users following each
-- other at the same moment would otherwise lock them in opposite orders and
-- deadlock.
CREATE FUNCTION count_follow() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    edge follows;
    delta bigint;
BEGIN
    IF TG_OP = 'INSERT' THEN edge := NEW; delta := 1; ELSE edge := OLD; delta := -1; END IF;
    PERFORM 1 FROM users WHERE id IN (edge.followee_id, edge.follower_id) ORDER BY id FOR UPDATE;
    UPDATE users u SET
        followers_count = u.followers_count + CASE
            WHEN u.id = edge.followee_id AND EXISTS (
                SELECT 1 FROM users a WHERE a.id = edge.follower_id AND a.status = 'active')
            THEN delta ELSE 0 END,
        following_count = u.following_count + CASE
            WHEN u.id = edge.follower_id AND EXISTS (
                SELECT 1 FROM users a WHERE a.id = edge.followee_id AND a.status = 'active')
            THEN delta ELSE 0 END
    WHERE u.id IN (edge.followee_id, edge.follower_id);
    RETURN NULL;
END $$;

CREATE TRIGGER count_follow AFTER INSERT OR DELETE ON follows
    FOR EACH ROW EXECUTE FUNCTION count_follow();

-- An account leaving or regaining `active` leaves or rejoins the counts of
-- everyone it follows and everyone who follows it.
CREATE FUNCTION count_status() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    delta bigint;
BEGIN
    IF (OLD.status = 'active') = (NEW.status = 'active') THEN
        RETURN NULL;
    END IF;
    delta := CASE WHEN NEW.status = 'active' THEN 1 ELSE -1 END;
    UPDATE users u SET followers_count = u.followers_count + delta
    FROM follows f WHERE f.follower_id = NEW.id AND u.id = f.followee_id;
    UPDATE users u SET following_count = u.following_count + delta
    FROM follows f WHERE f.followee_id = NEW.id AND u.id = f.follower_id;
    RETURN NULL;
END $$;

CREATE TRIGGER count_status AFTER UPDATE OF status ON users
    FOR EACH ROW EXECUTE FUNCTION count_status();

CREATE FUNCTION count_post() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    was_shown boolean := false;
    is_shown boolean := false;
BEGIN
    IF TG_OP <> 'INSERT' THEN
        was_shown := OLD.deleted_at IS NULL AND OLD.hidden_at IS NULL;
    END IF;
    IF TG_OP <> 'DELETE' THEN
        is_shown := NEW.deleted_at IS NULL AND NEW.hidden_at IS NULL;
    END IF;
    IF was_shown <> is_shown THEN
        UPDATE users SET posts_count = posts_count + CASE WHEN is_shown THEN 1 ELSE -1 END
        WHERE id = CASE WHEN TG_OP = 'DELETE' THEN OLD.author_id ELSE NEW.author_id END;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER count_post AFTER INSERT OR DELETE OR UPDATE OF deleted_at, hidden_at ON posts
    FOR EACH ROW EXECUTE FUNCTION count_post();
