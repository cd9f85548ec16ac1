-- Accounts, sessions (refresh-token families) and API keys.

CREATE TYPE user_role AS ENUM ('user', 'moderator', 'admin');
CREATE TYPE user_status AS ENUM ('active', 'suspended', 'deleted');

CREATE TABLE users (
    id                 BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username           TEXT        NOT NULL,
    -- NULL once the account is deleted: personal data is erased, the id stays
    -- so that later content can still reference a tombstone.
    email              TEXT,
    password_hash      TEXT,
    display_name       TEXT,
    bio                TEXT,
    role               user_role   NOT NULL DEFAULT 'user',
    status             user_status NOT NULL DEFAULT 'active',
    -- Carried in every access token as `ver`; bumping it (password change,
    -- deletion) refuses every token issued before, since JWTs cannot be recalled.
    token_version      INTEGER     NOT NULL DEFAULT 0,
    created_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at         TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Uniqueness without regard to case.
CREATE UNIQUE INDEX users_username_lower_key ON users (lower(username));
CREATE UNIQUE INDEX users_email_lower_key ON users (lower(email)) WHERE email IS NOT NULL;

CREATE TABLE refresh_tokens (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id    BIGINT      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- All tokens descending from one login share a family; reuse of a rotated
    -- token revokes the whole family.
    family_id  UUID        NOT NULL,
    -- SHA-256 of the opaque token; the token itself is never stored.
    token_hash BYTEA       NOT NULL UNIQUE,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at TIMESTAMPTZ NOT NULL,
    rotated_at TIMESTAMPTZ,
    revoked_at TIMESTAMPTZ
);
CREATE INDEX refresh_tokens_family_idx ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user_idx ON refresh_tokens (user_id);

CREATE TABLE api_keys (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id      BIGINT      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         TEXT        NOT NULL,
    -- SHA-256 of the key; the key is shown once at creation and never stored.
    key_hash     BYTEA       NOT NULL UNIQUE,
    -- First characters of the key, so a person can tell their keys apart.
    prefix       TEXT        NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_used_at TIMESTAMPTZ
);
CREATE INDEX api_keys_user_idx ON api_keys (user_id);
