-- At most one pending friend request per direction, as in PostgreSQL (the
-- contacts store is one module over both engines and maps this key's
-- violation to "already pending"). An older duplicate, if any, is cancelled.
UPDATE friend_requests SET status = 'cancelled'
WHERE status = 'pending' AND id NOT IN (
    SELECT MAX(id) FROM friend_requests WHERE status = 'pending' GROUP BY from_user, to_user
);
CREATE UNIQUE INDEX friend_requests_pending ON friend_requests(from_user, to_user)
    WHERE status = 'pending';
