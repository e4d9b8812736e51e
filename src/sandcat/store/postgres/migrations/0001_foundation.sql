-- The foundation: accounts, sessions, contacts, groups, conversations, messages.
-- The same model as the SQLite schema; times are timestamptz (UTC), converted
-- to integer milliseconds at the adapter boundary.

CREATE TABLE users (
    id text PRIMARY KEY,
    username text NOT NULL,
    username_key text NOT NULL CONSTRAINT users_username_unique UNIQUE,
    email text CONSTRAINT users_email_unique UNIQUE,
    phone text CONSTRAINT users_phone_unique UNIQUE,
    password_hash text NOT NULL,
    display_name text NOT NULL,
    avatar text NOT NULL DEFAULT '',
    profile bytea,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    last_login_at timestamptz,
    last_login_ip text,
    disabled boolean NOT NULL DEFAULT false
);
CREATE TABLE sessions (
    id text PRIMARY KEY,
    user_id text NOT NULL REFERENCES users(id),
    device text NOT NULL,
    platform text NOT NULL,
    family text NOT NULL,
    refresh_hash text NOT NULL UNIQUE,
    created_at timestamptz NOT NULL,
    last_used_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    revoked_at timestamptz,
    ip text
);
CREATE INDEX sessions_user ON sessions(user_id, device);
CREATE INDEX sessions_family ON sessions(family);
CREATE TABLE friend_requests (
    id text PRIMARY KEY,
    from_user text NOT NULL REFERENCES users(id),
    to_user text NOT NULL REFERENCES users(id),
    message text NOT NULL DEFAULT '',
    remark text NOT NULL DEFAULT '',
    status text NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);
CREATE INDEX friend_requests_to ON friend_requests(to_user, status);
CREATE INDEX friend_requests_from ON friend_requests(from_user, status);
-- At most one pending request per direction, even from two instances at once.
CREATE UNIQUE INDEX friend_requests_pending ON friend_requests(from_user, to_user)
    WHERE status = 'pending';
CREATE TABLE friends (
    user_id text NOT NULL REFERENCES users(id),
    friend_id text NOT NULL REFERENCES users(id),
    remark text NOT NULL DEFAULT '',
    since timestamptz NOT NULL,
    version bigint NOT NULL,
    PRIMARY KEY (user_id, friend_id)
);
CREATE TABLE blocks (
    user_id text NOT NULL REFERENCES users(id),
    blocked_id text NOT NULL REFERENCES users(id),
    created_at timestamptz NOT NULL,
    PRIMARY KEY (user_id, blocked_id)
);
CREATE TABLE groups (
    id text PRIMARY KEY,
    name text NOT NULL,
    avatar text NOT NULL DEFAULT '',
    description text NOT NULL DEFAULT '',
    announcement text NOT NULL DEFAULT '',
    owner text NOT NULL REFERENCES users(id),
    max_members integer NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    dismissed_at timestamptz
);
CREATE TABLE group_members (
    group_id text NOT NULL REFERENCES groups(id),
    user_id text NOT NULL REFERENCES users(id),
    role text NOT NULL,
    alias text NOT NULL DEFAULT '',
    joined_at timestamptz NOT NULL,
    joined_seq bigint NOT NULL DEFAULT 0,
    muted_until timestamptz,
    PRIMARY KEY (group_id, user_id)
);
CREATE INDEX group_members_user ON group_members(user_id);
CREATE TABLE conversations (
    cid text PRIMARY KEY,
    kind text NOT NULL,
    max_seq bigint NOT NULL DEFAULT 0,
    min_seq bigint NOT NULL DEFAULT 1,
    version bigint NOT NULL,
    created_at timestamptz NOT NULL
);
CREATE TABLE conversation_members (
    user_id text NOT NULL REFERENCES users(id),
    cid text NOT NULL REFERENCES conversations(cid),
    can_send boolean NOT NULL DEFAULT true,
    read_seq bigint NOT NULL DEFAULT 0,
    cleared_seq bigint NOT NULL DEFAULT 0,
    pinned boolean NOT NULL DEFAULT false,
    muted boolean NOT NULL DEFAULT false,
    hidden boolean NOT NULL DEFAULT false,
    version bigint NOT NULL,
    PRIMARY KEY (user_id, cid)
);
CREATE INDEX conversation_members_cid ON conversation_members(cid);

-- Messages, partitioned by month of created_at (UTC). A unique index on a
-- partitioned table must contain the partition key, so uniqueness of
-- (cid, seq), (sender, cid, cmid) and mid is enforced per partition by the
-- indexes sandcat_message_partition creates, and across partitions by the
-- send path: it holds the conversation's row lock while it dedupes and
-- allocates seqs. The DEFAULT partition means an insert never fails for want
-- of a partition (the original system's failure after a year); the janitor
-- creates months ahead and moves any stray rows out of it.
CREATE TABLE messages (
    cid text NOT NULL,
    seq bigint NOT NULL,
    mid text NOT NULL,
    sender text NOT NULL,
    device text NOT NULL,
    cmid text NOT NULL,
    kind integer NOT NULL,
    body bytea NOT NULL,
    reply_to bigint,
    mentions text[],
    created_at timestamptz NOT NULL,
    edited_at timestamptz,
    recalled boolean NOT NULL DEFAULT false
) PARTITION BY RANGE (created_at);

CREATE FUNCTION sandcat_message_indexes(part text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('CREATE UNIQUE INDEX IF NOT EXISTS %I ON %I (cid, seq)', part || '_seq', part);
    EXECUTE format('CREATE UNIQUE INDEX IF NOT EXISTS %I ON %I (sender, cid, cmid)',
                   part || '_cmid', part);
    EXECUTE format('CREATE UNIQUE INDEX IF NOT EXISTS %I ON %I (mid)', part || '_mid', part);
END $$;

CREATE TABLE messages_default PARTITION OF messages DEFAULT;
SELECT sandcat_message_indexes('messages_default');

-- The partition for the month holding `day` (UTC): created if missing, with
-- rows of that month moved in from the default partition, in the caller's
-- transaction. Serialised by an advisory lock: several janitors may run.
CREATE FUNCTION sandcat_message_partition(day timestamptz) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    low timestamptz := date_trunc('month', day AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
    high timestamptz := (date_trunc('month', day AT TIME ZONE 'UTC') + interval '1 month')
                        AT TIME ZONE 'UTC';
    part text := 'messages_' || to_char(day AT TIME ZONE 'UTC', 'YYYY_MM');
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('sandcat_message_partition'));
    IF to_regclass(part) IS NOT NULL THEN
        RETURN part;
    END IF;
    EXECUTE format('CREATE TABLE %I (LIKE messages INCLUDING DEFAULTS)', part);
    EXECUTE format(
        'WITH moved AS (DELETE FROM messages_default WHERE created_at >= %L AND created_at < %L '
        'RETURNING *) INSERT INTO %I SELECT * FROM moved', low, high, part);
    PERFORM sandcat_message_indexes(part);
    EXECUTE format('ALTER TABLE messages ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
                   part, low, high);
    RETURN part;
END $$;

-- One row: the change counter behind SYNC versions (see conversations.py).
CREATE TABLE counters (name text PRIMARY KEY, value bigint NOT NULL);
INSERT INTO counters (name, value) VALUES ('version', 0);
