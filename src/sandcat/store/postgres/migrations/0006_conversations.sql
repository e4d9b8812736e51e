-- Conversations on the server (issue 4).

-- The highest seq in which the member was @-mentioned (set when the message is
-- stored); the mention flag is "mention_seq > what the member has read".
ALTER TABLE conversation_members ADD COLUMN mention_seq bigint NOT NULL DEFAULT 0;
-- A new message unhides the conversation for every member that hid it: this
-- keeps that update to the (few) hidden rows.
CREATE INDEX conversation_members_hidden ON conversation_members(cid) WHERE hidden;
-- Read receipts in direct conversations (reciprocal: off means neither sent nor received).
ALTER TABLE users ADD COLUMN read_receipts boolean NOT NULL DEFAULT true;
