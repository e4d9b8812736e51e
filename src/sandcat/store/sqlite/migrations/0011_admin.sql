-- Server administration (README.md, "Operating Sandcat"): who is a server
-- admin (granted only by `sandcat admin grant-admin`), the audit log of every
-- admin action, the revocation log an embedded server polls (so a disable made
-- by the CLI closes the user's sockets), and deleted accounts' tombstones.
CREATE TABLE server_admins (
    user_id TEXT PRIMARY KEY REFERENCES users(id),
    granted_by TEXT NOT NULL,
    granted_at INTEGER NOT NULL
);
CREATE TABLE admin_audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at INTEGER NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    origin TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX admin_audit_at ON admin_audit(at);
CREATE TABLE revocation_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id TEXT NOT NULL,
    session TEXT,
    at INTEGER NOT NULL
);
ALTER TABLE users ADD COLUMN deleted_at INTEGER;
