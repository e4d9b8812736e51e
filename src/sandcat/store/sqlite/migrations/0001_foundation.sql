-- The foundation: accounts, sessions, contacts, groups, conversations, messages.
-- Times are integer milliseconds UTC, as on the wire.

CREATE TABLE users (
    id TEXT PRIMARY KEY,
    username TEXT NOT NULL,
    username_key TEXT NOT NULL UNIQUE,
    email TEXT UNIQUE,
    phone TEXT UNIQUE,
    password_hash TEXT NOT NULL,
    display_name TEXT NOT NULL,
    avatar TEXT NOT NULL DEFAULT '',
    profile BLOB,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    last_login_at INTEGER,
    last_login_ip TEXT,
    disabled INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE sessions (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id),
    device TEXT NOT NULL,
    platform TEXT NOT NULL,
    family TEXT NOT NULL,
    refresh_hash TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    last_used_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER,
    ip TEXT
);
CREATE INDEX sessions_user ON sessions(user_id, device);
CREATE INDEX sessions_family ON sessions(family);
CREATE TABLE friend_requests (
    id TEXT PRIMARY KEY,
    from_user TEXT NOT NULL REFERENCES users(id),
    to_user TEXT NOT NULL REFERENCES users(id),
    message TEXT NOT NULL DEFAULT '',
    remark TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX friend_requests_to ON friend_requests(to_user, status);
CREATE INDEX friend_requests_from ON friend_requests(from_user, status);
CREATE TABLE friends (
    user_id TEXT NOT NULL REFERENCES users(id),
    friend_id TEXT NOT NULL REFERENCES users(id),
    remark TEXT NOT NULL DEFAULT '',
    since INTEGER NOT NULL,
    version INTEGER NOT NULL,
    PRIMARY KEY (user_id, friend_id)
) WITHOUT ROWID;
CREATE TABLE blocks (
    user_id TEXT NOT NULL REFERENCES users(id),
    blocked_id TEXT NOT NULL REFERENCES users(id),
    created_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, blocked_id)
) WITHOUT ROWID;
CREATE TABLE groups (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    avatar TEXT NOT NULL DEFAULT '',
    description TEXT NOT NULL DEFAULT '',
    announcement TEXT NOT NULL DEFAULT '',
    owner TEXT NOT NULL REFERENCES users(id),
    max_members INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    dismissed_at INTEGER
);
CREATE TABLE group_members (
    group_id TEXT NOT NULL REFERENCES groups(id),
    user_id TEXT NOT NULL REFERENCES users(id),
    role TEXT NOT NULL,
    alias TEXT NOT NULL DEFAULT '',
    joined_at INTEGER NOT NULL,
    joined_seq INTEGER NOT NULL DEFAULT 0,
    muted_until INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (group_id, user_id)
) WITHOUT ROWID;
CREATE INDEX group_members_user ON group_members(user_id);
CREATE TABLE conversations (
    cid TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    max_seq INTEGER NOT NULL DEFAULT 0,
    min_seq INTEGER NOT NULL DEFAULT 1,
    version INTEGER NOT NULL,
    created_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE conversation_members (
    user_id TEXT NOT NULL REFERENCES users(id),
    cid TEXT NOT NULL REFERENCES conversations(cid),
    can_send INTEGER NOT NULL DEFAULT 1,
    read_seq INTEGER NOT NULL DEFAULT 0,
    cleared_seq INTEGER NOT NULL DEFAULT 0,
    pinned INTEGER NOT NULL DEFAULT 0,
    muted INTEGER NOT NULL DEFAULT 0,
    hidden INTEGER NOT NULL DEFAULT 0,
    version INTEGER NOT NULL,
    PRIMARY KEY (user_id, cid)
) WITHOUT ROWID;
CREATE INDEX conversation_members_cid ON conversation_members(cid);
CREATE TABLE messages (
    cid TEXT NOT NULL,
    seq INTEGER NOT NULL,
    mid TEXT NOT NULL UNIQUE,
    sender TEXT NOT NULL,
    device TEXT NOT NULL,
    cmid TEXT NOT NULL,
    kind INTEGER NOT NULL,
    body BLOB NOT NULL,
    reply_to INTEGER,
    mentions BLOB,
    created_at INTEGER NOT NULL,
    edited_at INTEGER,
    recalled INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (cid, seq),
    UNIQUE (sender, cid, cmid)
) WITHOUT ROWID;
-- One row: the global change counter behind SYNC versions.
CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
INSERT INTO counters (name, value) VALUES ('version', 0);
