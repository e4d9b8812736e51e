-- Moderation that outlasts a membership (issue 12): bans, the mutes of
-- members who left, and invite links (joining by id needs one).

-- Users banned from a group: they cannot join or be invited until unbanned.
CREATE TABLE group_bans (
    group_id text NOT NULL REFERENCES groups(id),
    user_id text NOT NULL REFERENCES users(id),
    banned_by text NOT NULL,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (group_id, user_id)
);

-- The mute of a member who left or was removed while muted, given back to
-- its group_members row when they rejoin (deleted then).
CREATE TABLE group_held_mutes (
    group_id text NOT NULL REFERENCES groups(id),
    user_id text NOT NULL REFERENCES users(id),
    muted_until timestamptz NOT NULL,
    PRIMARY KEY (group_id, user_id)
);

-- Invite links: the token is the secret a joiner presents; uses counts the
-- joins and join requests it made; revoked_at, expires_at and max_uses end it.
CREATE TABLE group_invites (
    id text PRIMARY KEY,
    group_id text NOT NULL REFERENCES groups(id),
    token text NOT NULL UNIQUE,
    created_by text NOT NULL,
    created_at timestamptz NOT NULL,
    expires_at timestamptz,
    max_uses integer,
    uses integer NOT NULL DEFAULT 0,
    revoked_at timestamptz
);
CREATE INDEX group_invites_group ON group_invites(group_id, created_at);
