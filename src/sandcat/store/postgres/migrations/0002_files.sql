-- Files and media: upload metadata (the bytes live in the blob store) and
-- where each upload was sent. The same model as SQLite's 0002_files.sql.

CREATE TABLE uploads (
    id text PRIMARY KEY,
    -- The uploader; '' for files the server ships (default avatars).
    owner text NOT NULL,
    kind text NOT NULL,
    content_type text NOT NULL,
    name text NOT NULL DEFAULT '',
    size bigint NOT NULL DEFAULT 0,
    sha256 text NOT NULL DEFAULT '',
    width integer,
    height integer,
    duration_ms bigint,
    has_thumb boolean NOT NULL DEFAULT false,
    -- pending: bytes on their way; ready: usable; deleting: going away.
    state text NOT NULL,
    created_at timestamptz NOT NULL,
    -- First time a message or an avatar used it; NULL = never (the janitor's prey).
    referenced_at timestamptz
);
CREATE INDEX uploads_owner ON uploads(owner, state);
CREATE INDEX uploads_unreferenced ON uploads(state, referenced_at, created_at);

-- One row per conversation an upload was sent in: its members may fetch it.
CREATE TABLE attachments (
    file_id text NOT NULL REFERENCES uploads(id),
    cid text NOT NULL,
    first_seq bigint NOT NULL,
    PRIMARY KEY (file_id, cid)
);
CREATE INDEX attachments_cid ON attachments(cid);
