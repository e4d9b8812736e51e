-- Moderation that outlasts a membership (issue 12): bans, the mutes of
-- members who left, and invite links (joining by id needs one).

-- Users banned from a group: they cannot join or be invited until unbanned.
CREATE TABLE group_bans (
    group_id TEXT NOT NULL REFERENCES groups(id),
    user_id TEXT NOT NULL REFERENCES users(id),
    banned_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (group_id, user_id)
) WITHOUT ROWID;

-- The mute of a member who left or was removed while muted, given back to
-- its group_members row when they rejoin (deleted then).
CREATE TABLE group_held_mutes (
    group_id TEXT NOT NULL REFERENCES groups(id),
    user_id TEXT NOT NULL REFERENCES users(id),
    muted_until INTEGER NOT NULL,
    PRIMARY KEY (group_id, user_id)
) WITHOUT ROWID;

-- Invite links: the token is the secret a joiner presents; uses counts the
-- joins and join requests it made; revoked_at, expires_at and max_uses end it.
CREATE TABLE group_invites (
    id TEXT PRIMARY KEY,
    group_id TEXT NOT NULL REFERENCES groups(id),
    token TEXT NOT NULL UNIQUE,
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER,
    max_uses INTEGER,
    uses INTEGER NOT NULL DEFAULT 0,
    revoked_at INTEGER
);
CREATE INDEX group_invites_group ON group_invites(group_id, created_at);
