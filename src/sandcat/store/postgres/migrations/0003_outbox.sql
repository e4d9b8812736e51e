-- The transactional outbox (DESIGN.md §3, cluster mode): one row per committed
-- message, written in the message's transaction, owned by the instance that
-- committed it, deleted once its publisher has the broker's confirmation.
CREATE TABLE outbox (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    owner text NOT NULL,
    cid text NOT NULL,
    payload bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX outbox_owner ON outbox(owner, id);
-- Publisher heartbeats (database time): rows of an instance silent for longer
-- than the lease are taken over by a live one.
CREATE TABLE outbox_owners (
    instance text PRIMARY KEY,
    heartbeat_at timestamptz NOT NULL
);
