-- Accounts, contacts and the inbox (issue 3); the same model as SQLite's 0003.

ALTER TABLE users
    ADD COLUMN gender text NOT NULL DEFAULT '',
    ADD COLUMN birthday text,
    ADD COLUMN signature text NOT NULL DEFAULT '',
    ADD COLUMN region text NOT NULL DEFAULT '',
    ADD COLUMN language text NOT NULL DEFAULT '',
    ADD COLUMN find_by_email boolean NOT NULL DEFAULT true,
    ADD COLUMN find_by_phone boolean NOT NULL DEFAULT true,
    ADD COLUMN last_login_device text,
    ADD COLUMN display_key text NOT NULL DEFAULT '';
UPDATE users SET display_key = lower(display_name);
-- Prefix search compares with >= and <: byte order, whatever the database locale.
CREATE INDEX users_display_key ON users(display_key COLLATE "C");
CREATE INDEX users_username_key_c ON users(username_key COLLATE "C");

CREATE TABLE verification_codes (
    email text NOT NULL,
    purpose text NOT NULL,
    code_hash text NOT NULL,
    expires_at timestamptz NOT NULL,
    attempts integer NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (email, purpose)
);

ALTER TABLE friends
    ADD COLUMN deleted_at timestamptz,
    ADD COLUMN deleted_by text;
CREATE INDEX friends_version ON friends(user_id, version);
ALTER TABLE friend_requests ADD COLUMN version bigint NOT NULL DEFAULT 0;
CREATE INDEX friend_requests_pair ON friend_requests(from_user, to_user, status);
ALTER TABLE blocks ADD COLUMN version bigint NOT NULL DEFAULT 0;

CREATE TABLE inbox (
    user_id text NOT NULL,
    nseq bigint NOT NULL,
    type text NOT NULL,
    data jsonb NOT NULL,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (user_id, nseq)
);
CREATE INDEX inbox_created ON inbox(created_at);
CREATE TABLE inbox_heads (
    user_id text PRIMARY KEY,
    max_nseq bigint NOT NULL
);
CREATE TABLE inbox_acks (
    user_id text NOT NULL,
    device text NOT NULL,
    upto bigint NOT NULL,
    PRIMARY KEY (user_id, device)
);

CREATE TABLE oauth_states (
    state_hash text PRIMARY KEY,
    provider text NOT NULL,
    verifier text NOT NULL,
    device text,
    platform text,
    expires_at timestamptz NOT NULL
);
CREATE TABLE oauth_identities (
    provider text NOT NULL,
    subject text NOT NULL,
    user_id text NOT NULL REFERENCES users(id),
    created_at timestamptz NOT NULL,
    PRIMARY KEY (provider, subject)
);
