-- Cluster singleton tasks (docs/roles.md): the janitors, retention and the
-- partitions run on the one instance holding their lease (database time);
-- another takes a lease over once its holder has let it expire.
CREATE TABLE task_leases (
    name text PRIMARY KEY,
    holder text NOT NULL,
    expires_at timestamptz NOT NULL
);
