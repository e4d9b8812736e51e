-- Messages: forwards, and messages each user hid from themselves ("delete for
-- me"). Recall and edit use the foundation's `recalled` and `edited_at`.

-- A forwarded copy names the original: its place and its sender (added to
-- every partition).
ALTER TABLE messages
    ADD COLUMN forward_cid text,
    ADD COLUMN forward_seq bigint,
    ADD COLUMN forward_from text;

CREATE TABLE hidden_messages (
    user_id text NOT NULL,
    cid text NOT NULL,
    seq bigint NOT NULL,
    hidden_at timestamptz NOT NULL,
    PRIMARY KEY (user_id, cid, seq)
);

-- The files each message refers to, so a recall can withdraw them from the
-- conversation (`attachments`) once no other message there refers to them.
CREATE TABLE message_files (
    cid text NOT NULL,
    seq bigint NOT NULL,
    file_id text NOT NULL,
    PRIMARY KEY (cid, seq, file_id)
);
CREATE INDEX message_files_file ON message_files(cid, file_id);
