-- Delivery slots (docs/cluster-routing.md): each live instance reads one
-- partition of the delivery topic, its slot, recorded beside its outbox
-- heartbeat so publishers map the instances in the presence book to slots.
ALTER TABLE outbox_owners ADD COLUMN slot integer;
