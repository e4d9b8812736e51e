-- A member's mute is never null, as in SQLite: not muted is the epoch (0 ms).
UPDATE group_members SET muted_until = timestamptz 'epoch' WHERE muted_until IS NULL;
ALTER TABLE group_members
    ALTER COLUMN muted_until SET DEFAULT timestamptz 'epoch',
    ALTER COLUMN muted_until SET NOT NULL;
