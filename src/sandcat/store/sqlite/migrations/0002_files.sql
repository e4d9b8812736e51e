-- Files and media: upload metadata (the bytes live in the blob store) and
-- where each upload was sent. Times are integer milliseconds UTC.

CREATE TABLE uploads (
    id TEXT PRIMARY KEY,
    -- The uploader; '' for files the server ships (default avatars).
    owner TEXT NOT NULL,
    kind TEXT NOT NULL,           -- image, file, voice, video, avatar
    content_type TEXT NOT NULL,
    name TEXT NOT NULL DEFAULT '',
    size INTEGER NOT NULL DEFAULT 0,
    sha256 TEXT NOT NULL DEFAULT '',
    width INTEGER,
    height INTEGER,
    duration_ms INTEGER,
    has_thumb INTEGER NOT NULL DEFAULT 0,
    -- pending: bytes on their way; ready: usable; deleting: going away.
    state TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    -- First time a message or an avatar used it; NULL = never (the janitor's prey).
    referenced_at INTEGER
);
CREATE INDEX uploads_owner ON uploads(owner, state);
CREATE INDEX uploads_unreferenced ON uploads(state, referenced_at, created_at);

-- One row per conversation an upload was sent in: its members may fetch it.
CREATE TABLE attachments (
    file_id TEXT NOT NULL REFERENCES uploads(id),
    cid TEXT NOT NULL,
    first_seq INTEGER NOT NULL,
    PRIMARY KEY (file_id, cid)
) WITHOUT ROWID;
CREATE INDEX attachments_cid ON attachments(cid);
