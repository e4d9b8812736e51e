-- The access-token signing keys (store/token_keys.py): made once in the
-- database so every instance sharing it signs and checks the same tokens.
-- The newest key whose active_at has passed signs; a key stays accepted for
-- one access-token lifetime after its successor becomes active.
CREATE TABLE token_keys (
    id INTEGER PRIMARY KEY,
    secret TEXT NOT NULL,          -- hex
    active_at INTEGER NOT NULL,    -- ms: signs from then on
    created_at INTEGER NOT NULL
);
