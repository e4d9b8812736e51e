-- Messages: forwards, and messages each user hid from themselves ("delete for
-- me"). Recall and edit use the foundation's `recalled` and `edited_at`.

-- A forwarded copy names the original: its place and its sender.
ALTER TABLE messages ADD COLUMN forward_cid TEXT;
ALTER TABLE messages ADD COLUMN forward_seq INTEGER;
ALTER TABLE messages ADD COLUMN forward_from TEXT;

CREATE TABLE hidden_messages (
    user_id TEXT NOT NULL,
    cid TEXT NOT NULL,
    seq INTEGER NOT NULL,
    hidden_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, cid, seq)
) WITHOUT ROWID;

-- The files each message refers to, so a recall can withdraw them from the
-- conversation (`attachments`) once no other message there refers to them.
CREATE TABLE message_files (
    cid TEXT NOT NULL,
    seq INTEGER NOT NULL,
    file_id TEXT NOT NULL,
    PRIMARY KEY (cid, seq, file_id)
) WITHOUT ROWID;
CREATE INDEX message_files_file ON message_files(cid, file_id);
