-- Accounts, contacts and the inbox (issue 3).

-- Profile fields, privacy switches for search, and the device of the last login.
ALTER TABLE users ADD COLUMN gender TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN birthday TEXT;
ALTER TABLE users ADD COLUMN signature TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN region TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN language TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN find_by_email INTEGER NOT NULL DEFAULT 1;
ALTER TABLE users ADD COLUMN find_by_phone INTEGER NOT NULL DEFAULT 1;
ALTER TABLE users ADD COLUMN last_login_device TEXT;
-- lower(display_name): prefix search uses it through the index below.
ALTER TABLE users ADD COLUMN display_key TEXT NOT NULL DEFAULT '';
UPDATE users SET display_key = lower(display_name);
CREATE INDEX users_display_key ON users(display_key);

-- Email verification codes: only a hash is kept; one live code per email and purpose.
CREATE TABLE verification_codes (
    email TEXT NOT NULL,
    purpose TEXT NOT NULL,
    code_hash TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (email, purpose)
) WITHOUT ROWID;

-- Deleted friendships stay as tombstones, so incremental contact sync can
-- report them and re-request cool-downs can be enforced.
ALTER TABLE friends ADD COLUMN deleted_at INTEGER;
ALTER TABLE friends ADD COLUMN deleted_by TEXT;
CREATE INDEX friends_version ON friends(user_id, version);
ALTER TABLE friend_requests ADD COLUMN version INTEGER NOT NULL DEFAULT 0;
CREATE INDEX friend_requests_pair ON friend_requests(from_user, to_user, status);
ALTER TABLE blocks ADD COLUMN version INTEGER NOT NULL DEFAULT 0;

-- The inbox: per-user notices with an increasing nseq, and per-device acks.
CREATE TABLE inbox (
    user_id TEXT NOT NULL,
    nseq INTEGER NOT NULL,
    type TEXT NOT NULL,
    data TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, nseq)
) WITHOUT ROWID;
CREATE INDEX inbox_created ON inbox(created_at);
-- The highest nseq handed out; kept apart so deleting notices never lowers it.
CREATE TABLE inbox_heads (
    user_id TEXT PRIMARY KEY,
    max_nseq INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE inbox_acks (
    user_id TEXT NOT NULL,
    device TEXT NOT NULL,
    upto INTEGER NOT NULL,
    PRIMARY KEY (user_id, device)
) WITHOUT ROWID;

-- OAuth logins: pending authorisations (state is single use) and linked identities.
CREATE TABLE oauth_states (
    state_hash TEXT PRIMARY KEY,
    provider TEXT NOT NULL,
    verifier TEXT NOT NULL,
    device TEXT,
    platform TEXT,
    expires_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE oauth_identities (
    provider TEXT NOT NULL,
    subject TEXT NOT NULL,
    user_id TEXT NOT NULL REFERENCES users(id),
    created_at INTEGER NOT NULL,
    PRIMARY KEY (provider, subject)
) WITHOUT ROWID;
