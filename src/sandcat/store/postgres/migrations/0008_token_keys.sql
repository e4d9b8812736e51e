-- The access-token signing keys (store/token_keys.py): made once in the
-- database so every instance sharing it signs and checks the same tokens.
-- The newest key whose active_at has passed signs; a key stays accepted for
-- one access-token lifetime after its successor becomes active.
CREATE TABLE token_keys (
    id integer PRIMARY KEY,
    secret text NOT NULL,              -- hex
    active_at timestamptz NOT NULL,    -- signs from then on
    created_at timestamptz NOT NULL
);
