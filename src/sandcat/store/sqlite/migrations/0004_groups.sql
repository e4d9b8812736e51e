-- Group management (issue 4): settings, join requests, and each member's
-- window on the group's timeline.

-- Settings: who may join without approval, who may invite, whether new
-- members see the history from before they joined, and mute-all.
ALTER TABLE groups ADD COLUMN join_approval INTEGER NOT NULL DEFAULT 0;
ALTER TABLE groups ADD COLUMN invite_policy TEXT NOT NULL DEFAULT 'members';
ALTER TABLE groups ADD COLUMN history_visible INTEGER NOT NULL DEFAULT 0;
ALTER TABLE groups ADD COLUMN mute_all INTEGER NOT NULL DEFAULT 0;

-- The seqs a member may read: from_seq (first visible; 0 = from the start)
-- to until_seq (last visible, set when they leave or are removed; NULL while
-- they are a member). Only rows with until_seq NULL receive pushes.
ALTER TABLE conversation_members ADD COLUMN from_seq INTEGER NOT NULL DEFAULT 0;
ALTER TABLE conversation_members ADD COLUMN until_seq INTEGER;

CREATE TABLE group_requests (
    id TEXT PRIMARY KEY,
    group_id TEXT NOT NULL REFERENCES groups(id),
    user_id TEXT NOT NULL REFERENCES users(id),
    invited_by TEXT,
    message TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL,
    decided_by TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX group_requests_group ON group_requests(group_id, status, created_at);
CREATE UNIQUE INDEX group_requests_pending ON group_requests(group_id, user_id)
    WHERE status = 'pending';
