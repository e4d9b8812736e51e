-- Server administration (README.md, "Operating Sandcat"): who is a server
-- admin (granted only by `sandcat admin grant-admin`), the audit log of every
-- admin action, the revocation log a server without Redis polls (so a disable
-- made by the CLI closes the user's sockets), and deleted accounts' tombstones.
CREATE TABLE server_admins (
    user_id text PRIMARY KEY REFERENCES users(id),
    granted_by text NOT NULL,
    granted_at timestamptz NOT NULL
);
CREATE TABLE admin_audit (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at timestamptz NOT NULL,
    actor text NOT NULL,
    action text NOT NULL,
    target text NOT NULL,
    origin text NOT NULL,
    detail text NOT NULL
);
CREATE INDEX admin_audit_at ON admin_audit(at);
CREATE TABLE revocation_log (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id text NOT NULL,
    session text,
    at timestamptz NOT NULL
);
ALTER TABLE users ADD COLUMN deleted_at timestamptz;
