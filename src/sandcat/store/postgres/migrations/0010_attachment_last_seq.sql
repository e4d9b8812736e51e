-- The last seq an upload was sent at in a conversation, beside the first: a
-- member may fetch it if it was sent while they could read the conversation
-- (first_seq <= until_seq and last_seq >= from_seq), so a late joiner with
-- history hidden cannot fetch files sent before they joined.
ALTER TABLE attachments ADD COLUMN last_seq bigint NOT NULL DEFAULT 0;
UPDATE attachments SET last_seq = first_seq;
