-- Group management (issue 4): settings, join requests, and each member's
-- window on the group's timeline.

-- Settings: who may join without approval, who may invite, whether new
-- members see the history from before they joined, and mute-all.
ALTER TABLE groups ADD COLUMN join_approval boolean NOT NULL DEFAULT false;
ALTER TABLE groups ADD COLUMN invite_policy text NOT NULL DEFAULT 'members';
ALTER TABLE groups ADD COLUMN history_visible boolean NOT NULL DEFAULT false;
ALTER TABLE groups ADD COLUMN mute_all boolean NOT NULL DEFAULT false;

-- The seqs a member may read: from_seq (first visible; 0 = from the start)
-- to until_seq (last visible, set when they leave or are removed; NULL while
-- they are a member). Only rows with until_seq NULL receive pushes.
ALTER TABLE conversation_members ADD COLUMN from_seq bigint NOT NULL DEFAULT 0;
ALTER TABLE conversation_members ADD COLUMN until_seq bigint;

CREATE TABLE group_requests (
    id text PRIMARY KEY,
    group_id text NOT NULL REFERENCES groups(id),
    user_id text NOT NULL REFERENCES users(id),
    invited_by text,
    message text NOT NULL DEFAULT '',
    status text NOT NULL,
    decided_by text,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);
CREATE INDEX group_requests_group ON group_requests(group_id, status, created_at);
CREATE UNIQUE INDEX group_requests_pending ON group_requests(group_id, user_id)
    WHERE status = 'pending';
